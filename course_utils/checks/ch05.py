"""Checks for chapter 05 (soft optimality): the variational objective (ELBO) of a policy, the soft
Bellman backup, soft value iteration, soft policy evaluation and a question on the entropy bonus,
on :mod:`course_utils.inference`. Each table of mistakes maps the feedback to the function (the
reference with one knob changed) that reproduces it.
"""

from __future__ import annotations

import numpy as np
from scipy.special import entr, logsumexp

from .. import inference
from ..mdp import gridworld, random_mdp
from . import Case, Exercise, Output, Question, knobbed

__all__ = [
    "check_greedy_loss_question",
    "check_policy_elbo",
    "check_soft_bellman_backup",
    "check_soft_policy_evaluation",
    "check_soft_value_iteration",
    "reference_policy_elbo",
    "reference_soft_bellman_backup",
    "reference_soft_policy_evaluation",
    "reference_soft_value_iteration",
]


def reference_policy_elbo(P, R, pi, p0, horizon, alpha=1.0):
    """sum_{t<T} E_{q_pi}[r(s_t, a_t) + alpha * H(pi_t(.|s_t))] (``inference.policy_objective``)."""
    return inference.policy_objective(P, R, pi, p0, horizon, alpha)


def reference_soft_bellman_backup(P, R, V_next, gamma=1.0, alpha=1.0):
    """Q = R + gamma * E_{s'}[V_next(s')] (S, A) and V = alpha * logsumexp(Q / alpha) (S,)."""
    Q = np.asarray(R, dtype=float) + gamma * np.einsum("sap,p->sa", P, V_next)
    return Q, inference.soft_max(Q, alpha)


def reference_soft_value_iteration(P, R, gamma, alpha=1.0, tol=1e-10, max_iter=100_000):
    """Q (S, A), V (S,) of ``inference.soft_value_iteration`` and pi = exp((Q - V) / alpha)."""
    Q, V = inference.soft_value_iteration(
        P, R, gamma=gamma, alpha=alpha, tol=tol, max_iter=max_iter
    )
    return Q, V, inference.soft_policy(Q, V, alpha)


reference_soft_policy_evaluation = inference.soft_policy_evaluation


def _nonfinite(actual, expected) -> bool:
    return actual.shape == expected.shape and bool(
        (~np.isfinite(actual) & np.isfinite(expected)).any()
    )


def _optimistic(P, V, alpha):
    """alpha * log E_{s'}[exp(V(s') / alpha)], computed stably."""
    with np.errstate(divide="ignore"):
        return alpha * logsumexp(np.log(P) + V / alpha, axis=-1)


def _mdp(rng, S, A, kind="dense", scale=1.0):
    """A name and a random MDP (P, R): dense, sparse (2 successors) or deterministic."""
    P, R = random_mdp(rng, S, A, kind=kind, successors=2, reward_scale=scale)
    big = ", rewards ~ N(0, 1000^2)" if scale > 1 else ""
    return f"a {'stochastic' if kind == 'dense' else kind} MDP with S={S}, A={A}{big}", P, R


_GRID = gridworld(["..T.", "S#.G"], rewards={"G": 1.0, "T": -1.0}, step_reward=-0.1, slip=0.2)
_GRID_NAME = f"a 2x4 gridworld with slip 0.2 (S={len(_GRID.P)}, A=5)"


# ----------------------------------------------------------------------- Exercise 5.1
def _elbo(
    P,
    R,
    pi,
    p0,
    T,
    alpha=1.0,
    *,
    entropy=1.0,
    temperature=True,
    move="s,sa,sap->p",
    stuck=False,
    late=False,
    steps=0,
    unweighted=False,
    reverse=False,
    row=False,
):
    """The variational objective with knobs that reproduce the typical mistakes."""
    pi = np.asarray(pi, dtype=float)
    if pi.ndim == 2 and row and T <= len(pi):  # pi[t] of a stationary policy: one row of it
        pi_t = [pi[t] for t in range(T)]
    elif pi.ndim == 2:
        pi_t = [pi] * (T + steps)
    else:
        pi_t = list(pi[::-1] if reverse and len(pi) > 1 else pi) + [pi[-1]] * steps
    d, total = np.asarray(p0, dtype=float), 0.0
    for t in range(T + steps):
        if late:  # one step of the dynamics before the first reward
            d = np.einsum(move, d, np.broadcast_to(pi_t[t], R.shape), P)
        with np.errstate(divide="ignore", invalid="ignore"):
            h = -np.log(pi_t[t]).sum(-1) if unweighted else entr(pi_t[t]).sum(-1)
        bonus = entropy * (alpha if temperature else 1.0) * h
        total += d @ ((pi_t[t] * R).sum(-1) + bonus)
        if not (stuck or late):
            d = np.einsum(move, d, np.broadcast_to(pi_t[t], R.shape), P)
    return total


