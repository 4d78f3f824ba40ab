"""Checks for chapter 03 (the variational autoencoder).

* Exercise 3.1 ``reparameterize(mu, log_std)``: a sample ``z = mu + eps * exp(log_std)`` of
  q_phi(z|x) that autograd can differentiate.
* Exercise 3.2 ``bernoulli_log_likelihood(x, logits)``: ``log p_theta(x|z)`` of binary pixels from
  the decoder's logits, summed over pixels, finite for logits of any size.
* Exercise 3.3 ``kl_to_prior(mu, log_std)``: the analytic ``D_KL(q_phi(z|x) || N(0, I))``.
* Exercise 3.4 ``negative_elbo(model, x, beta)``: the training loss, the negative ELBO
  averaged over the batch.

The references are in :mod:`course_utils.vae`. Sampling is checked through its gradients
(``dz/dmu = 1``, ``dz/dlog_std = z - mu``, which tells a broken gradient path, a log-variance
and a log-std-as-sigma confusion apart) and statistically (the implied noise
``(z - mu) / sigma`` must be fresh, independent standard-normal noise). The loss is compared
with the reference on the very z the student's code decoded, so it is exact whatever noise
the student drew. Every check runs on the CPU in float64 and leaves the global random state
of torch untouched.
"""

from __future__ import annotations

import copy
import functools
import math
from typing import Any, Callable

import numpy as np
import torch

from .. import vae as ref
from . import (
    Case,
    ExerciseError,
    ExerciseNotAttempted,
    as_array,
    call_student,
    check_finite,
    check_shape,
    compare_with_reference,
    passed,
)
from .ch01 import _first_mistake, _reduction_mistakes

__all__ = [
    "check_reparameterize",
    "check_bernoulli_log_likelihood",
    "check_kl_to_prior",
    "check_negative_elbo",
]

_F64 = torch.float64


def _t(array) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array, dtype=np.float64))


def _require_callable(exercise: str, fn: Any) -> None:
    __tracebackhide__ = True
    if not callable(fn):
        raise ExerciseError(
            f"Exercise {exercise}: expected a function, got {type(fn).__name__}. "
            "Pass the function itself, without calling it (no parentheses)."
        )


def _call(exercise: str, fn: Callable, name: str, *args: Any) -> Any:
    """``fn(*args)`` without copying the arguments (gradients must reach them), with
    :func:`call_student`'s feedback. A NotImplementedError raised by the stub of ANOTHER
    exercise (one the function calls) is named as such."""
    __tracebackhide__ = True

    @functools.wraps(fn)
    def bound():
        return fn(*args)

    try:
        return call_student(exercise, bound, Case(name))
    except ExerciseNotAttempted as exc:
        cause = getattr(exc, "__context__", None)
        other = str(cause) if isinstance(cause, NotImplementedError) else ""
        if other.startswith("Exercise ") and not other.startswith(f"Exercise {exercise}:"):
            raise ExerciseNotAttempted(
                f"Exercise {exercise}: your `{getattr(fn, '__name__', 'function')}` calls the "
                f"function of {other.split(':')[0]}, which still raises NotImplementedError. "
                "Solve that exercise first, run its cell, then run this check again."
            ) from None
        raise


def _as_tensor(exercise: str, value: Any, what: str) -> torch.Tensor:
    """The student's result as a torch tensor; numpy or a float loses the gradient path."""
    __tracebackhide__ = True
    if isinstance(value, torch.Tensor):
        return value
    as_array(exercise, value, what)  # None, strings, ... get their own message
    raise ExerciseError(
        f"Exercise {exercise}: the {what} is a {type(value).__name__}, not a torch tensor. "
        "Stay in torch (no .numpy(), .item() or float(...)): autograd can only differentiate "
        "torch operations."
    )


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-6, atol: float = 1e-10) -> bool:
    a, b = a.detach().to(_F64), b.detach().to(_F64)
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=rtol, atol=atol))


# ----------------------------------------------------------------------- Exercise 3.1

_REPARAM_FIX = ("Write z = mu + eps * torch.exp(log_std) with eps = torch.randn_like(mu) "
                "(or use torch.distributions.Normal(mu, log_std.exp()).rsample()).")


