"""Linearly solvable MDPs (Todorov 2006, 2008, 2009): desirability, optimal control, duality.

A linearly solvable MDP (LMDP) has states only: passive dynamics ``p[s, s'] = p(s' | s)``
(the uncontrolled behaviour, the course's action prior), a state reward ``r[s]`` and a
temperature ``alpha > 0``. The controller picks the next-state distribution ``u(. | s)`` and is
charged ``alpha * KL(u(. | s) || p(. | s))`` for departing from the passive dynamics. Todorov
writes costs ``q = -r`` with ``alpha = 1``; in the course's reward convention the Bellman
equation (Todorov 2006; 2009) is

    V(s) = r(s) + max_u [ -alpha KL(u || p) + E_u V(s') ] = r(s) + alpha log sum_s' p(s'|s) exp(V(s') / alpha),

so the **desirability** ``z = exp(V / alpha)`` satisfies a *linear* equation,
``z = G p z`` with ``G = diag(exp(r / alpha))``, and the optimal control is
``u*(s' | s) = p(s' | s) z(s') / sum_s'' p(s'' | s) z(s'')`` (Todorov 2009).

* First exit (goal states end the task, ``z(g) = exp(r(g) / alpha)``): a linear system for the
  other states, ``(I - G_II p_II) z_I = G_II p_IG z_G``.
* Average reward: ``lambda z = G p z``, the Perron eigenvector; the optimal average reward is
  ``rho = alpha log lambda``.
* Finite horizon: ``z_{T-1} = exp(r / alpha)``, ``z_t = G p z_{t+1}``: the backward filter of
  the hidden Markov model with prior dynamics ``p`` and observation likelihood ``exp(r / alpha)``
  (the duality between control and estimation, Todorov 2008).

All arrays are numpy float64. ``p`` is (S, S) with rows summing to one, ``r`` is (S,).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from .mdp import validate_transitions

__all__ = [
    "average_reward_desirability",
    "controlled_dynamics",
    "finite_horizon_desirability",
    "first_exit_desirability",
    "lmdp_rewards",
    "passive_dynamics",
]


def _check(p: np.ndarray, r: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, float]:
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != p.shape[1]:
        raise ValueError(f"p must be a square (S, S) matrix of p(s'|s), got shape {p.shape}")
    validate_transitions(p[:, None, :], name="p")
    r = np.asarray(r, dtype=np.float64)
    if r.shape != (p.shape[0],):
        raise ValueError(f"r must have shape (S,) = ({p.shape[0]},), got {r.shape}")
    if not np.isfinite(r).all():
        raise ValueError("r must be finite")
    if not alpha > 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    return p, r, float(alpha)


def passive_dynamics(P: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
    """p(s' | s) = sum_a prior(a | s) P[s, a, s'], shape (S, S); the prior is uniform by default.

    For a deterministic MDP (each action chooses a next state) this is the LMDP whose optimal
    values equal the soft values of the MDP with rewards :func:`lmdp_rewards`.
    """
    P = validate_transitions(P)
    S, A, _ = P.shape
    prior = np.full((S, A), 1.0 / A) if prior is None else np.asarray(prior, dtype=np.float64)
    if prior.shape != (S, A):
        raise ValueError(f"prior must have shape (S, A) = {(S, A)}, got {prior.shape}")
    return np.einsum("sa,sap->sp", prior, P)


def lmdp_rewards(r: np.ndarray, n_actions: int, alpha: float, prior: np.ndarray | None = None):
    """The MDP rewards R[s, a] = r(s) + alpha log prior(a | s), shape (S, A).

    With these rewards, the soft values of a deterministic MDP (chapters 04-05, which fold a
    uniform action prior in as 1) equal the LMDP values with passive dynamics
    :func:`passive_dynamics`: ``alpha log sum_a prior(a|s) exp(V(s'_a)/alpha)`` is the LMDP backup.
    """
    r = np.asarray(r, dtype=np.float64)
    if prior is None:
        return r[:, None] - alpha * np.log(n_actions) * np.ones((1, n_actions))
    return r[:, None] + alpha * np.log(np.asarray(prior, dtype=np.float64))


def first_exit_desirability(
    p: np.ndarray, r: np.ndarray, goal: np.ndarray, alpha: float = 1.0
) -> np.ndarray:
    """z (S,) of the first-exit LMDP: z(g) = exp(r(g)/alpha) on goal states, and for the others
    the linear system (I - G_II p_II) z_I = G_II p_IG z_G, G = diag(exp(r/alpha)).

    ``goal``: boolean mask (S,) of the terminal states; every other state must reach one.
    """
    p, r, alpha = _check(p, r, alpha)
    goal = np.asarray(goal, dtype=bool)
    if goal.shape != r.shape or not goal.any():
        raise ValueError(f"goal must be a boolean mask of shape {r.shape} with at least one goal")
    inner = ~goal
    g = np.exp(r / alpha)
    z = np.empty_like(r)
    z[goal] = g[goal]
    A = np.eye(inner.sum()) - g[inner, None] * p[np.ix_(inner, inner)]
    b = g[inner] * (p[np.ix_(inner, goal)] @ z[goal])
    z[inner] = np.linalg.solve(A, b)
    return z


def controlled_dynamics(p: np.ndarray, z: np.ndarray) -> np.ndarray:
    """u*(s' | s) = p(s' | s) z(s') / sum_s'' p(s'' | s) z(s''), shape (S, S)."""
    u = np.asarray(p, dtype=np.float64) * np.asarray(z, dtype=np.float64)[None, :]
    return u / u.sum(axis=1, keepdims=True)


def average_reward_desirability(
    p: np.ndarray, r: np.ndarray, alpha: float = 1.0
) -> tuple[float, np.ndarray]:
    """(rho, z): the Perron root lambda of G p and its positive eigenvector z (max 1);
    rho = alpha log lambda is the optimal average reward.

    p must be irreducible (every state reaches every other) for z to be positive and unique.
    """
    p, r, alpha = _check(p, r, alpha)
    M = np.exp((r - r.max()) / alpha)[:, None] * p  # scaled by exp(-max r / alpha): no overflow
    eigenvalues, vectors = np.linalg.eig(M)
    k = int(np.argmax(eigenvalues.real))
    z = np.abs(vectors[:, k].real)
    return float(r.max() + alpha * np.log(eigenvalues[k].real)), z / z.max()


def finite_horizon_desirability(
    p: np.ndarray, r: np.ndarray, horizon: int, alpha: float = 1.0
) -> np.ndarray:
    """The finite-horizon values V (T, S) = alpha log z_t: V_{T-1} = r and
    V_t(s) = r(s) + alpha log sum_s' p(s'|s) exp(V_{t+1}(s')/alpha), i.e. z_t = G p z_{t+1}.

    Computed in log space, so that it stays finite for large rewards and small alpha.
    """
    p, r, alpha = _check(p, r, alpha)
    T = int(horizon)
    if T != horizon or T < 1:
        raise ValueError(f"horizon must be a positive integer, got {horizon}")
    with np.errstate(divide="ignore"):
        log_p = np.log(p)
    V = np.empty((T, r.size))
    V[T - 1] = r
    for t in range(T - 2, -1, -1):
        V[t] = r + alpha * logsumexp(log_p + V[t + 1][None, :] / alpha, axis=1)
    return V
