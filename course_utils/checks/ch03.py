"""Checks for chapter 03 (the variational autoencoder): 3.1 ``training_step(model, optimizer, x,
beta)``, one full step of the VAE (encode, reparameterize, decode, loss, backward, optimizer step);
3.2 ``score_function_loss(model, x, beta)``, the surrogate loss of the score-function estimator of
the encoder's gradient; 3.3 a checked prediction (which estimator trains the encoder faster); 3.4
``importance_weighted_bound(model, x, eps)``. The references are in :mod:`course_utils.vae`.

The student draws the noise in 3.1 and 3.2, so their checks observe the samples z the student's
code decoded and move the student's outcome onto a fixed noise: outcome(student) - outcome(reference
at the student's z) + outcome(reference at the fixed noise). A right answer lands on the reference
whatever noise it drew; the mistakes replay the student's z, so they are recognised too. The
implied noise (z - mu) / sigma is then tested statistically on a large batch (standard normal,
fresh at every call). The global random state of torch is left untouched.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from .. import vae as ref
from . import (
    Case,
    Exercise,
    ExerciseError,
    Output,
    Question,
    flat_parameters,
    install_stale_gradients,
    messages,
    mistake_table,
)

__all__ = [
    "check_importance_weighted_bound",
    "check_race_prediction",
    "check_score_function_loss",
    "check_training_step",
]


def _t(array) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array, dtype=np.float64))


def _vae(seed: int, d: int, *, shift: float = 0.0, scale: float = 1.0) -> ref.VAE:
    """A small VAE in float64 (16 pixels, one hidden layer of 12 units); ``shift`` moves the
    encoder's log_std, ``scale`` multiplies the decoder's last layer (the size of the logits)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ref.VAE(data_dim=16, latent_dim=d, hidden=12, n_hidden_layers=1).double()
    with torch.no_grad():
        model.encoder[-1].bias[d:] += shift
        model.decoder[-1].weight.mul_(scale)
        model.decoder[-1].bias.mul_(scale)
    return model


def _images(rng: np.random.Generator, n: int) -> torch.Tensor:
    return _t(rng.random(size=(n, 16)) < 0.4)


def _fixed_noise(mu: torch.Tensor) -> torch.Tensor:
    return torch.randn(mu.shape, dtype=mu.dtype, generator=torch.Generator().manual_seed(0))


def _key(x: torch.Tensor) -> bytes:
    return x.detach().numpy().tobytes()


_OWN: dict[bytes, dict] = {}  # per input x: the z the student's function decoded, its outcome


def _is_student(fn: Callable) -> bool:
    return not getattr(fn, "replays", False) and fn not in (
        ref.training_step,
        ref.score_function_loss,
    )


class _Decoded(list):
    """The z's that ``model.decode`` receives (also from ``model(x)``) while the block runs."""

    def __init__(self, model: ref.VAE) -> None:
        super().__init__()
        self.model = model

    def __enter__(self) -> _Decoded:
        decode = self.model.decode
        self.model.decode = lambda z: self.append(z) or decode(z)
        return self

    def __exit__(self, *exc) -> None:
        del self.model.decode  # the method again


def _first_sample(decoded: list, mu: torch.Tensor) -> torch.Tensor | None:
    return next((z for z in decoded if isinstance(z, torch.Tensor) and z.shape == mu.shape), None)


def _replayed(x: torch.Tensor, mu: torch.Tensor, log_std: torch.Tensor, sigma) -> torch.Tensor:
    """For a mistake: the student's z, as mu + eps * sigma(log_std) with this mistake's sigma (the
    same value, the mistake's gradient path); fresh noise when the student decoded none."""
    own = _OWN.get(_key(x), {}).get("z")
    if own is None or own.shape != mu.shape:
        return mu + torch.randn_like(mu) * sigma(log_std)
    return mu + ((own - mu) / sigma(log_std)).detach() * sigma(log_std)


def _status(z: torch.Tensor | None, mu: torch.Tensor, log_std: torch.Tensor) -> float:
    """0: a sample was decoded; 1: no z of mu's shape was decoded; 2: the decoded z is mu."""
    if z is None:
        return 1.0
    return 2.0 if torch.equal(z.detach(), mu) else 0.0


# ------------------------------------------------------------------ the noise the student drew

_NOISE = """
rows: every image got the same noise eps (the rows of (z - mu) / sigma are equal): draw one eps per
    entry of mu, e.g. torch.randn_like(mu), not torch.randn(d).
columns: every latent dimension got the same noise eps: draw one independent eps per entry of mu
    (torch.randn_like(mu)), not one per image.
uniform: your noise is uniform on [0, 1] (torch.rand_like): the reparameterization of a Gaussian
    needs standard-NORMAL noise, eps = torch.randn_like(mu).
moments: the implied noise eps = (z - mu) / sigma should be standard normal, but over {} entries it
    has mean {:.3f}, standard deviation {:.3f} and {:.1%} of its values beyond +-2 (expected 0, 1
    and 4.6%). Write z = mu + eps * exp(log_std) with eps = torch.randn_like(mu).
same: two calls decoded the same z. Draw fresh noise at every call (no torch.manual_seed and no
    fixed eps inside the function): each training step needs a new sample.
"""
_N = messages(_NOISE)
_BIG = "a VAE with d=3 and 4000 images (statistics of the noise)"


