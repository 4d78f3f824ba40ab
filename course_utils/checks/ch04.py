"""Checks for chapter 04 (control as inference): backward and forward messages, soft policy.

Exercise 4.1 ``backward_probabilities(P, R, horizon) -> (beta_sa, beta_s)``, the backward
messages in probability space; 4.2 ``backward_log_messages(P, R, horizon, alpha=1.0) -> (Q, V)``,
the same messages in log space at temperature alpha; 4.3 ``soft_optimal_policy(Q, alpha=1.0)``,
pi = exp((Q - V) / alpha); 4.4 ``forward_log_messages(P, R, p0, horizon) -> log_alpha``, the
forward messages log alpha_t(s_t) = log p(s_t, O_{0:t-1}).

Conventions (the tabular contract of :mod:`course_utils.inference`): ``P[s, a, s']`` (S, A, S),
``R[s, a]`` (S, A), time runs t = 0 .. T-1, and the uniform action prior is folded in as
p(a|s) = 1, so that beta_t(s) = sum_a beta_t(s, a) and V = alpha * logsumexp(Q / alpha).

Every check runs the student's function on several random MDPs (deterministic and stochastic,
different S, A and T, alpha from 1e-3 to 2, rewards up to 1e3 for the log-space exercises) and,
when an answer is wrong, recomputes the typical mistakes (hard max instead of logsumexp, a
missing temperature, the expectation over the wrong index of P, normalising over the wrong
axis, ...) to say which one it is.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .. import inference
from ..mdp import gridworld, validate_distribution, validate_transitions
from . import (
    Case,
    ExerciseError,
    ExerciseNotAttempted,
    as_array,
    assert_close,
    call_student,
    compare_with_reference,
    passed,
)

__all__ = [
    "check_backward_probabilities",
    "check_backward_log_messages",
    "check_soft_optimal_policy",
    "check_forward_log_messages",
    "reference_backward_probabilities",
    "reference_backward_log_messages",
    "reference_soft_optimal_policy",
    "reference_forward_log_messages",
    "random_mdp",
]

Mistakes = Sequence[tuple[str, Callable[[], Any]]]


# ----------------------------------------------------------------------- references


def reference_backward_probabilities(P: np.ndarray, R: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """beta_t(s, a) (T, S, A) and beta_t(s) (T, S): exp of the exact (optimistic) log messages."""
    Q, V = inference.backward_messages(P, R, horizon, alpha=1.0, optimistic=True)
    return np.exp(Q), np.exp(V)


def reference_backward_log_messages(
    P: np.ndarray, R: np.ndarray, horizon: int, alpha: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Q_t = log beta_t(s, a) and V_t = log beta_t(s) at temperature alpha (exact PGM messages)."""
    return inference.backward_messages(P, R, horizon, alpha=alpha, optimistic=True)