def _reparam_cases(rng: np.random.Generator) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    mixed = rng.normal(size=(5, 2))
    mixed[0], mixed[1] = np.abs(mixed[0]), -np.abs(mixed[1])  # sigma > 1 and sigma < 1
    return [
        ("a batch of 5 with d=2 (sigma < 1 and > 1)", _t(rng.normal(size=(5, 2))), _t(mixed)),
        ("batch axes (3, 4) with d=3", _t(rng.normal(size=(3, 4, 3))),
         _t(rng.uniform(-1.5, 1.5, size=(3, 4, 3)))),
        ("one data point with d=1 (shape (1, 1))", _t([[0.7]]), _t([[-0.4]])),
        ("tiny sigmas (log_std = -20, sigma ~ 2e-9), shape (4, 3)", _t(rng.normal(size=(4, 3))),
         _t(-20.0 + rng.normal(size=(4, 3)))),
        ("huge sigmas (log_std = 8, sigma ~ 3000), shape (4, 3)", _t(rng.normal(size=(4, 3))),
         _t(8.0 + rng.normal(size=(4, 3)))),
        ("a batch of 4000 with d=3 (sigma from 0.37 to 2.7)", _t(rng.normal(size=(4000, 3))),
         _t(rng.uniform(-1.0, 1.0, size=(4000, 3)))),
    ]


def _reparam_gradient_feedback(z: torch.Tensor, mu: torch.Tensor, log_std: torch.Tensor,
                               name: str) -> str | None:
    """Feedback on the gradient path of one sample z, or None when it is right."""
    if z.grad_fn is None:
        return ("z is not connected to mu and log_std in torch's graph (z.grad_fn is None): the "
                "gradient path is cut. .detach(), torch.no_grad(), numpy, and .sample() of "
                "torch.distributions all return a z that autograd cannot differentiate; that is "
                f"sampling WITHOUT the reparameterization trick. {_REPARAM_FIX}")
    g_mu, g_log_std = torch.autograd.grad(z.sum(), [mu, log_std], allow_unused=True)
    g_mu = torch.zeros_like(mu) if g_mu is None else g_mu
    g_log_std = torch.zeros_like(log_std) if g_log_std is None else g_log_std
    moved = (z - mu).detach()  # = eps * sigma for a correct sample
    if not moved.any():
        return ("your z equals mu: there is no noise in it. A sample of q = N(mu, sigma^2) is "
                f"z = mu + eps * sigma with fresh eps ~ N(0, I). {_REPARAM_FIX}")
    if not g_mu.any() and not g_log_std.any():
        return ("the gradient of z with respect to mu and log_std is zero. torch.normal(mu, std) "
                "(like .sample()) draws z without a differentiable path back to its parameters: "
                "autograd treats the draw as a constant. The reparameterization trick writes the "
                f"sample as a function of the parameters and parameter-free noise. {_REPARAM_FIX}")
    if not _close(g_mu, torch.ones_like(mu)):
        if not g_mu.any():
            return ("no gradient reaches mu (dz/dmu = 0): you detached mu. In z = mu + eps * sigma, "
                    f"dz/dmu = 1. {_REPARAM_FIX}")
        return (f"dz/dmu should be 1 for every entry (z = mu + eps * sigma), got values from "
                f"{g_mu.min().item():.3g} to {g_mu.max().item():.3g} (input: {name}).")
    if _close(g_log_std, moved):
        return None
    if not g_log_std.any():
        return ("no gradient reaches log_std (dz/dlog_std = 0): sigma was detached, or the noise "
                "was scaled outside the graph. With z = mu + eps * exp(log_std), dz/dlog_std = "
                f"eps * sigma = z - mu. {_REPARAM_FIX}")
    if _close(g_log_std, 0.5 * moved):
        return ("you treated log_std as a log-VARIANCE (sigma = exp(log_std / 2)). The encoder "
                "returns log sigma, the log of the standard deviation, so sigma = exp(log_std).")
    if _close(g_log_std, 2.0 * moved):
        return ("you scaled eps by the variance sigma^2 = exp(2 * log_std); scale it by the "
                "standard deviation sigma = exp(log_std).")
    if _close(g_log_std * log_std.detach(), moved):
        return ("you used log_std as the standard deviation (z = mu + eps * log_std); "
                "sigma = exp(log_std), which is positive whatever log_std is.")
    return (f"dz/dlog_std should equal z - mu = eps * sigma (because d exp(log_std)/d log_std = "
            f"sigma), but it does not (input: {name}). {_REPARAM_FIX}")


