"""Chapter 04 (control as inference): grader tests of course_utils.checks.ch04.

Every check accepts the reference (and a student-style solution written independently of it)
and rejects each typical wrong answer with its own message. The wrong answers below are written
the way a student would write them, not derived from the checker's own variants.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from course_utils import inference
from course_utils.checks import ExerciseError, ExerciseNotAttempted
from course_utils.checks.ch04 import (
    check_backward_log_messages,
    check_backward_probabilities,
    check_forward_log_messages,
    check_horizon_question,
    check_posterior_inference,
    reference_backward_log_messages,
    reference_backward_probabilities,
    reference_forward_log_messages,
    reference_posterior_inference,
)
from course_utils.mdp import gridworld, random_mdp

CHECKS = {
    "4.1": check_backward_probabilities,
    "4.2": check_backward_log_messages,
    "4.3": check_forward_log_messages,
    "4.4": check_posterior_inference,
}


def _log(P):
    with np.errstate(divide="ignore"):
        return np.log(P)


# ---------------------------------------------------------------- student-style answers


def backward_probabilities(
    P, R, horizon, *, reduce="sum", expect="p,sap", factor="exp", combine="mul", last="exp"
):
    T = horizon
    S, A = R.shape
    f = np.exp(R) if factor == "exp" else R
    red = {
        "sum": lambda b: b.sum(axis=1),
        "max": lambda b: b.max(axis=1),
        "mean": lambda b: b.mean(axis=1),
    }[reduce]
    beta_sa, beta_s = np.empty((T, S, A)), np.empty((T, S))
    beta_sa[T - 1] = f if last == "exp" else np.ones((S, A))
    beta_s[T - 1] = red(beta_sa[T - 1])
    for t in range(T - 2, -1, -1):
        if expect == "p,sap":
            e = P @ beta_s[t + 1]
        elif expect == "s->sa":
            e = np.einsum("sap,s->sa", P, beta_s[t + 1])
        else:
            e = np.einsum("sap,s->pa", P, beta_s[t + 1])
        beta_sa[t] = f * e if combine == "mul" else f + e
        beta_s[t] = red(beta_sa[t])
    return beta_sa, beta_s


def backward_log_messages(
    P,
    R,
    horizon,
    alpha=1.0,
    *,
    soft="lse",
    backup="lse",
    alpha_in=("soft", "backup"),
    multiply_back=True,
    naive=False,
):
    T = horizon
    S, A = R.shape
    log_P = _log(P)
    a_soft = alpha if "soft" in alpha_in else 1.0
    a_back = alpha if "backup" in alpha_in else 1.0
    outer_soft = a_soft if multiply_back else 1.0
    outer_back = a_back if multiply_back else 1.0

    def v_of(q):
        if soft == "max":
            return q.max(axis=1)
        if naive:
            with np.errstate(over="ignore", divide="ignore"):
                return outer_soft * np.log(np.exp(q / a_soft).sum(axis=1))
        v = outer_soft * logsumexp(q / a_soft, axis=1)
        return v - alpha * np.log(A) if soft == "mean" else v

    def backup_of(v):
        if backup == "EV":
            return P @ v
        if backup == "s->sa":
            return outer_back * logsumexp(
                np.einsum("sap,s->sap", np.ones_like(P), v / a_back), b=P, axis=2
            )
        if backup == "s->pa":
            with np.errstate(divide="ignore"):
                return outer_back * logsumexp(log_P + v[:, None, None] / a_back, axis=0).T
        if naive:
            with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                return outer_back * np.log(P @ np.exp(v / a_back))
        return outer_back * logsumexp(log_P + v / a_back, axis=2)

    Q, V = np.empty((T, S, A)), np.empty((T, S))
    Q[T - 1] = R
    V[T - 1] = v_of(R)
    for t in range(T - 2, -1, -1):
        Q[t] = R + backup_of(V[t + 1])
        V[t] = v_of(Q[t])
    return Q, V


def soft_optimal_policy(Q, alpha=1.0, *, axis=-1):
    Q = np.asarray(Q, dtype=float)
    V = alpha * logsumexp(Q / alpha, axis=axis, keepdims=True)
    return np.exp((Q - V) / alpha)


def forward_log_messages(
    P,
    R,
    p0,
    horizon,
    *,
    reward=True,
    direction="forward",
    reduce="lse",
    prior=1.0,
    normalise=False,
    filtered=False,
    start="p0",
):
    S = R.shape[0]
    log_alpha = np.empty((horizon, S))
    log_alpha[0] = _log(p0) if start == "p0" else np.zeros(S)
    log_P = _log(P)
    r = (R if reward else 0 * R) + np.log(prior)
    for t in range(horizon - 1):
        if direction == "forward":
            scores = log_alpha[t][:, None, None] + r[:, :, None] + log_P
            axes = (0, 1)
        else:
            scores = log_P + r[:, :, None] + log_alpha[t][None, None, :]
            axes = (1, 2)
        log_alpha[t + 1] = (
            logsumexp(scores, axis=axes) if reduce == "lse" else scores.max(axis=axes)
        )
        if normalise:
            log_alpha[t + 1] -= logsumexp(log_alpha[t + 1])
    if filtered:
        log_alpha = log_alpha + logsumexp(R, axis=1)
    return log_alpha


def posterior_inference(
    P,
    R,
    p0,
    horizon,
    alpha=1.0,
    *,
    policy_axis=-1,
    route="alpha-beta",
    normalise=True,
    divide_V=True,
    forward_R="R/alpha",
):
    """alpha_t beta_t normalised (the student's other route), with knobs for student mistakes."""
    Q, V = backward_log_messages(P, R, horizon, alpha)
    pi = soft_optimal_policy(Q, alpha, axis=policy_axis)
    if route == "agent":  # the soft-optimal agent's marginals: the policy in the TRUE dynamics
        d = [np.asarray(p0, dtype=float)]
        for t in range(horizon - 1):
            d.append(np.einsum("s,sa,sap->p", d[-1], pi[t], P))
        return pi, np.array(d)
    r = {"R/alpha": R / alpha, "R": R, "slides": (R - logsumexp(R, 1, keepdims=True)) / alpha}
    log_post = forward_log_messages(P, r[forward_R], p0, horizon)
    log_post = log_post + (V / alpha if divide_V else V)
    if not normalise:
        return pi, np.exp(log_post)
    return pi, np.exp(log_post - logsumexp(log_post, axis=1, keepdims=True))


# ---------------------------------------------------------------- the references are right


def test_reference_messages_agree_with_each_other_and_brute_force():
    """log beta == (Q, V); pi = beta_sa / beta_s; sum_s alpha_t beta_t = Z for every t = brute force."""
    rng = np.random.default_rng(3)
    P, R = random_mdp(rng, 3, 2, reward_scale=0.5)
    p0 = np.array([0.5, 0.3, 0.2])
    T = 4
    beta_sa, beta_s = reference_backward_probabilities(P, R, T)
    Q, V = reference_backward_log_messages(P, R, T)
    np.testing.assert_allclose(np.log(beta_sa), Q, atol=1e-12)
    np.testing.assert_allclose(np.log(beta_s), V, atol=1e-12)
    np.testing.assert_allclose(beta_sa / beta_s[..., None], inference.soft_policy(Q, V), atol=1e-12)
    log_alpha = reference_forward_log_messages(P, R, p0, T)
    log_z = logsumexp(log_alpha + V, axis=1)
    # brute force: Z = sum over all trajectories of p0(s_0) prod_t P(s_t+1 | s_t, a_t) exp(r(s_t, a_t))
    S, A = R.shape
    grids = np.indices((S, A) * T).reshape(2 * T, -1).T
    s, a = grids[:, 0::2], grids[:, 1::2]
    weight = p0[s[:, 0]] * np.exp(R[s, a].sum(1))
    for t in range(T - 1):
        weight = weight * P[s[:, t], a[:, t], s[:, t + 1]]
    np.testing.assert_allclose(log_z, np.log(weight.sum()), atol=1e-12)


def test_forward_reference_is_finite_for_huge_rewards_and_unreachable_states():
    rng = np.random.default_rng(0)
    P, R = random_mdp(rng, 5, 3, reward_scale=1e3)
    P[:, :, 4] = 0.0  # state 4 can never be reached ...
    P[:, :, 0] += 1.0 - P.sum(2)  # ... (its mass goes to state 0)
    p0 = np.array([0.0, 0.5, 0.5, 0.0, 0.0])
    log_alpha = reference_forward_log_messages(P, R, p0, 6)
    assert np.isneginf(log_alpha[1:, 4]).all()
    reachable = np.isfinite(log_alpha[1:, :4])
    assert reachable.any() and not np.isnan(log_alpha).any()


def test_checks_accept_the_references_and_student_style_solutions(capsys):
    check_backward_probabilities(reference_backward_probabilities)
    check_backward_log_messages(reference_backward_log_messages)
    check_forward_log_messages(reference_forward_log_messages)
    check_posterior_inference(reference_posterior_inference)
    with np.errstate(over="raise", invalid="raise"):  # no overflow or NaN, not even in passing
        check_backward_probabilities(backward_probabilities)
        check_backward_log_messages(backward_log_messages)
        check_forward_log_messages(forward_log_messages)
        check_posterior_inference(posterior_inference)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 8
    for exercise, line in zip(["4.1", "4.2", "4.3", "4.4"] * 2, lines, strict=True):
        assert line.startswith(f"Exercise {exercise} passed: ")


def test_checks_accept_lists_and_torch_tensors(capsys):
    import torch

    check_posterior_inference(lambda *a: tuple(torch.as_tensor(x) for x in posterior_inference(*a)))
    check_backward_probabilities(
        lambda P, R, T: [x.tolist() for x in backward_probabilities(P, R, T)]
    )
    assert capsys.readouterr().out.count("passed") == 2


def test_checks_accept_float32_answers(capsys):
    """Compared with the reference on float32-rounded inputs (rows of P and p0 then sum to one
    only up to float32 round-off, which the references must accept), at float32 precision."""
    f32 = np.float32
    check_backward_probabilities(
        lambda *a: tuple(x.astype(f32) for x in backward_probabilities(*a))
    )
    check_backward_log_messages(lambda *a: tuple(x.astype(f32) for x in backward_log_messages(*a)))
    check_forward_log_messages(lambda *a: forward_log_messages(*a).astype(f32))
    check_posterior_inference(lambda *a: tuple(x.astype(f32) for x in posterior_inference(*a)))
    assert capsys.readouterr().out.count("passed") == 4


def test_success_lines_are_deterministic(capsys):
    for _ in range(2):
        check_backward_log_messages(reference_backward_log_messages)
    first, second = capsys.readouterr().out.splitlines()
    assert first == second


@pytest.mark.parametrize("exercise", sorted(CHECKS))
def test_not_attempted(exercise):
    def stub(*args, **kwargs):
        raise NotImplementedError(f"Exercise {exercise}: replace this line with your code")

    with pytest.raises(ExerciseNotAttempted, match=rf"Exercise {exercise} is not attempted yet"):
        CHECKS[exercise](stub)


# ---------------------------------------------------------------- Exercise 4.1


@pytest.mark.parametrize(
    "wrong, message",
    [
        (
            lambda P, R, T: backward_probabilities(P, R, T, reduce="max"),
            r"SUM over actions.*you took the max",
        ),
        (lambda P, R, T: backward_probabilities(P, R, T, reduce="mean"), r"averaged over actions"),
        (
            lambda P, R, T: backward_probabilities(P, R, T, expect="s->sa"),
            r"uses the value of the CURRENT state",
        ),
        (
            lambda P, R, T: backward_probabilities(P, R, T, expect="s->pa"),
            r"summed P over the current state s instead of the next state",
        ),
        (
            lambda P, R, T: backward_probabilities(P, R, T, factor="r"),
            r"multiply by np\.exp\(R\), not by R",
        ),
        (lambda P, R, T: backward_probabilities(P, R, T, combine="add"), r"the factors MULTIPLY"),
        (
            lambda P, R, T: backward_probabilities(P, R, T, last="ones"),
            r"beta_\{T-1\}\(s, a\) = p\(O_\{T-1\}",
        ),
        (lambda P, R, T: reference_backward_log_messages(P, R, T), r"returned log-space messages"),
        (lambda P, R, T: backward_probabilities(P, R, T)[::-1], r"wrong order"),
        (
            lambda P, R, T: tuple(
                np.concatenate([b, b[-1:]]) for b in backward_probabilities(P, R, T)
            ),
            r"one too many",
        ),
        (
            lambda P, R, T: (
                backward_probabilities(P, R, T)[0].transpose(0, 2, 1),
                backward_probabilities(P, R, T)[1],
            ),
            r"beta_sa has shape \(5, 3, 4\), expected \(5, 4, 3\)",
        ),
        (
            lambda P, R, T: tuple(b * np.nan for b in backward_probabilities(P, R, T)),
            r"non-finite.*NaN",
        ),
        (
            lambda P, R, T: backward_probabilities(P, R, T)[0],
            r"return the tuple \(beta_sa, beta_s\)",
        ),
        (lambda P, R, T: None, r"return the tuple \(beta_sa, beta_s\).*NoneType"),
    ],
    ids=[
        "max",
        "mean",
        "index-current",
        "index-transposed",
        "r-not-exp",
        "add",
        "last-ones",
        "log-space",
        "order",
        "T+1",
        "shape",
        "nan",
        "single",
        "none",
    ],
)
def test_backward_probabilities_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_backward_probabilities(wrong)


# ---------------------------------------------------------------- Exercise 4.2


def _bl(**knobs):
    return lambda P, R, T, alpha=1.0: backward_log_messages(P, R, T, alpha, **knobs)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_bl(soft="max"), r"SOFT max .*you took the hard max"),
        (
            lambda P, R, T, alpha=1.0: backward_log_messages(P, R, T, 1.0),
            r"ignore the temperature alpha",
        ),
        (_bl(alpha_in=("soft",)), r"temperature is missing in the next-state backup"),
        (_bl(alpha_in=("backup",)), r"temperature is missing in the soft max over actions"),
        (_bl(multiply_back=False), r"did not multiply the result by alpha"),
        (_bl(backup="EV"), r"you used Q = r \+ E_\{s'\}\[V_\{t\+1\}\(s'\)\]"),
        (_bl(backup="s->sa"), r"uses the value of the CURRENT state"),
        (_bl(backup="s->pa"), r"summed P over the current state s instead of the next state"),
        (_bl(soft="mean"), r"subtracted alpha \* log \|A\|"),
        (_bl(naive=True), r"contains NaN or inf where the reference is finite.*logsumexp"),
        (
            lambda P, R, T, alpha=1.0: tuple(
                np.exp(x) for x in reference_backward_log_messages(P, R, T, alpha)
            ),
            r"returned probabilities",
        ),
        (
            lambda P, R, T, alpha=1.0: reference_backward_log_messages(P, R, T, alpha)[::-1],
            r"wrong order",
        ),
        (
            lambda P, R, T, alpha=1.0: tuple(
                x[:-1] for x in reference_backward_log_messages(P, R, T, alpha)
            ),
            r"one too few",
        ),
        (
            lambda P, R, T, alpha=1.0: (
                reference_backward_log_messages(P, R, T, alpha)[0],
                reference_backward_log_messages(P, R, T, alpha)[1][..., None],
            ),
            r"V has shape \(5, 4, 1\), expected \(5, 4\).*keepdims",
        ),
    ],
    ids=[
        "max",
        "no-alpha",
        "no-alpha-in-backup",
        "no-alpha-in-softmax",
        "not-multiplied",
        "E[V]",
        "index-current",
        "index-transposed",
        "mean-prior",
        "naive-overflow",
        "probabilities",
        "order",
        "T-1",
        "keepdims",
    ],
)
def test_backward_log_messages_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_backward_log_messages(wrong)


