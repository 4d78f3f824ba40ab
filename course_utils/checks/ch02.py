"""Checks for chapter 02 (gradient estimators).

* Exercise 2.1 ``score_function_gradient(r, mu, log_std, eps)``: 1/M Σ_j ∇φ log q_φ(z_j) r(z_j).
* Exercise 2.2 ``reparam_gradient(r, mu, log_std, eps)``: 1/M Σ_j ∇φ r(mu + eps_j sigma).
* Exercise 2.3 ``score_function_gradient_loo(rewards, logits, k)``: the categorical score
  function with the leave-one-out baseline.

Each check compares the student's function with :mod:`course_utils.estimators` on the same
noise or samples (so the comparison is exact), names typical mistakes by recomputing them
("mistake models": wrong sign, sum instead of mean, a missed chain rule, ...), checks that
two calls on the same tensors agree and leave them untouched, and tests unbiasedness
statistically against an exact gradient. When a wrong answer matches no mistake model, the
statistical test tells the student whether it is biased or only uses the noise differently.
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np
import torch

from .. import estimators as ref
from . import (
    Case,
    ExerciseError,
    as_array,
    call_student,
    check_shape,
    compare_with_reference,
    passed,
)

__all__ = [
    "check_score_function_gradient",
    "check_reparam_gradient",
    "check_score_function_gradient_loo",
]

_F64 = torch.float64
_RTOL, _ATOL = 1e-6, 1e-9
_Z_MAX = 5.0  # a mean further than this many standard errors from the exact gradient is biased
_PARTS = ("gradient w.r.t. mu", "gradient w.r.t. log_std")

Mistake = tuple[str, Callable[[Case], "np.ndarray | None"]]  # (feedback, wrong answer on a case)


def _t(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=float), dtype=_F64)


# ---------------------------------------------------------------------------------------
# inputs


def _wavy_reward(z: torch.Tensor) -> torch.Tensor:
    """r(z) = Σ_k sin(z_k) - 0.1 |z|^2: not quadratic, so no closed-form shortcut works."""
    return torch.sin(z).sum(-1) - 0.1 * (z**2).sum(-1)


def _loglik_like_reward(z: torch.Tensor) -> torch.Tensor:
    """r(z) = -50 - |z - 1|^2 / 2: large and negative, like log p(x|z) + log p(z)."""
    return -50.0 - 0.5 * ((z - 1.0) ** 2).sum(-1)


def _gaussian_cases(rng: np.random.Generator) -> list[Case]:
    """Cases (r, mu, log_std, eps): d = 1 to 5, M = 1 to 1000, sigma = 0.05 to 7.4."""

    def case(name, r, mu, log_std, m):
        mu, log_std = np.asarray(mu, float), np.asarray(log_std, float)
        eps = rng.normal(size=(m, mu.shape[0]))
        return Case(name, (r, _t(mu), _t(log_std), _t(eps)))

    square = ref.QuadraticReward(_t([[2.0]]), _t([2.0]))  # -(z - 2)^2
    full_a = rng.normal(size=(3, 3))
    full = ref.QuadraticReward(_t(full_a @ full_a.T + np.eye(3)), _t(rng.normal(size=3)))
    return [
        case("d=1, M=1, sigma=1, r(z) = -(z - 2)^2", square, [0.3], [0.0], 1),
        case("d=1, M=64, small sigma=0.05, r(z) = -(z - 2)^2", square, [-0.5], [np.log(0.05)], 64),
        case("d=3, M=200, sigma=(0.5, 1.5, 3), quadratic r with a full matrix A", full,
             rng.normal(size=3), np.log([0.5, 1.5, 3.0]), 200),
        case("d=2, M=2 (as many samples as dimensions), r(z) = sum(sin z) - 0.1 |z|^2",
             _wavy_reward, [0.4, -1.2], [-0.3, 0.2], 2),
        case("d=4, M=1000, large sigma=e^2, r(z) = sum(sin z) - 0.1 |z|^2",
             _wavy_reward, rng.normal(size=4), [2.0, 2.0, 2.0, 2.0], 1000),
        case("d=2, M=10, log_std > 0, r(z) = -50 - |z - 1|^2 / 2",
             _loglik_like_reward, [0.5, -0.5], [0.4, 0.9], 10),
        case("d=5, M=1, random mu and sigma, r(z) = -50 - |z - 1|^2 / 2",
             _loglik_like_reward, rng.normal(size=5), rng.uniform(-1.0, 1.0, size=5), 1),
    ]


def _categorical_cases(rng: np.random.Generator) -> list[Case]:
    """Cases (rewards, logits, k): K = 2 to 6, M = 2 to 200, logits near 1000."""

    def case(name, rewards, logits, m):
        logits = np.asarray(logits, float)
        p = np.exp(logits - logits.max())
        k = rng.choice(len(logits), size=m, p=p / p.sum())
        if m > 2 and len(np.unique(k)) == 1:  # make sure the baseline matters
            k[0] = (k[0] + 1) % len(logits)
        return Case(name, (_t(rewards), _t(logits), torch.as_tensor(k, dtype=torch.int64)))

    return [
        case("K=2 categories, M=2 samples", [1.0, -2.0], [0.3, -0.2], 2),
        case("K=5, M=5 (as many samples as categories)", rng.normal(size=5), rng.normal(size=5), 5),
        case("K=4, M=200, rewards near -100 (like log-likelihoods)", -100 + rng.normal(size=4),
             rng.normal(size=4), 200),
        case("K=6, M=3, logits near +1000", rng.normal(size=6), 1000 + rng.normal(size=6), 3),
        case("K=3, M=50, nearly deterministic logits (-15, 0, 15)", [2.0, -1.0, 0.5],
             [-15.0, 0.0, 15.0], 50),
        case("K=5, M=2, negative and positive rewards", [-3.0, 4.0, 0.0, 1.0, -1.0],
             rng.normal(size=5), 2),
    ]


# Closed-form cases of the statistical unbiasedness tests: the exact gradient is known.
_STAT_REWARD = ref.QuadraticReward(_t([[2.0, 0.5], [0.5, 1.0]]), _t([1.0, -1.0]))
_STAT_MU, _STAT_LOG_STD = _t([0.0, 0.5]), _t([0.3, -0.5])
_STAT_M, _STAT_REPS = 16, 1000
_CAT_REWARDS = _t([-11.0, -9.0, -12.0, -7.0, -10.0])
_CAT_LOGITS = _t([0.5, -0.3, 1.0, -1.0, 0.0])
_CAT_M, _CAT_REPS = 3, 1000


# ---------------------------------------------------------------------------------------
# machinery shared by the three checks


def _require_callable(exercise: str, fn) -> None:
    __tracebackhide__ = True
    if not callable(fn):
        raise ExerciseError(
            f"Exercise {exercise}: expected a function, got {type(fn).__name__}. "
            "Pass the function itself, without calling it (no parentheses)."
        )


def _explain(mistakes: list[Mistake], actual: np.ndarray, expected: np.ndarray,
             case: Case) -> str | None:
    """The feedback of the first mistake model that reproduces ``actual`` on ``case``."""
    if actual.shape != expected.shape or not np.isfinite(actual).all():
        return None
    for message, model in mistakes:
        wrong = model(case)
        if wrong is None:
            continue
        wrong = np.asarray(wrong, dtype=float)
        if wrong.shape != actual.shape or np.allclose(wrong, expected, rtol=_RTOL, atol=_ATOL):
            continue  # this mistake makes no difference on this input
        if np.allclose(actual, wrong, rtol=1e-5, atol=1e-8):
            return message
    return None


def _diagnose_with(exercise: str, mistakes: list[Mistake], student: Callable, reference: Callable,
                   cases: list[Case], fallback: Callable[[], str]):
    """A ``diagnose`` hook for :func:`compare_with_reference` built from mistake models.

    A mistake can be invisible on the failing input (the chain rule through sigma when
    sigma = 1), so the other inputs are tried too. ``fallback()``, a statistical test of
    the student's function, runs when no model explains the answer.
    """

    def diagnose(actual: np.ndarray, expected: np.ndarray, case: Case) -> str | None:
        __tracebackhide__ = True
        if actual.shape != expected.shape or not np.isfinite(actual).all():
            return None  # the shape and NaN hooks, or the generic message, say it better
        message = _explain(mistakes, actual, expected, case)
        if message:
            return message
        for other in cases:
            if other is case:
                continue
            try:
                other_actual = as_array(exercise, call_student(exercise, student, other))
            except ExerciseError:
                continue
            other_expected = np.asarray(other.call(reference), dtype=float)
            message = _explain(mistakes, other_actual, other_expected, other)
            if message:
                return f"{message} (It shows on the input: {other.name}.)"
        return fallback()

    return diagnose


def _chain(*hooks):
    """Combine ``diagnose`` hooks: the first one with something to say wins."""

    def diagnose(actual, expected, case):
        __tracebackhide__ = True
        for hook in hooks:
            message = hook(actual, expected, case)
            if message:
                return message
        return None

    return diagnose


def _bias_message(mean: np.ndarray, se: np.ndarray, exact: np.ndarray, labels: list[str],
                  reps: int, m: int) -> str | None:
    """Feedback when some mean estimate is more than ``_Z_MAX`` standard errors off."""
    z = (np.abs(mean - exact) / np.maximum(se, 1e-12)).ravel()
    if not (z > _Z_MAX).any():
        return None
    i = int(np.argmax(z))
    return (
        f"your estimator is biased: averaged over {reps} independent draws of M={m} samples, "
        f"its {labels[i]} is {mean.ravel()[i]:.4g} ± {se.ravel()[i]:.2g} (standard error), but "
        f"the exact gradient of E[r] is {exact.ravel()[i]:.4g}, {z[i]:.0f} standard errors away."
    )


class _SharedCase(Case):
    """A case whose arguments are passed as they are (not copied), to catch hidden state."""

    def call(self, fn: Callable):
        return fn(*self.args, **self.kwargs)


def _check_state(exercise: str, fn: Callable, args: tuple) -> None:
    """Two calls on the same tensors must agree and leave the tensors as they were."""
    __tracebackhide__ = True
    args = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)
    before = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
    case = _SharedCase("the same inputs, passed twice", args)
    first = as_array(exercise, call_student(exercise, fn, case))
    second = as_array(exercise, call_student(exercise, fn, case))
    for original, now, position in zip(before, args, ("first", "second", "third", "fourth")):
        if isinstance(now, torch.Tensor) and not torch.equal(original, now.detach()):
            raise ExerciseError(
                f"Exercise {exercise}: your function changed its {position} argument in place. "
                "Work on copies (x = x.detach().clone()) instead of modifying the caller's tensors."
            )
    if not np.allclose(first, second, rtol=_RTOL, atol=_ATOL):
        raise ExerciseError(
            f"Exercise {exercise}: two calls with the same inputs gave different results. If you "
            "read mu.grad after backward(), gradients accumulate from call to call; use "
            "torch.autograd.grad, or make fresh leaves with mu = mu.detach().requires_grad_()."
        )


# ---------------------------------------------------------------------------------------
# the Gaussian estimators (Exercises 2.1 and 2.2)

_BROKEN_PATH = {
    "2.1": (
        "autograd found no path from mu and log_std to your surrogate 1/M Σ_j log q(z_j) r(z_j): "
        "make fresh leaves mu = mu.detach().requires_grad_() (the same for log_std) and compute "
        "log q(z_j) from them; only z_j and r(z_j) stay constant."
    ),
    "2.2": (
        "autograd found no path from mu and log_std to your objective: z was cut off from them "
        "(by .detach(), torch.no_grad(), .item(), numpy, or building a new tensor). Keep "
        "z = mu + eps * log_std.exp() inside the graph, on tensors with requires_grad=True."
    ),
}


def _pair_output(exercise: str, fn: Callable) -> Callable:
    """Wrap a Gaussian estimator: validate its (grad_mu, grad_log_std) and stack it to (2, d)."""

    @functools.wraps(fn)
    def wrapped(r, mu, log_std, eps):
        __tracebackhide__ = True
        d, m = mu.shape[0], eps.shape[0]
        try:
            out = fn(r, mu, log_std, eps)
        except RuntimeError as exc:
            text = str(exc)
            if "does not require grad" in text or "not have been used in the graph" in text:
                raise ExerciseError(
                    f"Exercise {exercise}: {_BROKEN_PATH[exercise]} (torch said: {text})"
                ) from exc
            raise
        except ValueError as exc:
            if "parameter scale" in str(exc):
                raise ExerciseError(
                    f"Exercise {exercise}: torch.distributions rejected a negative scale: you "
                    "passed log_std where the standard deviation belongs. Use "
                    "sigma = log_std.exp()."
                ) from exc
            raise
        if out is None:
            raise ExerciseError(
                f"Exercise {exercise}: your function returned None. Did you forget "
                "`return grad_mu, grad_log_std`?"
            )
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            what = (f"an object of shape {tuple(out.shape)}" if hasattr(out, "shape")
                    else type(out).__name__)
            raise ExerciseError(
                f"Exercise {exercise}: return a pair `grad_mu, grad_log_std` (two arrays of shape "
                f"({d},)), got {what}."
            )
        parts = []
        for value, name in zip(out, _PARTS):
            if value is None:
                raise ExerciseError(
                    f"Exercise {exercise}: the {name} is None. A tensor's .grad stays None unless "
                    "it requires grad and backward() reached it; torch.autograd.grad(objective, "
                    "(mu, log_std)) returns the gradients directly."
                )
            array = as_array(exercise, value, name)
            if array.shape == (m, d):
                raise ExerciseError(
                    f"Exercise {exercise}: the {name} has shape {array.shape}, one row per sample: "
                    f"average over the M={m} samples (axis 0) to get shape ({d},)."
                )
            if array.shape == (m,) and m != d:
                raise ExerciseError(
                    f"Exercise {exercise}: the {name} has shape ({m},): you averaged over the d "
                    f"dimensions (axis 1, here d={d}) instead of over the M samples (axis 0)."
                )
            if array.shape == () and d > 1:
                raise ExerciseError(
                    f"Exercise {exercise}: the {name} is a single number; it needs one entry per "
                    f"dimension of mu, shape ({d},). Average over the samples only (axis 0)."
                )
            check_shape(exercise, array, (d,), name)
            parts.append(array.astype(float))
        return np.stack(parts)

    return wrapped


def _stack(grad_mu: torch.Tensor, grad_log_std: torch.Tensor) -> np.ndarray:
    return torch.stack([grad_mu.detach(), grad_log_std.detach()]).numpy()


def _pieces(case: Case):
    """rewards (M, 1), eps (M, d), sigma (d,) of a Gaussian case."""
    r, mu, log_std, eps = case.args
    std = torch.exp(log_std)
    with torch.no_grad():
        rewards = r(mu + eps * std)[:, None]
    return rewards, eps, std


def _average(mu_terms: torch.Tensor, log_std_terms: torch.Tensor, axis: int = 0):
    """Average per-sample terms (M, d) over ``axis``; None when axis 1 gives another shape."""
    if axis == 1 and mu_terms.shape[0] != mu_terms.shape[1]:
        return None
    return _stack(mu_terms.mean(axis), log_std_terms.mean(axis))


def _replace(answer: np.ndarray, row: int, values) -> np.ndarray:
    answer = answer.copy()
    answer[row] = values
    return answer


def _if_log_std_positive(model: Callable) -> Callable:
    """Mistakes that treat log_std as sigma only make sense (without NaN) for log_std > 0."""
    return lambda case: model(case) if (case.args[2] > 0).all() else None


def _score_surrogate(case: Case, *, detach_z: bool, detach_r: bool, scale_is_log_std: bool):
    """Gradients of 1/M Σ log N(z_j; mu, s) r(z_j) under (mis)readings of the recipe."""
    r, mu, log_std, eps = case.args
    mu = mu.clone().requires_grad_(True)
    log_std = log_std.clone().requires_grad_(True)
    scale = log_std if scale_is_log_std else torch.exp(log_std)
    z = mu + eps * scale
    z = z.detach() if detach_z else z
    rewards = r(z).detach() if detach_r else r(z)
    log_q = -0.5 * ((z - mu) / scale) ** 2 - torch.log(torch.abs(scale))
    grads = torch.autograd.grad((log_q.sum(-1) * rewards).mean(), (mu, log_std),
                                allow_unused=True)
    return _stack(*(torch.zeros_like(mu) if g is None else g for g in grads))


def _pathwise(case: Case, *, scale_is_log_std: bool = False) -> np.ndarray:
    """Gradient of 1/M Σ r(mu + eps_j s) with s = sigma (correct) or s = log_std (mistake)."""
    r, mu, log_std, eps = case.args
    mu = mu.clone().requires_grad_(True)
    log_std = log_std.clone().requires_grad_(True)
    scale = log_std if scale_is_log_std else torch.exp(log_std)
    return _stack(*torch.autograd.grad(r(mu + eps * scale).mean(), (mu, log_std)))


def _pathwise_per_sample(case: Case) -> tuple[torch.Tensor, torch.Tensor]:
    """∇_z r(z_j) and ∇_z r(z_j) * eps_j * sigma, one row per sample: (M, d) each."""
    r, mu, log_std, eps = case.args
    std = torch.exp(log_std)
    z = (mu + eps * std).detach().requires_grad_(True)
    (grad_z,) = torch.autograd.grad(r(z).sum(), z)
    return grad_z, grad_z * eps * std


def _score_reference(case: Case) -> np.ndarray:
    return _stack(*ref.score_function_gradient(*case.args))


def _reparam_reference(case: Case) -> np.ndarray:
    return _stack(*ref.reparam_gradient(*case.args))


def _sum_instead_of_mean(reference: Callable[[Case], np.ndarray]) -> Callable:
    def model(case):
        m = case.args[3].shape[0]
        return m * reference(case) if m > 1 else None

    return model


def _zeros(case: Case) -> np.ndarray:
    return np.zeros((2, case.args[1].shape[0]))


def _gaussian_nan_hint(actual: np.ndarray, expected: np.ndarray, case: Case) -> str | None:
    nan = actual.shape == expected.shape and not np.isfinite(actual).all()
    if nan and (case.args[2] < 0).any():
        return ("your gradient contains NaN on an input where some log_std < 0. A common cause is "
                "using log_std as the standard deviation (the log or square root of a negative "
                "number is NaN); sigma = log_std.exp().")
    return None


def _gaussian_statistics(exercise: str, wrapped: Callable):
    """Mean and standard error of the estimates on the closed-form case, and the exact gradient."""
    __tracebackhide__ = True
    generator = torch.Generator().manual_seed(2024)
    estimates = np.empty((_STAT_REPS, 2, 2))
    for rep in range(_STAT_REPS):
        eps = torch.randn(_STAT_M, 2, generator=generator, dtype=_F64)
        case = Case(f"the closed-form case (quadratic r, d=2, M={_STAT_M})",
                    (_STAT_REWARD, _STAT_MU.clone(), _STAT_LOG_STD.clone(), eps))
        estimates[rep] = call_student(exercise, wrapped, case)
    exact = _stack(*_STAT_REWARD.gradient(_STAT_MU, _STAT_LOG_STD))
    return estimates.mean(0), estimates.std(0, ddof=1) / np.sqrt(_STAT_REPS), exact


_GAUSSIAN_LABELS = ["d/d mu[0]", "d/d mu[1]", "d/d log_std[0]", "d/d log_std[1]"]


def _run_gaussian_check(exercise: str, student: Callable, reference: Callable,
                        mistakes: list[Mistake], recipe: str, seed: int) -> int:
    """Compare, diagnose, check hidden state and unbiasedness; return the number of cases."""
    __tracebackhide__ = True
    _require_callable(exercise, student)
    wrapped = _pair_output(exercise, student)
    cases = _gaussian_cases(np.random.default_rng(seed))

    def stacked_reference(*args):
        return _stack(*reference(*args))

    def fallback() -> str:
        __tracebackhide__ = True
        biased = _bias_message(*_gaussian_statistics(exercise, wrapped), _GAUSSIAN_LABELS,
                               _STAT_REPS, _STAT_M)
        if biased:
            return f"{biased} Compare your code with {recipe}."
        return ("your estimates look unbiased on average, but they do not match the reference for "
                "the same noise eps. Use exactly the given eps (do not draw new noise) with "
                f"z = mu + eps * log_std.exp(), and {recipe}.")

    diagnose = _chain(_gaussian_nan_hint, _diagnose_with(
        exercise, mistakes, wrapped, stacked_reference, cases, fallback))
    n = compare_with_reference(
        exercise, wrapped, stacked_reference, cases,
        name="gradient estimate (row 0: d/d mu, row 1: d/d log_std)",
        rtol=_RTOL, atol=_ATOL, diagnose=diagnose,
    )
    _check_state(exercise, wrapped, cases[2].args)
    biased = _bias_message(*_gaussian_statistics(exercise, wrapped), _GAUSSIAN_LABELS,
                           _STAT_REPS, _STAT_M)
    if biased:
        raise ExerciseError(f"Exercise {exercise}: {biased}")
    return n


_ASCENT = ("wrong sign: J(phi) = E[r] is maximized by gradient ASCENT (phi <- phi + alpha ∇φJ), "
           "so return ∇φJ itself, not the gradient of the loss -J.")
_CHAIN_RULE = ("your d/d log_std is the gradient with respect to sigma: you forgot the chain rule "
               "through sigma = exp(log_std), d/d log_std = sigma * d/d sigma.")


def _score_mistakes() -> list[Mistake]:
    def terms(case):
        rewards, eps, std = _pieces(case)
        return rewards, eps, std, _score_reference(case)

    def chain_rule(case):
        *_, std, answer = terms(case)
        return _replace(answer, 1, answer[1] / std.numpy())

    def missing_minus_one(case):
        rewards, eps, _, answer = terms(case)
        return _replace(answer, 1, (rewards * eps**2).mean(0).numpy())

    def mu_score_times(power):
        def model(case):
            rewards, eps, std, answer = terms(case)
            return _replace(answer, 0, (rewards * eps * std**power).mean(0).numpy())
        return model

    def wrong_axis(case):
        rewards, eps, std, _ = terms(case)
        return _average(rewards * eps / std, rewards * (eps**2 - 1), axis=1)

    def missing_reward(case):
        _, eps, std, _ = terms(case)
        return _average(eps / std, eps**2 - 1)

    def missing_score(case):
        rewards, *_ = terms(case)
        return np.full((2, case.args[1].shape[0]), rewards.mean().item())

    z_not_constant = (
        "z_j must be a constant in the score function: the log q you differentiated still "
        "depended on mu and log_std through z = mu + eps * sigma. Compute z (and r(z)) under "
        "torch.no_grad(), or call .detach(), before evaluating log q(z)."
    )
    return [
        ("your gradient is exactly zero. The estimate 1/M Σ_j ∇φ log q(z_j) r(z_j) vanishes only "
         "if the score or r(z_j) got lost: hold z_j fixed, but differentiate log q with respect "
         "to mu and log_std (which must require grad if you use autograd).", _zeros),
        (_ASCENT, lambda case: -_score_reference(case)),
        ("you summed over the M samples; the estimator averages them: 1/M Σ_j.",
         _sum_instead_of_mean(_score_reference)),
        ("you averaged over the d dimensions (axis 1) instead of over the M samples (axis 0).",
         wrong_axis),
        (_CHAIN_RULE + " For the Gaussian score, d log q / d log_std = (z - mu)^2 / sigma^2 - 1 "
         "= eps^2 - 1.", chain_rule),
        ("your d/d log_std misses the -1: d log q / d log_std = (z - mu)^2 / sigma^2 - 1 = "
         "eps^2 - 1; the -1 comes from the normaliser 1/sigma of the Gaussian density.",
         missing_minus_one),
        ("your d/d mu has the wrong scale: d log q / d mu = (z - mu) / sigma^2 = eps / sigma.",
         mu_score_times(0)),
        ("your d/d mu has the wrong scale: d log q / d mu = (z - mu) / sigma^2 = eps / sigma, "
         "and z - mu = eps * sigma, so you need to divide by sigma^2.", mu_score_times(1)),
        ("you forgot the factor r(z_j): the estimator is 1/M Σ_j ∇φ log q(z_j) r(z_j); without "
         "r it estimates E[∇φ log q] = 0.", missing_reward),
        ("you forgot the score ∇φ log q_φ(z_j): the estimator multiplies each r(z_j) by the "
         "gradient of log q at that sample, 1/M Σ_j ∇φ log q(z_j) r(z_j).", missing_score),
        ("this is the reparameterization estimate (you differentiated r through "
         "z = mu + eps sigma). Exercise 2.1 asks for the score function: hold z_j and r(z_j) "
         "fixed and differentiate only log q_φ(z_j).", _reparam_reference),
        (z_not_constant, lambda case: _score_surrogate(case, detach_z=False, detach_r=True,
                                                       scale_is_log_std=False)),
        (z_not_constant, lambda case: _score_surrogate(case, detach_z=False, detach_r=False,
                                                       scale_is_log_std=False)),
        ("you used log_std as the standard deviation; sigma = log_std.exp().",
         _if_log_std_positive(lambda case: _score_surrogate(case, detach_z=True, detach_r=True,
                                                            scale_is_log_std=True))),
    ]


def check_score_function_gradient(score_function_gradient: Callable, seed: int = 0) -> None:
    """Exercise 2.1: ``score_function_gradient(r, mu, log_std, eps) -> (grad_mu, grad_log_std)``."""
    __tracebackhide__ = True
    n = _run_gaussian_check(
        "2.1", score_function_gradient, ref.score_function_gradient, _score_mistakes(),
        "1/M Σ_j ∇φ log q(z_j) r(z_j) with ∇_mu log q = eps / sigma, ∇_log_std log q = eps^2 - 1",
        seed,
    )
    passed("2.1", f"the score-function estimate matches the reference on {n} inputs (d = 1 to 5, "
                  "M = 1 to 1000, sigma = 0.05 to 7.4) and is unbiased on a quadratic reward.")


def _reparam_mistakes() -> list[Mistake]:
    def chain_rule(case):
        answer = _reparam_reference(case)
        return _replace(answer, 1, answer[1] / torch.exp(case.args[2]).numpy())

    def wrong_axis(case):
        return _average(*_pathwise_per_sample(case), axis=1)

    return [
        ("your gradient is exactly zero: z was cut off from mu and log_std (by .detach(), "
         "torch.no_grad(), numpy, or a fresh tensor), so autograd sees r(z) as a constant. The "
         "reparameterization trick needs the path mu, log_std -> z = mu + eps * exp(log_std) "
         "-> r(z).", _zeros),
        ("your gradient w.r.t. log_std is zero: sigma = exp(log_std) was detached (or sampled "
         "without a gradient path), so only mu receives a gradient. Keep "
         "z = mu + eps * log_std.exp() in the graph.",
         lambda case: _replace(_reparam_reference(case), 1, 0.0)),
        (_ASCENT, lambda case: -_reparam_reference(case)),
        ("you summed over the M samples; the estimator averages them: differentiate "
         "r(z).mean(), not r(z).sum().", _sum_instead_of_mean(_reparam_reference)),
        ("you averaged over the d dimensions (axis 1) instead of over the M samples (axis 0).",
         wrong_axis),
        (_CHAIN_RULE + " Here dz/d log_std = eps * sigma, not eps: build z from log_std.exp() "
         "and let autograd differentiate with respect to log_std.", chain_rule),
        ("you used log_std as the standard deviation: z = mu + eps * log_std.exp(), not "
         "mu + eps * log_std.",
         _if_log_std_positive(lambda case: _pathwise(case, scale_is_log_std=True))),
        ("this is the score-function estimate of Exercise 2.1. Here differentiate r itself "
         "through z = mu + eps * sigma: the gradient of 1/M Σ_j r(mu + eps_j sigma).",
         _score_reference),
    ]


def check_reparam_gradient(reparam_gradient: Callable, seed: int = 0) -> None:
    """Exercise 2.2: ``reparam_gradient(r, mu, log_std, eps) -> (grad_mu, grad_log_std)``."""
    __tracebackhide__ = True
    n = _run_gaussian_check(
        "2.2", reparam_gradient, ref.reparam_gradient, _reparam_mistakes(),
        "the gradient of 1/M Σ_j r(mu + eps_j * exp(log_std)) with respect to mu and log_std",
        seed,
    )
    passed("2.2", f"the reparameterization estimate matches the reference on {n} inputs (d = 1 "
                  "to 5, M = 1 to 1000, sigma = 0.05 to 7.4) and is unbiased on a quadratic "
                  "reward.")


# ---------------------------------------------------------------------------------------
# Exercise 2.3: categorical score function with a leave-one-out baseline

_LOO_FORMULA = "b_j = 1/(M-1) Σ_{i≠j} r(k_i)"


def _loo_pieces(case: Case):
    """rewards of the samples r (M,), M, q (K,), one-hot samples (M, K)."""
    rewards, logits, k = case.args
    onehot = torch.nn.functional.one_hot(k, logits.shape[0]).to(_F64)
    return rewards[k], k.shape[0], torch.softmax(logits, -1), onehot


def _with_baseline(baseline: Callable) -> Callable[[Case], np.ndarray]:
    """The estimate 1/M Σ_j (r_j - b_j)(e_kj - q) for ``baseline(r, M) -> b`` (M,) or scalar."""

    def model(case):
        r, m, q, onehot = _loo_pieces(case)
        return ((r - baseline(r, m))[:, None] * (onehot - q)).mean(0).numpy()

    return model


def _loo_reference(case: Case) -> np.ndarray:
    return ref.categorical_score_gradient_loo(*case.args).numpy()


def _loo_mistakes() -> list[Mistake]:
    def missing_reward(case):
        _, _, q, onehot = _loo_pieces(case)
        return (onehot - q).mean(0).numpy()

    return [
        ("your gradient is exactly zero. Two usual causes: the baseline for sample j is r(k_j) "
         "itself, so every term r(k_j) - b_j vanishes (b_j must leave sample j out, "
         f"{_LOO_FORMULA}); or you averaged over the K categories (axis 1) instead of over the "
         "M samples (axis 0): each score e_k - softmax(logits) sums to zero over the categories.",
         lambda case: np.zeros(case.args[1].shape)),
        ("wrong sign: the estimate is 1/M Σ_j (r(k_j) - b_j) ∇ log q(k_j), the gradient to "
         "ASCEND.", lambda case: -_loo_reference(case)),
        ("your baseline is the mean of all M rewards, including r(k_j) itself. It then depends "
         "on the sample it multiplies, which biases the estimate: on average it shrinks the "
         f"gradient by the factor (M-1)/M. Leave sample j out: {_LOO_FORMULA}.",
         _with_baseline(lambda r, m: r.mean())),
        ("your leave-one-out baseline divides by M; the mean of the M-1 other rewards divides "
         "by M-1.", _with_baseline(lambda r, m: (r.sum() - r) / m)),
        ("you subtracted no baseline: that is the plain score-function estimate, unbiased but "
         f"with a much larger variance. Subtract {_LOO_FORMULA} from r(k_j).",
         lambda case: ref.categorical_score_gradient(*case.args).numpy()),
        ("you summed over the M samples; the estimator averages them: 1/M Σ_j.",
         lambda case: case.args[2].shape[0] * _loo_reference(case)),
        ("you forgot the factor r(k_j) - b_j: without it you average the scores, whose "
         "expectation is E[∇ log q] = 0.", missing_reward),
    ]


def _loo_shape_and_nan(actual: np.ndarray, expected: np.ndarray, case: Case) -> str | None:
    _, logits, k = case.args
    m, n_cat = k.shape[0], logits.shape[0]
    if actual.shape == (m, n_cat):
        return (f"your result has shape {actual.shape}, one row per sample: average over the "
                f"M={m} samples (axis 0) to get shape ({n_cat},).")
    if actual.shape == (m,) and m != n_cat:
        return (f"your result has shape ({m},): you averaged over the K categories (axis 1, here "
                f"K={n_cat}) instead of over the M samples (axis 0).")
    if actual.shape == () and n_cat > 1:
        return f"your result is a single number; it needs one entry per logit, shape ({n_cat},)."
    if actual.shape == expected.shape and not np.isfinite(actual).all() and logits.max() > 500:
        return ("NaN for logits near 1000: exp(1000) overflows. Use torch.softmax or "
                "torch.log_softmax, which subtract the maximum logit first.")
    return None


def _loo_statistics(exercise: str, student: Callable):
    """Mean and standard error of the estimates on the 5-category case, and the exact gradient."""
    __tracebackhide__ = True
    generator = torch.Generator().manual_seed(2024)
    probs = torch.softmax(_CAT_LOGITS, -1)
    n_cat = _CAT_LOGITS.shape[0]
    estimates = np.empty((_CAT_REPS, n_cat))
    for rep in range(_CAT_REPS):
        k = torch.multinomial(probs, _CAT_M, replacement=True, generator=generator)
        case = Case(f"the closed-form case (K={n_cat}, M={_CAT_M})",
                    (_CAT_REWARDS.clone(), _CAT_LOGITS.clone(), k))
        result = as_array(exercise, call_student(exercise, student, case), "gradient estimate")
        check_shape(exercise, result, (n_cat,), "gradient estimate", case.name)
        estimates[rep] = result
    exact = ref.categorical_exact_gradient(_CAT_REWARDS, _CAT_LOGITS).numpy()
    return estimates.mean(0), estimates.std(0, ddof=1) / np.sqrt(_CAT_REPS), exact


_LOO_LABELS = [f"d/d logits[{i}]" for i in range(_CAT_LOGITS.shape[0])]


def check_score_function_gradient_loo(score_function_gradient_loo: Callable, seed: int = 0) -> None:
    """Exercise 2.3: ``score_function_gradient_loo(rewards, logits, k) -> grad_logits`` (K,)."""
    __tracebackhide__ = True
    exercise, student = "2.3", score_function_gradient_loo
    _require_callable(exercise, student)

    def fallback() -> str:
        __tracebackhide__ = True
        biased = _bias_message(*_loo_statistics(exercise, student), _LOO_LABELS, _CAT_REPS, _CAT_M)
        if biased:
            return (f"{biased} A baseline keeps the estimate unbiased only if b_j does not depend "
                    "on the sample k_j it multiplies.")
        return ("your estimates look unbiased on average but differ from the leave-one-out "
                "estimate on the same samples: use the given samples k, the baseline "
                f"{_LOO_FORMULA}, and average (r(k_j) - b_j)(e_(k_j) - softmax(logits)) over j.")

    cases = _categorical_cases(np.random.default_rng(seed))
    diagnose = _chain(_loo_shape_and_nan, _diagnose_with(
        exercise, _loo_mistakes(), student, ref.categorical_score_gradient_loo, cases, fallback))
    n = compare_with_reference(
        exercise, student, ref.categorical_score_gradient_loo, cases,
        name="gradient estimate", rtol=_RTOL, atol=_ATOL, diagnose=diagnose,
    )
    _check_state(exercise, student, cases[1].args)
    biased = _bias_message(*_loo_statistics(exercise, student), _LOO_LABELS, _CAT_REPS, _CAT_M)
    if biased:
        raise ExerciseError(f"Exercise {exercise}: {biased}")
    passed(exercise, f"the leave-one-out estimate matches the reference on {n} inputs (K = 2 to 6, "
                     "M = 2 to 200, logits near 1000) and is unbiased on a 5-category example.")
