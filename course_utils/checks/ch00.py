"""Checks for chapter 00 (start here): a stable log-sum-exp and the Boltzmann distribution."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp as _scipy_logsumexp

from . import Case, Exercise, Mistake, Output

__all__ = ["check_boltzmann", "check_logsumexp", "reference_boltzmann", "reference_logsumexp"]


def reference_logsumexp(x: np.ndarray, axis: int = -1, keepdims: bool = False) -> np.ndarray:
    """log(sum(exp(x))) along ``axis`` (scipy's implementation, with the exercise's defaults)."""
    return _scipy_logsumexp(x, axis=axis, keepdims=keepdims)


def reference_boltzmann(x: np.ndarray, alpha: float = 1.0, axis: int = -1) -> np.ndarray:
    """pi = exp((x - V) / alpha) with V = alpha * logsumexp(x / alpha) along ``axis``."""
    v = alpha * _scipy_logsumexp(np.asarray(x) / alpha, axis=axis, keepdims=True)
    return np.exp((x - v) / alpha)


# ----------------------------------------------------------------------- Exercise 0.1


def _logsumexp_cases(rng: np.random.Generator) -> list[Case]:
    masked = rng.normal(size=(3, 5))
    masked[0, [1, 3]] = -np.inf
    masked[2, :] = -np.inf
    return [
        Case("a vector of 6 standard-normal entries", (rng.normal(size=6),)),
        Case("a (4, 7) matrix, axis=-1", (rng.normal(size=(4, 7)), -1)),
        Case("a (4, 7) matrix, axis=0", (rng.normal(size=(4, 7)), 0)),
        Case("a (2, 3, 5) array, axis=1, keepdims=True", (rng.normal(size=(2, 3, 5)), 1, True)),
        Case("a (3, 4) matrix with entries near +1000", (1000 + rng.normal(size=(3, 4)),)),
        Case("a (3, 4) matrix with entries near -1000", (-1000 + rng.normal(size=(3, 4)),)),
        Case("entries spread from -800 to 800", (np.linspace(-800, 800, 9),)),
        Case("a (3, 5) matrix with some -inf entries and one row that is all -inf", (masked,)),
    ]


def _logsumexp_variant(
    x, axis=-1, keepdims=False, *, shift=True, add_back=True, fix_inf=True, soft=True
):
    """log-sum-exp with knobs that reproduce the typical mistakes."""
    x = np.asarray(x, dtype=float)
    m = np.max(x, axis=axis, keepdims=True)
    if fix_inf:
        m = np.where(np.isfinite(m), m, 0.0)
    if not shift:
        m = np.zeros_like(m)
    with np.errstate(all="ignore"):
        out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    out = (m + out if add_back else out) if soft else m
    return out if keepdims else np.squeeze(out, axis=axis)


def _overflow(actual, expected, case: Case) -> str | None:
    x = np.asarray(case.args[0], dtype=float)
    extreme = np.abs(x[np.isfinite(x)]).max(initial=0.0) > 500
    finite = np.isfinite(expected)
    if actual.shape == expected.shape and extreme and (~np.isfinite(actual[finite])).any():
        return (
            "overflow or underflow: np.exp(1000) is inf and np.exp(-1000) is 0. Subtract the "
            "maximum along the axis before exponentiating and add it back after the log."
        )
    return None


LOGSUMEXP = Exercise(
    id="0.1",
    check_name="check_logsumexp",
    reference=reference_logsumexp,
    cases=_logsumexp_cases,
    outputs=[Output("log-sum-exp", rtol=1e-9, atol=1e-9)],
    mistakes=[
        Mistake(
            "a slice whose entries are all -inf should give -inf, yours gives NaN: the maximum "
            "is -inf there and -inf - (-inf) is NaN. Replace a non-finite maximum by 0 before "
            "subtracting it (np.where(np.isfinite(m), m, 0)).",
            lambda *a: _logsumexp_variant(*a, fix_inf=False),
        ),
        Mistake(
            "you subtracted the maximum but forgot to add it back after the log.",
            lambda *a: _logsumexp_variant(*a, add_back=False),
        ),
        Mistake(
            "you returned the maximum; log-sum-exp is the *soft* maximum, "
            "max + log sum exp(x - max).",
            lambda *a: _logsumexp_variant(*a, soft=False),
        ),
    ],
    diagnoses=[_overflow],
    success="log-sum-exp matches scipy on {n} inputs, including +-1000 and -inf entries.",
)
check_logsumexp = LOGSUMEXP.check


# ----------------------------------------------------------------------- Exercise 0.2


def _boltzmann_cases(rng: np.random.Generator) -> list[Case]:
    return [
        Case("Q-values of shape (5,), alpha=1", (rng.normal(size=5), 1.0)),
        Case("Q-values of shape (4, 3), alpha=0.5", (rng.normal(size=(4, 3)), 0.5)),
        Case("Q-values of shape (4, 3), alpha=2, axis=0", (rng.normal(size=(4, 3)), 2.0, 0)),
        Case("Q-values near 1000, alpha=1", (1000 + rng.normal(size=(2, 4)), 1.0)),
        Case(
            "Q-values of shape (3, 4), alpha=1e-3 (almost greedy)", (rng.normal(size=(3, 4)), 1e-3)
        ),
        Case(
            "Q-values of shape (3, 4), alpha=100 (almost uniform)", (rng.normal(size=(3, 4)), 100.0)
        ),
    ]


def _normalised(actual, expected, case: Case) -> str | None:
    """Probabilities that do not sum to one along the axis (along another one, or not at all)."""
    x = np.asarray(case.args[0], dtype=float)
    axis = case.args[2] if len(case.args) > 2 else -1
    if actual.shape != expected.shape or not np.isfinite(actual).all():
        return None
    sums = actual.sum(axis=axis)
    if np.allclose(sums, 1.0, atol=1e-6):
        return None
    other = actual.sum(axis=0 if axis in (-1, x.ndim - 1) else -1)
    if x.ndim > 1 and np.allclose(other, 1.0, atol=1e-6):
        return "your probabilities sum to 1 along the wrong axis."
    return (
        f"the probabilities should sum to 1 along axis {axis}; yours sum to "
        f"{np.round(sums, 4).tolist()}. Did you normalise with V = alpha * logsumexp(Q / alpha)?"
    )


BOLTZMANN = Exercise(
    id="0.2",
    check_name="check_boltzmann",
    reference=reference_boltzmann,
    cases=_boltzmann_cases,
    outputs=[Output("distribution", rtol=1e-7, atol=1e-10)],
    diagnoses=[_normalised],
    mistakes=[
        Mistake(
            "you multiplied by alpha where you should divide: pi = exp((Q - V) / alpha).",
            lambda x, alpha=1.0, axis=-1: reference_boltzmann(x, 1.0 / alpha, axis),
        ),
        Mistake(
            "your answer ignores the temperature alpha.",
            lambda x, alpha=1.0, axis=-1: reference_boltzmann(x, 1.0, axis),
        ),
    ],
    success="the Boltzmann distribution matches the reference on {n} inputs, alpha from 1e-3 to 100.",
)
check_boltzmann = BOLTZMANN.check
