"""Checks for chapter 01 (variational inference): 1.1 ``gaussian_entropy``, 1.2 ``gaussian_kl``,
1.3 ``elbo_mc`` (a Monte Carlo ELBO), 1.4 ``vi_step`` (one gradient-ascent step of per-datapoint
VI). The references are in :mod:`course_utils.lvm`; each mistake is the reference with one knob
changed, its feedback in the message table above the exercise.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial

import numpy as np
import torch

from .. import lvm
from . import Case, Exercise, Grad, Mistake, Output

__all__ = ["check_elbo_mc", "check_gaussian_entropy", "check_gaussian_kl", "check_vi_step"]
__all__ += ["messages", "mistake_table", "reduction_mistakes"]


def messages(text: str) -> dict[str, str]:
    """A table of feedback: one ``name: message`` entry per unindented line of ``text``, continued
    on the indented lines below it."""
    entries = (entry.split(": ", 1) for entry in re.split(r"\n(?=\S)", text.strip()))
    return {name: " ".join(message.split()) for name, message in entries}


def mistake_table(text: str, **fns: Callable | tuple) -> list[Mistake]:
    """``Mistake(message, fn)`` for each ``name=fn`` (or tuple of fns), messages from ``text``."""
    table = messages(text)
    return [
        Mistake(table[name], fn)
        for name, some in fns.items()
        for fn in (some if isinstance(some, tuple) else (some,))
    ]


_REDUCTIONS = """
batch: you summed over the batch axis (axis 0) instead of the {1}s: the {0} reduces over the LAST
    axis, (..., {2}) -> (...), one value per batch entry. Use .sum(-1) (or .sum(dim=-1)).
none: you returned one {0} per {1} (shape (..., {2})); the {0} of independent {1}s is the sum over
    them, so sum over the last axis.
mean: you averaged over the {1}s; the {0} of independent {1}s is their sum, so use .sum(-1), not
    .mean(-1).
all: you reduced over every axis and returned one number; reduce over the last axis (the {1}s) only
    and keep one {0} per batch entry.
"""


def reduction_mistakes(per_dim: Callable, what: str, dim="latent dimension", d="d") -> list:
    """The wrong reductions of ``per_dim(*args)``, terms (..., d) whose sum(-1) is right."""
    return mistake_table(
        _REDUCTIONS.format(what, dim, d),
        batch=lambda *a: per_dim(*a).sum(0) if per_dim(*a).ndim >= 2 else None,
        none=lambda *a: per_dim(*a) if per_dim(*a).shape[-1] > 1 else None,  # d=1: keepdims
        mean=lambda *a: per_dim(*a).mean(-1),
        all=lambda *a: per_dim(*a).sum(),
    )


def _t(array) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array, dtype=np.float64))


# ----------------------------------------------------------------------- Exercise 1.1


def _entropy_cases(rng: np.random.Generator) -> list[Case]:
    mixed = rng.normal(size=(5, 2))
    mixed[0], mixed[1] = np.abs(mixed[0]), -np.abs(mixed[1])  # sigma > 1 and sigma < 1
    return [
        Case(name, (_t(log_std),))
        for name, log_std in [
            ("a batch of 5 q's with d=2 (sigma < 1 and > 1)", mixed),
            ("a single q with d=3, log_std ~ N(0, 1)", rng.normal(size=3)),
            ("batch axes (2, 4) with d=3", rng.normal(size=(2, 4, 3))),
            ("a (4, 4) batch with log_std in [-3, -0.1]", rng.uniform(-3, -0.1, (4, 4))),
            ("tiny sigmas (log_std ~ -30, sigma ~ 1e-13), (3, 2)", rng.normal(-30, 1, (3, 2))),
            ("huge sigmas (log_std ~ 12, sigma ~ 1.6e5), (2, 5)", rng.normal(12, 1, (2, 5))),
            ("d=1 with a batch of 6 (log_std in [-2, 2])", rng.uniform(-2, 2, size=(6, 1))),
        ]
    ]


def _entropy(log_std, *, const=0.5 * (lvm.LOG_2PI + 1.0), log_sigma=lambda v: v, sum_=True):
    """Per dimension const + log sigma, summed over the last axis; the knobs make the mistakes."""
    per_dim = const + log_sigma(log_std)
    return per_dim.sum(-1) if sum_ else per_dim


_ENTROPY = """
sign: your entropy has the wrong sign: H(q) = -E_q[log q(z)] = sum_j (1/2 log(2 pi e) + log sigma_j)
    (it grows with sigma).
