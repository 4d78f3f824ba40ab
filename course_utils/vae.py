"""The variational autoencoder: amortized variational inference with the reparameterization trick.

Notation of the slides ("Amortized variational inference", "Reparameterization", "The
variational autoencoder"):

* prior ``p(z) = N(0, I_d)``; decoder ``p_theta(x|z)``, here a product of Bernoullis over the
  D pixels with logits ``f_theta(z)``;
* encoder ``q_phi(z|x) = N(mu_phi(x), diag sigma_phi(x)^2)``, one network for every x_i
  (instead of one ``q_i`` per data point as in chapter 01);
* reparameterization ``z = mu_phi(x_i) + eps * sigma_phi(x_i)``, ``eps ~ N(0, I)``;
* ELBO ("Think in another way")::

      L_i = E_eps[log p_theta(x_i | mu_phi(x_i) + eps sigma_phi(x_i))] - D_KL(q_phi(z|x_i) || p(z));

* importance-weighted bound (Burda et al., 2016), ``log p(x) >= L_k >= L_1 = ELBO``::

      L_k = E[log 1/k sum_j p_theta(x, z_j) / q_phi(z_j|x)],   z_1..z_k ~ q_phi(z|x);

* the slides' other estimator of the encoder's gradient, the score function ("How to calculate
  grad_phi L_i": "just use the policy gradient")::

      grad_phi E_q[log p_theta(x_i|z)] = E_q[grad_phi log q_phi(z|x_i) log p_theta(x_i|z)].

Conventions: a diagonal Gaussian is given by ``mu`` and ``log_std`` (``sigma = exp(log_std)``),
as in :mod:`course_utils.lvm`; the last axis holds the latent dimensions (or the pixels),
every other axis is a batch axis. Unlike :mod:`course_utils.lvm`, functions keep the dtype
of their inputs (the networks train in float32). :func:`train_vae` trains on
:func:`course_utils.get_device` and is deterministic for a seed on the CPU.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from .runtime import configure_threads, get_device

__all__ = [
    "VAE",
    "TrainResult",
    "VAEConfig",
    "bernoulli_log_likelihood",
    "elbo",
    "elbo_given_q",
    "importance_weighted_bound",
    "iwae_bound",
    "kl_to_prior",
    "log_importance_weights",
    "negative_elbo",
    "reparameterize",
    "score_function_loss",
    "train_vae",
    "training_step",
]

LossFn = Callable[["VAE", Tensor, float], Tensor]
StepFn = Callable[["VAE", torch.optim.Optimizer, Tensor, float], tuple]


# ---------------------------------------------------------------------------- the ELBO's terms


def reparameterize(mu: Tensor, log_std: Tensor, eps: Tensor | None = None) -> Tensor:
    """A sample of ``q = N(mu, diag sigma^2)`` as a differentiable function of mu and log_std.

    ``z = mu + eps * exp(log_std)`` with ``eps ~ N(0, I)`` drawn by ``torch.randn_like(mu)``
    unless given (slide "Reparameterization"); part of Exercise 3.1.
    mu, log_std: (..., d); eps: (..., d) or None. Returns z (..., d).
    """
    if eps is None:
        eps = torch.randn_like(mu)
    return mu + eps * torch.exp(log_std)


def bernoulli_log_likelihood(x: Tensor, logits: Tensor) -> Tensor:
    """``log p(x|z) = sum_j [x_j log s(l_j) + (1 - x_j) log(1 - s(l_j))]``, s = sigmoid, l = logits.

    Computed stably as ``sum_j [x_j l_j - softplus(l_j)]`` (``log s(l) = l - softplus(l)``,
    ``log(1 - s(l)) = -softplus(l)``): finite for logits of any size. Part of Exercise 3.1.
    x: (..., D) with entries 0 or 1; logits: (..., D), broadcast against x. Returns (...).
    Raises ValueError when x is not binary (binarize the data first, see
    :func:`course_utils.data.binarize`): a Bernoulli likelihood of grey values is not a density.
    """
    if not bool(((x == 0) | (x == 1)).all()):
        bad = x[(x != 0) & (x != 1)]
        raise ValueError(
            "bernoulli_log_likelihood needs binary x (entries 0 or 1); got "
            f"{bad.numel()} other value(s), e.g. {bad.flatten()[0].item():.4g}. Binarize the "
            "images first (course_utils.data.binarize); grey values have no Bernoulli likelihood."
        )
    return (x * logits - F.softplus(logits)).sum(-1)


def kl_to_prior(mu: Tensor, log_std: Tensor) -> Tensor:
    """``D_KL(N(mu, diag sigma^2) || N(0, I)) = sum_j [(mu_j^2 + sigma_j^2)/2 - log sigma_j - 1/2]``.

    The analytic KL of the slides' ELBO, per data point, summed over the latent dimensions
    (the case ``p = N(0, I)`` of :func:`course_utils.lvm.gaussian_kl`). Part of Exercise 3.1.
    mu, log_std: (..., d). Returns (...).
    """
    return (0.5 * (mu**2 + torch.exp(2.0 * log_std)) - log_std - 0.5).sum(-1)


def negative_elbo(model: VAE, x: Tensor, beta: float = 1.0) -> Tensor:
    """The training loss: ``1/N sum_i [-log p_theta(x_i|z_i) + beta D_KL(q_phi(z|x_i) || p(z))]``.

    One reparameterized sample ``z_i = mu_phi(x_i) + eps_i sigma_phi(x_i)`` per data point
    (slide "The variational autoencoder"); ``beta = 1`` is the negative ELBO, other values give
    the beta-VAE objective.
    x: (N, D) binary. Returns a scalar tensor, differentiable w.r.t. theta and phi.
    """
    mu, log_std = model.encode(x)
    z = reparameterize(mu, log_std)
    logits = model.decode(z)
    return (-bernoulli_log_likelihood(x, logits) + beta * kl_to_prior(mu, log_std)).mean()


def training_step(
    model: VAE,
    optimizer: torch.optim.Optimizer,
    x: Tensor,
    beta: float = 1.0,
    *,
    eps: Tensor | None = None,
) -> tuple[float, float, float]:
    """One step of the slides' loop on a minibatch: encode, reparameterize, decode, loss,
    backward, optimizer step. Reference of Exercise 3.1.

    The loss is :func:`negative_elbo`'s, ``mean_i [-log p_theta(x_i|z_i) + beta KL_i]`` with
    ``z_i = mu_phi(x_i) + eps_i sigma_phi(x_i)`` (``eps`` (N, d), drawn by ``torch.randn_like``
    unless given); the gradients of the previous step are cleared first. x: (N, D) binary.
    Returns the floats ``(loss, reconstruction, kl)``: the loss before the step and the batch
    means of ``log p_theta(x_i|z_i)`` and of ``D_KL(q_phi(z|x_i) || p(z))``.
    """
    mu, log_std = model.encode(x)
    z = reparameterize(mu, log_std, eps)
    log_likelihood = bernoulli_log_likelihood(x, model.decode(z))  # (N,)
    kl = kl_to_prior(mu, log_std)  # (N,)
    loss = (-log_likelihood + beta * kl).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item(), log_likelihood.mean().item(), kl.mean().item()


def score_function_loss(
    model: VAE, x: Tensor, beta: float = 1.0, *, eps: Tensor | None = None
) -> Tensor:
    """A surrogate loss whose gradient is the score-function (policy-gradient) estimate of the
    gradient of :func:`negative_elbo`. Reference of Exercise 3.2.

    One sample ``z_i ~ q_phi(z|x_i)`` per image, drawn WITHOUT a gradient path (``eps`` as in
    :func:`training_step`); the encoder learns the reconstruction term only through the score
    (slide "How to calculate grad_phi L_i", with the analytic KL instead of the entropy)::

        mean_i [ -log p_theta(x_i|z_i) - sg(log p_theta(x_i|z_i)) log q_phi(z_i|x_i) + beta KL_i ]

    (sg: stop gradient). Its gradient w.r.t. theta is that of the negative ELBO; w.r.t. phi it is
    ``-mean_i log p_theta(x_i|z_i) grad_phi log q_phi(z_i|x_i) + beta grad_phi KL_i``, unbiased
    like the reparameterization gradient but far noisier. Its value is not the loss.
    x: (N, D) binary. Returns a scalar tensor.
    """
    mu, log_std = model.encode(x)
    z = reparameterize(mu, log_std, eps).detach()  # a sample, no path back to phi
    log_likelihood = bernoulli_log_likelihood(x, model.decode(z))  # (N,), differentiable in theta
    log_q = torch.distributions.Normal(mu, torch.exp(log_std)).log_prob(z).sum(-1)  # (N,)
    surrogate = -log_likelihood - log_likelihood.detach() * log_q
    return (surrogate + beta * kl_to_prior(mu, log_std)).mean()


def importance_weighted_bound(model: VAE, x: Tensor, eps: Tensor) -> Tensor:
    """``log 1/k sum_j w_j``, ``w_j = p_theta(x, z_j) / q_phi(z_j|x)``, at ``z_j = mu + eps_j sigma``.

    One draw of the importance-weighted bound ``L_k`` for given noise, computed with a
    log-sum-exp (the weights of a 64-pixel image are around e^-20 and underflow for confident
    decoders). Reference of Exercise 3.4. x: (N, D) binary; eps: (k, N, d). Returns (N,).
    """
    mu, log_std = model.encode(x)
    log_w = log_importance_weights(model, x, mu, log_std, eps)  # (k, N)
    return torch.logsumexp(log_w, dim=0) - math.log(eps.shape[0])


def _standard_normal(shape: tuple, like: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(shape, generator=generator, dtype=like.dtype, device=like.device)


def elbo_given_q(
    model: VAE,
    x: Tensor,
    mu: Tensor,
    log_std: Tensor,
    *,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Monte Carlo ELBO of any diagonal Gaussian ``q_i = N(mu_i, sigma_i)`` under the decoder.

    ``1/S sum_s log p_theta(x_i | mu_i + eps_s sigma_i) - D_KL(q_i || p(z))``. Differentiable in
    mu and log_std (used to refine q_i by per-datapoint VI, the amortization gap).
    x: (N, D); mu, log_std: (N, d). Returns (N,).
    """
    eps = _standard_normal((n_samples, *mu.shape), mu, generator)
    z = reparameterize(mu, log_std, eps)  # (S, N, d)
    return bernoulli_log_likelihood(x, model.decode(z)).mean(0) - kl_to_prior(mu, log_std)


