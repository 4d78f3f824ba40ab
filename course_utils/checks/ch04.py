"""Checks for chapter 04 (control as inference): backward and forward messages, soft policy.

References: :mod:`course_utils.inference` (t = 0 .. T-1, prior p(a|s) = 1). Each exercise's table
of mistakes maps the feedback to the knobs of the exercise's variant function that reproduce it.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from .. import inference
from ..mdp import gridworld, random_mdp
from . import Case, Exercise, Output, knobbed

__all__ = [
    "check_backward_log_messages",
    "check_backward_probabilities",
    "check_forward_log_messages",
    "check_soft_optimal_policy",
    "reference_backward_log_messages",
    "reference_backward_probabilities",
    "reference_forward_log_messages",
    "reference_soft_optimal_policy",
]


def reference_backward_probabilities(P, R, horizon):
    """beta_t(s, a) (T, S, A) and beta_t(s) (T, S): exp of the exact (optimistic) log messages."""
    return tuple(np.exp(m) for m in reference_backward_log_messages(P, R, horizon))


def reference_backward_log_messages(P, R, horizon, alpha=1.0):
    """Q_t = log beta_t(s, a) and V_t = log beta_t(s) at temperature alpha (exact PGM messages)."""
    return inference.backward_messages(P, R, horizon, alpha=alpha, optimistic=True)


def reference_soft_optimal_policy(Q, alpha=1.0):
    """pi(a|s) = exp((Q - V) / alpha) with V = alpha * logsumexp(Q / alpha) over the last axis."""
    Q = np.asarray(Q, dtype=np.float64)
    return inference.soft_policy(Q, inference.soft_max(Q, alpha), alpha)


def reference_forward_log_messages(P, R, p0, horizon):
    """log alpha_t(s) = log p(s_t = s, O_{0:t-1}), shape (T, S) (``inference.forward_log_messages``)."""
    return inference.forward_log_messages(P, R, p0, horizon)


def _pairs(actual, expected):  # (student's array, reference's array) for each output
    one = isinstance(actual, np.ndarray)
    return zip(*(((actual,), (expected,)) if one else (actual, expected)), strict=True)


def _time_axis(actual, expected, case: Case) -> str | None:
    for a, e in _pairs(actual, expected):
        if a.ndim == e.ndim > 0 and a.shape[1:] == e.shape[1:] and abs(len(a) - len(e)) == 1:
            which = "many" if len(a) > len(e) else "few"
            return (
                f"you returned {len(a)} time steps, one too {which}: return one message per "
                f"step t = 0 .. T-1 (horizon T = {len(e)}; there is no beta_T or alpha_T)."
            )
    return None


def _overflow(actual, expected, case: Case) -> str | None:
    for a, e in _pairs(actual, expected):
        if a.shape == e.shape and (~np.isfinite(a) & np.isfinite(e)).any():
            return (
                "your answer contains NaN or inf where the reference is finite: exp overflowed "
                "(np.exp(1000) = inf) or underflowed (log 0 = -inf); the exponents here reach "
                "1e6. Never exponentiate before reducing: use scipy.special.logsumexp."
            )
    return None


_CURRENT = (
    "your expectation over the next state uses the value of the CURRENT state s: "
    "E_{{s'}}[{f}(s')] = `P @ {v}`, not np.einsum('sap,s->sa', P, {v})."
)
_TRANSPOSED = (
    "you summed P over the current state s instead of the next state s' (a forward "
    "push): use np.einsum('sap,p->sa', P, {v}) = `P @ {v}`."
)
_GRID = gridworld(["S..", ".#G", "..T"], rewards={"G": 0.0, "T": -5.0}, step_reward=-1.0, slip=0.2)
_GRID_NAME = "a 3x3 gridworld with slip 0.2 (S=8, A=5)"


def _mdp(rng, text, S, A, *tail, det=False, scale=1.0, loc=0.0):
    kind = "deterministic" if det else "stochastic"
    P, R = random_mdp(rng, S, A, kind=kind if det else "sparse", reward_scale=scale, reward_loc=loc)
    return Case(f"a {kind} MDP with S={S}, A={A}, {text}", (P, R, *tail))


# ----------------------------------------------------------------------- Exercise 4.1
def _beta_probabilities(P, R, T, *, last=1, add=0, factor=np.exp, expect="sap,p->sa", sum=np.sum):
    """Probability-space backward messages with knobs that reproduce the typical mistakes."""
    beta_sa, beta_s = np.empty((T, *R.shape)), np.empty((T, R.shape[0]))
    beta_sa[T - 1] = factor(R) if last else np.ones_like(R)
    beta_s[T - 1] = sum(beta_sa[T - 1], axis=-1)
    for t in range(T - 2, -1, -1):
        e = np.einsum(expect, P, beta_s[t + 1])
        beta_sa[t] = factor(R) + e if add else factor(R) * e
        beta_s[t] = sum(beta_sa[t], axis=-1)
    return beta_sa, beta_s


def _probability_cases(rng: np.random.Generator) -> list[Case]:
    return [
        _mdp(rng, "T=5, rewards ~ N(0, 1)", 4, 3, 5),
        _mdp(rng, "T=6, rewards ~ N(0, 1)", 5, 2, 6, det=True),
        _mdp(rng, "T=1 (only the last step)", 3, 4, 1),
        _mdp(rng, "T=8, rewards ~ -2 + N(0, 1) (tiny messages)", 6, 3, 8, loc=-2.0),
        _mdp(rng, "T=4, rewards ~ N(0, 2^2)", 7, 5, 4, det=True, scale=2.0),
        Case(f"{_GRID_NAME}, T=6", (_GRID.P, _GRID.R, 6)),
    ]


_BETA = dict(f="beta_{t+1}", v="beta_next")
_PROBABILITY_MISTAKES = {  # feedback -> the knobs of _beta_probabilities (or a function)
    "beta_t(s) is the SUM over actions of beta_t(s, a) (prior p(a|s) = 1), you took the max (a "
    "max belongs to hard value iteration).": dict(sum=np.max),
    "you averaged over actions (a normalised prior 1/|A|); this course folds the uniform prior "
    "in as p(a|s) = 1: beta_t(s) = sum_a beta_t(s, a).": dict(sum=np.mean),
    _CURRENT.format(**_BETA): dict(expect="sap,s->sa"),
    _TRANSPOSED.format(**_BETA): dict(expect="sap,s->pa"),
    "the optimality factor is p(O_t | s_t, a_t) = exp(r(s_t, a_t)): multiply by np.exp(R), "
    "not by R.": dict(factor=np.asarray),
    "in probability space the factors MULTIPLY: beta_t(s, a) = exp(r(s, a)) * "
    "E_{s'}[beta_{t+1}(s')] (sums belong to log space).": dict(add=1),
    "the last message is beta_{T-1}(s, a) = p(O_{T-1} | s, a) = exp(r(s, a)), not 1: the last "
    "step's optimality variable is missing.": dict(last=0),
    "you returned log-space messages (log beta); this exercise asks for beta itself.": (
        reference_backward_log_messages
    ),
}
BACKWARD_PROBABILITIES = Exercise(
    id="4.1",
    check_name="check_backward_probabilities",
    reference=reference_backward_probabilities,
    cases=_probability_cases,
    outputs=[Output("beta_sa", 1e-7, 0.0), Output("beta_s", 1e-7, 0.0)],
    diagnoses=[_time_axis],
    mistakes=knobbed(_beta_probabilities, _PROBABILITY_MISTAKES),
    success="the backward messages beta_t(s, a) and beta_t(s) match the reference on {n} MDPs "
    "(deterministic and stochastic, T from 1 to 8).",
)
check_backward_probabilities = BACKWARD_PROBABILITIES.check


# ----------------------------------------------------------------------- Exercise 4.2
def _log_messages(P, R, T, alpha=1.0, *, soft="right", backup="right"):
    """Log-space backward messages with knobs that reproduce the typical mistakes."""
    S, A = R.shape
    with np.errstate(divide="ignore"):
        log_P = np.log(P)
    temps = {"no_alpha": (1.0, 1.0), "not_multiplied": (1.0, alpha)}  # (outside, inside) the log
    (out, inner), (b_out, b_in) = temps.get(soft, (alpha, alpha)), temps.get(backup, (alpha, alpha))
    prior = alpha * np.log(A) if soft == "mean" else 0.0
    soft_fn = {"max": lambda q: q.max(-1)}.get(soft, lambda q: out * logsumexp(q / inner, -1))
    backup_fn = {
        "variational": lambda v: P @ v,
        "current": lambda v: np.repeat(v[:, None], A, axis=1),
        "transposed": lambda v: alpha * logsumexp(log_P + v[:, None, None] / alpha, 0).T,
    }.get(backup, lambda v: b_out * logsumexp(log_P + v / b_in, -1))
    Q, V = np.empty((T, S, A)), np.empty((T, S))
    Q[T - 1], V[T - 1] = R, soft_fn(R) - prior
    for t in range(T - 2, -1, -1):
        Q[t] = R + backup_fn(V[t + 1])
        V[t] = soft_fn(Q[t]) - prior
    return Q, V


def _log_cases(rng: np.random.Generator) -> list[Case]:
    big = "rewards ~ N(0, 1000^2)"
    return [
        _mdp(rng, "T=5, alpha=1", 4, 3, 5, 1.0),
        _mdp(rng, "T=6, alpha=0.5", 5, 2, 6, 0.5),
        _mdp(rng, "T=4, alpha=2", 6, 4, 4, 2.0, det=True),
        _mdp(rng, "T=1 (only the last step), alpha=0.3", 3, 5, 1, 0.3),
        Case(f"{_GRID_NAME}, T=7, alpha=1", (_GRID.P, _GRID.R, 7, 1.0)),
        _mdp(rng, f"T=10, {big}, alpha=1", 5, 3, 10, 1.0, scale=1e3),
        _mdp(rng, f"T=8, {big}, alpha=1e-3", 6, 3, 8, 1e-3, det=True, scale=1e3),
        _mdp(rng, "T=6, rewards ~ N(0, 1), alpha=1e-3", 7, 4, 6, 1e-3),
    ]


_SOFT_V = dict(f="exp(V_{t+1}/alpha)", v="exp(V_next / alpha)")
_ALPHAS = "V = alpha * logsumexp(Q / alpha) and Q = r + alpha * log E[exp(V' / alpha)]."
_LOG_MISTAKES = {  # feedback -> the knobs of _log_messages (or a function)
    "V_t(s) is the SOFT max alpha * log sum_a exp(Q_t(s, a) / alpha), you took the hard max over "
    "actions (value iteration); the messages add up the probabilities of all actions.": dict(
        soft="max"
    ),
    "this is hard value iteration, V = max_a Q and Q = r + E[V(s')], which the slide \"Backward "
    'Messages vs Value Iteration" shows only for comparison. The messages: ' + _ALPHAS: dict(
        soft="max", backup="variational"
    ),
    "your messages ignore the temperature alpha (they equal the alpha = 1 answer): " + _ALPHAS: (
        lambda P, R, T, alpha=1.0: _log_messages(P, R, T, 1.0)
    ),
    "the temperature is missing in the next-state backup: Q_t = r + alpha * log E_{s'}[exp("
    "V_{t+1}(s') / alpha)] (divide V by alpha inside, multiply by alpha outside).": dict(
        backup="no_alpha"
    ),
    "the temperature is missing in the soft max over actions: V_t(s) = alpha * log sum_a "
    "exp(Q_t(s, a) / alpha).": dict(soft="no_alpha"),
    "you divided by alpha inside the logsumexp but did not multiply the result by alpha: "
    + _ALPHAS: dict(soft="not_multiplied", backup="not_multiplied"),
    "you did not multiply the soft max over actions by alpha: V = alpha * logsumexp(Q / "
    "alpha).": dict(soft="not_multiplied"),
    "you did not multiply the next-state backup by alpha: Q = r + alpha * log E[exp(V' / "
    "alpha)].": dict(backup="not_multiplied"),
    "you used Q = r + E_{s'}[V_{t+1}(s')], the variational backup of chapter 05; the exact "
    "message is the 'optimistic' log E_{s'}[exp(V_{t+1}(s'))] (the two agree only for "
    "deterministic dynamics).": dict(backup="variational"),
    _CURRENT.format(**_SOFT_V): dict(backup="current"),
    _TRANSPOSED.format(**_SOFT_V): dict(backup="transposed"),
    "you subtracted alpha * log |A| (a normalised prior 1/|A|); this course folds the uniform "
    'prior in as p(a|s) = 1. Slide erratum: "The Action Prior" misplaces a parenthesis, '
    "V = log int exp(Q) da + log p(a|s) for log int exp(Q + log p(a|s)) da.": dict(soft="mean"),
    "you returned probabilities (beta = exp(Q), exp(V)); this exercise asks for the log-space "
    "messages Q and V.": lambda *a: tuple(map(np.exp, reference_backward_log_messages(*a))),
}
BACKWARD_LOG_MESSAGES = Exercise(
    id="4.2",
    check_name="check_backward_log_messages",
    reference=reference_backward_log_messages,
    cases=_log_cases,
    outputs=[Output("Q", 1e-8, 1e-8), Output("V", 1e-8, 1e-8)],
    diagnoses=[_time_axis],
    fallbacks=[_overflow],
    mistakes=knobbed(_log_messages, _LOG_MISTAKES),
    success="Q = log beta_t(s, a) and V = log beta_t(s) match the reference on {n} MDPs, "
    "alpha from 1e-3 to 2 and rewards up to 1e3.",
)
check_backward_log_messages = BACKWARD_LOG_MESSAGES.check


# ----------------------------------------------------------------------- Exercise 4.3
def _policy_cases(rng: np.random.Generator) -> list[Case]:
    def q(shape, alpha, scale=1.0, text=""):
        Q = scale * rng.normal(size=shape)
        return Case(f"Q of shape {shape}{text}, alpha={alpha:g}", (Q, alpha))

    return [
        q((5, 4, 3), 1.0, text=" = (T, S, A)"),
        q((6, 4), 1.0, text=" = (S, A), one time step"),
        q((4, 5, 3), 0.5, 4.0),
        q((3, 6, 2), 2.0),
        q((6, 5, 4), 1.0, 1e4, " with Q up to 1e4"),
        q((4, 3, 5), 1e-3, 1e4, " with Q up to 1e4 (almost greedy)"),
        q((2, 3, 4, 5), 0.7, text=" (extra leading axes)"),
    ]


def _unnormalised(actual, expected, case: Case) -> str | None:
    sums = actual.sum(-1)
    if actual.shape == expected.shape and np.isfinite(sums).all() and (abs(sums - 1) > 1e-6).any():
        return (
            f"your pi(. | s) does not sum to one over actions (the sums range from {sums.min():.4g}"
            f" to {sums.max():.4g}). Normalise with the soft value: pi = exp((Q - V) / alpha) with "
            "V = alpha * logsumexp(Q / alpha, axis=-1, keepdims=True), the log of the normaliser."
        )
    return None


def _soft_policy(Q, alpha=1.0, *, axis=-1, temperature=None, log=False):
    """The soft policy with knobs that reproduce the typical mistakes (temperature 0: greedy)."""
    alpha = {None: alpha, "inverse": 1 / alpha}.get(temperature, temperature)
    Q = np.moveaxis(Q, axis, -1)
    pi = reference_soft_optimal_policy(Q, alpha) if alpha else np.eye(Q.shape[-1])[Q.argmax(-1)]
    return np.log(pi) if log else np.moveaxis(pi, -1, axis)


_AXIS = "your policy is normalised over the wrong axis{}: pi(. | s) is a distribution over "
_POLICY_MISTAKES = {  # feedback -> the knobs of _soft_policy (or a function)
    _AXIS.format("") + "ACTIONS, the last axis of Q (..., S, A). Use axis=-1 (with keepdims=True) "
    "in the logsumexp. Slide erratum: the slides write pi(s_t | a_t) where pi(a_t | s_t) is "
    "meant.": dict(axis=-2),
    _AXIS.format(" (the first one)") + "ACTIONS, the last axis of Q. Use axis=-1 (with "
    "keepdims=True) in the logsumexp.": dict(axis=0),
    "your policy ignores the temperature alpha (it is the alpha = 1 policy): pi = exp((Q - V) / "
    "alpha) with V = alpha * logsumexp(Q / alpha).": dict(temperature=1.0),
    "you multiplied by alpha where you should divide: pi = exp((Q - V) / alpha) with V = alpha * "
    "logsumexp(Q / alpha).": dict(temperature="inverse"),
    "you returned the greedy policy (all mass on argmax_a Q); the soft-optimal policy gives "
    "every action the probability exp((Q - V) / alpha) > 0.": dict(temperature=0),
    "you returned log pi = (Q - V) / alpha; exponentiate it to get the probabilities.": dict(
        log=True
    ),
}
SOFT_OPTIMAL_POLICY = Exercise(
    id="4.3",
    check_name="check_soft_optimal_policy",
    reference=reference_soft_optimal_policy,
    cases=_policy_cases,
    outputs=[Output("policy", 1e-6, 1e-9)],
    fallbacks=[_overflow, _unnormalised],
    mistakes=knobbed(_soft_policy, _POLICY_MISTAKES),
    success="the soft-optimal policy matches the reference on {n} inputs, alpha from 1e-3 to 2 "
    "and Q up to 1e4.",
)
check_soft_optimal_policy = SOFT_OPTIMAL_POLICY.check


# ----------------------------------------------------------------------- Exercise 4.4
def _forward(P, R, p0, T, *, reward=1, max=False, backward=False, start="p0", **mistake):
    """Log-space forward messages with knobs that reproduce the typical mistakes."""
    r = reward * R - mistake.get("uniform_prior", 0) * np.log(R.shape[1])
    r = r - mistake.get("posterior", 0) * logsumexp(R, -1)[:, None]
    out = np.empty((T, len(p0)))
    p0 = {"p0": p0, "uniform": 0 * p0 + 1 / len(p0), "ones": 1 + 0 * p0}[start]
    with np.errstate(divide="ignore"):
        log_P, out[0] = np.log(P), np.log(p0)
    for t in range(T - 1):
        if backward:  # sums over a and s' of P[s, a, s'] exp(r(s, a) + log alpha_t(s'))
            out[t + 1] = logsumexp(log_P + r[:, :, None] + out[t][None, None, :], (1, 2))
        else:
            scores = out[t][:, None, None] + r[:, :, None] + log_P
            out[t + 1] = scores.max((0, 1)) if max else logsumexp(scores, (0, 1))
        out[t + 1] -= logsumexp(out[t + 1]) if mistake.get("normalise") else 0.0
    return out + mistake.get("filtered", 0) * logsumexp(R, -1)


def _forward_cases(rng: np.random.Generator) -> list[Case]:
    def case(text, S, A, T, det=False, scale=1.0, zeros=0):
        p0 = rng.dirichlet(np.ones(S))
        p0[rng.choice(S, size=zeros, replace=False)] = 0.0
        mdp = _mdp(rng, f"T={T}, {text}", S, A, det=det, scale=scale)
        return Case(mdp.name, (*mdp.args, p0 / p0.sum(), T))

    big = "rewards ~ N(0, 1000^2)"
    return [
        case("p0 with full support", 4, 3, 5),
        case("p0 with 2 zeros", 6, 2, 6, True, zeros=2),
        case("only alpha_0 = p0", 3, 4, 1),
        Case(f"{_GRID_NAME}, one start cell, T=8", (_GRID.P, _GRID.R, _GRID.p0, 8)),
        case(big, 5, 3, 10, scale=1e3, zeros=1),
        case(big, 7, 4, 8, True, scale=1e3, zeros=3),
    ]


_ALPHA0 = "alpha_0 must be the initial distribution: log alpha_0(s) = log p0(s) (-inf where p0 = 0)"
_FORWARD = "alpha_{t+1}(s') = sum_{s,a} p(s' | s, a) exp(r(s, a)) alpha_t(s)"
_FORWARD_MISTAKES = {  # feedback -> the knobs of _forward (or a function)
    f"the optimality factor p(O_t | s_t, a_t) = exp(r(s_t, a_t)) is missing: {_FORWARD}, so add "
    "R to log alpha_t(s) before the logsumexp.": dict(reward=0),
    "you propagated in the backward direction: a forward message sums over the CURRENT state and "
    f"action and lands on the next state, {_FORWARD} (np.einsum('sap,sa->p', ...)), not over the "
    "last index of P (np.einsum('sap,p->s', ...)).": dict(backward=True),
    "you took a max where the forward message SUMS over (s, a): use a logsumexp over the current "
    "state and action axes, not np.max.": dict(max=True),
    "you used the normalised prior p(a|s) = 1/|A|. This course folds the uniform prior in as "
    "p(a|s) = 1, as in V = log sum_a exp(Q).": dict(uniform_prior=True),
    "you normalised alpha_t to sum to one at every step. Return the unnormalised log alpha_t(s) = "
    "log p(s_t = s, O_{0:t-1}), so that sum_s alpha_t(s) beta_t(s) is the same number "
    "p(O_{0:T-1}) for every t.": dict(normalise=True),
    "your alpha_t weights the actions by the action posterior p(a | s, O) = exp(r(s, a)) / sum_a' "
    "exp(r(s, a')), normalised per state, so it lacks the factor p(O_t | s_t) = sum_a exp(r(s_t, "
    "a)). Slide erratum: the slides' forward message multiplies that posterior by alpha_{t-1}("
    "s_{t-1}) where p(s_{t-1} | O_{1:t-1}), i.e. alpha_{t-1} reweighted by p(O_{t-1} | s_{t-1}), is"
    f" needed; that reweighting cancels the normaliser. Use {_FORWARD}.": dict(posterior=1),
    "your alpha_t already includes the optimality factor of step t (log sum_a exp(r(s_t, a))); "
    "alpha_t(s_t) = p(s_t, O_{0:t-1}) conditions only on the steps BEFORE t.": dict(filtered=1),
    _ALPHA0 + ".": dict(start="uniform"),
    _ALPHA0 + ", not 0 (alpha_0 = 1 for every state).": dict(start="ones"),
    "you returned alpha_t itself; this exercise asks for log alpha_t (work in log space).": (
        lambda *a: np.exp(reference_forward_log_messages(*a))
    ),
}
FORWARD_LOG_MESSAGES = Exercise(
    id="4.4",
    check_name="check_forward_log_messages",
    reference=reference_forward_log_messages,
    cases=_forward_cases,
    outputs=[Output("log alpha", 1e-8, 1e-8)],
    diagnoses=[_time_axis],
    fallbacks=[_overflow],
    mistakes=knobbed(_forward, _FORWARD_MISTAKES),
    success="the forward messages log alpha_t(s) match the reference on {n} MDPs "
    "(deterministic and stochastic, p0 with zeros, rewards up to 1e3).",
)
check_forward_log_messages = FORWARD_LOG_MESSAGES.check