def test_backward_log_messages_rejects_loops_that_forget_the_last_step_soft_max():
    """The first input shows only a wrong V[T-1]; the input with T=1 shows it is the hard max."""

    def wrong(P, R, T, alpha=1.0):
        Q, V = reference_backward_log_messages(P, R, T, alpha)
        V[-1] = R.max(1)
        return Q, V

    with pytest.raises(ExerciseError, match=r"you took the hard max over actions.*\(input: .*T=1 "):
        check_backward_log_messages(wrong)


def test_backward_log_messages_names_hard_value_iteration():
    """max_a Q AND the plain expectation E[V(s')]: the whole of value iteration, named as such."""
    with pytest.raises(
        ExerciseError, match=r"this is hard value iteration.*Backward Messages vs Value"
    ):
        check_backward_log_messages(_bl(soft="max", backup="EV"))


def test_slide_errata_are_named():
    """The action-prior parenthesis (4.2) and pi(s_t | a_t) for pi(a_t | s_t) (4.4)."""
    with pytest.raises(
        ExerciseError, match=r"subtracted alpha \* log \|A\|.*Slide erratum.*parenthesis"
    ):
        check_backward_log_messages(_bl(soft="mean"))
    with pytest.raises(
        ExerciseError, match=r"normalised over STATES.*Slide erratum.*pi\(s_t \| a_t\)"
    ):
        check_posterior_inference(lambda *a: posterior_inference(*a, policy_axis=-2))


