"""Chapter 05 (soft optimality): grader tests of course_utils.checks.ch05 and its references.

Every check must accept the reference (and a typical correct student solution) and reject each
typical wrong answer with its specific message.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import entr, logsumexp

from course_utils import inference
from course_utils.checks import ExerciseError, ExerciseNotAttempted
from course_utils.checks.ch05 import (
    check_greedy_loss_question,
    check_policy_elbo,
    check_soft_bellman_backup,
    check_soft_policy_evaluation,
    check_soft_value_iteration,
    reference_policy_elbo,
    reference_soft_bellman_backup,
    reference_soft_policy_evaluation,
    reference_soft_value_iteration,
)


def _not_attempted(*args, **kwargs):
    raise NotImplementedError("Exercise 5.N: replace this line with your code")


# ---------------------------------------------------------------------------------- Exercise 5.1


def student_elbo(P, R, pi, p0, horizon, alpha=1.0, *, mistake=None):
    """Written as a student would: a loop over t, the state distribution pushed forward."""
    pi = np.asarray(pi, dtype=float)
    d, total = np.asarray(p0, dtype=float), 0.0
    for t in range(horizon):
        pi_t = pi if pi.ndim == 2 else pi[t]
        with np.errstate(divide="ignore", invalid="ignore"):
            log_pi = np.log(pi_t)
            if mistake == "naive entropy":
                entropy = -(pi_t * log_pi).sum(axis=1)  # NaN where pi = 0
            else:
                entropy = -(pi_t * np.where(pi_t > 0, log_pi, 0.0)).sum(axis=1)
        reward = (pi_t * R).sum(axis=1)
        total += d @ (reward + (0.0 if mistake == "no entropy" else alpha) * entropy)
        if mistake != "p0 forever":
            d = d @ np.einsum("sa,sap->sp", pi_t, P)
    return total


def _el(mistake):
    return lambda P, R, pi, p0, T, alpha=1.0: student_elbo(P, R, pi, p0, T, alpha, mistake=mistake)


def test_check_policy_elbo_accepts_the_reference_and_student_solutions(capsys):
    check_policy_elbo(reference_policy_elbo)
    check_policy_elbo(student_elbo)
    check_policy_elbo(lambda *a: np.float32(student_elbo(*a)))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(line.startswith("Exercise 5.1 passed:") for line in lines)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_el("no entropy"), r"no entropy term"),
        (_el("p0 forever"), r"state distribution never moves"),
        (_el("naive entropy"), r"NaN where pi\(a\|s\) = 0.*entr"),
        (
            lambda P, R, pi, p0, T, alpha=1.0: (
                student_elbo(P, R, pi, p0, T + 1, alpha)
                if np.ndim(pi) == 2
                else student_elbo(P, R, np.concatenate([pi, pi[-1:]]), p0, T + 1, alpha)
            ),
            r"one step too many",
        ),
        (
            lambda P, R, pi, p0, T, alpha=1.0: student_elbo(P, R, pi, p0, T, 1.0),
            r"not multiplied by the temperature",
        ),
        (lambda P, R, pi, p0, T, alpha=1.0: None, r"returned None"),
    ],
    ids=["no-entropy", "p0-forever", "nan", "T+1", "alpha", "none"],
)
def test_check_policy_elbo_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message) as info:
        check_policy_elbo(wrong)
    assert str(info.value).startswith("Exercise 5.1")


def test_policy_elbo_is_log_evidence_minus_kl_by_enumeration():
    """log p(O) - ELBO(pi) = KL(q_pi || p(tau | O)) for any policy (chapter 05, section 3)."""
    rng = np.random.default_rng(4)
    S, A, T = 3, 2, 4
    P, R = rng.dirichlet(np.ones(S), size=(S, A)), rng.normal(size=(S, A))
    p0 = rng.dirichlet(np.ones(S))
    grid = np.indices((S, A) * T).reshape(2 * T, -1).T
    s, a = grid[:, 0::2], grid[:, 1::2]
    log_dyn = np.log(p0[s[:, 0]]) + np.log(P[s[:, :-1], a[:, :-1], s[:, 1:]]).sum(1)
    log_joint = log_dyn + R[s, a].sum(1)
    log_evidence = logsumexp(log_joint)
    for pi in (rng.dirichlet(np.ones(A), size=(T, S)), np.full((S, A), 0.5)):
        pi_t = np.broadcast_to(pi, (T, S, A))
        log_q = log_dyn + np.log(pi_t[np.arange(T), s, a]).sum(1)
        kl = np.sum(np.exp(log_q) * (log_q - (log_joint - log_evidence)))
        assert np.isclose(log_evidence - reference_policy_elbo(P, R, pi, p0, T, 1.0), kl)


# ---------------------------------------------------------------------------------- Exercise 5.5


def test_greedy_loss_question(capsys):
    check_greedy_loss_question(0.3 * np.log(5) / 0.1)
    check_greedy_loss_question(4.83)
    assert capsys.readouterr().out.count("Exercise 5.5 passed") == 2
    with pytest.raises(ExerciseError, match=r"bonus of ONE step"):
        check_greedy_loss_question(0.48)
    with pytest.raises(ExerciseError, match=r"greedy policy's entropy is 0"):
        check_greedy_loss_question(0)
    with pytest.raises(ExerciseError, match=r"what does the soft-optimal policy do in G"):
        check_greedy_loss_question(7.0)


def test_greedy_loss_question_answer_is_what_the_notebook_runs():
    """The greedy policy loses alpha log 5 / (1 - gamma) in the goal cell of chapter 05's grid."""
    from course_utils.mdp import gridworld

    grid = gridworld(
        ["......", ".#T...", "S#..TG", "......"],
        rewards={"G": 1.0, "T": -1.0},
        step_reward=-0.05,
        slip=0.1,
    )
    _, V_soft, _ = reference_soft_value_iteration(grid.P, grid.R, 0.9, 0.3)
    Q_hard, _ = inference.value_iteration(grid.P, grid.R, gamma=0.9)
    greedy = np.eye(5)[Q_hard.argmax(axis=1)]
    loss = V_soft - reference_soft_policy_evaluation(grid.P, grid.R, greedy, 0.9, 0.3)
    goal = [name.startswith("G") for name in grid.state_names].index(True)
    assert np.isclose(loss[goal], 0.3 * np.log(5) / 0.1)
    assert loss.min() > 2.4 and np.isclose(loss.max(), 0.3 * np.log(5) / 0.1)


