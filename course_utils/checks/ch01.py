"""Checks for chapter 01 (variational inference): 1.1 ``gaussian_kl``, 1.2 ``elbo_mc`` (a Monte
Carlo ELBO with the Gaussian entropy in closed form), 1.3 ``vi_step`` (one gradient-ascent step of
per-datapoint VI), 1.4 a question (diagonal q on a correlated posterior), 1.5 ``ml_step`` (one step
of the slides' maximum-likelihood loop: theta and every q_i ascend the ELBO). The references are in
:mod:`course_utils.lvm`; each mistake is the reference with one knob changed, its feedback in the
message table above the exercise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import numpy as np
import torch

from .. import lvm
from . import Case, Exercise, Grad, Output, Question, as_array, messages, mistake_table

__all__ = [
    "check_elbo_mc",
    "check_gaussian_kl",
    "check_mean_field_variances",
    "check_ml_step",
    "check_vi_step",
]
__all__ += ["reduction_mistakes"]


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
    id="1.1",
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


# ----------------------------------------------------------------------- Exercise 1.2


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


def _entropy(log_std, *, const=0.5 * (lvm.LOG_2PI + 1.0), log_sigma=lambda v: v, reduce=torch.sum):
    """Per dimension const + log sigma, reduced over the last axis; the knobs make the mistakes."""
    return reduce(const + log_sigma(log_std), -1)


def _elbo(
    *args,
    sigma=torch.exp,
    entropy=1.0,
    reduce=torch.mean,
    at_mean=False,
    mc_entropy=False,
    h=_entropy,
):
    """The Monte Carlo ELBO with knobs that reproduce the typical mistakes (``h``: the entropy)."""
    log_joint, x, mu, log_std, eps = args
    if at_mean:
        return log_joint(x, mu) + entropy * h(log_std)
    z = mu + sigma(log_std) * eps
    if mc_entropy:
        return (log_joint(x, z) - lvm.gaussian_log_prob(z, mu, log_std)).mean(0)
    return reduce(log_joint(x, z), 0) + entropy * h(log_std)


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
minus: you subtracted the entropy; the ELBO ADDS H(q_i) = -E_q[log q_i(z)] = sum_j (1/2 log(2 pi
    e) + log sigma_j), which grows with sigma.
sign: your ELBO has the wrong sign: L_i = E_q[log p(x_i|z) + log p(z)] + H(q_i) (a lower bound on
    log p(x_i), so usually a negative number for continuous data of moderate dimension).
mc: you estimated the entropy by Monte Carlo (-log q_i(z_s) at the samples). That is valid in
    general (it is how the ELBO is estimated when H(q) has no closed form), but this exercise asks
    for the closed-form H(q_i) = sum_j (1/2 log(2 pi e) + log sigma_j), which adds no sampling
    noise.
std: you used log_std as the standard deviation in z = mu + sigma * eps; sigma = exp(log_std).
var: you scaled eps by the variance sigma^2 = exp(2 log_std); scale it by sigma = exp(log_std).
log_var: you treated log_std as a log-variance (sigma = exp(log_std / 2)); here sigma =
    exp(log_std).
sum: you summed over the samples; the expectation E_{z~q_i} is estimated by their MEAN (divide by
    S).
at_mean: you evaluated log p(x, z) at the mean mu instead of at the samples z = mu + sigma * eps.
h_exp: your entropy uses sigma = exp(log_std) where log sigma belongs: the input is already log
    sigma, so H(q_i) = sum_j (1/2 log(2 pi e) + log_std_j).
h_var: your entropy uses log sigma^2 = 2 log_std where log sigma belongs: H = 1/2 log(2 pi e
    sigma^2) = 1/2 log(2 pi e) + log sigma per dimension.
h_no_e: the entropy's constant per dimension is 1/2 log(2 pi e) = 1/2 (log(2 pi) + 1); you left out
    the +1/2 that comes from the e (E_q[(z - mu)^2 / sigma^2] = 1).
h_twice: the entropy's constant per dimension is 1/2 log(2 pi e), not log(2 pi e).
h_none: you dropped the entropy's constant 1/2 log(2 pi e) per dimension; without it the ELBO is
    not a bound, and log p(x) = KL + ELBO fails (the constant does not change gradients, but the
    value matters).
h_mean: you averaged the entropy over the latent dimensions; the entropy of independent dimensions
    is their SUM, H(q_i) = sum_j (1/2 log(2 pi e) + log sigma_j).
"""


def _elbo_shape(actual, expected, case: Case) -> str | None:
    n_samples, n_data = case.args[4].shape[:2]
    shapes = {(n_samples, n_data): "shape_SN", (n_samples,): "shape_S", (): "shape_"}
    if actual.shape != expected.shape and actual.shape in shapes:
        return messages(_ELBO)[shapes[actual.shape]]
    return None