# ---------------------------------------------------------------- Exercise 4.3


def _fl(**knobs):
    return lambda P, R, p0, T: forward_log_messages(P, R, p0, T, **knobs)


def _forward_in_probability_space(P, R, p0, T):
    alpha = np.empty((T, len(p0)))
    alpha[0] = p0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for t in range(T - 1):
            alpha[t + 1] = np.einsum("sap,sa->p", P, np.exp(R) * alpha[t][:, None])
        return np.log(alpha)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (
            _fl(reward=False),
            r"optimality factor p\(O_t \| s_t, a_t\) = exp\(r\(s_t, a_t\)\) is missing",
        ),
        (_fl(direction="backward"), r"propagated in the backward direction"),
        (_fl(reduce="max"), r"you took a max where the forward message SUMS"),
        (
            lambda P, R, p0, T: forward_log_messages(P, R, p0, T, prior=1.0 / R.shape[1]),
            r"normalised prior p\(a\|s\) = 1/\|A\|",
        ),
        (_fl(normalise=True), r"normalised alpha_t to sum to one"),
        (_fl(filtered=True), r"already includes the optimality factor of step t"),
        (_fl(start="uniform"), r"alpha_0 must be the initial distribution"),
        (lambda P, R, p0, T: np.exp(forward_log_messages(P, R, p0, T)), r"returned alpha_t itself"),
        (_forward_in_probability_space, r"contains NaN or inf where the reference is finite"),
        (
            lambda P, R, p0, T: np.concatenate([forward_log_messages(P, R, p0, T)] * 2)[: T + 1],
            r"one too many",
        ),
        (
            lambda P, R, p0, T: forward_log_messages(P, R, p0, T).T,
            r"log alpha has shape \(4, 5\), expected \(5, 4\)",
        ),
    ],
    ids=[
        "no-reward",
        "backward-direction",
        "max",
        "prior-1/A",
        "normalised",
        "filtered",
        "uniform-start",
        "probabilities",
        "probability-space-overflow",
        "T+1",
        "transposed",
    ],
)
def test_forward_log_messages_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_forward_log_messages(wrong)


