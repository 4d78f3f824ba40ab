"""Maximum-entropy inverse RL on tabular MDPs (slides: "Inverse Reinforcement Learning").

The reward is linear in state features, ``r_psi(s) = features[s] @ theta`` (the slides'
``psi^T f(s, a)`` with features that do not depend on the action), and demonstrations are
integer arrays ``expert_states`` and ``expert_actions`` of shape (N, T). Everything is
finite-horizon (T steps, no discount) and uses the messages of :mod:`course_utils.inference`.

Two models of the demonstrations, both maximum-likelihood in theta:

* **causal** (default, ``optimistic=False``): the expert acts with the soft-optimal policy of
  the variational backward messages, ``pi_t(a|s) = exp((Q_t(s,a) - V_t(s)) / alpha)``, in the
  true dynamics (Ziebart 2010, maximum causal entropy). Then
  ``log Z = E_{s_0 ~ p0}[V_0(s_0)] / alpha`` and the log-likelihood of the slides,
  ``mean_i r_psi(tau_i) / alpha - log Z``, equals ``mean_i sum_t log pi_t(a_t|s_t)`` up to
  terms of zero mean under the dynamics (exactly, when the dynamics are deterministic).
* **optimistic** (``optimistic=True``): the exact PGM posterior ``p(tau | O, psi) ∝ p(tau)
  exp(r_psi(tau) / alpha)`` (Ziebart et al. 2008), ``log Z = log sum_s p0(s) beta_0(s)`` with
  the exact messages. Its trajectory distribution lets the expert "choose" the outcome of
  stochastic transitions and its start state (``p(s_0 | O) ∝ p0(s_0) beta_0(s_0)``), which is
  why the causal model is the default.

In both, slides "The IRL partition function", the gradient is

    grad_theta L = (mean_i sum_t f(s_{i,t}) - sum_t sum_{s,a} mu_t(s, a) f(s)) / alpha

with ``mu_t(s, a)`` the state-action visitation of the model ("Estimating the expectation":
``mu_t(s_t, a_t) ∝ beta_t(s_t, a_t) alpha_t(s_t)``), and L is concave in theta.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Sequence

import numpy as np
from scipy import optimize, sparse
from scipy.special import logsumexp

from .inference import backward_messages, forward_messages, soft_policy
from .mdp import TabularMDP, gridworld, validate_distribution, validate_transitions

__all__ = [
    "IRL_LAYOUT",
    "IRL_REWARDS",
    "MaxEntIRLResult",
    "ProjectionResult",
    "apprenticeship_projection",
    "causal_entropy",
    "effective_sample_size",
    "expected_return",
    "feature_expectations",
    "greedy_policy",
    "irl_gradient",
    "irl_gridworld",
    "irl_log_likelihood",
    "log_importance_weights",
    "log_partition",
    "maxent_irl",
    "maxent_irl_from_expectations",
    "mixture_policy",
    "policy_log_likelihood",
    "sample_irl_gradient",
    "self_normalized_estimate",
    "self_normalized_weights",
    "soft_optimal_trajectory_policy",
    "state_action_visitation",
    "trajectory_log_probs",
]

OPTIMIZERS = ("lbfgs", "adam", "gradient")

# The gridworld of chapter 08 and its benchmark: plain cells, water (W), lava (L) and an absorbing goal.
IRL_LAYOUT: tuple[str, ...] = (
    "S....W....",
    "..LL.W..G.",
    "..L..W....",
    "..........",
    "##.##WWW..",
    "S.......L.",
    "...L......",
    ".WWW..##.#",
    ".....LL...",
    "S.........",
)
IRL_REWARDS: dict[str, float] = {".": -0.2, "G": 2.0, "L": -3.0, "W": -1.0}


def irl_gridworld(
    layout: Sequence[str] = IRL_LAYOUT,
    *,
    slip: float = 0.1,
    rewards: dict[str, float] | None = None,
) -> tuple[TabularMDP, np.ndarray]:
    """A gridworld with a linear reward in its cell-type indicator features, and the true theta.

    Every cell type of ``rewards`` (default :data:`IRL_REWARDS`) must occur in ``layout``, so that
    the feature columns ('.', 'G', 'L', 'W' in sorted order) mean the same in every layout and a
    learned theta transfers. The goal is absorbing; ``slip`` as in :func:`course_utils.mdp.gridworld`.
    Returns the MDP (its R is the true reward) and theta_true (K,) with R[:, a] = features @ theta_true.
    """
    rewards = dict(IRL_REWARDS if rewards is None else rewards)
    kinds = sorted({"." if c == "S" else c for row in layout for c in row} - {"#"})
    if kinds != sorted(rewards):
        raise ValueError(
            f"the layout's cell types {kinds} must be exactly those of rewards {sorted(rewards)}"
        )
    mdp = gridworld(layout, rewards=rewards, step_reward=rewards["."], slip=slip, absorbing="G")
    return mdp, np.array([rewards[k] for k in kinds])


# ----------------------------------------------------------------------------- validation


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not np.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha (the temperature) must be a positive number, got {alpha}")
    return alpha


def _check_horizon(horizon) -> int:
    if isinstance(horizon, bool) or int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
    return int(horizon)


def _check_features(features, S: int) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] != S:
        raise ValueError(
            f"features must have shape (S, K) with S = {S} states (one row per state), "
            f"got {features.shape}"
        )
    if features.shape[1] == 0:
        raise ValueError("features must have at least one column (K >= 1)")
    if not np.isfinite(features).all():
        raise ValueError("features contain NaN or inf; they must be finite")
    return features


def _reward_table(R, S: int, A: int) -> np.ndarray:
    """A state reward (S,) broadcast over actions, or an (S, A) table, as float64 (S, A)."""
    R = np.asarray(R, dtype=np.float64)
    if R.shape == (S,):
        return np.repeat(R[:, None], A, axis=1)
    if R.shape != (S, A):
        raise ValueError(f"R must have shape (S,) = ({S},) or (S, A) = {(S, A)}, got {R.shape}")
    return R


def _index_array(values, name: str, size: int, what: str) -> np.ndarray:
    """Demonstration states or actions as an int64 (N, T) array with entries in [0, size)."""
    try:
        array = np.asarray(values)
    except (ValueError, TypeError):  # numpy refuses ragged nested lists
        array = np.asarray(values, dtype=object)
    if array.dtype == object:
        raise ValueError(
            f"{name} must be a rectangular (N, T) array of integers; got ragged or "
            "non-numeric data (all demonstrations must have the same length T)"
        )
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            f"{name} must have shape (N, T) with N >= 1 demonstrations of T >= 1 "
            f"steps, got {array.shape}"
        )
    if array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer {what} indices, got dtype {array.dtype}")
    bad = (array < 0) | (array >= size)
    if bad.any():
        i, t = np.argwhere(bad)[0]
        raise ValueError(
            f"{name}[{i}, {t}] = {array[i, t]} is not a valid {what} index: "
            f"{what}s are 0 .. {size - 1}"
        )
    return array.astype(np.int64)


def _check_policy(policy, S: int, A: int, horizon: int | None = None) -> np.ndarray:
    policy = np.asarray(policy, dtype=np.float64)
    if policy.shape == (S, A):
        return policy
    if (
        policy.ndim != 3
        or policy.shape[1:] != (S, A)
        or (horizon is not None and policy.shape[0] < horizon)
    ):
        need = "" if horizon is None else f" with T >= {horizon}"
        raise ValueError(
            f"policy must have shape (S, A) = {(S, A)} or (T, S, A){need}, got {policy.shape}"
        )
    return policy


# ----------------------------------------------------------------------------- visitation


def feature_expectations(features: np.ndarray, states: np.ndarray) -> np.ndarray:
    """Empirical feature counts of demonstrations: ``mean_i sum_t f(s_{i,t})``, shape (K,).

    features: (S, K); states: int (N, T). This is the slides' ``E_{pi*}[f]`` estimated from
    expert samples (a sum over time steps, averaged over demonstrations).
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"features must have shape (S, K), got {features.shape}")
    states = _index_array(states, "states", features.shape[0], "state")
    return features[states].sum(axis=1).mean(axis=0)


