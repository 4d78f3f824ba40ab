"""Networks of soft Q-learning and Soft Actor-Critic (slides: Q_phi, V_psi, Q_theta, pi_phi).

Shapes: B is the batch size, ``obs_dim`` the observation size, ``act_dim`` the action size
(continuous) and ``n_actions`` the number of actions (discrete).

* :func:`mlp`: the multi-layer perceptron every network below is made of.
* :class:`QNetwork`: Q(s, .) for discrete actions, one output per action.
* :class:`BoltzmannPolicy`: the soft-optimal policy of a Q-network,
  pi(a|s) = exp((Q(s,a) - V(s)) / alpha).
* :class:`TwinQNetwork`: two independent critics Q_theta1(s, a), Q_theta2(s, a).
* :class:`ValueNetwork`: the state value V_psi(s).
* :class:`SquashedGaussianPolicy`: SAC's actor, a = tanh(u) (rescaled to the action
  bounds) with u ~ N(mu(s), sigma(s)^2), sampled with the reparameterisation trick.

Every policy has ``act(obs, deterministic)`` taking a (B, obs_dim) tensor, which is what
:func:`course_utils.rl.evaluate` calls.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal

from .losses import boltzmann_sample
import itertools

__all__ = [
    "BoltzmannPolicy",
    "QNetwork",
    "SquashedGaussianPolicy",
    "TwinQNetwork",
    "ValueNetwork",
    "mlp",
]


def mlp(
    in_dim: int,
    out_dim: int,
    hidden_sizes: tuple[int, ...] = (256, 256),
    activation: type[nn.Module] = nn.ReLU,
) -> nn.Sequential:
    """Linear -> activation -> ... -> Linear, with ``len(hidden_sizes)`` hidden layers."""
    sizes = [in_dim, *hidden_sizes]
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [nn.Linear(n_in, n_out), activation()]
    layers.append(nn.Linear(sizes[-1], out_dim))
    return nn.Sequential(*layers)


class QNetwork(nn.Module):
    """Q_phi(s, .) for a discrete action space: (B, obs_dim) -> (B, n_actions)."""

    def __init__(self, obs_dim: int, n_actions: int, hidden_sizes: tuple[int, ...] = (64, 64)):
        super().__init__()
        self.net = mlp(obs_dim, n_actions, hidden_sizes)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)


class BoltzmannPolicy(nn.Module):
    """The policy of soft Q-learning: pi(a|s) = exp((Q(s,a) - V(s)) / alpha).

    ``alpha = 0`` is the hard-max limit, the greedy policy. Wraps (does not copy) ``q_net``.
    """

    def __init__(self, q_net: QNetwork, alpha: float):
        super().__init__()
        self.q_net = q_net
        self.alpha = float(alpha)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        """Actions (B,): argmax_a Q(s, a) if ``deterministic``, else a sample of pi(.|s)."""
        q = self.q_net(obs)
        if deterministic or self.alpha == 0:
            return q.argmax(dim=-1)
        return boltzmann_sample(q, self.alpha)


class TwinQNetwork(nn.Module):
    """Two critics Q_theta1, Q_theta2 of (s, a), each (B, obs_dim), (B, act_dim) -> (B,).

    SAC uses the minimum of the two to counter the over-estimation that maximising a
    learned Q causes (the "clipped double-Q" trick of TD3, used by SAC's Algorithm 1).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes: tuple[int, ...] = (256, 256)):
        super().__init__()
        self.q1 = mlp(obs_dim + act_dim, 1, hidden_sizes)
        self.q2 = mlp(obs_dim + act_dim, 1, hidden_sizes)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([obs, action], dim=-1)  # (B, obs_dim + act_dim)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)


class ValueNetwork(nn.Module):
    """The state value V_psi(s): (B, obs_dim) -> (B,)."""

    def __init__(self, obs_dim: int, hidden_sizes: tuple[int, ...] = (256, 256)):
        super().__init__()
        self.net = mlp(obs_dim, 1, hidden_sizes)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)