exp: you used sigma = exp(log_std) where log sigma belongs: the input is already log sigma, so H =
    sum_j (1/2 log(2 pi e) + log_std_j).
log: you took the log of log_std, treating it as sigma (this gives NaN for log_std < 0): the input
    is log sigma already, so log sigma_j = log_std_j and sigma = exp(log_std).
abs: you treated log_std as sigma (1/2 log(2 pi e log_std^2) = 1/2 log(2 pi e) + log|log_std|): log
    sigma_j is log_std_j itself and sigma = exp(log_std).
var: you used log sigma^2 = 2 log_std where log sigma belongs: H = 1/2 log(2 pi e sigma^2) = 1/2
    log(2 pi e) + log sigma per dimension.
no_e: the constant per dimension is 1/2 log(2 pi e) = 1/2 (log(2 pi) + 1); you left out the +1/2
    that comes from the e (E_q[(z - mu)^2 / sigma^2] = 1).
twice: the constant per dimension is 1/2 log(2 pi e), not log(2 pi e).
none: you dropped the constant 1/2 log(2 pi e) per dimension; without it H is not the entropy (and
    the ELBO will not equal log p(x) - KL).
"""
ENTROPY = Exercise(
    id="1.1",
    check_name="check_gaussian_entropy",
    reference=lvm.gaussian_entropy,
    cases=_entropy_cases,
    mistakes=[
        *mistake_table(
            _ENTROPY,
            sign=lambda ls: -_entropy(ls),
            exp=partial(_entropy, log_sigma=torch.exp),
            log=partial(_entropy, log_sigma=torch.log),
            abs=partial(_entropy, log_sigma=lambda v: v.abs().log()),
            var=partial(_entropy, log_sigma=lambda v: 2 * v),
            no_e=partial(_entropy, const=0.5 * lvm.LOG_2PI),
            twice=partial(_entropy, const=lvm.LOG_2PI + 1.0),
            none=partial(_entropy, const=0.0),
        ),
        *reduction_mistakes(partial(_entropy, sum_=False), "entropy"),
    ],
    success="the Gaussian entropy matches the reference on {n} inputs, sigma from 1e-13 to 1e5.",
)
check_gaussian_entropy = ENTROPY.check


# ----------------------------------------------------------------------- Exercise 1.2


def _kl_cases(rng: np.random.Generator) -> list[Case]:
    def pair(shape, loc_q=0.0, loc_p=0.0, prior=None):
        q = rng.normal(size=shape), rng.normal(loc_q, 1, shape)
        p = (rng.normal(size=shape), rng.normal(loc_p, 1, shape)) if prior is None else prior
        return tuple(_t(v) for v in (*q, *p))

    mixed = pair((5, 2))
    for log_std in mixed[1::2]:  # a pair with both sigmas > 1, one with both < 1
        log_std[0], log_std[1] = log_std[0].abs(), -log_std[1].abs()
    same = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    return [
        Case(name, args)
        for name, args in [
            ("5 pairs (q, p) with d=2, sigmas < 1 and > 1", mixed),
            ("4 q's with d=3, p = N(0, I) of shape (3,)", pair((4, 3), prior=np.zeros((2, 3)))),
            ("batch axes (2, 3) with d=4", pair((2, 3, 4))),
            ("(3, 3): q narrow (log_std_q ~ -1), p wide (log_std_p ~ 1)", pair((3, 3), -1, 1)),
            ("q = p (the KL must be 0), shape (2, 3)", tuple(_t(v) for v in (*same, *same))),
            ("tiny sigma_q (log_std_q ~ -12), log_std_p ~ -1, (4, 2)", pair((4, 2), -12, -1)),
            ("huge sigma_q (log_std_q ~ 6), narrow p (log_std_p ~ -2)", pair((4, 2), 6, -2)),
            ("d=1 with a batch of 6", pair((6, 1))),
        ]
    ]


def _kl(*args, log_ratio=lambda q, p: p - q, var=lambda ls: torch.exp(2 * ls), const=-0.5, sum_=1):
    """Per dimension log(sigma_p/sigma_q) + (sigma_q^2 + (mu_q - mu_p)^2) / (2 sigma_p^2) - 1/2."""
    mu_q, log_std_q, mu_p, log_std_p = args
    var_p = var(log_std_p)
    per_dim = log_ratio(log_std_q, log_std_p) + 0.5 * (var(log_std_q) + (mu_q - mu_p) ** 2) / var_p
    return (per_dim + const).sum(-1) if sum_ else per_dim + const


_KL = """
sign: your KL is the negative of the right one; D_KL(q||p) >= 0 always. It is E_q[log q - log p] =
    sum_j log(sigma_p/sigma_q) + (sigma_q^2 + (mu_q - mu_p)^2) / (2 sigma_p^2) - 1/2.