def _slide_forward(P, R, p0, T):
    """The slides' forward message, literally: alpha_t(s') = sum_{s,a} p(s'|s,a) p(a|s,O) alpha_{t-1}(s)
    with the action posterior p(a|s,O) = exp(r(s,a)) / sum_a' exp(r(s,a')), normalised per state."""
    log_post = R - logsumexp(R, axis=1, keepdims=True)
    log_alpha = np.empty((T, len(p0)))
    log_alpha[0] = _log(p0)
    for t in range(T - 1):
        log_alpha[t + 1] = logsumexp(
            log_alpha[t][:, None, None] + log_post[:, :, None] + _log(P), axis=(0, 1)
        )
    return log_alpha


def test_forward_log_messages_names_the_slides_normalised_action_posterior():
    with pytest.raises(ExerciseError, match=r"lacks the factor p\(O_t \| s_t\).*Slide erratum"):
        check_forward_log_messages(_slide_forward)


def test_feedback_names_the_input():
    with pytest.raises(
        ExerciseError, match=r"\(input: a stochastic MDP with S=4, A=3, T=5, alpha=1\)"
    ):
        check_backward_log_messages(_bl(soft="max"))


def test_student_crash_keeps_the_cause():
    def crashes(P, R, horizon):
        return np.einsum("sap,p->sa", P, R)  # R has the wrong shape for this contraction

    with pytest.raises(ExerciseError, match=r"`crashes` raised ValueError") as info:
        check_backward_probabilities(crashes)
    assert isinstance(info.value.__cause__, ValueError)