def reference_soft_optimal_policy(Q: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """pi(a|s) = exp((Q - V) / alpha) with V = alpha * logsumexp(Q / alpha) over the last axis."""
    Q = np.asarray(Q, dtype=np.float64)
    return inference.soft_policy(Q, inference.soft_max(Q, alpha), alpha)


def _log_matmul(log_w: np.ndarray, P: np.ndarray) -> np.ndarray:
    """log sum_{s,a} P[s, a, s'] exp(log_w[s, a]), shape (S,), without overflow or underflow.

    The maximum is taken per next state s' over the pairs (s, a) that can reach it, so a state
    reachable only from very unlikely pairs keeps a finite value; an unreachable one gets -inf.
    """
    scores = np.where(P > 0, log_w[:, :, None], -np.inf)  # (S, A, S')
    m = scores.max(axis=(0, 1))
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return m + np.log(np.sum(P * np.exp(scores - m), axis=(0, 1)))


def reference_forward_log_messages(P: np.ndarray, R: np.ndarray, p0: np.ndarray, horizon: int) -> np.ndarray:
    """log alpha_t(s) = log p(s_t = s, O_{0:t-1}), shape (T, S), with p(a|s) = 1 and p(O|s,a) = exp(r).

    alpha_0 = p0 and alpha_{t+1}(s') = sum_{s,a} p(s'|s,a) exp(r(s,a)) alpha_t(s) (slides, "Forward
    messages"; here the optimality factor of step t is kept with the state, so that
    p(s_t | O_{0:T-1}) is proportional to alpha_t(s_t) beta_t(s_t)).
    """
    P = validate_transitions(P)
    S = P.shape[0]
    R = np.asarray(R, dtype=np.float64)
    p0 = validate_distribution(p0, S)
    T = int(horizon)
    log_alpha = np.empty((T, S))
    with np.errstate(divide="ignore"):
        log_alpha[0] = np.log(p0)
    for t in range(T - 1):
        log_alpha[t + 1] = _log_matmul(log_alpha[t][:, None] + R, P)
    return log_alpha


def random_mdp(
    rng: np.random.Generator,
    n_states: int,
    n_actions: int,
    *,
    deterministic: bool = False,
    reward_scale: float = 1.0,
    reward_loc: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """A random MDP: transitions P (S, A, S) and rewards R (S, A) = loc + scale * N(0, 1).

    Stochastic transitions put their mass on 1 to 3 random next states (so P has zeros, as
    gridworlds do); deterministic ones on exactly one.
    """
    S, A = n_states, n_actions
    P = np.zeros((S, A, S))
    for s in range(S):  # built once per case; the exercises themselves are vectorised
        for a in range(A):
            k = 1 if deterministic else int(rng.integers(1, min(3, S) + 1))
            targets = rng.choice(S, size=k, replace=False)
            P[s, a, targets] = rng.dirichlet(np.ones(k))
    R = reward_loc + reward_scale * rng.normal(size=(S, A))
    return P, R


# ----------------------------------------------------------------------- shared helpers


def _close(actual: np.ndarray, candidate: np.ndarray, rtol: float, atol: float) -> bool:
    """Same shape and equal within tolerance; NaN matches NaN and equal infinities match."""
    candidate = np.asarray(candidate, dtype=float)
    actual = np.asarray(actual, dtype=float)
    if candidate.shape != actual.shape or not np.isfinite(candidate).any():
        return False
    with np.errstate(all="ignore"):
        return bool(np.allclose(actual, candidate, rtol=rtol, atol=atol, equal_nan=True))


def _first_mistake(
    actual: tuple[np.ndarray, ...], mistakes: Mistakes, rtol: float = 1e-6, atol: float = 1e-8
) -> str | None:
    """The message of the first typical mistake whose outputs all equal ``actual``."""
    for message, make in mistakes:
        try:
            with np.errstate(all="ignore"):
                candidate = make()
        except Exception:  # a mistake that cannot be computed on this input (e.g. S != A)
            continue
        if not isinstance(candidate, tuple):
            candidate = (candidate,)
        if len(candidate) == len(actual) and all(
            _close(a, c, rtol, atol) for a, c in zip(actual, candidate)
        ):
            return message
    return None


def _overflow(actual: Sequence[np.ndarray], expected: Sequence[np.ndarray], what: str) -> str | None:
    """A message when the answer is NaN or infinite where the reference is finite."""
    for a, e in zip(actual, expected):
        a, e = np.asarray(a, dtype=float), np.asarray(e, dtype=float)
        if a.shape == e.shape and (~np.isfinite(a) & np.isfinite(e)).any():
            return (f"your {what} contains NaN or inf where the reference is finite: exp overflowed "
                    "(np.exp(1000) is inf) or underflowed to 0 (whose log is -inf). With rewards up "
                    "to 1e3 and alpha down to 1e-3 the exponents reach 1e6, so never exponentiate "
                    "before reducing: compute log-sums with scipy.special.logsumexp (or your "
                    "Exercise 0.1), which subtracts the maximum first.")
    return None


def _time_axis_hint(actual: np.ndarray, expected: np.ndarray) -> str | None:
    if actual.ndim == expected.ndim and actual.shape[1:] == expected.shape[1:]:
        if actual.shape[0] == expected.shape[0] + 1:
            return (f"you returned {actual.shape[0]} time steps, one too many: time runs "
                    f"t = 0 .. T-1 (horizon T = {expected.shape[0]}), and the last message is "
                    "the one of step T-1 (no beta_T or alpha_T).")
        if actual.shape[0] + 1 == expected.shape[0]:
            return (f"you returned {actual.shape[0]} time steps, one too few: return one message "
                    f"per step t = 0 .. T-1 (horizon T = {expected.shape[0]}).")
    return None


def _compare_pair(
    exercise: str,
    fn: Callable,
    reference: Callable,
    cases: Sequence[Case],
    names: tuple[str, str],
    *,
    rtol: float,
    atol: float,
    diagnose: Callable[[tuple[np.ndarray, np.ndarray], tuple, Case], str | None],
) -> int:
    """compare_with_reference for a function that returns a pair of arrays."""
    __tracebackhide__ = True
    fn_name = getattr(fn, "__name__", "your function")
    for case in cases:
        expected = case.call(reference)
        actual = call_student(exercise, fn, case)
        if not isinstance(actual, (tuple, list)) or len(actual) != 2:
            got = type(actual).__name__ + (f" of length {len(actual)}" if isinstance(actual, (tuple, list)) else "")
            raise ExerciseError(
                f"Exercise {exercise}: `{fn_name}` should return a pair ({names[0]}, {names[1]}), "
                f"got a {got} (input: {case.name})."
            )
        try:
            for value, ref, name in zip(actual, expected, names):
                assert_close(exercise, value, ref, name=name, context=case.name, rtol=rtol, atol=atol)
        except ExerciseNotAttempted:
            raise
        except ExerciseError as generic:
            try:
                arrays = tuple(as_array(exercise, v, n) for v, n in zip(actual, names))
            except ExerciseError:
                raise generic from None
            specific = diagnose(arrays, expected, case)
            if specific:
                raise ExerciseError(f"Exercise {exercise}: {specific} (input: {case.name})") from None
            raise generic from None
    return len(cases)


def _expectation_variants(P: np.ndarray) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """E_{s'}[v] as (S, A) arrays: the right one and the two usual index mistakes."""
    return {
        "right": lambda v: np.einsum("sap,p->sa", P, v),
        "current": lambda v: np.einsum("sap,s->sa", P, v),  # weights the current state's value
        "transposed": lambda v: np.einsum("sap,s->pa", P, v),  # sums over s instead of s'
    }


_INDEX_CURRENT = (
    "your expectation over the next state uses the value of the CURRENT state s: "
    "E_{{s'}}[{f}(s')] = sum_{{s'}} P[s, a, s'] {f}(s'), i.e. `P @ {v}` or "
    "np.einsum('sap,p->sa', P, {v}); yours behaves like np.einsum('sap,s->sa', P, {v}) (which is "
    "just {v}[s], because every P[s, a, :] sums to one)."
)
_INDEX_TRANSPOSED = (
    "you summed P over the current state s instead of the next state s': np.einsum('sap,s->pa', "
    "P, {v}) pushes values forward through the dynamics, like a forward message. The backward "
    "expectation sums over the LAST index of P: E_{{s'}}[{f}(s')] = np.einsum('sap,p->sa', P, {v}) "
    "= `P @ {v}`."
)


# ----------------------------------------------------------------------- Exercise 4.1


def _beta_probabilities(P, R, T, *, last="exp", combine="multiply", expect="right", reduce="sum"):
    """Probability-space backward messages with knobs that reproduce the typical mistakes."""
    S, A = R.shape
    expectation = _expectation_variants(P)[expect]
    factor = np.exp(R) if combine != "reward" else R
    reducer = {"sum": lambda b: b.sum(-1), "max": lambda b: b.max(-1), "mean": lambda b: b.mean(-1)}[reduce]
    beta_sa, beta_s = np.empty((T, S, A)), np.empty((T, S))
    beta_sa[T - 1] = np.ones((S, A)) if last == "ones" else factor
    beta_s[T - 1] = reducer(beta_sa[T - 1])
    for t in range(T - 2, -1, -1):
        e = expectation(beta_s[t + 1])
        beta_sa[t] = factor + e if combine == "add" else factor * e
        beta_s[t] = reducer(beta_sa[t])
    return beta_sa, beta_s


def _backward_probability_cases(rng: np.random.Generator) -> list[Case]:
    def case(name, S, A, T, deterministic=False, scale=1.0, loc=0.0):
        P, R = random_mdp(rng, S, A, deterministic=deterministic, reward_scale=scale, reward_loc=loc)
        return Case(name, (P, R, T))

    grid = gridworld(["S.#", "..G", ".T."], rewards={"G": 0.0, "T": -3.0}, step_reward=-0.5, slip=0.2)
    return [
        case("a stochastic MDP with S=4, A=3, T=5, rewards ~ N(0, 1)", 4, 3, 5),
        case("a deterministic MDP with S=5, A=2, T=6, rewards ~ N(0, 1)", 5, 2, 6, deterministic=True),
        case("a stochastic MDP with S=3, A=4, T=1 (only the last step)", 3, 4, 1),
        case("a stochastic MDP with S=6, A=3, T=8, rewards ~ -2 + N(0, 1) (tiny messages)", 6, 3, 8, loc=-2.0),
        case("a deterministic MDP with S=7, A=5, T=4, rewards ~ N(0, 2^2)", 7, 5, 4, deterministic=True, scale=2.0),
        Case("a 3x3 gridworld with slip 0.2 (S=8, A=5), T=6", (grid.P, grid.R, 6)),
    ]


def _diagnose_backward_probabilities(actual, expected, case: Case) -> str | None:
    P, R, T = case.args
    beta_sa, beta_s = actual
    if beta_sa.shape == expected[1].shape and beta_s.shape == expected[0].shape:
        return "you returned the pair in the wrong order; return (beta_sa, beta_s): first (T, S, A), then (T, S)."
    for a, e in zip(actual, expected):
        hint = _time_axis_hint(a, e)
        if hint:
            return hint
    f, v = "beta_{t+1}", "beta_next"
    mistakes = [
        ("beta_t(s) is the SUM over actions of beta_t(s, a) (the uniform action prior folded in as "
         "p(a|s) = 1), you took the max. A max belongs to hard value iteration; the message adds up "
         "the chance of being optimal over every action.",
         lambda: _beta_probabilities(P, R, T, reduce="max")),
        ("you averaged over actions (a normalised uniform prior 1/|A|). This course folds the uniform "
         "prior in as p(a|s) = 1, so beta_t(s) = sum_a beta_t(s, a), matching V = log sum_a exp(Q) "
         "(the factor 1/|A| would cancel in the policy, but the messages differ).",
         lambda: _beta_probabilities(P, R, T, reduce="mean")),
        (_INDEX_CURRENT.format(f=f, v=v), lambda: _beta_probabilities(P, R, T, expect="current")),
        (_INDEX_TRANSPOSED.format(f=f, v=v), lambda: _beta_probabilities(P, R, T, expect="transposed")),
        ("the optimality factor is p(O_t | s_t, a_t) = exp(r(s_t, a_t)): multiply by np.exp(R), not by R.",
         lambda: _beta_probabilities(P, R, T, combine="reward")),
        ("in probability space the factors MULTIPLY: beta_t(s, a) = exp(r(s, a)) * E_{s'}[beta_{t+1}(s')]; "
         "you added them (sums belong to log space, Exercise 4.2).",
         lambda: _beta_probabilities(P, R, T, combine="add")),
        ("the last message is beta_{T-1}(s, a) = p(O_{T-1} | s, a) = exp(r(s, a)), not 1: the last "
         "step's optimality variable is missing.",
         lambda: _beta_probabilities(P, R, T, last="ones")),
        ("you returned log-space messages (Q = log beta_t(s, a), V = log beta_t(s)); this exercise "
         "asks for the probabilities beta themselves.",
         lambda: tuple(np.log(e) for e in expected)),
    ]
    return _first_mistake(actual, mistakes, rtol=1e-6, atol=0.0)


def check_backward_probabilities(backward_probabilities: Callable, seed: int = 0) -> None:
    """Exercise 4.1: ``backward_probabilities(P, R, horizon)`` -> (beta_t(s, a), beta_t(s)), probability space."""
    __tracebackhide__ = True
    cases = _backward_probability_cases(np.random.default_rng(seed))
    n = _compare_pair(
        "4.1", backward_probabilities, reference_backward_probabilities, cases,
        ("beta_sa", "beta_s"), rtol=1e-7, atol=0.0, diagnose=_diagnose_backward_probabilities,
    )
    passed("4.1", f"the backward messages beta_t(s, a) and beta_t(s) match the reference on {n} MDPs "
                  "(deterministic and stochastic, T from 1 to 8).")


# ----------------------------------------------------------------------- Exercise 4.2


def _lse(x: np.ndarray, axis: int) -> np.ndarray:
    """log sum exp along ``axis`` (all -inf gives -inf)."""
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.squeeze(m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)), axis=axis)