# ---------------------------------------------------------------------------------- Exercise 5.2


def student_backup(P, R, V_next, gamma=1.0, alpha=1.0):
    """A typical correct answer: P @ V and a hand-written stable soft max."""
    Q = R + gamma * P @ V_next
    m = Q.max(axis=1, keepdims=True)
    V = (m + alpha * np.log(np.exp((Q - m) / alpha).sum(axis=1, keepdims=True)))[:, 0]
    return Q, V


def _backup(expect=None, soft_max=None):
    """A backup with the expectation and/or the soft max replaced by a wrong one."""

    def backup(P, R, V_next, gamma=1.0, alpha=1.0):
        Q = R + (
            expect(P, V_next, gamma, alpha) if expect else gamma * np.einsum("sap,p->sa", P, V_next)
        )
        V = soft_max(Q, alpha) if soft_max else alpha * logsumexp(Q / alpha, axis=1)
        return Q, V

    return backup


def _naive_soft_max(Q, alpha):
    with np.errstate(over="ignore"):
        return alpha * np.log(np.exp(Q / alpha).sum(axis=1))


def _global_max_soft_max(Q, alpha):
    """Subtracts the maximum of the whole table: rows far below it underflow to log 0 = -inf."""
    m = Q.max()
    with np.errstate(divide="ignore"):
        return m + alpha * np.log(np.exp((Q - m) / alpha).sum(axis=1))


