"""Tabular MDPs: validation, gridworld builders, trajectory sampling and a gymnasium wrapper.

Conventions (the tabular contract of the course): all arrays are numpy float64;
``P[s, a, s']`` are transition probabilities, shape (S, A, S); ``R[s, a]`` rewards, shape
(S, A); ``p0[s]`` the initial distribution, shape (S,).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar
from collections.abc import Mapping, Sequence

import gymnasium as gym
import numpy as np

__all__ = [
    "ACTIONS",
    "TabularEnv",
    "TabularMDP",
    "gridworld",
    "random_mdp",
    "sample_trajectories",
    "validate_distribution",
    "validate_transitions",
]

# Grid actions: (row change, column change). "stay" makes absorbing behaviour expressible.
ACTIONS: tuple[tuple[str, tuple[int, int]], ...] = (
    ("up", (-1, 0)),
    ("right", (0, 1)),
    ("down", (1, 0)),
    ("left", (0, -1)),
    ("stay", (0, 0)),
)
_TOLERANCE = 1e-8


def _tolerance(array) -> float:
    """How far from 1 a sum of probabilities may be: 1e-8, or float32 round-off for float32 input."""
    dtype = str(getattr(array, "dtype", "float64")).removeprefix("torch.")
    return 1.2e-5 if dtype in ("float32", "float16", "bfloat16") else _TOLERANCE


def validate_transitions(P: np.ndarray, name: str = "P") -> np.ndarray:
    """Return ``P`` as float64 after checking shape (S, A, S), finiteness, signs and row sums.

    Row sums may be off by round-off: 1e-8 for float64, 1.2e-5 for float32 input.
    """
    tolerance = _tolerance(P)
    P = np.asarray(P, dtype=np.float64)
    if P.ndim != 3 or P.shape[0] != P.shape[2]:
        raise ValueError(f"{name} must have shape (S, A, S), got {P.shape}")
    sums = P.sum(axis=2)  # one pass finds NaN/inf (they make the sum non-finite) ...
    if not np.isfinite(sums).all():
        s, a, t = np.argwhere(~np.isfinite(P))[0]
        raise ValueError(f"{name}[{s}, {a}, {t}] is {P[s, a, t]}; probabilities must be finite")
    if P.min() < 0:  # ... and a second the negative entries
        s, a, t = np.argwhere(P < 0)[0]
        raise ValueError(f"{name}[{s}, {a}, {t}] = {P[s, a, t]:.3g} is negative")
    bad = np.abs(sums - 1.0) > tolerance
    if bad.any():
        s, a = np.argwhere(bad)[0]
        raise ValueError(
            f"{name}[{s}, {a}, :] sums to {sums[s, a]:.6g} (off by {sums[s, a] - 1:+.3g}); every "
            f"{name}[s, a, :] must be a distribution over next states ({int(bad.sum())} rows are off)"
        )
    return P


def validate_distribution(p: np.ndarray, size: int | None = None, name: str = "p0") -> np.ndarray:
    """Return ``p`` as float64 after checking it is a probability vector (of length ``size``)."""
    tolerance = _tolerance(p)
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1 or (size is not None and p.shape[0] != size):
        want = f"({size},)" if size is not None else "(S,)"
        raise ValueError(f"{name} must have shape {want}, got {p.shape}")
    if not np.isfinite(p).all() or (p < 0).any():
        i = int(np.flatnonzero(~np.isfinite(p) | (p < 0))[0])
        raise ValueError(f"{name}[{i}] = {p[i]:.3g}; probabilities must be finite and non-negative")
    if abs(p.sum() - 1.0) > tolerance:
        raise ValueError(
            f"{name} sums to {p.sum():.6g} (off by {p.sum() - 1:+.3g}); it must sum to 1"
        )
    return p


@dataclass(frozen=True)
class TabularMDP:
    """A finite MDP. Validated on construction.

    P: (S, A, S) transitions; R: (S, A) rewards; p0: (S,) initial distribution;
    features: optional (S, K) state features (for linear rewards in inverse RL);
    grid_shape and cells: for gridworlds, the (rows, cols) of the grid and the (row, col)
    of every state, so that state values can be drawn as a heatmap (walls are not states);
    layout: the text layout the gridworld was built from.
    """

    P: np.ndarray
    R: np.ndarray
    p0: np.ndarray
    features: np.ndarray | None = None
    state_names: tuple[str, ...] | None = None
    action_names: tuple[str, ...] | None = None
    grid_shape: tuple[int, int] | None = None
    cells: np.ndarray | None = None
    layout: tuple[str, ...] | None = field(default=None, repr=False)

    def __post_init__(self):
        P = validate_transitions(self.P)
        S, A, _ = P.shape
        R = np.asarray(self.R, dtype=np.float64)
        if R.shape != (S, A):
            raise ValueError(f"R must have shape (S, A) = {(S, A)}, got {R.shape}")
        if not np.isfinite(R).all():
            s, a = np.argwhere(~np.isfinite(R))[0]
            raise ValueError(f"R[{s}, {a}] is {R[s, a]}; rewards must be finite")
        p0 = validate_distribution(self.p0, S)
        object.__setattr__(self, "P", P)
        object.__setattr__(self, "R", R)
        object.__setattr__(self, "p0", p0)
        if self.features is not None:
            features = np.asarray(self.features, dtype=np.float64)
            if features.ndim != 2 or features.shape[0] != S:
                raise ValueError(
                    f"features must have shape (S, K) with S = {S}, got {features.shape}"
                )
            object.__setattr__(self, "features", features)
        for name, size in (("state_names", S), ("action_names", A)):
            names = getattr(self, name)
            if names is not None and len(names) != size:
                raise ValueError(f"{name} has {len(names)} entries, expected {size}")

    @property
    def n_states(self) -> int:
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        return self.P.shape[1]

    def with_rewards(self, R: np.ndarray) -> TabularMDP:
        """The same MDP with another reward table (S, A) or state reward (S,)."""
        R = np.asarray(R, dtype=np.float64)
        if R.ndim == 1:
            R = np.repeat(R[:, None], self.n_actions, axis=1)
        return TabularMDP(
            self.P,
            R,
            self.p0,
            self.features,
            self.state_names,
            self.action_names,
            self.grid_shape,
            self.cells,
            self.layout,
        )

    def to_grid(self, values: np.ndarray) -> np.ndarray:
        """Per-state ``values`` (S,) drawn on the grid: shape (rows, cols), NaN on walls."""
        if self.grid_shape is None or self.cells is None:
            raise ValueError("this MDP is not a gridworld (no grid_shape)")
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (self.n_states,):
            raise ValueError(f"values must have shape ({self.n_states},), got {values.shape}")
        grid = np.full(self.grid_shape, np.nan)
        grid[self.cells[:, 0], self.cells[:, 1]] = values
        return grid


def gridworld(
    layout: Sequence[str],
    *,
    rewards: Mapping[str, float] | None = None,
    step_reward: float = 0.0,
    slip: float = 0.0,
    absorbing: str = "GT",
) -> TabularMDP:
    """Build a gridworld from a text layout, one string per row.

    Characters: ``#`` wall (not a state), ``S`` start (a plain cell), ``.`` plain cell, and any
    other letter a cell type, e.g. ``G`` goal and ``T`` trap. ``rewards`` maps cell types to the
    reward for each step spent in such a cell (whatever the action); other cells give
    ``step_reward``. Cells whose type is in ``absorbing`` keep the agent forever.

    Actions are up, right, down, left, stay. With probability ``slip`` a move goes in a
    uniformly random one of the four directions instead (possibly the intended one); moving
    into a wall or off the grid leaves the agent in place. The start distribution is uniform
    over ``S`` cells (over all non-absorbing cells when there is none).

    Features: one indicator column per cell type present (``.`` for plain and start cells),
    in sorted order of the type characters.
    """
    rows = [str(r) for r in layout]
    if not rows or any(len(r) != len(rows[0]) for r in rows):
        raise ValueError("layout must be a non-empty list of strings of equal length")
    if not 0.0 <= slip <= 1.0:
        raise ValueError(f"slip must be a probability in [0, 1], got {slip}")
    rewards = dict(rewards or {"G": 1.0, "T": -1.0})
    n_rows, n_cols = len(rows), len(rows[0])
    cells = np.array([(r, c) for r in range(n_rows) for c in range(n_cols) if rows[r][c] != "#"])
    if len(cells) == 0:
        raise ValueError("layout has no free cells")
    index = {(int(r), int(c)): i for i, (r, c) in enumerate(cells)}
    kinds = ["." if rows[r][c] == "S" else rows[r][c] for r, c in cells]
    S, A = len(cells), len(ACTIONS)

    def target(i: int, move: tuple[int, int]) -> int:
        r, c = cells[i][0] + move[0], cells[i][1] + move[1]
        return index.get((int(r), int(c)), i)

    moves = [m for _, m in ACTIONS[:4]]
    P = np.zeros((S, A, S))
    for i in range(S):  # building once is fine; the algorithms themselves are vectorised
        if kinds[i] in absorbing:
            P[i, :, i] = 1.0
            continue
        for a, (_, move) in enumerate(ACTIONS):
            P[i, a, target(i, move)] += 1.0 - slip
            for other in moves:
                P[i, a, target(i, other)] += slip / 4
    R = np.array([[rewards.get(k, step_reward)] * A for k in kinds], dtype=np.float64)
    starts = np.array([rows[r][c] == "S" for r, c in cells], dtype=float)
    if starts.sum() == 0:
        starts = np.array([k not in absorbing for k in kinds], dtype=float)
    types = sorted(set(kinds))
    features = np.array([[k == t for t in types] for k in kinds], dtype=np.float64)
    return TabularMDP(
        P,
        R,
        starts / starts.sum(),
        features,
        state_names=tuple(f"{kinds[i]}({r},{c})" for i, (r, c) in enumerate(cells)),
        action_names=tuple(name for name, _ in ACTIONS),
        grid_shape=(n_rows, n_cols),
        cells=cells,
        layout=tuple(rows),
    )


def random_mdp(
    rng: np.random.Generator,
    n_states: int,
    n_actions: int,
    *,
    kind: str = "dense",
    successors: int | None = None,
    concentration: float = 1.0,
    reward_scale: float = 1.0,
    reward_loc: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """A random MDP: transitions P (S, A, S) and rewards R (S, A) = loc + scale * N(0, 1).

    ``kind``: "dense" (each row of P a Dirichlet(concentration) draw over all S states),
    "sparse" (mass on ``successors`` random next states, 1 to 3 at random when None, so that P
    has zeros as gridworlds do) or "deterministic" (one next state per (s, a)).
    """
    S, A = n_states, n_actions
    if kind == "dense":
        P = rng.dirichlet(np.full(S, concentration), size=(S, A))
    elif kind == "deterministic":
        P = np.eye(S)[rng.integers(S, size=(S, A))]
    elif kind == "sparse":
        P = np.zeros((S, A, S))
        for s in range(S):  # built once per call; the algorithms themselves are vectorised
            for a in range(A):
                k = successors or int(rng.integers(1, min(3, S) + 1))
                targets = rng.choice(S, size=min(k, S), replace=False)
                P[s, a, targets] = rng.dirichlet(np.full(len(targets), concentration))
    else:
        raise ValueError(f"kind must be 'dense', 'sparse' or 'deterministic', got {kind!r}")
    return P, reward_loc + reward_scale * rng.normal(size=(S, A))


def sample_trajectories(
    mdp: TabularMDP, policy: np.ndarray, horizon: int, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``n`` trajectories of length ``horizon``, vectorised over trajectories.

    policy: (S, A) stationary or (T, S, A) time-indexed, rows summing to one.
    Returns states and actions, int arrays of shape (n, horizon).
    """
    policy = np.asarray(policy, dtype=np.float64)
    if policy.shape[-2:] != (mdp.n_states, mdp.n_actions) or policy.ndim not in (2, 3):
        raise ValueError(
            f"policy must have shape (S, A) or (T, S, A) with S, A = "
            f"{mdp.n_states}, {mdp.n_actions}; got {policy.shape}"
        )
    if policy.ndim == 3 and policy.shape[0] < horizon:
        raise ValueError(
            f"a time-indexed policy needs at least {horizon} steps, got {policy.shape[0]}"
        )
    states = np.empty((n, horizon), dtype=np.int64)
    actions = np.empty((n, horizon), dtype=np.int64)
    s = rng.choice(mdp.n_states, size=n, p=mdp.p0)
    cum_P = np.cumsum(mdp.P, axis=2)
    for t in range(horizon):
        pi_t = policy[t] if policy.ndim == 3 else policy
        a = (np.cumsum(pi_t[s], axis=1) < rng.random((n, 1))).sum(axis=1)
        a = np.minimum(a, mdp.n_actions - 1)  # guards against rounding in the cumulative sum
        states[:, t], actions[:, t] = s, a
        s = np.minimum((cum_P[s, a] < rng.random((n, 1))).sum(axis=1), mdp.n_states - 1)
    return states, actions


