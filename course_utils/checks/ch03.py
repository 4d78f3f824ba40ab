"""Checks for chapter 03 (the variational autoencoder): 3.1 ``reparameterize(mu, log_std)``,
3.2 ``bernoulli_log_likelihood(x, logits)``, 3.3 ``kl_to_prior(mu, log_std)``, 3.4
``negative_elbo(model, x, beta)``. The references are in :mod:`course_utils.vae`.

The student draws the noise in 3.1 and 3.4, so those checks observe what does not depend on it. A
sample is judged by dz/dmu and dz/dlog_std / (z - mu), both 1 for z = mu + eps * exp(log_std)
(which tells a cut gradient path, a log-variance and a log-std-as-sigma apart), then by the
statistics of the implied noise (z - mu) / sigma. The loss is judged on the z the student's code
decoded: moved onto the reference's noise by the difference of the reference on the two, with the
mistakes replaying the student's z. The global random state of torch is left untouched.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from .. import vae as ref
from . import Case, Exercise, Grad, Mistake, Output
from .ch01 import messages, mistake_table, reduction_mistakes

__all__ = ["check_bernoulli_log_likelihood", "check_kl_to_prior", "check_negative_elbo"]
__all__ += ["check_reparameterize"]


def _t(array) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array, dtype=np.float64))


# ----------------------------------------------------------------------- Exercise 3.1

_FIX = (
    "Write z = mu + eps * torch.exp(log_std) with eps = torch.randn_like(mu) (or use "
    "torch.distributions.Normal(mu, log_std.exp()).rsample())."
)
_SAMPLE = f"""
cut: z is not connected to mu and log_std in torch's graph (z.requires_grad is False): the gradient
    path is cut. .detach(), torch.no_grad(), numpy, and .sample() of torch.distributions all return
    a z that autograd cannot differentiate; that is sampling WITHOUT the reparameterization trick.
    {_FIX}
zero: the gradient of z with respect to mu and log_std is zero. torch.normal(mu, std) (like
    .sample()) draws z without a differentiable path back to its parameters: autograd treats the
    draw as a constant. The reparameterization trick writes the sample as a function of the
    parameters and parameter-free noise. {_FIX}
mu: no gradient reaches mu (dz/dmu = 0): you detached mu. In z = mu + eps * sigma, dz/dmu = 1.
    {_FIX}
sigma: no gradient reaches log_std (dz/dlog_std = 0): sigma was detached, or the noise was scaled
    outside the graph. With z = mu + eps * exp(log_std), dz/dlog_std = eps * sigma = z - mu. {_FIX}
log_var: you treated log_std as a log-VARIANCE (sigma = exp(log_std / 2)). The encoder returns log
    sigma, the log of the standard deviation, so sigma = exp(log_std).
var: you scaled eps by the variance sigma^2 = exp(2 * log_std); scale it by the standard deviation
    sigma = exp(log_std).
std: you used log_std as the standard deviation (z = mu + eps * log_std); sigma = exp(log_std),
    which is positive whatever log_std is.
no_noise: your z equals mu: there is no noise in it. A sample of q = N(mu, sigma^2) is z = mu + eps
    * sigma with fresh eps ~ N(0, I). {_FIX}
dz_dmu: dz/dmu should be 1 for every entry (z = mu + eps * sigma), got values from {{:.3g}} to
    {{:.3g}}.
dz_dlog_std: dz/dlog_std should equal z - mu = eps * sigma (because d exp(log_std)/d log_std =
    sigma), but it does not. {_FIX}
rows: every data point got the same noise eps (the rows of (z - mu) / sigma are equal): draw one eps
    per entry of mu, e.g. torch.randn_like(mu), not torch.randn(d).
columns: every latent dimension got the same noise eps: draw one independent eps per entry of mu
    (torch.randn_like(mu)), not one per data point.
uniform: your noise is uniform on [0, 1] (torch.rand_like): the reparameterization of a Gaussian
    needs standard-NORMAL noise, eps = torch.randn_like(mu).
moments: the implied noise eps = (z - mu) / sigma should be standard normal, but over {{}} entries
    it has mean {{:.3f}}, standard deviation {{:.3f}} and {{:.1%}} of its values beyond +-2
    (expected 0, 1 and 4.6%). {_FIX}