reverse: you computed D_KL(p||q), the reverse direction; KL is not symmetric. With q first:
    D_KL(q||p) = E_{z~q}[log q(z) - log p(z)] = sum_j log(sigma_p/sigma_q) + (sigma_q^2 + (mu_q -
    mu_p)^2) / (2 sigma_p^2) - 1/2.
flip: the log term has the wrong sign: it is log(sigma_p / sigma_q) = log_std_p - log_std_q.
exp: you used sigma where log sigma belongs in the log term: log(sigma_p / sigma_q) = log_std_p -
    log_std_q (the inputs are already logs).
log: you treated log_std as sigma (you took its log; this gives NaN for log_std < 0): log sigma is
    log_std itself and sigma = exp(log_std).
std: you used log_std as the standard deviation in (sigma_q^2 + (mu_q - mu_p)^2) / (2 sigma_p^2);
    sigma = exp(log_std), so sigma^2 = exp(2 log_std).
sigma: you used sigma where the variance sigma^2 belongs: the ratio is sigma_q^2 / sigma_p^2 = exp(2
    (log_std_q - log_std_p)) and (mu_q - mu_p)^2 is divided by sigma_p^2 = exp(2 log_std_p).
half: you left out the -1/2 per dimension: check that D_KL(q||q) = 0.
"""
KL = Exercise(
    id="1.2",
    check_name="check_gaussian_kl",
    reference=lvm.gaussian_kl,
    cases=_kl_cases,
    outputs=[Output("KL divergence")],
    mistakes=[
        *mistake_table(
            _KL,
            sign=lambda *a: -lvm.gaussian_kl(*a),
            reverse=lambda mu_q, ls_q, mu_p, ls_p: lvm.gaussian_kl(mu_p, ls_p, mu_q, ls_q),
            flip=partial(_kl, log_ratio=lambda q, p: q - p),
            exp=partial(_kl, log_ratio=lambda q, p: p.exp() - q.exp()),
            log=partial(_kl, log_ratio=lambda q, p: torch.log(p / q), var=torch.square),
            std=partial(_kl, var=torch.square),
            sigma=partial(_kl, var=torch.exp),
            half=partial(_kl, const=0.0),
        ),
        *reduction_mistakes(partial(_kl, sum_=0), "KL divergence"),
    ],
    success="D_KL(q||p) matches the reference on {n} inputs, including q = p and a broadcast "
    "prior.",
)
check_gaussian_kl = KL.check


# ----------------------------------------------------------------------- Exercise 1.3


def _elbo_cases(rng: np.random.Generator) -> list[Case]:
    linear = lvm.LinearGaussianLVM.random(2, 4, noise_std=0.5, seed=11)
    linear_1d = lvm.LinearGaussianLVM.random(1, 3, noise_std=1.5, seed=12)
    tanh = lvm.TanhDecoderLVM.random(1, 2, hidden=6, noise_std=0.3, seed=13)
    tanh_2d = lvm.TanhDecoderLVM.random(2, 3, hidden=5, noise_std=0.4, seed=14)
    cases = []
    for name, model, n_data, n_samples, log_std_loc, spread in [
        ("linear-Gaussian model, d=2, N=5 data points, S=8 samples", linear, 5, 8, 0, 1),
        ("linear-Gaussian model, d=1, N=1 data point, S=1 sample", linear_1d, 1, 1, 0, 1),
        ("linear-Gaussian model, d=2, N=3, S=20, log_std ~ -2", linear, 3, 20, -2, 0.5),
        ("tanh-decoder model, d=1, N=4, S=16, log_std ~ 1", tanh, 4, 16, 1, 0.3),
        ("tanh-decoder model, d=2, N=6, S=7, tiny sigma (log_std ~ -8)", tanh_2d, 6, 7, -8, 1),
        ("tanh-decoder model, d=2, N=3, S=3 (as many samples as data)", tanh_2d, 3, 3, 0, 1),
    ]:
        x, _ = model.sample(n_data, torch.Generator().manual_seed(int(rng.integers(1 << 30))))
        shape = (n_data, model.latent_dim)
        mu, log_std = rng.normal(size=shape), rng.normal(log_std_loc, spread, shape)
        eps = rng.normal(size=(n_samples, *shape))
        cases.append(Case(name, (model.log_joint, x, _t(mu), _t(log_std), _t(eps))))
    return cases


def _elbo(*args, sigma=torch.exp, entropy=1.0, reduce=torch.mean, at_mean=False, mc_entropy=False):
    """The Monte Carlo ELBO with knobs that reproduce the typical mistakes."""
    log_joint, x, mu, log_std, eps = args
    if at_mean:
        return log_joint(x, mu) + entropy * lvm.gaussian_entropy(log_std)
    z = mu + sigma(log_std) * eps
    if mc_entropy:
        return (log_joint(x, z) - lvm.gaussian_log_prob(z, mu, log_std)).mean(0)
    return reduce(log_joint(x, z), 0) + entropy * lvm.gaussian_entropy(log_std)


_ELBO = """
shape_SN: you returned one value per sample and data point (S, N); average over the samples (axis 0)
    to estimate the expectation E_{z~q_i}.