def _elbo_cases(rng: np.random.Generator) -> list[Case]:
    def case(text, S, A, T, alpha, kind="dense", policy="stationary", scale=1.0, zeros=0):
        name, P, R = _mdp(rng, S, A, kind, scale)
        p0 = rng.dirichlet(np.ones(S))
        p0[rng.choice(S, size=zeros, replace=False)] = 0.0
        shape = (S, A) if policy != "time-indexed" else (T, S, A)
        pi = rng.dirichlet(np.ones(A), size=shape[:-1])
        if text == "one-hot":
            pi = np.eye(A)[rng.integers(A, size=shape[:-1])]
        if text == "with zeros":  # some actions never taken: 0 log 0 counts as 0
            pi[rng.random(shape) < 0.4] = 0.0
            pi[..., 0] += 0.1
            pi /= pi.sum(axis=-1, keepdims=True)
        label = f"{name}, a {policy} {text} policy, T={T}, alpha={alpha:g}"
        return Case(label, (P, R, pi, p0 / p0.sum(), T, alpha))

    pi_grid = np.full((len(_GRID.P), 5), 0.2)
    grid = Case(
        f"{_GRID_NAME}, the uniform policy, T=8, alpha=1",
        (_GRID.P, _GRID.R, pi_grid, _GRID.p0, 8, 1.0),
    )
    return [
        case("random", 4, 3, 5, 1.0),
        case("random", 5, 3, 6, 0.5, "deterministic", "time-indexed", zeros=1),
        case("with zeros", 5, 4, 4, 2.0),
        case("one-hot", 4, 3, 3, 1.0, policy="time-indexed"),
        case("random", 3, 4, 1, 0.3),
        case("random", 6, 2, 7, 0.0, "sparse", zeros=2),
        case("random", 5, 3, 6, 1e-3, "sparse", "time-indexed", scale=1e3),
        grid,
    ]


_ELBO_MISTAKES = {  # feedback -> the knobs of _elbo (or a function)
    "your objective has no entropy term (it is the expected return): the ELBO is sum_t "
    "E[r(s_t, a_t) + alpha * H(pi_t(.|s_t))].": dict(entropy=0.0),
    "your entropy has the wrong sign: H(pi) = -sum_a pi(a|s) log pi(a|s) >= 0 and the ELBO adds "
    "+ alpha * H (the slides: E[r - log pi]).": dict(entropy=-1.0),
    "your entropy term is not multiplied by the temperature alpha: sum_t E[r + alpha * H].": dict(
        temperature=False
    ),
    "your state distribution never moves: q(s_t) is p0 pushed forward t steps by the policy and "
    "the dynamics, q(s_{t+1})(s') = sum_{s,a} q(s_t)(s) pi_t(a|s) P[s, a, s'].": dict(stuck=True),
    "your first step already uses q(s_1): the sum starts at t = 0 with q(s_0) = p0; push the "
    "distribution forward AFTER adding the step's reward and entropy.": dict(late=True),
    "you pushed the state distribution with P summed over the wrong index: q(s_{t+1})(s') = "
    "sum_{s,a} q(s_t)(s) pi_t(a|s) P[s, a, s'] (np.einsum('s,sa,sap->p', q, pi_t, P)).": [
        dict(move="s,sa,pas->p"),
        dict(move="p,sa,sap->s"),
    ],
    "you summed one step too many: the horizon T counts the steps t = 0 .. T-1.": dict(steps=1),
    "you summed -log pi(a|s) over actions without weighting it by pi(a|s): the entropy is "
    "H = -sum_a pi(a|s) log pi(a|s) (scipy.special.entr).": dict(unweighted=True),
    "you used the time-indexed policy in reverse order: pi[t] is the policy of step t (the backward "
    "pass fills it from T-1 down to 0, but it is indexed by t).": dict(reverse=True),
    "a stationary policy of shape (S, A) is the same at every step: use pi itself, not pi[t] (which "
    "is the row of state t).": dict(row=True),
}


