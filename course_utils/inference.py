"""Control as inference on tabular MDPs: messages, soft policies, soft value iteration.

The tabular contract of the course (chapters 04, 05 and 08-10 rely on these names and
meanings). All arrays are numpy float64; ``P[s, a, s']`` is (S, A, S), ``R[s, a]`` is (S, A),
``alpha > 0`` is the temperature. Everything is vectorised over states and actions and works
in log space (logsumexp), so it stays finite for rewards of size 1e3 and alpha down to 1e-3.

Slides, "Backward Messages vs Value Iteration": with ``V(s_t) = log beta_t(s_t)`` and
``Q(s_t, a_t) = log beta_t(s_t, a_t)``,

    V_t(s) = alpha * log sum_a exp(Q_t(s, a) / alpha)                       (soft max)
    Q_t(s, a) = r(s, a) + alpha * log E_{s'}[exp(V_{t+1}(s') / alpha)]       (exact messages: optimistic)
    Q_t(s, a) = r(s, a) + E_{s'}[V_{t+1}(s')]                                ("a better stochastic model")
    pi_t(a | s) = beta_t(s, a) / beta_t(s) = exp((Q_t(s, a) - V_t(s)) / alpha)
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import sparse
from scipy.special import entr

from .mdp import validate_distribution, validate_transitions

__all__ = [
    "backward_messages",
    "forward_log_messages",
    "forward_messages",
    "policy_objective",
    "posterior_marginals",
    "soft_max",
    "soft_policy",
    "soft_policy_evaluation",
    "soft_value_iteration",
    "value_iteration",
]


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not alpha > 0 or not np.isfinite(alpha):
        raise ValueError(f"alpha (the temperature) must be a positive number, got {alpha}")
    return alpha


def _check_rewards(R: np.ndarray, S: int, A: int) -> np.ndarray:
    R = np.asarray(R, dtype=np.float64)
    if R.shape != (S, A):
        raise ValueError(f"R must have shape (S, A) = {(S, A)} to match P, got {R.shape}")
    if not np.isfinite(R).all():
        raise ValueError("R contains NaN or inf; rewards must be finite")
    return R


def soft_max(Q: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """V = alpha * log sum_a exp(Q / alpha) over the last axis (any leading dims).

    Computed as m + alpha * log sum_a exp((Q - m) / alpha) with m = max_a Q, so that it is
    exact for rewards of size 1e3 and alpha down to 1e-3 (all -inf rows give -inf).
    """
    alpha = _check_alpha(alpha)
    Q = np.asarray(Q, dtype=np.float64)
    m = Q.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return (m + alpha * np.log(np.exp((Q - m) / alpha).sum(axis=-1, keepdims=True)))[..., 0]


class _Transitions:
    """P (S, A, S) as a sparse (S*A, S) matrix: expectations over next states in O(nonzeros)."""

    def __init__(self, P: np.ndarray):
        self.S, self.A, _ = P.shape
        flat = P.reshape(self.S * self.A, self.S)
        rows, cols = np.nonzero(flat != 0)  # row-major order: sorted by row, as CSR needs
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(flat)))])
        self.matrix = sparse.csr_matrix((flat[rows, cols], cols, indptr), shape=flat.shape)
        self._row_starts = self.matrix.indptr[:-1]  # every row is non-empty: it sums to one
        self._row_lengths = np.diff(self.matrix.indptr)

    def expect(self, v: np.ndarray) -> np.ndarray:
        """E_{s' ~ P[s, a]}[v(s')], shape (S, A)."""
        return (self.matrix @ v).reshape(self.S, self.A)

    def soft_expect(self, v: np.ndarray, alpha: float) -> np.ndarray:
        """alpha * log E_{s' ~ P[s, a]}[exp(v(s') / alpha)], shape (S, A), without underflow.

        The maximum is taken over the next states each (s, a) can reach, so that a pair whose
        successors all have very low value does not get log(0).
        """
        scaled = v[self.matrix.indices] / alpha
        m = np.maximum.reduceat(scaled, self._row_starts)
        weights = self.matrix.data * np.exp(scaled - np.repeat(m, self._row_lengths))
        return (alpha * (m + np.log(np.add.reduceat(weights, self._row_starts)))).reshape(
            self.S, self.A
        )

    def propagate(self, d: np.ndarray, pi: np.ndarray) -> np.ndarray:
        """Next-state distribution sum_{s,a} d(s) pi(a|s) P(s'|s,a), shape (S,)."""
        return self.matrix.T @ (d[:, None] * pi).reshape(self.S * self.A)


def backward_messages(
    P: np.ndarray, R: np.ndarray, horizon: int, *, alpha: float = 1.0, optimistic: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Finite-horizon backward messages in log space (no discount).

    Returns Q of shape (T, S, A) and V of shape (T, S) with T = horizon:
    ``Q[T-1] = R``; for t < T-1, ``Q[t] = R + E_{s'}[V[t+1](s')]`` (variational), or with
    ``optimistic=True`` ``Q[t] = R + alpha * log E_{s'}[exp(V[t+1](s') / alpha)]`` (the exact
    PGM messages ``log beta_t``); ``V[t] = alpha * logsumexp(Q[t] / alpha)`` over actions.
    """
    P = validate_transitions(P)
    S, A, _ = P.shape
    R = _check_rewards(R, S, A)
    alpha = _check_alpha(alpha)
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be a positive integer, got {horizon}")
    T = int(horizon)
    Q = np.empty((T, S, A))
    V = np.empty((T, S))
    transitions = _Transitions(P)
    Q[T - 1] = R
    V[T - 1] = soft_max(R, alpha)
    for t in range(T - 2, -1, -1):
        if optimistic:
            Q[t] = R + transitions.soft_expect(V[t + 1], alpha)
        else:
            Q[t] = R + transitions.expect(V[t + 1])
        V[t] = soft_max(Q[t], alpha)
    return Q, V


def soft_policy(Q: np.ndarray, V: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """pi(a | s) = exp((Q - V[..., None]) / alpha); Q is (..., S, A) and V is (..., S).

    V must be the soft max of Q (as returned by backward_messages / soft_value_iteration);
    the result is renormalised over actions to remove rounding error.
    """
    alpha = _check_alpha(alpha)
    Q, V = np.asarray(Q, dtype=np.float64), np.asarray(V, dtype=np.float64)
    if Q.shape[:-1] != V.shape:
        raise ValueError(f"V must have Q's shape without the action axis: Q {Q.shape}, V {V.shape}")
    pi = np.exp((Q - V[..., None]) / alpha)
    # Exact when V is the soft max of Q; renormalising removes the rounding that builds up for
    # rewards of size 1e3 at alpha = 1e-3, so forward_messages always receives distributions.
    return pi / pi.sum(axis=-1, keepdims=True)


def forward_messages(P: np.ndarray, pi: np.ndarray, p0: np.ndarray, horizon: int) -> np.ndarray:
    """State marginals D of shape (T, S): ``D[0] = p0``, ``D[t+1](s') = sum_{s,a} D[t](s) pi_t(a|s) P(s'|s,a)``.

    pi is stationary (S, A) or time-indexed (T, S, A); each row must be a distribution.
    """
    P = validate_transitions(P)
    S, A, _ = P.shape
    p0 = validate_distribution(p0, S)
    T = int(horizon)
    if T != horizon or T < 1:
        raise ValueError(f"horizon must be a positive integer, got {horizon}")
    pi = np.asarray(pi, dtype=np.float64)
    stationary = pi.shape == (S, A)
    if not stationary and not (pi.ndim == 3 and pi.shape[1:] == (S, A) and pi.shape[0] >= T):
        raise ValueError(
            f"pi must have shape (S, A) = {(S, A)} or (T, S, A) with T >= {T}, got {pi.shape}"
        )
    sums = pi.sum(axis=-1)
    if not np.allclose(sums, 1.0, atol=1e-8):
        where = np.unravel_index(np.argmax(np.abs(sums - 1)), sums.shape)
        raise ValueError(f"pi{list(where)} sums to {sums[where]:.6g}; each pi(.|s) must sum to 1")
    transitions = _Transitions(P)
    D = np.empty((T, S))
    D[0] = p0
    for t in range(T - 1):
        D[t + 1] = transitions.propagate(D[t], pi if stationary else pi[t])
    return D


def _discounted_iteration(P, R, gamma, tol, max_iter, backup):
    P = validate_transitions(P)
    S, A, _ = P.shape
    R = _check_rewards(R, S, A)
    if not 0 <= gamma < 1:
        raise ValueError(f"gamma must be in [0, 1) for the infinite horizon, got {gamma}")
    expect = _Transitions(P).expect
    V = backup(R)
    for _ in range(int(max_iter)):
        V_new = backup(R + gamma * expect(V))
        if np.max(np.abs(V_new - V)) < tol:
            break
        V = V_new
    else:
        warnings.warn(
            f"value iteration did not reach tol={tol:g} in {max_iter} iterations",
            RuntimeWarning,
            stacklevel=2,
        )
    # One last backup so that V is exactly backup(Q): policies built from (Q, V) then normalise.
    Q = R + gamma * expect(V_new)
    return Q, backup(Q)


def soft_value_iteration(
    P: np.ndarray,
    R: np.ndarray,
    *,
    gamma: float,
    alpha: float = 1.0,
    tol: float = 1e-10,
    max_iter: int = 100_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Discounted soft value iteration: Q = R + gamma E_{s'}[V(s')], V = alpha logsumexp(Q / alpha).

    Iterates until max |V_new - V| < tol. Returns Q (S, A) and V (S,).
    """
    alpha = _check_alpha(alpha)
    return _discounted_iteration(P, R, gamma, tol, max_iter, lambda Q: soft_max(Q, alpha))