same: two calls returned the same z. Draw fresh noise at every call (no torch.manual_seed and no
    fixed eps inside the function): each training step needs a new sample.
"""
_S = messages(_SAMPLE)


def reference_reparameterize(mu, log_std):
    """z = mu + eps * exp(log_std), eps = torch.randn_like(mu) (course_utils.vae.reparameterize)."""
    return ref.reparameterize(mu, log_std)


def _sample_cases(rng: np.random.Generator) -> list[Case]:
    normal, uniform, big = rng.normal, rng.uniform, (4000, 3)
    mixed = normal(size=(5, 2))
    mixed[0], mixed[1] = np.abs(mixed[0]), -np.abs(mixed[1])  # sigma > 1 and sigma < 1
    return [
        Case(name, (_t(mu), _t(log_std)))
        for name, mu, log_std in [
            ("a batch of 5 with d=2 (sigma < 1 and > 1)", normal(size=(5, 2)), mixed),
            ("batch axes (3, 4) with d=3", normal(size=(3, 4, 3)), uniform(-1.5, 1.5, (3, 4, 3))),
            ("one data point with d=1 (shape (1, 1))", [[0.7]], [[-0.4]]),
            ("tiny sigmas (log_std ~ -20, sigma ~ 2e-9)", np.zeros((4, 3)), normal(-20, 1, (4, 3))),
            ("huge sigmas (log_std ~ 8, sigma ~ 3000)", normal(size=(4, 3)), normal(8, 1, (4, 3))),
            ("4000 q's with d=3 (sigma from 0.37 to 2.7)", normal(size=big), uniform(-1, 1, big)),
        ]
    ]


def _observe_sample(fn, mu, log_std):
    """For z = fn(mu, log_std): where z is not finite, dz/dmu, dz/dlog_std / (z - mu) (both 1 for
    z = mu + eps * exp(log_std), whatever eps; NaN where z = mu) and whether z is in the graph."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        z = fn(mu, log_std)
    if not isinstance(z, torch.Tensor) or z.shape != mu.shape or not z.is_floating_point():
        return z, mu.detach(), mu.detach(), torch.tensor(1.0)  # the harness reports what z is
    grads = [torch.zeros_like(mu)] * 2
    if z.requires_grad:
        grads = torch.autograd.grad(z.sum(), [mu, log_std], allow_unused=True)
        grads = [torch.zeros_like(mu) if g is None else g for g in grads]
    moved = (z - mu).detach()
    ratio = torch.where(moved != 0, grads[1] / moved, math.nan)
    finite = torch.where(torch.isfinite(z), 0.0, z.detach())
    return finite, grads[0], ratio, torch.tensor(float(z.requires_grad))


def _no_noise(actual, expected, case: Case) -> str | None:
    finite, _, ratio, _ = actual
    return _S["no_noise"] if np.isfinite(finite).all() and np.isnan(ratio).any() else None


def _wrong_gradient(actual, expected, case: Case) -> str | None:
    finite, dz_dmu, ratio, _ = actual
    if finite.shape != expected[0].shape:
        return None
    if not np.allclose(dz_dmu, 1.0, rtol=1e-6, atol=1e-9):
        return _S["mu"] if not dz_dmu.any() else _S["dz_dmu"].format(dz_dmu.min(), dz_dmu.max())
    if not np.allclose(ratio, 1.0, rtol=1e-6, atol=1e-9):
        return _S["sigma"] if not ratio.any() else _S["dz_dlog_std"]
    return None