def elbo(
    model: VAE, x: Tensor, *, n_samples: int = 1, generator: torch.Generator | None = None
) -> Tensor:
    """The ELBO ``L_i`` of every data point with the encoder's ``q_phi(z|x_i)``: (N, D) -> (N,)."""
    mu, log_std = model.encode(x)
    return elbo_given_q(model, x, mu, log_std, n_samples=n_samples, generator=generator)


def log_importance_weights(
    model: VAE, x: Tensor, mu: Tensor, log_std: Tensor, eps: Tensor
) -> Tensor:
    """``log w = log p_theta(x|z) + log p(z) - log q_phi(z|x)`` at ``z = mu + eps sigma``.

    The ``log 2 pi`` terms of p(z) and q(z|x) cancel, and ``(z - mu) / sigma = eps`` exactly,
    so ``log p(z) - log q(z|x) = sum_j [eps_j^2 / 2 - z_j^2 / 2 + log sigma_j]``.
    x: (N, D); mu, log_std: (N, d); eps: (S, N, d). Returns (S, N).
    """
    z = reparameterize(mu, log_std, eps)
    log_prior_ratio = (0.5 * eps**2 - 0.5 * z**2 + log_std).sum(-1)
    return bernoulli_log_likelihood(x, model.decode(z)) + log_prior_ratio