shape_S: you averaged over the data points (axis 1) instead of the samples (axis 0): eps has shape
    (S, N, d) and the ELBO has one value per data point, shape (N,).
shape_: you returned one number; return one ELBO L_i per data point, shape (N,): average over the
    samples (axis 0) only.
no_entropy: the entropy term H(q_i) is missing: L_i = E_q[log p(x_i|z) + log p(z)] + H(q_i). Without
    it the objective is not the ELBO (for a narrow q it can even exceed log p(x_i)), and maximizing
    it collapses sigma to 0.
minus: you subtracted the entropy; the ELBO ADDS H(q_i) = -E_q[log q_i(z)].
sign: your ELBO has the wrong sign: L_i = E_q[log p(x_i|z) + log p(z)] + H(q_i) (a lower bound on
    log p(x_i), so usually a negative number for continuous data of moderate dimension).
mc: you estimated the entropy by Monte Carlo (-log q_i(z_s) at the samples). That is valid in
    general (it is how the ELBO is estimated when H(q) has no closed form), but this exercise asks
    for the closed-form H(q_i) (your gaussian_entropy), which adds no sampling noise.
std: you used log_std as the standard deviation in z = mu + sigma * eps; sigma = exp(log_std).
var: you scaled eps by the variance sigma^2 = exp(2 log_std); scale it by sigma = exp(log_std).
log_var: you treated log_std as a log-variance (sigma = exp(log_std / 2)); here sigma =
    exp(log_std).
