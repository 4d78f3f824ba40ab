"""The losses of soft Q-learning and Soft Actor-Critic, one small function each.

These are the reference versions of what the chapter 06-07 exercises ask for. Each takes
tensors (not networks), so it can be checked on a fixed batch against a hand computation.
B is the batch size; ``alpha`` is the temperature, a float or a 0-d tensor.

Soft Q-learning (slides, "Q-learning with soft optimality", "Soft DQN"):

    V(s') = alpha * log sum_a' exp(Q_phi'(s', a') / alpha)        soft max; alpha -> 0: max
    y     = r + gamma * (1 - terminated) * V(s')
    pi(a|s) = exp((Q(s, a) - V(s)) / alpha)

Soft Actor-Critic (slides, "Soft Actor-Critic", Algorithm 1; a~ ~ pi_phi(.|s) fresh):

    J_V(psi)   = E[ 1/2 (V_psi(s) - (min_i Q_theta_i(s, a~) - alpha log pi(a~|s)))^2 ]
    J_Q(theta) = E[ 1/2 (Q_theta(s, a) - (r + gamma (1 - terminated) V_psibar(s')))^2 ]
    J_pi(phi)  = E[ alpha log pi(a~|s) - min_i Q_theta_i(s, a~) ]      a~ reparameterised
    J(alpha)   = E[ -alpha (log pi(a~|s) + H_target) ]                    automatic temperature

Targets are always cut off from the graph (``.detach()``): a loss only trains the network
named in its subscript.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "boltzmann_probs",
    "boltzmann_sample",
    "polyak_update",
    "q_learning_loss",
    "sac_policy_loss",
    "sac_q_loss",
    "sac_value_loss",
    "sac_value_target",
    "soft_q_target",
    "soft_value",
    "temperature_loss",
]

Alpha = float | torch.Tensor


# ----------------------------------------------------------------------------------------
# Soft Q-learning (discrete actions)
# ----------------------------------------------------------------------------------------
def soft_value(q: torch.Tensor, alpha: Alpha) -> torch.Tensor:
    """V(s) = alpha * logsumexp(Q(s, .) / alpha) over the last axis: (..., A) -> (...).

    ``alpha = 0`` gives the hard max, the limit alpha -> 0.
    """
    if isinstance(alpha, (int, float)) and alpha == 0:
        return q.max(dim=-1).values
    return alpha * torch.logsumexp(q / alpha, dim=-1)


def soft_q_target(
    next_q: torch.Tensor,
    reward: torch.Tensor,
    terminated: torch.Tensor,
    gamma: float,
    alpha: Alpha,
) -> torch.Tensor:
    """The soft DQN target y = r + gamma * (1 - terminated) * alpha * logsumexp(Q'(s', .) / alpha).

    next_q (B, A) are the *target* network's values at s'; reward, terminated (B,).
    Returns (B,), detached. ``alpha = 0`` gives the DQN target r + gamma (1 - terminated) max Q'.
    """
    return (reward + gamma * (1.0 - terminated) * soft_value(next_q, alpha)).detach()


def boltzmann_probs(q: torch.Tensor, alpha: float) -> torch.Tensor:
    """pi(a|s) = exp((Q(s, a) - V(s)) / alpha): (..., A) -> (..., A), rows sum to one."""
    return torch.exp((q - soft_value(q, alpha).unsqueeze(-1)) / alpha)


def boltzmann_sample(q: torch.Tensor, alpha: float) -> torch.Tensor:
    """One action per row of q (B, A) drawn from pi(.|s) = exp((Q - V) / alpha): (B,) int64."""
    return torch.multinomial(boltzmann_probs(q, alpha), num_samples=1).squeeze(-1)


def q_learning_loss(
    q_taken: torch.Tensor, target: torch.Tensor, huber: bool = False
) -> torch.Tensor:
    """Mean of 1/2 (Q(s, a) - y)^2 over the batch, or of the Huber loss (quadratic for |error| < 1).

    q_taken (B,) = Q_phi(s, a) for the stored actions; target (B,) from :func:`soft_q_target`.
    """
    if huber:
        return F.smooth_l1_loss(q_taken, target.detach())
    return 0.5 * (q_taken - target.detach()).pow(2).mean()


# ----------------------------------------------------------------------------------------
# Soft Actor-Critic (continuous actions)
# ----------------------------------------------------------------------------------------
def sac_value_target(
    q1: torch.Tensor, q2: torch.Tensor, log_prob: torch.Tensor, alpha: Alpha
) -> torch.Tensor:
    """One-sample soft value V(s) ~ min_i Q_theta_i(s, a~) - alpha log pi(a~|s), a~ ~ pi(.|s).

    The slides' soft policy evaluation, V(s) = E_{a~pi}[Q(s, a) - alpha log pi(a|s)], with the
    smaller of the two critics. All inputs (B,); returns (B,), detached.
    """
    return (torch.min(q1, q2) - alpha * log_prob).detach()


def sac_value_loss(
    v: torch.Tensor,
    q1_new: torch.Tensor,
    q2_new: torch.Tensor,
    log_prob_new: torch.Tensor,
    alpha: Alpha,
) -> torch.Tensor:
    """J_V(psi) = mean 1/2 (V_psi(s) - (min_i Q_theta_i(s, a~) - alpha log pi(a~|s)))^2.

    v (B,) = V_psi(s); q1_new, q2_new, log_prob_new (B,) at fresh actions a~ ~ pi(.|s).
    No gradient reaches Q or pi: the target is detached.
    """
    return 0.5 * (v - sac_value_target(q1_new, q2_new, log_prob_new, alpha)).pow(2).mean()


def sac_q_loss(
    q1: torch.Tensor,
    q2: torch.Tensor,
    reward: torch.Tensor,
    terminated: torch.Tensor,
    next_value: torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    """J_Q(theta_1) + J_Q(theta_2), J_Q(theta_i) = mean 1/2 (Q_theta_i(s, a) - y)^2.

    The target is y = r + gamma (1 - terminated) V(s'), detached.

    q1, q2 (B,) = Q_theta_i(s, a) for the stored actions; reward, terminated (B,). next_value
    (B,) is V_psibar(s') from the target value network (Algorithm 1), or
    :func:`sac_value_target` of the target critics at a' ~ pi(.|s') (the variant without V).
    """
    target = (reward + gamma * (1.0 - terminated) * next_value).detach()
    return 0.5 * (q1 - target).pow(2).mean() + 0.5 * (q2 - target).pow(2).mean()


def sac_policy_loss(
    log_prob_new: torch.Tensor, q1_new: torch.Tensor, q2_new: torch.Tensor, alpha: Alpha
) -> torch.Tensor:
    """J_pi(phi) = mean [alpha log pi(a~|s) - min_i Q_theta_i(s, a~)], a~ reparameterised.

    All inputs (B,). Up to a constant in phi, this is alpha times the slides'
    KL(pi(.|s) || exp(Q(s, .) / alpha) / Z); its gradient reaches phi through
    a~ = f_phi(eps; s), in both terms.
    """
    return (alpha * log_prob_new - torch.min(q1_new, q2_new)).mean()


def temperature_loss(
    log_alpha: torch.Tensor, log_prob_new: torch.Tensor, target_entropy: float
) -> torch.Tensor:
    """J(alpha) = mean[-alpha (log pi(a~|s) + H_target)] with alpha = exp(log_alpha).

    Raises alpha when the policy's entropy -E[log pi] is below ``target_entropy`` (usually
    -act_dim), lowers it when above. Only log_alpha gets a gradient.
    """
    return -(log_alpha.exp() * (log_prob_new.detach() + target_entropy)).mean()


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """target <- (1 - tau) * target + tau * source, parameter by parameter, in place.

    ``tau = 1`` copies ``source`` (the "copy phi every N steps" of DQN); SAC uses tau ~ 0.005.
    """
    # the same as `for t, p in zip(...): t.lerp_(p, tau)`, in one call for all parameters
    torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), tau)