def test_check_soft_bellman_backup_accepts_the_reference_and_a_student_solution(capsys):
    check_soft_bellman_backup(reference_soft_bellman_backup)
    check_soft_bellman_backup(student_backup)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.startswith("Exercise 5.2 passed:") for line in lines)
    assert lines[0] == lines[1]  # deterministic


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_backup(soft_max=lambda Q, alpha: Q.max(axis=1)), "hard max over actions"),
        (_backup(soft_max=lambda Q, alpha: logsumexp(Q, axis=1)), "ignores the temperature"),
        (
            _backup(soft_max=lambda Q, alpha: alpha * logsumexp(Q, axis=1)),
            "forgot to divide Q by alpha",
        ),
        (
            _backup(soft_max=lambda Q, alpha: logsumexp(Q / alpha, axis=1)),
            "forgot to multiply by alpha",
        ),
        (
            _backup(soft_max=lambda Q, alpha: alpha * logsumexp(Q / alpha, axis=0)),
            "soft max over the wrong axis",
        ),
        (
            _backup(
                soft_max=lambda Q, alpha: (
                    alpha * (logsumexp(Q / alpha, axis=1) - np.log(Q.shape[1]))
                )
            ),
            "log-MEAN-exp",
        ),
        (_backup(expect=lambda P, V, g, a: g * np.einsum("sap,s->sa", P, V)), "wrong index of P"),
        (_backup(expect=lambda P, V, g, a: g * np.einsum("sap,s->pa", P, V)), "wrong index of P"),
        (_backup(expect=lambda P, V, g, a: g * np.einsum("pas,p->sa", P, V)), "wrong index of P"),
        (_backup(expect=lambda P, V, g, a: g * a * logsumexp(V / a, b=P, axis=2)), "OPTIMISTIC"),
        (_backup(expect=lambda P, V, g, a: g * logsumexp(V, b=P, axis=2)), "OPTIMISTIC"),
        (_backup(expect=lambda P, V, g, a: np.einsum("sap,p->sa", P, V)), "ignores the discount"),
        (_backup(soft_max=_naive_soft_max), "soft max overflowed"),
        (_backup(soft_max=_global_max_soft_max), "underflowed.*maximum of each row"),
        (
            _backup(soft_max=lambda Q, alpha: alpha * logsumexp(Q / alpha, axis=1, keepdims=True)),
            r"the V has shape \(5, 1\), expected \(5,\).*keepdims",
        ),
        (_backup(soft_max=lambda Q, alpha: np.full(Q.shape[0], np.nan)), "NaN"),
        (
            lambda P, R, V_next, gamma=1.0, alpha=1.0: R + gamma * P @ V_next,
            r"return the tuple \(Q, V\)",
        ),
        (lambda P, R, V_next, gamma=1.0, alpha=1.0: None, r"return the tuple \(Q, V\).*NoneType"),
    ],
    ids=[
        "hard-max",
        "no-temperature",
        "no-divide",
        "no-multiply",
        "wrong-axis",
        "log-mean-exp",
        "index-s-sa",
        "index-s-pa",
        "index-pas-p",
        "optimistic",
        "optimistic-no-alpha",
        "no-discount",
        "overflow",
        "global-max-underflow",
        "shape",
        "nan",
        "not-a-tuple",
        "none",
    ],
)
def test_check_soft_bellman_backup_rejects_typical_mistakes(wrong, message):
    with np.errstate(all="ignore"):
        with pytest.raises(ExerciseError, match=message) as info:
            check_soft_bellman_backup(wrong)
    assert not isinstance(info.value, ExerciseNotAttempted)
    assert str(info.value).startswith("Exercise 5.2")


# ---------------------------------------------------------------------------------- Exercise 5.3


def student_value_iteration(
    P,
    R,
    gamma,
    alpha=1.0,
    tol=1e-10,
    max_iter=100_000,
    *,
    backup=student_backup,
    policy=None,
    iterations=None,
):
    """A typical correct answer built on the backup; the keywords inject mistakes."""
    V = np.zeros(P.shape[0])
    for _ in range(iterations or max_iter):
        Q, V_new = backup(P, R, V, gamma, alpha)
        done = np.max(np.abs(V_new - V)) < tol
        V = V_new
        if done and iterations is None:
            break
    pi = policy(Q, V, alpha) if policy else np.exp((Q - V[:, None]) / alpha)
    return Q, V, pi


def _vi(**mistake):
    return lambda P, R, gamma, alpha=1.0, tol=1e-10, max_iter=100_000: student_value_iteration(
        P, R, gamma, alpha, tol, max_iter, **mistake
    )


def _hard_value_iteration(P, R, gamma, alpha=1.0, tol=1e-10, max_iter=100_000):
    Q, V = inference.value_iteration(P, R, gamma=gamma)
    return Q, V, np.eye(Q.shape[1])[Q.argmax(axis=1)]


