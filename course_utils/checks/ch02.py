"""Checks for chapter 02 (gradient estimators).

2.1 ``score_function_gradient(r, mu, log_std, eps)``: 1/M Σ_j ∇φ log q_φ(z_j) r(z_j); 2.2
``reparam_gradient(r, mu, log_std, eps)``: 1/M Σ_j ∇φ r(mu + eps_j sigma); 2.3
``gradient_statistics(estimator, noise, exact)``: mean, standard error, variance and bias (in
standard errors) of any estimator over N draws; 2.4 a question (predict how a constant reward
offset changes each estimator's variance); 2.5 ``score_function_gradient_loo(rewards, logits, k)``:
the categorical score function with the leave-one-out baseline. The references are
:mod:`course_utils.estimators`; the noise eps and the samples k are inputs, so the comparison is
exact. The mistakes are the reference with one knob changed. Once every case passes, the estimators
(2.1, 2.2, 2.5) must give the same result twice on the same inputs (no hidden state) and be unbiased
on a closed-form example (the mean of 1000 estimates within 5 standard errors of the exact
gradient); when a wrong answer matches no mistake, that test tells the student whether it is biased
or only uses the noise differently.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial, wraps

import numpy as np
import torch
import torch.nn.functional as F

from .. import estimators as ref
from . import Case, Exercise, Mistake, Output, Question, as_array

__all__ = ["check_reparam_gradient", "check_score_function_gradient"]
__all__ += ["check_gradient_statistics", "check_offset_prediction", "reference_statistics"]
__all__ += ["check_score_function_gradient_loo", "reference_loo", "reference_reparam"]
__all__ += ["reference_score_function", "score_surrogate"]


def _paragraphs(block: str) -> dict[str, str]:
    """``key: text`` paragraphs, separated by blank lines (line breaks become spaces)."""
    return dict(" ".join(p.split()).split(": ", 1) for p in block.strip().split("\n\n"))


# The feedback: shared, then 2.1, 2.2, 2.3 and 2.5 (2.4 is a question, below).
_F = _paragraphs("""
ascent: wrong sign: J(phi) = E[r] is maximized by gradient ASCENT (phi <- phi + alpha ∇φJ), so
return ∇φJ itself, not the gradient of the loss -J.

rows: the {name} has shape {shape}, one row per sample: average over the M={m} samples (axis 0) to
get shape ({n},).

axis: you averaged over the {} (axis 1) instead of over the M samples (axis 0).

number: the {name} is a single number; it needs shape ({n},): average over the samples only.

sum: you summed over the M samples; the estimator averages them: 1/M Σ_j.

scale: torch.distributions rejected a negative scale: you passed log_std where the standard
deviation belongs. Use sigma = log_std.exp().

pair: return the tuple (grad_mu, grad_log_std), each of the shape of mu (`return grad_mu,
grad_log_std`); your function returned {}.

none: is None. A tensor's .grad stays None unless it requires grad and backward() reached it;
torch.autograd.grad(objective, (mu, log_std)) returns the gradients directly.

biased: your estimator is biased: averaged over 1000 independent draws of M={m} samples, its {what}
is {mean:.4g} ± {se:.2g} (standard error), but the exact gradient of E[r] is {exact:.4g}, {z:.0f}
standard errors away.

twice: two calls with the same inputs gave different results. If you read .grad after backward(),
gradients accumulate from call to call; use torch.autograd.grad, or make fresh leaves with
mu = mu.detach().requires_grad_().

nan: your gradient contains NaN on an input where some log_std < 0. A common cause is using log_std
as the standard deviation (the log or square root of a negative number is NaN); sigma =
log_std.exp().

overflow: NaN for logits near 1000: exp(1000) overflows. Use torch.softmax or torch.log_softmax,
which subtract the maximum logit first.

chain: your d/d log_std is the gradient with respect to sigma: you forgot the chain rule through
sigma = exp(log_std), d/d log_std = sigma * d/d sigma.

unbiased: your estimates look unbiased on average, but they do not match the reference for the
same noise eps. Use exactly the given eps (do not draw new noise) with z = mu + eps * log_std.exp(),
and

zero21: your gradient is exactly zero. The estimate 1/M Σ_j ∇φ log q(z_j) r(z_j) vanishes only if
the score or r(z_j) got lost: hold z_j fixed, but differentiate log q with respect to mu and log_std
(which must require grad if you use autograd).

score21: For the Gaussian score, d log q / d log_std = (z - mu)^2 / sigma^2 - 1 = eps^2 - 1.

minus_one: your d/d log_std misses the -1: d log q / d log_std = (z - mu)^2 / sigma^2 - 1 =
eps^2 - 1; the -1 comes from the normaliser 1/sigma of the Gaussian density.

mu0: your d/d mu has the wrong scale: d log q / d mu = (z - mu) / sigma^2 = eps / sigma.

