"""Checks for chapter 00 (start here): a stable log-sum-exp and the Boltzmann distribution."""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.special import logsumexp as _scipy_logsumexp

from . import Case, compare_with_reference, passed

__all__ = ["check_logsumexp", "check_boltzmann", "reference_logsumexp", "reference_boltzmann"]


def reference_logsumexp(x: np.ndarray, axis: int = -1, keepdims: bool = False) -> np.ndarray:
    """log(sum(exp(x))) along ``axis`` (scipy's implementation, with the exercise's defaults)."""
    return _scipy_logsumexp(x, axis=axis, keepdims=keepdims)


def reference_boltzmann(x: np.ndarray, alpha: float = 1.0, axis: int = -1) -> np.ndarray:
    """pi = exp((x - V) / alpha) with V = alpha * logsumexp(x / alpha) along ``axis``."""
    v = alpha * _scipy_logsumexp(np.asarray(x) / alpha, axis=axis, keepdims=True)
    return np.exp((x - v) / alpha)


def _logsumexp_cases(rng: np.random.Generator) -> list[Case]:
    masked = rng.normal(size=(3, 5))
    masked[0, [1, 3]] = -np.inf
    masked[2, :] = -np.inf
    return [
        Case("a vector of 6 standard-normal entries", (rng.normal(size=6),)),
        Case("a (4, 7) matrix, axis=-1", (rng.normal(size=(4, 7)),), {"axis": -1}),
        Case("a (4, 7) matrix, axis=0", (rng.normal(size=(4, 7)),), {"axis": 0}),
        Case("a (2, 3, 5) array, axis=1, keepdims=True", (rng.normal(size=(2, 3, 5)),),
             {"axis": 1, "keepdims": True}),
        Case("a (3, 4) matrix with entries near +1000", (1000 + rng.normal(size=(3, 4)),)),
        Case("a (3, 4) matrix with entries near -1000", (-1000 + rng.normal(size=(3, 4)),)),
        Case("entries spread from -800 to 800", (np.linspace(-800, 800, 9),)),
        Case("a (3, 5) matrix with some -inf entries and one row that is all -inf", (masked,)),
    ]


def _diagnose_logsumexp(actual: np.ndarray, expected: np.ndarray, case: Case) -> str | None:
    x = np.asarray(case.args[0], dtype=float)
    axis = case.kwargs.get("axis", -1)
    keepdims = case.kwargs.get("keepdims", False)
    if actual.shape != expected.shape:
        return None  # the generic shape message is more useful
    all_neg_inf = np.all(np.isneginf(x), axis=axis, keepdims=keepdims)
    if np.isnan(actual[all_neg_inf]).any():
        return ("a slice whose entries are all -inf should give -inf, yours gives NaN: the "
                "maximum is -inf there and -inf - (-inf) is NaN. Replace a non-finite maximum "
                "by 0 before subtracting it (np.where(np.isfinite(m), m, 0)).")
    finite_expected = np.isfinite(expected)
    extreme = np.abs(x[np.isfinite(x)]).max(initial=0.0) > 500
    if extreme and (~np.isfinite(actual[finite_expected])).any():
        return ("overflow or underflow: np.exp(1000) is inf and np.exp(-1000) is 0. Subtract the "
                "maximum along the axis before exponentiating and add it back after the log.")
    m = np.max(x, axis=axis, keepdims=keepdims)
    with np.errstate(invalid="ignore"):
        if np.allclose(actual[finite_expected], (expected - m)[finite_expected]):
            return "you subtracted the maximum but forgot to add it back after the log."
        if np.allclose(actual[finite_expected], m[finite_expected]):
            return "you returned the maximum; log-sum-exp is the *soft* maximum, max + log sum exp(x - max)."
    return None


def check_logsumexp(logsumexp: Callable, seed: int = 0) -> None:
    """Exercise 0.1: ``logsumexp(x, axis=-1, keepdims=False)`` equals log(sum(exp(x))) stably."""
    __tracebackhide__ = True
    cases = _logsumexp_cases(np.random.default_rng(seed))
    n = compare_with_reference(
        "0.1", logsumexp, reference_logsumexp, cases, name="log-sum-exp",
        rtol=1e-9, atol=1e-9, diagnose=_diagnose_logsumexp,
    )
    passed("0.1", f"log-sum-exp matches scipy on {n} inputs, including +-1000 and -inf entries.")


def _boltzmann_cases(rng: np.random.Generator) -> list[Case]:
    return [
        Case("Q-values of shape (5,), alpha=1", (rng.normal(size=5),), {"alpha": 1.0}),
        Case("Q-values of shape (4, 3), alpha=0.5", (rng.normal(size=(4, 3)),), {"alpha": 0.5}),
        Case("Q-values of shape (4, 3), alpha=2, axis=0", (rng.normal(size=(4, 3)),),
             {"alpha": 2.0, "axis": 0}),
        Case("Q-values near 1000, alpha=1", (1000 + rng.normal(size=(2, 4)),), {"alpha": 1.0}),
        Case("Q-values of shape (3, 4), alpha=1e-3 (almost greedy)", (rng.normal(size=(3, 4)),),
             {"alpha": 1e-3}),
        Case("Q-values of shape (3, 4), alpha=100 (almost uniform)", (rng.normal(size=(3, 4)),),
             {"alpha": 100.0}),
    ]


def _diagnose_boltzmann(actual: np.ndarray, expected: np.ndarray, case: Case) -> str | None:
    if actual.shape != expected.shape or not np.isfinite(actual).all():
        return None
    x = np.asarray(case.args[0], dtype=float)
    alpha = case.kwargs.get("alpha", 1.0)
    axis = case.kwargs.get("axis", -1)
    sums = actual.sum(axis=axis)
    if not np.allclose(sums, 1.0, atol=1e-6):
        other = actual.sum(axis=0 if axis in (-1, x.ndim - 1) else -1)
        if x.ndim > 1 and np.allclose(other, 1.0, atol=1e-6):
            return "your probabilities sum to 1 along the wrong axis."
        return (f"the probabilities should sum to 1 along axis {axis}; yours sum to "
                f"{np.round(sums, 4).tolist()}. Did you normalise with V = alpha * logsumexp(Q / alpha)?")
    if alpha != 1.0 and np.allclose(actual, reference_boltzmann(x, 1.0 / alpha, axis), atol=1e-6):
        return "you multiplied by alpha where you should divide: pi = exp((Q - V) / alpha)."
    if alpha != 1.0 and np.allclose(actual, reference_boltzmann(x, 1.0, axis), atol=1e-6):
        return "your answer ignores the temperature alpha."
    return None


def check_boltzmann(boltzmann: Callable, seed: int = 0) -> None:
    """Exercise 0.2: ``boltzmann(q, alpha=1.0, axis=-1)`` equals exp((q - V) / alpha)."""
    __tracebackhide__ = True
    cases = _boltzmann_cases(np.random.default_rng(seed))
    n = compare_with_reference(
        "0.2", boltzmann, reference_boltzmann, cases, name="distribution",
        rtol=1e-7, atol=1e-10, diagnose=_diagnose_boltzmann,
    )
    passed("0.2", f"the Boltzmann distribution matches the reference on {n} inputs, alpha from 1e-3 to 100.")
