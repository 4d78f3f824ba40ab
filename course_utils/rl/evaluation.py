"""Evaluate a policy over N episodes with fixed seeds, and the learning-curve record.

Episode i starts from ``env.reset(seed=seed + i)``, and the policy's own random draws (in the
stochastic mode) come from a torch generator state forked from ``seed`` and restored
afterwards. Evaluating the same policy with the same seed therefore always gives the same
returns, and evaluating never disturbs the random stream of the training that calls it.

The N episodes run side by side, one environment each, so the policy sees a (N, obs_dim)
batch per step: N times fewer network calls than running them one after the other.
"""

from __future__ import annotations

import copy

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
    "pendulum_q_bias",
    "pendulum_step",
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


class BestSnapshot:
    """``keep_best`` for a training loop: the modules' state at the best evaluation so far.

    ``offer(result, step)`` after every evaluation keeps a copy when ``result.mean`` is at least
    the best so far (ties: the later one); ``restore()`` loads the kept state back into the
    modules at the end, and the loop then scores it on held-out episodes (chapter 06's protocol:
    the snapshot is chosen on the evaluation episodes, so its return there is biased upwards).
    """

    def __init__(self, *modules: torch.nn.Module):
        self.modules = modules
        self.value, self.step, self._states = -np.inf, None, None

    def offer(self, result: EvalResult, step: int) -> None:
        if result.mean >= self.value:
            self.value, self.step = result.mean, step
            self._states = copy.deepcopy([module.state_dict() for module in self.modules])

    def restore(self) -> None:
        if self._states is None:
            raise RuntimeError("BestSnapshot.restore: no evaluation was offered")
        for module, state in zip(self.modules, self._states, strict=True):
            module.load_state_dict(state)


# ----------------------------------------------------------------------------------------
# Over-estimation of a learned soft Q on Pendulum-v1 (chapter 07)
# ----------------------------------------------------------------------------------------
def pendulum_step(
    theta: np.ndarray, theta_dot: np.ndarray, torque: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pendulum-v1's dynamics for a batch of states: (theta', theta_dot', reward), each (N,).

    The same equations as gymnasium's ``PendulumEnv.step`` (g = 10, m = l = 1, dt = 0.05, torque
    clipped to [-2, 2], speed to [-8, 8]), without the 200-step time limit.
    """
    u = np.clip(torque, -2.0, 2.0)
    normalized = (theta + np.pi) % (2 * np.pi) - np.pi
    reward = -(normalized**2 + 0.1 * theta_dot**2 + 0.001 * u**2)
    new_theta_dot = np.clip(theta_dot + (15.0 * np.sin(theta) + 3.0 * u) * 0.05, -8.0, 8.0)
    return theta + new_theta_dot * 0.05, new_theta_dot, reward


@dataclass
class QBias:
    """Learned Q against the Monte Carlo soft return at N start states (see :func:`pendulum_q_bias`)."""

    q: np.ndarray  # (N,) the critic's estimate Q(s_0, a_0)
    mc: np.ndarray  # (N,) the discounted soft return of the same policy from (s_0, a_0)

    @property
    def bias(self) -> float:
        """Mean over the start states of Q(s_0, a_0) - G: > 0 is over-estimation."""
        return float((self.q - self.mc).mean())

    @property
    def stderr(self) -> float:
        """The standard error of :attr:`bias` (one rollout per start state)."""
        return float((self.q - self.mc).std(ddof=1) / np.sqrt(len(self.q)))


def pendulum_q_bias(
    policy,
    critic: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    alpha: float,
    gamma: float = 0.99,
    n_states: int = 200,
    horizon: int = 600,
    seed: int = 0,
) -> QBias:
    """How far a learned soft Q is from the soft return of the policy it evaluates, on Pendulum-v1.

    ``n_states`` start states from Pendulum's reset distribution (theta ~ U(-pi, pi),
    theta_dot ~ U(-1, 1)); at each, a_0 ~ pi(.|s_0), the critic's ``critic(obs, a_0)`` (B,), and
    one rollout of the stochastic policy for ``horizon`` steps (no time limit: the critic
    bootstraps through Pendulum's time-outs, so it estimates the infinite-horizon value), giving
    the Monte Carlo soft return G = r_0 + sum_{t>=1} gamma^t (r_t - alpha log pi(a_t|s_t)).
    ``policy(obs) -> (actions, log_probs)`` is SAC's squashed Gaussian. Deterministic for a seed;
    the global torch generator is left alone.
    """
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-np.pi, np.pi, n_states)
    theta_dot = rng.uniform(-1.0, 1.0, n_states)
    returns = np.zeros(n_states)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for t in range(horizon):
            obs = torch.as_tensor(
                np.stack([np.cos(theta), np.sin(theta), theta_dot], axis=-1), dtype=torch.float32
            )
            actions, log_probs = policy(obs)
            if t == 0:
                q = critic(obs, actions).double().numpy()
            theta, theta_dot, reward = pendulum_step(
                theta, theta_dot, actions[:, 0].double().numpy()
            )
            entropy_bonus = 0.0 if t == 0 else -alpha * log_probs.double().numpy()
            returns += gamma**t * (reward + entropy_bonus)
    return QBias(q=q, mc=returns)