def _softmax_over_states(Q, V, alpha):
    return np.exp((Q - alpha * logsumexp(Q / alpha, axis=0, keepdims=True)) / alpha)


def _overflowing_policy(Q, V, alpha):
    with np.errstate(all="ignore"):
        e = np.exp(Q / alpha)
        return e / e.sum(axis=1, keepdims=True)


def test_check_soft_value_iteration_accepts_the_reference_and_a_student_solution(capsys):
    check_soft_value_iteration(reference_soft_value_iteration)
    check_soft_value_iteration(_vi())
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.startswith("Exercise 5.3 passed:") for line in lines)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_hard_value_iteration, "hard value iteration"),
        (_vi(backup=_backup(soft_max=lambda Q, alpha: Q.max(axis=1))), "hard value iteration"),
        (_vi(iterations=10), "not a fixed point of the soft Bellman backup yet"),
        (
            _vi(backup=lambda P, R, V, g, a: student_backup(P, R, V, g, 1.0)),
            "ignores the temperature",
        ),
        (
            _vi(backup=_backup(expect=lambda P, V, g, a: g * a * logsumexp(V / a, b=P, axis=2))),
            "OPTIMISTIC",
        ),
        (
            _vi(policy=lambda Q, V, alpha: np.exp(Q - V[:, None])),
            r"does not sum to one.*divide by alpha",
        ),
        (
            _vi(policy=lambda Q, V, alpha: np.exp((Q - Q.max(axis=1, keepdims=True)) / alpha)),
            "does not sum to one over actions: the row sums range",
        ),
        (_vi(policy=_softmax_over_states), "sums to one over STATES"),
        (_vi(policy=lambda Q, V, alpha: np.eye(Q.shape[1])[Q.argmax(axis=1)]), "greedy"),
        (_vi(policy=_overflowing_policy), "policy overflowed"),
        (
            _vi(policy=lambda Q, V, alpha: np.exp(Q - logsumexp(Q, axis=1, keepdims=True))),
            "policy ignores the temperature",
        ),
        (_vi(policy=lambda Q, V, alpha: np.exp((Q - V[:, None]) / alpha).T), r"shape \(A, S\)"),
        (
            lambda P, R, gamma, alpha=1.0, tol=1e-10, max_iter=100_000: student_value_iteration(
                P, R, gamma, alpha
            )[:2],
            r"return the tuple \(Q, V, pi\)",
        ),
    ],
    ids=[
        "hard-vi",
        "hard-backup",
        "not-converged",
        "no-temperature",
        "optimistic",
        "policy-no-alpha",
        "policy-unnormalised",
        "policy-wrong-axis",
        "policy-greedy",
        "policy-overflow",
        "policy-no-temperature",
        "policy-shape",
        "two-outputs",
    ],
)
def test_check_soft_value_iteration_rejects_typical_mistakes(wrong, message):
    with np.errstate(all="ignore"):
        with pytest.raises(ExerciseError, match=message) as info:
            check_soft_value_iteration(wrong)
    assert not isinstance(info.value, ExerciseNotAttempted)
    assert str(info.value).startswith("Exercise 5.3")


def test_check_soft_value_iteration_names_the_slide_errata():
    """pi proportional to exp(R) (the slides' "recursive solution"), pi(s_t | a_t) (over states),
    and 5.2's action-prior parenthesis (log-mean-exp)."""

    def wrong(P, R, gamma, alpha=1.0, tol=1e-10, max_iter=100_000):
        Q, V, _ = student_value_iteration(P, R, gamma, alpha, tol, max_iter)
        return Q, V, np.exp((R - alpha * logsumexp(R / alpha, axis=1, keepdims=True)) / alpha)

    with pytest.raises(ExerciseError, match=r"exp\(R / alpha\).*Slide erratum.*recursive solution"):
        check_soft_value_iteration(wrong)
    with pytest.raises(ExerciseError, match=r"over STATES.*Slide erratum.*pi\(s_t \| a_t\)"):
        check_soft_value_iteration(_vi(policy=_softmax_over_states))
    log_mean_exp = _backup(
        soft_max=lambda Q, alpha: alpha * (logsumexp(Q / alpha, axis=1) - np.log(Q.shape[1]))
    )
    with pytest.raises(ExerciseError, match=r"log-MEAN-exp.*Slide erratum.*parenthesis"):
        check_soft_bellman_backup(log_mean_exp)


