"""Experts without training: near-optimal controllers that produce demonstrations in seconds.

Inverse RL (chapters 08-10) needs demonstrations of an expert. Training an RL expert first
would cost more than the imitation itself, so for the classic-control tasks we write the
expert down from the physics:

* :class:`CartPoleExpert`: an LQR controller of the linearised cart-pole (gymnasium's
  CartPole-v1 equations), whose continuous force is turned into CartPole's two actions by its
  sign (push right when the LQR force is positive). Balances for the full 500 steps.
* :class:`PendulumExpert`: energy shaping to swing up (pump energy with the torque in the
  direction of the velocity until the pendulum has the energy of the upright rest state),
  then a linear (PD) balancing controller near the top.
* the point mass of :mod:`course_utils.envs` has its own ``expert_action``;
  :func:`point_mass_expert` wraps it as a policy.

All experts are deterministic functions of the observation and take a batch (N, obs_dim) of
numpy or torch observations, so they plug into :func:`course_utils.rl.evaluate` directly.
:func:`generate_demonstrations` rolls an expert out for N seeded episodes and returns the
transitions as a :class:`course_utils.rl.Batch` plus the episode returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from .buffer import Batch

__all__ = [
    "CartPoleExpert",
    "Demonstrations",
    "PendulumExpert",
    "SoftPointMassExpert",
    "generate_demonstrations",
    "make_expert",
    "point_mass_expert",
]


def _as_numpy_batch(obs) -> tuple[np.ndarray, bool]:
    """(N, obs_dim) float64 array and whether the input was a single observation."""
    if isinstance(obs, torch.Tensor):
        obs = obs.detach().cpu().numpy()
    arr = np.asarray(obs, dtype=np.float64)
    single = arr.ndim == 1
    return np.atleast_2d(arr), single


def _lqr_gain(
    A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray, iters: int = 5000
) -> np.ndarray:
    """Discrete-time LQR gain K (u = -K x) by iterating the Riccati equation to convergence."""
    P = Q.copy()
    for _ in range(iters):
        K = np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
        P_new = Q + A.T @ P @ (A - B @ K)
        if np.max(np.abs(P_new - P)) < 1e-10:
            P = P_new
            break
        P = P_new
    return np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)


class CartPoleExpert:
    """LQR balancing for CartPole-v1, acting with the sign of the LQR force (deterministic).

    Observation (x, x_dot, theta, theta_dot); actions 0 (push left) and 1 (push right).
    The gain comes from gymnasium's CartPole equations linearised around the upright state
    (gravity 9.8, cart 1.0 kg, pole 0.1 kg, half-length 0.5 m, force 10 N, tau 0.02 s).
    """

    def __init__(self) -> None:
        g, m_cart, m_pole, half_len, dt = 9.8, 1.0, 0.1, 0.5, 0.02
        total = m_cart + m_pole
        # linearised: theta_acc = (g theta - F / total) / (l (4/3 - m_pole / total))
        denom = half_len * (4.0 / 3.0 - m_pole / total)
        a_theta_theta, a_theta_force = g / denom, -1.0 / (total * denom)
        a_x_theta = -m_pole * half_len * a_theta_theta / total
        a_x_force = 1.0 / total - m_pole * half_len * a_theta_force / total
        A_c = np.array([[0, 1, 0, 0], [0, 0, a_x_theta, 0], [0, 0, 0, 1], [0, 0, a_theta_theta, 0]])
        B_c = np.array([[0], [a_x_force], [0], [a_theta_force]])
        A, B = np.eye(4) + dt * A_c, dt * B_c  # explicit Euler, as the environment integrates
        self.gain = _lqr_gain(A, B, Q=np.diag([1.0, 1.0, 10.0, 1.0]), R=np.array([[0.1]]))[
            0
        ]  # (4,)

    def __call__(self, obs) -> np.ndarray | torch.Tensor:
        arr, single = _as_numpy_batch(obs)
        force = -arr @ self.gain  # (N,) the LQR force
        actions = (force > 0).astype(np.int64)
        if isinstance(obs, torch.Tensor):
            return torch.as_tensor(actions, device=obs.device)
        return actions[0] if single else actions

    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        return torch.as_tensor(self(obs))


class PendulumExpert:
    """Energy-shaping swing-up plus PD balancing for Pendulum-v1 (deterministic).

    Observation (cos theta, sin theta, theta_dot), theta = 0 upright; torque in [-2, 2].
    Pendulum-v1 integrates theta_acc = 15 sin(theta) + 3 u, so E = theta_dot^2 / 2 + 15 cos(theta)
    changes as dE/dt = 3 u theta_dot, and the upright rest state has E = 15. Far from the top
    the expert pumps, u = 2 sign((15 - E) theta_dot); near the top (|theta| < ``catch_angle``)
    it balances with u = -(k_p theta + k_d theta_dot), clipped.
    """

    def __init__(
        self, k_p: float = 10.0, k_d: float = 2.0, catch_angle: float = 0.6, pump_gain: float = 1.0
    ):
        self.k_p, self.k_d, self.catch_angle, self.pump_gain = k_p, k_d, catch_angle, pump_gain

    def __call__(self, obs) -> np.ndarray | torch.Tensor:
        arr, single = _as_numpy_batch(obs)
        cos, sin, theta_dot = arr[:, 0], arr[:, 1], arr[:, 2]
        theta = np.arctan2(sin, cos)
        energy = 0.5 * theta_dot**2 + 15.0 * cos
        pump = np.clip(self.pump_gain * (15.0 - energy) * theta_dot, -2.0, 2.0)
        pump = np.where((theta_dot == 0) & (energy < 15.0), 2.0, pump)  # at rest: start swinging
        balance = np.clip(-(self.k_p * theta + self.k_d * theta_dot), -2.0, 2.0)
        near_top = np.abs(theta) < self.catch_angle
        actions = np.where(near_top, balance, pump)[:, None].astype(np.float32)  # (N, 1)
        if isinstance(obs, torch.Tensor):
            return torch.as_tensor(actions, device=obs.device)
        return actions[0] if single else actions

    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        return torch.as_tensor(self(obs))


def point_mass_expert(**env_kwargs) -> Callable:
    """The point mass's own near-optimal controller (:meth:`PointMassEnv.expert_action`) as a policy.

    ``env_kwargs`` must describe the same dynamics as the environment it acts in (rotation, wall...).
    """
    from ..envs import PointMassEnv

    env = PointMassEnv(**env_kwargs)

    def policy(obs):
        arr, single = _as_numpy_batch(obs)
        actions = env.expert_action(arr).astype(np.float32)
        if isinstance(obs, torch.Tensor):
            return torch.as_tensor(actions, device=obs.device)
        return actions[0] if single else actions

    return policy


def make_expert(env_id: str) -> Callable:
    """The expert for ``"CartPole-v1"``, ``"Pendulum-v1"`` or ``"CoursePointMass-v0"`` (default dynamics)."""
    experts = {
        "CartPole-v1": CartPoleExpert,
        "Pendulum-v1": PendulumExpert,
        "CoursePointMass-v0": point_mass_expert,
    }
    if env_id not in experts:
        raise ValueError(f"no expert for {env_id!r}; known: {sorted(experts)}")
    return experts[env_id]()


@dataclass
class Demonstrations:
    """Expert transitions (a :class:`Batch` of float32 tensors, N transitions) and episode returns."""

    transitions: Batch
    returns: np.ndarray  # (n_episodes,)

    def __len__(self) -> int:
        return int(self.transitions.rewards.shape[0])


def generate_demonstrations(
    expert: Callable,
    env_id: str | Callable[[], gym.Env],
    n_episodes: int = 10,
    seed: int = 0,
    action_noise: float = 0.0,
) -> Demonstrations:
    """Roll ``expert`` out for ``n_episodes`` episodes seeded ``seed, seed + 1, ...``.

    action_noise: for continuous actions, a stochastic expert from the policy class of SAC:
        with the action rescaled to y in [-1, 1], act with tanh(atanh(y) + action_noise * eps),
        eps ~ N(0, I) (|y| capped at 0.95 first). MaxEnt IRL and AIRL model the expert as
        noisy; a deterministic expert makes log pi_E = +inf and AIRL's optimal f unbounded.
        The noise comes from a generator seeded with ``seed`` (reproducible).

    expert: a function from one observation (obs_dim,) to an action (an int for discrete
        spaces, an array (act_dim,) for continuous ones), e.g. :class:`CartPoleExpert`.
    Returns every transition (s, a, r, s', terminated), with ``terminated`` (not truncated),
    as in the replay buffer, and the episode returns. Deterministic for a deterministic expert.
    """
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be positive, got {n_episodes}")
    make = env_id if callable(env_id) else (lambda: gym.make(env_id))
    env = make()
    columns: dict[str, list] = {
        k: [] for k in ("obs", "actions", "rewards", "next_obs", "terminated")
    }
    returns = []
    discrete = isinstance(env.action_space, gym.spaces.Discrete)
    if action_noise < 0 or (action_noise > 0 and discrete):
        raise ValueError("action_noise must be >= 0, and 0 for discrete actions")
    rng = np.random.default_rng(seed)
    if not discrete:
        center = (env.action_space.high + env.action_space.low) / 2
        scale = (env.action_space.high - env.action_space.low) / 2
    for episode in range(n_episodes):
        obs, _ = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            action = expert(np.asarray(obs))
            if action_noise > 0:
                y = np.clip((np.asarray(action, dtype=np.float64) - center) / scale, -0.95, 0.95)
                u = np.arctanh(y) + action_noise * rng.standard_normal(y.shape)
                action = (center + scale * np.tanh(u)).astype(np.float32)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            for key, value in zip(
                columns, (obs, action, reward, next_obs, float(terminated)), strict=True
            ):
                columns[key].append(np.asarray(value))
            total += float(reward)
            obs, done = next_obs, terminated or truncated
        returns.append(total)
    env.close()
    tensors = {k: torch.as_tensor(np.stack(v), dtype=torch.float32) for k, v in columns.items()}
    if discrete:
        tensors["actions"] = tensors["actions"].long()
    return Demonstrations(Batch(**tensors), np.asarray(returns))


class SoftPointMassExpert:
    """A soft-optimal (Boltzmann) demonstrator for the point mass: pi_E(a|s) ∝ exp(-beta ||s' - goal||).

    The action is drawn from a grid of ``n`` x ``n`` velocity commands in [-1, 1]^2, each weighted
    by exp(-beta * distance to the goal after the move), s' = s + step_size M a (the true dynamics,
    ``env_kwargs`` as for :class:`PointMassEnv`). This is the stochastic expert that maximum-entropy
    IRL and AIRL assume: log pi_E(a|s) = -beta ||s' - goal|| - log Z(s), an advantage-like function
    of (s, s'). Random draws come from a numpy generator seeded with ``seed`` (reproducible).
    """

    def __init__(self, beta: float = 20.0, n: int = 11, seed: int = 0, **env_kwargs):
        from ..envs import PointMassEnv

        self.env = PointMassEnv(**env_kwargs)
        self.beta = float(beta)
        grid = np.linspace(-1.0, 1.0, n)
        self.actions = np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2)  # (n^2, 2)
        self.rng = np.random.default_rng(seed)

    def probs(self, obs) -> np.ndarray:
        """pi_E(.|s) over the action grid, (N, n^2)."""
        pos, _ = _as_numpy_batch(obs)
        moves = self.env.step_size * self.actions @ self.env.action_matrix.T  # (n^2, 2)
        nxt = np.clip(pos[:, None, :] + moves[None], -1.0, 1.0)  # (N, n^2, 2)
        logits = -self.beta * np.linalg.norm(nxt - self.env.goal, axis=-1)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def __call__(self, obs) -> np.ndarray:
        arr, single = _as_numpy_batch(obs)
        p = self.probs(arr)
        idx = np.array([self.rng.choice(len(self.actions), p=row) for row in p])
        actions = self.actions[idx].astype(np.float32)
        return actions[0] if single else actions