# ---------------------------------------------------------------- Exercise 4.4


def _pi(**knobs):
    return lambda P, R, p0, T, alpha=1.0: posterior_inference(P, R, p0, T, alpha, **knobs)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (
            _pi(route="agent"),
            r"pushed the policy forward with the TRUE dynamics p\(s' \| s, a\) from p0",
        ),
        (_pi(normalise=False), r"without normalising it"),
        (_pi(divide_V=False), r"V_t = alpha \* log beta_t"),
        (_pi(forward_R="R"), r"forward messages ignore the temperature"),
        (_pi(forward_R="slides"), r"lack the factor p\(O_t \| s_t\).*Slide erratum"),
        (_pi(policy_axis=-2), r"normalised over STATES.*Slide erratum.*pi\(s_t \| a_t\)"),
        (
            lambda P, R, p0, T, alpha=1.0: posterior_inference(P, R, p0, T, 1.0),
            r"ignored the temperature everywhere",
        ),
        (
            lambda P, R, p0, T, alpha=1.0: posterior_inference(P, R, p0, T, alpha)[::-1],
            r"wrong order",
        ),
        (
            lambda P, R, p0, T, alpha=1.0: posterior_inference(P, R, p0, T, alpha)[1],
            r"return the tuple \(policy pi, marginals",
        ),
    ],
    ids=[
        "agent",
        "unnormalised",
        "V-not-divided",
        "forward-no-alpha",
        "slides-forward",
        "pi(s|a)",
        "alpha-1",
        "order",
        "single",
    ],
)
def test_posterior_inference_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_posterior_inference(wrong)