def _elbo_zero_log_zero(actual, expected, case: Case) -> str | None:
    if _nonfinite(np.asarray(actual), np.asarray(expected)) and (case.args[2] == 0).any():
        return (
            "your objective is NaN where pi(a|s) = 0: 0 * log 0 is NaN in numpy, but the entropy "
            "counts it as 0. Use scipy.special.entr(pi) (= -pi log pi, 0 at 0) or "
            "np.where(pi > 0, pi * np.log(pi), 0)."
        )
    return None


POLICY_ELBO = Exercise(
    id="5.1",
    check_name="check_policy_elbo",
    reference=reference_policy_elbo,
    cases=_elbo_cases,
    outputs=[Output("objective", 1e-9, 1e-9)],
    mistakes=knobbed(_elbo, _ELBO_MISTAKES),
    fallbacks=[_elbo_zero_log_zero],
    success="the variational objective matches the reference on {n} MDPs and policies "
    "(stationary and time-indexed, one-hot, alpha from 0 to 2, rewards up to 1e3).",
)
check_policy_elbo = POLICY_ELBO.check


# ----------------------------------------------------------------------- Exercise 5.2
def _backup_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for S, A, kind, gamma, alpha, scale in [
        (5, 3, "dense", 0.9, 1.0, 1),
        (4, 4, "dense", 0.7, 0.5, 1),
        (6, 2, "deterministic", 0.95, 2.0, 1),
        (7, 3, "sparse", 0.95, 1e-3, 1e3),
        (3, 5, "dense", 1.0, 0.1, 1),
        (5, 2, "dense", 0.0, 10.0, 1),
    ]:
        name, P, R = _mdp(rng, S, A, kind, scale)
        V = 2 * scale * rng.normal(size=S)
        cases.append(Case(f"{name}, gamma={gamma:g}, alpha={alpha:g}", (P, R, V, gamma, alpha)))
    V = rng.normal(size=len(_GRID.P))
    return [*cases, Case(f"{_GRID_NAME}, gamma=0.9, alpha=0.3", (_GRID.P, _GRID.R, V, 0.9, 0.3))]


def _q(fn):  # a mistake in Q alone (V then follows from it)
    return lambda P, R, V, gamma=1.0, alpha=1.0: {0: fn(P, np.asarray(R), V, gamma, alpha)}


def _v(fn):  # a mistake in V alone, from the right Q
    def mistake(P, R, V, gamma=1.0, alpha=1.0):
        return {1: fn(reference_soft_bellman_backup(P, R, V, gamma, alpha)[0], alpha)}

    return mistake