mu1: your d/d mu has the wrong scale: d log q / d mu = (z - mu) / sigma^2 = eps / sigma, and
z - mu = eps * sigma, so you need to divide by sigma^2.

no_r21: you forgot the factor r(z_j): the estimator is 1/M Σ_j ∇φ log q(z_j) r(z_j); without r it
estimates E[∇φ log q] = 0.

no_score: you forgot the score ∇φ log q_φ(z_j): the estimator multiplies each r(z_j) by the
gradient of log q at that sample, 1/M Σ_j ∇φ log q(z_j) r(z_j).

pathwise: this is the reparameterization estimate (you differentiated r through z = mu + eps sigma).
Exercise 2.1 asks for the score function: hold z_j and r(z_j) fixed and differentiate only
log q_φ(z_j).

z_in_q: z_j must be a constant in the score function: the log q you differentiated still depended
on mu and log_std through z = mu + eps * sigma. Compute z (and r(z)) under torch.no_grad(), or call
.detach(), before evaluating log q(z).

z_in_r: r(z_j) is still attached to the graph: you held z_j fixed in log q but computed r from
z = mu + eps * sigma built from mu and log_std, so autograd added the biased term
1/M Σ_j log q(z_j) ∇φ r(z_j). Compute z and r(z) under torch.no_grad() (or .detach() them) and
differentiate only log q.

z_in_both: z_j and r(z_j) must be constants in the score function: with z = mu + eps * sigma in the
graph of both factors of log q(z_j) r(z_j), autograd also differentiated r through z (a biased term
1/M Σ_j log q(z_j) ∇φ r(z_j)), and log q(mu + eps sigma) = -eps^2/2 - log sigma lost its score.
Compute z and r(z) under torch.no_grad(), then differentiate log q(z).

slide: Slide erratum: the slide's "just use the policy gradient", 1/M Σ_j ∇φ log q_φ(z_j) r(z_j),
comes from RL, where r has no path to φ; here r(z) is differentiable in z, and ∇φ acts on log q
only.

log_std21: you used log_std as the standard deviation; sigma = log_std.exp().

path21: autograd found no path from mu and log_std to your surrogate 1/M Σ_j log q(z_j) r(z_j):
make fresh leaves mu = mu.detach().requires_grad_() (the same for log_std) and compute log q(z_j)
from them; only z_j and r(z_j) stay constant.

recipe21: 1/M Σ_j ∇φ log q(z_j) r(z_j) with ∇_mu log q = eps / sigma, ∇_log_std log q = eps^2 - 1.

zero22: your gradient is exactly zero: z was cut off from mu and log_std (by .detach(),
torch.no_grad(), numpy, or a fresh tensor), so autograd sees r(z) as a constant. The
reparameterization trick needs the path mu, log_std -> z = mu + eps * exp(log_std) -> r(z).

sigma_cut: your gradient w.r.t. log_std is zero: sigma = exp(log_std) was detached (or sampled
without a gradient path), so only mu receives a gradient. Keep z = mu + eps * log_std.exp() in the
graph.

dz22: Here dz/d log_std = eps * sigma, not eps: build z from log_std.exp() and let autograd
differentiate with respect to log_std.

log_std22: you used log_std as the standard deviation: z = mu + eps * log_std.exp(), not
mu + eps * log_std.

score22: this is the score-function estimate of Exercise 2.1. Here differentiate r itself through
z = mu + eps * sigma: the gradient of 1/M Σ_j r(mu + eps_j sigma).

path22: autograd found no path from mu and log_std to your objective: z was cut off from them (by
.detach(), torch.no_grad(), .item(), numpy, or building a new tensor). Keep
z = mu + eps * log_std.exp() inside the graph, on tensors with requires_grad=True.

recipe22: the gradient of 1/M Σ_j r(mu + eps_j * exp(log_std)) with respect to mu and log_std.

zero23: your gradient is exactly zero. Two usual causes: the baseline for sample j is r(k_j)
itself, so every term r(k_j) - b_j vanishes (b_j must leave sample j out, b_j = 1/(M-1) Σ_{i≠j}
r(k_i)); or you averaged over the K categories (axis 1) instead of over the M samples (axis 0): each
score e_k - softmax(logits) sums to zero over the categories.

sign23: wrong sign: the estimate is 1/M Σ_j (r(k_j) - b_j) ∇ log q(k_j), the gradient to ASCEND.

all_mean: your baseline is the mean of all M rewards, including r(k_j) itself. It then depends on
the sample it multiplies, which biases the estimate: on average it shrinks the gradient by the
factor (M-1)/M. Leave sample j out: b_j = 1/(M-1) Σ_{i≠j} r(k_i).

by_m: your leave-one-out baseline divides by M; the mean of the M-1 other rewards divides by M-1.

no_baseline: you subtracted no baseline: that is the plain score-function estimate, unbiased but
with a much larger variance. Subtract b_j = 1/(M-1) Σ_{i≠j} r(k_i) from r(k_j).