def _log_messages(P, R, T, alpha, *, soft="right", backup="right"):
    """Log-space backward messages with knobs that reproduce the typical mistakes."""
    S, A = R.shape
    with np.errstate(divide="ignore"):
        log_P = np.log(P)
    softs = {
        "right": lambda q: alpha * _lse(q / alpha, -1),
        "max": lambda q: q.max(-1),
        "no_alpha": lambda q: _lse(q, -1),
        "not_multiplied": lambda q: _lse(q / alpha, -1),
        "mean": lambda q: alpha * _lse(q / alpha, -1) - alpha * np.log(A),
    }
    backups = {
        "right": lambda v: alpha * _lse(log_P + v / alpha, -1),
        "no_alpha": lambda v: _lse(log_P + v, -1),
        "not_multiplied": lambda v: _lse(log_P + v / alpha, -1),
        "variational": lambda v: np.einsum("sap,p->sa", P, v),
        "current": lambda v: np.repeat(v[:, None], A, axis=1),
        "transposed": lambda v: alpha * _lse(log_P + v[:, None, None] / alpha, 0).T,
    }
    soft_fn, backup_fn = softs[soft], backups[backup]
    Q, V = np.empty((T, S, A)), np.empty((T, S))
    Q[T - 1] = R
    V[T - 1] = soft_fn(R)
    for t in range(T - 2, -1, -1):
        Q[t] = R + backup_fn(V[t + 1])
        V[t] = soft_fn(Q[t])
    return Q, V