def _posterior_state_marginals(
    P: np.ndarray, p0: np.ndarray, pi: np.ndarray, V: np.ndarray, alpha: float
) -> np.ndarray:
    """p(s_t | O_{1:T}) of the exact PGM (optimistic messages), shape (T, S).

    Given optimality, the posterior is again a Markov chain: it starts in
    ``p(s_0 | O) ∝ p0(s_0) beta_0(s_0)``, acts with ``pi_t`` and moves with the *tilted*
    dynamics ``P(s'|s,a) beta_{t+1}(s') / E_{s'}[beta_{t+1}(s')]`` (the agent is lucky).
    """
    T, S, A = pi.shape
    flat = sparse.csr_matrix(P.reshape(S * A, S))
    starts = flat.indptr[:-1]
    rows = np.repeat(np.arange(S * A), np.diff(flat.indptr))
    cols, log_p = flat.indices, np.log(flat.data)
    D = np.empty((T, S))
    with np.errstate(divide="ignore"):
        logits = np.log(p0) + V[0] / alpha
    D[0] = np.exp(logits - logsumexp(logits))
    for t in range(T - 1):
        log_w = log_p + V[t + 1][cols] / alpha  # log of P(s'|s,a) beta_{t+1}(s'), per nonzero
        row_max = np.maximum.reduceat(log_w, starts)
        w = np.exp(log_w - row_max[rows])
        w /= np.add.reduceat(w, starts)[rows]  # normalised over s' for every (s, a)
        x = (D[t][:, None] * pi[t]).ravel()
        D[t + 1] = np.bincount(cols, weights=x[rows] * w, minlength=S)
    return D