class TabularEnv(gym.Env):
    """A :class:`TabularMDP` as a gymnasium environment (Discrete states and actions).

    Episodes are truncated after ``horizon`` steps and never terminate otherwise (absorbing
    cells keep giving their reward), matching the finite-horizon model of the chapters.
    """

    metadata: ClassVar[dict] = {"render_modes": ["ansi"]}

    def __init__(self, mdp: TabularMDP, horizon: int = 50, render_mode: str | None = None):
        if horizon < 1:
            raise ValueError(f"horizon must be a positive integer, got {horizon}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.mdp, self.horizon, self.render_mode = mdp, horizon, render_mode
        self.observation_space = gym.spaces.Discrete(mdp.n_states)
        self.action_space = gym.spaces.Discrete(mdp.n_actions)
        self._state, self._t = 0, 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._state = int(self.np_random.choice(self.mdp.n_states, p=self.mdp.p0))
        self._t = 0
        return self._state, {}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(
                f"action must be an integer in [0, {self.mdp.n_actions}), got {action!r}"
            )
        reward = float(self.mdp.R[self._state, action])
        self._state = int(
            self.np_random.choice(self.mdp.n_states, p=self.mdp.P[self._state, action])
        )
        self._t += 1
        return self._state, reward, False, self._t >= self.horizon, {}

    def render(self):
        if self.render_mode != "ansi" or self.mdp.layout is None:
            return None
        grid = [list(row.replace("S", ".")) for row in self.mdp.layout]
        r, c = self.mdp.cells[self._state]
        grid[r][c] = "@"
        return "\n".join("".join(row) for row in grid)
