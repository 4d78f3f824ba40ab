"""Latent-variable models with exact answers, and the Gaussian algebra of variational inference.

Notation of the slides ("Variational Inference"):

* prior ``p(z) = N(0, I_d)``, likelihood (decoder) ``p(x|z)``, evidence ``p(x) = ∫ p(x|z) p(z) dz``;
* variational distribution ``q_i(z) = N(mu_i, sigma_i)`` with a diagonal covariance;
* ELBO ``L_i(p, q_i) = E_{z~q_i}[log p(x_i|z) + log p(z)] + H(q_i)``;
* ``log p(x_i) = D_KL(q_i(z) || p(z|x_i)) + L_i(p, q_i)``.

Conventions of this module: a diagonal Gaussian is given by its mean ``mu`` and its
log-standard-deviation ``log_std`` (``sigma = exp(log_std)``); the latent dimensions are the
last axis, every other axis is a batch axis, and functions reduce over the last axis only.
Everything is torch (so that autograd can differentiate it), float64 by default, so that
identities hold to 1e-10 rather than 1e-4.

Two models:

* :class:`LinearGaussianLVM` (probabilistic PCA): ``z ~ N(0, I_d)``, ``x|z ~ N(W z + b, s^2 I_D)``.
  Its evidence and posterior are Gaussian and known in closed form, so every identity of the
  slides can be checked to machine precision.
* :class:`TanhDecoderLVM`: the same prior with a one-hidden-layer ``tanh`` decoder. Its
  posterior has no closed form; for ``d <= 2`` its evidence, ELBO and ``D_KL(q || p(z|x))`` are
  computed by quadrature on a latent grid (methods of :class:`GaussianDecoderLVM`).

Per-datapoint VI (slide "Maximum likelihood"): :func:`vi_gradient_step` and
:func:`fit_per_datapoint_vi`, gradient ascent on every ``mu_i`` and ``log sigma_i``;
:func:`ml_gradient_step`, one step of the slides' loop that also learns the model's parameters
``theta = (W, b, log s)`` by ascending the ELBO; :func:`ppca_maximum_likelihood`, the closed-form
maximum-likelihood ``theta`` it is compared with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = [
    "LOG_2PI",
    "GaussianDecoderLVM",
    "LinearGaussianLVM",
    "TanhDecoderLVM",
    "elbo_monte_carlo",
    "fit_per_datapoint_vi",
    "gaussian_entropy",
    "gaussian_kl",
    "gaussian_log_prob",
    "log_mean_exp",
    "ml_gradient_step",
    "ppca_maximum_likelihood",
    "sample_gaussian",
    "vi_gradient_step",
]

LOG_2PI = math.log(2.0 * math.pi)
DTYPE = torch.float64

ElboFn = Callable[[Tensor, Tensor], Tensor]
LogJoint = Callable[[Tensor, Tensor], Tensor]


def _t(value) -> Tensor:
    """A float64 tensor view of a number, numpy array or tensor (float64 kept, others cast)."""
    return torch.as_tensor(value, dtype=DTYPE)


# --------------------------------------------------------------------------- Gaussian algebra


def gaussian_log_prob(z: Tensor, mu: Tensor, log_std: Tensor) -> Tensor:
    """``log N(z; mu, diag(sigma^2))`` summed over the last axis; shapes broadcast.

    z, mu, log_std: (..., d). Returns (...).
    """
    z, mu, log_std = _t(z), _t(mu), _t(log_std)
    return (-0.5 * ((z - mu) / torch.exp(log_std)) ** 2 - log_std - 0.5 * LOG_2PI).sum(-1)


def gaussian_entropy(log_std: Tensor) -> Tensor:
    """Entropy ``H(q) = -E_q[log q(z)] = sum_j (1/2 log(2 pi e) + log sigma_j)`` (slide "Entropy").

    It does not depend on the mean. log_std: (..., d). Returns (...).
    """
    return (0.5 * (LOG_2PI + 1.0) + _t(log_std)).sum(-1)


def gaussian_kl(mu_q: Tensor, log_std_q: Tensor, mu_p: Tensor, log_std_p: Tensor) -> Tensor:
    """``D_KL(q || p) = E_{z~q}[log q(z) - log p(z)]`` for diagonal Gaussians (slide "KL-Divergence").

    Per dimension: ``log(sigma_p/sigma_q) + (sigma_q^2 + (mu_q - mu_p)^2) / (2 sigma_p^2) - 1/2``,
    summed over the last axis. All inputs (..., d), broadcast. Returns (...).
    """
    mu_q, log_std_q, mu_p, log_std_p = _t(mu_q), _t(log_std_q), _t(mu_p), _t(log_std_p)
    var_ratio = torch.exp(2.0 * (log_std_q - log_std_p))  # sigma_q^2 / sigma_p^2
    mahalanobis = ((mu_q - mu_p) / torch.exp(log_std_p)) ** 2
    return (log_std_p - log_std_q + 0.5 * (var_ratio + mahalanobis) - 0.5).sum(-1)


def sample_gaussian(
    mu: Tensor, log_std: Tensor, n_samples: int, generator: torch.Generator | None = None
) -> Tensor:
    """Reparameterized samples ``z = mu + sigma * eps``, ``eps ~ N(0, I)``: (n_samples, *mu.shape)."""
    mu, log_std = torch.broadcast_tensors(_t(mu), _t(log_std))
    eps = torch.randn((n_samples, *mu.shape), generator=generator, dtype=DTYPE)
    return mu + torch.exp(log_std) * eps


def log_mean_exp(a: Tensor, dim: int = 0) -> Tensor:
    """``log(mean(exp(a)))`` along ``dim``, computed stably."""
    return torch.logsumexp(a, dim=dim) - math.log(a.shape[dim])


def elbo_monte_carlo(
    log_joint: LogJoint, x: Tensor, mu: Tensor, log_std: Tensor, eps: Tensor
) -> Tensor:
    """Monte Carlo ELBO with the entropy in closed form (reference of Exercise 1.3).

    ``L_i ≈ 1/S sum_s [log p(x_i | z_s) + log p(z_s)] + H(q_i)``, ``z_s = mu_i + sigma_i * eps_s``.

    log_joint: ``(x (..., D), z (S, ..., d)) -> (S, ...)``, i.e. log p(x|z) + log p(z).
    x: (N, D); mu, log_std: (N, d); eps: (S, N, d) standard-normal noise. Returns (N,).
    """
    mu, log_std = _t(mu), _t(log_std)
    z = mu + torch.exp(log_std) * _t(eps)  # (S, N, d)
    return log_joint(x, z).mean(dim=0) + gaussian_entropy(log_std)


# ----------------------------------------------------------------- per-datapoint inference


def vi_gradient_step(
    elbo_fn: ElboFn, mu: Tensor, log_std: Tensor, lr: float
) -> tuple[Tensor, Tensor]:
    """One step of gradient *ascent* on ``sum_i L_i`` w.r.t. every ``mu_i`` and ``log sigma_i``.

    Reference of Exercise 1.4 (slide "Maximum likelihood": "use gradient ascent on mu_i, sigma_i").
    sigma is parameterized by its log, so it stays positive whatever the step.
    elbo_fn: ``(mu (N, d), log_std (N, d)) -> (N,)``. Returns detached (mu, log_std), (N, d) each.
    """
    mu = _t(mu).detach().requires_grad_(True)
    log_std = _t(log_std).detach().requires_grad_(True)
    grad_mu, grad_log_std = torch.autograd.grad(elbo_fn(mu, log_std).sum(), [mu, log_std])
    return (mu + lr * grad_mu).detach(), (log_std + lr * grad_log_std).detach()


def fit_per_datapoint_vi(
    elbo_fn: ElboFn,
    mu: Tensor,
    log_std: Tensor,
    *,
    n_steps: int,
    lr: float,
    decay: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """Run ``n_steps`` of :func:`vi_gradient_step` with step size ``lr / (1 + decay * t)``.

    A decaying step size (Robbins-Monro) lets a noisy Monte Carlo ELBO converge.
    mu, log_std: initial values (N, d). Returns the final (mu, log_std).
    """
    for t in range(n_steps):
        mu, log_std = vi_gradient_step(elbo_fn, mu, log_std, lr / (1.0 + decay * t))
    return mu, log_std


def ml_gradient_step(
    x: Tensor,
    W: Tensor,
    b: Tensor,
    log_s: Tensor,
    mu: Tensor,
    log_std: Tensor,
    eps: Tensor,
    lr_theta: float,
    lr_q: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """One step of the slides' maximum-likelihood loop on the linear-Gaussian model (Exercise 1.5).

    ``theta = (W, b, log s)`` of ``x|z ~ N(W z + b, s^2 I_D)`` ascends on the average ELBO
    ``1/N sum_i L_i(p_theta, q_i)`` with step ``lr_theta``; every ``q_i = N(mu_i, sigma_i)``
    ascends on its own ``L_i`` (the gradient of the sum) with step ``lr_q``; both gradients are
    taken at the current values. ``L_i`` is :func:`elbo_monte_carlo` with the noise ``eps``.
    x: (N, D); W: (D, d); b: (D,); log_s: (); mu, log_std: (N, d); eps: (S, N, d).
    Returns the detached (W, b, log_s, mu, log_std).
    """
    theta = [_t(v).detach().requires_grad_(True) for v in (W, b, log_s)]
    q = [_t(v).detach().requires_grad_(True) for v in (mu, log_std)]
    W, b, log_s = theta
    data_dim = W.shape[0]

    def log_joint(x: Tensor, z: Tensor) -> Tensor:  # log p_theta(x|z) + log p(z): (S, N)
        residual = _t(x) - z @ W.T - b
        log_lik = -0.5 * (residual**2).sum(-1) * torch.exp(-2.0 * log_s)
        log_lik = log_lik - data_dim * (log_s + 0.5 * LOG_2PI)
        return log_lik + gaussian_log_prob(z, torch.zeros_like(z), torch.zeros_like(z))

    elbo = elbo_monte_carlo(log_joint, x, *q, eps)  # (N,)
    grads_theta = torch.autograd.grad(elbo.mean(), theta, retain_graph=True)
    grads_q = torch.autograd.grad(elbo.sum(), q)
    new_theta = [(p + lr_theta * g).detach() for p, g in zip(theta, grads_theta, strict=True)]
    new_q = [(p + lr_q * g).detach() for p, g in zip(q, grads_q, strict=True)]
    return (*new_theta, *new_q)  # type: ignore[return-value]


def ppca_maximum_likelihood(x: Tensor, latent_dim: int) -> LinearGaussianLVM:
    """The closed-form maximum-likelihood linear-Gaussian model (Tipping and Bishop, 1999).

    With the sample covariance ``C = 1/N sum_i (x_i - b)(x_i - b)^T``, ``b`` the sample mean,
    and its eigenvalues ``l_1 >= ... >= l_D`` with eigenvectors ``U``: ``s^2`` is the mean of
    the ``D - d`` smallest eigenvalues and ``W = U_d (diag(l_1..l_d) - s^2 I)^{1/2}``, unique up
    to a rotation ``W R`` (which leaves ``p(x)`` unchanged). x: (N, D), N > D > latent_dim.
    """
    x = _t(x)
    b = x.mean(0)
    centred = x - b
    eigenvalues, vectors = torch.linalg.eigh(centred.T @ centred / x.shape[0])
    eigenvalues, vectors = eigenvalues.flip(0), vectors.flip(1)  # largest first
    noise_var = eigenvalues[latent_dim:].mean()
    W = vectors[:, :latent_dim] * (eigenvalues[:latent_dim] - noise_var).clamp_min(0.0).sqrt()
    return LinearGaussianLVM(W, b, float(noise_var.sqrt()))


# ------------------------------------------------------------------------------- models


class GaussianDecoderLVM:
    """``z ~ N(0, I_d)``, ``x | z ~ N(f(z), s^2 I_D)``; subclasses define the decoder mean ``f``.

    Shapes: x (..., D) and z (..., d) broadcast over their leading axes; log-densities are (...).
    """

    latent_dim: int
    data_dim: int
    noise_std: float

    def decoder_mean(self, z: Tensor) -> Tensor:
        """``f(z)``: (..., d) -> (..., D)."""
        raise NotImplementedError

    def log_prior(self, z: Tensor) -> Tensor:
        """``log p(z)``, the standard normal prior."""
        z = _t(z)
        return gaussian_log_prob(z, torch.zeros_like(z), torch.zeros_like(z))

    def log_likelihood(self, x: Tensor, z: Tensor) -> Tensor:
        """``log p(x|z) = log N(x; f(z), s^2 I_D)``."""
        mean = self.decoder_mean(_t(z))
        x = _t(x)
        return gaussian_log_prob(x, mean, torch.full_like(mean, math.log(self.noise_std)))

    def log_joint(self, x: Tensor, z: Tensor) -> Tensor:
        """``log p(x, z) = log p(x|z) + log p(z)``, the integrand of the ELBO."""
        return self.log_likelihood(x, z) + self.log_prior(z)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Ancestral sampling: ``z ~ p(z)``, then ``x ~ p(x|z)``. Returns x (n, D), z (n, d)."""
        z = torch.randn((n, self.latent_dim), generator=generator, dtype=DTYPE)
        noise = torch.randn((n, self.data_dim), generator=generator, dtype=DTYPE)
        return self.decoder_mean(z) + self.noise_std * noise, z

    def latent_grid(self, n_points: int = 2001, limit: float = 9.0) -> tuple[Tensor, float]:
        """A regular grid on ``[-limit, limit]^d`` (d <= 2): points (n_points**d, d), log cell volume."""
        if self.latent_dim > 2:
            raise ValueError(
                f"a latent grid is only practical for d <= 2, got d = {self.latent_dim}"
            )
        axis = torch.linspace(-limit, limit, n_points, dtype=DTYPE)
        mesh = torch.meshgrid(*([axis] * self.latent_dim), indexing="ij")
        grid = torch.stack([m.reshape(-1) for m in mesh], dim=-1)
        return grid, self.latent_dim * math.log(float(axis[1] - axis[0]))

    def log_evidence_grid(self, x: Tensor, n_points: int = 2001, limit: float = 9.0) -> Tensor:
        """``log p(x) = log ∫ p(x|z) p(z) dz`` by the rectangle rule on :meth:`latent_grid`.

        The integrand is smooth with Gaussian tails, so the rule converges very fast: with the
        defaults it is exact to ~1e-10 when the posterior is wider than a few grid cells.
        x: (..., D). Returns (...).
        """
        grid, log_cell = self.latent_grid(n_points, limit)
        log_joint = self.log_joint(_t(x)[..., None, :], grid)  # (..., G)
        return torch.logsumexp(log_joint, dim=-1) + log_cell

    def log_evidence(self, x: Tensor) -> Tensor:
        """``log p(x)``; by default on a grid (d <= 2). Subclasses with a closed form override it."""
        return self.log_evidence_grid(x)

    def elbo_grid(
        self, x: Tensor, mu: Tensor, log_std: Tensor, n_points: int = 2001, limit: float = 9.0
    ) -> Tensor:
        """The ELBO with ``E_q[log p(x, z)]`` by the rectangle rule on the grid (+ exact ``H(q)``).

        Deterministic and differentiable in mu and log_std; q's mass is renormalised on the grid,
        so q must be wider than a few grid cells. x: (N, D); mu, log_std: (N, d). Returns (N,).
        """
        grid, _ = self.latent_grid(n_points, limit)
        log_joint = self.log_joint(_t(x)[:, None, :], grid)  # (N, G)
        log_q = gaussian_log_prob(grid, _t(mu)[:, None, :], _t(log_std)[:, None, :])  # (N, G)
        return (torch.softmax(log_q, dim=-1) * log_joint).sum(-1) + gaussian_entropy(log_std)

    def kl_to_posterior_grid(
        self, x: Tensor, mu: Tensor, log_std: Tensor, n_points: int = 2001, limit: float = 9.0
    ) -> Tensor:
        """``D_KL(q || p(z|x))`` on the grid, with the posterior ``p(x, z) / p(x)`` normalised there.

        x: (N, D); mu, log_std: (N, d). Returns (N,). Needs q wider than a few grid cells.
        """
        grid, log_cell = self.latent_grid(n_points, limit)
        log_joint = self.log_joint(_t(x)[:, None, :], grid)  # (N, G)
        log_post = log_joint - torch.logsumexp(log_joint, dim=-1, keepdim=True) - log_cell
        log_q = gaussian_log_prob(grid, _t(mu)[:, None, :], _t(log_std)[:, None, :])  # (N, G)
        q_mass = torch.softmax(log_q, dim=-1)  # q(z) * cell volume, renormalised on the grid
        return (q_mass * (log_q - log_post)).sum(-1)