def _backward_log_cases(rng: np.random.Generator) -> list[Case]:
    def case(name, S, A, T, alpha, deterministic=False, scale=1.0):
        P, R = random_mdp(rng, S, A, deterministic=deterministic, reward_scale=scale)
        return Case(name, (P, R, T), {"alpha": alpha})

    grid = gridworld(["S..", ".#G", "..T"], rewards={"G": 0.0, "T": -5.0}, step_reward=-1.0, slip=0.2)
    return [
        case("a stochastic MDP with S=4, A=3, T=5, alpha=1", 4, 3, 5, 1.0),
        case("a stochastic MDP with S=5, A=2, T=6, alpha=0.5", 5, 2, 6, 0.5),
        case("a deterministic MDP with S=6, A=4, T=4, alpha=2", 6, 4, 4, 2.0, deterministic=True),
        case("a stochastic MDP with S=3, A=5, T=1 (only the last step), alpha=0.3", 3, 5, 1, 0.3),
        Case("a 3x3 gridworld with slip 0.2 (S=8, A=5), T=7, alpha=1", (grid.P, grid.R, 7), {"alpha": 1.0}),
        case("a stochastic MDP with S=5, A=3, T=10, rewards ~ N(0, 1000^2), alpha=1", 5, 3, 10, 1.0, scale=1e3),
        case("a deterministic MDP with S=6, A=3, T=8, rewards ~ N(0, 1000^2), alpha=1e-3",
             6, 3, 8, 1e-3, deterministic=True, scale=1e3),
        case("a stochastic MDP with S=7, A=4, T=6, rewards ~ N(0, 1), alpha=1e-3", 7, 4, 6, 1e-3),
    ]