def value_iteration(
    P: np.ndarray, R: np.ndarray, *, gamma: float, tol: float = 1e-10, max_iter: int = 100_000
) -> tuple[np.ndarray, np.ndarray]:
    """Hard value iteration: Q = R + gamma E_{s'}[V(s')], V = max_a Q. Returns Q (S, A), V (S,)."""
    return _discounted_iteration(P, R, gamma, tol, max_iter, lambda Q: Q.max(axis=-1))


def _log_matmul(log_w: np.ndarray, P: np.ndarray) -> np.ndarray:
    """log sum_{s,a} P[s, a, s'] exp(log_w[s, a]), shape (S,), without overflow or underflow.

    The maximum is taken per next state s' over the pairs (s, a) that can reach it, so a state
    reachable only from very unlikely pairs keeps a finite value; an unreachable one gets -inf.
    """
    scores = np.where(P > 0, log_w[:, :, None], -np.inf)  # (S, A, S')
    m = scores.max(axis=(0, 1))
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return m + np.log(np.sum(P * np.exp(scores - m), axis=(0, 1)))


def forward_log_messages(P: np.ndarray, R: np.ndarray, p0: np.ndarray, horizon: int) -> np.ndarray:
    """log alpha_t(s) = log p(s_t = s, O_{0:t-1}), shape (T, S), with p(a|s) = 1 and p(O|s,a) = exp(r).

    alpha_0 = p0 and alpha_{t+1}(s') = sum_{s,a} p(s'|s,a) exp(r(s,a)) alpha_t(s) (slides, "Forward
    messages", unnormalised: the optimality factor of step t is kept with the state, so that
    p(s_t | O_{0:T-1}) is proportional to alpha_t(s_t) beta_t(s_t)); -inf for unreachable states.
    """
    P = validate_transitions(P)
    S, A, _ = P.shape
    R = _check_rewards(R, S, A)
    p0 = validate_distribution(p0, S)
    T = int(horizon)
    log_alpha = np.empty((T, S))
    with np.errstate(divide="ignore"):
        log_alpha[0] = np.log(p0)
    for t in range(T - 1):
        log_alpha[t + 1] = _log_matmul(log_alpha[t][:, None] + R, P)
    return log_alpha