sum: you summed over the samples; the expectation E_{z~q_i} is estimated by their MEAN (divide by
    S).
at_mean: you evaluated log p(x, z) at the mean mu instead of at the samples z = mu + sigma * eps.
"""


def _elbo_shape(actual, expected, case: Case) -> str | None:
    n_samples, n_data = case.args[4].shape[:2]
    shapes = {(n_samples, n_data): "shape_SN", (n_samples,): "shape_S", (): "shape_"}
    if actual.shape != expected.shape and actual.shape in shapes:
        return messages(_ELBO)[shapes[actual.shape]]
    return None


ELBO = Exercise(
    id="1.3",
    check_name="check_elbo_mc",
    reference=lvm.elbo_monte_carlo,
    cases=_elbo_cases,
    outputs=[Output("ELBO", 1e-6, 1e-6)],
    diagnoses=[_elbo_shape],
    mistakes=mistake_table(
        _ELBO,
        no_entropy=partial(_elbo, entropy=0.0),
        minus=partial(_elbo, entropy=-1.0),
        sign=lambda *a: -_elbo(*a),
        mc=partial(_elbo, mc_entropy=True),
        std=partial(_elbo, sigma=lambda ls: ls),
        var=partial(_elbo, sigma=lambda ls: torch.exp(2 * ls)),
        log_var=partial(_elbo, sigma=lambda ls: torch.exp(0.5 * ls)),
        sum=partial(_elbo, reduce=torch.sum),
        at_mean=partial(_elbo, at_mean=True),
    ),
    success="the Monte Carlo ELBO matches the reference on {n} inputs (linear and tanh decoders, "
    "d=1 and 2).",
)
check_elbo_mc = ELBO.check


# ----------------------------------------------------------------------- Exercise 1.4


def _vi_step_cases(rng: np.random.Generator) -> list[Case]:
    linear = lvm.LinearGaussianLVM.random(2, 4, noise_std=0.5, seed=21)
    linear_1d = lvm.LinearGaussianLVM.random(1, 2, noise_std=1.0, seed=22)
    linear_3d = lvm.LinearGaussianLVM.random(3, 5, noise_std=0.8, seed=23)
    tanh = lvm.TanhDecoderLVM.random(1, 2, hidden=6, noise_std=0.3, seed=24)
    cases = []
    for name, model, n_data, lr, log_std_loc, spread in [
        ("linear-Gaussian model, N=1 data point, d=1, lr=0.1", linear_1d, 1, 0.1, 0, 0),
        ("linear-Gaussian model, N=5, d=2, lr=0.05, log_std ~ N(0, 1)", linear, 5, 0.05, 0, 1),
        ("linear-Gaussian model, N=4, d=3, lr=0.01, log_std ~ -3", linear_3d, 4, 0.01, -3, 0.5),
        ("linear-Gaussian model, N=3, d=2, lr=0.001, log_std ~ 1.5", linear, 3, 1e-3, 1.5, 0.5),
        ("linear-Gaussian model, N=3, d=2, lr=0.2, log_std ~ -10", linear, 3, 0.2, -10, 0.5),
        ("tanh-decoder model (ELBO on a grid), N=4, d=1, lr=0.02", tanh, 4, 0.02, -1, 0.3),
    ]:
        x, _ = model.sample(n_data, torch.Generator().manual_seed(int(rng.integers(1 << 30))))
        shape = (n_data, model.latent_dim)
        mu, log_std = _t(rng.normal(size=shape)), _t(rng.normal(log_std_loc, spread, shape))
        elbo = partial(model.elbo_grid if model is tanh else model.elbo, x)
        cases.append(Case(name, (elbo, mu, log_std, lr)))
    return cases


def _vi_step(*args, sign=1.0, reduce=torch.sum, feed=lambda v: v, step=None, sigma=0, keep=1.0):
    """One gradient step on reduce_i L_i; the knobs reproduce the typical mistakes."""
    elbo_fn, mu, log_std, lr = args
    mu, log_std = mu.detach().requires_grad_(True), log_std.detach().requires_grad_(True)
    g_mu, g_ls = torch.autograd.grad(reduce(elbo_fn(mu, feed(log_std))), [mu, log_std])
    step = lr if step is None else step
    with torch.no_grad():
        if sigma:  # the step taken on sigma, with dL/dsigma = dL/dlog_std / sigma
            return mu + step * g_mu, torch.log(log_std.exp() + step * g_ls / log_std.exp())
        return keep * mu + sign * step * g_mu, keep * log_std + sign * step * g_ls


_VI_STEP = """
descent: you stepped downhill (gradient descent): per-datapoint VI MAXIMIZES the ELBO, so mu <- mu +
    lr * dL/dmu and log_std <- log_std + lr * dL/dlog_std. (Minimizing -ELBO with a descent step is
    the same thing; subtracting the gradient of +ELBO is not.)