def test_check_soft_value_iteration_accepts_a_float32_fixed_point(capsys):
    """Value iteration amplifies round-off by up to 1 / (1 - gamma): the float32 tolerance grows
    with how far float32 rounding of the inputs alone moves the reference's fixed point."""

    def float32(P, R, gamma, alpha=1.0, tol=1e-10, max_iter=100_000):
        f32 = np.float32
        P, R, V = P.astype(f32), R.astype(f32), np.zeros(len(P), dtype=f32)
        for _ in range(max_iter):
            Q = R + f32(gamma) * (P @ V)
            V_new = (f32(alpha) * logsumexp(Q / f32(alpha), axis=1)).astype(f32)
            change, V = np.abs(V_new - V).max(), V_new
            if change <= 4 * np.finfo(f32).eps * np.abs(V).max():  # float32 stopped changing
                break
        return Q, V, np.exp((Q - V[:, None]) / f32(alpha))

    check_soft_value_iteration(float32)
    assert capsys.readouterr().out.startswith("Exercise 5.3 passed")


def test_checks_accept_float32_where_float32_suffices(capsys):
    """The float32 answer is compared with the reference on float32-rounded inputs, whose rows
    of P then sum to one only up to float32 round-off: the references must accept them."""
    check_soft_bellman_backup(lambda *a: tuple(x.astype(np.float32) for x in student_backup(*a)))
    check_soft_policy_evaluation(lambda *a: student_evaluation(*a).astype(np.float32))
    assert capsys.readouterr().out.count("passed") == 2


# ---------------------------------------------------------------------------------- Exercise 5.4


def student_evaluation(P, R, pi, gamma, alpha=0.0, *, entropy=None, P_pi=None, solve=True):
    """A typical correct answer; the keywords inject mistakes."""
    P_pi = P_pi(pi, P) if P_pi else np.einsum("sa,sap->sp", pi, P)
    H = entropy(pi) if entropy else entr(pi).sum(axis=1)
    r_pi = (pi * R).sum(axis=1) + alpha * H
    return np.linalg.solve(np.eye(len(r_pi)) - gamma * P_pi, r_pi) if solve else r_pi


def _ev(**mistake):
    return lambda P, R, pi, gamma, alpha=0.0: student_evaluation(P, R, pi, gamma, alpha, **mistake)


def _naive_entropy(pi):
    with np.errstate(divide="ignore", invalid="ignore"):
        return -(pi * np.log(pi)).sum(axis=1)


def test_check_soft_policy_evaluation_accepts_the_reference_and_a_student_solution(capsys):
    check_soft_policy_evaluation(reference_soft_policy_evaluation)
    check_soft_policy_evaluation(_ev())
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.startswith("Exercise 5.4 passed:") for line in lines)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_ev(entropy=lambda pi: np.zeros(len(pi))), "no entropy bonus"),
        (_ev(entropy=lambda pi: -entr(pi).sum(axis=1)), "entropy has the wrong sign"),
        (
            lambda P, R, pi, gamma, alpha=0.0: student_evaluation(
                P, R, pi, gamma, 1.0 if alpha else 0.0
            ),
            "not multiplied by the temperature",
        ),
        (_ev(entropy=_naive_entropy), "0 \\* log 0 is NaN"),
        (_ev(solve=False), "only one step"),
        (_ev(P_pi=lambda pi, P: np.einsum("sa,sap->ps", pi, P)), "P_pi is transposed"),
        (_ev(P_pi=lambda pi, P: np.einsum("sa,pas->sp", pi, P)), "wrong index of P"),
        (
            lambda P, R, pi, gamma, alpha=0.0: np.zeros(P.shape[:2]),
            r"shape \(S,\), not one value per action",
        ),
        (
            lambda P, R, pi, gamma, alpha=0.0: np.zeros(P.shape[0] + 1),
            r"has shape \(6,\), expected \(5,\)",
        ),
    ],
    ids=[
        "no-entropy",
        "entropy-sign",
        "no-alpha",
        "zero-log-zero",
        "one-step",
        "transposed",
        "wrong-index",
        "per-action",
        "shape",
    ],
)
def test_check_soft_policy_evaluation_rejects_typical_mistakes(wrong, message):
    with np.errstate(all="ignore"):
        with pytest.raises(ExerciseError, match=message) as info:
            check_soft_policy_evaluation(wrong)
    assert not isinstance(info.value, ExerciseNotAttempted)
    assert str(info.value).startswith("Exercise 5.4")


