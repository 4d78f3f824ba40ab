"""A 2-D point mass that moves towards a goal: small enough for reward heatmaps over the plane.

State s = (x, y) in [-1, 1]^2, the position. Action a in [-1, 1]^2, a velocity command. One step:

    s' = clip(s + step_size * M a, -1, 1),   M = action_scale * rotation(action_rotation)

(blocked by an optional wall). Every episode lasts ``horizon`` steps (no early termination:
a fixed horizon keeps trajectory likelihoods comparable, which inverse RL needs); the start is
uniform in a small square around ``start``. The true reward is the negative distance to the
goal after the move, r(s, a, s') = -||s' - goal||; ``info["in_goal"]`` says whether s' lies in
the goal disc.

Changed dynamics for reward transfer (chapter 10): ``action_rotation`` (radians) and
``action_scale`` change M, ``wall=True`` adds a vertical wall at x = 0 from y = -1 up to
y = ``wall_top`` that the mass cannot cross. A reward that depends on the state only is still
right after such a change; a reward that depends on the action is not.

:meth:`PointMassEnv.expert_action` is a near-optimal controller that knows M: it heads
straight for the goal at full speed (around the wall if there is one).
"""

from __future__ import annotations

from typing import ClassVar

import gymnasium as gym
import numpy as np

__all__ = ["POINT_MASS_ID", "PointMassEnv", "make_point_mass"]

POINT_MASS_ID = "CoursePointMass-v0"


class PointMassEnv(gym.Env):
    metadata: ClassVar[dict] = {"render_modes": []}

    def __init__(
        self,
        goal: tuple[float, float] = (0.6, 0.6),
        goal_radius: float = 0.15,
        start: tuple[float, float] = (-0.6, -0.6),
        start_spread: float = 0.2,
        step_size: float = 0.1,
        horizon: int = 50,
        action_rotation: float = 0.0,
        action_scale: float = 1.0,
        wall: bool = False,
        wall_top: float = 0.4,
    ) -> None:
        if horizon < 1 or step_size <= 0 or goal_radius <= 0 or action_scale == 0:
            raise ValueError(
                "horizon, step_size, goal_radius must be positive and action_scale non-zero"
            )
        self.goal = np.asarray(goal, dtype=np.float64)
        self.goal_radius = float(goal_radius)
        self.start = np.asarray(start, dtype=np.float64)
        self.start_spread = float(start_spread)
        self.step_size = float(step_size)
        self.horizon = int(horizon)
        self.wall, self.wall_top = bool(wall), float(wall_top)
        c, s = np.cos(action_rotation), np.sin(action_rotation)
        self.action_matrix = action_scale * np.array([[c, -s], [s, c]])  # M
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self._pos = np.zeros(2)
        self._t = 0

    # ---- gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        offset = self.np_random.uniform(-self.start_spread, self.start_spread, size=2)
        self._pos = np.clip(self.start + offset, -1.0, 1.0)
        self._t = 0
        return self._pos.astype(np.float32), {"in_goal": self.in_goal(self._pos)}

    def step(self, action):
        action = np.asarray(action, dtype=np.float64).reshape(2)
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action must be finite, got {action}")
        action = np.clip(action, -1.0, 1.0)
        new = np.clip(self._pos + self.step_size * self.action_matrix @ action, -1.0, 1.0)
        if self.wall:
            new = self._blocked(self._pos, new)
        self._pos = new
        self._t += 1
        reward = -float(np.linalg.norm(new - self.goal))
        truncated = self._t >= self.horizon
        return new.astype(np.float32), reward, False, truncated, {"in_goal": self.in_goal(new)}

    # ---- helpers
    def in_goal(self, pos) -> bool:
        return bool(
            np.linalg.norm(np.asarray(pos, dtype=np.float64) - self.goal) <= self.goal_radius
        )

    def _blocked(self, old: np.ndarray, new: np.ndarray) -> np.ndarray:
        """Stop at the wall (x = 0, y <= wall_top) if the move crosses it."""
        if np.sign(old[0]) == np.sign(new[0]) or old[0] == new[0]:
            return new
        fraction = old[0] / (old[0] - new[0])
        y_cross = old[1] + fraction * (new[1] - old[1])
        if y_cross > self.wall_top:
            return new
        return np.array([np.copysign(1e-3, old[0]) if old[0] != 0 else -1e-3, new[1]])

    def expert_action(self, obs) -> np.ndarray:
        """Full speed towards the goal (via the wall's top end if the wall is in the way).

        ``obs``: one position (2,) or a batch (N, 2); returns actions of the same shape.
        """
        pos = np.asarray(obs, dtype=np.float64)
        single = pos.ndim == 1
        pos = np.atleast_2d(pos)
        target = np.broadcast_to(self.goal, pos.shape).copy()
        if self.wall:
            detour = (np.sign(pos[:, 0]) != np.sign(self.goal[0])) & (
                pos[:, 1] < self.wall_top + 0.05
            )
            target[detour] = (0.0, self.wall_top + 0.1)
        delta = target - pos
        # the velocity that lands on the target, at most full speed: M a = delta / step_size
        wanted = np.linalg.solve(self.action_matrix, (delta / self.step_size).T).T
        norm = np.abs(wanted).max(axis=1, keepdims=True)
        actions = wanted / np.maximum(norm, 1.0)
        return actions[0] if single else actions


def make_point_mass(**kwargs) -> PointMassEnv:
    """A :class:`PointMassEnv` wrapped like ``gym.make`` would (passive checker off)."""
    return PointMassEnv(**kwargs)


gym.register(id=POINT_MASS_ID, entry_point=PointMassEnv, disable_env_checker=True)