mean: your step is N times too small: you averaged the ELBO over the data points (N of them). Each
    q_i appears only in its own L_i, so take the gradient of the SUM over i; then every mu_i,
    sigma_i gets the full gradient of its own L_i, whatever N is.
sigma_in: you passed sigma = exp(log_std) to elbo_fn, which expects log_std (it computes sigma =
    exp(log_std) itself). Call elbo_fn(mu, log_std).
on_sigma: you took the gradient step on sigma instead of on log sigma; the parameters are mu and
    log_std (so sigma = exp(log_std) stays positive): log_std <- log_std + lr * dL/dlog_std.
sigma_out: your second output is sigma = exp(log_std); return the updated log_std, the parameter
    that the step changes.
swapped: you returned (log_std, mu); return them in the order (mu, log_std).
no_lr: you forgot the step size: multiply the gradients by lr.
step: you returned the step lr * gradient; add it to the current values.
same_ls: log_std did not change: update both mu and log_std (gradient ascent on both).
same_mu: mu did not change: update both mu and log_std (gradient ascent on both).
"""
VI_STEP = Exercise(
    id="1.4",
    check_name="check_vi_step",
    reference=lvm.vi_gradient_step,
    cases=_vi_step_cases,
    outputs=[Output("new_mu", 1e-6, 1e-9), Output("new_log_std", 1e-6, 1e-9)],
    mistakes=mistake_table(
        _VI_STEP,
        descent=partial(_vi_step, sign=-1.0),
        mean=partial(_vi_step, reduce=torch.mean),
        sigma_in=partial(_vi_step, feed=torch.exp),
        on_sigma=partial(_vi_step, sigma=1),
        sigma_out=lambda *a: {1: _vi_step(*a)[1].exp()},
        swapped=lambda *a: _vi_step(*a)[::-1],
        no_lr=partial(_vi_step, step=1.0),
        step=partial(_vi_step, keep=0.0),
        same_ls=lambda elbo_fn, mu, log_std, lr: {1: log_std},
        same_mu=lambda elbo_fn, mu, log_std, lr: {0: mu},
    ),
    grad=Grad(
        detached="your new_mu or new_log_std still requires grad; return detached tensors "
        "(`.detach()`), otherwise every later step differentiates through all the earlier ones."
    ),
    success="the gradient-ascent step matches the reference on {n} inputs (closed-form and grid "
    "ELBOs, tiny to large sigma).",
)
check_vi_step = VI_STEP.check
