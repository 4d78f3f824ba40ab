"""Checks for chapter 05 (soft optimality).

Exercise 5.1 ``soft_bellman_backup`` (one soft Bellman backup with discount and temperature),
5.2 ``soft_value_iteration`` (soft value iteration and the soft-optimal policy) and 5.3
``soft_policy_evaluation`` (the entropy-regularised value of a fixed policy). The references
are :mod:`course_utils.inference` (``soft_max``, ``soft_value_iteration``, ``soft_policy``)
and, for 5.3, :func:`reference_soft_policy_evaluation` below (a linear solve of the
policy's Bellman equation, cross-checked against ``forward_messages`` in the tests).

Every check runs the student's function on several random MDPs: stochastic, sparse and
deterministic dynamics, as many actions as states (so that axis mistakes keep the shape),
discounts from 0 to 1, temperatures from 1e-3 to 10 and rewards up to 1e3. When an answer is
wrong, the typical mistakes (hard max instead of soft max, missing temperature, optimistic
backup, missing discount, expectation over the wrong index of P, unnormalised policies,
overflow, 0 log 0) are tried in turn to say which one it is.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import numpy as np
from scipy.special import entr, logsumexp

from .. import inference
from ..mdp import gridworld
from . import Case, ExerciseError, call_student, compare_with_reference, passed

__all__ = [
    "check_soft_bellman_backup",
    "check_soft_value_iteration",
    "check_soft_policy_evaluation",
    "reference_soft_bellman_backup",
    "reference_soft_value_iteration",
    "reference_soft_policy_evaluation",
]

Mistakes = Sequence[tuple[str, Callable[[], Any]]]

# ---------------------------------------------------------------------------------- references


def reference_soft_bellman_backup(
    P: np.ndarray, R: np.ndarray, V_next: np.ndarray, gamma: float = 1.0, alpha: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Q = R + gamma * E_{s'}[V_next(s')] (S, A) and V = alpha * logsumexp(Q / alpha) (S,)."""
    Q = np.asarray(R, dtype=float) + gamma * np.einsum("sap,p->sa", P, V_next)
    return Q, inference.soft_max(Q, alpha)