_WRONG_INDEX = (
    "your expectation over next states sums over the wrong index of P. P[s, a, s'] is the "
    "probability of s' after (s, a), so E_{s'}[V(s')] = sum_{s'} P[s, a, s'] V[s'], i.e. "
    "np.einsum('sap,p->sa', P, V_next) or P @ V_next, not a sum over the first index s."
)
_OPTIMISTIC = (
    "this is the OPTIMISTIC backup r + alpha * log E[exp(V(s') / alpha)] of the exact messages (it "
    "assumes you also control your luck). The variational backup takes a plain expectation: "
    "Q = R + gamma * E_{s'}[V(s')] = R + gamma * P @ V_next."
)
_SOFT_MAX = "V = alpha * log sum_a exp(Q / alpha)."
_OVERFLOW_V = (
    "your soft max overflowed or underflowed (exp(Q / alpha) is inf or 0 for large rewards or "
    "small alpha). Subtract the maximum of each row (over actions, keepdims=True) before "
    "exponentiating and add it back after the log (or use scipy.special.logsumexp)."
)
_WRONG_AXIS_V = (
    "you took the soft max over the wrong axis: V(s) is a soft max over ACTIONS, the last axis "
    "of Q (axis=1), not over states."
)
_BACKUP_MISTAKES = {
    _OPTIMISTIC: [
        _q(lambda P, R, V, g, a: R + g * _optimistic(P, V, a)),
        _q(lambda P, R, V, g, a: R + g * _optimistic(P, V, 1.0)),
    ],
    "your Q ignores the discount: Q = R + gamma * E_{s'}[V(s')], with gamma.": (
        _q(lambda P, R, V, g, a: R + P @ V)
    ),
    _WRONG_INDEX: [
        _q(lambda P, R, V, g, a, spec=spec: R + g * np.einsum(spec, P, V))
        for spec in ("sap,s->sa", "sap,s->pa", "sap,s->ap", "sap,a->sp")
    ],
    "you discounted the reward too: only the future is discounted, Q = R + gamma * E[V(s')].": (
        _q(lambda P, R, V, g, a: g * (R + P @ V))
    ),
    "your Q is missing the reward R(s, a): Q = R + gamma * E[V(s')].": _q(
        lambda P, R, V, g, a: g * (P @ V)
    ),
    "you took a soft max of the next values where an expectation over s' belongs: "
    "Q = R + gamma * sum_{s'} P[s, a, s'] V[s'].": _q(
        lambda P, R, V, g, a: R + g * inference.soft_max(V[None, :], a)
    ),
    "you took the hard max over actions (value iteration). Soft optimality uses the soft max "
    "V(s) = alpha * log sum_a exp(Q(s, a) / alpha), e.g. alpha * scipy.special.logsumexp(Q / "
    "alpha, axis=1).": _v(lambda Q, a: Q.max(axis=1)),
    _WRONG_AXIS_V: _v(lambda Q, a: a * logsumexp(Q / a, axis=0)),
    "you computed log-MEAN-exp (a uniform action prior 1/|A|): the course's soft max is alpha * "
    "log SUM_a exp(Q / alpha); the constant log |A| is folded into the reward. Slide erratum: "
    '"The Action Prior" misplaces a parenthesis, V = log int exp(Q) da + log p(a|s) for '
    "log int exp(Q + log p(a|s)) da.": _v(
        lambda Q, a: a * logsumexp(Q / a, 1) - a * np.log(len(Q[0]))
    ),
    "you averaged Q over actions: V is a soft MAX, alpha * log sum_a exp(Q / alpha).": _v(
        lambda Q, a: Q.mean(axis=1)
    ),
    "your soft max ignores the temperature alpha: " + _SOFT_MAX: _v(lambda Q, a: logsumexp(Q, 1)),
    "you forgot to divide Q by alpha inside the exponential: " + _SOFT_MAX: _v(
        lambda Q, a: a * logsumexp(Q, axis=1)
    ),
    "you forgot to multiply by alpha outside the log: " + _SOFT_MAX: _v(
        lambda Q, a: logsumexp(Q / a, axis=1)
    ),
    "you multiplied Q by alpha where you should divide: " + _SOFT_MAX: _v(
        lambda Q, a: logsumexp(Q * a, axis=1) / a
    ),
}


def _backup_overflow(actual, expected, case: Case) -> str | None:
    if _nonfinite(actual[0], expected[0]):
        return (
            "Q is not finite, but Q = R + gamma * E_{s'}[V(s')] needs no exponential: if you wrote "
            "log E[exp(V)], that is the optimistic backup, and it also overflows."
        )
    big = np.abs(expected[0]).max() / case.args[4] > 700  # exp(Q / alpha) overflows in float64
    return _OVERFLOW_V if big and _nonfinite(actual[1], expected[1]) else None


SOFT_BELLMAN_BACKUP = Exercise(
    id="5.2",
    check_name="check_soft_bellman_backup",
    reference=reference_soft_bellman_backup,
    cases=_backup_cases,
    outputs=[Output("Q", 1e-9, 1e-9), Output("V", 1e-9, 1e-9)],
    mistakes=knobbed(None, _BACKUP_MISTAKES),
    fallbacks=[_backup_overflow],
    success="the soft Bellman backup matches the reference on {n} MDPs "
    "(gamma from 0 to 1, alpha from 1e-3 to 10, rewards up to 1e3).",
)
check_soft_bellman_backup = SOFT_BELLMAN_BACKUP.check


# ----------------------------------------------------------------------- Exercise 5.3
def _vi_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for S, A, kind, gamma, alpha, scale in [
        (6, 3, "dense", 0.9, 1.0, 1),
        (4, 4, "dense", 0.5, 0.3, 1),
        (8, 2, "deterministic", 0.95, 0.1, 1),
        (5, 3, "sparse", 0.8, 1e-3, 1e3),
        (4, 3, "dense", 0.0, 10.0, 1),
    ]:
        name, P, R = _mdp(rng, S, A, kind, scale)
        cases.append(Case(f"{name}, gamma={gamma:g}, alpha={alpha:g}", (P, R, gamma, alpha)))
    return [*cases, Case(f"{_GRID_NAME}, gamma=0.9, alpha=0.5", (_GRID.P, _GRID.R, 0.9, 0.5))]