def soft_policy_evaluation(
    P: np.ndarray, R: np.ndarray, pi: np.ndarray, gamma: float, alpha: float = 0.0
) -> np.ndarray:
    """V^pi (S,) solving V = r_pi + alpha * H_pi + gamma * P_pi V (gamma < 1), with 0 log 0 = 0.

    r_pi(s) = sum_a pi(a|s) R(s, a), H_pi(s) = -sum_a pi(a|s) log pi(a|s) and
    P_pi(s, s') = sum_a pi(a|s) P(s'|s, a); alpha = 0 gives the plain expected return.
    """
    P, R, pi = (np.asarray(x, dtype=np.float64) for x in (P, R, pi))
    P_pi = np.einsum("sa,sap->sp", pi, P)
    r_pi = np.sum(pi * R, axis=1) + alpha * entr(pi).sum(axis=1)
    return np.linalg.solve(np.eye(P.shape[0]) - gamma * P_pi, r_pi)


def posterior_marginals(
    P: np.ndarray, R: np.ndarray, p0: np.ndarray, horizon: int, alpha: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """The policy pi_t(a|s) = p(a_t | s_t, O_{0:T-1}) (T, S, A) and the state marginals of the
    posterior p(s_t | O_{0:T-1}) (T, S), at temperature alpha (p(O_t | s, a) = exp(r(s, a) / alpha)).

    Slides, "Inference = Control": the backward pass (exact messages, ``optimistic=True``), the
    policy ``exp((Q - V) / alpha)``, the forward pass, and ``p(s_t | O) ~ alpha_t(s_t) beta_t(s_t)``
    ("Forward messages"), normalised over states at every t.
    """
    alpha = _check_alpha(alpha)
    Q, V = backward_messages(P, R, horizon, alpha=alpha, optimistic=True)
    log_post = forward_log_messages(P, np.asarray(R, dtype=np.float64) / alpha, p0, horizon)
    log_post = log_post + V / alpha  # log alpha_t + log beta_t
    log_post -= log_post.max(axis=1, keepdims=True)
    marginals = np.exp(log_post)
    return soft_policy(Q, V, alpha), marginals / marginals.sum(axis=1, keepdims=True)


def policy_objective(
    P: np.ndarray,
    R: np.ndarray,
    pi: np.ndarray,
    p0: np.ndarray,
    horizon: int,
    alpha: float = 0.0,
    gamma: float = 1.0,
) -> float:
    """sum_{t<T} gamma^t E_{s_t ~ q_pi}[sum_a pi_t(a|s_t) (r(s_t, a) + alpha * H(pi_t(.|s_t)))].

    The variational objective of the slides ("Control via Variational Inference"): the ELBO of the
    policy pi under the TRUE dynamics, q_pi(s_t) from ``forward_messages``; alpha = 0 gives the
    expected return. pi is stationary (S, A) or time-indexed (T, S, A); 0 log 0 counts as 0.
    """
    pi = np.asarray(pi, dtype=np.float64)
    D = forward_messages(P, pi, p0, horizon)  # (T, S)
    pi_t = np.broadcast_to(pi, (horizon, *pi.shape)) if pi.ndim == 2 else pi[:horizon]
    per_state = (pi_t * np.asarray(R, dtype=np.float64)).sum(-1) + alpha * entr(pi_t).sum(-1)
    return float(np.sum(gamma ** np.arange(horizon) * (D * per_state).sum(-1)))