ELBO = Exercise(
    id="1.2",
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
        h_exp=partial(_elbo, h=partial(_entropy, log_sigma=torch.exp)),
        h_var=partial(_elbo, h=partial(_entropy, log_sigma=lambda v: 2 * v)),
        h_no_e=partial(_elbo, h=partial(_entropy, const=0.5 * lvm.LOG_2PI)),
        h_twice=partial(_elbo, h=partial(_entropy, const=lvm.LOG_2PI + 1.0)),
        h_none=partial(_elbo, h=partial(_entropy, const=0.0)),
        h_mean=partial(_elbo, h=partial(_entropy, reduce=torch.mean)),
    ),
    success="the Monte Carlo ELBO matches the reference on {n} inputs (linear and tanh decoders, "
    "d=1 and 2, tiny to large sigma).",
)
check_elbo_mc = ELBO.check


# ----------------------------------------------------------------------- Exercise 1.3


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
    id="1.3",
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


# ----------------------------------------------------------------------- Exercise 1.4

MEAN_FIELD = Question(
    id="1.4",
    check_name="check_mean_field_variances",
    answer="b",
    feedback={
        "a": "a diagonal q cannot match a correlated posterior, and D_KL(q || p) does not ask it to "
        "match the marginals. Matching the marginal variances is what minimizing the other "
        "direction, D_KL(p || q), does (moment matching). Think about what D_KL(q || p) = "
        "E_q[log q - log p] charges for: q's mass where p is small.",
        "c": "wider than the marginals would put q's mass outside the correlated posterior ellipse, "
        "where log p(z|x) is very negative, and D_KL(q || p) = E_q[log q - log p] charges exactly "
        "for that. Covering p's mass is what D_KL(p || q) would ask for.",
        "d": "the means are exact: for a Gaussian posterior the ELBO's gradient with respect to mu "
        "is Sigma^{-1} (m - mu), which vanishes only at the posterior mean m, whatever the diagonal "
        "variances are. The approximation error is in the variances.",
    },
    hint='answer with one of the strings "a", "b", "c" or "d".',
    success="(b): the best diagonal q has sigma_j^2 = 1 / (Sigma^{-1})_jj, the variance of z_j with "
    "the other coordinates held fixed, which is smaller than the marginal Sigma_jj when the "
    "posterior is correlated: D_KL(q || p) keeps q inside the posterior.",
)
check_mean_field_variances = MEAN_FIELD.check


# ----------------------------------------------------------------------- Exercise 1.5


def _cubature(n_data: int, latent_dim: int) -> torch.Tensor:
    """Noise (2d, N, d) at +-sqrt(d) e_j: mean 0 and covariance I, so a Monte Carlo ELBO of the
    linear-Gaussian model (quadratic in z) on these points is the exact ELBO."""
    points = math.sqrt(latent_dim) * torch.eye(latent_dim, dtype=torch.float64)
    return torch.cat([points, -points])[:, None, :].expand(2 * latent_dim, n_data, latent_dim)


def _ml_step_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for name, (n, data_dim, d, s), lrs, log_s, log_std_loc in [
        (
            "N=6 points, D=4, d=2, S=5 samples, lr_theta=0.05, lr_q=0.02",
            (6, 4, 2, 5),
            (0.05, 0.02),
            0.0,
            0.0,
        ),
        ("N=1 point, D=2, d=1, S=1 sample", (1, 2, 1, 1), (0.1, 0.1), -0.5, 0.0),
        ("N=8, D=5, d=3, S=4, small noise (s ~ 0.1)", (8, 5, 3, 4), (0.01, 0.01), -2.3, -1.0),
        (
            "N=5, D=3, d=2, S=16, large noise (s ~ 3), narrow q_i (sigma ~ 0.05)",
            (5, 3, 2, 16),
            (0.2, 0.01),
            1.1,
            -3.0,
        ),
        ("N=7, D=5, d=2, S=8, lr_theta=0.3 and lr_q=0.001", (7, 5, 2, 8), (0.3, 0.001), -0.7, 0.5),
        ("N=4, D=1 (one sensor), d=2, S=3", (4, 1, 2, 3), (0.05, 0.05), 0.0, -0.5),
    ]:
        model = lvm.LinearGaussianLVM.random(
            d, data_dim, noise_std=math.exp(log_s), seed=int(rng.integers(1 << 30))
        )
        x, _ = model.sample(n, torch.Generator().manual_seed(int(rng.integers(1 << 30))))
        W, b = rng.normal(0, 0.7, (data_dim, d)), rng.normal(0, 0.5, data_dim)
        mu, log_std = rng.normal(size=(n, d)), rng.normal(log_std_loc, 0.5, (n, d))
        eps = rng.normal(size=(s, n, d))
        log_s = log_s + rng.normal(0, 0.2)
        args = (x, _t(W), _t(b), _t(log_s), _t(mu), _t(log_std), _t(eps), *lrs)
        cases.append(Case(name, args))
    return cases