@torch.no_grad()
def iwae_bound(
    model: VAE,
    x: Tensor,
    k: int,
    *,
    batch_size: int = 512,
    max_elements: int = 1 << 22,
    generator: torch.Generator | None = None,
) -> Tensor:
    """A one-draw estimate of ``L_k = E[log 1/k sum_j w_j]`` for every data point: (N, D) -> (N,).

    ``L_k`` is a lower bound on ``log p(x)`` that grows with k (``L_1`` is the ELBO) and tends to
    ``log p(x)`` as k -> infinity; ``-L_k`` with k = 1000 is the usual estimate of the negative
    log-likelihood. Memory-safe: data points are processed ``batch_size`` at a time and the k
    samples in chunks of at most ``max_elements`` decoder outputs, combined with a running
    log-sum-exp, so any k fits in memory.
    """
    if k < 1:
        raise ValueError(f"k must be a positive number of samples, got {k}")
    data_dim = x.shape[-1]
    out = []
    for start in range(0, x.shape[0], batch_size):
        xb = x[start : start + batch_size]
        mu, log_std = model.encode(xb)
        chunk = max(1, min(k, max_elements // (xb.shape[0] * data_dim)))
        running = torch.full(xb.shape[:1], -math.inf, dtype=mu.dtype, device=mu.device)
        for done in range(0, k, chunk):
            eps = _standard_normal((min(chunk, k - done), *mu.shape), mu, generator)
            log_w = log_importance_weights(model, xb, mu, log_std, eps)  # (chunk, n)
            running = torch.logaddexp(running, torch.logsumexp(log_w, dim=0))
        out.append(running - math.log(k))
    return torch.cat(out)


# -------------------------------------------------------------------------------- the model


def _mlp(n_in: int, hidden: int, n_out: int, n_hidden_layers: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(n_hidden_layers):
        layers += [nn.Linear(width, hidden), nn.Tanh()]
        width = hidden
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


class VAE(nn.Module):
    """Encoder ``x -> (mu_phi(x), log sigma_phi(x))`` and decoder ``z -> logits f_theta(z)``.

    Both are MLPs with ``n_hidden_layers`` tanh layers of ``hidden`` units. The decoder's output
    are the logits of D independent Bernoullis, ``p_theta(x_j = 1 | z) = sigmoid(f_theta(z)_j)``.
    """

    def __init__(
        self, data_dim: int = 64, latent_dim: int = 8, hidden: int = 256, n_hidden_layers: int = 2
    ) -> None:
        super().__init__()
        self.data_dim, self.latent_dim = data_dim, latent_dim
        self.encoder = _mlp(data_dim, hidden, 2 * latent_dim, n_hidden_layers)
        self.decoder = _mlp(latent_dim, hidden, data_dim, n_hidden_layers)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``q_phi(z|x)``: x (..., D) -> mu (..., d), log_std (..., d)."""
        mu, log_std = self.encoder(x).chunk(2, dim=-1)
        return mu, log_std

    def decode(self, z: Tensor) -> Tensor:
        """``p_theta(x|z)``: z (..., d) -> logits (..., D)."""
        return self.decoder(z)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Encode, draw one reparameterized z, decode: returns (logits, mu, log_std)."""
        mu, log_std = self.encode(x)
        return self.decode(reparameterize(mu, log_std)), mu, log_std

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Ancestral sampling of the generative model: ``z ~ p(z)``, then the pixel
        probabilities ``sigmoid(f_theta(z))`` of ``p_theta(x|z)``, shape (n, D)."""
        weight = self.decoder[0].weight
        z = torch.randn(
            (n, self.latent_dim), generator=generator, dtype=weight.dtype, device=weight.device
        )
        return torch.sigmoid(self.decode(z))


# ----------------------------------------------------------------------------------- training


@dataclass
class VAEConfig:
    """Hyper-parameters of :func:`train_vae`. The defaults reach a test NLL of about 16.3 nats
    per image on the binarized digits in about 10 s on one CPU thread (benchmarks/vae_digits.py)."""

    latent_dim: int = 8
    hidden: int = 256
    n_hidden_layers: int = 2
    steps: int = 3000
    batch_size: int = 256
    lr: float = 2e-3
    cosine_decay: bool = True  # learning rate lr * (1 + cos(pi t / steps)) / 2
    beta: float = 1.0  # weight of the KL term (1: the ELBO; other values: beta-VAE)
    kl_warmup_steps: int = 0  # beta grows linearly from 0 over these steps
    eval_every: int = 100  # steps between evaluations of the train and test ELBO
    seed: int = 0
    num_threads: int | None = 1  # torch threads while training (None: the course default)


@dataclass
class TrainResult:
    """What :func:`train_vae` returns. ``history`` lists, per evaluation, the ``step``, the
    ``train_elbo`` and ``test_elbo`` (nats per image, one sample, averaged over the set), and
    per step the minibatch ``loss``; ``seconds`` is the wall-clock training time."""

    model: VAE
    config: VAEConfig
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0


@torch.no_grad()
def _mean_elbo(model: VAE, x: Tensor, generator: torch.Generator) -> float:
    return elbo(model, x, generator=generator).mean().item()


def train_vae(
    x_train: Tensor,
    config: VAEConfig | None = None,
    *,
    x_test: Tensor | None = None,
    loss_fn: LossFn | None = None,
    step_fn: StepFn | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    desc: str = "training the VAE",
) -> TrainResult:
    """Train a :class:`VAE` with Adam on minibatches of ``x_train`` (N, D), binary.

    The slides' loop: for each minibatch, ``loss = loss_fn(model, x, beta)`` (default
    :func:`negative_elbo`: one reparameterized z per image, analytic KL), then one Adam step on
    theta and phi together; or, with ``step_fn(model, optimizer, x, beta) -> (loss, ...)`` (e.g.
    :func:`training_step`), that whole step. The seed fixes the initialisation, the minibatches and the noise
    (global torch RNG, so a ``loss_fn`` that samples with ``torch.randn_like`` sees the same
    noise as the reference); the run is deterministic on the CPU. Trains on ``device``
    (default :func:`get_device`) with ``config.num_threads`` torch threads (one thread beats two
    for these small networks on a 2-core machine), restores the thread count afterwards, and
    returns the model on the CPU in eval mode.
    """
    config = config or VAEConfig()
    previous_threads = torch.get_num_threads()
    configure_threads(config.num_threads)
    try:
        if loss_fn is not None and step_fn is not None:
            raise ValueError("give a loss_fn or a step_fn, not both")
        return _train(
            x_train,
            config,
            x_test,
            step_fn or _step_of(loss_fn or negative_elbo),
            torch.device(device) if device is not None else get_device(),
            progress,
            desc,
        )
    finally:
        torch.set_num_threads(previous_threads)


def _step_of(loss_fn: LossFn) -> StepFn:
    """The training step that minimises ``loss_fn`` (zero_grad, backward, step)."""

    def step(model: VAE, optimizer: torch.optim.Optimizer, x: Tensor, beta: float) -> tuple:
        loss = loss_fn(model, x, beta)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return (loss.item(),)

    return step


def _train(
    x_train: Tensor,
    config: VAEConfig,
    x_test: Tensor | None,
    step_fn: StepFn,
    device: torch.device,
    progress: bool,
    desc: str,
) -> TrainResult:
    torch.manual_seed(config.seed)
    model = VAE(x_train.shape[-1], config.latent_dim, config.hidden, config.n_hidden_layers)
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.steps)
        if config.cosine_decay
        else None
    )
    batches = torch.Generator().manual_seed(config.seed)  # minibatch order, on the CPU
    evaluation = torch.Generator(device=device).manual_seed(config.seed + 1)  # ELBO-curve noise
    x_train = x_train.to(device)
    x_test = x_test.to(device) if x_test is not None else None
    history: dict[str, list[float]] = {"step": [], "train_elbo": [], "test_elbo": [], "loss": []}

    def evaluate(step: int) -> None:
        model.eval()
        history["step"].append(step)
        history["train_elbo"].append(_mean_elbo(model, x_train, evaluation))
        history["test_elbo"].append(
            _mean_elbo(model, x_test, evaluation) if x_test is not None else math.nan
        )
        model.train()

    start = time.perf_counter()
    order = torch.randperm(len(x_train), generator=batches)
    position = 0
    bar = tqdm(range(config.steps), desc=desc, disable=not progress, mininterval=0.5)
    for step in bar:
        if step % config.eval_every == 0:
            evaluate(step)
            bar.set_postfix(test_elbo=f"{history['test_elbo'][-1]:.2f}", refresh=False)
        if position >= len(order):
            order, position = torch.randperm(len(x_train), generator=batches), 0
        batch = x_train[order[position : position + config.batch_size].to(device)]
        position += config.batch_size
        warmup = min(1.0, (step + 1) / config.kl_warmup_steps) if config.kl_warmup_steps else 1.0
        loss = step_fn(model, optimizer, batch, config.beta * warmup)[0]
        if scheduler is not None:
            scheduler.step()
        history["loss"].append(float(loss))
    evaluate(config.steps)
    bar.close()
    seconds = time.perf_counter() - start
    model = model.cpu().eval()
    return TrainResult(model, VAEConfig(**asdict(config)), history, seconds)