def test_posterior_inference_reference_matches_the_forward_pass_through_posterior_dynamics():
    """alpha_t beta_t normalised = p(s_0 | O) pushed through pi and p(s' | s, a, O)."""
    rng = np.random.default_rng(5)
    P, R = random_mdp(rng, 5, 3)
    p0 = rng.dirichlet(np.ones(5))
    for alpha in (0.3, 1.0, 3.0):
        pi, marginals = reference_posterior_inference(P, R, p0, 6, alpha)
        _, V = inference.backward_messages(P, R, 6, alpha=alpha, optimistic=True)
        d = p0 * np.exp(V[0] / alpha)
        d /= d.sum()
        for t in range(6):
            np.testing.assert_allclose(marginals[t], d, atol=1e-12)
            if t < 5:
                tilted = P * np.exp(V[t + 1] / alpha)
                d = np.einsum("s,sa,sap->p", d, pi[t], tilted / tilted.sum(2, keepdims=True))


# ---------------------------------------------------------------- Exercise 4.5


def test_horizon_question(capsys):
    check_horizon_question("c")
    check_horizon_question(" (C) ")
    assert capsys.readouterr().out.count("Exercise 4.5 passed") == 2
    with pytest.raises(ExerciseError, match=r"the horizon decides"):
        check_horizon_question("a")
    with pytest.raises(ExerciseError, match=r"More steps left make the goal worth more"):
        check_horizon_question("b")
    with pytest.raises(ExerciseError, match=r"as a string"):
        check_horizon_question(3)