def _noise_check(run: Callable) -> Callable:
    """An after-check: ``run(fn, model, x)`` calls the student's function; the noise it implies
    on a large batch must be i.i.d. standard normal, and fresh at every call."""

    def check(fn: Callable, cases) -> tuple[str, Case] | None:
        rng = np.random.default_rng(7)
        model, x = _vae(11, 3), _images(rng, 4000)
        case = Case(_BIG, (model, x))
        with torch.no_grad():
            mu, log_std = model.encode(x)
        draws = []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            for _ in range(2):
                copy_ = copy.deepcopy(model)
                with _Decoded(copy_) as decoded:
                    run(fn, copy_, x)
                z = _first_sample(decoded, mu)
                if z is None:
                    return None  # the cases above report what was decoded
                draws.append(((z.detach() - mu) / torch.exp(log_std)).numpy())
        eps = draws[0]
        mean, std, tail = eps.mean(), eps.std(), np.mean(np.abs(eps) > 2.0)  # N(0, 1): 4.55%
        if np.allclose(eps, eps[:1]):
            return _N["rows"], case
        if np.allclose(eps, eps[:, :1]):
            return _N["columns"], case
        if abs(mean - 0.5) < 0.05 and eps.min() >= 0.0 and eps.max() <= 1.0:
            return _N["uniform"], case
        if abs(mean) > 5 / math.sqrt(eps.size) or abs(std - 1) > 0.05 or abs(tail - 0.0455) > 0.012:
            return _N["moments"].format(eps.size, mean, std, tail), case
        return (_N["same"], case) if np.array_equal(draws[0], draws[1]) else None

    return check


# ----------------------------------------------------------------------- Exercise 3.1


def _sgd(lr: float, momentum: float = 0.0) -> Callable:
    return lambda params: torch.optim.SGD(params, lr=lr, momentum=momentum)


def _adam(lr: float) -> Callable:
    return lambda params: torch.optim.Adam(params, lr=lr)


def _step_cases(rng: np.random.Generator) -> list[Case]:
    """Small VAEs with an optimizer; most hold the gradients of a previous step in .grad, as they
    do in a training loop (``stale``, installed again after each copy: deepcopy drops .grad)."""
    cases = []
    for name, d, n, beta, make, earlier, stale, scale in [
        ("d=2, 4 images, SGD(lr=0.1), beta=1", 2, 4, 1.0, _sgd(0.1), 0, True, 1.0),
        (
            "d=3, one image, SGD(lr=0.05, momentum=0.9) after 2 steps",
            *(3, 1, 1.0, _sgd(0.05, 0.9), 2, True, 1.0),
        ),
        (
            "d=2, 32 images, Adam(lr=0.01) after 3 steps, beta=0.5",
            *(2, 32, 0.5, _adam(0.01), 3, True, 1.0),
        ),
        ("d=4, 8 images, SGD(lr=0.05), beta=4", 4, 8, 4.0, _sgd(0.05), 0, True, 1.0),
        (
            "d=2, 6 images, a decoder with logits up to ~100, SGD(lr=1e-3)",
            *(2, 6, 1.0, _sgd(1e-3), 0, True, 200.0),
        ),
        (
            "d=2, 5 images, a new model (no gradients yet), SGD(lr=0.1), beta=2",
            *(2, 5, 2.0, _sgd(0.1), 0, False, 1.0),
        ),
    ]:
        model = _vae(int(rng.integers(1 << 30)), d, shift=rng.uniform(-1, 0.5), scale=scale)
        optimizer = make(model.parameters())
        other = _images(rng, n)
        noise = torch.Generator().manual_seed(int(rng.integers(1 << 30)))
        for _ in range(earlier):
            eps = torch.randn((n, d), dtype=torch.float64, generator=noise)
            ref.training_step(model, optimizer, other, beta, eps=eps)
        if stale:  # the gradients of a step on another batch, left in .grad
            mu, log_std = model.encode(other)
            z = ref.reparameterize(
                mu, log_std, torch.randn(mu.shape, dtype=mu.dtype, generator=noise)
            )
            model.zero_grad()
            loss = -ref.bernoulli_log_likelihood(other, model.decode(z)) + ref.kl_to_prior(
                mu, log_std
            )
            loss.mean().backward()
            model.stale_grads = [p.grad.clone() for p in model.parameters()]
        suffix = "; .grad holds the previous step's gradients" if stale else ""
        cases.append(Case(name + suffix, (model, optimizer, _images(rng, n), beta)))
    return cases


def _install_stale_grads(model: ref.VAE) -> None:
    install_stale_gradients(model.parameters(), getattr(model, "stale_grads", None) or [])


def _changes(model: ref.VAE, before: list[np.ndarray]) -> list[np.ndarray]:
    return [flat_parameters(model.decoder) - before[0], flat_parameters(model.encoder) - before[1]]


def _reference_step(pristine: tuple, x, beta, eps) -> list[np.ndarray]:
    model, optimizer = copy.deepcopy(pristine)
    _install_stale_grads(model)
    before = [flat_parameters(model.decoder), flat_parameters(model.encoder)]
    numbers = ref.training_step(model, optimizer, x, beta, eps=eps)
    return [np.float64(v) for v in numbers] + _changes(model, before)