def _noise_feedback(eps: np.ndarray) -> str | None:
    """Feedback when the implied noise (z - mu) / sigma, shape (N, d), is not N(0, I) i.i.d."""
    n = eps.size
    if np.allclose(eps, eps[:1]):
        return ("every data point got the same noise eps (the rows of (z - mu) / sigma are equal): "
                "draw one eps per entry of mu, e.g. torch.randn_like(mu), not torch.randn(d).")
    if eps.shape[1] > 1 and np.allclose(eps, eps[:, :1]):
        return ("every latent dimension got the same noise eps: draw one independent eps per "
                "entry of mu (torch.randn_like(mu)), not one per data point.")
    mean, std = eps.mean(), eps.std()
    if abs(mean - 0.5) < 0.05 and eps.min() >= 0.0 and eps.max() <= 1.0:
        return ("your noise is uniform on [0, 1] (torch.rand_like): the reparameterization of a "
                "Gaussian needs standard-NORMAL noise, eps = torch.randn_like(mu).")
    tail = np.mean(np.abs(eps) > 2.0)  # 0.0455 for a standard normal
    if abs(mean) > 5.0 / math.sqrt(n) or abs(std - 1.0) > 0.05 or abs(tail - 0.0455) > 0.012:
        return (f"the implied noise eps = (z - mu) / sigma should be standard normal, but over "
                f"{n} entries it has mean {mean:.3f}, standard deviation {std:.3f} and "
                f"{tail:.1%} of its values beyond +-2 (expected 0, 1 and 4.6%). {_REPARAM_FIX}")
    return None