# ---------------------------------------------------------------------------------- all checks


ALL_CHECKS = [
    check_policy_elbo,
    check_soft_bellman_backup,
    check_soft_value_iteration,
    check_soft_policy_evaluation,
]


@pytest.mark.parametrize("check", ALL_CHECKS)
def test_checks_report_not_attempted(check):
    with pytest.raises(
        ExerciseNotAttempted, match=r"Exercise 5\.\d is not attempted yet: `_not_attempted`"
    ):
        check(_not_attempted)


@pytest.mark.parametrize("check", ALL_CHECKS)
def test_checks_reject_a_called_function(check):
    with pytest.raises(ExerciseError, match="expected a function"):
        check(np.zeros(3))


def test_a_crash_in_the_student_code_names_the_input():
    def crashes(P, R, V_next, gamma=1.0, alpha=1.0):
        return P[:, :, 0] @ V_next  # shapes do not match

    with pytest.raises(
        ExerciseError, match=r"`crashes` raised ValueError.*\(input: a stochastic MDP"
    ):
        check_soft_bellman_backup(crashes)


# ---------------------------------------------------------------------------------- references


def _mdp(seed: int, S: int, A: int, deterministic: bool):
    rng = np.random.default_rng(seed)
    P = (
        np.eye(S)[rng.integers(S, size=(S, A))]
        if deterministic
        else rng.dirichlet(np.ones(S), size=(S, A))
    )
    return rng, P, rng.normal(size=(S, A))


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    S=st.integers(1, 6),
    A=st.integers(1, 4),
    deterministic=st.booleans(),
    gamma=st.sampled_from([0.0, 0.5, 0.9]),
    alpha=st.sampled_from([0.0, 0.1, 1.0]),
)
def test_policy_evaluation_equals_the_discounted_sum_of_forward_messages(
    seed, S, A, deterministic, gamma, alpha
):
    rng, P, R = _mdp(seed, S, A, deterministic)
    pi = rng.dirichlet(np.ones(A), size=S)
    p0 = rng.dirichlet(np.ones(S))
    T = 400
    D = inference.forward_messages(P, pi, p0, T)  # state marginals, (T, S)
    per_state = (pi * R).sum(axis=1) + alpha * entr(pi).sum(axis=1)
    finite = float(np.sum(gamma ** np.arange(T) * (D @ per_state)))
    assert np.isclose(
        p0 @ reference_soft_policy_evaluation(P, R, pi, gamma, alpha), finite, rtol=1e-8, atol=1e-8
    )


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    S=st.integers(1, 6),
    A=st.integers(1, 4),
    deterministic=st.booleans(),
    gamma=st.sampled_from([0.0, 0.5, 0.9]),
    alpha=st.sampled_from([0.05, 1.0, 5.0]),
)
def test_the_soft_optimal_policy_attains_the_soft_value_and_beats_other_policies(
    seed, S, A, deterministic, gamma, alpha
):
    rng, P, R = _mdp(seed, S, A, deterministic)
    _, V, pi = reference_soft_value_iteration(P, R, gamma, alpha)
    assert np.allclose(reference_soft_policy_evaluation(P, R, pi, gamma, alpha), V, atol=1e-7)
    for other in (
        rng.dirichlet(np.ones(A), size=S),
        np.full((S, A), 1.0 / A),
        np.eye(A)[rng.integers(A, size=S)],
    ):
        assert np.all(reference_soft_policy_evaluation(P, R, other, gamma, alpha) <= V + 1e-7)


def test_reference_backup_iterated_is_the_variational_backward_pass():
    _, P, R = _mdp(0, 5, 3, False)
    Q_ref, V_ref = inference.backward_messages(P, R, 6, alpha=0.5)
    V = np.zeros(5)
    for t in range(5, -1, -1):
        Q, V = reference_soft_bellman_backup(
            P, R, V if t < 5 else np.zeros(5), gamma=1.0, alpha=0.5
        )
        assert np.allclose(Q, Q_ref[t]) and np.allclose(V, V_ref[t])
