"""Evaluate a policy over N episodes with fixed seeds, and the learning-curve record.

Episode i starts from ``env.reset(seed=seed + i)``, and the policy's own random draws (in the
stochastic mode) come from a torch generator state forked from ``seed`` and restored
afterwards. Evaluating the same policy with the same seed therefore always gives the same
returns, and evaluating never disturbs the random stream of the training that calls it.

The N episodes run side by side, one environment each, so the policy sees a (N, obs_dim)
batch per step: N times fewer network calls than running them one after the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch

__all__ = [
    "EvalResult",
    "LearningCurve",
    "TrainingRun",
    "env_factory",
    "evaluate",
    "evaluate_and_record",
]


class Policy(Protocol):
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor: ...


@dataclass
class EvalResult:
    """Returns (N,) and lengths (N,) of the evaluation episodes, and the returns' mean and std."""

    returns: np.ndarray
    lengths: np.ndarray

    @property
    def mean(self) -> float:
        return float(self.returns.mean())

    @property
    def std(self) -> float:
        return float(self.returns.std())

    def __str__(self) -> str:
        return f"{self.mean:.1f} +- {self.std:.1f} over {len(self.returns)} episodes"


@dataclass
class LearningCurve:
    """Evaluation returns during training: at ``steps[k]`` env steps, mean ``returns[k]``."""

    steps: list[int] = field(default_factory=list)
    returns: list[float] = field(default_factory=list)
    stds: list[float] = field(default_factory=list)

    def append(self, step: int, result: EvalResult) -> None:
        self.steps.append(int(step))
        self.returns.append(result.mean)
        self.stds.append(result.std)

    def first_step_reaching(self, threshold: float) -> int | None:
        """The first evaluated step whose mean return is >= threshold (None if never)."""
        return next(
            (s for s, r in zip(self.steps, self.returns, strict=True) if r >= threshold), None
        )


@dataclass(kw_only=True)
class TrainingRun:
    """What every training loop returns besides its networks.

    ``curve`` holds the evaluation returns during training and ``final_eval`` the last one;
    ``diagnostics[name][k]`` is measured on the last mini-batch before ``curve.steps[k]``.
    ``train_seconds`` counts acting and learning, ``eval_seconds`` the evaluations.
    """

    curve: LearningCurve
    final_eval: EvalResult
    diagnostics: dict[str, list[float]] = field(default_factory=dict)
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    total_steps: int = 0

    @property
    def steps_per_second(self) -> float:
        return self.total_steps / max(self.train_seconds, 1e-9)


def env_factory(env_id: str | Callable[[], gym.Env]) -> Callable[[], gym.Env]:
    """A function that makes the environment: ``env_id`` itself if callable, else ``gym.make(env_id)``."""
    return env_id if callable(env_id) else (lambda: gym.make(env_id))


def evaluate(
    policy: Policy | Callable[[torch.Tensor], torch.Tensor],
    env_id: str | Callable[[], gym.Env],
    n_episodes: int = 10,
    seed: int = 0,
    deterministic: bool = True,
    device: torch.device | str = "cpu",
) -> EvalResult:
    """Run ``n_episodes`` full episodes and return their returns.

    policy: an object with ``act(obs, deterministic)`` (all policies in ``course_utils.rl``)
        or a plain function ``obs -> actions``, taking a (N, obs_dim) float32 tensor on
        ``device`` and returning actions (N,) (discrete) or (N, act_dim) (continuous).
    env_id: a gymnasium id, or a function making the environment (e.g. with wrappers).
    deterministic: the mean/greedy action if True, a sample of the policy otherwise.
    """
    make = env_factory(env_id)
    act = policy.act if hasattr(policy, "act") else (lambda obs, deterministic: policy(obs))
    envs = [make() for _ in range(n_episodes)]
    obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
    returns = np.zeros(n_episodes)
    lengths = np.zeros(n_episodes, dtype=np.int64)
    running = np.ones(n_episodes, dtype=bool)
    devices = [torch.device(device)] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(seed)
        while running.any():
            idx = np.flatnonzero(running)
            obs_t = torch.as_tensor(obs[idx], dtype=torch.float32, device=device)
            actions = act(obs_t, deterministic=deterministic).cpu().numpy()
            for i, action in zip(idx, actions, strict=True):
                next_obs, reward, terminated, truncated, _ = envs[i].step(action)
                obs[i] = next_obs
                returns[i] += reward
                lengths[i] += 1
                running[i] = not (terminated or truncated)
    for env in envs:
        env.close()
    return EvalResult(returns=returns, lengths=lengths)


def evaluate_and_record(
    policy: Policy,
    make_env: Callable[[], gym.Env],
    step: int,
    curve: LearningCurve,
    diagnostics: dict[str, list[float]],
    last: dict[str, float],
    *,
    n_episodes: int,
    seed: int,
    device: torch.device | str,
) -> EvalResult:
    """One evaluation point of a training run (shared by the trainers of this package).

    Appends the latest training diagnostics ``last`` to ``diagnostics``, evaluates the
    deterministic (greedy / mean-action) policy over ``n_episodes`` seeded episodes, appends the
    result to ``curve`` at ``step`` and returns it.
    """
    for name, value in last.items():
        diagnostics[name].append(value)
    result = evaluate(policy, make_env, n_episodes, seed=seed, deterministic=True, device=device)
    curve.append(step, result)
    return result
