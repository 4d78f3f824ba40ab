"""Gradient estimators for J(phi) = E_{z ~ q_phi}[r(z)]: score function and reparameterization.

Slides "How to calculate ∇φ L_i" and "Reparameterization" (amortized variational inference).
Writing r(x_i, z) = log p_theta(x_i | z) + log p(z) for one datapoint x_i (dropped from the
notation here), the part of the ELBO whose gradient is hard is

    J(phi) = E_{z ~ q_phi(z)}[r(z)].

* **Score function** (policy gradient, REINFORCE, "log-derivative trick")::

      ∇φ J ≈ 1/M Σ_j ∇φ log q_φ(z_j) r(z_j),        z_j ~ q_φ

  works for discrete and continuous z, needs only log q_φ and values of r; high variance.
* **Reparameterization** (pathwise)::

      z = μ_φ + ε σ_φ,  ε ~ N(0, I),   ∇φ J ≈ 1/M Σ_j ∇φ r(μ_φ + ε_j σ_φ)

  needs z to be a differentiable function of φ and the noise, and r to be differentiable;
  low variance.

Conventions: q_φ = N(mu, diag(exp(log_std))^2), φ = (mu, log_std), both torch tensors of
shape (d,); the standard-normal noise ``eps`` of shape (M, d) is an *input*, so that both
estimators (and a student's version) can be evaluated on the same noise; ``r`` maps a batch
z of shape (M, d) to rewards of shape (M,). For the discrete case q_φ(k) = softmax(logits)_k
over K categories, ``rewards`` is a table of shape (K,) and ``k`` an int64 tensor of M
samples. Every gradient is returned with the shape of the parameter it belongs to.
:func:`gradient_statistics` measures any estimator over repeated independent draws.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

__all__ = [
    "QuadraticReward",
    "Reward",
    "categorical_exact_gradient",
    "categorical_score_gradient",
    "categorical_score_gradient_loo",
    "gaussian_sample",
    "gradient_statistics",
    "reparam_gradient",
    "repeat_categorical_estimator",
    "repeat_gaussian_estimator",
    "score_function_gradient",
    "score_function_gradient_autograd",
]

Reward = Callable[[torch.Tensor], torch.Tensor]  # z (M, d) -> r(z) (M,)
GaussianEstimator = Callable[
    [Reward, torch.Tensor, torch.Tensor, torch.Tensor], "tuple[torch.Tensor, torch.Tensor]"
]
CategoricalEstimator = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class QuadraticReward:
    """r(z) = -1/2 (z - c)^T A (z - c), a reward whose Gaussian expectation is analytic.

    With d = 1 and A = 2 this is the toy reward r(z) = -(z - c)^2. For
    q = N(mu, diag(sigma^2)) (sigma = exp(log_std)):

        E_q[r]            = -1/2 [(mu - c)^T A (mu - c) + Σ_k A_kk sigma_k^2]
        ∇_mu E_q[r]       = -A_sym (mu - c)                 A_sym = (A + A^T) / 2
        ∇_log_std E_q[r]  = -A_kk sigma_k^2         (chain rule: d sigma / d log_std = sigma)

    A: (d, d), c: (d,); float64 tensors (A need not be symmetric; only its symmetric part matters).
    """

    def __init__(self, A: torch.Tensor, c: torch.Tensor) -> None:
        self.A = torch.as_tensor(A, dtype=torch.float64)
        self.c = torch.as_tensor(c, dtype=torch.float64)
        d = self.c.shape[-1]
        if self.c.shape != (d,) or self.A.shape != (d, d):
            raise ValueError(
                f"A must be (d, d) and c (d,), got {tuple(self.A.shape)} and {tuple(self.c.shape)}"
            )

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """Rewards of a batch: z (..., d) -> (...)."""
        diff = z - self.c
        return -0.5 * torch.einsum("...i,ij,...j->...", diff, self.A, diff)

    def expectation(self, mu: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
        """E_{z ~ N(mu, diag(exp(log_std)^2))}[r(z)], a scalar tensor (differentiable)."""
        diff = mu - self.c
        spread = (torch.diagonal(self.A) * torch.exp(2 * log_std)).sum()
        return -0.5 * (diff @ self.A @ diff + spread)

    def gradient(
        self, mu: torch.Tensor, log_std: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The exact (∇_mu, ∇_log_std) of :meth:`expectation`, each of shape (d,)."""
        a_sym = 0.5 * (self.A + self.A.T)
        return -a_sym @ (mu - self.c), -torch.diagonal(self.A) * torch.exp(2 * log_std)

    def __repr__(self) -> str:
        return f"QuadraticReward(A={self.A.tolist()}, c={self.c.tolist()})"