def _fresh_normal_noise(fn, cases) -> str | None:
    """The implied noise (z - mu) / sigma on the largest input: i.i.d. N(0, 1), fresh per call."""
    (mu, log_std), case = cases[-1].args, cases[-1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        z, again = (fn(mu.clone(), log_std.clone()).detach() for _ in range(2))
    eps = ((z - mu) / torch.exp(log_std)).numpy()
    mean, std, tail = eps.mean(), eps.std(), np.mean(np.abs(eps) > 2.0)  # tail: 4.55% for N(0, 1)
    if np.allclose(eps, eps[:1]):
        return _S["rows"], case
    if np.allclose(eps, eps[:, :1]):
        return _S["columns"], case
    if abs(mean - 0.5) < 0.05 and eps.min() >= 0.0 and eps.max() <= 1.0:
        return _S["uniform"], case
    if abs(mean) > 5.0 / math.sqrt(eps.size) or abs(std - 1.0) > 0.05 or abs(tail - 0.0455) > 0.012:
        return _S["moments"].format(eps.size, mean, std, tail), case
    return _S["same"] if torch.equal(z, again) else None


def _sample(mu, log_std, sigma=torch.exp):
    return mu + torch.randn_like(mu) * sigma(log_std)


REPARAMETERIZE = Exercise(
    id="3.1",
    check_name="check_reparameterize",
    reference=reference_reparameterize,
    cases=_sample_cases,
    call=_observe_sample,
    grad=Grad(track=(0, 1)),  # mu and log_std require grad
    outputs=[
        Output("sample z", tensor="autograd can only differentiate torch operations"),
        Output("dz/dmu", 1e-6, 1e-9),
        Output("dz/dlog_std / (z - mu)", 1e-6, 1e-9),
        Output("z.requires_grad"),
    ],
    diagnoses=[_no_noise],
    mistakes=mistake_table(
        _SAMPLE,
        cut=lambda mu, log_std: _sample(mu, log_std).detach(),
        zero=lambda mu, log_std: torch.normal(mu, log_std.exp()),
        mu=lambda mu, log_std: _sample(mu.detach(), log_std),
        sigma=lambda mu, log_std: _sample(mu, log_std.detach()),
        log_var=partial(_sample, sigma=lambda log_std: torch.exp(log_std / 2)),
        var=partial(_sample, sigma=lambda log_std: torch.exp(2 * log_std)),
        std=partial(_sample, sigma=lambda log_std: log_std),
    ),
    fallbacks=[_wrong_gradient],
    after=[_fresh_normal_noise],
    float64="the noise (z - mu) / sigma is read back from z, and float32 rounds it away",
    success="z = mu + eps * sigma is differentiable in mu and log_std on {n} inputs (sigma from "
    "2e-9 to 3e3), with fresh standard-normal noise.",
)
check_reparameterize = REPARAMETERIZE.check


# ----------------------------------------------------------------------- Exercise 3.2


def reference_bernoulli_log_likelihood(x, logits):
    """:func:`course_utils.vae.bernoulli_log_likelihood`, in float64 (a float32 answer is judged at
    float32 precision against it)."""
    return ref.bernoulli_log_likelihood(x.double(), logits.double())


def _bernoulli_cases(rng: np.random.Generator) -> list[Case]:
    def binary(*shape):
        return _t(rng.random(size=shape) < 0.4)

    def extreme(size):  # one extreme logit per image: right and wrong, x = 1 and x = 0
        x, logits = (rng.random(size=(4, 6)) < 0.5).astype(float), rng.normal(size=(4, 6))
        x[:, 0], logits[:, 0] = [1.0, 0.0, 1.0, 0.0], [size, size, -size, -size]
        return _t(x), _t(logits)

    cases = [
        Case(
            "5 binary images of 64 pixels, logits ~ N(0, 3^2)",
            (binary(5, 64), _t(3 * rng.normal(size=(5, 64)))),
        ),
        Case("batch axes (2, 3), 8 pixels", (binary(2, 3, 8), _t(2 * rng.normal(size=(2, 3, 8))))),
        Case(
            "one image of 64 pixels with every logit 0 (p = 1/2)",
            (binary(1, 64), _t(np.zeros((1, 64)))),
        ),
        Case("one pixel (D=1), a batch of 6", (binary(6, 1), _t(rng.normal(size=(6, 1))))),
        Case("extreme logits +-100 (sigmoid(100) rounds to 1.0)", extreme(100.0)),
        Case("extreme logits +-1000", extreme(1000.0)),
    ]
    x, logits = binary(8, 64).float(), _t(30 * rng.normal(size=(8, 64))).float()
    return [
        *cases,
        Case("float32 images and logits ~ N(0, 30^2), like the training data", (x, logits)),
    ]


def _bernoulli(x, logits, *, terms=(1.0, 1.0), swap=False, log=F.logsigmoid, reduce=torch.sum):
    """sum_j x_j log sigmoid(l_j) + (1 - x_j) log sigmoid(-l_j), with knobs for the mistakes."""
    one, zero = (log(-logits), log(logits)) if swap else (log(logits), log(-logits))
    return reduce(terms[0] * x * one + terms[1] * (1 - x) * zero, -1)


def _clipped(x, logits, eps):
    p = torch.sigmoid(logits).clamp(eps, 1 - eps)
    return (x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum(-1)


_STABLE = (
    "Use the stable forms log sigmoid(l) = F.logsigmoid(l) and log(1 - sigmoid(l)) = "
    "F.logsigmoid(-l), i.e. x * l - F.softplus(l) per pixel (or "
    "-F.binary_cross_entropy_with_logits(logits, x, reduction='none'))."
)
_BERNOULLI = f"""
extreme: your log-likelihood is not finite for extreme logits. sigmoid(100) rounds to exactly 1.0,
    so log(1 - sigmoid(100)) = log(0) = -inf, and 0 * -inf = NaN. {_STABLE}
moderate: your log-likelihood is not finite for moderate logits: did you take the log of the logits
    themselves, as if they were probabilities? The decoder returns logits l; the probability is
    sigmoid(l). {_STABLE}
bce: you returned the binary cross-entropy, the NEGATIVE log-likelihood. Return log p(x|z) itself
    (it is <= 0); the loss of Exercise 3.4 puts the minus sign in.
mse: this is a squared error, the log-likelihood of a Gaussian decoder (MSE), not of binary pixels.
    The pixels are 0 or 1, so p(x|z) is a product of Bernoullis: log p(x|z) = sum_j x_j log
    sigmoid(l_j) + (1 - x_j) log(1 - sigmoid(l_j)).
mse_logits: this is a squared error between x and the logits (a Gaussian decoder), not the Bernoulli
    log-likelihood: log p(x|z) = sum_j x_j log sigmoid(l_j) + (1 - x_j) log(1 - sigmoid(l_j)).
no_zeros: the term of the pixels that are 0 is missing: add (1 - x_j) log(1 - sigmoid(l_j)).
no_ones: the term of the pixels that are 1 is missing: add x_j log sigmoid(l_j).
swap: you swapped the two terms: x_j goes with log sigmoid(l_j), the probability of a 1.
no_log: you used sigmoid(l) where log sigmoid(l) belongs: the log-likelihood is sum_j x_j log
    sigmoid(l_j) + (1 - x_j) log(1 - sigmoid(l_j)).
clip: you clipped the probabilities to [{{0:g}}, 1 - {{0:g}}]: for an extreme logit the probability
    of the other pixel value is far below that, and its log is about -|logit|. {_STABLE}
clipped: an improbable pixel value should cost -log p(x_j|z) nats, about |logit| for a large logit
    (at index {{}} the reference is {{:.2f}}), but yours is only {{:.2f}}: you clipped the
    probability, the logits or the log (torch's F.binary_cross_entropy clips its logs at -100).
    {_STABLE}
"""
_B = messages(_BERNOULLI)


def _not_finite(actual, expected, case: Case) -> str | None:
    if actual.shape != expected.shape or np.isfinite(actual).all():
        return None
    return _B["extreme" if case.args[1].abs().max() >= 30 else "moderate"]


def _clipping(actual, expected, case: Case) -> str | None:
    """Clipping (of p, of the logits or of the log) raises the log-likelihood of the images with a
    very improbable pixel: the largest error is an excess there."""
    x, logits = (v.double() for v in case.args)
    costly = (F.softplus(logits) - x * logits).amax(-1).numpy() > 5.0  # a pixel costs > 5 nats
    error = actual - expected if actual.shape == expected.shape else np.zeros(1)
    worst = np.unravel_index(int(np.argmax(np.abs(error))), error.shape)
    if error[worst] <= 0 or not costly[worst]:
        return None
    return _B["clipped"].format(tuple(int(i) for i in worst), expected[worst], actual[worst])


BERNOULLI = Exercise(
    id="3.2",
    check_name="check_bernoulli_log_likelihood",
    reference=reference_bernoulli_log_likelihood,
    cases=_bernoulli_cases,
    outputs=[Output("log-likelihood", 1e-6, 1e-8)],
    diagnoses=[_not_finite],
    mistakes=[
        *mistake_table(
            _BERNOULLI,
            bce=lambda *a: -_bernoulli(*a),
            mse=(
                lambda x, lg: -((x - lg.sigmoid()) ** 2).sum(-1),
                lambda x, lg: -0.5 * ((x - lg.sigmoid()) ** 2).sum(-1),
            ),
            mse_logits=lambda x, lg: -((x - lg) ** 2).sum(-1),
            no_zeros=partial(_bernoulli, terms=(1.0, 0.0)),
            no_ones=partial(_bernoulli, terms=(0.0, 1.0)),
            swap=partial(_bernoulli, swap=True),
            no_log=lambda x, lg: (x * lg.sigmoid() + (1 - x) * (1 - lg.sigmoid())).sum(-1),
        ),
        *reduction_mistakes(
            partial(_bernoulli, reduce=lambda v, dim: v), "log-likelihood", "pixel", "D"
        ),
        *(
            Mistake(_B["clip"].format(eps), partial(_clipped, eps=eps))
            for eps in (1e-7, 1e-6, 1e-5, 1e-8, 1e-10, 1e-12, 1e-15)
        ),
    ],
    fallbacks=[_clipping],
    success="the Bernoulli log-likelihood matches the reference on {n} inputs, finite for logits "
    "up to +-1000.",
)
check_bernoulli_log_likelihood = BERNOULLI.check


# ----------------------------------------------------------------------- Exercise 3.3


def _kl_cases(rng: np.random.Generator) -> list[Case]:
    normal, zeros = rng.normal, np.zeros((3, 4))
    mixed = normal(size=(5, 2))
    mixed[0], mixed[1] = np.abs(mixed[0]), -np.abs(mixed[1])
    return [
        Case(name, (_t(mu), _t(log_std)))
        for name, mu, log_std in [
            ("a batch of 5 with d=2 (sigma < 1 and > 1)", normal(size=(5, 2)), mixed),
            ("one q with d=8 and no batch axis (shape (8,))", normal(size=8), normal(size=8)),
            ("batch axes (2, 3) with d=4", normal(size=(2, 3, 4)), normal(size=(2, 3, 4))),
            ("q = the prior (mu = 0, log_std = 0): the KL must be 0, (3, 4)", zeros, zeros),
            (
                "tiny sigmas (log_std ~ -15), shape (4, 2)",
                normal(size=(4, 2)),
                normal(-15, 1, (4, 2)),
            ),
            ("huge sigmas (log_std ~ 6), shape (4, 2)", normal(size=(4, 2)), normal(6, 1, (4, 2))),
            ("d=1 with a batch of 6", normal(size=(6, 1)), normal(size=(6, 1))),
            ("large means (mu ~ 50), shape (3, 3)", normal(50, 1, (3, 3)), normal(size=(3, 3))),
        ]
    ]


def _kl(*args, var=lambda v: torch.exp(2 * v), log=lambda v: v, mean=1.0, const=-0.5, sum_=1):
    """(mu^2 + sigma^2) / 2 - log sigma - 1/2 per dimension, with knobs for the mistakes."""
    mu, log_std = args
    per_dim = 0.5 * (mean * mu**2 + var(log_std)) - log(log_std) + const
    return per_dim.sum(-1) if sum_ else per_dim


_KL = """
sign: your KL is the negative of the right one; D_KL(q || p) >= 0 always. Per dimension it is (mu^2
    + sigma^2) / 2 - log sigma - 1/2. (The ELBO SUBTRACTS it: L = E[log p(x|z)] - KL.)
log_var: you used the log-VARIANCE formula -1/2 sum(1 + log sigma^2 - mu^2 - sigma^2) with log_std
    in place of log sigma^2. Here the input is log sigma: log sigma^2 = 2 * log_std and sigma^2 =
    exp(2 * log_std).
std: you used sigma = exp(log_std) where the variance sigma^2 = exp(2 * log_std) belongs.
as_sigma: you treated log_std as sigma (its log is NaN for log_std < 0): log sigma is log_std itself
    and sigma^2 = exp(2 * log_std).
reverse: you computed D_KL(p || q), the reverse direction; KL is not symmetric. The ELBO needs
    D_KL(q || p) = E_q[log q(z) - log p(z)] = sum_j (mu_j^2 + sigma_j^2) / 2 - log sigma_j - 1/2.
log_sign: the log term has the wrong sign: per dimension it is -log sigma = -log_std.
no_mean: the mean term mu^2 / 2 is missing: q is penalised for moving its mean away from 0.
half: you left out the -1/2 per dimension: check that the KL of q = N(0, I) to the prior is 0.
"""
KL_TO_PRIOR = Exercise(
    id="3.3",
    check_name="check_kl_to_prior",
    reference=ref.kl_to_prior,
    cases=_kl_cases,
    outputs=[Output("KL divergence")],
    mistakes=[
        *mistake_table(
            _KL,
            sign=lambda *a: -_kl(*a),
            log_var=partial(_kl, var=torch.exp, log=lambda v: v / 2),
            std=partial(_kl, var=torch.exp),
            as_sigma=(
                partial(_kl, var=torch.square, log=torch.log),
                partial(_kl, var=torch.square, log=lambda v: v.abs().log()),
            ),
            reverse=lambda mu, log_std: (
                log_std + (1 + mu**2) / (2 * torch.exp(2 * log_std)) - 0.5
            ).sum(-1),
            log_sign=partial(_kl, log=lambda v: -v),
            no_mean=partial(_kl, mean=0.0),
            half=partial(_kl, const=0.0),
        ),
        *reduction_mistakes(partial(_kl, sum_=0), "KL divergence"),
    ],
    success="D_KL(q || N(0, I)) matches the reference on {n} inputs, including q = p(z) and "
    "log_std from -15 to 6.",
)
check_kl_to_prior = KL_TO_PRIOR.check


# ----------------------------------------------------------------------- Exercise 3.4


def _elbo_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for name, d, n, beta, shift, scale in [
        ("a VAE with d=2, 4 images of 16 pixels, beta=1", 2, 4, 1.0, 0.0, 1.0),
        ("d=3, a single image (N=1), beta=1", 3, 1, 1.0, -1.0, 1.0),
        ("d=2, 32 images, beta=0.5", 2, 32, 0.5, 0.5, 1.0),
        ("d=4, 8 images, beta=4", 4, 8, 4.0, -0.5, 1.0),
        ("d=2, 6 images, a decoder with logits up to ~100, beta=1", 2, 6, 1.0, 0.0, 200.0),
    ]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(1 << 30)))
            model = ref.VAE(data_dim=16, latent_dim=d, hidden=12, n_hidden_layers=1).double()
        with torch.no_grad():
            model.encoder[-1].bias[d:] += shift  # log_std
            model.decoder[-1].weight.mul_(scale)
            model.decoder[-1].bias.mul_(scale)
        cases.append(Case(name, (model, _t(rng.random(size=(n, 16)) < 0.4), beta)))
    return cases