def _soft_solution(P, R, p0, horizon, alpha, optimistic):
    """Q, V (backward), pi (T, S, A) and the model's state marginals D (T, S)."""
    Q, V = backward_messages(P, R, horizon, alpha=alpha, optimistic=optimistic)
    pi = soft_policy(Q, V, alpha)
    pi /= pi.sum(axis=-1, keepdims=True)  # exact sums even when Q - V cancels badly (|Q| >> 1)
    if optimistic:
        D = _posterior_state_marginals(P, p0, pi, V, alpha)
    else:
        D = forward_messages(P, pi, p0, horizon)
    return Q, V, pi, D


def state_action_visitation(
    P: np.ndarray,
    R: np.ndarray,
    p0: np.ndarray,
    horizon: int,
    *,
    alpha: float = 1.0,
    optimistic: bool = False,
) -> np.ndarray:
    """mu_t(s, a) of the soft-optimal model, shape (T, S, A); each mu_t sums to one.

    Slides, "Estimating the expectation": ``mu_t(s_t, a_t) ∝ beta_t(s_t, a_t) alpha_t(s_t)``.
    Causal model (default): ``mu_t(s, a) = D_t(s) pi_t(a|s)`` with pi from the variational
    backward messages and D from the forward messages in the true dynamics, ``D_0 = p0``.
    ``optimistic=True``: the exact posterior marginals ``p(s_t, a_t | O_{1:T})``.
    R is (S, A) or a state reward (S,).
    """
    P = validate_transitions(P)
    S, A, _ = P.shape
    R = _reward_table(R, S, A)
    p0 = validate_distribution(p0, S)
    alpha, horizon = _check_alpha(alpha), _check_horizon(horizon)
    _, _, pi, D = _soft_solution(P, R, p0, horizon, alpha, optimistic)
    return D[:, :, None] * pi


def log_partition(
    P: np.ndarray,
    R: np.ndarray,
    p0: np.ndarray,
    horizon: int,
    *,
    alpha: float = 1.0,
    optimistic: bool = False,
) -> float:
    """log Z of the demonstrations' model, computed by the backward messages.

    Causal: ``log Z = sum_s p0(s) V_0(s) / alpha`` (variational messages). Optimistic (exact
    PGM): ``log Z = log sum_s p0(s) exp(V_0(s) / alpha)``, i.e. ``log sum_tau p(tau)
    exp(r(tau) / alpha)`` with ``p(tau) = p0(s_0) prod_t P(s_{t+1}|s_t,a_t)`` (uniform action
    prior without normalisation, as in the messages).
    """
    P = validate_transitions(P)
    S, A, _ = P.shape
    R = _reward_table(R, S, A)
    p0 = validate_distribution(p0, S)
    alpha, horizon = _check_alpha(alpha), _check_horizon(horizon)
    _, V = backward_messages(P, R, horizon, alpha=alpha, optimistic=optimistic)
    return _log_z(V[0], p0, alpha, optimistic)


def _log_z(V0, p0, alpha, optimistic) -> float:
    if optimistic:
        with np.errstate(divide="ignore"):
            return float(logsumexp(np.log(p0) + V0 / alpha))
    support = p0 > 0  # V0 may be -inf nowhere, but 0 * (-inf) must not give NaN
    return float(p0[support] @ V0[support] / alpha)


def _objective(theta, P, features, target, p0, horizon, alpha, optimistic):
    """L(theta) = theta . target / alpha - log Z, its gradient and the model (pi, D)."""
    S, A, _ = P.shape
    r = features @ theta
    _, V, pi, D = _soft_solution(P, _reward_table(r, S, A), p0, horizon, alpha, optimistic)
    model = D.sum(axis=0) @ features  # sum_t sum_s D_t(s) f(s) = sum_t sum_{s,a} mu_t(s,a) f(s)
    L = float(theta @ target) / alpha - _log_z(V[0], p0, alpha, optimistic)
    return L, (target - model) / alpha, model, pi, D


def _prepare(P, features, expert_states, p0, alpha):
    P = validate_transitions(P)
    S = P.shape[0]
    features = _check_features(features, S)
    expert_states = _index_array(expert_states, "expert_states", S, "state")
    p0 = validate_distribution(p0, S)
    return P, features, expert_states, p0, _check_alpha(alpha)


def irl_log_likelihood(
    theta: np.ndarray,
    P: np.ndarray,
    features: np.ndarray,
    expert_states: np.ndarray,
    p0: np.ndarray,
    *,
    alpha: float = 1.0,
    optimistic: bool = False,
) -> float:
    """The slides' ``L(psi) = mean_i r_psi(tau_i) / alpha - log Z`` (T = expert_states.shape[1]).

    Terms that do not depend on theta (``log p(tau_i)``: the start and dynamics) are left out.
    """
    P, features, expert_states, p0, alpha = _prepare(P, features, expert_states, p0, alpha)
    theta = np.asarray(theta, dtype=np.float64)
    target = feature_expectations(features, expert_states)
    return _objective(theta, P, features, target, p0, expert_states.shape[1], alpha, optimistic)[0]