def _optimistic_iteration(P, R, gamma, alpha=1.0):
    """The fixed point of the optimistic backup (a mistake model), from V = 0."""
    V = np.zeros(len(P))
    for _ in range(100_000):
        Q = R + gamma * _optimistic(P, V, alpha)
        V, V_old = inference.soft_max(Q, alpha), V
        if np.max(np.abs(V - V_old)) < 1e-10:
            break
    return {0: Q, 1: V}


def _pi(fn):  # a mistake in pi alone, from the right Q and V
    def mistake(P, R, gamma, alpha=1.0):
        Q, V, _ = reference_soft_value_iteration(P, R, gamma, alpha)
        return {2: fn(Q, V, alpha, np.asarray(R))}

    return mistake


_VI_MISTAKES = {
    "this is hard value iteration (V = max_a Q). Soft value iteration uses the soft max V = alpha "
    "* log sum_a exp(Q / alpha); use your soft_bellman_backup from Exercise 5.2.": (
        lambda P, R, gamma, alpha=1.0: dict(enumerate(inference.value_iteration(P, R, gamma=gamma)))
    ),
    "your soft value iteration ignores the temperature alpha (it computes alpha = 1).": (
        lambda P, R, gamma, alpha=1.0: dict(
            enumerate(reference_soft_value_iteration(P, R, gamma)[:2])
        )
    ),
    "you iterated the OPTIMISTIC backup alpha * log E[exp(V(s') / alpha)]; soft value iteration "
    "uses the expectation Q = R + gamma * E_{s'}[V(s')].": _optimistic_iteration,
    "your V is the hard max of your (correct) Q; return the soft value " + _SOFT_MAX: (
        lambda *a: {1: reference_soft_value_iteration(*a)[0].max(axis=1)}
    ),
    "your policy does not sum to one over actions: with a temperature, pi = exp((Q - V[:, None]) "
    "/ alpha) (divide by alpha).": _pi(lambda Q, V, alpha, R: np.exp(Q - V[:, None])),
    "your policy ignores the temperature: pi = exp((Q - V[:, None]) / alpha).": _pi(
        lambda Q, V, alpha, R: inference.soft_policy(Q, inference.soft_max(Q, 1.0))
    ),
    "your policy is greedy (one-hot, the hard-optimal policy); the soft-optimal policy is pi = "
    "exp((Q - V[:, None]) / alpha), which gives every action some probability.": _pi(
        lambda Q, V, alpha, R: np.eye(Q.shape[1])[Q.argmax(axis=1)]
    ),
    "your policy is exp(R / alpha) normalised over actions; it must use the soft Q-values: pi = "
    'exp((Q - V[:, None]) / alpha). Slide erratum: the slides\' "recursive solution" writes '
    "pi(a_t | s_t) proportional to exp(r(s_t, a_t)) where exp(Q(s_t, a_t)) is meant.": _pi(
        lambda Q, V, alpha, R: inference.soft_policy(R, inference.soft_max(R, alpha), alpha)
    ),
    "your policy has shape (A, S); return pi[s, a] with shape (S, A).": _pi(
        lambda Q, V, alpha, R: np.exp((Q - V[:, None]) / alpha).T
    ),
}