def test_horizon_question_answer_is_what_the_notebook_runs():
    """alpha = 2: at the goal at t = 13 with probability ~0.09 for T = 14, ~0.996 for T = 40."""
    layout = ["........", ".######.", "S......G", ".TTTTTT.", "........"]
    grid = gridworld(layout, rewards={"G": 0.0, "T": -5.0}, step_reward=-2.0)
    goal = np.array([name.startswith("G") for name in grid.state_names])
    at_goal = {
        T: reference_posterior_inference(grid.P, grid.R, grid.p0, T, 2.0)[1][13, goal].sum()
        for T in (14, 40)
    }
    assert at_goal[14] < 0.1 and at_goal[40] > 0.99


# ---------------------------------------------------------------- the chapter's claims on a gridworld


def test_alpha_beta_equals_forward_policy_only_for_deterministic_dynamics():
    """p(s_t | O) from alpha * beta equals the soft policy's state marginals iff the agent cannot slip."""
    layout = ["S...", ".#..", "...G"]
    gaps = {}
    for slip in (0.0, 0.3):
        mdp = gridworld(layout, rewards={"G": 0.0}, step_reward=-1.0, slip=slip)
        T = 8
        Q, V = inference.backward_messages(mdp.P, mdp.R, T, optimistic=True)
        log_post = reference_forward_log_messages(mdp.P, mdp.R, mdp.p0, T) + V
        post = np.exp(log_post - logsumexp(log_post, axis=1, keepdims=True))
        D = inference.forward_messages(mdp.P, inference.soft_policy(Q, V), mdp.p0, T)
        gaps[slip] = np.abs(post - D).max()
    assert gaps[0.0] < 1e-12
    assert gaps[0.3] > 1e-3


# ---------------------------------------------------------------- the notebook's widgets, without a browser


def test_notebook_widgets_redraw_for_every_setting():
    """Run the solution notebook in a kernel, then move each widget's controls and redraw."""
    from pathlib import Path

    import nbformat
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell

    path = Path(__file__).resolve().parent.parent / "solutions" / "04_control_as_inference.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(
        new_code_cell("""
import ipywidgets as widgets
assert isinstance(time_widget, widgets.interactive) and isinstance(temperature_widget, widgets.interactive)
t_slider, dynamics = time_widget.kwargs_widgets
assert (t_slider.min, t_slider.max) == (0, T - 1)
for t in (0, 6, T - 1):
    for choice in dynamics.options:
        t_slider.value, dynamics.value = t, choice
        assert time_widget.kwargs == {"t": t, "dynamics": choice}
        time_widget.f(**time_widget.kwargs)          # raises here if a redraw fails
        plt.close("all")
(alpha_slider,) = temperature_widget.kwargs_widgets
for value in (alpha_slider.min, 1.0, alpha_slider.max):   # the exponents of a FloatLogSlider
    alpha_slider.value = 10.0 ** value
    temperature_widget.f(**temperature_widget.kwargs)
    plt.close("all")
print("widgets ok")
""")
    )
    NotebookClient(
        nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    assert "widgets ok" in "".join(o.get("text", "") for o in nb.cells[-1].outputs)