def irl_gradient(
    theta: np.ndarray,
    P: np.ndarray,
    features: np.ndarray,
    expert_states: np.ndarray,
    p0: np.ndarray,
    alpha: float = 1.0,
    *,
    optimistic: bool = False,
) -> np.ndarray:
    """grad_theta L = (expert feature counts - sum_t sum_{s,a} mu_t(s,a) f(s)) / alpha, shape (K,).

    Slides, "The MaxEnt IRL algorithm": the expert's ``mean_i sum_t f(s_{i,t})`` minus the
    feature counts of the soft-optimal model for ``r = features @ theta``; T = expert_states.shape[1].
    """
    P, features, expert_states, p0, alpha = _prepare(P, features, expert_states, p0, alpha)
    theta = np.asarray(theta, dtype=np.float64)
    target = feature_expectations(features, expert_states)
    return _objective(theta, P, features, target, p0, expert_states.shape[1], alpha, optimistic)[1]


# ----------------------------------------------------------------------------- MaxEnt IRL


@dataclass(frozen=True)
class MaxEntIRLResult:
    """What :func:`maxent_irl` learned, with histories for learning curves.

    theta (K,): reward weights; reward (S,) = features @ theta; policy (T, S, A): the
    soft-optimal policy for that reward; visitation (T, S, A): the model's mu_t(s, a);
    expert_feature_expectations and feature_expectations (K,): what was matched and how well;
    log_likelihood, feature_gap (n + 1,): L and max_k |expert - model| before the first and
    after every iteration; theta_history (n + 1, K); converged: whether the objective's
    gradient (the feature gap, when there is no prior) got below tol.
    """

    theta: np.ndarray
    reward: np.ndarray
    policy: np.ndarray
    visitation: np.ndarray
    expert_feature_expectations: np.ndarray
    feature_expectations: np.ndarray
    log_likelihood: np.ndarray
    feature_gap: np.ndarray
    theta_history: np.ndarray
    converged: bool
    alpha: float
    optimistic: bool

    @property
    def n_iters(self) -> int:
        return len(self.log_likelihood) - 1


def maxent_irl_from_expectations(
    P: np.ndarray,
    features: np.ndarray,
    expert_feature_expectations: np.ndarray,
    *,
    horizon: int,
    p0: np.ndarray,
    alpha: float = 1.0,
    optimistic: bool = False,
    optimizer: str = "lbfgs",
    lr: float | None = None,
    n_iters: int = 500,
    tol: float = 1e-6,
    l2: float = 0.0,
    theta0: np.ndarray | None = None,
) -> MaxEntIRLResult:
    """MaxEnt IRL given the expert's feature counts ``sum_t E[f(s_t)]`` (K,) directly.

    Maximises the concave ``L(theta) = theta . f_E / alpha - log Z(theta)`` until the feature
    gap ``max_k |f_E - f_theta|`` is below ``tol`` or ``n_iters`` iterations have run. With
    ``l2 > 0`` it maximises ``L - l2 / 2 * ||theta / alpha||^2`` instead (MAP under a Gaussian
    prior: finite weights even when a feature never occurs in the demonstrations, where the
    maximum-likelihood weight is -inf) and stops when that objective's gradient is below tol.
    The optimiser works on ``theta / alpha`` (the policy depends on nothing else), so the
    temperature changes neither its steps nor its conditioning. ``optimizer``:
    ``"lbfgs"`` (scipy's L-BFGS-B, fast and the default), ``"adam"`` (lr defaults to 0.05) or
    ``"gradient"`` (plain gradient ascent as on the slides, lr defaults to 1 / T, which suits
    features of size about one).
    """
    P = validate_transitions(P)
    S = P.shape[0]
    features = _check_features(features, S)
    K = features.shape[1]
    target = np.asarray(expert_feature_expectations, dtype=np.float64)
    if target.shape != (K,) or not np.isfinite(target).all():
        raise ValueError(
            f"expert_feature_expectations must be a finite vector of shape ({K},), "
            f"got shape {target.shape}"
        )
    horizon, alpha = _check_horizon(horizon), _check_alpha(alpha)
    p0 = validate_distribution(p0, S)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if int(n_iters) != n_iters or n_iters < 0:
        raise ValueError(f"n_iters must be a non-negative integer, got {n_iters!r}")
    l2 = float(l2)
    if not l2 >= 0 or not np.isfinite(l2):
        raise ValueError(f"l2 must be a non-negative number, got {l2}")
    phi = np.zeros(K) if theta0 is None else np.asarray(theta0, dtype=np.float64).copy() / alpha
    if phi.shape != (K,):
        raise ValueError(f"theta0 must have shape ({K},), got {phi.shape}")

    def evaluate(x):
        """L, its gradient (the feature gap), the objective with the prior and its gradient, in phi."""
        L, grad, *_ = _objective(x, P, features, target, p0, horizon, 1.0, optimistic)
        return L, grad, L - 0.5 * l2 * float(x @ x), grad - l2 * x

    history: list[
        tuple[np.ndarray, float, float, float]
    ] = []  # phi, L, feature gap, |objective grad|

    def record(x, values):
        L, grad, _, obj_grad = values
        history.append((x.copy(), L, float(np.abs(grad).max()), float(np.abs(obj_grad).max())))

    values = evaluate(phi)
    record(phi, values)
    if optimizer == "lbfgs":
        cache: dict[bytes, tuple] = {}

        def negative(x):
            values = evaluate(x)
            cache.clear()
            cache[x.tobytes()] = values
            return -values[2], -values[3]

        def callback(intermediate_result):
            x = intermediate_result.x
            record(x, cache[x.tobytes()] if x.tobytes() in cache else evaluate(x))

        if history[-1][3] > tol and n_iters > 0:
            optimize.minimize(
                negative,
                phi,
                jac=True,
                method="L-BFGS-B",
                callback=callback,
                options={"maxiter": int(n_iters), "gtol": tol, "ftol": 1e-15, "maxcor": 20},
            )
    else:
        step = (0.05 if optimizer == "adam" else 1.0 / horizon) if lr is None else float(lr)
        if not step > 0:
            raise ValueError(f"lr must be positive, got {lr}")
        m, v = np.zeros(K), np.zeros(K)
        for k in range(1, int(n_iters) + 1):
            if history[-1][3] <= tol:
                break
            grad = values[3]
            if optimizer == "adam":
                m = 0.9 * m + 0.1 * grad
                v = 0.999 * v + 0.001 * grad**2
                phi = phi + step * (m / (1 - 0.9**k)) / (np.sqrt(v / (1 - 0.999**k)) + 1e-8)
            else:
                phi = phi + step * grad
            values = evaluate(phi)
            record(phi, values)

    best = history[-1][0]
    _, _, model, pi, D = _objective(best, P, features, target, p0, horizon, 1.0, optimistic)
    theta = alpha * best
    return MaxEntIRLResult(
        theta=theta,
        reward=features @ theta,
        policy=pi,
        visitation=D[:, :, None] * pi,
        expert_feature_expectations=target,
        feature_expectations=model,
        log_likelihood=np.array([h[1] for h in history]),
        feature_gap=np.array([h[2] for h in history]),
        theta_history=alpha * np.array([h[0] for h in history]),
        converged=bool(history[-1][3] <= tol),
        alpha=alpha,
        optimistic=bool(optimistic),
    )