def _vi_fallback(actual, expected, case: Case) -> str | None:
    (Q, V, pi), (Q_ref, V_ref, pi_ref) = actual, expected
    P, R, gamma, alpha = case.args
    if _nonfinite(Q, Q_ref):
        return (
            "your Q is not finite: compute the soft max stably (the soft_bellman_backup of "
            "Exercise 5.2 does) and check that gamma < 1 is used."
        )
    with np.errstate(all="ignore"):
        same = Q.shape == Q_ref.shape
        residual = np.max(np.abs(R + gamma * P @ inference.soft_max(Q, alpha) - Q)) if same else 0
    if np.isfinite(residual) and residual > 1e-6 * max(1, np.abs(Q).max()):
        return (
            "your Q is not a fixed point of the soft Bellman backup yet (the largest change of one "
            f"more backup is {residual:.3g}): iterate until max |V_new - V| < tol, for up to "
            "max_iter iterations, and return the Q and V of the last backup."
        )
    big = np.abs(Q_ref).max() / alpha > 700  # exp(Q / alpha) overflows in float64
    if big and _nonfinite(V, V_ref):
        return _OVERFLOW_V
    if big and _nonfinite(pi, pi_ref):
        return (
            "your policy overflowed: exp(Q / alpha) is inf for large Q or small alpha. Compute "
            "pi = exp((Q - V[:, None]) / alpha), whose exponent is <= 0."
        )
    sums = pi.sum(axis=-1)
    if pi.shape != pi_ref.shape or not np.isfinite(pi).all() or np.allclose(sums, 1, atol=1e-6):
        return None
    if np.allclose(pi.sum(axis=0), 1.0, atol=1e-6):
        return (
            "your policy sums to one over STATES (axis 0); pi(.|s) is a distribution over actions: "
            "each row pi[s, :] must sum to one. Slide erratum: the slides write pi(s_t | a_t) "
            "where pi(a_t | s_t) is meant."
        )
    return (
        f"your policy does not sum to one over actions: the row sums range from {sums.min():.4g} "
        f"to {sums.max():.4g}. pi = exp((Q - V[:, None]) / alpha) with V = alpha * log sum_a "
        "exp(Q / alpha) is normalised."
    )


SOFT_VALUE_ITERATION = Exercise(
    id="5.3",
    check_name="check_soft_value_iteration",
    reference=reference_soft_value_iteration,
    cases=_vi_cases,
    outputs=[Output("Q", 1e-6, 1e-6), Output("V", 1e-6, 1e-6), Output("pi", 1e-5, 1e-6)],
    mistakes=knobbed(None, _VI_MISTAKES),
    fallbacks=[_vi_fallback],
    success="soft value iteration and the soft-optimal policy match the reference on {n} MDPs "
    "(alpha from 1e-3 to 10, rewards up to 1e3).",
)
check_soft_value_iteration = SOFT_VALUE_ITERATION.check


# ----------------------------------------------------------------------- Exercise 5.4
def _evaluation_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for S, A, kind, gamma, alpha, scale, policy in [
        (5, 3, "dense", 0.9, 0.5, 1, "a random policy"),
        (4, 4, "dense", 0.5, 2.0, 1, "a random policy"),
        (6, 2, "deterministic", 0.95, 1.0, 1, "a one-hot policy"),
        (7, 3, "sparse", 0.95, 1e-3, 1e3, "a policy with zeros"),
        (4, 3, "dense", 0.0, 10.0, 1, "a random policy"),
        (5, 3, "dense", 0.8, 0.0, 1, "a random policy (the plain expected return)"),
    ]:
        name, P, R = _mdp(rng, S, A, kind, scale)
        pi = rng.dirichlet(np.ones(A), size=S)
        if policy == "a one-hot policy":
            pi = np.eye(A)[rng.integers(A, size=S)]
        if policy == "a policy with zeros":  # some actions never taken: 0 log 0 counts as 0
            pi[rng.random((S, A)) < 0.4] = 0.0
            pi[np.arange(S), rng.integers(A, size=S)] += 0.1
            pi /= pi.sum(axis=1, keepdims=True)
        cases.append(
            Case(f"{name}, {policy}, gamma={gamma:g}, alpha={alpha:g}", (P, R, pi, gamma, alpha))
        )
    pi = reference_soft_value_iteration(_GRID.P, _GRID.R, 0.9, 0.3)[2]
    name = f"the soft-optimal policy of {_GRID_NAME}, gamma=0.9, alpha=0.3"
    return [*cases, Case(name, (_GRID.P, _GRID.R, pi, 0.9, 0.3))]


def _evaluation(P, R, pi, gamma, alpha=0.0, *, entropy=1.0, P_pi="sa,sap->sp", solve=True):
    """Soft policy evaluation with knobs that reproduce the typical mistakes."""
    P_pi = np.einsum(P_pi, pi, P)
    r_pi = np.sum(pi * R, axis=1) + entropy * alpha * entr(pi).sum(axis=1)
    return np.linalg.solve(np.eye(len(P)) - gamma * P_pi, r_pi) if solve else r_pi