no_r23: you forgot the factor r(k_j) - b_j: without it you average the scores, whose expectation
is E[∇ log q] = 0.

biased23: A baseline keeps the estimate unbiased only if b_j does not depend on the sample k_j it
multiplies.

unbiased23: your estimates look unbiased on average but differ from the leave-one-out estimate on
the same samples: use the given samples k, the baseline b_j = 1/(M-1) Σ_{i≠j} r(k_i), and average
(r(k_j) - b_j)(e_(k_j) - softmax(logits)) over j.

ddof: your variance divides by N: the sample variance of N estimates divides by N - 1 (torch.var's
default, np.var(..., ddof=1)), because the mean it subtracts comes from the same N estimates.

se_sd: your std_error is the standard deviation of ONE estimate, sqrt(variance); the standard error
of the MEAN of N independent estimates is sqrt(variance / N).

se_var: your std_error is variance / N, which is a variance; the standard error is its square root,
sqrt(variance / N).

se_sd_n: your std_error divides the standard deviation by N; the mean of N independent estimates
has standard deviation sqrt(variance) / sqrt(N).

z_signed: your z is signed; it is a distance: |mean - exact| / std_error.

z_sd: your z measures the distance in standard deviations of ONE estimate; measure it in standard
errors of the mean: |mean - exact| / std_error (the mean of N estimates is sqrt(N) times more
precise than one).

first: you kept only the first part of the estimator's output (shape {first}); flatten every part
(grad_mu, then grad_log_std, ...) with .reshape(-1) and concatenate them in order: P = {p} numbers.

parts: your estimates and `exact` have different lengths. Did you keep only the first part of the
estimator's output? Flatten EVERY part (grad_mu, then grad_log_std, ...) with .reshape(-1) and
concatenate them, so that each row has P = len(exact) numbers.

draws_axis: the {name} has shape ({n},), one number per draw: reduce over the N = {n} draws (axis 0
of the stacked estimates), not over the parameters.

total: the {name} is a single number; return one per parameter, shape ({p},) (the chapter sums the
variances itself when it needs the total).

flat: the {name} has shape {shape}; flatten each estimate into one row of P = {p} numbers
(torch.cat of the parts, each .reshape(-1)), so that every output has shape ({p},).
""")


def _t(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=float), dtype=torch.float64)


def _knobs(fn: Callable) -> Callable:
    """``_knobs(f)(**knobs)``: ``f`` with some keyword knobs set (one typical mistake)."""
    return lambda **knobs: partial(fn, **knobs)


def _times(fn: Callable, factor: float | None = None) -> Callable:
    """``fn`` with its outputs multiplied by ``factor`` (None: by M, the length of the last input)."""

    def wrong(*args):
        out, f = fn(*args), args[-1].shape[0] if factor is None else factor
        return tuple(f * o for o in out) if isinstance(out, tuple) else f * out

    return wrong


def _shape_hint(name: str, shape: tuple, m: int, n: int, axis_1: str) -> str | None:
    """Feedback on an output of shape (M, n), (M,) or () where (n,) is expected."""
    if shape == (m, n):
        return _F["rows"].format(name=name, shape=shape, m=m, n=n)
    if shape == (m,) and m != n:
        return f"the {name} has shape ({m},), not ({n},): " + _F["axis"].format(axis_1)
    if shape == () and n > 1:
        return _F["number"].format(name=name, n=n)
    return None


# ----------------------------------------------------------------------- the harness, extended


@dataclass
class _Estimator(Exercise):
    """An exercise on a gradient estimator. Once every case passes, two calls on the same inputs
    must agree and :meth:`bias` must find no bias on ``closed_form``; when a wrong answer matches
    no mistake, that test chooses between the feedback ``biased`` and ``unbiased``."""

    closed_form: tuple = ()  # (repeat helper of estimators.py, its arguments, exact gradient, M)
    state_case: int = 0
    biased: str = ""
    unbiased: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.after = [self._same_twice, lambda fn, cases: self.bias(fn)]
        self.fallbacks = [self._verdict]

    def run(self, fn: Callable, seed: int = 0) -> None:
        __tracebackhide__ = True
        pair = len(self.outputs) == 2 and callable(fn) and not isinstance(fn, type)
        self.student = self._guarded(fn) if pair else fn
        super().run(self.student, seed)  # the fallback runs self.student again

    def _guarded(self, fn: Callable) -> Callable:
        """``fn``, with feedback in the exercise's terms when it does not return a pair of
        gradients (a tensor's ``.grad`` read without backward() is None)."""

        @wraps(fn)
        def student(*args):
            out = fn(*args)
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                shape = f" of shape {tuple(out.shape)}" if hasattr(out, "shape") else ""
                got = "None" if out is None else f"a {type(out).__name__}{shape}"
                raise self.error(_F["pair"].format(got))
            if any(o is None for o in out):
                name = self.outputs[[o is None for o in out].index(True)].name
                raise self.error(f"the {name} {_F['none']}")
            return out

        return student

    def arrays(self, out) -> list[np.ndarray]:
        """The outputs of one call as float64 arrays (copies)."""
        return [np.array(as_array(o), float) for o in (out if len(self.outputs) > 1 else (out,))]

    def _same_twice(self, fn: Callable, cases) -> str | None:
        __tracebackhide__ = True
        case = Case("the same inputs, passed twice", cases[self.state_case].args)
        args = self._fresh_args(case)
        first = self.arrays(self.call_student(fn, case, args)[0])
        second = self.arrays(self.call_student(fn, case, args)[0])
        same = all(np.allclose(a, b, 1e-6, 1e-9) for a, b in zip(first, second, strict=True))
        return None if same else _F["twice"]

    def bias(self, fn: Callable) -> str | None:
        """Feedback when the mean of 1000 estimates of ``fn`` on the closed-form case is more than
        5 standard errors off the exact gradient."""
        repeat, args, exact, m = self.closed_form
        case = Case(f"the closed-form case of the unbiasedness test (M={m})")

        def estimator(*args):
            args = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)
            out = self.arrays(self.call_student(fn, case, args)[0])
            return [torch.as_tensor(a) for a in out] if len(out) > 1 else torch.as_tensor(out[0])

        estimates = repeat(estimator, *args, n_samples=m, n_reps=1000, seed=2024)
        mean, se = estimates.mean(0).ravel(), estimates.std(0, ddof=1).ravel() / np.sqrt(1000)
        z = np.abs(mean - exact.ravel()) / np.maximum(se, 1e-12)
        i = int(np.argmax(z))
        if z[i] <= 5.0:
            return None
        names = ("mu", "log_std") if len(self.outputs) == 2 else ("logits",)
        what = [f"d/d {p}[{j}]" for p in names for j in range(exact.shape[-1])][i]
        return _F["biased"].format(
            m=m, what=what, mean=mean[i], se=se[i], exact=exact.ravel()[i], z=z[i]
        )

    def _verdict(self, actual, expected, case: Case) -> str | None:
        __tracebackhide__ = True
        if len(self.outputs) == 1:
            actual, expected = [actual], [expected]
        pairs = zip(actual, expected, strict=True)
        if any(a.shape != e.shape or not np.isfinite(a).all() for a, e in pairs):
            return None  # the generic shape and NaN feedback says it better
        message = self.bias(self.student)
        return f"{message} {self.biased}" if message else self.unbiased