def maxent_irl(
    P: np.ndarray,
    features: np.ndarray,
    expert_states: np.ndarray,
    expert_actions: np.ndarray,
    *,
    horizon: int,
    p0: np.ndarray | None = None,
    alpha: float = 1.0,
    optimistic: bool = False,
    optimizer: str = "lbfgs",
    lr: float | None = None,
    n_iters: int = 500,
    tol: float = 1e-6,
    l2: float = 0.0,
    theta0: np.ndarray | None = None,
) -> MaxEntIRLResult:
    """MaxEnt IRL from demonstrations (slides, "The MaxEnt IRL algorithm").

    P: (S, A, S) known dynamics; features: (S, K) state features, r_psi = features @ theta;
    expert_states, expert_actions: int (N, T) with T == horizon; p0: (S,) start distribution,
    estimated from the demonstrations' first states when None. The remaining arguments are
    those of :func:`maxent_irl_from_expectations`, which does the optimisation on the
    expert's empirical feature counts. The actions do not enter the gradient (the reward
    depends on states only) but are validated, so that broken demonstrations fail loudly.
    """
    P = validate_transitions(P)
    S, A, _ = P.shape
    features = _check_features(features, S)
    horizon = _check_horizon(horizon)
    states = _index_array(expert_states, "expert_states", S, "state")
    actions = _index_array(expert_actions, "expert_actions", A, "action")
    if states.shape != actions.shape:
        raise ValueError(
            f"expert_states {states.shape} and expert_actions {actions.shape} must "
            "have the same shape (N, T)"
        )
    if states.shape[1] != horizon:
        raise ValueError(
            f"the demonstrations have T = {states.shape[1]} steps but horizon = "
            f"{horizon}; the model's feature counts must cover the same steps"
        )
    if p0 is None:
        p0 = np.bincount(states[:, 0], minlength=S) / states.shape[0]
    return maxent_irl_from_expectations(
        P,
        features,
        feature_expectations(features, states),
        horizon=horizon,
        p0=p0,
        alpha=alpha,
        optimistic=optimistic,
        optimizer=optimizer,
        lr=lr,
        n_iters=n_iters,
        tol=tol,
        l2=l2,
        theta0=theta0,
    )


# ----------------------------------------------------------------------------- evaluation


