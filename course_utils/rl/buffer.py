"""Replay buffer: the data set D of off-policy RL (slides: "add it to B", "s_t ~ D").

Transitions are stored in preallocated numpy arrays (cheap to write one at a time from the
environment loop) and sampled as a batch of torch tensors on the training device.

We store ``terminated``, never ``done = terminated or truncated``. A *terminated* transition
ends the task (the pole fell): there is no future reward, so the target is just ``r``. A
*truncated* transition was cut off by a time limit: the future still exists, so the target must
bootstrap, ``r + gamma * V(s')``. Treating a time-out as a terminal state teaches the agent
that the world ends after 500 (CartPole) or 200 (Pendulum) steps, which it cannot observe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch

__all__ = ["Batch", "ReplayBuffer", "relabel"]


class Batch(NamedTuple):
    """A mini-batch of B transitions, as float32 tensors (actions: int64 for discrete spaces).

    obs (B, *obs_shape), actions (B,) discrete or (B, act_dim) continuous, rewards (B,),
    next_obs (B, *obs_shape), terminated (B,) with 1.0 where the episode *terminated*.
    """

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor


class ReplayBuffer:
    """A first-in-first-out store of ``capacity`` transitions (s, a, r, s', terminated).

    Once full, each new transition overwrites the oldest one. ``sample`` draws transitions
    uniformly with replacement using the buffer's own numpy generator (seed it for
    reproducible runs).

    Example::

        buffer = ReplayBuffer.for_env(env, capacity=50_000, seed=0)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add(obs, action, reward, next_obs, terminated)   # not `terminated or truncated`
        batch = buffer.sample(128)                              # Batch of tensors
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        action_shape: tuple[int, ...] = (),
        action_dtype: type | np.dtype = np.float32,
        device: torch.device | str = "cpu",
        seed: int | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.capacity = int(capacity)
        self.device = torch.device(device)
        self.obs = np.zeros((capacity, *obs_shape), dtype=np.float32)
        self.actions = np.zeros((capacity, *action_shape), dtype=action_dtype)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.next_obs = np.zeros((capacity, *obs_shape), dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.pos = 0  # where the next transition goes
        self.size = 0  # how many slots hold data
        self.rng = np.random.default_rng(seed)

    @classmethod
    def for_env(
        cls,
        env: gym.Env,
        capacity: int,
        device: torch.device | str = "cpu",
        seed: int | None = None,
    ) -> ReplayBuffer:
        """A buffer shaped for ``env``: int64 actions for Discrete, float32 vectors for Box."""
        space = env.action_space
        if isinstance(space, gym.spaces.Discrete):
            action_shape, action_dtype = (), np.int64
        elif isinstance(space, gym.spaces.Box):
            action_shape, action_dtype = space.shape, np.float32
        else:
            raise TypeError(f"unsupported action space {space}")
        return cls(capacity, env.observation_space.shape, action_shape, action_dtype, device, seed)

    def __len__(self) -> int:
        return self.size

    def add(self, obs, action, reward: float, next_obs, terminated: bool) -> None:
        """Store one transition; ``next_obs`` is what ``env.step`` returned (before any reset)."""
        i = self.pos
        self.obs[i] = obs
        self.actions[i] = action
        self.rewards[i] = reward
        self.next_obs[i] = next_obs
        self.terminated[i] = terminated
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int) -> Batch:
        """``batch_size`` transitions drawn uniformly (with replacement) from the stored ones."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = self.rng.integers(0, self.size, size=batch_size)
        return Batch(*(self._to_tensor(array[idx]) for array in self._arrays()))

    def latest(self, n: int) -> Batch:
        """The ``n`` most recently added transitions (fewer if the buffer holds fewer), oldest first.

        Adversarial imitation (chapter 10) trains its discriminator on these: samples of the
        *current* policy rather than of everything the agent ever did.
        """
        if self.size == 0:
            raise ValueError("the replay buffer is empty")
        n = min(int(n), self.size)
        idx = (self.pos - n + np.arange(n)) % self.capacity
        return Batch(*(self._to_tensor(array[idx]) for array in self._arrays()))

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return self.obs, self.actions, self.rewards, self.next_obs, self.terminated

    def _to_tensor(self, array: np.ndarray) -> torch.Tensor:
        # array[idx] is a fresh copy, so from_numpy shares no memory with the buffer
        return torch.from_numpy(array).to(self.device, non_blocking=True)


def relabel(batch: Batch, reward_fn: Callable[[Batch], torch.Tensor]) -> Batch:
    """``batch`` with its rewards replaced by a learned reward ``reward_fn(batch)`` of shape (B,).

    Computed under ``torch.no_grad()`` and detached: the RL update that uses these rewards
    must not push gradients into the reward (or discriminator) network.
    """
    with torch.no_grad():
        rewards = reward_fn(batch)
    if not isinstance(rewards, torch.Tensor) or rewards.shape != batch.rewards.shape:
        got = tuple(rewards.shape) if isinstance(rewards, torch.Tensor) else type(rewards).__name__
        raise ValueError(
            f"reward_fn must return a tensor of shape {tuple(batch.rewards.shape)} (one reward per "
            f"transition), got {got}"
        )
    if not torch.isfinite(rewards).all():
        raise ValueError("reward_fn returned NaN or infinite rewards")
    return batch._replace(rewards=rewards.detach().to(batch.rewards.dtype))