def _diagnose_backward_log(actual, expected, case: Case) -> str | None:
    P, R, T = case.args
    alpha = case.kwargs.get("alpha", 1.0)
    Q, V = actual
    if Q.shape == expected[1].shape and V.shape == expected[0].shape:
        return "you returned the pair in the wrong order; return (Q, V): first (T, S, A), then (T, S)."
    for a, e in zip(actual, expected):
        hint = _time_axis_hint(a, e)
        if hint:
            return hint
    f, v = "exp(V_{t+1}/alpha)", "exp(V_next / alpha)"
    mistakes = [
        ("V_t(s) is the SOFT max alpha * log sum_a exp(Q_t(s, a) / alpha) (a logsumexp over actions), "
         "you took the hard max over actions. That is value iteration; the messages add the "
         "probabilities of all actions, so V is larger than max_a Q by up to alpha * log |A|.",
         lambda: _log_messages(P, R, T, alpha, soft="max")),
        ("your messages ignore the temperature alpha (they equal the alpha = 1 answer): V = alpha * "
         "logsumexp(Q / alpha) and Q = r + alpha * log E_{s'}[exp(V_{t+1}(s') / alpha)].",
         lambda: _log_messages(P, R, T, 1.0)),
        ("the temperature is missing in the next-state backup: Q_t = r + alpha * log E_{s'}"
         "[exp(V_{t+1}(s') / alpha)] (divide V by alpha inside, multiply by alpha outside).",
         lambda: _log_messages(P, R, T, alpha, backup="no_alpha")),
        ("the temperature is missing in the soft max over actions: V_t(s) = alpha * log sum_a "
         "exp(Q_t(s, a) / alpha).",
         lambda: _log_messages(P, R, T, alpha, soft="no_alpha")),
        ("you divided by alpha inside the logsumexp but did not multiply the result by alpha: "
         "V = alpha * logsumexp(Q / alpha) and Q = r + alpha * log E[exp(V' / alpha)].",
         lambda: _log_messages(P, R, T, alpha, soft="not_multiplied", backup="not_multiplied")),
        ("you did not multiply the soft max over actions by alpha: V = alpha * logsumexp(Q / alpha).",
         lambda: _log_messages(P, R, T, alpha, soft="not_multiplied")),
        ("you did not multiply the next-state backup by alpha: Q = r + alpha * log E[exp(V' / alpha)].",
         lambda: _log_messages(P, R, T, alpha, backup="not_multiplied")),
        ("you used Q = r + E_{s'}[V_{t+1}(s')]. The exact message is log E_{s'}[exp(V_{t+1}(s'))] "
         "(the log of the expected beta, an 'optimistic' backup); E[V] is the variational backup of "
         "chapter 05. The two agree only for deterministic dynamics.",
         lambda: _log_messages(P, R, T, alpha, backup="variational")),
        (_INDEX_CURRENT.format(f=f, v=v), lambda: _log_messages(P, R, T, alpha, backup="current")),
        (_INDEX_TRANSPOSED.format(f=f, v=v), lambda: _log_messages(P, R, T, alpha, backup="transposed")),
        ("you subtracted alpha * log |A| (a normalised uniform prior 1/|A|). This course folds the "
         "uniform prior in as p(a|s) = 1: V = alpha * log sum_a exp(Q / alpha).",
         lambda: _log_messages(P, R, T, alpha, soft="mean")),
        ("you returned probabilities (beta = exp(Q), exp(V)); this exercise asks for the log-space "
         "messages Q and V themselves.",
         lambda: tuple(np.exp(e) for e in expected)),
    ]
    specific = _first_mistake(actual, mistakes, rtol=1e-7, atol=1e-7)
    return specific or _overflow(actual, expected, "messages")


