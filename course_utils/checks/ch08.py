"""Checks for chapter 08 (MaxEnt inverse RL).

Exercise 8.1 ``state_action_visitation(P, R, p0, horizon, alpha=1.0)``: mu_t(s, a) = D_t(s) pi_t(a|s);
8.2 ``irl_gradient(theta, P, features, expert_states, p0, alpha=1.0)``: expert feature counts minus
the model's, over alpha; 8.3 ``maxent_irl_loop(P, features, expert_states, p0, alpha=1.0, lr=0.01,
n_iters=200, tol=1e-4)``: gradient ascent from theta = 0 with early stopping. The references are
in :mod:`course_utils.irl`. Each check runs the student's function on random MDPs with stochastic
and deterministic dynamics, non-uniform start distributions and several temperatures (never only
the notebook's gridworld) and, when the answer is wrong, tries the typical mistakes to name them.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .. import irl
from ..inference import backward_messages, soft_policy
from ..mdp import gridworld
from . import (
    Case,
    ExerciseError,
    ExerciseNotAttempted,
    compare_with_reference,
    first_matching_mistake,
    passed,
)

__all__ = [
    "check_visitation",
    "check_irl_gradient",
    "check_maxent_irl_loop",
    "reference_state_action_visitation",
    "reference_irl_gradient",
    "reference_maxent_irl_loop",
]


# ----------------------------------------------------------------------------- references


def reference_state_action_visitation(P, R, p0, horizon, alpha=1.0):
    """Exercise 8.1: mu_t(s, a) = D_t(s) pi_t(a|s), shape (T, S, A) (variational messages)."""
    return irl.state_action_visitation(P, R, p0, horizon, alpha=alpha)


def reference_irl_gradient(theta, P, features, expert_states, p0, alpha=1.0):
    """Exercise 8.2: (mean_i sum_t f(s_it) - sum_t sum_{s,a} mu_t(s,a) f(s)) / alpha, shape (K,)."""
    return irl.irl_gradient(theta, P, features, expert_states, p0, alpha)


def reference_maxent_irl_loop(P, features, expert_states, p0, alpha=1.0, lr=0.01, n_iters=200, tol=1e-4):
    """Exercise 8.3: theta = 0; up to n_iters times: stop if max|grad| < tol, else theta += lr * grad."""
    theta = np.zeros(np.shape(features)[1])
    for _ in range(int(n_iters)):
        grad = irl.irl_gradient(theta, P, features, expert_states, p0, alpha)
        if np.max(np.abs(grad)) < tol:
            break
        theta = theta + lr * grad
    return theta


# ----------------------------------------------------------------------------- helpers


def _propagate(P: np.ndarray, pis: np.ndarray, d0: np.ndarray,
               out_pis: np.ndarray | None = None) -> np.ndarray:
    """mu (T, S, A) of acting with the time-indexed pis (T, S, A) from state distribution d0.

    With ``out_pis``, the state marginals D_t come from ``pis`` but mu_t = D_t * out_pis[t]
    (a policy mistake made only in the forward recursion).
    """
    T = pis.shape[0]
    D = np.empty((T, P.shape[0]))
    D[0] = d0
    for t in range(T - 1):
        D[t + 1] = np.einsum("s,sa,sap->p", D[t], pis[t], P)
    return D[:, :, None] * (pis if out_pis is None else out_pis)


def _policy(P, R, T, alpha, optimistic=False) -> np.ndarray:
    Q, V = backward_messages(P, R, T, alpha=alpha, optimistic=optimistic)
    return soft_policy(Q, V, alpha)


def _random_mdp(rng: np.random.Generator, S: int, A: int, deterministic: bool = False) -> np.ndarray:
    if deterministic:
        P = np.zeros((S, A, S))
        P[np.arange(S)[:, None], np.arange(A)[None, :], rng.integers(S, size=(S, A))] = 1.0
        return P
    return rng.dirichlet(np.full(S, 0.7), size=(S, A))


_SMALL_GRID = gridworld(["S.G", ".#.", "T.."], rewards={"G": 1.0, "T": -1.0}, step_reward=-0.1, slip=0.2)


def _compare_with_dependency(exercise: str, student_fn: Callable, reference_fn: Callable,
                             cases: list[Case], *, name: str, diagnose, depends: str) -> int:
    """compare_with_reference, adding to a generic mismatch that the function builds on ``depends``.

    A mismatch that ``diagnose`` explained, or a crash of the student's code, is reported as is.
    """
    __tracebackhide__ = True
    explained: list[str] = []

    def recording(actual, expected, case):
        message = diagnose(actual, expected, case)
        if message:
            explained.append(message)
        return message

    try:
        return compare_with_reference(exercise, student_fn, reference_fn, cases, name=name,
                                      rtol=1e-6, atol=1e-9, diagnose=recording)
    except ExerciseNotAttempted:
        raise
    except ExerciseError as error:
        if explained or error.__cause__ is not None:
            raise
        raise ExerciseError(
            f"{error} Note: `{getattr(student_fn, '__name__', 'your function')}` builds on your "
            f"{depends}; if that exercise's check did not pass, fix it first."
        ) from None


# ----------------------------------------------------------------------------- Exercise 8.1


def _visitation_cases(rng: np.random.Generator) -> list[Case]:
    def case(name, P, R, p0, T, alpha):
        return Case(name, (P, R, p0, T), {"alpha": alpha})

    one_hot = np.zeros(6)
    one_hot[4] = 1.0
    S_grid, A_grid = _SMALL_GRID.n_states, _SMALL_GRID.n_actions
    return [
        case("4 states, 2 actions, stochastic dynamics, T=5, alpha=1",
             _random_mdp(rng, 4, 2), rng.normal(size=(4, 2)), rng.dirichlet(np.ones(4)), 5, 1.0),
        case("6 states, 3 actions, p0 on state 4 only, T=7, alpha=0.5",
             _random_mdp(rng, 6, 3), rng.normal(size=(6, 3)), one_hot, 7, 0.5),
        case("5 states, 3 actions, deterministic dynamics, T=6, alpha=2",
             _random_mdp(rng, 5, 3, deterministic=True), rng.normal(size=(5, 3)),
             rng.dirichlet(np.ones(5)), 6, 2.0),
        case("3 states, 2 actions, horizon T=1", _random_mdp(rng, 3, 2), rng.normal(size=(3, 2)),
             rng.dirichlet(np.ones(3)), 1, 1.0),
        case("4 states, 2 actions, rewards of size 1000, T=4, alpha=1",
             _random_mdp(rng, 4, 2), 1000 * rng.normal(size=(4, 2)), rng.dirichlet(np.ones(4)), 4, 1.0),
        case("5 states, 2 actions, alpha=1e-3 (almost greedy), T=5",
             _random_mdp(rng, 5, 2), rng.normal(size=(5, 2)), rng.dirichlet(np.ones(5)), 5, 1e-3),
        case(f"a 3x3 gridworld with slip 0.2 ({S_grid} states, {A_grid} actions), T=6, alpha=0.7",
             _SMALL_GRID.P, _SMALL_GRID.R + rng.normal(scale=0.3, size=(S_grid, A_grid)),
             _SMALL_GRID.p0, 6, 0.7),
    ]


def _diagnose_visitation(actual: np.ndarray, expected: np.ndarray, case: Case) -> str | None:
    P, R, p0, T = case.args
    alpha = case.kwargs["alpha"]
    S, A = R.shape
    if actual.shape != expected.shape:
        if actual.shape == (T, S):
            return ("you returned state marginals D_t(s), shape (T, S); the visitation is over states "
                    "and actions: mu_t(s, a) = D_t(s) * pi_t(a|s), shape (T, S, A).")
        if actual.shape == (S, A):
            return ("you returned one (S, A) table; keep one distribution per time step: "
                    "shape (T, S, A).")
        return None
    if not np.isfinite(actual).all():
        bad = int((~np.isfinite(actual)).sum())
        hint = (" exp(Q / alpha) overflows for rewards of size 1000: compute the policy as "
                "exp((Q_t - V_t) / alpha), which is at most 1." if np.abs(R).max() > 100 or alpha < 0.01
                else " Look for 0 * inf or inf - inf in the policy or the forward recursion.")
        return f"your visitation contains {bad} NaN or inf value(s).{hint}"
    sums = actual.sum(axis=(1, 2))
    if not np.allclose(sums, 1.0, atol=1e-6):
        if np.allclose(sums, float(A) ** np.arange(T), rtol=1e-6):
            return ("each mu_t should sum to 1 but yours sums to A^t: the forward recursion must weight "
                    "the transitions by the policy, D_{t+1}(s') = sum_{s,a} D_t(s) pi_t(a|s) P(s'|s,a).")
        if np.isclose(actual.sum(), 1.0):
            return ("you normalised over all time steps together; each time step is a distribution "
                    "of its own: sum_{s,a} mu_t(s, a) = 1 for every t.")
        shown = np.round(sums, 4).tolist()
        return (f"each mu_t must be a distribution over (s, a): sum_(s,a) mu_t(s, a) = 1 for every t, "
                f"yours sums to {shown[:8]}{' ...' if T > 8 else ''} over t. Is your policy normalised "
                "(pi_t = exp((Q_t - V_t) / alpha)) and does D_0 = p0 sum to one?")
    start = actual[0].sum(axis=1)
    if not np.allclose(start, p0, atol=1e-8):
        if np.allclose(start, 1.0 / S, atol=1e-8):
            return ("your visitation starts from the uniform distribution; the initial distribution "
                    "matters: D_0 = p0, the given start distribution.")
        pi = _policy(P, R, T, alpha)
        if np.allclose(start, np.einsum("s,sa,sap->p", p0, pi[0], P), atol=1e-8):
            return ("your D_0 is p0 already moved one step by the dynamics: D_0 = p0 itself, and "
                    "D_{t+1} is computed from D_t only after step t is recorded.")
        return ("the state marginal of your mu_0, sum_a mu_0(s, a), should equal the initial "
                f"distribution p0; yours is {np.round(start, 4).tolist()}.")
    pi = _policy(P, R, T, alpha)
    shift_next = np.concatenate([pi[1:], pi[-1:]])
    shift_prev = np.concatenate([pi[:1], pi[:-1]])
    wrong_policies = [
        ("you used the first step's policy pi_0 at every step; the soft-optimal policy of a finite "
         "horizon depends on time: use pi_t = exp((Q[t] - V[t]) / alpha) at step t.",
         lambda: np.broadcast_to(pi[0], pi.shape)),
        ("you used the last step's policy pi_{T-1} at every step; use pi_t = exp((Q[t] - V[t]) / alpha) "
         "at step t.",
         lambda: np.broadcast_to(pi[-1], pi.shape)),
        ("the time index of your policy is reversed: backward_messages returns Q[t], V[t] already "
         "indexed by the time step t (computed backwards, stored forwards), so use pi[t] at step t.",
         lambda: pi[::-1]),
        ("your policy is one step ahead (pi_{t+1} at step t): use pi_t = exp((Q[t] - V[t]) / alpha).",
         lambda: shift_next),
        ("your policy is one step behind (pi_{t-1} at step t): use pi_t = exp((Q[t] - V[t]) / alpha).",
         lambda: shift_prev),
        ("you used the optimistic (exact) backward messages; this chapter's model of the expert uses "
         "the variational messages, backward_messages(..., optimistic=False).",
         lambda: _policy(P, R, T, alpha, optimistic=True)),
        ("your answer ignores the temperature: pass alpha to backward_messages and divide by it in "
         "pi_t = exp((Q_t - V_t) / alpha).",
         lambda: _policy(P, R, T, 1.0)),
    ]
    # The wrong policy used everywhere, then only in the forward recursion D_{t+1} (with the
    # right pi_t in mu_t = D_t pi_t).
    mistakes = [(message, lambda wrong=wrong: _propagate(P, wrong(), p0)) for message, wrong in wrong_policies]
    mistakes += [
        (f"in the forward recursion D_{{t+1}}(s') = sum_(s,a) D_t(s) pi_t(a|s) P(s'|s,a): {message}",
         lambda wrong=wrong: _propagate(P, wrong(), p0, pi))
        for message, wrong in wrong_policies
    ]
    return first_matching_mistake(actual, mistakes)


def check_visitation(state_action_visitation: Callable, seed: int = 0) -> None:
    """Exercise 8.1: ``state_action_visitation(P, R, p0, horizon, alpha=1.0)`` -> mu (T, S, A)."""
    __tracebackhide__ = True
    cases = _visitation_cases(np.random.default_rng(seed))
    n = compare_with_reference(
        "8.1", state_action_visitation, reference_state_action_visitation, cases,
        name="visitation mu", rtol=1e-6, atol=1e-9, diagnose=_diagnose_visitation,
    )
    passed("8.1", f"mu_t(s, a) matches the reference on {n} MDPs (stochastic and deterministic "
                  "dynamics, T from 1 to 7, alpha from 1e-3 to 2, rewards up to 1e3).")


# ----------------------------------------------------------------------------- Exercise 8.2


def _demos(rng: np.random.Generator, P: np.ndarray, p0: np.ndarray, N: int, T: int) -> np.ndarray:
    """States of N random-walk demonstrations of T steps (any integer (N, T) array would do)."""
    S, A, _ = P.shape
    states = np.empty((N, T), dtype=np.int64)
    states[:, 0] = rng.choice(S, size=N, p=p0)
    for t in range(T - 1):
        actions = rng.integers(A, size=N)
        states[:, t + 1] = [rng.choice(S, p=P[s, a]) for s, a in zip(states[:, t], actions)]
    return states


def _gradient_cases(rng: np.random.Generator) -> list[Case]:
    def case(name, P, K, N, T, alpha, p0=None, features=None):
        S = P.shape[0]
        p0 = rng.dirichlet(np.ones(S)) if p0 is None else p0
        features = rng.normal(size=(S, K)) if features is None else features
        theta = rng.normal(size=features.shape[1])
        return Case(name, (theta, P, features, _demos(rng, P, p0, N, T), p0), {"alpha": alpha})

    grid = _SMALL_GRID
    return [
        case("5 states, 2 actions, 3 features, 8 demos of T=4, alpha=1", _random_mdp(rng, 5, 2), 3, 8, 4, 1.0),
        case("6 states, 3 actions, 2 features, 5 demos of T=6, alpha=0.5", _random_mdp(rng, 6, 3), 2, 5, 6, 0.5),
        case("4 states, 2 actions, deterministic dynamics, 4 features, 10 demos of T=5, alpha=2",
             _random_mdp(rng, 4, 2, deterministic=True), 4, 10, 5, 2.0),
        case("3 states, 2 actions, 1 feature, a single demo of T=3, alpha=1", _random_mdp(rng, 3, 2), 1, 1, 3, 1.0),
        case(f"the 3x3 gridworld with slip ({grid.n_states} states) and its cell-type features, "
             "12 demos of T=6, alpha=0.8", grid.P, 0, 12, 6, 0.8, p0=grid.p0, features=grid.features),
    ]


def _diagnose_gradient(actual: np.ndarray, expected: np.ndarray, case: Case) -> str | None:
    _, P, features, states, p0 = case.args
    alpha = case.kwargs["alpha"]
    T = states.shape[1]
    if actual.shape != expected.shape or not np.isfinite(actual).all():
        return None
    S = P.shape[0]
    expert = features[states].sum(axis=1).mean(axis=0)
    model = expert - alpha * expected
    mistakes = [
        ("your gradient has the wrong sign: d L / d theta = (expert feature counts - model feature "
         "counts) / alpha, so that gradient *ascent* moves the model towards the expert.",
         lambda: -expected),
        ("you forgot to divide by the temperature alpha: L = mean_i r(tau_i) / alpha - log Z, so "
         "grad L = (expert - model) / alpha.",
         lambda: expected * alpha),
        ("you divided by alpha twice (or multiplied where you should divide).",
         lambda: expected / alpha),
        ("you averaged the feature counts over the T time steps; both counts are sums over "
         "t = 0 .. T-1 (and the expert's is averaged over demonstrations only).",
         lambda: expected / T),
        ("you summed the expert's feature counts over the demonstrations; average them over the N "
         "demonstrations: mean_i sum_t f(s_it).",
         lambda: (states.shape[0] * expert - model) / alpha),
        ("you used the expert's states for both terms or left out the model's feature counts; the "
         "second term is sum_t sum_(s,a) mu_t(s, a) f(s) of the soft-optimal model for r = features @ theta.",
         lambda: expert / alpha),
        ("your model term uses the visitation at theta = 0 (the uniform-ish policy); compute mu for "
         "the current reward r = features @ theta.",
         lambda: (expert - np.einsum("tsa,sk->k", irl.state_action_visitation(
             P, np.zeros(S), p0, T, alpha=alpha), features)) / alpha),
    ]
    return first_matching_mistake(actual, mistakes)


def check_irl_gradient(irl_gradient: Callable, seed: int = 0) -> None:
    """Exercise 8.2: ``irl_gradient(theta, P, features, expert_states, p0, alpha=1.0)`` -> (K,)."""
    __tracebackhide__ = True
    cases = _gradient_cases(np.random.default_rng(seed))
    n = _compare_with_dependency("8.2", irl_gradient, reference_irl_gradient, cases, name="gradient",
                                 diagnose=_diagnose_gradient,
                                 depends="state_action_visitation (Exercise 8.1)")
    passed("8.2", f"the MaxEnt IRL gradient matches the reference on {n} MDPs with their demonstrations "
                  "(K from 1 to 4, alpha from 0.5 to 2).")


# ----------------------------------------------------------------------------- Exercise 8.3


def _loop_cases(rng: np.random.Generator) -> list[Case]:
    def case(name, P, features, p0, N, T, alpha, lr, n_iters, tol):
        return Case(name, (P, features, _demos(rng, P, p0, N, T), p0),
                    {"alpha": alpha, "lr": lr, "n_iters": n_iters, "tol": tol})

    grid = _SMALL_GRID
    P1, P2 = _random_mdp(rng, 5, 2), _random_mdp(rng, 4, 3, deterministic=True)
    return [
        case("5 states, 2 actions, 2 features, 10 demos of T=4, lr=0.05, 25 iterations",
             P1, rng.normal(size=(5, 2)), rng.dirichlet(np.ones(5)), 10, 4, 1.0, 0.05, 25, 1e-8),
        case("4 states, deterministic dynamics, 3 features, alpha=0.5, lr=0.01, 20 iterations",
             P2, rng.normal(size=(4, 3)), rng.dirichlet(np.ones(4)), 6, 5, 0.5, 0.01, 20, 1e-8),
        case(f"the 3x3 gridworld with slip ({grid.n_states} states), 20 demos of T=6, lr=0.02, "
             "40 iterations", grid.P, grid.features, grid.p0, 20, 6, 1.0, 0.02, 40, 1e-8),
        case("5 states, 2 actions, tol=0.5 (stops early), lr=0.05, up to 200 iterations",
             P1, rng.normal(size=(5, 2)), rng.dirichlet(np.ones(5)), 10, 4, 1.0, 0.05, 200, 0.5),
    ]


def _loop_variant(case: Case, *, sign=1.0, extra=0, early=True, grad_at_zero=False) -> np.ndarray:
    P, features, states, p0 = case.args
    kw = case.kwargs
    theta = np.zeros(features.shape[1])
    for _ in range(max(int(kw["n_iters"]) + extra, 0)):
        grad = irl.irl_gradient(np.zeros_like(theta) if grad_at_zero else theta,
                                P, features, states, p0, kw["alpha"])
        if early and np.max(np.abs(grad)) < kw["tol"]:
            break
        theta = theta + sign * kw["lr"] * grad
    return theta


def _diagnose_loop(actual: np.ndarray, expected: np.ndarray, case: Case) -> str | None:
    if actual.shape != expected.shape or not np.isfinite(actual).all():
        return None
    return first_matching_mistake(actual, [
        ("you stepped *down* the gradient (theta -= lr * grad); MaxEnt IRL maximises the "
         "log-likelihood: theta = theta + lr * grad.", lambda: _loop_variant(case, sign=-1.0)),
        ("you did not stop early: stop as soon as max_k |grad_k| < tol (before taking the step).",
         lambda: _loop_variant(case, early=False)),
        ("you took one gradient step too many: run at most n_iters iterations.",
         lambda: _loop_variant(case, extra=1)),
        ("you took one gradient step too few: run up to n_iters iterations.",
         lambda: _loop_variant(case, extra=-1)),
        ("you evaluated the gradient at theta = 0 every time; evaluate it at the current theta.",
         lambda: _loop_variant(case, grad_at_zero=True)),
    ])


def check_maxent_irl_loop(maxent_irl_loop: Callable, seed: int = 0) -> None:
    """Exercise 8.3: ``maxent_irl_loop(P, features, expert_states, p0, alpha, lr, n_iters, tol)`` -> theta."""
    __tracebackhide__ = True
    cases = _loop_cases(np.random.default_rng(seed))
    n = _compare_with_dependency("8.3", maxent_irl_loop, reference_maxent_irl_loop, cases, name="theta",
                                 diagnose=_diagnose_loop, depends="irl_gradient (Exercise 8.2)")
    passed("8.3", f"your MaxEnt IRL loop reproduces the reference's gradient-ascent iterates on {n} "
                  "problems, early stopping included.")