def _marginals(P, policy, p0, horizon):
    """(P, pi as (T, S, A), visitation mu (T, S, A)) of a policy run in the true dynamics."""
    P = validate_transitions(P)
    S, A, _ = P.shape
    horizon = _check_horizon(horizon)
    policy = _check_policy(policy, S, A, horizon)
    pi = np.broadcast_to(policy, (horizon, S, A)) if policy.ndim == 2 else policy[:horizon]
    D = forward_messages(P, pi, validate_distribution(p0, S), horizon)
    return pi, D[:, :, None] * pi


def expected_return(
    P: np.ndarray, R: np.ndarray, policy: np.ndarray, p0: np.ndarray, horizon: int
) -> float:
    """Exact ``E[sum_{t<T} r(s_t, a_t)]`` of ``policy`` (S, A) or (T, S, A) from p0, by forward messages."""
    S, A = np.shape(P)[:2]
    _, mu = _marginals(P, policy, p0, horizon)
    return float(np.sum(mu * _reward_table(R, S, A)[None]))


def causal_entropy(P: np.ndarray, policy: np.ndarray, p0: np.ndarray, horizon: int) -> float:
    """``H = E[sum_t -log pi_t(a_t | s_t)]`` when acting with ``policy`` from p0 (0 log 0 = 0)."""
    pi, mu = _marginals(P, policy, p0, horizon)
    with np.errstate(divide="ignore"):
        log_pi = np.where(mu > 0, np.log(np.where(pi > 0, pi, 1.0)), 0.0)
    return float(-np.sum(mu * log_pi))


def policy_log_likelihood(policy: np.ndarray, states: np.ndarray, actions: np.ndarray) -> float:
    """``mean_i sum_t log pi_t(a_{i,t} | s_{i,t})`` of demonstrations; policy (S, A) or (T, S, A)."""
    return float(trajectory_log_probs(policy, states, actions).sum(axis=1).mean())


# ----------------------------------------------------------------------------- max margin


def greedy_policy(P: np.ndarray, R: np.ndarray, horizon: int) -> np.ndarray:
    """A deterministic optimal policy (T, S, A) of the finite-horizon MDP: hard DP, max not soft max.

    Ties go to the first best action, so the result is reproducible.
    """
    P = validate_transitions(P)
    S, A, _ = P.shape
    R = _reward_table(R, S, A)
    horizon = _check_horizon(horizon)
    expect = sparse.csr_matrix(P.reshape(S * A, S))
    pi = np.zeros((horizon, S, A))
    V = np.zeros(S)
    for t in range(horizon - 1, -1, -1):
        Q = R + (expect @ V).reshape(S, A)
        best = Q.argmax(axis=1)
        pi[t, np.arange(S), best] = 1.0
        V = Q[np.arange(S), best]
    return pi


@dataclass(frozen=True)
class ProjectionResult:
    """Apprenticeship learning by projection (Abbeel & Ng 2004).

    weights (n, K): the reward weights w^(i) tried; margins (n,): t^(i) = ||f_E - f_bar^(i-1)||;
    policies (n, T, S, A): the deterministic optimal policy for each w^(i) (and the start
    policy first); feature_expectations (n, K) theirs; mixture_weights (n,): lambda, the mixture
    of the policies whose feature counts f_bar are closest to the expert's.
    """

    weights: np.ndarray
    margins: np.ndarray
    policies: np.ndarray
    feature_expectations: np.ndarray
    mixture_weights: np.ndarray
    mixture_feature_expectations: np.ndarray


def apprenticeship_projection(
    P: np.ndarray,
    features: np.ndarray,
    expert_feature_expectations: np.ndarray,
    p0: np.ndarray,
    horizon: int,
    *,
    n_iters: int = 50,
    tol: float = 1e-3,
) -> ProjectionResult:
    """Abbeel & Ng's projection algorithm with finite-horizon hard DP as the RL step.

    Start from the greedy policy for ``w = f_E``; then repeat: ``w = f_E - f_bar``; solve for
    the greedy policy of ``r = features @ w``; project ``f_E`` onto the segment from
    ``f_bar`` to the new policy's feature counts. Stops when ``||w|| <= tol``.
    """
    P = validate_transitions(P)
    S = P.shape[0]
    features = _check_features(features, S)
    target = np.asarray(expert_feature_expectations, dtype=np.float64)
    p0 = validate_distribution(p0, S)
    horizon = _check_horizon(horizon)

    def counts(pi):
        return forward_messages(P, pi, p0, horizon).sum(axis=0) @ features

    w = target.copy()
    policies = [greedy_policy(P, features @ w, horizon)]
    mus = [counts(policies[0])]
    weights, margins = [w], [np.inf]
    bar, lam = mus[0].copy(), np.array([1.0])
    for _ in range(int(n_iters)):
        w = target - bar
        margin = float(np.linalg.norm(w))
        if margin <= tol:
            break
        pi = greedy_policy(P, features @ w, horizon)
        mu = counts(pi)
        policies.append(pi)
        mus.append(mu)
        weights.append(w)
        margins.append(margin)
        direction = mu - bar
        denom = float(direction @ direction)
        step = 0.0 if denom == 0 else float(np.clip(direction @ (target - bar) / denom, 0.0, 1.0))
        bar = bar + step * direction
        lam = np.append((1 - step) * lam, step)
    return ProjectionResult(
        weights=np.array(weights),
        margins=np.array(margins),
        policies=np.array(policies),
        feature_expectations=np.array(mus),
        mixture_weights=lam,
        mixture_feature_expectations=bar,
    )