# ----------------------------------------------------------------------- Exercises 2.1 and 2.2


def _wavy(z: torch.Tensor) -> torch.Tensor:
    """r(z) = Σ_k sin(z_k) - 0.1 |z|^2: not quadratic, so no closed-form shortcut works."""
    return torch.sin(z).sum(-1) - 0.1 * (z**2).sum(-1)


def _minus_50(z: torch.Tensor) -> torch.Tensor:
    """r(z) = -50 - |z - 1|^2 / 2: large and negative, like log p(x|z) + log p(z)."""
    return -50.0 - 0.5 * ((z - 1.0) ** 2).sum(-1)


def _gaussian_cases(rng: np.random.Generator) -> list[Case]:
    """Cases (r, mu, log_std, eps): d = 1 to 5, M = 1 to 1000, sigma = 0.05 to 7.4."""
    a = rng.normal(size=(3, 3))
    full = ref.QuadraticReward(_t(a @ a.T + np.eye(3)), _t(rng.normal(size=3)))
    square = ref.QuadraticReward(_t([[2.0]]), _t([2.0]))
    rewards = {square: "r(z) = -(z - 2)^2", full: "quadratic r with a full matrix A"}
    rewards |= {_wavy: "r(z) = sum(sin z) - 0.1 |z|^2", _minus_50: "r(z) = -50 - |z - 1|^2 / 2"}

    def case(m, mu, log_std, r, what):
        mu, log_std, eps = _t(mu), _t(log_std), _t(rng.normal(size=(m, len(mu))))
        return Case(f"d={len(mu)}, M={m}, {what}, {rewards[r]}", (r, mu, log_std, eps))

    return [
        case(1, [0.3], [0.0], square, "sigma=1"),
        case(64, [-0.5], [np.log(0.05)], square, "small sigma=0.05"),
        case(200, rng.normal(size=3), np.log([0.5, 1.5, 3.0]), full, "sigma=(0.5, 1.5, 3)"),
        case(2, [0.4, -1.2], [-0.3, 0.2], _wavy, "as many samples as dimensions"),
        case(1000, rng.normal(size=4), [2.0] * 4, _wavy, "large sigma=e^2"),
        case(10, [0.5, -0.5], [0.4, 0.9], _minus_50, "log_std > 0"),
        case(1, rng.normal(size=5), rng.uniform(-1.0, 1.0, size=5), _minus_50, "random mu, sigma"),
    ]