@dataclass(eq=False)
class LinearGaussianLVM(GaussianDecoderLVM):
    """``z ~ N(0, I_d)``, ``x | z ~ N(W z + b, s^2 I_D)``: everything in closed form.

    W: (D, d), b: (D,), noise_std: s > 0.
    Evidence ``p(x) = N(x; b, W W^T + s^2 I_D)``; posterior ``p(z|x) = N(m(x), Sigma)`` with
    precision ``Sigma^{-1} = I_d + W^T W / s^2`` and mean ``m(x) = Sigma W^T (x - b) / s^2``.
    If W's columns are orthogonal, ``W^T W`` is diagonal and so is the posterior covariance.
    """

    W: Tensor
    b: Tensor
    noise_std: float

    def __post_init__(self) -> None:
        self.W, self.b, self.noise_std = _t(self.W), _t(self.b), float(self.noise_std)

    @classmethod
    def random(
        cls,
        latent_dim: int,
        data_dim: int,
        noise_std: float = 0.5,
        *,
        orthogonal: bool = False,
        seed: int = 0,
    ) -> LinearGaussianLVM:
        """Random W (standard-normal entries, or orthogonal columns with norms in [0.5, 2]) and b."""
        gen = torch.Generator().manual_seed(seed)
        W = torch.randn((data_dim, latent_dim), generator=gen, dtype=DTYPE)
        if orthogonal:
            if latent_dim > data_dim:
                raise ValueError("orthogonal columns need latent_dim <= data_dim")
            Q, _ = torch.linalg.qr(W)
            W = Q * (0.5 + 1.5 * torch.rand(latent_dim, generator=gen, dtype=DTYPE))
        b = 0.5 * torch.randn(data_dim, generator=gen, dtype=DTYPE)
        return cls(W, b, noise_std)

    @property
    def latent_dim(self) -> int:  # type: ignore[override]
        return self.W.shape[1]

    @property
    def data_dim(self) -> int:  # type: ignore[override]
        return self.W.shape[0]

    def decoder_mean(self, z: Tensor) -> Tensor:
        return _t(z) @ self.W.T + self.b

    def log_evidence(self, x: Tensor) -> Tensor:
        """Exact ``log p(x) = log N(x; b, W W^T + s^2 I_D)``. x: (..., D). Returns (...)."""
        cov = self.W @ self.W.T + self.noise_std**2 * torch.eye(self.data_dim, dtype=DTYPE)
        return torch.distributions.MultivariateNormal(self.b, covariance_matrix=cov).log_prob(_t(x))

    def posterior_precision(self) -> Tensor:
        """``Sigma^{-1} = I_d + W^T W / s^2`` (the same for every x): (d, d)."""
        return torch.eye(self.latent_dim, dtype=DTYPE) + self.W.T @ self.W / self.noise_std**2

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Exact posterior ``p(z|x) = N(mean, cov)`` (Bayes' rule): mean (..., d), cov (d, d)."""
        cov = torch.linalg.inv(self.posterior_precision())
        mean = ((_t(x) - self.b) @ self.W / self.noise_std**2) @ cov
        return mean, cov

    def posterior_log_prob(self, z: Tensor, x: Tensor) -> Tensor:
        """``log p(z|x)``; z (..., d) and x (..., D) broadcast. Returns (...)."""
        mean, cov = self.posterior(x)
        return torch.distributions.MultivariateNormal(mean, covariance_matrix=cov).log_prob(_t(z))

    def expected_log_joint(self, x: Tensor, mu: Tensor, log_std: Tensor) -> Tensor:
        """``E_{z~q}[log p(x|z) + log p(z)]`` in closed form for ``q = N(mu, diag sigma^2)``.

        With residual ``r = x - W mu - b`` and ``E_q[z z^T] = mu mu^T + diag(sigma^2)``:
        ``E_q log p(x|z) = -D/2 log(2 pi s^2) - (|r|^2 + sum_j sigma_j^2 |W_j|^2) / (2 s^2)``,
        ``E_q log p(z) = -d/2 log(2 pi) - (|mu|^2 + sum_j sigma_j^2) / 2``.
        x: (..., D); mu, log_std: (..., d). Returns (...).
        """
        x, mu, log_std = _t(x), _t(mu), _t(log_std)
        s2 = self.noise_std**2
        var = torch.exp(2.0 * log_std)
        residual = x - self.decoder_mean(mu)
        column_norms = (self.W**2).sum(0)  # |W_j|^2, (d,)
        e_lik = -0.5 * self.data_dim * math.log(2 * math.pi * s2) - (
            (residual**2).sum(-1) + (var * column_norms).sum(-1)
        ) / (2 * s2)
        e_prior = -0.5 * self.latent_dim * LOG_2PI - 0.5 * ((mu**2).sum(-1) + var.sum(-1))
        return e_lik + e_prior

    def elbo(self, x: Tensor, mu: Tensor, log_std: Tensor) -> Tensor:
        """Exact ``L(p, q) = E_q[log p(x|z) + log p(z)] + H(q)``. Returns (...)."""
        return self.expected_log_joint(x, mu, log_std) + gaussian_entropy(log_std)

    def kl_to_posterior(self, x: Tensor, mu: Tensor, log_std: Tensor) -> Tensor:
        """Exact ``D_KL(q || p(z|x))`` for diagonal q and the full-covariance posterior.

        ``1/2 [tr(Sigma^{-1} diag sigma^2) + (m - mu)^T Sigma^{-1} (m - mu) - d
        - log det Sigma^{-1} - sum_j log sigma_j^2]``. Returns (...).
        """
        mu, log_std = _t(mu), _t(log_std)
        precision = self.posterior_precision()
        mean, _ = self.posterior(x)
        diff = mean - mu
        trace = (torch.diagonal(precision) * torch.exp(2.0 * log_std)).sum(-1)
        quad = ((diff @ precision) * diff).sum(-1)
        logdet_precision = torch.linalg.slogdet(precision)[1]
        return 0.5 * (trace + quad - self.latent_dim - logdet_precision - 2.0 * log_std.sum(-1))


@dataclass(eq=False)
class TanhDecoderLVM(GaussianDecoderLVM):
    """``z ~ N(0, I_d)``, ``x | z ~ N(W1 tanh(W0 z + c0) + b, s^2 I_D)``: no closed-form posterior.

    W0: (H, d), c0: (H,), W1: (D, H), b: (D,). For d <= 2, ``log p(x)`` and
    ``D_KL(q || p(z|x))`` are computed by quadrature on a latent grid.
    """

    W0: Tensor
    c0: Tensor
    W1: Tensor
    b: Tensor
    noise_std: float

    def __post_init__(self) -> None:
        self.W0, self.c0, self.W1, self.b = (_t(v) for v in (self.W0, self.c0, self.W1, self.b))
        self.noise_std = float(self.noise_std)

    @classmethod
    def random(
        cls,
        latent_dim: int,
        data_dim: int,
        hidden: int = 8,
        noise_std: float = 0.3,
        *,
        scale: float = 2.0,
        seed: int = 0,
    ) -> TanhDecoderLVM:
        """Random weights; ``scale`` sets how steep (how non-linear) the hidden units are."""
        gen = torch.Generator().manual_seed(seed)
        W0 = scale * torch.randn((hidden, latent_dim), generator=gen, dtype=DTYPE)
        c0 = torch.randn(hidden, generator=gen, dtype=DTYPE)
        W1 = torch.randn((data_dim, hidden), generator=gen, dtype=DTYPE) / math.sqrt(hidden)
        b = 0.5 * torch.randn(data_dim, generator=gen, dtype=DTYPE)
        return cls(W0, c0, W1, b, noise_std)

    @property
    def latent_dim(self) -> int:  # type: ignore[override]
        return self.W0.shape[1]

    @property
    def data_dim(self) -> int:  # type: ignore[override]
        return self.W1.shape[0]

    def decoder_mean(self, z: Tensor) -> Tensor:
        return torch.tanh(_t(z) @ self.W0.T + self.c0) @ self.W1.T + self.b