def _ml_step(
    x,
    W,
    b,
    log_s,
    mu,
    log_std,
    eps,
    lr_theta,
    lr_q,
    *,
    theta_on="mean",
    q_on="sum",
    signs=(1.0, 1.0),
    entropy=1.0,
    prior=1.0,
    norm=1.0,
    noise_std=torch.exp,
    reparam=True,
    order="joint",
):
    """One step of the maximum-likelihood loop, with knobs that reproduce the typical mistakes.

    ``order``: "joint" (both gradients at the current values), "q_first" (q steps, then theta at
    the new q) or "theta_first"; the last two are correct variants (alternating ascent).
    """
    theta = [_t(v).detach().requires_grad_(True) for v in (W, b, log_s)]
    q = [_t(v).detach().requires_grad_(True) for v in (mu, log_std)]
    x, eps = _t(x), _t(eps)

    def elbo(theta, q):
        W, b, log_s = theta
        mu, log_std = q
        z = mu + torch.exp(log_std) * eps
        z = z if reparam else z.detach()
        s = noise_std(log_s)
        log_lik = -0.5 * ((x - z @ W.T - b) ** 2).sum(-1) / s**2
        log_lik = log_lik - x.shape[-1] * (norm * torch.log(s) + 0.5 * lvm.LOG_2PI)
        log_prior = -0.5 * (z**2).sum(-1) - 0.5 * z.shape[-1] * lvm.LOG_2PI
        return (log_lik + prior * log_prior).mean(0) + entropy * lvm.gaussian_entropy(log_std)

    reduce = {"mean": torch.mean, "sum": torch.sum, "first": lambda v: v[0]}

    def step_theta(theta, q):
        grads = torch.autograd.grad(reduce[theta_on](elbo(theta, q)), theta)
        new = [(p + signs[0] * lr_theta * g).detach() for p, g in zip(theta, grads, strict=True)]
        return [p.requires_grad_(True) for p in new]

    def step_q(theta, q):
        grads = torch.autograd.grad(reduce[q_on](elbo(theta, q)), q, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(q, grads, strict=True)]
        new = [(p + signs[1] * lr_q * g).detach() for p, g in zip(q, grads, strict=True)]
        return [p.requires_grad_(True) for p in new]

    if order == "q_first":
        q = step_q(theta, q)
        theta = step_theta(theta, q)
    elif order == "theta_first":
        theta = step_theta(theta, q)
        q = step_q(theta, q)
    else:
        theta, q = step_theta(theta, q), step_q(theta, q)
    return tuple(p.detach() for p in (*theta, *q))


_ML_STEP = """
descent: you stepped downhill on everything: the loop MAXIMIZES the ELBO, so theta <- theta +
    lr_theta * grad and (mu_i, log_std_i) <- (mu_i, log_std_i) + lr_q * grad. (Descent on -ELBO is
    the same; subtracting the gradient of +ELBO is not.)
theta_descent: theta stepped downhill: maximum likelihood ASCENDS, theta <- theta + lr_theta *
    grad_theta (1/N) sum_i L_i (the q_i steps are right).
q_descent: the q_i stepped downhill: each q_i ascends its own ELBO, mu_i <- mu_i + lr_q *
    dL_i/dmu_i, and the same for log_std_i (the theta step is right).
one_point: you stepped theta on the ELBO of one data point only (L_0): theta is shared by all N
    data points, so it ascends their average (1/N) sum_i L_i.
theta_sum: your theta step is N times too large: you took the gradient of the sum sum_i L_i; the
    slides' objective for theta is the average (1/N) sum_i L_i, whose step does not grow with N.
q_mean: your q_i steps are N times too small: each q_i ascends its own L_i, which is the gradient
    of the SUM over i (q_i appears in L_i only), not of the average.
no_entropy: the entropy H(q_i) is missing from your ELBO: the log_std step lacks dH/dlog sigma = 1
    per dimension, and without it every sigma_i shrinks towards 0 (q_i collapses to a point).
no_prior: log p(z) is missing from your ELBO: L_i = E_q[log p_theta(x_i|z) + log p(z)] + H(q_i).
    The prior is what keeps z (and so the scale of W) in check.
no_norm: your log p_theta(x|z) lacks its normalizer -D log s: constants such as -D/2 log(2 pi) may
    be dropped, but s is a parameter here, and without -D log s the noise level s grows without
    bound.
var_as_std: you used the variance s^2 = exp(2 log_s) as the standard deviation of x|z; the noise
    standard deviation is s = exp(log_s) (Normal(mean, scale) takes the standard deviation).
no_reparam: your q_i steps see only the entropy: build z = mu + exp(log_std) * eps from mu and
    log_std WITH gradients (no .detach(), no torch.no_grad()), so that the gradient of E_q[log
    p(x_i, z)] flows through the samples (the reparameterization).
swapped_lr: you swapped the step sizes: theta moves by lr_theta, the q_i by lr_q.
"""


