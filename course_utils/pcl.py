"""Path consistency learning (Nachum, Norouzi, Xu, Schuurmans 2017), tabular.

With entropy regularisation at temperature ``alpha`` (the paper's tau) and discount ``gamma``,
the optimal soft values V* and the optimal policy pi* of a **deterministic** MDP satisfy, along
every path s_0, a_0, ..., s_d (the paper's multi-step soft consistency, section 4),

    C(s_{0:d}, a_{0:d-1}) = -V(s_0) + gamma^d V(s_d)
                            + sum_{j=0}^{d-1} gamma^j (r(s_j, a_j) - alpha log pi(a_j | s_j)) = 0,

whatever policy produced the path. PCL minimises 1/2 E[C^2] over path segments from any data
(a replay buffer, a uniform behaviour policy), updating V and pi with the same loss (section 5).
With stochastic dynamics C is zero only on average over s' (see chapter 11).

Shapes: ``values`` (S,), ``log_pi`` (S, A) log-probabilities; a batch of N segments of d steps:
``states`` (N, d + 1) int, ``actions`` (N, d) int, ``rewards`` (N, d).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

from .mdp import TabularMDP, sample_trajectories

__all__ = ["Segments", "fit_pcl", "path_consistency", "pcl_loss", "sample_segments"]


class Segments(NamedTuple):
    """N path segments of d steps: states (N, d + 1) int64, actions (N, d) int64, rewards (N, d)."""

    states: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor


def path_consistency(
    values: torch.Tensor,
    log_pi: torch.Tensor,
    states: torch.Tensor,
    actions: torch.Tensor,
    rewards: torch.Tensor,
    gamma: float,
    alpha: float,
) -> torch.Tensor:
    """The soft consistency error C of each segment, shape (N,) (Nachum et al. 2017)."""
    d = actions.shape[1]
    discounts = gamma ** torch.arange(d, dtype=values.dtype)  # gamma^j, (d,)
    soft_rewards = rewards - alpha * log_pi[states[:, :-1], actions]  # r - alpha log pi, (N, d)
    return (
        -values[states[:, 0]]
        + gamma**d * values[states[:, -1]]
        + (discounts * soft_rewards).sum(dim=1)
    )


def pcl_loss(
    values: torch.Tensor,
    log_pi: torch.Tensor,
    states: torch.Tensor,
    actions: torch.Tensor,
    rewards: torch.Tensor,
    gamma: float,
    alpha: float,
) -> torch.Tensor:
    """1/2 mean C^2 over the segments, a 0-d tensor; its gradient reaches V (at both ends of each
    segment) and log pi, as in PCL's updates: nothing is detached."""
    return (
        0.5 * path_consistency(values, log_pi, states, actions, rewards, gamma, alpha).pow(2).mean()
    )


def sample_segments(
    mdp: TabularMDP,
    behaviour: np.ndarray,
    *,
    n_trajectories: int,
    length: int,
    d: int,
    rng: np.random.Generator,
) -> Segments:
    """Every d-step window of ``n_trajectories`` trajectories of ``length`` steps from ``behaviour``.

    behaviour: (S, A) policy that generated the data (PCL does not need to know it).
    """
    if not 1 <= d < length:
        raise ValueError(f"need 1 <= d < length, got d={d}, length={length}")
    states, actions = sample_trajectories(mdp, behaviour, length, n_trajectories, rng)
    rewards = mdp.R[states, actions]
    starts = range(length - d)
    return Segments(
        torch.from_numpy(np.concatenate([states[:, i : i + d + 1] for i in starts])),
        torch.from_numpy(np.concatenate([actions[:, i : i + d] for i in starts])),
        torch.from_numpy(np.concatenate([rewards[:, i : i + d] for i in starts])),
    )


def fit_pcl(
    segments: Segments,
    n_states: int,
    n_actions: int,
    *,
    gamma: float,
    alpha: float,
    loss: Callable = pcl_loss,
    steps: int = 200,
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Minimise ``loss`` over a tabular V (S,) and policy logits (S, A) with L-BFGS in float64.

    The policy is pi = softmax(logits), so log pi is always normalised. Returns V (S,),
    pi (S, A) and the loss after each L-BFGS step (at most ``steps``; it stops once a step no
    longer decreases the loss).
    """
    values = torch.zeros(n_states, dtype=torch.float64, requires_grad=True)
    logits = torch.zeros(n_states, n_actions, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [values, logits],
        lr=1,
        max_iter=20,
        tolerance_grad=1e-14,
        tolerance_change=1e-16,
        history_size=50,
        line_search_fn="strong_wolfe",
    )
    rewards = segments.rewards.double()

    def closure():
        optimizer.zero_grad()
        log_pi = torch.log_softmax(logits, dim=1)
        out = loss(values, log_pi, segments.states, segments.actions, rewards, gamma, alpha)
        out.backward()
        return out.detach()

    history = []
    for _ in range(steps):
        history.append(float(optimizer.step(closure)))
        if history[-1] < 1e-20 or (len(history) > 1 and history[-1] >= history[-2]):
            break  # converged: L-BFGS no longer decreases the loss
    with torch.no_grad():
        pi = torch.softmax(logits, dim=1)
    return values.detach().numpy(), pi.numpy(), history