_EVALUATION_MISTAKES = {
    "your value has no entropy bonus: add alpha * H(pi(.|s)) = -alpha * sum_a pi log pi to the "
    "expected reward of every state.": dict(entropy=0.0),
    "your entropy has the wrong sign: H(pi(.|s)) = -sum_a pi(a|s) log pi(a|s) >= 0, and the bonus "
    "is + alpha * H.": dict(entropy=-1.0),
    "your entropy bonus is not multiplied by the temperature alpha.": (
        lambda P, R, pi, gamma, alpha=0.0: _evaluation(P, R, pi, gamma, 1.0 if alpha else 0.0)
    ),
    "P_pi is transposed: the next-state distribution under pi is P_pi[s, s'] = sum_a pi[s, a] "
    "P[s, a, s'] (np.einsum('sa,sap->sp', pi, P)).": dict(P_pi="sa,sap->ps"),
    "your P_pi sums over the wrong index of P. P[s, a, s'] is the probability of s' after (s, a), "
    "so P_pi[s, s'] = sum_a pi[s, a] P[s, a, s'] (np.einsum('sa,sap->sp', pi, P)).": dict(
        P_pi="sa,pas->sp"
    ),
    "this is only one step (r_pi + alpha * H_pi). V^pi solves the Bellman equation V = r_pi + "
    "alpha * H_pi + gamma * P_pi V, i.e. np.linalg.solve(I - gamma * P_pi, r_pi + alpha * "
    "H_pi).": dict(solve=False),
}


def _per_action(actual, expected, case: Case) -> str | None:
    if actual.shape == np.shape(case.args[1]):
        return "return the state values V^pi(s), shape (S,), not one value per action."
    return None


def _zero_log_zero(actual, expected, case: Case) -> str | None:
    if _nonfinite(actual, expected) and (case.args[2] == 0).any():
        return (
            "your value is NaN where pi(a|s) = 0: 0 * log 0 is NaN in numpy, but the entropy "
            "counts it as 0. Use scipy.special.entr(pi) (= -pi log pi, 0 at 0) or "
            "np.where(pi > 0, pi * np.log(pi), 0)."
        )
    return None


SOFT_POLICY_EVALUATION = Exercise(
    id="5.4",
    check_name="check_soft_policy_evaluation",
    reference=reference_soft_policy_evaluation,
    cases=_evaluation_cases,
    outputs=[Output("value V^pi", 1e-7, 1e-7)],
    diagnoses=[_per_action],
    mistakes=knobbed(_evaluation, _EVALUATION_MISTAKES),
    fallbacks=[_zero_log_zero],
    success="soft policy evaluation matches the reference on {n} MDPs and policies "
    "(one-hot policies, alpha from 0 to 10, rewards up to 1e3).",
)
check_soft_policy_evaluation = SOFT_POLICY_EVALUATION.check


# ----------------------------------------------------------------------- Exercise 5.5
GREEDY_LOSS_QUESTION = Question(
    id="5.5",
    check_name="check_greedy_loss_question",
    answer=0.3 * np.log(5) / (1 - 0.9),
    success="alpha log|A| / (1 - gamma) = 0.3 log 5 / 0.1 = 4.83. In G every action is equally "
    "good, so the soft-optimal policy is uniform and collects alpha log 5 of entropy at every "
    "step, forever (discounted); the greedy policy collects none.",
    feedback={
        0.0: "both policies earn +1 per step in G, but the soft objective also pays alpha * H(pi) at "
        "every step, and the greedy policy's entropy is 0.",
        float(np.log(5)): "log 5 is the entropy of one uniform step, without the temperature: the "
        "bonus is alpha * log 5, and it is collected at every step.",
        float(
            0.3 * np.log(5)
        ): "alpha log 5 is the bonus of ONE step; the agent stays in G forever "
        "and collects it at every step, discounted: sum_t gamma^t = 1 / (1 - gamma).",
        float(np.log(5) / 0.1): "that is log 5 / (1 - gamma): the bonus is alpha * H, with alpha = "
        "0.3.",
        float((1 + 0.3 * np.log(5)) / 0.1): "that is V_soft(G) itself; the question asks for the "
        "difference V_soft(G) - V^greedy(G), and V^greedy(G) = 1 / (1 - gamma) = 10.",
    },
    hint="in G all five actions keep the agent there with the same reward: what does the "
    "soft-optimal policy do in G, what entropy bonus does it collect per step, and for how many "
    "(discounted) steps?",
    rtol=1e-2,
)
check_greedy_loss_question = GREEDY_LOSS_QUESTION.check