def _gaussian_shapes(actual, expected, case: Case) -> str | None:
    m, d = case.args[3].shape
    hints = (
        _shape_hint(o.name, a.shape, m, d, "d dimensions")
        for o, a in zip(_OUT, actual, strict=True)
    )
    nan = any(not np.isfinite(a).all() for a in actual) and (case.args[2] < 0).any()
    return next(filter(None, hints), _F["nan"] if nan else None)


_QUADRATIC = ref.QuadraticReward(_t([[2.0, 0.5], [0.5, 1.0]]), _t([1.0, -1.0]))
_STAT = (_QUADRATIC, _t([0.0, 0.5]), _t([0.3, -0.5]))  # (r, mu, log_std): a closed-form case
_EXACT = torch.stack(_QUADRATIC.gradient(*_STAT[1:])).numpy()


def reference_score_function(
    r, mu, log_std, eps, *, axis=0, mu_power=-1, minus_one=1.0, chain=True, drop=""
):
    """1/M Σ_j ∇φ log q(z_j) r(z_j) with the analytic scores eps / sigma and eps^2 - 1.

    The keyword knobs reproduce the typical mistakes: averaging over ``axis``, the score of mu
    eps * sigma^mu_power, the -1 of the score of log_std, its chain rule, a ``drop``ped factor.
    """
    with torch.no_grad():
        std = log_std.exp()
        rewards = torch.ones_like(eps[:, :1]) if drop == "r" else r(mu + eps * std)[:, None]
        s_mu, s_log_std = eps * std**mu_power, (eps**2 - minus_one) / (1.0 if chain else std)
        if drop == "score":
            s_mu = s_log_std = torch.ones_like(eps)
        return (rewards * s_mu).mean(axis), (rewards * s_log_std).mean(axis)


def score_surrogate(r, mu, log_std, eps, *, graph="", constant=1.0, log_std_as=""):
    """Autograd on the surrogate 1/M Σ_j log q(z_j) r(z_j), with fresh leaves mu and log_std.

    Correct with the defaults (z_j and r(z_j) constants). The knobs: ``graph`` "q", "r" or "qr",
    where z stays in the graph (of log q, of r); log q without its ``constant`` -log(2 pi)/2 (it
    multiplies ∇φ r when r is in the graph); log_std used as the scale of log q (``log_std_as``
    "scale") or also of the sample ("both"), only where log_std > 0.
    """
    if log_std_as and not (log_std > 0).all():
        return None
    mu, log_std = mu.detach().requires_grad_(True), log_std.detach().requires_grad_(True)
    s = log_std if log_std_as else log_std.exp()
    z = mu + eps * (log_std if log_std_as == "both" else log_std.exp())
    log_q = -0.5 * (((z if "q" in graph else z.detach()) - mu) / s) ** 2 - torch.log(s)
    log_q = (log_q - 0.5 * math.log(2 * math.pi) * constant).sum(-1)
    surrogate = (log_q * r(z if "r" in graph else z.detach())).mean()
    return torch.autograd.grad(surrogate, (mu, log_std), materialize_grads=True)


def reference_reparam(
    r, mu, log_std, eps, *, axis=0, chain=True, log_std_as_sigma=False, sigma_in_graph=1.0
):
    """1/M Σ_j ∇φ r(mu + eps_j sigma) from the per-sample ∇_z r(z_j): ∇_mu = ∇_z r and
    ∇_log_std = ∇_z r * dz/d log_std. The keyword knobs reproduce the typical mistakes."""
    s = log_std if log_std_as_sigma else log_std.exp()
    z = (mu + eps * s).detach().requires_grad_(True)
    (grad_z,) = torch.autograd.grad(r(z).sum(), z)
    dz = (eps if log_std_as_sigma or not chain else eps * s) * sigma_in_graph
    return grad_z.mean(axis), (grad_z * dz).mean(axis)


def _crashes(no_path: str) -> dict[str, str]:
    """Hints for the usual torch errors (no graph from mu and log_std, a negative scale)."""
    return {"does not require grad": no_path, "not have been used": no_path, "scale": _F["scale"]}


_OUT = (Output("gradient w.r.t. mu", 1e-6, 1e-9), Output("gradient w.r.t. log_std", 1e-6, 1e-9))
_GAUSSIAN = dict(cases=_gaussian_cases, outputs=_OUT, diagnoses=[_gaussian_shapes], state_case=2)
_GAUSSIAN |= dict(closed_form=(ref.repeat_gaussian_estimator, _STAT, _EXACT, 16))
_SCORE, _SURROGATE, _REPARAM = map(
    _knobs, (reference_score_function, score_surrogate, reference_reparam)
)