_OWN: dict[bytes, dict] = {}  # per input x: the z's the student's function decoded, and its terms


def _recon(model, x, mu, log_std, eps: list) -> torch.Tensor:
    """The batch mean of -log p(x|z) at z = mu + eps * sigma, averaged over the eps."""
    zs = [ref.reparameterize(mu, log_std, e) for e in eps]
    return torch.stack(
        [-ref.bernoulli_log_likelihood(x, model.decode(z)).mean() for z in zs]
    ).mean()


def _observe_loss(fn, model, x, beta):
    """The loss of fn moved onto the reference's noise, loss - R(z's fn decoded) + R(reference z)
    with R the reference's reconstruction term, its gradients w.r.t. the decoder and the encoder,
    and a status (1: nothing decoded, 2: the mean decoded)."""
    decoded, decode, key = [], model.decode, x.numpy().tobytes()
    model.decode = lambda z: decoded.append(z) or decode(z)  # model.forward uses it too
    student = not getattr(fn, "replays", False) and fn is not ref.negative_elbo
    if student:
        _OWN.pop(key, None)  # the mistakes replay the z's of the student's function
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        loss = fn(model, x, beta)
    del model.decode  # the method again
    mu, log_std = model.encode(x)
    canonical = torch.randn(mu.shape, dtype=mu.dtype, generator=torch.Generator().manual_seed(0))
    params = [list(model.decoder.parameters()), list(model.encoder.parameters())]
    zero = [torch.zeros(sum(p.numel() for p in group), dtype=x.dtype) for group in params]
    if not isinstance(loss, torch.Tensor) or loss.ndim or not decoded:
        return loss, *zero, torch.tensor(0.0 if decoded else 1.0)
    eps = [((z - mu) / torch.exp(log_std)).detach() for z in decoded]
    own, kl = _recon(model, x, mu, log_std, eps), ref.kl_to_prior(mu, log_std).mean()
    if student:
        _OWN[key] = dict(
            z=[z.detach() for z in decoded], loss=loss.item(), recon=own.item(), kl=kl.item()
        )
    moved = loss - own + _recon(model, x, mu, log_std, [canonical])  # the reference's noise
    grads = torch.autograd.grad(
        moved, params[0] + params[1], allow_unused=True, materialize_grads=True
    )
    flat = torch.cat([g.reshape(-1) for g in grads]).split([z.numel() for z in zero])
    return moved.detach(), *flat, torch.tensor(2.0 if all(not e.any() for e in eps) else 0.0)