def mixture_policy(
    P: np.ndarray,
    policies: Sequence[np.ndarray] | np.ndarray,
    weights: np.ndarray,
    p0: np.ndarray,
    horizon: int,
) -> np.ndarray:
    """The Markov policy (T, S, A) with the visitation of a mixture of policies.

    The mixture picks policy i with probability ``weights[i]`` at the start and follows it;
    ``pi_t(a|s) = sum_i w_i mu^i_t(s, a) / sum_i w_i D^i_t(s)`` has the same mu_t (hence the same
    feature counts). States the mixture never reaches get the uniform policy.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if (
        weights.ndim != 1
        or len(weights) != len(policies)
        or (weights < 0).any()
        or not np.isclose(weights.sum(), 1.0)
    ):
        raise ValueError("weights must be a probability vector with one entry per policy")
    mu = sum(w * _marginals(P, pi, p0, horizon)[1] for w, pi in zip(weights, policies, strict=True))
    D = mu.sum(axis=2, keepdims=True)
    A = mu.shape[2]
    return np.where(D > 0, mu / np.where(D > 0, D, 1.0), 1.0 / A)


# ----------------------------------------------------------------------------- sample-based (chapter 09)
#
# Slides, "Unknown dynamics & large state/action spaces" and "Importance sampling": the model term
# E_{tau ~ p(tau|O, psi)}[grad r_psi(tau)] of the gradient is estimated from M trajectories tau_j
# sampled by a policy pi (the current soft-optimal one, or a lagging one) with the self-normalised
# importance weights
#
#     w_j = p(tau_j | O, psi) / pi(tau_j) ∝ exp(sum_t r_psi(s_t, a_t) / alpha) / prod_t pi(a_t | s_t),
#
# (the start and dynamics terms cancel). Their target is the exact posterior p(tau|O) ∝ p(tau)
# exp(r(tau)/alpha), i.e. the ``optimistic=True`` model above; with deterministic dynamics and a
# single start state it coincides with the default causal model.


def _finite_2d(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            f"{name} must have shape (M, T) with M >= 1 trajectories of T >= 1 steps, "
            f"got {array.shape}"
        )
    if np.isnan(array).any():
        raise ValueError(f"{name} contains NaN")
    return array


def log_importance_weights(
    rewards: np.ndarray, log_probs: np.ndarray, *, alpha: float = 1.0
) -> np.ndarray:
    """log w_j = sum_t r(s_t, a_t) / alpha - sum_t log pi(a_t|s_t), shape (M,).

    rewards (M, T): r_psi along each sampled trajectory; log_probs (M, T): log-probabilities of the
    taken actions under the policy that *sampled* them. Unnormalised (log Z is unknown).
    """
    rewards, log_probs = _finite_2d(rewards, "rewards"), _finite_2d(log_probs, "log_probs")
    if rewards.shape != log_probs.shape:
        raise ValueError(
            f"rewards {rewards.shape} and log_probs {log_probs.shape} must have the same shape (M, T)"
        )
    if not np.isfinite(rewards).all():
        raise ValueError("rewards must be finite")
    if np.isposinf(log_probs).any():
        raise ValueError("log_probs contain +inf")
    return rewards.sum(axis=1) / _check_alpha(alpha) - log_probs.sum(axis=1)


def _check_log_weights(log_weights) -> np.ndarray:
    log_weights = np.asarray(log_weights, dtype=np.float64)
    if log_weights.ndim != 1 or log_weights.shape[0] == 0:
        raise ValueError(f"log_weights must have shape (M,) with M >= 1, got {log_weights.shape}")
    if np.isnan(log_weights).any() or np.isposinf(log_weights).any():
        raise ValueError("log_weights contain NaN or +inf")
    if np.isneginf(log_weights).all():
        raise ValueError("every log-weight is -inf: no sample has positive weight")
    return log_weights


def self_normalized_weights(log_weights: np.ndarray) -> np.ndarray:
    """w_j / sum_k w_k from log-weights (M,), computed stably (logsumexp); sums to one."""
    log_weights = _check_log_weights(log_weights)
    return np.exp(log_weights - logsumexp(log_weights))


def effective_sample_size(log_weights: np.ndarray) -> float:
    """ESS = (sum_j w_j)^2 / sum_j w_j^2, between 1 (one sample carries all) and M (equal weights)."""
    log_weights = _check_log_weights(log_weights)
    return float(np.exp(2 * logsumexp(log_weights) - logsumexp(2 * log_weights)))


def self_normalized_estimate(
    log_weights: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, float]:
    """The self-normalised importance sampling estimate of E_p[f] and the effective sample size.

    log_weights (M,): log w_j = log p(x_j) - log q(x_j) up to a constant, x_j ~ q; values (M,) or
    (M, K): f(x_j). Returns (sum_j w_j f(x_j) / sum_j w_j, of shape () or (K,); ESS, a float).
    """
    log_weights = _check_log_weights(log_weights)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim not in (1, 2) or values.shape[0] != log_weights.shape[0]:
        raise ValueError(
            f"values must have shape (M,) or (M, K) with M = {log_weights.shape[0]}, got {values.shape}"
        )
    if not np.isfinite(values).all():
        raise ValueError("values contain NaN or inf")
    w = self_normalized_weights(log_weights)
    return np.tensordot(w, values, axes=(0, 0)), effective_sample_size(log_weights)


def trajectory_log_probs(policy: np.ndarray, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """log pi_t(a_t | s_t) along trajectories, shape (M, T).

    policy: stationary (S, A) or time-indexed (T', S, A) with T' >= T, rows summing to one;
    states, actions: int (M, T).
    """
    policy = np.asarray(policy, dtype=np.float64)
    if policy.ndim not in (2, 3):
        raise ValueError(f"policy must have shape (S, A) or (T, S, A), got {policy.shape}")
    S, A = policy.shape[-2:]
    states = _index_array(states, "states", S, "state")
    actions = _index_array(actions, "actions", A, "action")
    if states.shape != actions.shape:
        raise ValueError(
            f"states {states.shape} and actions {actions.shape} must have the same shape (M, T)"
        )
    policy = _check_policy(policy, S, A, states.shape[1])
    if not np.isfinite(policy).all() or (policy < 0).any():
        raise ValueError("policy must hold finite, non-negative probabilities")
    sums = policy.sum(axis=-1)
    if not np.allclose(sums, 1.0, atol=1e-8):
        worst = np.unravel_index(np.argmax(np.abs(sums - 1)), sums.shape)
        raise ValueError(
            f"policy is not normalised: the action probabilities at {tuple(int(i) for i in worst)} "
            f"sum to {sums[worst]:.6g}, not 1"
        )
    with np.errstate(divide="ignore"):
        if policy.ndim == 2:
            return np.log(policy[states, actions])
        return np.log(policy[np.arange(states.shape[1])[None, :], states, actions])


def sample_irl_gradient(
    theta: np.ndarray,
    features: np.ndarray,
    expert_states: np.ndarray,
    sample_states: np.ndarray,
    sample_actions: np.ndarray,
    sampler_policy: np.ndarray,
    *,
    alpha: float = 1.0,
    weighted: bool = True,
    return_ess: bool = False,
):
    """The sample-based MaxEnt IRL gradient, shape (K,) (and the ESS with ``return_ess``).

    ``(f_E - sum_j w_j f(tau_j) / sum_j w_j) / alpha`` with f_E = mean_i sum_t f(s_it) of the
    demonstrations (N, T), f(tau_j) = sum_t f(s_jt) of the M samples (M, T) drawn by
    ``sampler_policy`` ((S, A) or (T, S, A)), and log w_j from :func:`log_importance_weights` with
    r(s) = features[s] @ theta. ``weighted=False`` is the plain sample mean (right only when the
    sampler is the soft-optimal policy of theta in deterministic dynamics from one start state).
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"features must have shape (S, K), got {features.shape}")
    features = _check_features(features, features.shape[0])
    theta = np.asarray(theta, dtype=np.float64)
    if theta.shape != (features.shape[1],) or not np.isfinite(theta).all():
        raise ValueError(
            f"theta must be a finite vector of shape ({features.shape[1]},), got {theta.shape}"
        )
    alpha = _check_alpha(alpha)
    expert_states = _index_array(expert_states, "expert_states", features.shape[0], "state")
    log_probs = trajectory_log_probs(sampler_policy, sample_states, sample_actions)
    sample_states = np.asarray(sample_states, dtype=np.int64)
    counts = features[sample_states].sum(axis=1)  # (M, K)
    rewards = (features @ theta)[sample_states]  # (M, T)
    log_w = (
        log_importance_weights(rewards, log_probs, alpha=alpha)
        if weighted
        else np.zeros(len(counts))
    )
    model, ess = self_normalized_estimate(log_w, counts)
    grad = (feature_expectations(features, expert_states) - model) / alpha
    return (grad, ess) if return_ess else grad


def soft_optimal_trajectory_policy(
    P: np.ndarray, reward: np.ndarray, horizon: int, *, alpha: float = 1.0
) -> np.ndarray:
    """pi_t(a|s) (T, S, A) of the variational backward messages for a state reward (S,) or (S, A)."""
    P = validate_transitions(P)
    S, A, _ = P.shape
    Q, V = backward_messages(
        P, _reward_table(reward, S, A), _check_horizon(horizon), alpha=_check_alpha(alpha)
    )
    pi = soft_policy(Q, V, alpha)
    return pi / pi.sum(axis=-1, keepdims=True)