def check_backward_log_messages(backward_log_messages: Callable, seed: int = 0) -> None:
    """Exercise 4.2: ``backward_log_messages(P, R, horizon, alpha=1.0)`` -> (Q, V), stable in log space."""
    __tracebackhide__ = True
    cases = _backward_log_cases(np.random.default_rng(seed))
    n = _compare_pair(
        "4.2", backward_log_messages, reference_backward_log_messages, cases, ("Q", "V"),
        rtol=1e-8, atol=1e-8, diagnose=_diagnose_backward_log,
    )
    passed("4.2", f"Q = log beta_t(s, a) and V = log beta_t(s) match the reference on {n} MDPs, "
                  "alpha from 1e-3 to 2 and rewards up to 1e3.")


# ----------------------------------------------------------------------- Exercise 4.3


def _policy_cases(rng: np.random.Generator) -> list[Case]:
    def q_of(S, A, T, alpha, scale=1.0, deterministic=False):
        P, R = random_mdp(rng, S, A, deterministic=deterministic, reward_scale=scale)
        return inference.backward_messages(P, R, T, alpha=alpha, optimistic=True)[0]

    return [
        Case("Q of shape (T, S, A) = (5, 4, 3) from a stochastic MDP, alpha=1", (q_of(4, 3, 5, 1.0),), {"alpha": 1.0}),
        Case("Q of shape (S, A) = (6, 4) (one time step), alpha=1", (rng.normal(size=(6, 4)),), {"alpha": 1.0}),
        Case("Q of shape (4, 5, 3) from a deterministic MDP, alpha=0.5",
             (q_of(5, 3, 4, 0.5, deterministic=True),), {"alpha": 0.5}),
        Case("Q of shape (3, 6, 2), alpha=2", (q_of(6, 2, 3, 2.0),), {"alpha": 2.0}),
        Case("Q of shape (6, 5, 4) with rewards ~ N(0, 1000^2), alpha=1 (Q up to ~1e4)",
             (q_of(5, 4, 6, 1.0, scale=1e3),), {"alpha": 1.0}),
        Case("Q of shape (4, 3, 5) with rewards ~ N(0, 1000^2), alpha=1e-3 (almost greedy)",
             (q_of(3, 5, 4, 1e-3, scale=1e3),), {"alpha": 1e-3}),
        Case("Q of shape (2, 3, 4, 5) (extra leading axes), alpha=0.7", (rng.normal(size=(2, 3, 4, 5)),),
             {"alpha": 0.7}),
    ]