def _variant(
    recon=1.0, kl=1.0, weights="kl", sigma=torch.exp, cut=0, reduce=torch.mean, sign=1, detach=0
):
    """The reference on the z's the student's function decoded, with knobs for the mistakes."""

    def negative_elbo(model, x, beta):
        mu, log_std = model.encode(x)
        own = _OWN.get(x.numpy().tobytes(), {}).get("z", [None])[0]
        replay = own is not None and own.shape == mu.shape
        eps = ((own - mu) / sigma(log_std)).detach() if replay else torch.randn_like(mu)
        z = mu + eps * sigma(log_std)
        nll = -ref.bernoulli_log_likelihood(x, model.decode(z.detach() if cut else z))
        kl_term = ref.kl_to_prior(mu, log_std) * (kl if kl != "mean" else 1 / mu.shape[-1])
        nll = nll * (recon if recon != "mean" else 1 / x.shape[-1])
        w_nll, w_kl = {"kl": (1.0, beta), "recon": (beta, 1.0), "none": (1.0, 1.0)}[weights]
        loss = sign * reduce(w_nll * nll + w_kl * kl_term)
        return loss.detach() if detach else loss

    negative_elbo.replays = True
    return negative_elbo


_ELBO = """
not_finite: your loss is not finite for a decoder whose logits reach about +-100. A naive
    log(sigmoid(l)) gives log(0) = -inf there: does Exercise 3.2 pass?
not_decoded: your loss never called model.decode(z): the reconstruction term log p(x|z) needs the
    decoder's logits at a sample z.
mean_decoded: you decoded the mean mu_phi(x), not a sample of q_phi(z|x). The ELBO's expectation
    E_q[log p(x|z)] needs z = mu + eps * sigma (your reparameterize), otherwise sigma gets no
    training signal from the reconstruction.
elbo: you returned the ELBO itself; the training loss is its NEGATIVE (optimizers minimise): loss =
    mean_i [-log p(x_i|z_i) + beta * KL_i].
kl_sign: the KL term has the wrong sign: the ELBO is E[log p(x|z)] - KL, so the loss -ELBO ADDS beta
    * KL.
no_kl: the KL term is missing: loss = mean_i [-log p(x_i|z_i) + beta * KL(q(z|x_i) || p(z))].
    Without it nothing keeps q close to the prior, and samples from p(z) decode to nonsense.
no_recon: the reconstruction term -log p(x|z) is missing.
beta_recon: beta multiplies the wrong term: it weights the KL, loss = -log p(x|z) + beta * KL.
no_beta: you ignored beta: the loss is -log p(x|z) + beta * KL (beta = 1 gives the ELBO).
sum: you summed over the batch; average over the images so that the loss (and the step size) does
    not depend on the batch size.
pixel_mean: you averaged the log-likelihood over the pixels; it is a sum over pixels (Exercise 3.2).
latent_mean: you averaged the KL over the latent dimensions; it is a sum over them (Exercise 3.3).
detached: your loss does not depend on the model's parameters in torch's graph (loss.requires_grad
    is False), so loss.backward() cannot train anything: no .detach(), .item() or torch.no_grad() in
    the loss.
cut: the value of your loss is right, but no gradient flows from the reconstruction term back to the
    encoder: z was cut from mu and log_std (.detach(), torch.no_grad(), torch.normal or .sample()).
    The reparameterization trick exists to keep that path: build z as mu + eps * exp(log_std) with
    your reparameterize.
log_var: the value of your loss is right, but the encoder's gradient shows that your sample uses
    sigma = exp(log_std / 2), as if log_std were a log-variance. Here sigma = exp(log_std) (does
    Exercise 3.1 pass?).
value: your loss is {:.6g}, but on the same samples z the reference mean_i [-log p(x_i|z_i) + beta *
    KL_i] is {:.6g} (reconstruction {:.6g}, KL {:.6g}, beta {:g}). Check Exercises 3.2 and 3.3
    first.
decoder: the value of your loss is right, but its gradient with respect to the decoder's parameters
    is not: compute -log p(x|z) from model.decode(z) inside the graph (no .detach() or numpy).
encoder: the value of your loss is right, but its gradient with respect to the encoder's parameters
    is not: z must be mu + eps * exp(log_std) computed from model.encode(x) in the graph (does
    Exercise 3.1 pass?), and the KL must use the same mu and log_std.
"""
_E = messages(_ELBO)


