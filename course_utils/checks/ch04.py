"""Checks for chapter 04 (control as inference): backward and forward messages, the posterior
(policy and state marginals), and a conceptual question on the horizon.

References: :mod:`course_utils.inference` (t = 0 .. T-1, prior p(a|s) = 1). Each exercise's table
of mistakes maps the feedback to the knobs of the exercise's variant function that reproduce it.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from .. import inference
from ..mdp import gridworld, random_mdp
from . import Case, Exercise, Output, Question, knobbed

__all__ = [
    "check_backward_log_messages",
    "check_backward_probabilities",
    "check_forward_log_messages",
    "check_horizon_question",
    "check_posterior_inference",
    "reference_backward_log_messages",
    "reference_backward_probabilities",
    "reference_forward_log_messages",
    "reference_posterior_inference",
]


def reference_backward_probabilities(P, R, horizon):
    """beta_t(s, a) (T, S, A) and beta_t(s) (T, S): exp of the exact (optimistic) log messages."""
    return tuple(np.exp(m) for m in reference_backward_log_messages(P, R, horizon))


def reference_backward_log_messages(P, R, horizon, alpha=1.0):
    """Q_t = log beta_t(s, a) and V_t = log beta_t(s) at temperature alpha (exact PGM messages)."""
    return inference.backward_messages(P, R, horizon, alpha=alpha, optimistic=True)


def reference_forward_log_messages(P, R, p0, horizon):
    """log alpha_t(s) = log p(s_t = s, O_{0:t-1}), shape (T, S) (``inference.forward_log_messages``)."""
    return inference.forward_log_messages(P, R, p0, horizon)


def reference_posterior_inference(P, R, p0, horizon, alpha=1.0):
    """pi_t(a|s) (T, S, A) and p(s_t | O_{0:T-1}) (T, S) at temperature alpha
    (``inference.posterior_marginals``)."""
    return inference.posterior_marginals(P, R, p0, horizon, alpha)


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
    id="4.3",
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


# ----------------------------------------------------------------------- Exercise 4.4
def _policy(Q, V, alpha, axis=-1):
    """exp((Q - V) / alpha) normalised over ``axis`` (-1: actions, right; -2: states, the slides'
    pi(s_t | a_t))."""
    if axis == -1:
        return inference.soft_policy(Q, V, alpha)
    return np.exp((Q - alpha * logsumexp(Q / alpha, axis=axis, keepdims=True)) / alpha)


def _posterior_dynamics(P, V_next, alpha):
    """p(s' | s, a, O) = P[s, a, s'] beta_{t+1}(s') / E_{s''}[beta_{t+1}(s'')], shape (S, A, S)."""
    with np.errstate(divide="ignore"):
        scores = np.log(P) + V_next / alpha
    return np.exp(scores - logsumexp(scores, axis=2, keepdims=True))


def _inference(
    P,
    R,
    p0,
    T,
    alpha=1.0,
    *,
    exact=True,
    axis=-1,
    route="messages",
    start="posterior",
    forward_temperature=True,
    beta_temperature=True,
    normalise=1,
    forward="joint",
):
    """The policy and the posterior marginals, with knobs that reproduce the typical mistakes.

    route: "messages" (alpha_t beta_t normalised), "posterior dynamics" or "true dynamics" (the
    policy pushed forward from ``start``); forward: "joint" (right), "slides" (the action
    posterior normalised per state), "filtered" (with step t's factor), "alone" (no beta).
    """
    Q, V = inference.backward_messages(P, R, T, alpha=alpha, optimistic=exact)
    pi = _policy(Q, V, alpha, axis)
    if axis != -1 or not exact:  # judged on the policy alone (the marginals depend on the route)
        return {0: pi}
    if route != "messages":
        with np.errstate(divide="ignore"):
            log_start = np.log(p0) + V[0] / alpha
        d = np.exp(log_start - logsumexp(log_start)) if start == "posterior" else np.asarray(p0)
        marginals = [d]
        for t in range(T - 1):
            moves = P if route == "true dynamics" else _posterior_dynamics(P, V[t + 1], alpha)
            marginals.append(np.einsum("s,sa,sap->p", marginals[-1], pi[t], moves))
        return pi, np.array(marginals)
    r = R / alpha if forward_temperature else R
    r = r - logsumexp(r, axis=1, keepdims=True) if forward == "slides" else r
    log_post = inference.forward_log_messages(P, r, p0, T)
    if forward == "filtered":
        log_post = log_post + logsumexp(r, axis=1)
    if forward != "alone":
        log_post = log_post + (V / alpha if beta_temperature else V)
    if normalise is None:
        return {1: np.exp(log_post)}
    return pi, np.exp(log_post - logsumexp(log_post, axis=normalise, keepdims=True))


def _inference_cases(rng: np.random.Generator) -> list[Case]:
    def case(text, S, A, T, alpha, det=False, scale=1.0, zeros=0):
        p0 = rng.dirichlet(np.ones(S))
        p0[rng.choice(S, size=zeros, replace=False)] = 0.0
        mdp = _mdp(rng, f"T={T}, {text}, alpha={alpha:g}", S, A, det=det, scale=scale)
        return Case(mdp.name, (*mdp.args, p0 / p0.sum(), T, alpha))

    big = "rewards ~ N(0, 1000^2)"
    return [
        case("p0 with full support", 4, 3, 5, 1.0),
        case("p0 with full support", 5, 2, 6, 0.5, det=True),
        case("p0 with a zero", 5, 3, 4, 2.0, zeros=1),
        case("only the last step", 3, 4, 1, 1.0),
        Case(f"{_GRID_NAME}, one start cell, T=8, alpha=1", (_GRID.P, _GRID.R, _GRID.p0, 8, 1.0)),
        case(big, 5, 3, 7, 1.0, scale=1e3, zeros=1),
        case("p0 with 2 zeros", 6, 3, 6, 1e-3, det=True, zeros=2),
    ]


def _not_normalised(actual, expected, case: Case) -> str | None:
    marginals = actual[1]
    if marginals.shape != expected[1].shape or not np.isfinite(marginals).all():
        return None
    sums = marginals.sum(axis=1)
    if np.allclose(marginals.sum(axis=0), 1.0) and not np.allclose(sums, 1.0):
        return (
            "your marginals sum to one over TIME for each state; p(s_t | O) is a distribution over "
            "states at every t: normalise each row marginals[t] over the state axis."
        )
    if not np.allclose(sums, 1.0, atol=1e-6):
        return (
            f"your marginals[t] do not sum to one over states (the sums range from {sums.min():.4g}"
            f" to {sums.max():.4g}): alpha_t(s) beta_t(s) is only proportional to p(s_t | O); "
            "normalise it over states at every t (in log space: subtract its logsumexp)."
        )
    return None


_TRUE_DYNAMICS = (
    "you pushed the policy forward with the TRUE dynamics p(s' | s, a){}: that is where the "
    "soft-optimal agent goes, which equals p(s_t | O) only when the dynamics are deterministic. "
    "Conditioning on O also tilts the transitions towards good next states, p(s' | s, a, O) = "
    "p(s' | s, a) beta_{{t+1}}(s') / E_{{s''}}[beta_{{t+1}}(s'')]; or compute alpha_t(s) beta_t(s) "
    "and normalise it."
)
_INFERENCE_MISTAKES = {  # feedback -> the knobs of _inference (or a function)
    _TRUE_DYNAMICS.format(" from p0"): dict(route="true dynamics", start="p0"),
    _TRUE_DYNAMICS.format(""): dict(route="true dynamics"),
    "your marginals start from p0, but conditioning on optimality also says where the agent "
    "started: p(s_0 | O) is proportional to p0(s) beta_0(s) = p0(s) exp(V_0(s) / alpha).": dict(
        route="posterior dynamics", start="p0"
    ),
    "you used the variational backward pass Q = r + E_{s'}[V(s')] (chapter 05); the posterior of "
    "the graphical model uses the exact messages, Q = r + alpha * log E_{s'}[exp(V(s') / "
    "alpha)] (your backward_log_messages).": dict(exact=False),
    "your policy is normalised over STATES; pi_t(. | s) is a distribution over actions (the last "
    "axis). Slide erratum: the slides write pi(s_t | a_t) where pi(a_t | s_t) is meant.": dict(
        axis=-2
    ),
    "you ignored the temperature everywhere (this is the alpha = 1 answer): with p(O_t | s, a) = "
    "exp(r(s, a) / alpha) the messages are V = alpha log beta and the forward factor is "
    "exp(r / alpha).": lambda P, R, p0, T, alpha=1.0: reference_posterior_inference(P, R, p0, T),
    "your forward messages ignore the temperature: at temperature alpha the optimality factor is "
    "exp(r(s, a) / alpha), so pass R / alpha to your forward_log_messages.": dict(
        forward_temperature=False
    ),
    "you added V_t to log alpha_t, but V_t = alpha * log beta_t: log beta_t = V_t / alpha.": dict(
        beta_temperature=False
    ),
    "your marginals ignore the future: alpha_t(s) normalised is p(s_t | O_{0:t-1}), the filtered "
    "state; p(s_t | O_{0:T-1}) also conditions on O_{t:T-1}: multiply by beta_t(s) = "
    "exp(V_t(s) / alpha) before normalising.": dict(forward="alone"),
    "your forward message already includes the optimality factor of step t, which beta_t(s) = "
    "p(O_{t:T-1} | s) counts again: alpha_t(s) = p(s_t, O_{0:t-1}) stops before step t.": dict(
        forward="filtered"
    ),
    "your forward messages weight the actions by the action posterior exp(r(s, a)) / sum_a' "
    "exp(r(s, a')), normalised per state, so they lack the factor p(O_t | s_t). Slide erratum: "
    "the slides' forward message multiplies that posterior by alpha_{t-1}(s_{t-1}) where "
    "p(s_{t-1} | O_{1:t-1}), alpha_{t-1} reweighted by p(O_{t-1} | s_{t-1}), is needed.": dict(
        forward="slides"
    ),
    "your marginals sum to one over TIME for each state; p(s_t | O) is a distribution over states "
    "at every t: normalise over the state axis.": dict(normalise=0),
    "you returned alpha_t(s) beta_t(s) without normalising it: it is only proportional to "
    "p(s_t | O) (its sum over s is p(O)); divide each row by its sum.": dict(normalise=None),
}
POSTERIOR_INFERENCE = Exercise(
    id="4.4",
    check_name="check_posterior_inference",
    reference=reference_posterior_inference,
    cases=_inference_cases,
    outputs=[Output("policy pi", 1e-6, 1e-9), Output("marginals p(s_t | O)", 1e-6, 1e-9)],
    diagnoses=[_time_axis],
    mistakes=knobbed(_inference, _INFERENCE_MISTAKES),
    fallbacks=[_overflow, _not_normalised],
    success="the policy and the posterior marginals p(s_t | O) match the reference on {n} MDPs "
    "(deterministic and stochastic, alpha from 1e-3 to 2, rewards up to 1e3).",
)
check_posterior_inference = POSTERIOR_INFERENCE.check


# ----------------------------------------------------------------------- Exercise 4.5
HORIZON_QUESTION = Question(
    id="4.5",
    check_name="check_horizon_question",
    answer="c",
    success="c. At the goal the agent keeps all five actions (log 5 nats per step, as much as "
    "wandering) and pays no step cost; with 40 steps, reaching it early buys many such steps.",
    feedback={
        "a": "the temperature is not all that matters. It sets the exchange rate (2 / alpha = 1 nat "
        "per step of cost), but the horizon decides how many steps the agent will spend at the "
        "goal, and each of them is worth more than a wandering step.",
        "b": "more time left does not make wandering more attractive: a wandering step costs 1 nat "
        "more than a step at the goal (2 / alpha for the step cost, and the goal offers the same "
        "log 5 nats of freedom as wandering). More steps left make the goal worth more.",
    },
    hint='answer "a", "b" or "c".',
)
check_horizon_question = HORIZON_QUESTION.check