def _diagnose_policy(actual, expected, case: Case) -> str | None:
    (pi,) = actual
    (expected,) = expected
    Q = np.asarray(case.args[0], dtype=float)
    alpha = case.kwargs.get("alpha", 1.0)
    if pi.shape != expected.shape:
        return None  # the generic shape message says what to fix
    mistakes = [
        ("your policy is normalised over the wrong axis: pi(. | s) is a distribution over ACTIONS, "
         "the last axis of Q (..., S, A). Use axis=-1 (with keepdims=True) in the logsumexp.",
         lambda: np.exp((Q - np.expand_dims(inference.soft_max(np.moveaxis(Q, -2, -1), alpha), -2)) / alpha)),
        ("your policy is normalised over the wrong axis (the first one): pi(. | s) is a distribution "
         "over ACTIONS, the last axis of Q. Use axis=-1 (with keepdims=True) in the logsumexp.",
         lambda: np.exp((Q - np.expand_dims(inference.soft_max(np.moveaxis(Q, 0, -1), alpha), 0)) / alpha)),
        ("your policy ignores the temperature alpha (it is the alpha = 1 policy): pi = exp((Q - V) / "
         "alpha) with V = alpha * logsumexp(Q / alpha).",
         lambda: reference_soft_optimal_policy(Q, 1.0)),
        ("you multiplied by alpha where you should divide: pi = exp((Q - V) / alpha) with "
         "V = alpha * logsumexp(Q / alpha).",
         lambda: reference_soft_optimal_policy(Q, 1.0 / alpha)),
        ("you returned the greedy policy (all mass on argmax_a Q); the soft-optimal policy gives "
         "every action the probability exp((Q - V) / alpha) > 0.",
         lambda: (Q == Q.max(-1, keepdims=True)) / (Q == Q.max(-1, keepdims=True)).sum(-1, keepdims=True)),
        ("you returned log pi = (Q - V) / alpha; exponentiate it to get the probabilities.",
         lambda: np.log(expected)),
    ]
    specific = _first_mistake(actual, mistakes, rtol=1e-6, atol=1e-8)
    if specific:
        return specific
    overflow = _overflow(actual, (expected,), "policy")
    if overflow:
        return overflow
    sums = pi.sum(-1)
    if not np.allclose(sums, 1.0, atol=1e-6):
        return (f"your pi(. | s) does not sum to one over actions (the sums range from {sums.min():.4g} "
                f"to {sums.max():.4g}). Normalise with the soft value: pi = exp((Q - V) / alpha) with "
                "V = alpha * logsumexp(Q / alpha, axis=-1, keepdims=True), which is exactly log of the "
                "normaliser.")
    return None


def check_soft_optimal_policy(soft_optimal_policy: Callable, seed: int = 0) -> None:
    """Exercise 4.3: ``soft_optimal_policy(Q, alpha=1.0)`` = exp((Q - V) / alpha), V the soft max over actions."""
    __tracebackhide__ = True
    cases = _policy_cases(np.random.default_rng(seed))
    n = compare_with_reference(
        "4.3", soft_optimal_policy, reference_soft_optimal_policy, cases, name="policy",
        rtol=1e-6, atol=1e-9, diagnose=lambda a, e, c: _diagnose_policy((a,), (e,), c),
    )
    passed("4.3", f"the soft-optimal policy matches the reference on {n} inputs, alpha from 1e-3 to 2 "
                  "and Q up to 1e4.")


# ----------------------------------------------------------------------- Exercise 4.4


def _forward_variant(P, R, p0, T, *, reward=True, expect="right", reduce="lse", prior=1.0,
                     normalise=False, filtered=False):
    """Log-space forward messages with knobs that reproduce the typical mistakes."""
    S, A = R.shape
    out = np.empty((T, S))
    with np.errstate(divide="ignore"):
        out[0] = np.log(p0)
        log_P = np.log(P)
    r = R if reward else np.zeros_like(R)
    for t in range(T - 1):
        w = out[t][:, None] + r + np.log(prior)  # (S, A)
        if expect == "right":
            scores = w[:, :, None] + log_P  # (S, A, S')
            out[t + 1] = _lse(scores.reshape(S * A, S), 0) if reduce == "lse" else scores.max(axis=(0, 1))
        else:  # backward direction: sum over a and s' of P[s, a, s'] exp(r(s, a) + log alpha_t(s'))
            scores = log_P + (r + np.log(prior))[:, :, None] + out[t][None, None, :]
            out[t + 1] = _lse(scores.reshape(S, A * S), 1)
        if normalise:
            out[t + 1] -= _lse(out[t + 1], 0)
    if filtered:
        out = out + _lse(R, -1)[None, :]
    return out


def _forward_cases(rng: np.random.Generator) -> list[Case]:
    def case(name, S, A, T, deterministic=False, scale=1.0, zeros=0):
        P, R = random_mdp(rng, S, A, deterministic=deterministic, reward_scale=scale)
        p0 = rng.dirichlet(np.ones(S))
        if zeros:
            p0[rng.choice(S, size=zeros, replace=False)] = 0.0
            p0 /= p0.sum()
        return Case(name, (P, R, p0, T))

    grid = gridworld(["S..", ".#G", "..T"], rewards={"G": 0.0, "T": -5.0}, step_reward=-1.0, slip=0.2)
    return [
        case("a stochastic MDP with S=4, A=3, T=5, p0 with full support", 4, 3, 5),
        case("a deterministic MDP with S=6, A=2, T=6, p0 with 2 zeros", 6, 2, 6, deterministic=True, zeros=2),
        case("a stochastic MDP with S=3, A=4, T=1 (only alpha_0 = p0)", 3, 4, 1),
        Case("a 3x3 gridworld with slip 0.2 (S=8, A=5), one start cell, T=8", (grid.P, grid.R, grid.p0, 8)),
        case("a stochastic MDP with S=5, A=3, T=10, rewards ~ N(0, 1000^2)", 5, 3, 10, scale=1e3, zeros=1),
        case("a deterministic MDP with S=7, A=4, T=8, rewards ~ N(0, 1000^2)", 7, 4, 8, deterministic=True,
             scale=1e3, zeros=3),
    ]