SCORE_FUNCTION = _Estimator(
    id="2.1",
    check_name="check_score_function_gradient",
    reference=ref.score_function_gradient,
    mistakes=[
        Mistake(_F["zero21"], _times(ref.score_function_gradient, 0.0)),
        Mistake(_F["ascent"], _times(ref.score_function_gradient, -1.0)),
        Mistake(_F["sum"], _times(ref.score_function_gradient)),
        Mistake(_F["axis"].format("d dimensions"), _SCORE(axis=1)),
        Mistake(f"{_F['chain']} {_F['score21']}", _SCORE(chain=False)),
        Mistake(_F["minus_one"], _SCORE(minus_one=0.0)),
        Mistake(_F["mu0"], _SCORE(mu_power=0)),
        Mistake(_F["mu1"], _SCORE(mu_power=1)),
        Mistake(_F["no_r21"], _SCORE(drop="r")),
        Mistake(_F["no_score"], _SCORE(drop="score")),
        Mistake(_F["pathwise"], ref.reparam_gradient),
        Mistake(_F["z_in_q"], _SURROGATE(graph="q")),
        *(
            Mistake(f"{_F['z_in_r']} {_F['slide']}", _SURROGATE(graph="r", constant=c))
            for c in (1, 0)
        ),
        *(
            Mistake(f"{_F['z_in_both']} {_F['slide']}", _SURROGATE(graph="qr", constant=c))
            for c in (1, 0)
        ),
        *(Mistake(_F["log_std21"], _SURROGATE(log_std_as=s)) for s in ("scale", "both")),
    ],
    crashes=_crashes(_F["path21"]),
    biased=f"Compare your code with {_F['recipe21']}",
    unbiased=f"{_F['unbiased']} {_F['recipe21']}",
    success="the score-function estimate matches the reference on {n} inputs (d = 1 to 5, M = 1 to "
    "1000, sigma = 0.05 to 7.4) and is unbiased on a quadratic reward.",
    **_GAUSSIAN,
)
check_score_function_gradient = SCORE_FUNCTION.check

REPARAM = _Estimator(
    id="2.2",
    check_name="check_reparam_gradient",
    reference=ref.reparam_gradient,
    mistakes=[
        Mistake(_F["zero22"], _times(ref.reparam_gradient, 0.0)),
        Mistake(_F["sigma_cut"], _REPARAM(sigma_in_graph=0.0)),
        Mistake(_F["ascent"], _times(ref.reparam_gradient, -1.0)),
        Mistake(
            f"{_F['sum']} Differentiate r(z).mean(), not r(z).sum().", _times(ref.reparam_gradient)
        ),
        Mistake(_F["axis"].format("d dimensions"), _REPARAM(axis=1)),
        Mistake(f"{_F['chain']} {_F['dz22']}", _REPARAM(chain=False)),
        Mistake(_F["log_std22"], _REPARAM(log_std_as_sigma=True)),
        Mistake(_F["score22"], ref.score_function_gradient),
    ],
    crashes=_crashes(_F["path22"]),
    biased=f"Compare your code with {_F['recipe22']}",
    unbiased=f"{_F['unbiased']} {_F['recipe22']}",
    success="the reparameterization estimate matches the reference on {n} inputs (d = 1 to 5, M = 1 "
    "to 1000, sigma = 0.05 to 7.4) and is unbiased on a quadratic reward.",
    **_GAUSSIAN,
)
check_reparam_gradient = REPARAM.check


# ----------------------------------------------------------------------- Exercise 2.3