class SquashedGaussianPolicy(nn.Module):
    """SAC's actor pi_phi(a|s): a Gaussian in an unbounded space, squashed by tanh.

    The network outputs mu(s) and log sigma(s) (clamped to ``log_std_bounds``);

        u = mu(s) + sigma(s) * eps,  eps ~ N(0, I)          (reparameterisation: a = f_phi(eps; s))
        a = center + scale * tanh(u)                         (squash into [low, high])

    and by the change-of-variables formula, summing over the action dimensions,

        log pi(a|s) = log N(u; mu, sigma) - sum_j log(1 - tanh(u_j)^2) - sum_j log scale_j.

    ``log(1 - tanh(u)^2)`` is computed as ``2 * (log 2 - u - softplus(-2u))``, which is exact
    and stays finite where tanh(u) rounds to +-1 (|u| > 9 in float32). The last term is a
    constant (zero for bounds [-1, 1]); with it, ``log_prob`` is the true density of the action
    the environment receives (the same as torch's ``TransformedDistribution`` with a
    ``TanhTransform`` and an ``AffineTransform``).
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        action_low: np.ndarray | float = -1.0,
        action_high: np.ndarray | float = 1.0,
        hidden_sizes: tuple[int, ...] = (256, 256),
        log_std_bounds: tuple[float, float] = (-20.0, 2.0),
    ):
        super().__init__()
        self.net = mlp(obs_dim, 2 * act_dim, hidden_sizes)  # mu and log sigma, side by side
        low = torch.as_tensor(action_low, dtype=torch.float32).expand(act_dim)
        high = torch.as_tensor(action_high, dtype=torch.float32).expand(act_dim)
        self.register_buffer("action_center", (high + low) / 2)  # (act_dim,)
        self.register_buffer("action_scale", (high - low) / 2)  # (act_dim,)
        self.log_std_min, self.log_std_max = log_std_bounds

    def distribution(self, obs: torch.Tensor) -> Normal:
        """The Gaussian N(mu(s), sigma(s)^2) over the pre-squash u, batch shape (B, act_dim)."""
        mean, log_std = self.net(obs).chunk(2, dim=-1)
        log_std = log_std.clamp(self.log_std_min, self.log_std_max)
        return Normal(mean, log_std.exp(), validate_args=False)

    def forward(
        self, obs: torch.Tensor, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised action (B, act_dim) and its log-probability log pi(a|s) (B,).

        Gradients flow from both outputs back into the policy's parameters. With
        ``deterministic=True`` the action is the squashed mean (log_prob is still that of u = mu).
        """
        dist = self.distribution(obs)
        u = dist.mean if deterministic else dist.rsample()  # (B, act_dim)
        log_prob = dist.log_prob(u).sum(-1) - self._log_det_jacobian(u)
        return self.action_center + self.action_scale * torch.tanh(u), log_prob

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """log pi(a|s) (B,) of given actions (B, act_dim) strictly inside the bounds."""
        y = ((action - self.action_center) / self.action_scale).clamp(-1 + 1e-6, 1 - 1e-6)
        u = torch.atanh(y)
        return self.distribution(obs).log_prob(u).sum(-1) - self._log_det_jacobian(u)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        """Actions (B, act_dim) for acting: the squashed mean, or a sample."""
        mean, log_std = self.net(obs).chunk(2, dim=-1)
        u = mean
        if not deterministic:
            std = log_std.clamp(self.log_std_min, self.log_std_max).exp()
            u = mean + std * torch.randn_like(mean)
        return self.action_center + self.action_scale * torch.tanh(u)

    def _log_det_jacobian(self, u: torch.Tensor) -> torch.Tensor:
        """sum_j log |d a_j / d u_j| = sum_j [log(1 - tanh(u_j)^2) + log scale_j], shape (B,)."""
        log_one_minus_tanh_sq = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
        return (log_one_minus_tanh_sq + torch.log(self.action_scale)).sum(-1)