def _ml_step_outcome(fn, cases) -> str | None:
    """The loop run with the student's step reaches the closed-form maximum likelihood."""
    for seed in (0, 1, 2):
        model = lvm.LinearGaussianLVM.random(2, 5, noise_std=0.5, seed=40 + seed)
        x, _ = model.sample(100, torch.Generator().manual_seed(seed))
        best = lvm.ppca_maximum_likelihood(x, 2).log_evidence(x).mean().item()
        gen = torch.Generator().manual_seed(seed)
        W = 0.5 * torch.randn(5, 2, generator=gen, dtype=torch.float64)
        b, log_s = torch.zeros(5, dtype=torch.float64), torch.zeros((), dtype=torch.float64)
        mu = log_std = torch.zeros(100, 2, dtype=torch.float64)
        eps = _cubature(100, 2)
        for _ in range(_OUTCOME_STEPS):
            out = fn(x, W, b, log_s, mu, log_std, eps, 0.1, 0.02)
            W, b, log_s, mu, log_std = (_t(as_array(v)) for v in out)
        learned = lvm.LinearGaussianLVM(W, b, float(torch.exp(log_s)))
        reached = learned.log_evidence(x).mean().item()
        if not np.isfinite(reached) or reached < best - _OUTCOME_TOLERANCE:
            return (
                f"every single step matched, but {_OUTCOME_STEPS} steps of your ml_step (lr_theta="
                f"0.1, lr_q=0.02, exact noise points) on a data set of N=100 points (seed {seed}) "
                f"reach an average log-likelihood of {reached:.4f}, below the closed-form maximum "
                f"{best:.4f} by more than {_OUTCOME_TOLERANCE}."
            )
    return None


_OUTCOME_STEPS = 700
_OUTCOME_TOLERANCE = 0.01

ML_STEP = Exercise(
    id="1.5",
    check_name="check_ml_step",
    reference=lvm.ml_gradient_step,
    cases=_ml_step_cases,
    outputs=[
        Output("new W", 1e-6, 1e-9),
        Output("new b", 1e-6, 1e-9),
        Output("new log_s", 1e-6, 1e-9),
        Output("new mu", 1e-6, 1e-9),
        Output("new log_std", 1e-6, 1e-9),
    ],
    accept=[partial(_ml_step, order="q_first"), partial(_ml_step, order="theta_first")],
    mistakes=mistake_table(
        _ML_STEP,
        descent=partial(_ml_step, signs=(-1.0, -1.0)),
        theta_descent=partial(_ml_step, signs=(-1.0, 1.0)),
        q_descent=partial(_ml_step, signs=(1.0, -1.0)),
        one_point=partial(_ml_step, theta_on="first"),
        theta_sum=partial(_ml_step, theta_on="sum"),
        q_mean=partial(_ml_step, q_on="mean"),
        no_entropy=partial(_ml_step, entropy=0.0),
        no_prior=partial(_ml_step, prior=0.0),
        no_norm=partial(_ml_step, norm=0.0),
        var_as_std=partial(_ml_step, noise_std=lambda v: torch.exp(2 * v)),
        no_reparam=partial(_ml_step, reparam=False),
        swapped_lr=lambda *a: _ml_step(*a[:7], a[8], a[7]),
    ),
    grad=Grad(
        detached="your new parameters still require grad; return detached tensors (`.detach()`), "
        "otherwise every later step differentiates through all the earlier ones."
    ),
    after=[_ml_step_outcome],
    crashes={
        "not have been used in the graph": "Your ELBO does not depend on one of the tensors you "
        "differentiate: build z = mu + exp(log_std) * eps from mu and log_std with gradients (no "
        ".detach()), and use W, b and log_s in log p_theta(x|z).",
    },
    success="one step matches the reference on {n} inputs (joint or alternating ascent), and "
    "700 steps reach the closed-form maximum likelihood within 0.01 nats per point on 3 data sets.",
)
check_ml_step = ML_STEP.check
