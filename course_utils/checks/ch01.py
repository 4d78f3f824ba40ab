"""Checks for chapter 01 (variational inference).

Exercise 1.1 ``gaussian_entropy``, 1.2 ``gaussian_kl``, 1.3 ``elbo_mc`` (a Monte Carlo ELBO) and
1.4 ``vi_step`` (one gradient-ascent step of per-datapoint VI). The references are in
:mod:`course_utils.lvm`. Every check runs the student's function on random inputs and edge
cases (batch axes, sigma < 1 and > 1, tiny and huge sigma, a broadcast prior, d = 1) and, when
the answer is wrong, tries the typical mistakes (wrong sign, reversed KL, missing entropy,
log-std / std confusion, wrong reduction axis) to say which one it is.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .. import lvm
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

__all__ = ["check_gaussian_entropy", "check_gaussian_kl", "check_elbo_mc", "check_vi_step"]

HALF_LOG_2PI_E = 0.5 * (lvm.LOG_2PI + 1.0)

Mistakes = Sequence[tuple[str, Callable[[], Any]]]


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array, dtype=np.float64))


def _numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=float)


def _close(actual: np.ndarray, candidate: np.ndarray, rtol: float, atol: float) -> bool:
    """Same shape and equal within tolerance, NaN matching NaN (but not an all-NaN candidate)."""
    if candidate.shape != actual.shape or not np.isfinite(candidate).any():
        return False
    with np.errstate(all="ignore"):
        return bool(np.allclose(actual, candidate, rtol=rtol, atol=atol, equal_nan=True))


def _first_mistake(
    actual: np.ndarray, mistakes: Mistakes, rtol: float = 1e-6, atol: float = 1e-8
) -> str | None:
    """The message of the first typical mistake whose output equals ``actual``."""
    for message, make in mistakes:
        try:
            with np.errstate(all="ignore"):
                candidate = _numpy(make())
        except Exception:  # a mistake that cannot even be computed on this input
            continue
        if _close(actual, candidate, rtol, atol):
            return message
    return None


def _reduction_mistakes(per_dim: torch.Tensor, what: str) -> list[tuple[str, Callable[[], Any]]]:
    """Typical wrong reductions of per-dimension terms (..., d) whose correct reduction is sum(-1)."""
    mistakes = [
        (f"you returned one {what} per latent dimension (shape (..., d)); a diagonal Gaussian's "
         f"{what} is the sum over its independent dimensions, so sum over the last axis.",
         lambda: per_dim),
        (f"you averaged over the latent dimensions; the {what} of independent dimensions is their "
         "sum, so use .sum(-1), not .mean(-1).",
         lambda: per_dim.mean(-1)),
        (f"you reduced over every axis and returned one number; reduce over the last axis (the "
         f"latent dimensions) only and keep one {what} per batch entry.",
         lambda: per_dim.sum()),
    ]
    if per_dim.ndim >= 2:
        mistakes.insert(0, (
            f"you summed over the batch axis (axis 0) instead of the latent dimensions: the "
            f"{what} reduces over the LAST axis, (..., d) -> (...), one value per batch entry. "
            "Use .sum(-1) (or .sum(dim=-1)).",
            lambda: per_dim.sum(0),
        ))
    return mistakes


# ----------------------------------------------------------------------- Exercise 1.1


def _entropy_cases(rng: np.random.Generator) -> list[Case]:
    mixed = rng.normal(size=(5, 2))
    mixed[0], mixed[1] = np.abs(mixed[0]), -np.abs(mixed[1])  # one q with sigma > 1, one with sigma < 1
    return [
        Case("a batch of 5 q's with d=2 (sigma < 1 and > 1)", (_tensor(mixed),)),
        Case("a single q with d=3, log_std ~ N(0, 1)", (_tensor(rng.normal(size=3)),)),
        Case("batch axes (2, 4) with d=3", (_tensor(rng.normal(size=(2, 4, 3))),)),
        Case("a (4, 4) batch with sigma < 1 (log_std in [-3, -0.1])",
             (_tensor(rng.uniform(-3.0, -0.1, size=(4, 4))),)),
        Case("tiny sigmas (log_std = -30, sigma ~ 1e-13), shape (3, 2)",
             (_tensor(np.full((3, 2), -30.0) + rng.normal(size=(3, 2))),)),
        Case("huge sigmas (log_std = 12, sigma ~ 1.6e5), shape (2, 5)",
             (_tensor(np.full((2, 5), 12.0) + rng.normal(size=(2, 5))),)),
        Case("d=1 with a batch of 6 (log_std in [-2, 2])", (_tensor(rng.uniform(-2, 2, size=(6, 1))),)),
    ]


def _diagnose_entropy(actual: np.ndarray, expected: np.ndarray, case: Case) -> str | None:
    log_std = case.args[0]
    c = HALF_LOG_2PI_E
    mistakes = [
        ("your entropy has the wrong sign: H(q) = -E_q[log q(z)] = sum_j (1/2 log(2 pi e) + log sigma_j) "
         "(it grows with sigma).",
         lambda: -lvm.gaussian_entropy(log_std)),
        ("you used sigma = exp(log_std) where log sigma belongs: the input is already log sigma, so "
         "H = sum_j (1/2 log(2 pi e) + log_std_j).",
         lambda: (c + torch.exp(log_std)).sum(-1)),
        ("you took the log of log_std, treating it as sigma (this gives NaN for log_std < 0): the "
         "input is log sigma already, so log sigma_j = log_std_j and sigma = exp(log_std).",
         lambda: (c + torch.log(log_std)).sum(-1)),
        ("you treated log_std as sigma (1/2 log(2 pi e log_std^2) = 1/2 log(2 pi e) + log|log_std|): "
         "log sigma_j is log_std_j itself and sigma = exp(log_std).",
         lambda: (c + torch.log(log_std.abs())).sum(-1)),
        ("you used log sigma^2 = 2 log_std where log sigma belongs: H = 1/2 log(2 pi e sigma^2) = "
         "1/2 log(2 pi e) + log sigma per dimension.",
         lambda: (c + 2.0 * log_std).sum(-1)),
        ("the constant per dimension is 1/2 log(2 pi e) = 1/2 (log(2 pi) + 1); you left out the +1/2 "
         "that comes from the e (E_q[(z - mu)^2 / sigma^2] = 1).",
         lambda: (0.5 * lvm.LOG_2PI + log_std).sum(-1)),
        ("the constant per dimension is 1/2 log(2 pi e), not log(2 pi e).",
         lambda: (2.0 * c + log_std).sum(-1)),
        ("you dropped the constant 1/2 log(2 pi e) per dimension; without it H is not the entropy "
         "(and the ELBO will not equal log p(x) - KL).",
         lambda: log_std.sum(-1)),
        *_reduction_mistakes(c + log_std, "entropy"),
    ]
    return _first_mistake(actual, mistakes)


def check_gaussian_entropy(gaussian_entropy: Callable, seed: int = 0) -> None:
    """Exercise 1.1: ``gaussian_entropy(log_std)`` = sum over the last axis of 1/2 log(2 pi e) + log sigma."""
    __tracebackhide__ = True
    cases = _entropy_cases(np.random.default_rng(seed))
    n = compare_with_reference(
        "1.1", gaussian_entropy, lvm.gaussian_entropy, cases, name="entropy",
        rtol=1e-6, atol=1e-8, diagnose=_diagnose_entropy,
    )
    passed("1.1", f"the Gaussian entropy matches the reference on {n} inputs, sigma from 1e-13 to 1e5.")


# ----------------------------------------------------------------------- Exercise 1.2


def _kl_cases(rng: np.random.Generator) -> list[Case]:
    def q_and_p(shape_q, shape_p, loc_q=0.0, loc_p=0.0):
        return (_tensor(rng.normal(size=shape_q)), _tensor(loc_q + rng.normal(size=shape_q)),
                _tensor(rng.normal(size=shape_p)), _tensor(loc_p + rng.normal(size=shape_p)))

    mixed = q_and_p((5, 2), (5, 2))
    mixed[1][0], mixed[3][0] = mixed[1][0].abs(), mixed[3][0].abs()  # a pair with sigmas > 1
    mixed[1][1], mixed[3][1] = -mixed[1][1].abs(), -mixed[3][1].abs()  # a pair with sigmas < 1
    same = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    return [
        Case("5 pairs (q, p) with d=2, sigmas < 1 and > 1", mixed),
        Case("4 q's with d=3 against the prior N(0, I) (mu_p, log_std_p of shape (3,))",
             (_tensor(rng.normal(size=(4, 3))), _tensor(rng.normal(size=(4, 3))),
              _tensor(np.zeros(3)), _tensor(np.zeros(3)))),
        Case("batch axes (2, 3) with d=4", q_and_p((2, 3, 4), (2, 3, 4))),
        Case("a (3, 3) batch: q narrow (log_std_q ~ -1), p wide (log_std_p ~ +1)",
             q_and_p((3, 3), (3, 3), loc_q=-1.0, loc_p=1.0)),
        Case("q = p (the KL must be 0), shape (2, 3)",
             (_tensor(same[0]), _tensor(same[1]), _tensor(same[0]), _tensor(same[1]))),
        Case("tiny sigma_q (log_std_q = -12) against log_std_p = -1, shape (4, 2)",
             q_and_p((4, 2), (4, 2), loc_q=-12.0, loc_p=-1.0)),
        Case("huge sigma_q (log_std_q = 6) against a narrow p (log_std_p = -2), shape (4, 2)",
             q_and_p((4, 2), (4, 2), loc_q=6.0, loc_p=-2.0)),
        Case("d=1 with a batch of 6", q_and_p((6, 1), (6, 1))),
    ]


def _diagnose_kl(actual: np.ndarray, expected: np.ndarray, case: Case) -> str | None:
    mu_q, log_std_q, mu_p, log_std_p = case.args

    def per_dim(log_ratio, var_ratio, mean_term, const=-0.5):
        return log_ratio + 0.5 * (var_ratio + mean_term) + const

    dmu2 = (mu_q - mu_p) ** 2
    right = per_dim(log_std_p - log_std_q, torch.exp(2 * (log_std_q - log_std_p)),
                    dmu2 / torch.exp(2 * log_std_p))
    mistakes = [
        ("your KL is the negative of the right one; D_KL(q||p) >= 0 always. It is E_q[log q - log p] = "
         "sum_j log(sigma_p/sigma_q) + (sigma_q^2 + (mu_q - mu_p)^2) / (2 sigma_p^2) - 1/2.",
         lambda: -lvm.gaussian_kl(mu_q, log_std_q, mu_p, log_std_p)),
        ("you computed D_KL(p||q), the reverse direction; KL is not symmetric. With q first: "
         "D_KL(q||p) = E_{z~q}[log q(z) - log p(z)] = sum_j log(sigma_p/sigma_q) + (sigma_q^2 + "
         "(mu_q - mu_p)^2) / (2 sigma_p^2) - 1/2.",
         lambda: lvm.gaussian_kl(mu_p, log_std_p, mu_q, log_std_q)),
        ("the log term has the wrong sign: it is log(sigma_p / sigma_q) = log_std_p - log_std_q.",
         lambda: per_dim(log_std_q - log_std_p, torch.exp(2 * (log_std_q - log_std_p)),
                         dmu2 / torch.exp(2 * log_std_p)).sum(-1)),
        ("you used sigma where log sigma belongs in the log term: log(sigma_p / sigma_q) = "
         "log_std_p - log_std_q (the inputs are already logs).",
         lambda: per_dim(torch.exp(log_std_p) - torch.exp(log_std_q), torch.exp(2 * (log_std_q - log_std_p)),
                         dmu2 / torch.exp(2 * log_std_p)).sum(-1)),
        ("you treated log_std as sigma (you took its log; this gives NaN for log_std < 0): log sigma is "
         "log_std itself and sigma = exp(log_std).",
         lambda: per_dim(torch.log(log_std_p / log_std_q), (log_std_q / log_std_p) ** 2,
                         dmu2 / log_std_p**2).sum(-1)),
        ("you used log_std as the standard deviation in (sigma_q^2 + (mu_q - mu_p)^2) / (2 sigma_p^2); "
         "sigma = exp(log_std), so sigma^2 = exp(2 log_std).",
         lambda: per_dim(log_std_p - log_std_q, (log_std_q / log_std_p) ** 2, dmu2 / log_std_p**2).sum(-1)),
        ("you used sigma where the variance sigma^2 belongs: the ratio is sigma_q^2 / sigma_p^2 = "
         "exp(2 (log_std_q - log_std_p)) and (mu_q - mu_p)^2 is divided by sigma_p^2 = exp(2 log_std_p).",
         lambda: per_dim(log_std_p - log_std_q, torch.exp(log_std_q - log_std_p),
                         dmu2 / torch.exp(log_std_p)).sum(-1)),
        ("you left out the -1/2 per dimension: check that D_KL(q||q) = 0.",
         lambda: per_dim(log_std_p - log_std_q, torch.exp(2 * (log_std_q - log_std_p)),
                         dmu2 / torch.exp(2 * log_std_p), const=0.0).sum(-1)),
        *_reduction_mistakes(right, "KL divergence"),
    ]
    return _first_mistake(actual, mistakes)


def check_gaussian_kl(gaussian_kl: Callable, seed: int = 0) -> None:
    """Exercise 1.2: ``gaussian_kl(mu_q, log_std_q, mu_p, log_std_p)`` = D_KL(q || p), diagonal Gaussians."""
    __tracebackhide__ = True
    cases = _kl_cases(np.random.default_rng(seed))
    n = compare_with_reference(
        "1.2", gaussian_kl, lvm.gaussian_kl, cases, name="KL divergence",
        rtol=1e-6, atol=1e-8, diagnose=_diagnose_kl,
    )
    passed("1.2", f"D_KL(q||p) matches the reference on {n} inputs, including q = p and a broadcast prior.")


# ----------------------------------------------------------------------- Exercise 1.3


def _elbo_cases(rng: np.random.Generator) -> list[Case]:
    def case(name, model, n_data, n_samples, log_std_loc, spread=1.0):
        x, _ = model.sample(n_data, torch.Generator().manual_seed(int(rng.integers(1 << 30))))
        d = model.latent_dim
        mu = _tensor(rng.normal(size=(n_data, d)))
        log_std = _tensor(log_std_loc + spread * rng.normal(size=(n_data, d)))
        eps = _tensor(rng.normal(size=(n_samples, n_data, d)))
        return Case(name, (model.log_joint, x, mu, log_std, eps))

    linear = lvm.LinearGaussianLVM.random(2, 4, noise_std=0.5, seed=11)
    linear_1d = lvm.LinearGaussianLVM.random(1, 3, noise_std=1.5, seed=12)
    tanh = lvm.TanhDecoderLVM.random(1, 2, hidden=6, noise_std=0.3, seed=13)
    tanh_2d = lvm.TanhDecoderLVM.random(2, 3, hidden=5, noise_std=0.4, seed=14)
    return [
        case("linear-Gaussian model, d=2, N=5 data points, S=8 samples", linear, 5, 8, 0.0),
        case("linear-Gaussian model, d=1, N=1 data point, S=1 sample", linear_1d, 1, 1, 0.0),
        case("linear-Gaussian model, d=2, N=3, S=20, sigma < 1 (log_std ~ -2)", linear, 3, 20, -2.0, 0.5),
        case("tanh-decoder model, d=1, N=4, S=16, sigma > 1 (log_std ~ 1)", tanh, 4, 16, 1.0, 0.3),
        case("tanh-decoder model, d=2, N=6, S=7, tiny sigma (log_std ~ -8)", tanh_2d, 6, 7, -8.0),
        case("tanh-decoder model, d=2, N=3, S=3 (as many samples as data points)", tanh_2d, 3, 3, 0.0),
    ]


def _diagnose_elbo(actual: np.ndarray, expected: np.ndarray, case: Case) -> str | None:
    log_joint, x, mu, log_std, eps = case.args
    n_samples, n_data = eps.shape[0], eps.shape[1]
    if actual.shape != expected.shape:
        if actual.shape == (n_samples, n_data):
            return ("you returned one value per sample and data point (S, N); average over the "
                    "samples (axis 0) to estimate the expectation E_{z~q_i}.")
        if actual.shape == (n_samples,):
            return ("you averaged over the data points (axis 1) instead of the samples (axis 0): "
                    "eps has shape (S, N, d) and the ELBO has one value per data point, shape (N,).")
        if actual.shape == ():
            return ("you returned one number; return one ELBO L_i per data point, shape (N,): "
                    "average over the samples (axis 0) only.")
    sigma = torch.exp(log_std)
    entropy = lvm.gaussian_entropy(log_std)

    def expected_log_joint(z):
        return log_joint(x, z).mean(0)

    z = mu + sigma * eps
    mistakes = [
        ("the entropy term H(q_i) is missing: L_i = E_q[log p(x_i|z) + log p(z)] + H(q_i). Without "
         "it the objective is not the ELBO (for a narrow q it can even exceed log p(x_i)), and "
         "maximizing it collapses sigma to 0.",
         lambda: expected_log_joint(z)),
        ("you subtracted the entropy; the ELBO ADDS H(q_i) = -E_q[log q_i(z)].",
         lambda: expected_log_joint(z) - entropy),
        ("your ELBO has the wrong sign: L_i = E_q[log p(x_i|z) + log p(z)] + H(q_i) (a lower bound on "
         "log p(x_i), so usually a negative number for continuous data of moderate dimension).",
         lambda: -(expected_log_joint(z) + entropy)),
        ("you estimated the entropy by Monte Carlo (-log q_i(z_s)); this exercise adds the closed-form "
         "H(q_i) (your gaussian_entropy), which has no sampling noise.",
         lambda: (log_joint(x, z) - lvm.gaussian_log_prob(z, mu, log_std)).mean(0)),
        ("you used log_std as the standard deviation in z = mu + sigma * eps; sigma = exp(log_std).",
         lambda: expected_log_joint(mu + log_std * eps) + entropy),
        ("you scaled eps by the variance sigma^2 = exp(2 log_std); scale it by sigma = exp(log_std).",
         lambda: expected_log_joint(mu + torch.exp(2 * log_std) * eps) + entropy),
        ("you treated log_std as a log-variance (sigma = exp(log_std / 2)); here sigma = exp(log_std).",
         lambda: expected_log_joint(mu + torch.exp(0.5 * log_std) * eps) + entropy),
        ("you summed over the samples; the expectation E_{z~q_i} is estimated by their MEAN "
         "(divide by S).",
         lambda: log_joint(x, z).sum(0) + entropy),
        ("you evaluated log p(x, z) at the mean mu instead of at the samples z = mu + sigma * eps.",
         lambda: log_joint(x, mu) + entropy),
    ]
    return _first_mistake(actual, mistakes)


def check_elbo_mc(elbo_mc: Callable, seed: int = 0) -> None:
    """Exercise 1.3: ``elbo_mc(log_joint, x, mu, log_std, eps)``, the reparameterized Monte Carlo ELBO."""
    __tracebackhide__ = True
    cases = _elbo_cases(np.random.default_rng(seed))
    n = compare_with_reference(
        "1.3", elbo_mc, lvm.elbo_monte_carlo, cases, name="ELBO",
        rtol=1e-6, atol=1e-6, diagnose=_diagnose_elbo,
    )
    passed("1.3", f"the Monte Carlo ELBO matches the reference on {n} inputs "
                  "(linear and tanh decoders, d=1 and 2).")


# ----------------------------------------------------------------------- Exercise 1.4


def _vi_step_cases(rng: np.random.Generator) -> list[Case]:
    def case(name, model, n_data, lr, log_std_loc, spread=0.5, grid=False):
        x, _ = model.sample(n_data, torch.Generator().manual_seed(int(rng.integers(1 << 30))))
        d = model.latent_dim
        mu = _tensor(rng.normal(size=(n_data, d)))
        log_std = _tensor(log_std_loc + spread * rng.normal(size=(n_data, d)))
        elbo_fn = functools.partial(model.elbo_grid if grid else model.elbo, x)
        return Case(name, (elbo_fn, mu, log_std, lr))

    linear = lvm.LinearGaussianLVM.random(2, 4, noise_std=0.5, seed=21)
    linear_1d = lvm.LinearGaussianLVM.random(1, 2, noise_std=1.0, seed=22)
    linear_3d = lvm.LinearGaussianLVM.random(3, 5, noise_std=0.8, seed=23)
    tanh = lvm.TanhDecoderLVM.random(1, 2, hidden=6, noise_std=0.3, seed=24)
    return [
        case("linear-Gaussian model, N=1 data point, d=1, lr=0.1", linear_1d, 1, 0.1, 0.0, 0.0),
        case("linear-Gaussian model, N=5, d=2, lr=0.05, log_std ~ N(0, 1)", linear, 5, 0.05, 0.0, 1.0),
        case("linear-Gaussian model, N=4, d=3, lr=0.01, sigma < 1 (log_std ~ -3)", linear_3d, 4, 0.01, -3.0),
        case("linear-Gaussian model, N=3, d=2, lr=0.001, sigma > 1 (log_std ~ 1.5)", linear, 3, 0.001, 1.5),
        case("linear-Gaussian model, N=3, d=2, lr=0.2, tiny sigma (log_std ~ -10)", linear, 3, 0.2, -10.0),
        case("tanh-decoder model (ELBO on a grid), N=4, d=1, lr=0.02", tanh, 4, 0.02, -1.0, 0.3, True),
    ]


def _gradients(elbo_fn: Callable, mu: torch.Tensor, log_std: torch.Tensor, *, sigma_input: bool = False):
    mu = mu.detach().clone().requires_grad_(True)
    log_std = log_std.detach().clone().requires_grad_(True)
    elbo = elbo_fn(mu, torch.exp(log_std) if sigma_input else log_std)
    return torch.autograd.grad(elbo.sum(), [mu, log_std])


def _vi_step_mistakes(case: Case) -> list[tuple[str, Callable[[], Any]]]:
    elbo_fn, mu, log_std, lr = case.args
    g_mu, g_log_std = _gradients(elbo_fn, mu, log_std)
    new_mu, new_log_std = mu + lr * g_mu, log_std + lr * g_log_std
    n_data = mu.shape[0]

    def via_sigma_input():
        gm, gl = _gradients(elbo_fn, mu, log_std, sigma_input=True)
        return mu + lr * gm, log_std + lr * gl

    def step_on_sigma():
        sigma = torch.exp(log_std)
        grad_sigma = g_log_std / sigma  # chain rule: dL/dsigma = dL/dlog_std / sigma
        return new_mu, torch.log(sigma + lr * grad_sigma)

    return [
        ("you stepped downhill (gradient descent): per-datapoint VI MAXIMIZES the ELBO, so "
         "mu <- mu + lr * dL/dmu and log_std <- log_std + lr * dL/dlog_std. (Minimizing -ELBO "
         "with a descent step is the same thing; subtracting the gradient of +ELBO is not.)",
         lambda: (mu - lr * g_mu, log_std - lr * g_log_std)),
        (f"your step is N = {n_data} times too small: you averaged the ELBO over the data points. "
         "Each q_i appears only in its own L_i, so take the gradient of the SUM over i; then every "
         "mu_i, sigma_i gets the full gradient of its own L_i, whatever N is.",
         lambda: (mu + lr * g_mu / n_data, log_std + lr * g_log_std / n_data)),
        ("you passed sigma = exp(log_std) to elbo_fn, which expects log_std (it computes "
         "sigma = exp(log_std) itself). Call elbo_fn(mu, log_std).",
         via_sigma_input),
        ("you took the gradient step on sigma instead of on log sigma; the parameters are mu and "
         "log_std (so sigma = exp(log_std) stays positive): log_std <- log_std + lr * dL/dlog_std.",
         step_on_sigma),
        ("your second output is sigma = exp(log_std); return the updated log_std, the parameter "
         "that the step changes.",
         lambda: (new_mu, torch.exp(new_log_std))),
        ("you returned (log_std, mu); return them in the order (mu, log_std).",
         lambda: (new_log_std, new_mu)),
        ("you forgot the step size: multiply the gradients by lr.",
         lambda: (mu + g_mu, log_std + g_log_std)),
        ("you returned the step lr * gradient; add it to the current values.",
         lambda: (lr * g_mu, lr * g_log_std)),
        ("log_std did not change: update both mu and log_std (gradient ascent on both).",
         lambda: (new_mu, log_std)),
        ("mu did not change: update both mu and log_std (gradient ascent on both).",
         lambda: (mu, new_log_std)),
    ]


def _first_pair_mistake(actual: tuple[np.ndarray, np.ndarray], mistakes: Mistakes) -> str | None:
    for message, make in mistakes:
        try:
            with np.errstate(all="ignore"):
                candidate = [_numpy(v) for v in make()]
        except Exception:
            continue
        if all(_close(a, c, rtol=1e-6, atol=1e-9) for a, c in zip(actual, candidate)):
            return message
    return None


def _compare_vi_step(actual: Any, expected: tuple, case: Case) -> None:
    __tracebackhide__ = True
    if not isinstance(actual, (tuple, list)) or len(actual) != 2:
        got = f"a {type(actual).__name__}"
        if isinstance(actual, (tuple, list)):
            got += f" of length {len(actual)}"
        raise ExerciseError(
            f"Exercise 1.4: `vi_step` should return a pair (new_mu, new_log_std), got {got} "
            f"(input: {case.name})."
        )
    for value, name in zip(actual, ("new mu", "new log_std")):
        if isinstance(value, torch.Tensor) and value.requires_grad:
            raise ExerciseError(
                f"Exercise 1.4: the {name} still requires grad; return detached tensors "
                "(`.detach()`), otherwise every later step differentiates through all the earlier "
                f"ones (input: {case.name})."
            )
    try:
        for value, reference, name in zip(actual, expected, ("new mu", "new log_std")):
            assert_close("1.4", value, reference, name=name, context=case.name, rtol=1e-6, atol=1e-9)
    except ExerciseNotAttempted:
        raise
    except ExerciseError as generic:
        try:
            arrays = (as_array("1.4", actual[0], "new mu"), as_array("1.4", actual[1], "new log_std"))
        except ExerciseError:
            raise generic from None
        specific = _first_pair_mistake(arrays, _vi_step_mistakes(case))
        if specific:
            raise ExerciseError(f"Exercise 1.4: {specific} (input: {case.name})") from None
        raise generic from None


def check_vi_step(vi_step: Callable, seed: int = 0) -> None:
    """Exercise 1.4: ``vi_step(elbo_fn, mu, log_std, lr)``, one gradient-ascent step on sum_i L_i."""
    __tracebackhide__ = True
    cases = _vi_step_cases(np.random.default_rng(seed))
    for case in cases:
        expected = case.call(lvm.vi_gradient_step)
        actual = call_student("1.4", vi_step, case)
        _compare_vi_step(actual, expected, case)
    passed("1.4", f"the gradient-ascent step matches the reference on {len(cases)} inputs "
                  "(closed-form and grid ELBOs, tiny to large sigma).")