def check_reparameterize(reparameterize: Callable, seed: int = 0) -> None:
    """Exercise 3.1: ``reparameterize(mu, log_std)`` returns a reparameterized z ~ N(mu, sigma^2)."""
    __tracebackhide__ = True
    exercise = "3.1"
    _require_callable(exercise, reparameterize)
    cases = _reparam_cases(np.random.default_rng(seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name, mu0, log_std0 in cases:
            mu, log_std = mu0.clone().requires_grad_(True), log_std0.clone().requires_grad_(True)
            z = _as_tensor(exercise, _call(exercise, reparameterize, name, mu, log_std), "sample z")
            z_np = as_array(exercise, z, "sample z")
            check_shape(exercise, z_np, mu.shape, "sample z", name)
            check_finite(exercise, z_np, "sample z", name)
            if not (torch.equal(mu.detach(), mu0) and torch.equal(log_std.detach(), log_std0)):
                raise ExerciseError(f"Exercise {exercise}: your function changed mu or log_std in "
                                    f"place (input: {name}); compute z without modifying them.")
            feedback = _reparam_gradient_feedback(z, mu, log_std, name)
            if feedback:
                raise ExerciseError(f"Exercise {exercise}: {feedback} (input: {name})")
        name, mu, log_std = cases[-1]
        z = _call(exercise, reparameterize, name, mu, log_std).detach()
        eps = ((z - mu) / torch.exp(log_std)).numpy()
        feedback = _noise_feedback(eps)
        if feedback:
            raise ExerciseError(f"Exercise {exercise}: {feedback} (input: {name})")
        again = _call(exercise, reparameterize, name, mu, log_std).detach()
        if torch.equal(again, z):
            raise ExerciseError(
                f"Exercise {exercise}: two calls returned the same z. Draw fresh noise at every "
                "call (no torch.manual_seed and no fixed eps inside the function): each training "
                "step needs a new sample."
            )
    passed(exercise, f"z = mu + eps * sigma is differentiable in mu and log_std on {len(cases)} "
                     "inputs (sigma from 2e-9 to 3e3), with fresh standard-normal noise.")


# ----------------------------------------------------------------------- Exercise 3.2


def _extreme_case(rng: np.random.Generator, size: float, name: str) -> Case:
    """Four images of 6 pixels, one extreme logit each: right (x=1, +size), wrong (x=0, +size),
    wrong (x=1, -size), right (x=0, -size); the other logits moderate."""
    x = (rng.random(size=(4, 6)) < 0.5).astype(float)
    logits = rng.normal(size=(4, 6))
    x[:, 0] = [1.0, 0.0, 1.0, 0.0]
    logits[:, 0] = [size, size, -size, -size]
    return Case(name, (_t(x), _t(logits)))


def _bernoulli_cases(rng: np.random.Generator) -> list[Case]:
    def binary(*shape):
        return _t((rng.random(size=shape) < 0.4).astype(float))

    return [
        Case("5 binary images of 64 pixels, logits ~ N(0, 3^2)",
             (binary(5, 64), _t(3 * rng.normal(size=(5, 64))))),
        Case("batch axes (2, 3), 8 pixels", (binary(2, 3, 8), _t(2 * rng.normal(size=(2, 3, 8))))),
        Case("one image of 64 pixels with every logit 0 (p = 1/2)",
             (binary(1, 64), _t(np.zeros((1, 64))))),
        Case("one pixel (D=1), a batch of 6", (binary(6, 1), _t(rng.normal(size=(6, 1))))),
        _extreme_case(rng, 100.0, "extreme logits +-100 (sigmoid(100) rounds to 1.0)"),
        _extreme_case(rng, 1000.0, "extreme logits +-1000"),
    ]


def _bernoulli_float32_case(rng: np.random.Generator) -> Case:
    x = (rng.random(size=(8, 64)) < 0.4).astype(np.float32)
    logits = (30 * rng.normal(size=(8, 64))).astype(np.float32)
    return Case("float32 images and logits ~ N(0, 30^2), like the training data",
                (torch.as_tensor(x), torch.as_tensor(logits)))


_LOG_SIGMOID_FIX = ("Use the stable forms log sigmoid(l) = F.logsigmoid(l) and log(1 - sigmoid(l)) = "
                    "F.logsigmoid(-l), i.e. x * l - F.softplus(l) per pixel (or "
                    "-F.binary_cross_entropy_with_logits(logits, x, reduction='none')).")


def _diagnose_bernoulli(actual: np.ndarray, expected: np.ndarray, case: Case) -> str | None:
    x, logits = case.args
    extreme = float(logits.abs().max()) >= 30.0
    if actual.shape == expected.shape and not np.isfinite(actual).all():
        if extreme:
            return ("your log-likelihood is not finite for extreme logits. sigmoid(100) rounds to "
                    "exactly 1.0, so log(1 - sigmoid(100)) = log(0) = -inf, and 0 * -inf = NaN. "
                    + _LOG_SIGMOID_FIX)
        return ("your log-likelihood is not finite for moderate logits: did you take the log of "
                "the logits themselves, as if they were probabilities? The decoder returns "
                "logits l; the probability is sigmoid(l). " + _LOG_SIGMOID_FIX)
    p = torch.sigmoid(logits)
    per_pixel = x * logits - torch.nn.functional.softplus(logits)
    right = per_pixel.sum(-1)

    def clamped(eps):
        q = p.clamp(eps, 1 - eps)
        return (x * torch.log(q) + (1 - x) * torch.log(1 - q)).sum(-1)

    mistakes = [
        ("you returned the binary cross-entropy, the NEGATIVE log-likelihood. Return log p(x|z) "
         "itself (it is <= 0); the loss of Exercise 3.4 puts the minus sign in.", lambda: -right),
        ("you averaged over the pixels; the pixels are independent given z, so log p(x|z) is the "
         "SUM of their log-probabilities: .sum(-1), not .mean(-1).", lambda: per_pixel.mean(-1)),
        ("you returned one value per pixel; sum over the last axis (the pixels) to get "
         "log p(x|z) of each image.", lambda: per_pixel),
        ("you summed over the batch axis (axis 0) instead of the pixels: reduce over the LAST "
         "axis, (..., D) -> (...), one log-likelihood per image.", lambda: per_pixel.sum(0)),
        ("you summed over every axis and returned one number; sum over the last axis (the pixels) "
         "only, one log-likelihood per image.", lambda: per_pixel.sum()),
        ("this is a squared error, the log-likelihood of a Gaussian decoder (MSE), not of binary "
         "pixels. The pixels are 0 or 1, so p(x|z) is a product of Bernoullis: "
         "log p(x|z) = sum_j x_j log sigmoid(l_j) + (1 - x_j) log(1 - sigmoid(l_j)).",
         lambda: -((x - p) ** 2).sum(-1)),
        ("this is a squared error (a Gaussian decoder), not the Bernoulli log-likelihood of binary "
         "pixels: log p(x|z) = sum_j x_j log sigmoid(l_j) + (1 - x_j) log(1 - sigmoid(l_j)).",
         lambda: -0.5 * ((x - p) ** 2).sum(-1)),
        ("this is a squared error between x and the logits (a Gaussian decoder), not the "
         "Bernoulli log-likelihood: log p(x|z) = sum_j x_j log sigmoid(l_j) "
         "+ (1 - x_j) log(1 - sigmoid(l_j)).",
         lambda: -((x - logits) ** 2).sum(-1)),
        ("the term of the pixels that are 0 is missing: add (1 - x_j) log(1 - sigmoid(l_j)).",
         lambda: (x * torch.nn.functional.logsigmoid(logits)).sum(-1)),
        ("the term of the pixels that are 1 is missing: add x_j log sigmoid(l_j).",
         lambda: ((1 - x) * torch.nn.functional.logsigmoid(-logits)).sum(-1)),
        ("you swapped the two terms: x_j goes with log sigmoid(l_j), the probability of a 1.",
         lambda: (x * torch.nn.functional.logsigmoid(-logits)
                  + (1 - x) * torch.nn.functional.logsigmoid(logits)).sum(-1)),
        ("you used sigmoid(l) where log sigmoid(l) belongs: the log-likelihood is "
         "sum_j x_j log sigmoid(l_j) + (1 - x_j) log(1 - sigmoid(l_j)).",
         lambda: (x * p + (1 - x) * (1 - p)).sum(-1)),
        *[(f"you clipped the probabilities to [{eps:g}, 1 - {eps:g}]: for an extreme logit the "
           "probability of the other pixel value is far below that, and its log is about -|logit|. "
           + _LOG_SIGMOID_FIX, functools.partial(clamped, eps))
          for eps in (1e-7, 1e-6, 1e-5, 1e-8, 1e-10, 1e-12, 1e-15)],
    ]
    message = _first_mistake(actual, mistakes)
    if message:
        return message
    if actual.shape == expected.shape:
        # Clipping (of p, of the logits or of the log) only raises the log-likelihood, and only
        # of images with a very improbable pixel.
        wrong = ~np.isclose(actual, expected, rtol=1e-6, atol=1e-8)
        costly = (-per_pixel).amax(-1).numpy() > 5.0  # some pixel costs more than 5 nats
        if wrong.any() and np.all(actual[wrong] > expected[wrong]) and np.all(costly[wrong]):
            excess = np.where(wrong, actual - expected, -np.inf)
            worst = np.unravel_index(int(np.argmax(excess)), actual.shape)
            return (f"an improbable pixel value should cost -log p(x_j|z) nats, about |logit| for "
                    f"a large logit (at index {tuple(int(i) for i in worst)} the reference is "
                    f"{expected[worst]:.2f}), but yours is only {actual[worst]:.2f}: you clipped "
                    "the probability, the logits or the log (torch's F.binary_cross_entropy clips "
                    "its logs at -100). " + _LOG_SIGMOID_FIX)
    return None


def check_bernoulli_log_likelihood(bernoulli_log_likelihood: Callable, seed: int = 0) -> None:
    """Exercise 3.2: ``bernoulli_log_likelihood(x, logits)``, summed over the last axis (pixels)."""
    __tracebackhide__ = True
    exercise = "3.2"
    _require_callable(exercise, bernoulli_log_likelihood)
    rng = np.random.default_rng(seed)
    cases = _bernoulli_cases(rng)
    n = compare_with_reference(
        exercise, bernoulli_log_likelihood, ref.bernoulli_log_likelihood, cases,
        name="log-likelihood", rtol=1e-6, atol=1e-8, diagnose=_diagnose_bernoulli,
    )
    n += compare_with_reference(
        exercise, bernoulli_log_likelihood, ref.bernoulli_log_likelihood,
        [_bernoulli_float32_case(rng)], name="log-likelihood", rtol=1e-4, atol=1e-3,
        diagnose=_diagnose_bernoulli,
    )
    passed(exercise, f"the Bernoulli log-likelihood matches the reference on {n} inputs, "
                     "finite for logits up to +-1000.")


# ----------------------------------------------------------------------- Exercise 3.3


def _kl_cases(rng: np.random.Generator) -> list[Case]:
    mixed = rng.normal(size=(5, 2))
    mixed[0], mixed[1] = np.abs(mixed[0]), -np.abs(mixed[1])
    return [
        Case("a batch of 5 with d=2 (sigma < 1 and > 1)", (_t(rng.normal(size=(5, 2))), _t(mixed))),
        Case("one q with d=8 and no batch axis (shape (8,))",
             (_t(rng.normal(size=8)), _t(rng.normal(size=8)))),
        Case("batch axes (2, 3) with d=4",
             (_t(rng.normal(size=(2, 3, 4))), _t(rng.normal(size=(2, 3, 4))))),
        Case("q equal to the prior (mu = 0, log_std = 0): the KL must be 0, shape (3, 4)",
             (_t(np.zeros((3, 4))), _t(np.zeros((3, 4))))),
        Case("tiny sigmas (log_std = -15), shape (4, 2)",
             (_t(rng.normal(size=(4, 2))), _t(-15.0 + rng.normal(size=(4, 2))))),
        Case("huge sigmas (log_std = 6), shape (4, 2)",
             (_t(rng.normal(size=(4, 2))), _t(6.0 + rng.normal(size=(4, 2))))),
        Case("d=1 with a batch of 6", (_t(rng.normal(size=(6, 1))), _t(rng.normal(size=(6, 1))))),
        Case("large means (mu ~ 50), shape (3, 3)",
             (_t(50.0 + rng.normal(size=(3, 3))), _t(rng.normal(size=(3, 3))))),
    ]


def _diagnose_kl(actual: np.ndarray, expected: np.ndarray, case: Case) -> str | None:
    mu, log_std = case.args
    var = torch.exp(2 * log_std)
    per_dim = 0.5 * (mu**2 + var) - log_std - 0.5
    mistakes = [
        ("your KL is the negative of the right one; D_KL(q || p) >= 0 always. Per dimension it is "
         "(mu^2 + sigma^2) / 2 - log sigma - 1/2. (The ELBO SUBTRACTS it: L = E[log p(x|z)] - KL.)",
         lambda: -per_dim.sum(-1)),
        ("you used the log-VARIANCE formula -1/2 sum(1 + log sigma^2 - mu^2 - sigma^2) with log_std "
         "in place of log sigma^2. Here the input is log sigma: log sigma^2 = 2 * log_std and "
         "sigma^2 = exp(2 * log_std).",
         lambda: (0.5 * (mu**2 + torch.exp(log_std) - 1.0 - log_std)).sum(-1)),
        ("you used sigma = exp(log_std) where the variance sigma^2 = exp(2 * log_std) belongs.",
         lambda: (0.5 * (mu**2 + torch.exp(log_std)) - log_std - 0.5).sum(-1)),
        *[("you treated log_std as sigma (its log is NaN for log_std < 0): log sigma is log_std "
           "itself and sigma^2 = exp(2 * log_std).",
           functools.partial(
               lambda log, mu, log_std: (0.5 * (mu**2 + log_std**2) - log(log_std) - 0.5).sum(-1),
               log, mu, log_std))
          for log in (torch.log, lambda v: torch.log(v.abs()))],
        ("you computed D_KL(p || q), the reverse direction; KL is not symmetric. The ELBO needs "
         "D_KL(q || p) = E_q[log q(z) - log p(z)] = sum_j (mu_j^2 + sigma_j^2) / 2 - log sigma_j "
         "- 1/2.",
         lambda: (log_std + (1.0 + mu**2) / (2 * var) - 0.5).sum(-1)),
        ("the log term has the wrong sign: per dimension it is -log sigma = -log_std.",
         lambda: (0.5 * (mu**2 + var) + log_std - 0.5).sum(-1)),
        ("the mean term mu^2 / 2 is missing: q is penalised for moving its mean away from 0.",
         lambda: (0.5 * var - log_std - 0.5).sum(-1)),
        ("you left out the -1/2 per dimension: check that the KL of q = N(0, I) to the prior is 0.",
         lambda: (0.5 * (mu**2 + var) - log_std).sum(-1)),
        *_reduction_mistakes(per_dim, "KL divergence"),
    ]
    return _first_mistake(actual, mistakes)


def check_kl_to_prior(kl_to_prior: Callable, seed: int = 0) -> None:
    """Exercise 3.3: ``kl_to_prior(mu, log_std)`` = D_KL(N(mu, sigma^2) || N(0, I)), one per data point."""
    __tracebackhide__ = True
    exercise = "3.3"
    _require_callable(exercise, kl_to_prior)
    cases = _kl_cases(np.random.default_rng(seed))
    n = compare_with_reference(
        exercise, kl_to_prior, ref.kl_to_prior, cases, name="KL divergence",
        rtol=1e-6, atol=1e-8, diagnose=_diagnose_kl,
    )
    passed(exercise, f"D_KL(q || N(0, I)) matches the reference on {n} inputs, including q = p(z) "
                     "and log_std from -15 to 6.")


# ----------------------------------------------------------------------- Exercise 3.4


def _elbo_cases(rng: np.random.Generator) -> list[tuple[str, ref.VAE, torch.Tensor, float]]:
    def case(name, latent_dim, n_images, beta, log_std_shift=0.0, decoder_scale=1.0):
        torch.manual_seed(int(rng.integers(1 << 30)))
        model = ref.VAE(data_dim=16, latent_dim=latent_dim, hidden=12, n_hidden_layers=1).double()
        with torch.no_grad():
            model.encoder[-1].bias[latent_dim:] += log_std_shift
            model.decoder[-1].weight.mul_(decoder_scale)
            model.decoder[-1].bias.mul_(decoder_scale)
        x = _t((rng.random(size=(n_images, 16)) < 0.4).astype(float))
        return name, model, x, beta

    return [
        case("a VAE with d=2, 4 images of 16 pixels, beta=1", 2, 4, 1.0),
        case("d=3, a single image (N=1), beta=1", 3, 1, 1.0, log_std_shift=-1.0),
        case("d=2, 32 images, beta=0.5", 2, 32, 0.5, log_std_shift=0.5),
        case("d=4, 8 images, beta=4", 4, 8, 4.0, log_std_shift=-0.5),
        case("d=2, 6 images, a decoder with logits up to ~100, beta=1", 2, 6, 1.0,
             decoder_scale=200.0),
    ]


def _reference_terms(model: ref.VAE, x: torch.Tensor, zs: list[torch.Tensor], mu: torch.Tensor,
                     log_std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch means of -log p(x|z) (averaged over the decoded z's) and of the KL."""
    recon = torch.stack([-ref.bernoulli_log_likelihood(x, model.decode(z)).mean() for z in zs])
    return recon.mean(), ref.kl_to_prior(mu, log_std).mean()


def _elbo_value_mistakes(recon: float, kl: float, beta: float, n: int, data_dim: int,
                         latent_dim: int) -> list[tuple[str, float]]:
    return [
        ("you returned the ELBO itself; the training loss is its NEGATIVE (optimizers minimise): "
         "loss = mean_i [-log p(x_i|z_i) + beta * KL_i].", -(recon + beta * kl)),
        ("the KL term has the wrong sign: the ELBO is E[log p(x|z)] - KL, so the loss -ELBO "
         "ADDS beta * KL.", recon - beta * kl),
        ("the KL term is missing: loss = mean_i [-log p(x_i|z_i) + beta * KL(q(z|x_i) || p(z))]. "
         "Without it nothing keeps q close to the prior, and samples from p(z) decode to nonsense.",
         recon),
        ("the reconstruction term -log p(x|z) is missing.", beta * kl),
        ("beta multiplies the wrong term: it weights the KL, loss = -log p(x|z) + beta * KL.",
         beta * recon + kl),
        ("you ignored beta: the loss is -log p(x|z) + beta * KL (beta = 1 gives the ELBO).", recon + kl),
        (f"you summed over the batch; average over the {n} images so that the loss (and the step "
         "size) does not depend on the batch size.", n * (recon + beta * kl)),
        ("you averaged the log-likelihood over the pixels; it is a sum over pixels (Exercise 3.2).",
         recon / data_dim + beta * kl),
        ("you averaged the KL over the latent dimensions; it is a sum over them (Exercise 3.3).",
         recon + beta * kl / latent_dim),
    ]


def _gradients(loss: torch.Tensor, params: list[torch.Tensor]) -> list[torch.Tensor]:
    if not loss.requires_grad:
        return [torch.zeros_like(p) for p in params]
    grads = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def _all_close(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(_close(x, y, rtol=1e-5, atol=1e-9) for x, y in zip(a, b))


def check_negative_elbo(negative_elbo: Callable, seed: int = 0) -> None:
    """Exercise 3.4: ``negative_elbo(model, x, beta)``, the negative ELBO averaged over the batch."""
    __tracebackhide__ = True
    exercise = "3.4"
    _require_callable(exercise, negative_elbo)
    with torch.random.fork_rng(devices=[]):
        cases = _elbo_cases(np.random.default_rng(seed))
        for index, (name, model, x, beta) in enumerate(cases):
            model = copy.deepcopy(model)
            decoded: list[torch.Tensor] = []
            decode = model.decode

            def recording_decode(z, decode=decode, decoded=decoded):
                decoded.append(z)
                return decode(z)

            model.decode = recording_decode  # an instance attribute: model.forward uses it too
            torch.manual_seed(seed + index)
            result = _call(exercise, negative_elbo, name, model, x, beta)
            loss = _as_tensor(exercise, result, "loss")
            value = as_array(exercise, loss, "loss")
            if value.shape == (x.shape[0],) and x.shape[0] > 1:
                raise ExerciseError(
                    f"Exercise {exercise}: your loss has shape {value.shape}, one value per image; "
                    f"average over the batch to return a single number (input: {name})."
                )
            check_shape(exercise, value, (), "loss", name)
            if not np.isfinite(value):
                raise ExerciseError(
                    f"Exercise {exercise}: your loss is not finite ({value.item()}) for a decoder "
                    "whose logits reach about +-100. A naive log(sigmoid(l)) gives log(0) = -inf "
                    f"there: does Exercise 3.2 pass? (input: {name})"
                )
            if not decoded:
                raise ExerciseError(
                    f"Exercise {exercise}: your loss never called model.decode(z): the "
                    "reconstruction term log p(x|z) needs the decoder's logits at a sample z."
                )
            mu, log_std = model.encode(x)
            if all(_close(z, mu, rtol=0.0, atol=1e-12) for z in decoded):
                raise ExerciseError(
                    f"Exercise {exercise}: you decoded the mean mu_phi(x), not a sample of "
                    "q_phi(z|x). The ELBO's expectation E_q[log p(x|z)] needs z = mu + eps * sigma "
                    "(your reparameterize), otherwise sigma gets no training signal from the "
                    f"reconstruction (input: {name})."
                )
            # The reference on the student's own samples, rebuilt as mu + eps * sigma in the graph.
            eps = [((z - mu) / torch.exp(log_std)).detach() for z in decoded]
            samples = [ref.reparameterize(mu, log_std, e) for e in eps]
            recon, kl = _reference_terms(model, x, samples, mu, log_std)
            decoded.clear()
            expected = recon + beta * kl
            if not _close(loss, expected, rtol=1e-6, atol=1e-8):
                for message, wrong in _elbo_value_mistakes(recon.item(), kl.item(), beta, x.shape[0],
                                                           x.shape[1], mu.shape[-1]):
                    if not math.isclose(wrong, expected.item(), rel_tol=1e-6, abs_tol=1e-8) and \
                            math.isclose(loss.item(), wrong, rel_tol=1e-6, abs_tol=1e-8):
                        raise ExerciseError(f"Exercise {exercise}: {message} (input: {name})")
                raise ExerciseError(
                    f"Exercise {exercise}: your loss is {loss.item():.6g}, but on the same samples z "
                    f"the reference mean_i [-log p(x_i|z_i) + beta * KL_i] is {expected.item():.6g} "
                    f"(reconstruction {recon.item():.6g}, KL {kl.item():.6g}, beta {beta:g}; input: "
                    f"{name}). Check Exercises 3.2 and 3.3 first."
                )
            if not loss.requires_grad:
                raise ExerciseError(
                    f"Exercise {exercise}: your loss does not depend on the model's parameters in "
                    "torch's graph (loss.requires_grad is False), so loss.backward() cannot train "
                    f"anything: no .detach(), .item() or torch.no_grad() in the loss (input: {name})."
                )
            encoder = list(model.encoder.parameters())
            decoder = list(model.decoder.parameters())
            student_enc, student_dec = _gradients(loss, encoder), _gradients(loss, decoder)
            if not _all_close(student_dec, _gradients(expected, decoder)):
                raise ExerciseError(
                    f"Exercise {exercise}: the value of your loss is right, but its gradient with "
                    "respect to the decoder's parameters is not: compute -log p(x|z) from "
                    f"model.decode(z) inside the graph (no .detach() or numpy; input: {name})."
                )
            if not _all_close(student_enc, _gradients(expected, encoder)):
                cut = recon.detach() + beta * kl
                if _all_close(student_enc, _gradients(cut, encoder)):
                    raise ExerciseError(
                        f"Exercise {exercise}: the value of your loss is right, but no gradient "
                        "flows from the reconstruction term back to the encoder: z was cut from "
                        "mu and log_std (.detach(), torch.no_grad(), torch.normal or .sample()). "
                        "The reparameterization trick exists to keep that path: build z as "
                        f"mu + eps * exp(log_std) with your reparameterize (input: {name})."
                    )
                half = [mu + (z - mu).detach() * torch.exp(0.5 * (log_std - log_std.detach()))
                        for z in samples]
                if _all_close(student_enc, _gradients(_reference_terms(model, x, half, mu, log_std)[0]
                                                      + beta * kl, encoder)):
                    raise ExerciseError(
                        f"Exercise {exercise}: the value of your loss is right, but the encoder's "
                        "gradient shows that your sample uses sigma = exp(log_std / 2), as if "
                        "log_std were a log-variance. Here sigma = exp(log_std) (does Exercise 3.1 "
                        f"pass?; input: {name})."
                    )
                raise ExerciseError(
                    f"Exercise {exercise}: the value of your loss is right, but its gradient with "
                    "respect to the encoder's parameters is not: z must be mu + eps * "
                    "exp(log_std) computed from model.encode(x) in the graph (does Exercise 3.1 "
                    f"pass?), and the KL must use the same mu and log_std (input: {name})."
                )
    passed(exercise, f"the loss and its gradients match the reference on {len(cases)} small VAEs "
                     "(N = 1 to 32, beta = 0.5 to 4, logits up to ~100).")