def _diagnose_forward(actual, expected, case: Case) -> str | None:
    (log_alpha,) = actual
    (expected,) = expected
    P, R, p0, T = case.args
    hint = _time_axis_hint(log_alpha, expected)
    if hint:
        return hint
    if log_alpha.shape != expected.shape:
        return None
    A = R.shape[1]
    mistakes = [
        ("the optimality factor p(O_t | s_t, a_t) = exp(r(s_t, a_t)) is missing: alpha_{t+1}(s') = "
         "sum_{s, a} p(s' | s, a) exp(r(s, a)) alpha_t(s), so add R to log alpha_t(s) before the "
         "logsumexp.",
         lambda: _forward_variant(P, R, p0, T, reward=False)),
        ("you propagated in the backward direction: a forward message sums over the CURRENT state "
         "and action and lands on the next state, alpha_{t+1}(s') = sum_{s,a} P[s, a, s'] exp(r(s, a)) "
         "alpha_t(s) (np.einsum('sap,sa->p', ...)); yours sums over the last index of P like a backward "
         "message (np.einsum('sap,p->s', ...)).",
         lambda: _forward_variant(P, R, p0, T, expect="backward")),
        ("you took a max where the forward message SUMS over (s, a): use a logsumexp over the current "
         "state and action axes, not np.max.",
         lambda: _forward_variant(P, R, p0, T, reduce="max")),
        (f"you used the normalised prior p(a|s) = 1/|A| (here 1/{A}). This course folds the uniform "
         "prior in as p(a|s) = 1, as in V = log sum_a exp(Q); then sum_s alpha_t(s) beta_t(s) is the "
         "same number for every t.",
         lambda: _forward_variant(P, R, p0, T, prior=1.0 / A)),
        ("you normalised alpha_t to sum to one at every step. Return the unnormalised message "
         "log alpha_t(s) = log p(s_t = s, O_{0:t-1}); normalising changes it by a constant per step, so "
         "sum_s alpha_t(s) beta_t(s) would no longer be the same number p(O_{0:T-1}) for every t.",
         lambda: _forward_variant(P, R, p0, T, normalise=True)),
        ("your alpha_t already includes the optimality factor of step t (log sum_a exp(r(s_t, a))). "
         "alpha_t(s_t) = p(s_t, O_{0:t-1}) conditions only on the steps BEFORE t; the factor of step "
         "t belongs to beta_t.",
         lambda: _forward_variant(P, R, p0, T, filtered=True)),
        ("alpha_0 must be the initial distribution: log alpha_0(s) = log p0(s) (-inf where p0 is 0).",
         lambda: _forward_variant(P, R, np.full_like(p0, 1.0 / len(p0)), T)),
        ("alpha_0 must be the initial distribution: log alpha_0(s) = log p0(s) (-inf where p0 is 0), "
         "not 0 (alpha_0 = 1 for every state).",
         lambda: _forward_variant(P, R, np.ones_like(p0), T)),
        ("you returned alpha_t itself; this exercise asks for log alpha_t (work in log space).",
         lambda: np.exp(expected)),
    ]
    specific = _first_mistake(actual, mistakes, rtol=1e-7, atol=1e-7)
    return specific or _overflow(actual, (expected,), "log alpha")


def check_forward_log_messages(forward_log_messages: Callable, seed: int = 0) -> None:
    """Exercise 4.4: ``forward_log_messages(P, R, p0, horizon)`` -> log alpha_t(s), shape (T, S)."""
    __tracebackhide__ = True
    cases = _forward_cases(np.random.default_rng(seed))
    n = compare_with_reference(
        "4.4", forward_log_messages, reference_forward_log_messages, cases, name="log alpha",
        rtol=1e-8, atol=1e-8, diagnose=lambda a, e, c: _diagnose_forward((a,), (e,), c),
    )
    passed("4.4", f"the forward messages log alpha_t(s) match the reference on {n} MDPs "
                  "(deterministic and stochastic, p0 with zeros, rewards up to 1e3).")