def _three_parts(eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """An estimator whose output has parts of shapes (), (2,) and (2, 2); eps: (2, 2)."""
    return eps.sum(), eps.mean(0), torch.outer(eps[0], eps[1])


def _shifted(eps: torch.Tensor) -> torch.Tensor:
    """A biased estimator of the zero vector: its mean is -0.5 in every coordinate."""
    return eps.mean(0) - 0.5


def _bound(estimator: Callable, *args) -> Callable:
    """``estimator(*args, draw)``, with a name the feedback can show."""
    bound = partial(estimator, *args)
    return wraps(estimator)(lambda draw: bound(draw))


def _stats_cases(rng: np.random.Generator) -> list[Case]:
    """Cases (estimator, noise, exact): N = 2 to 300 draws, P = 3 to 7 parameters."""
    quad = ref.QuadraticReward(_t([[2.0, 0.5], [0.5, 1.0]]), _t([1.0, -1.0]))
    mu, log_std = _t([0.0, 0.5]), _t([0.3, -0.5])
    exact_q = torch.cat(quad.gradient(mu, log_std))
    r3 = ref.QuadraticReward(_t(np.eye(3)), _t(rng.normal(size=3)))
    mu3, log_std3 = _t(rng.normal(size=3)), _t(rng.uniform(-0.5, 0.5, size=3))
    p = np.exp(_CAT[1].numpy())
    k = torch.as_tensor(rng.choice(5, size=(40, 3), p=p / p.sum()), dtype=torch.int64)

    def normal(*shape):
        return _t(rng.normal(size=shape))

    return [
        Case(
            "the score function of Exercise 2.1 (a pair), N=300 draws of M=4, d=2",
            (_bound(ref.score_function_gradient, quad, mu, log_std), normal(300, 4, 2), exact_q),
        ),
        Case(
            "the leave-one-out estimate (one tensor), N=40 draws of M=3 categories",
            (_bound(ref.categorical_score_gradient_loo, *_CAT), k, _t(_CAT_EXACT)),
        ),
        Case(
            "N=2 draws (the fewest with a sample variance), reparameterization, d=3",
            (
                _bound(ref.reparam_gradient, r3, mu3, log_std3),
                normal(2, 5, 3),
                torch.cat(r3.gradient(mu3, log_std3)),
            ),
        ),
        Case(
            "an estimator with parts of shapes (), (2,) and (2, 2), N=30",
            (_three_parts, normal(30, 2, 2), torch.zeros(7, dtype=torch.float64)),
        ),
        Case(
            "a biased estimator (mean -0.5, exact 0), N=50",
            (_shifted, normal(50, 4, 3), torch.zeros(3, dtype=torch.float64)),
        ),
    ]


def reference_statistics(
    estimator, noise, exact, *, ddof=1, se="sqrt(var/N)", signed=False, z_scale="se", first=False
):
    """:func:`course_utils.estimators.gradient_statistics`, with keyword knobs that reproduce the
    typical mistakes (the defaults give the reference)."""
    rows = []
    for draw in noise:
        out = estimator(draw)
        parts = out if isinstance(out, (tuple, list)) else (out,)
        parts = parts[:1] if first else parts
        rows.append(torch.cat([torch.as_tensor(q).detach().double().reshape(-1) for q in parts]))
    est = torch.stack(rows)
    n, mean = len(est), est.mean(0)
    var = est.var(0, correction=ddof)
    std_error = {
        "sqrt(var/N)": (var / n).sqrt(),
        "sd": var.sqrt(),
        "var/N": var / n,
        "sd/N": var.sqrt() / n,
    }[se]
    exact = torch.as_tensor(exact, dtype=torch.float64).reshape(-1)
    if first:
        exact = exact[: mean.shape[0]]
    diff = mean - exact
    z = (diff if signed else diff.abs()) / (std_error if z_scale == "se" else var.sqrt())
    return mean, std_error, var, z


def _stats_shapes(actual, expected, case: Case) -> str | None:
    """Feedback on outputs of the wrong shape: one number per draw, a total, only the first
    part, or estimates not flattened."""
    estimator, noise, _ = case.args
    n, p = len(noise), expected[0].shape[0]
    out = estimator(noise[0])
    first = tuple(np.shape(as_array(out[0]))) if isinstance(out, (tuple, list)) else None
    for spec, a in zip(_STATS_OUT, actual, strict=True):
        if a.shape == expected[0].shape:
            continue
        if a.shape == (n,) and n != p:
            return _F["draws_axis"].format(name=spec.name, n=n)
        if a.shape == ():
            return _F["total"].format(name=spec.name, p=p)
        if first is not None and a.size == math.prod(first) and a.size != p:
            return _F["first"].format(first=first, p=p)
        if a.size == p:
            return _F["flat"].format(name=spec.name, shape=a.shape, p=p)
    return None


_STATS_OUT = (
    Output("mean", 1e-6, 1e-9),
    Output("std_error", 1e-6, 1e-9),
    Output("variance", 1e-6, 1e-9),
    Output("z", 1e-6, 1e-9),
)
_STATS = _knobs(reference_statistics)
STATISTICS = Exercise(
    id="2.3",
    check_name="check_gradient_statistics",
    reference=ref.gradient_statistics,
    cases=_stats_cases,
    outputs=_STATS_OUT,
    diagnoses=[_stats_shapes],
    mistakes=[
        Mistake(_F["ddof"], _STATS(ddof=0)),
        Mistake(_F["se_sd"], _STATS(se="sd")),
        Mistake(_F["se_var"], _STATS(se="var/N")),
        Mistake(_F["se_sd_n"], _STATS(se="sd/N")),
        Mistake(_F["z_signed"], _STATS(signed=True)),
        Mistake(_F["z_sd"], _STATS(z_scale="sd")),
    ],
    crashes={"must match the size of tensor": _F["parts"], "could not be broadcast": _F["parts"]},
    success="the statistics match the reference on {n} estimators (one tensor or a tuple of parts, "
    "N = 2 to 300 draws, biased and unbiased).",
)
check_gradient_statistics = STATISTICS.check


# ----------------------------------------------------------------------- Question 2.4

OFFSET = Question(
    id="2.4",
    check_name="check_offset_prediction",
    answer="c",
    feedback={
        "a": "the MEAN of the estimates does not change (E[∇φ log q] = 0, so ∇φJ is the same), but "
        "every single score-function estimate does: each term moves by C ∇φ log q(z_j), a random "
        "vector with mean zero and variance C^2 Var(∇φ log q). Same mean, wider spread.",
        "b": "the reparameterization estimate differentiates r(z) + C with respect to z, and the "
        "derivative of a constant is zero: on the same noise its estimates are identical, bit for "
        "bit, whatever C is. Only the score function multiplies the VALUE of r.",
        "d": "the added term C · (1/M) Σ_j ∇φ log q(z_j) is linear in C, so its variance is "
        "quadratic in C: Var(g + C s) = Var(g) + 2C Cov(g, s) + C^2 Var(s), dominated by C^2 "
        "Var(s) once |C| is large.",
    },
    hint='answer with one of the choices "a", "b", "c" or "d", as a string.',
    success="a constant C adds C · (1/M) Σ_j ∇φ log q(z_j) to every score-function estimate, a "
    "term of variance C^2 Var(∇φ log q) / M; the reparameterization estimate differentiates the "
    "constant away.",
)
check_offset_prediction = OFFSET.check


# ----------------------------------------------------------------------- Exercise 2.5


def _categorical_cases(rng: np.random.Generator) -> list[Case]:
    """Cases (rewards, logits, k): K = 2 to 6, M = 2 to 200, logits near 1000."""

    def case(m, rewards, logits, what):
        logits = np.asarray(logits, float)
        p = np.exp(logits - logits.max())
        k = rng.choice(len(logits), size=m, p=p / p.sum())
        if m > 2 and len(np.unique(k)) == 1:  # make sure the baseline matters
            k[0] = (k[0] + 1) % len(logits)
        args = (_t(rewards), _t(logits), torch.as_tensor(k, dtype=torch.int64))
        return Case(f"K={len(logits)}, M={m}, {what}", args)

    return [
        case(2, [1.0, -2.0], [0.3, -0.2], "the smallest case"),
        case(5, rng.normal(size=5), rng.normal(size=5), "as many samples as categories"),
        case(200, -100 + rng.normal(size=4), rng.normal(size=4), "rewards near -100"),
        case(3, rng.normal(size=6), 1000 + rng.normal(size=6), "logits near +1000"),
        case(50, [2.0, -1.0, 0.5], [-15.0, 0.0, 15.0], "nearly deterministic logits (-15, 0, 15)"),
        case(2, [-3.0, 4.0, 0.0, 1.0, -1.0], rng.normal(size=5), "negative and positive rewards"),
    ]


def reference_loo(rewards, logits, k, *, baseline="others", denominator=-1, reward=True):
    """1/M Σ_j (r(k_j) - b_j)(e_(k_j) - softmax(logits)) with b_j = 1/(M-1) Σ_{i≠j} r(k_i).

    The keyword knobs reproduce the typical mistakes (the reference uses the defaults).
    """
    m, r = k.shape[0], rewards[k]
    b = {"others": (r.sum() - r) / (m + denominator), "all": r.mean(), "none": 0.0}[baseline]
    weights = (r - b) if reward else torch.ones_like(r)
    scores = F.one_hot(k, logits.shape[0]).to(logits.dtype) - torch.softmax(logits, -1)
    return (weights[:, None] * scores).mean(0)


def _loo_shapes(actual: np.ndarray, expected: np.ndarray, case: Case) -> str | None:
    _, logits, k = case.args
    hint = _shape_hint("gradient estimate", actual.shape, len(k), len(logits), "K categories")
    nan = actual.shape == expected.shape and not np.isfinite(actual).all() and logits.max() > 500
    return hint or (_F["overflow"] if nan else None)


_CAT = (_t([-11.0, -9.0, -12.0, -7.0, -10.0]), _t([0.5, -0.3, 1.0, -1.0, 0.0]))  # rewards, logits
_CAT_EXACT = ref.categorical_exact_gradient(*_CAT).numpy()
_LOO = _knobs(reference_loo)
LOO = _Estimator(
    id="2.5",
    check_name="check_score_function_gradient_loo",
    reference=ref.categorical_score_gradient_loo,
    cases=_categorical_cases,
    outputs=[Output("gradient estimate", 1e-6, 1e-9)],
    diagnoses=[_loo_shapes],
    mistakes=[
        Mistake(_F["zero23"], _times(ref.categorical_score_gradient_loo, 0.0)),
        Mistake(_F["sign23"], _times(ref.categorical_score_gradient_loo, -1.0)),
        Mistake(_F["all_mean"], _LOO(baseline="all")),
        Mistake(_F["by_m"], _LOO(denominator=0)),
        Mistake(_F["no_baseline"], _LOO(baseline="none")),
        Mistake(_F["sum"], _times(ref.categorical_score_gradient_loo)),
        Mistake(_F["no_r23"], _LOO(reward=False)),
    ],
    closed_form=(ref.repeat_categorical_estimator, _CAT, _CAT_EXACT, 3),
    state_case=1,
    biased=_F["biased23"],
    unbiased=_F["unbiased23"],
    success="the leave-one-out estimate matches the reference on {n} inputs (K = 2 to 6, M = 2 to "
    "200, logits near 1000) and is unbiased on a 5-category example.",
)
check_score_function_gradient_loo = LOO.check