def gaussian_sample(mu: torch.Tensor, log_std: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """z = mu + eps * exp(log_std): samples of N(mu, diag(sigma^2)) from noise eps, (M, d)."""
    return mu + eps * torch.exp(log_std)


def score_function_gradient(
    r: Reward, mu: torch.Tensor, log_std: torch.Tensor, eps: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Score-function estimate 1/M Σ_j ∇φ log q_φ(z_j) r(z_j) (slide "How to calculate ∇φ L_i").

    The samples z_j = mu + eps_j * sigma are treated as fixed numbers; only log q_φ is
    differentiated, with the analytic Gaussian scores

        ∇_mu log q(z)      = (z - mu) / sigma^2        = eps / sigma
        ∇_log_std log q(z) = (z - mu)^2 / sigma^2 - 1  = eps^2 - 1

    r: z (M, d) -> (M,); mu, log_std: (d,); eps: (M, d) standard-normal noise.
    Returns (grad_mu, grad_log_std), each (d,).
    """
    with torch.no_grad():
        std = torch.exp(log_std)
        rewards = r(mu + eps * std)[:, None]  # (M, 1)
        return (rewards * eps / std).mean(0), (rewards * (eps**2 - 1)).mean(0)


def score_function_gradient_autograd(
    r: Reward, mu: torch.Tensor, log_std: torch.Tensor, eps: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same estimator as :func:`score_function_gradient`, through autograd.

    Differentiates the "surrogate" 1/M Σ_j log q_φ(z_j) r(z_j) with z_j and r(z_j) held
    constant (the way policy-gradient code is usually written); works for any q with a
    ``log_prob``. Same shapes as :func:`score_function_gradient`.
    """
    mu = mu.detach().requires_grad_(True)
    log_std = log_std.detach().requires_grad_(True)
    with torch.no_grad():
        z = gaussian_sample(mu, log_std, eps)
        rewards = r(z)
    log_q = torch.distributions.Normal(mu, torch.exp(log_std)).log_prob(z).sum(-1)  # (M,)
    surrogate = (log_q * rewards).mean()
    grad_mu, grad_log_std = torch.autograd.grad(surrogate, (mu, log_std))
    return grad_mu, grad_log_std


def reparam_gradient(
    r: Reward, mu: torch.Tensor, log_std: torch.Tensor, eps: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reparameterization estimate 1/M Σ_j ∇φ r(mu + eps_j sigma) (slide "Reparameterization").

    z = mu + eps * exp(log_std) is a differentiable function of φ = (mu, log_std), so
    autograd carries the gradient of r through z: ∇_mu = ∇_z r, ∇_log_std = ∇_z r * eps * sigma.

    r: differentiable torch function z (M, d) -> (M,); mu, log_std: (d,); eps: (M, d).
    Returns (grad_mu, grad_log_std), each (d,).
    """
    mu = mu.detach().requires_grad_(True)
    log_std = log_std.detach().requires_grad_(True)
    objective = r(gaussian_sample(mu, log_std, eps)).mean()
    grad_mu, grad_log_std = torch.autograd.grad(objective, (mu, log_std))
    return grad_mu, grad_log_std


def categorical_exact_gradient(rewards: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """∇_logits Σ_k q(k) r(k) for q = softmax(logits), by enumeration: q ⊙ (r - E_q[r]).

    (∂q(k)/∂logits_l = q(k) (1[k = l] - q(l)).) rewards, logits: (K,). Returns (K,).
    """
    q = torch.softmax(logits, dim=-1)
    return q * (rewards - (q * rewards).sum())


def _categorical_scores(logits: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """∇_logits log softmax(logits)_k = e_k - softmax(logits), one row per sample: (M, K)."""
    q = torch.softmax(logits, dim=-1)
    return torch.nn.functional.one_hot(k, logits.shape[-1]).to(q.dtype) - q


def categorical_score_gradient(
    rewards: torch.Tensor, logits: torch.Tensor, k: torch.Tensor
) -> torch.Tensor:
    """Score-function estimate 1/M Σ_j r(k_j) ∇_logits log q(k_j) for q = softmax(logits).

    rewards: (K,) reward table; logits: (K,); k: int64 samples (M,) from q. Returns (K,).
    """
    return (rewards[k][:, None] * _categorical_scores(logits, k)).mean(0)


def categorical_score_gradient_loo(
    rewards: torch.Tensor, logits: torch.Tensor, k: torch.Tensor
) -> torch.Tensor:
    """Score function with the leave-one-out baseline (needs M >= 2):

        1/M Σ_j (r(k_j) - b_j) ∇ log q(k_j),   b_j = 1/(M-1) Σ_{i≠j} r(k_i).

    b_j does not depend on k_j, and E[∇ log q] = 0, so the estimate stays unbiased.
    Same shapes as :func:`categorical_score_gradient`.
    """
    m = k.shape[0]
    if m < 2:
        raise ValueError("the leave-one-out baseline needs at least M = 2 samples")
    r = rewards[k]
    baseline = (r.sum() - r) / (m - 1)
    return ((r - baseline)[:, None] * _categorical_scores(logits, k)).mean(0)


def repeat_gaussian_estimator(
    estimator: GaussianEstimator,
    r: Reward,
    mu: torch.Tensor,
    log_std: torch.Tensor,
    *,
    n_samples: int,
    n_reps: int,
    seed: int = 0,
) -> np.ndarray:
    """Run ``estimator`` on ``n_reps`` independent noise draws of shape (n_samples, d).

    The noise comes from a generator seeded with ``seed``, so two estimators called with the
    same seed see the same noise. Returns the estimates as a float64 array (n_reps, 2, d):
    [:, 0] the gradients w.r.t. mu, [:, 1] w.r.t. log_std.
    """
    generator = torch.Generator().manual_seed(seed)
    out = np.empty((n_reps, 2, mu.shape[-1]))
    for rep in range(n_reps):
        eps = torch.randn(n_samples, mu.shape[-1], generator=generator, dtype=torch.float64)
        grad_mu, grad_log_std = estimator(r, mu, log_std, eps)
        out[rep, 0] = torch.as_tensor(grad_mu).detach().cpu().numpy()
        out[rep, 1] = torch.as_tensor(grad_log_std).detach().cpu().numpy()
    return out


def repeat_categorical_estimator(
    estimator: CategoricalEstimator,
    rewards: torch.Tensor,
    logits: torch.Tensor,
    *,
    n_samples: int,
    n_reps: int,
    seed: int = 0,
) -> np.ndarray:
    """Run ``estimator(rewards, logits, k)`` on ``n_reps`` independent draws of M = n_samples
    categories k ~ softmax(logits). Same seed, same draws. Returns a float64 array (n_reps, K).
    """
    generator = torch.Generator().manual_seed(seed)
    probs = torch.softmax(logits, dim=-1)
    out = np.empty((n_reps, logits.shape[-1]))
    for rep in range(n_reps):
        k = torch.multinomial(probs, n_samples, replacement=True, generator=generator)
        out[rep] = torch.as_tensor(estimator(rewards, logits, k)).detach().cpu().numpy()
    return out


def gradient_statistics(
    estimator: Callable[[torch.Tensor], torch.Tensor | tuple[torch.Tensor, ...]],
    noise: torch.Tensor,
    exact: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean, standard error and variance of a gradient estimator, per parameter.

    ``estimator(draw)`` maps one draw of the randomness (``noise[n]``: the (M, d) Gaussian noise
    of M samples, or M int64 categories) to one gradient estimate: a tensor, or a tuple of
    tensors such as (grad_mu, grad_log_std), flattened and concatenated in order into P numbers.
    ``noise``: N >= 2 independent draws along its first axis. ``exact``: the exact gradient,
    P numbers in the same order. Returns four float64 tensors of shape (P,):

    * ``mean``: the average of the N estimates;
    * ``std_error``: the standard error of that mean, sqrt(variance / N);
    * ``variance``: the sample variance of one estimate (divided by N - 1);
    * ``z``: |mean - exact| / std_error, how many standard errors the mean is off (a few at most
      for an unbiased estimator; inf for an estimator that is deterministic and wrong).
    """
    rows = []
    for draw in noise:
        estimate = estimator(draw)
        parts = estimate if isinstance(estimate, (tuple, list)) else (estimate,)
        rows.append(torch.cat([torch.as_tensor(p).detach().double().reshape(-1) for p in parts]))
    estimates = torch.stack(rows)  # (N, P)
    mean = estimates.mean(0)
    variance = estimates.var(0, correction=1)
    std_error = (variance / len(estimates)).sqrt()
    z = (mean - torch.as_tensor(exact, dtype=torch.float64).reshape(-1)).abs() / std_error
    return mean, std_error, variance, z