def reference_soft_value_iteration(
    P: np.ndarray, R: np.ndarray, gamma: float, alpha: float = 1.0,
    tol: float = 1e-10, max_iter: int = 100_000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Q (S, A) and V (S,) of ``inference.soft_value_iteration``, and the soft-optimal policy.

    pi (S, A) = exp((Q - soft max Q) / alpha), normalised exactly over actions.
    """
    Q, V = inference.soft_value_iteration(
        P, R, gamma=gamma, alpha=alpha, tol=tol, max_iter=max_iter
    )
    return Q, V, _policy(Q, alpha)


def reference_soft_policy_evaluation(
    P: np.ndarray, R: np.ndarray, pi: np.ndarray, gamma: float, alpha: float = 0.0
) -> np.ndarray:
    """V^pi (S,) solving V = r_pi + alpha * H_pi + gamma * P_pi V, with 0 log 0 = 0.

    r_pi(s) = sum_a pi(a|s) R(s, a), H_pi(s) = -sum_a pi(a|s) log pi(a|s) and
    P_pi(s, s') = sum_a pi(a|s) P(s'|s, a); gamma < 1.
    """
    P, R, pi = (np.asarray(x, dtype=float) for x in (P, R, pi))
    P_pi = np.einsum("sa,sap->sp", pi, P)
    r_pi = np.sum(pi * R, axis=1) + alpha * entr(pi).sum(axis=1)
    return np.linalg.solve(np.eye(P.shape[0]) - gamma * P_pi, r_pi)


def _policy(Q: np.ndarray, alpha: float) -> np.ndarray:
    """The normalised soft policy exp((Q - soft max Q) / alpha)."""
    return inference.soft_policy(Q, inference.soft_max(Q, alpha), alpha)


# ---------------------------------------------------------------------------------- random MDPs


def _random_mdp(rng: np.random.Generator, S: int, A: int, *, kind: str = "stochastic",
                reward_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """P (S, A, S) and R (S, A); rows of P are dense, sparse (2 successors) or deterministic."""
    if kind == "stochastic":
        P = rng.dirichlet(np.ones(S), size=(S, A))
    elif kind == "sparse":
        P = np.zeros((S, A, S))
        for s in range(S):
            for a in range(A):
                successors = rng.choice(S, size=2, replace=False)
                P[s, a, successors] = rng.dirichlet(np.ones(2))
    elif kind == "deterministic":
        P = np.eye(S)[rng.integers(S, size=(S, A))]
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return P, reward_scale * rng.normal(size=(S, A))


def _grid() -> tuple[np.ndarray, np.ndarray]:
    mdp = gridworld(["..T.", "S#.G"], rewards={"G": 1.0, "T": -1.0}, step_reward=-0.1, slip=0.2)
    return mdp.P, mdp.R


def _shape_of(P) -> tuple[int, int]:
    S, A, _ = np.shape(P)
    return S, A


# ---------------------------------------------------------------------------------- plumbing


def _require_callable(exercise: str, fn: Any, case: Case) -> None:
    __tracebackhide__ = True
    if not callable(fn):
        call_student(exercise, fn, case)  # raises the harness's "expected a function" feedback


def _describe(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} item(s)"
    shape = getattr(value, "shape", None)
    return f"{type(value).__name__}" + (f" of shape {tuple(shape)}" if shape is not None else "")


def _output(exercise: str, fn: Callable, index: int, names: Sequence[str]) -> Callable:
    """``fn``'s ``index``-th output, after checking that it returned a tuple of ``len(names)``."""

    @functools.wraps(fn)
    def one_output(*args, **kwargs):
        __tracebackhide__ = True
        out = fn(*args, **kwargs)
        if not isinstance(out, (tuple, list)) or len(out) != len(names):
            raise ExerciseError(
                f"Exercise {exercise}: return the tuple ({', '.join(names)}) "
                f"(`return {', '.join(names)}`); your function returned {_describe(out)}."
            )
        return out[index]

    return one_output


def _close(actual: np.ndarray, candidate: Any, rtol: float = 1e-7, atol: float = 1e-9) -> bool:
    """Same shape and equal within tolerance (a candidate without finite entries never matches)."""
    candidate = np.asarray(candidate, dtype=float)
    if candidate.shape != actual.shape or not np.isfinite(candidate).any():
        return False
    with np.errstate(all="ignore"):
        return bool(np.allclose(actual, candidate, rtol=rtol, atol=atol, equal_nan=True))


def _first_mistake(actual: np.ndarray, mistakes: Mistakes, **tolerance) -> str | None:
    """The message of the first typical mistake whose output equals ``actual``."""
    for message, make in mistakes:
        try:
            with np.errstate(all="ignore"):
                candidate = make()
        except (TypeError, ValueError, np.linalg.LinAlgError):  # a mistake that does not apply here
            continue
        if _close(actual, candidate, **tolerance):
            return message
    return None


def _extreme(Q: np.ndarray, alpha: float) -> bool:
    """Would exp(Q / alpha) overflow (or underflow to 0 everywhere) in float64?"""
    return bool(np.max(np.abs(Q)) / alpha > 700)


def _overflowed(actual: np.ndarray, expected: np.ndarray) -> bool:
    """Non-finite where the reference is finite."""
    return bool((~np.isfinite(actual) & np.isfinite(expected)).any())


def _expect(P: np.ndarray, V: np.ndarray) -> np.ndarray:
    return np.einsum("sap,p->sa", P, V)


def _optimistic_expect(P: np.ndarray, V: np.ndarray, alpha: float) -> np.ndarray:
    """alpha * log E_{s'}[exp(V(s') / alpha)], computed stably."""
    with np.errstate(divide="ignore"):
        return alpha * logsumexp(V[None, None, :] / alpha, b=P, axis=-1)


WRONG_INDEX = (
    "your expectation over next states sums over the wrong index of P. P[s, a, s'] is the "
    "probability of s' after (s, a), so E_{s'}[V(s')] = sum_{s'} P[s, a, s'] V[s'], i.e. "
    "np.einsum('sap,p->sa', P, V_next) or P @ V_next, not a sum over the first index s."
)
OPTIMISTIC = (
    "this is the OPTIMISTIC backup r + alpha * log E[exp(V(s') / alpha)] of the exact messages "
    "(it assumes you also control your luck). The variational backup takes a plain "
    "expectation: Q = R + gamma * E_{s'}[V(s')] = R + gamma * P @ V_next."
)
NO_DISCOUNT = "your Q ignores the discount: Q = R + gamma * E_{s'}[V(s')], with gamma."
HARD_MAX = (
    "you took the hard max over actions (value iteration). Soft optimality uses the soft max "
    "V(s) = alpha * log sum_a exp(Q(s, a) / alpha), "
    "e.g. alpha * scipy.special.logsumexp(Q / alpha, axis=1)."
)
WRONG_AXIS_V = (
    "you took the soft max over the wrong axis: V(s) is a soft max over ACTIONS, the last axis "
    "of Q (axis=1), not over states."
)
OVERFLOW_V = (
    "your soft max overflowed or underflowed (exp(Q / alpha) is inf or 0 for large rewards or "
    "small alpha). Subtract the maximum of each row (over actions, keepdims=True) before "
    "exponentiating and add it back after the log (or use scipy.special.logsumexp)."
)
SOFT_MAX = "V = alpha * log sum_a exp(Q / alpha)."


# ---------------------------------------------------------------------------------- Exercise 5.1


def _backup_cases(rng: np.random.Generator) -> list[Case]:
    def case(name, P, R, gamma, alpha, V_next):
        return Case(name, (P, R, V_next), {"gamma": gamma, "alpha": alpha})

    P1, R1 = _random_mdp(rng, 5, 3)
    P2, R2 = _random_mdp(rng, 4, 4)
    P3, R3 = _random_mdp(rng, 6, 2, kind="deterministic")
    P4, R4 = _random_mdp(rng, 7, 3, kind="sparse", reward_scale=1e3)
    P5, R5 = _random_mdp(rng, 3, 5)
    P6, R6 = _random_mdp(rng, 5, 2)
    P7, R7 = _grid()
    return [
        case("a stochastic MDP with S=5, A=3, gamma=0.9, alpha=1",
             P1, R1, 0.9, 1.0, 2 * rng.normal(size=5)),
        case("a stochastic MDP with S=4, A=4, gamma=0.7, alpha=0.5",
             P2, R2, 0.7, 0.5, 2 * rng.normal(size=4)),
        case("a deterministic MDP with S=6, A=2, gamma=0.95, alpha=2",
             P3, R3, 0.95, 2.0, 3 * rng.normal(size=6)),
        case("a sparse MDP with rewards and values near 1e3, gamma=0.95, alpha=1e-3",
             P4, R4, 0.95, 1e-3, 1e3 * rng.normal(size=7)),
        case("one step of the finite-horizon pass: gamma=1, S=3, A=5, alpha=0.1",
             P5, R5, 1.0, 0.1, rng.normal(size=3)),
        case("gamma=0 (Q = R), S=5, A=2, alpha=10", P6, R6, 0.0, 10.0, rng.normal(size=5)),
        case(f"a 2x4 gridworld with slip 0.2 (S={P7.shape[0]}, A=5), gamma=0.9, alpha=0.3",
             P7, R7, 0.9, 0.3, rng.normal(size=P7.shape[0])),
    ]


def _backup_q_mistakes(case: Case) -> Mistakes:
    P, R, V = case.args
    gamma, alpha = case.kwargs["gamma"], case.kwargs["alpha"]
    return [
        (OPTIMISTIC, lambda: R + gamma * _optimistic_expect(P, V, alpha)),
        (OPTIMISTIC, lambda: R + gamma * _optimistic_expect(P, V, 1.0)),
        (NO_DISCOUNT, lambda: R + _expect(P, V) if gamma != 1 else None),
        (WRONG_INDEX, lambda: R + gamma * V[:, None]),                         # 'sap,s->sa'
        (WRONG_INDEX, lambda: R + gamma * np.einsum("sap,s->pa", P, V)),
        (WRONG_INDEX, lambda: R + gamma * np.einsum("sap,s->ap", P, V)),
        (WRONG_INDEX, lambda: R + gamma * np.einsum("sap,a->sp", P, V)),
        ("you discounted the reward too: only the future is discounted, "
         "Q = R + gamma * E[V(s')].", lambda: gamma * (R + _expect(P, V)) if gamma != 1 else None),
        ("your Q is missing the reward R(s, a): Q = R + gamma * E[V(s')].",
         lambda: gamma * _expect(P, V)),
        ("you took a soft max of the next values where an expectation over s' belongs: "
         "Q = R + gamma * sum_{s'} P[s, a, s'] V[s'].",
         lambda: R + gamma * inference.soft_max(V[None, :], alpha)),
    ]


def _diagnose_backup_q(actual: np.ndarray, expected: np.ndarray, case: Case) -> str | None:
    P, R, V = case.args
    S, A = _shape_of(P)
    if actual.shape == (A, S) and S != A:
        if _first_mistake(actual, _backup_q_mistakes(case)[3:]):
            return WRONG_INDEX
        return None  # the generic "transposed?" shape message
    if actual.shape != expected.shape:
        return None
    if _overflowed(actual, expected):
        return ("Q is not finite, but Q = R + gamma * E_{s'}[V(s')] needs no exponential: "
                "if you wrote log E[exp(V)], that is the optimistic backup, and it also overflows.")
    return _first_mistake(actual, _backup_q_mistakes(case))


def _backup_v_mistakes(case: Case) -> Mistakes:
    P, R, V_next = case.args
    gamma, alpha = case.kwargs["gamma"], case.kwargs["alpha"]
    Q, _ = reference_soft_bellman_backup(P, R, V_next, gamma, alpha)
    S, A = _shape_of(P)
    mistakes: list[tuple[str, Callable[[], Any]]] = [
        (HARD_MAX, lambda: Q.max(axis=1)),
        (WRONG_AXIS_V, lambda: alpha * logsumexp(Q / alpha, axis=0) if S == A else None),
        ("you computed log-MEAN-exp (a uniform action prior 1/|A|): the course's soft max is "
         "alpha * log SUM_a exp(Q / alpha); the constant log |A| is folded into the reward.",
         lambda: alpha * (logsumexp(Q / alpha, axis=1) - np.log(A))),
        ("you averaged Q over actions: V is a soft MAX, alpha * log sum_a exp(Q / alpha).",
         lambda: Q.mean(axis=1)),
    ]
    if alpha != 1.0:
        mistakes += [
            ("your soft max ignores the temperature alpha: " + SOFT_MAX,
             lambda: logsumexp(Q, axis=1)),
            ("you forgot to divide Q by alpha inside the exponential: " + SOFT_MAX,
             lambda: alpha * logsumexp(Q, axis=1)),
            ("you forgot to multiply by alpha outside the log: " + SOFT_MAX,
             lambda: logsumexp(Q / alpha, axis=1)),
            ("you multiplied Q by alpha where you should divide: " + SOFT_MAX,
             lambda: logsumexp(Q * alpha, axis=1) / alpha),
        ]
    return mistakes


def _diagnose_backup_v(actual: np.ndarray, expected: np.ndarray, case: Case) -> str | None:
    P, R, V_next = case.args
    S, A = _shape_of(P)
    if actual.shape == (A,) and S != A:
        return WRONG_AXIS_V
    if actual.shape != expected.shape:
        return None
    if _overflowed(actual, expected):
        Q, _ = reference_soft_bellman_backup(P, R, V_next, **case.kwargs)
        return OVERFLOW_V if _extreme(Q, case.kwargs["alpha"]) else None  # None: generic NaN hint
    return _first_mistake(actual, _backup_v_mistakes(case))


def check_soft_bellman_backup(soft_bellman_backup: Callable, seed: int = 0) -> None:
    """Exercise 5.1: ``soft_bellman_backup(P, R, V_next, gamma=1.0, alpha=1.0) -> (Q, V)``."""
    __tracebackhide__ = True
    cases = _backup_cases(np.random.default_rng(seed))
    _require_callable("5.1", soft_bellman_backup, cases[0])
    names = ("Q", "V")
    for index, name, diagnose in ((0, "Q", _diagnose_backup_q), (1, "V", _diagnose_backup_v)):
        n = compare_with_reference(
            "5.1", _output("5.1", soft_bellman_backup, index, names),
            _output("5.1", reference_soft_bellman_backup, index, names), cases,
            name=name, rtol=1e-9, atol=1e-9, diagnose=diagnose,
        )
    passed("5.1", f"the soft Bellman backup matches the reference on {n} MDPs "
                  "(gamma from 0 to 1, alpha from 1e-3 to 10, rewards up to 1e3).")


# ---------------------------------------------------------------------------------- Exercise 5.2


def _vi_cases(rng: np.random.Generator) -> list[Case]:
    def case(name, P, R, gamma, alpha):
        return Case(name, (P, R), {"gamma": gamma, "alpha": alpha})

    P1, R1 = _random_mdp(rng, 6, 3)
    P2, R2 = _random_mdp(rng, 4, 4)
    P3, R3 = _random_mdp(rng, 8, 2, kind="deterministic")
    P4, R4 = _random_mdp(rng, 5, 3, kind="sparse", reward_scale=1e3)
    P5, R5 = _random_mdp(rng, 4, 3)
    P6, R6 = _grid()
    return [
        case("a stochastic MDP with S=6, A=3, gamma=0.9, alpha=1", P1, R1, 0.9, 1.0),
        case("a stochastic MDP with S=4, A=4, gamma=0.5, alpha=0.3", P2, R2, 0.5, 0.3),
        case("a deterministic MDP with S=8, A=2, gamma=0.95, alpha=0.1", P3, R3, 0.95, 0.1),
        case("a sparse MDP with rewards near 1e3, gamma=0.8, alpha=1e-3", P4, R4, 0.8, 1e-3),
        case("gamma=0 (Q = R), S=4, A=3, alpha=10", P5, R5, 0.0, 10.0),
        case(f"a 2x4 gridworld with slip 0.2 (S={P6.shape[0]}, A=5), gamma=0.9, alpha=0.5",
             P6, R6, 0.9, 0.5),
    ]


def _fixed_point(P, backup, iterations=100_000, tol=1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Iterate ``Q, V = backup(V)`` from V = 0 until V changes less than tol (mistake models)."""
    V = np.zeros(P.shape[0])
    for _ in range(iterations):
        Q, V_new = backup(V)
        if np.max(np.abs(V_new - V)) < tol:
            return Q, V_new
        V = V_new
    return Q, V


def _vi_variants(case: Case) -> dict[str, Callable[[], Any]]:
    """Functions giving (Q, V) of the typical wrong algorithms (None where one does not apply)."""
    P, R = case.args
    gamma, alpha = case.kwargs["gamma"], case.kwargs["alpha"]
    return {
        "hard": lambda: inference.value_iteration(P, R, gamma=gamma),
        "temperature": lambda: inference.soft_value_iteration(P, R, gamma=gamma, alpha=1.0)
        if alpha != 1.0 else None,
        "optimistic": lambda: _fixed_point(
            P, functools.partial(_optimistic_backup, P, R, gamma, alpha)),
    }


def _optimistic_backup(P, R, gamma, alpha, V):
    Q = R + gamma * _optimistic_expect(P, V, alpha)
    return Q, inference.soft_max(Q, alpha)


HARD_VI = (
    "this is hard value iteration (V = max_a Q). Soft value iteration uses the soft max "
    "V = alpha * log sum_a exp(Q / alpha); use your soft_bellman_backup from Exercise 5.1."
)
NO_TEMPERATURE_VI = (
    "your soft value iteration ignores the temperature alpha (it computes alpha = 1)."
)
OPTIMISTIC_VI = (
    "you iterated the OPTIMISTIC backup alpha * log E[exp(V(s') / alpha)]; soft value iteration "
    "uses the expectation Q = R + gamma * E_{s'}[V(s')]."
)


def _vi_mistakes(case: Case, which: int) -> Mistakes:
    variants = _vi_variants(case)
    return [
        (HARD_VI, lambda: variants["hard"]()[which]),
        (NO_TEMPERATURE_VI, lambda: variants["temperature"]()[which]),
        (OPTIMISTIC_VI, lambda: variants["optimistic"]()[which]),
    ]


def _not_converged(actual_Q: np.ndarray, case: Case) -> str | None:
    """A soft Q that is not (yet) a fixed point of the soft Bellman backup."""
    P, R = case.args
    gamma, alpha = case.kwargs["gamma"], case.kwargs["alpha"]
    with np.errstate(all="ignore"):
        backup = R + gamma * _expect(P, inference.soft_max(actual_Q, alpha))
        residual = np.max(np.abs(backup - actual_Q))
    scale = max(1.0, float(np.max(np.abs(actual_Q))))
    if np.isfinite(residual) and residual > 1e-6 * scale:
        return (f"your Q is not a fixed point of the soft Bellman backup yet (the largest "
                f"change of one more backup is {residual:.3g}): iterate until "
                "max |V_new - V| < tol, for up to max_iter iterations, and return the Q and V "
                "of the last backup.")
    return None


def _diagnose_vi_q(actual: np.ndarray, expected: np.ndarray, case: Case) -> str | None:
    if actual.shape != expected.shape:
        return None
    if _overflowed(actual, expected):
        return ("your Q is not finite: compute the soft max stably (the soft_bellman_backup of "
                "Exercise 5.1 does) and check that gamma < 1 is used.")
    mistake = _first_mistake(actual, _vi_mistakes(case, 0), rtol=1e-6, atol=1e-6)
    return mistake or _not_converged(actual, case)


def _diagnose_vi_v(actual: np.ndarray, expected: np.ndarray, case: Case) -> str | None:
    if actual.shape != expected.shape:
        return None
    P, R = case.args
    gamma, alpha = case.kwargs["gamma"], case.kwargs["alpha"]
    Q = inference.soft_value_iteration(P, R, gamma=gamma, alpha=alpha)[0]
    if _overflowed(actual, expected):
        return OVERFLOW_V if _extreme(Q, case.kwargs["alpha"]) else None
    mistakes = list(_vi_mistakes(case, 1)) + [
        ("your V is the hard max of your (correct) Q; return the soft value " + SOFT_MAX,
         lambda: Q.max(axis=1)),
    ]
    return _first_mistake(actual, mistakes, rtol=1e-6, atol=1e-6)


def _diagnose_policy(actual: np.ndarray, expected: np.ndarray, case: Case) -> str | None:
    P, R = case.args
    S, A = _shape_of(P)
    alpha = case.kwargs["alpha"]
    if actual.shape == (A, S) and S != A:
        return "your policy has shape (A, S); return pi[s, a] with shape (S, A)."
    if actual.shape != expected.shape:
        return None
    Q = inference.soft_value_iteration(P, R, gamma=case.kwargs["gamma"], alpha=alpha)[0]
    if _overflowed(actual, expected):
        if not _extreme(Q, alpha):
            return None  # the generic NaN hint
        return ("your policy overflowed: exp(Q / alpha) is inf for large Q or small alpha. Compute "
                "pi = exp((Q - V[:, None]) / alpha), whose exponent is <= 0.")
    V = inference.soft_max(Q, alpha)
    sums = actual.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-6):
        if S > 1 and np.allclose(actual.sum(axis=0), 1.0, atol=1e-6):
            return ("your policy sums to one over STATES (axis 0); pi(.|s) is a distribution over "
                    "actions: each row pi[s, :] must sum to one.")
        if _close(actual, np.exp(Q - V[:, None]), rtol=1e-6, atol=1e-8):
            return ("your policy does not sum to one over actions: with a temperature, "
                    "pi = exp((Q - V[:, None]) / alpha) (divide by alpha).")
        return (f"your policy does not sum to one over actions: the row sums range from "
                f"{sums.min():.4g} to {sums.max():.4g}. pi = exp((Q - V[:, None]) / alpha) with "
                "V = alpha * log sum_a exp(Q / alpha) is normalised.")
    if (np.isin(actual, (0.0, 1.0)).all() and not np.isin(np.round(expected, 9), (0.0, 1.0)).all()):
        return ("your policy is greedy (one-hot, the hard-optimal policy); the soft-optimal policy "
                "is pi = exp((Q - V[:, None]) / alpha), which gives every action some probability.")
    return _first_mistake(actual, [
        ("your policy ignores the temperature: pi = exp((Q - V[:, None]) / alpha).",
         lambda: _policy(Q, 1.0) if alpha != 1.0 else None),
    ], rtol=1e-5, atol=1e-6)


def check_soft_value_iteration(soft_value_iteration: Callable, seed: int = 0) -> None:
    """Exercise 5.2: ``soft_value_iteration(P, R, gamma, alpha=1.0, tol=1e-10, max_iter=100_000)``.

    It returns ``(Q, V, pi)`` with shapes (S, A), (S,), (S, A).
    """
    __tracebackhide__ = True
    cases = _vi_cases(np.random.default_rng(seed))
    _require_callable("5.2", soft_value_iteration, cases[0])
    names = ("Q", "V", "pi")
    for index, name, diagnose, rtol, atol in (
        (0, "Q", _diagnose_vi_q, 1e-6, 1e-6),
        (1, "V", _diagnose_vi_v, 1e-6, 1e-6),
        (2, "policy", _diagnose_policy, 1e-5, 1e-6),
    ):
        n = compare_with_reference(
            "5.2", _output("5.2", soft_value_iteration, index, names),
            _output("5.2", reference_soft_value_iteration, index, names), cases,
            name=name, rtol=rtol, atol=atol, diagnose=diagnose,
        )
    passed("5.2", "soft value iteration and the soft-optimal policy match the reference on "
                  f"{n} MDPs "
                  "(alpha from 1e-3 to 10, rewards up to 1e3).")


# ---------------------------------------------------------------------------------- Exercise 5.3


def _random_policy(rng: np.random.Generator, S: int, A: int, *, zeros: bool = False) -> np.ndarray:
    pi = rng.dirichlet(np.ones(A), size=S)
    if zeros:  # some actions never taken: 0 log 0 must count as 0
        pi[rng.random((S, A)) < 0.4] = 0.0
        pi[np.arange(S), rng.integers(A, size=S)] += 0.1
        pi /= pi.sum(axis=1, keepdims=True)
    return pi


def _evaluation_cases(rng: np.random.Generator) -> list[Case]:
    def case(name, P, R, pi, gamma, alpha):
        return Case(name, (P, R, pi), {"gamma": gamma, "alpha": alpha})

    P1, R1 = _random_mdp(rng, 5, 3)
    P2, R2 = _random_mdp(rng, 4, 4)
    P3, R3 = _random_mdp(rng, 6, 2, kind="deterministic")
    P4, R4 = _random_mdp(rng, 7, 3, kind="sparse", reward_scale=1e3)
    P5, R5 = _random_mdp(rng, 4, 3)
    P6, R6 = _grid()
    pi6 = reference_soft_value_iteration(P6, R6, 0.9, 0.3)[2]
    greedy = np.eye(2)[rng.integers(2, size=6)]
    return [
        case("a stochastic MDP with S=5, A=3, a random policy, gamma=0.9, alpha=0.5",
             P1, R1, _random_policy(rng, 5, 3), 0.9, 0.5),
        case("a stochastic MDP with S=4, A=4, a random policy, gamma=0.5, alpha=2",
             P2, R2, _random_policy(rng, 4, 4), 0.5, 2.0),
        case("a deterministic MDP with S=6, A=2, a one-hot policy, gamma=0.95, alpha=1",
             P3, R3, greedy, 0.95, 1.0),
        case("a sparse MDP with rewards near 1e3, a policy with zeros, gamma=0.95, alpha=1e-3",
             P4, R4, _random_policy(rng, 7, 3, zeros=True), 0.95, 1e-3),
        case("gamma=0 (one step), S=4, A=3, alpha=10",
             P5, R5, _random_policy(rng, 4, 3), 0.0, 10.0),
        case(f"the soft-optimal policy of a 2x4 gridworld with slip 0.2 (S={P6.shape[0]}, A=5), "
             "gamma=0.9, alpha=0.3", P6, R6, pi6, 0.9, 0.3),
        case("the plain expected return (alpha=0) of a random policy, S=5, A=3, gamma=0.8",
             P1, R1, _random_policy(rng, 5, 3), 0.8, 0.0),
    ]


def _evaluation_mistakes(case: Case) -> Mistakes:
    P, R, pi = case.args
    gamma, alpha = case.kwargs["gamma"], case.kwargs["alpha"]
    S = P.shape[0]
    ref = reference_soft_policy_evaluation
    P_pi = np.einsum("sa,sap->sp", pi, P)
    r_pi = np.sum(pi * R, axis=1) + alpha * entr(pi).sum(axis=1)
    mistakes: list[tuple[str, Callable[[], Any]]] = []
    if alpha != 0:
        mistakes += [
            ("your value has no entropy bonus: add alpha * H(pi(.|s)) = -alpha * sum_a pi log pi "
             "to the expected reward of every state.", lambda: ref(P, R, pi, gamma, 0.0)),
            ("your entropy has the wrong sign: H(pi(.|s)) = -sum_a pi(a|s) log pi(a|s) >= 0, and "
             "the bonus is + alpha * H.", lambda: ref(P, R, pi, gamma, -alpha)),
        ]
    if alpha not in (0.0, 1.0):
        mistakes.append(("your entropy bonus is not multiplied by the temperature alpha.",
                         lambda: ref(P, R, pi, gamma, 1.0)))
    mistakes += [
        ("P_pi is transposed: the next-state distribution under pi is "
         "P_pi[s, s'] = sum_a pi[s, a] P[s, a, s'] (np.einsum('sa,sap->sp', pi, P)).",
         lambda: np.linalg.solve(np.eye(S) - gamma * P_pi.T, r_pi)),
        ("your P_pi sums over the wrong index of P. P[s, a, s'] is the probability of s' after "
         "(s, a), so P_pi[s, s'] = sum_a pi[s, a] P[s, a, s'] (np.einsum('sa,sap->sp', pi, P)).",
         lambda: np.linalg.solve(np.eye(S) - gamma * np.einsum("sa,pas->sp", pi, P), r_pi)),
        ("this is only one step (r_pi + alpha * H_pi). V^pi solves the Bellman equation "
         "V = r_pi + alpha * H_pi + gamma * P_pi V, "
         "i.e. np.linalg.solve(I - gamma * P_pi, r_pi + alpha * H_pi).",
         lambda: r_pi if gamma != 0 else None),
    ]
    return mistakes


def _diagnose_evaluation(actual: np.ndarray, expected: np.ndarray, case: Case) -> str | None:
    P, R, pi = case.args
    S, A = _shape_of(P)
    if actual.shape == (S, A):
        return "return the state values V^pi(s), shape (S,), not one value per action."
    if actual.shape != expected.shape:
        return None
    if _overflowed(actual, expected):
        if (pi == 0).any():
            return ("your value is NaN where pi(a|s) = 0: 0 * log 0 is NaN in numpy, but the "
                    "entropy counts it as 0. Use scipy.special.entr(pi) (= -pi log pi, 0 at 0) or "
                    "np.where(pi > 0, pi * np.log(pi), 0).")
        return None
    return _first_mistake(actual, _evaluation_mistakes(case), rtol=1e-6, atol=1e-8)


def check_soft_policy_evaluation(soft_policy_evaluation: Callable, seed: int = 0) -> None:
    """Exercise 5.3: ``soft_policy_evaluation(P, R, pi, gamma, alpha=0.0) -> V`` of shape (S,)."""
    __tracebackhide__ = True
    cases = _evaluation_cases(np.random.default_rng(seed))
    _require_callable("5.3", soft_policy_evaluation, cases[0])
    n = compare_with_reference(
        "5.3", soft_policy_evaluation, reference_soft_policy_evaluation, cases,
        name="value V^pi", rtol=1e-7, atol=1e-7, diagnose=_diagnose_evaluation,
    )
    passed("5.3", f"soft policy evaluation matches the reference on {n} MDPs and policies "
                  "(one-hot policies, alpha from 0 to 10, rewards up to 1e3).")