def _number(value) -> np.ndarray | None:
    """A returned diagnostic as a float64 array (None stays None: the harness names it)."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        return value.detach().double().cpu().numpy()
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return value  # not numeric: the harness says so


def _moved(raw: list, at_own: list, at_fixed: list) -> list:
    """Each output moved onto the fixed noise, where it is a finite array of the right shape."""
    out = []
    for r, own, fixed in zip(raw, at_own, at_fixed, strict=True):
        ok = isinstance(r, np.ndarray) and r.shape == np.shape(own) and np.isfinite(r).all()
        out.append(r - own + fixed if ok else r)
    return out


def _observe_step(fn, model, optimizer, x, beta):
    """Run one step of ``fn``; returns (loss, reconstruction, kl, change of the decoder's
    parameters, change of the encoder's parameters, status), moved onto the fixed noise."""
    _install_stale_grads(model)
    pristine = copy.deepcopy((model, optimizer))
    before = [flat_parameters(model.decoder), flat_parameters(model.encoder)]
    with torch.no_grad():
        mu, log_std = model.encode(x)
    key, student = _key(x), _is_student(fn)
    if student:
        _OWN.pop(key, None)  # the mistakes replay the z of the student's function
    with _Decoded(model) as decoded, torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        try:
            out = fn(model, optimizer, x, beta)
        except RuntimeError as exc:
            if "modified by an inplace operation" not in str(exc):
                raise
            raise ExerciseError(
                "Exercise 3.1: optimizer.step() changed the parameters in place before "
                "loss.backward() used them (torch: 'a variable needed for gradient computation has "
                "been modified by an inplace operation'): call optimizer.zero_grad(), "
                "loss.backward() and optimizer.step(), in this order."
            ) from exc
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        got = type(out).__name__ + (f" of length {len(out)}" if isinstance(out, tuple) else "")
        raise ExerciseError(
            "Exercise 3.1: return the three numbers (loss, reconstruction, kl): the loss before "
            "the step and the batch means of log p(x_i|z_i) and of the KL; your function returned "
            f"a {got}."
        )
    raw = [_number(v) for v in out] + _changes(model, before)
    z = _first_sample(decoded, mu)
    status = _status(z, mu, log_std)
    if student:
        _OWN[key] = dict(z=None if z is None else z.detach(), raw=raw)
    if status:
        return (*raw, np.float64(status))
    at_own = _reference_step(pristine, x, beta, ((z.detach() - mu) / torch.exp(log_std)))
    if student:
        _OWN[key]["reference"] = at_own
    at_fixed = _reference_step(pristine, x, beta, _fixed_noise(mu))
    return (*_moved(raw, at_own, at_fixed), np.float64(status))


def _loglik(x, logits):
    return ref.bernoulli_log_likelihood(x, logits)


def _kl(mu, log_std, *, var=lambda v: torch.exp(2 * v), log=lambda v: v, mean=1.0, const=-0.5):
    """(mu^2 + sigma^2) / 2 - log sigma - 1/2 per dimension, summed, with knobs for the mistakes."""
    return (0.5 * (mean * mu**2 + var(log_std)) - log(log_std) + const).sum(-1)


def _step_variant(
    *,
    sigma=torch.exp,
    cut=False,
    loglik=_loglik,
    kl=_kl,
    weights=(1.0, "beta"),
    reduce=torch.mean,
    sign=1.0,
    order="right",
    returns=lambda loss, rec, kl: (loss.item(), rec.mean().item(), kl.mean().item()),
):
    """The reference step on the student's z, with knobs for the mistakes."""

    def training_step(model, optimizer, x, beta):
        mu, log_std = model.encode(x)
        z = _replayed(x, mu, log_std, sigma)
        log_likelihood = loglik(x, model.decode(z.detach() if cut else z))
        kl_term = kl(mu, log_std)
        w_rec, w_kl = (beta if w == "beta" else w for w in weights)
        loss = sign * reduce(-w_rec * log_likelihood + w_kl * kl_term)
        steps = {
            "right": "zbs",
            "no_zero_grad": "bs",
            "zero_then_step": "zsb",
            "zero_after_backward": "bzs",
            "no_step": "zb",
        }[order]
        for action in steps:
            {"z": optimizer.zero_grad, "b": loss.backward, "s": optimizer.step}[action]()
        return returns(loss.detach(), log_likelihood.detach(), kl_term.detach())

    training_step.replays = True
    return training_step


_STEP = """
not_finite: your loss is not finite for a decoder whose logits reach about +-100. log(sigmoid(l))
    computed literally gives log(0) = -inf there: use x * l - softplus(l) per pixel (section 4).
not_decoded: your step never called model.decode(z) with a z of shape (N, d): the reconstruction
    term log p(x|z) needs the decoder's logits at one sample z per image.
mean_decoded: you decoded the mean mu_phi(x), not a sample of q_phi(z|x). The ELBO's expectation
    E_q[log p(x|z)] needs z = mu + eps * sigma with fresh eps, otherwise sigma gets no training
    signal from the reconstruction.
elbo: you minimised the ELBO itself: optimizers MINIMISE, so the loss is the negative ELBO,
    mean_i [-log p(x_i|z_i) + beta * KL_i]. Your step made the model worse.
kl_sign: the KL term has the wrong sign: the ELBO is E[log p(x|z)] - KL, so the loss -ELBO ADDS
    beta * KL.
no_kl: the KL term is missing from your loss: loss = mean_i [-log p(x_i|z_i) + beta * KL_i].
    Without it nothing keeps q close to the prior, and samples from p(z) decode to nonsense.
beta_recon: beta multiplies the wrong term: it weights the KL, loss = -log p(x|z) + beta * KL.
no_beta: you ignored beta: the loss is -log p(x|z) + beta * KL (beta = 1 gives the ELBO).
sum: you summed over the batch; average over the images, so that the loss (and the step size) does
    not depend on the batch size.
pixel_mean: you averaged the log-likelihood over the pixels; log p(x|z) of independent pixels is
    the SUM of their log-probabilities.
latent_mean: you averaged the KL over the latent dimensions; the KL of independent dimensions is
    their sum.
cut: no gradient flows from the reconstruction term back to the encoder: z was cut from mu and
    log_std (.detach(), torch.no_grad(), torch.normal or .sample()). The reparameterization trick
    exists to keep that path: z = mu + eps * exp(log_std) with eps = torch.randn_like(mu).
log_var: your sample uses sigma = exp(log_std / 2), as if log_std were a log-variance. The encoder
    returns log sigma: sigma = exp(log_std).
var: you scaled eps by the variance sigma^2 = exp(2 * log_std); scale it by the standard deviation
    sigma = exp(log_std).
std: you used log_std as the standard deviation (z = mu + eps * log_std); sigma = exp(log_std).
bce: your log-likelihood has the wrong sign: you used the binary cross-entropy, which is -log p(x|z)
    (>= 0), as log p(x|z). Per pixel log p = x * l - softplus(l) (<= 0).
mse: your reconstruction term is a squared error, the likelihood of a Gaussian decoder for grey
    values; the pixels are binary, so log p(x|z) = sum_j [x_j log sigmoid(l_j) + (1 - x_j) log(1 -
    sigmoid(l_j))] = sum_j [x_j l_j - softplus(l_j)].
swap: you swapped the two Bernoulli terms: x_j goes with log sigmoid(l_j), the probability of a 1.
no_zeros: the term of the pixels that are 0 is missing from log p(x|z): add (1 - x_j) log(1 -
    sigmoid(l_j)) = -(1 - x_j) softplus(l_j).
no_ones: the term of the pixels that are 1 is missing from log p(x|z): add x_j log sigmoid(l_j).
kl_log_var: your KL uses the log-VARIANCE formula -1/2 sum(1 + log sigma^2 - mu^2 - sigma^2) with
    log_std in place of log sigma^2; here log sigma^2 = 2 * log_std and sigma^2 = exp(2 * log_std).
kl_std: your KL uses sigma = exp(log_std) where the variance sigma^2 = exp(2 * log_std) belongs.
kl_half: your KL lacks the -1/2 per dimension: the KL of q = N(0, I) to the prior must be 0 (it
    does not change the gradient, but the loss and the KL you report are wrong).
kl_log_sign: the log term of your KL has the wrong sign: per dimension it is -log sigma = -log_std.
kl_no_mean: the mean term mu^2 / 2 is missing from your KL.
no_zero_grad: you did not clear the gradients before loss.backward(): backward ADDS to .grad, so
    your step used this step's gradient plus the previous step's. Call optimizer.zero_grad() first.
no_update: your step did not move the parameters by this loss's gradient: the order is
    optimizer.zero_grad(), loss.backward(), optimizer.step() (zero_grad() between backward() and
    step() throws the gradient away; step() before backward() has none yet).
nll_returned: return the reconstruction as the batch mean of log p(x_i|z_i) (a log-likelihood, <=
    0), not its negative.
swapped: you returned the reconstruction and the KL in the wrong order; return (loss,
    reconstruction, kl).
elbo_returned: the first number should be the loss you minimised, mean_i [-log p(x_i|z_i) + beta *
    KL_i], not the ELBO.
sums: return batch MEANS of log p(x_i|z_i) and of the KL (one number each, as the loss averages
    over the images), not sums.
"""
_S = messages(_STEP)


def _step_structure(actual, expected, case: Case) -> str | None:
    loss, status = actual[0], actual[-1]
    if status == 0 and isinstance(loss, np.ndarray) and not np.isfinite(loss).all():
        return _S["not_finite"]
    return {1.0: _S["not_decoded"], 2.0: _S["mean_decoded"]}.get(float(status))


def _step_fallback(actual, expected, case: Case) -> str | None:
    """What differs, in the student's own numbers (on the z the student's code decoded)."""
    _, _, x, beta = case.args
    own = _OWN.get(_key(x), {})
    raw, reference = own.get("raw"), own.get("reference")
    if raw is None or reference is None:
        return None
    names = ["loss", "reconstruction (the batch mean of log p(x_i|z_i))", "KL (its batch mean)"]
    for k, name in enumerate(names):
        if np.shape(raw[k]) == () and not np.isclose(raw[k], reference[k], rtol=1e-6, atol=1e-8):
            return (
                f"your {name} is {float(raw[k]):.6g}, but on the z your code decoded the reference's "
                f"is {reference[k]:.6g} (loss {reference[0]:.6g} = -reconstruction "
                f"{reference[1]:.6g} + beta {beta:g} * KL {reference[2]:.6g})."
            )
    for k, part in [(3, "decoder"), (4, "encoder")]:
        if not np.allclose(raw[k], reference[k], rtol=1e-5, atol=1e-9):
            where = (
                "compute -log p(x|z) from model.decode(z) inside the graph"
                if part == "decoder"
                else "build z = mu + eps * exp(log_std) from model.encode(x) in the graph, and the KL "
                "from the same mu and log_std"
            )
            return (
                f"your loss is right, but the {part}'s parameters did not change as one step of the "
                f"given optimizer on it changes them: {where}; call optimizer.zero_grad(), "
                "loss.backward() and optimizer.step(), in this order, on the optimizer you were given "
                "(a new optimizer would lose Adam's or momentum's state)."
            )
    return None


TRAINING_STEP = Exercise(
    id="3.1",
    check_name="check_training_step",
    reference=ref.training_step,
    cases=_step_cases,
    call=_observe_step,
    mutates=(0, 1),
    outputs=[
        Output("loss", 1e-6, 1e-8),
        Output("reconstruction", 1e-6, 1e-8),
        Output("KL", 1e-6, 1e-8),
        Output("change of the decoder's parameters", 1e-5, 1e-9),
        Output("change of the encoder's parameters", 1e-5, 1e-9),
        Output("status"),
    ],
    diagnoses=[_step_structure],
    mistakes=mistake_table(
        _STEP,
        elbo=_step_variant(sign=-1.0),
        kl_sign=_step_variant(kl=lambda mu, log_std: -_kl(mu, log_std)),
        no_kl=_step_variant(weights=(1.0, 0.0)),
        beta_recon=_step_variant(weights=("beta", 1.0)),
        no_beta=_step_variant(weights=(1.0, 1.0)),
        sum=_step_variant(reduce=torch.sum),
        pixel_mean=_step_variant(loglik=lambda x, lg: _loglik(x, lg) / x.shape[-1]),
        latent_mean=_step_variant(kl=lambda m, s: _kl(m, s) / m.shape[-1]),
        cut=_step_variant(cut=True),
        log_var=_step_variant(sigma=lambda v: torch.exp(v / 2)),
        var=_step_variant(sigma=lambda v: torch.exp(2 * v)),
        std=_step_variant(sigma=lambda v: v),
        bce=_step_variant(loglik=lambda x, lg: -_loglik(x, lg)),
        mse=(
            _step_variant(loglik=lambda x, lg: -((x - lg.sigmoid()) ** 2).sum(-1)),
            _step_variant(loglik=lambda x, lg: -0.5 * ((x - lg.sigmoid()) ** 2).sum(-1)),
        ),
        swap=_step_variant(
            loglik=lambda x, lg: (x * F.logsigmoid(-lg) + (1 - x) * F.logsigmoid(lg)).sum(-1)
        ),
        no_zeros=_step_variant(loglik=lambda x, lg: (x * F.logsigmoid(lg)).sum(-1)),
        no_ones=_step_variant(loglik=lambda x, lg: ((1 - x) * F.logsigmoid(-lg)).sum(-1)),
        kl_log_var=_step_variant(kl=partial(_kl, var=torch.exp, log=lambda v: v / 2)),
        kl_std=_step_variant(kl=partial(_kl, var=torch.exp)),
        kl_half=_step_variant(kl=partial(_kl, const=0.0)),
        kl_log_sign=_step_variant(kl=partial(_kl, log=lambda v: -v)),
        kl_no_mean=_step_variant(kl=partial(_kl, mean=0.0)),
        no_zero_grad=_step_variant(order="no_zero_grad"),
        no_update=(
            _step_variant(order="zero_then_step"),
            _step_variant(order="zero_after_backward"),
            _step_variant(order="no_step"),
        ),
        nll_returned=_step_variant(returns=lambda loss, rec, kl: (loss, -rec.mean(), kl.mean())),
        swapped=_step_variant(returns=lambda loss, rec, kl: (loss, kl.mean(), rec.mean())),
        elbo_returned=_step_variant(returns=lambda loss, rec, kl: (-loss, rec.mean(), kl.mean())),
        sums=_step_variant(returns=lambda loss, rec, kl: (loss, rec.sum(), kl.sum())),
    ),
    fallbacks=[_step_fallback],
    after=[
        _noise_check(
            lambda fn, model, x: fn(model, torch.optim.SGD(model.parameters(), 0.1), x, 1.0)
        )
    ],
    float64="the noise (z - mu) / sigma is read back from z, and float32 rounds it away",
    success="one training step matches the reference on {n} small VAEs (SGD, momentum and Adam "
    "with state, stale gradients, N = 1 to 32, beta = 0.5 to 4), with fresh standard-normal noise.",
)
check_training_step = TRAINING_STEP.check


# ----------------------------------------------------------------------- Exercise 3.2


def _surrogate_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for name, d, n, beta, shift, scale in [
        ("a VAE with d=2, 4 images, beta=1", 2, 4, 1.0, 0.0, 1.0),
        ("d=3, one image (N=1), beta=1", 3, 1, 1.0, -1.0, 1.0),
        ("d=2, 32 images, beta=0.5", 2, 32, 0.5, 0.5, 1.0),
        ("d=4, 8 images, beta=2", 4, 8, 2.0, -0.5, 1.0),
        ("d=2, 6 images, a decoder with logits up to ~100, beta=1", 2, 6, 1.0, 0.0, 200.0),
    ]:
        model = _vae(int(rng.integers(1 << 30)), d, shift=shift, scale=scale)
        cases.append(Case(name, (model, _images(rng, n), beta)))
    return cases


def _gradients(model: ref.VAE, surrogate: torch.Tensor) -> list[np.ndarray]:
    """The gradients of ``surrogate`` w.r.t. the decoder's and the encoder's parameters (flat)."""
    groups = [list(model.decoder.parameters()), list(model.encoder.parameters())]
    grads = torch.autograd.grad(
        surrogate, groups[0] + groups[1], allow_unused=True, materialize_grads=True
    )
    flat = torch.cat([g.reshape(-1) for g in grads]).double().numpy()
    return list(np.split(flat, [sum(p.numel() for p in groups[0])]))


def _observe_surrogate(fn, model, x, beta):
    """The gradients of ``fn``'s surrogate w.r.t. the decoder and the encoder, moved onto the
    fixed noise, and a status (0: a detached sample was decoded, 1: none, 2: the mean, 3: a z
    that still depends on the encoder)."""
    with torch.no_grad():
        mu, log_std = model.encode(x)
    key, student = _key(x), _is_student(fn)
    if student:
        _OWN.pop(key, None)
    with _Decoded(model) as decoded, torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        out = fn(model, x, beta)
    if not isinstance(out, torch.Tensor) or out.numel() != 1 or not out.requires_grad:
        raise ExerciseError("Exercise 3.2: " + _surrogate_problem(out))
    z = _first_sample(decoded, mu)
    status = _status(z, mu, log_std)
    if status == 0 and z.requires_grad:
        status = 3.0
    raw = _gradients(model, out.reshape(()))
    if student:
        _OWN[key] = dict(z=None if z is None else z.detach(), raw=raw)
    if status:
        return (*raw, np.float64(status))
    at_own = _gradients(
        model, ref.score_function_loss(model, x, beta, eps=_noise_of(z, mu, log_std))
    )
    at_fixed = _gradients(model, ref.score_function_loss(model, x, beta, eps=_fixed_noise(mu)))
    return (*_moved(raw, at_own, at_fixed), np.float64(status))


def _noise_of(z, mu, log_std) -> torch.Tensor:
    return ((z.detach() - mu) / torch.exp(log_std)).detach()


def _surrogate_problem(out) -> str:
    if out is None:
        return "your function returned None. Did you forget the `return` statement?"
    if not isinstance(out, torch.Tensor):
        return (
            f"return the surrogate loss as a torch tensor (loss.backward() computes the estimator "
            f"from it); got {type(out).__name__}."
        )
    if out.numel() != 1:
        return (
            f"return one number, the surrogate averaged over the images; got shape "
            f"{tuple(out.shape)}."
        )
    return (
        "your surrogate does not depend on the model's parameters in torch's graph "
        "(requires_grad is False), so backward() cannot compute any estimate: no .item(), "
        ".detach() of the whole loss, or torch.no_grad()."
    )


def _surrogate_variant(
    *,
    reward_detached=True,
    score=1.0,
    recon=1.0,
    kl=_kl,
    kl_weight="beta",
    reduce=torch.mean,
    log_q="right",
):
    """The reference surrogate on the student's z, with knobs for the mistakes."""

    def score_function_loss(model, x, beta):
        mu, log_std = model.encode(x)
        z = _replayed(x, mu, log_std, torch.exp).detach()
        log_likelihood = ref.bernoulli_log_likelihood(x, model.decode(z))
        reward = log_likelihood.detach() if reward_detached else log_likelihood
        sigma = torch.exp(log_std / 2) if log_q == "log_var" else torch.exp(log_std)
        at = mu + ((z - mu) / sigma).detach() * sigma if log_q == "path" else z
        per_dim = torch.distributions.Normal(mu, sigma).log_prob(at)
        log_q_value = per_dim.mean(-1) if log_q == "mean" else per_dim.sum(-1)
        weight = beta if kl_weight == "beta" else kl_weight
        surrogate = -recon * log_likelihood - score * reward * log_q_value
        return reduce(surrogate + weight * kl(mu, log_std))

    score_function_loss.replays = True
    return score_function_loss


def _published(reward: str, direct: bool = False):
    """Correct variants: the slides' reward log p(x|z) + log p(z) with the entropy analytic, or the
    whole log p(x, z) - log q(z|x) as the reward (with or without the zero-mean direct term)."""

    def score_function_loss(model, x, beta):
        mu, log_std = model.encode(x)
        z = _replayed(x, mu, log_std, torch.exp).detach()
        log_likelihood = ref.bernoulli_log_likelihood(x, model.decode(z))
        log_q = torch.distributions.Normal(mu, torch.exp(log_std)).log_prob(z).sum(-1)
        log_prior = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
        if reward == "slides":
            entropy = (0.5 * math.log(2 * math.pi * math.e) + log_std).sum(-1)
            r = log_likelihood + beta * log_prior
            return (-log_likelihood - r.detach() * log_q - beta * entropy).mean()
        r = log_likelihood + beta * (log_prior - log_q)
        extra = beta * log_q if direct else 0.0
        return (-log_likelihood - r.detach() * log_q + extra).mean()

    score_function_loss.replays = True
    return score_function_loss


_SURROGATE = """
not_decoded: your surrogate never called model.decode(z) with a z of shape (N, d): the reward of
    the score function is log p_theta(x_i|z_i) at one sample z_i ~ q_phi(z|x_i) per image.
mean_decoded: you decoded the mean mu_phi(x), not a sample of q_phi(z|x): the score-function
    estimate averages log p(x|z) grad log q(z|x) over SAMPLES z.
path: the z you decoded still depends on the encoder in torch's graph (z.requires_grad is True), so
    the reparameterization gradient flows too and adds to the score term. The score function treats
    the sample as a constant: detach it (z = (mu + eps * sigma).detach(), or
    torch.distributions.Normal(mu, sigma).sample()); the encoder then learns the reconstruction
    through log q_phi(z|x) only.
reward_grad: the reward log p(x|z) that multiplies log q(z|x) must be a constant: detach it.
    Otherwise the decoder also receives the gradient of log p(x|z) * log q(z|x), which is not part
    of the ELBO's gradient.
score_sign: the score term has the wrong sign. The loss is the NEGATIVE ELBO, so its surrogate is
    -log p(x|z) - sg(log p(x|z)) * log q(z|x) + beta * KL (sg: detached): its gradient w.r.t. phi
    is minus the policy gradient of E_q[log p(x|z)].
no_recon: the decoder gets no gradient: keep -log p_theta(x|z) itself in the surrogate. The
    decoder's gradient is the ordinary one; only the encoder's changes.
no_score: the encoder learns only from the KL: add the score term -sg(log p(x|z)) * log q_phi(z|x),
    through which it learns to encode the image (without a baseline: a baseline equal to the reward,
    such as the batch mean for a single image, cancels it).
no_kl: the KL term is missing: the surrogate is mean_i [-log p(x_i|z_i) - sg(log p(x_i|z_i)) log
    q(z_i|x_i) + beta * KL_i], with the KL in closed form as in Exercise 3.1.
kl_sign: the KL term has the wrong sign: the loss ADDS beta * KL.
no_beta: you ignored beta: the KL term is beta * KL.
sum: you summed over the batch; average over the images (the gradient of Exercise 3.1's loss).
log_q_mean: you averaged log q(z|x) over the latent dimensions; the log-density of independent
    dimensions is their SUM, log q(z|x) = sum_j log N(z_j; mu_j, sigma_j^2).
log_q_var: your log q(z|x) uses sigma = exp(log_std / 2), as if log_std were a log-variance; sigma
    = exp(log_std).
log_q_path: log q_phi(z|x) must be evaluated at the sampled z, held fixed: you evaluated it at mu +
    eps * sigma with the path to mu and sigma kept, and the gradient of that is not the score grad
    log q_phi(z|x).
"""
_F = messages(_SURROGATE)


def _surrogate_structure(actual, expected, case: Case) -> str | None:
    return {1.0: _F["not_decoded"], 2.0: _F["mean_decoded"], 3.0: _F["path"]}.get(float(actual[-1]))


def _surrogate_fallback(actual, expected, case: Case) -> str | None:
    part = next(
        (
            name
            for k, name in enumerate(["decoder", "encoder"])
            if not np.allclose(actual[k], expected[k], rtol=1e-5, atol=1e-9)
        ),
        None,
    )
    if part is None:
        return None
    return (
        f"on the z your code decoded, the gradient of your surrogate w.r.t. the {part}'s parameters "
        "is not the score-function estimate mean_i [-grad log p(x_i|z_i) - log p(x_i|z_i) grad "
        "log q(z_i|x_i)] + beta * grad KL. If you subtracted a baseline, leave it out here: the "
        "check compares the plain estimator of the slides (chapter 02 adds baselines)."
    )


SCORE_FUNCTION = Exercise(
    id="3.2",
    check_name="check_score_function_loss",
    reference=ref.score_function_loss,
    cases=_surrogate_cases,
    call=_observe_surrogate,
    outputs=[
        Output("gradient w.r.t. the decoder's parameters", 1e-5, 1e-9),
        Output("gradient w.r.t. the encoder's parameters", 1e-5, 1e-9),
        Output("status"),
    ],
    diagnoses=[_surrogate_structure],
    mistakes=mistake_table(
        _SURROGATE,
        reward_grad=_surrogate_variant(reward_detached=False),
        score_sign=_surrogate_variant(score=-1.0),
        no_recon=_surrogate_variant(recon=0.0),
        no_score=_surrogate_variant(score=0.0),
        no_kl=_surrogate_variant(kl_weight=0.0),
        kl_sign=_surrogate_variant(kl=lambda mu, log_std: -_kl(mu, log_std)),
        no_beta=_surrogate_variant(kl_weight=1.0),
        sum=_surrogate_variant(reduce=torch.sum),
        log_q_mean=_surrogate_variant(log_q="mean"),
        log_q_var=_surrogate_variant(log_q="log_var"),
        log_q_path=_surrogate_variant(log_q="path"),
    ),
    accept=[_published("slides"), _published("joint"), _published("joint", direct=True)],
    fallbacks=[_surrogate_fallback],
    after=[_noise_check(lambda fn, model, x: fn(model, x, 1.0))],
    float64="the noise (z - mu) / sigma is read back from z, and float32 rounds it away",
    success="the surrogate's gradients are the score-function estimate on {n} small VAEs (decoder: "
    "the usual gradient; encoder: log p(x|z) times the score), with z sampled without a path.",
)
check_score_function_loss = SCORE_FUNCTION.check


# ----------------------------------------------------------------------- Exercise 3.3

RACE = Question(
    id="3.3",
    check_name="check_race_prediction",
    answer="b",
    feedback={
        "a": "unbiased means right on average, and a few hundred steps are not enough to reach "
        "that average: the spread of each estimate decides how fast the encoder learns. You just "
        "measured the score function's spread at many times the reparameterization's.",
        "c": "the score function uses LESS information: only the value of log p(x|z) at the "
        "sample, not its slope in z. That is what makes it general (discrete z) and noisy.",
        "d": "the decoder gets the same ordinary gradient in both runs, so it learns the average "
        "digit either way (that alone gains about 20 nats over -45); only the encoder's gradient "
        "is noisy.",
    },
    hint='answer with one of the letters "a", "b", "c" or "d".',
    success="(b): the same expected gradient, but the score function's estimate of the encoder's "
    "is far noisier, so the encoder learns slowly.",
)
check_race_prediction = RACE.check


# ----------------------------------------------------------------------- Exercise 3.4


def _bound_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for name, d, n, k, shift, scale in [
        ("a VAE with d=2, 4 images, k=5 samples", 2, 4, 5, 0.0, 1.0),
        ("d=3, one image, k=1 (one sample: an ELBO estimate)", 3, 1, 1, 0.0, 1.0),
        ("d=2, 6 images, k=50", 2, 6, 50, -1.0, 1.0),
        ("d=4, 3 images, k=10, narrow q (sigma ~ 0.1)", 4, 3, 10, -2.3, 1.0),
        ("d=2, 4 images, k=20, a confident decoder (log w ~ -1000)", 2, 4, 20, 0.0, 1000.0),
    ]:
        model = _vae(int(rng.integers(1 << 30)), d, shift=shift, scale=scale)
        cases.append(Case(name, (model, _images(rng, n), _t(rng.normal(size=(k, n, d))))))
    return cases


def _bound(
    model,
    x,
    eps,
    *,
    combine="logsumexp",
    log_k=True,
    prior=1.0,
    q=1.0,
    sigma=torch.exp,
    dim=0,
    decode_mean=False,
    analytic_kl=False,
):
    """log 1/k sum_j w_j, with knobs for the mistakes."""
    mu, log_std = model.encode(x)
    z = mu + eps * sigma(log_std)  # (k, N, d)
    log_likelihood = ref.bernoulli_log_likelihood(x, model.decode(mu if decode_mean else z))
    log_likelihood = log_likelihood.expand(eps.shape[:-1])
    normal = torch.distributions.Normal
    log_prior = normal(0.0, 1.0).log_prob(z).sum(-1)
    log_q = normal(mu, sigma(log_std)).log_prob(z).sum(-1)
    if analytic_kl:
        log_w = log_likelihood - ref.kl_to_prior(mu, log_std)
    else:
        log_w = log_likelihood + prior * log_prior - q * log_q  # (k, N)
    k = eps.shape[0] if log_k else 1
    if combine == "mean":
        return log_w.mean(dim)
    return torch.logsumexp(log_w, dim=dim) - math.log(k)


_BOUND = """
not_finite: your bound is not finite where the log-weights are around -1000: exp(log w) underflows
    to 0 and log(0) = -inf. Average the weights in log space: torch.logsumexp(log_w, dim=0) -
    log(k).
elbo: you averaged the log-weights, (1/k) sum_j log w_j: that is the ELBO estimate L_1 with k
    samples, not L_k. L_k takes the log AFTER averaging the weights: log (1/k) sum_j w_j.
log_k: the 1/k is missing: L_k = logsumexp_j(log w_j) - log k (the log of the MEAN of the weights,
    not of their sum).
dim: you combined the log-weights over the images (dim 1); combine over the k samples (dim 0) and
    keep one bound per image, shape (N,).
no_prior: log p(z) is missing from your log-weights: log w_j = log p(x|z_j) + log p(z_j) - log
    q(z_j|x), with p(z) = N(0, I).
no_q: - log q(z_j|x) is missing from your log-weights: w_j = p(x, z_j) / q(z_j|x) is an importance
    weight, the joint divided by the proposal.
q_sign: you added log q(z_j|x); the importance weight DIVIDES by q: log w_j = log p(x|z_j) + log
    p(z_j) - log q(z_j|x).
log_var: you used sigma = exp(log_std / 2), as if log_std were a log-variance; sigma =
    exp(log_std), both in z_j = mu + eps_j * sigma and in q.
decode_mean: you decoded the mean mu for every j: each sample z_j = mu + eps_j * sigma needs its own
    log p(x|z_j) (decode all k samples at once: model.decode accepts (k, N, d)).
analytic_kl: you used log p(x|z_j) - KL(q || p) as the log-weight: the closed-form KL is an average
    over z, but L_k needs each weight at its own z_j, log w_j = log p(x|z_j) + log p(z_j) - log
    q(z_j|x).
"""
_W = messages(_BOUND)


def _bound_not_finite(actual, expected, case: Case) -> str | None:
    finite = actual.shape == expected.shape and np.isfinite(actual).all()
    return None if finite else (_W["not_finite"] if actual.shape == expected.shape else None)


IMPORTANCE_WEIGHTED_BOUND = Exercise(
    id="3.4",
    check_name="check_importance_weighted_bound",
    reference=ref.importance_weighted_bound,
    cases=_bound_cases,
    outputs=[Output("bound", 1e-6, 1e-8)],
    diagnoses=[_bound_not_finite],
    mistakes=mistake_table(
        _BOUND,
        elbo=partial(_bound, combine="mean"),
        log_k=partial(_bound, log_k=False),
        dim=partial(_bound, dim=1),
        no_prior=partial(_bound, prior=0.0),
        no_q=partial(_bound, q=0.0),
        q_sign=partial(_bound, q=-1.0),
        log_var=partial(_bound, sigma=lambda v: torch.exp(v / 2)),
        decode_mean=partial(_bound, decode_mean=True),
        analytic_kl=partial(_bound, analytic_kl=True),
    ),
    success="L_k matches the reference on {n} inputs (k = 1 to 50, log-weights down to about "
    "-1000).",
)
check_importance_weighted_bound = IMPORTANCE_WEIGHTED_BOUND.check