def _structure(actual, expected, case: Case) -> str | None:
    loss, _, _, status = actual
    if loss.shape == () and not np.isfinite(loss):
        return _E["not_finite"]
    return {1.0: _E["not_decoded"], 2.0: _E["mean_decoded"]}.get(float(status))


def _loss_or_gradients(actual, expected, case: Case) -> str | None:
    if actual[0].shape != expected[0].shape:
        return None
    for k, name in enumerate(["value", "decoder", "encoder"]):
        if not np.allclose(actual[k], expected[k], rtol=1e-5, atol=1e-8):
            if name != "value":
                return _E[name]
            own, beta = _OWN.get(case.args[1].numpy().tobytes()), case.args[2]
            return own and _E["value"].format(
                own["loss"], own["recon"] + beta * own["kl"], own["recon"], own["kl"], beta
            )
    return None


NEGATIVE_ELBO = Exercise(
    id="3.4",
    check_name="check_negative_elbo",
    reference=ref.negative_elbo,
    cases=_elbo_cases,
    call=_observe_loss,
    outputs=[
        Output("loss", 1e-6, 1e-8, tensor="loss.backward() trains the VAE"),
        Output("gradient w.r.t. the decoder's parameters", 1e-5, 1e-9),
        Output("gradient w.r.t. the encoder's parameters", 1e-5, 1e-9),
        Output("status"),
    ],
    diagnoses=[_structure],
    mistakes=mistake_table(
        _ELBO,
        elbo=_variant(sign=-1.0),
        kl_sign=_variant(kl=-1.0),
        no_kl=_variant(kl=0.0),
        no_recon=_variant(recon=0.0),
        beta_recon=_variant(weights="recon"),
        no_beta=_variant(weights="none"),
        sum=_variant(reduce=torch.sum),
        pixel_mean=_variant(recon="mean"),
        latent_mean=_variant(kl="mean"),
        detached=_variant(detach=True),
        cut=_variant(cut=True),
        log_var=_variant(sigma=lambda log_std: torch.exp(log_std / 2)),
    ),
    fallbacks=[_loss_or_gradients],
    success="the loss and its gradients match the reference on {n} small VAEs (N = 1 to 32, beta = "
    "0.5 to 4, logits up to ~100).",
)
check_negative_elbo = NEGATIVE_ELBO.check
