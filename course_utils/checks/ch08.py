"""Checks for chapter 08 (MaxEnt IRL with dynamic programming): 8.1 the visitation mu_t(s, a),
8.2 the MaxEnt IRL gradient, 8.3 gradient ascent. References: :mod:`course_utils.irl`; cases:
random MDPs and a gridworld; each mistake is a reference with one named knob changed."""

from __future__ import annotations

import numpy as np
from scipy.special import softmax

from .. import irl
from ..inference import backward_messages, soft_policy
from ..mdp import gridworld, random_mdp
from . import Case, Exercise, Mistake, Output

__all__ = ["check_irl_gradient", "check_maxent_irl_loop", "check_visitation"]
__all__ += ["reference_irl_gradient", "reference_maxent_irl_loop"]
__all__ += ["reference_state_action_visitation"]

_GRID = gridworld(["S.G", ".#.", "T.."], rewards={"G": 1.0, "T": -1.0}, step_reward=-0.1, slip=0.2)


def reference_state_action_visitation(P, R, p0, horizon, alpha=1.0):
    """Exercise 8.1: mu_t(s, a) = D_t(s) pi_t(a|s), shape (T, S, A) (variational messages)."""
    # renormalised: float32-rounded probabilities (a float32 answer's reference) sum to 1 +- 1e-7
    P, p0 = (np.asarray(x, float) / np.sum(x, axis=-1, keepdims=True) for x in (P, p0))
    return irl.state_action_visitation(P, R, p0, horizon, alpha=alpha)


def _visitation(mistake: str):
    """mu_t(s, a) = D_t(s) pi_t(a|s) with a wrong policy, or "<that> in the recursion" only, etc."""
    wrong, _, where = mistake.partition(" in ")

    def visitation(P, R, p0, horizon, alpha=1.0):
        a, ts = (1.0 if wrong == "temperature" else alpha), np.arange(horizon)
        pi = soft_policy(*backward_messages(P, R, horizon, alpha=alpha), alpha)
        bad = soft_policy(
            *backward_messages(P, R, horizon, alpha=a, optimistic=wrong == "optimistic"), a
        )
        if wrong == "exp(r)":  # the slides' "recursive solution": pi(a_t|s_t) ~ exp(r(s_t, a_t))
            bad = np.broadcast_to(softmax(np.asarray(R, float) / alpha, axis=-1), pi.shape)
        shifted = np.clip(ts + {"next": 1, "previous": -1}.get(wrong, 0), 0, horizon - 1)
        index = {"first": 0 * ts, "last": 0 * ts + horizon - 1, "reversed": ts[::-1]}
        bad = bad[index.get(wrong, shifted)]
        D, step = np.empty((horizon, len(p0))), 1 + 0 * bad if wrong == "unweighted" else bad
        moved = p0 @ np.einsum("sa,sap->sp", bad[0], P)
        D[0] = {"uniform": 1 / len(p0), "moved": moved}.get(wrong, p0)
        for t in range(horizon - 1):
            D[t + 1] = np.einsum("s,sa,sap->p", D[t], step[t], P)
        mu = D[:, :, None] * (pi if where else bad)
        return mu / horizon if wrong == "all steps" else mu

    return visitation


def _visitation_cases(rng: np.random.Generator) -> list[Case]:
    def case(S, A, T, alpha, what, kind="dense", scale=1.0, p0=None):
        P, R = random_mdp(rng, S, A, kind=kind, concentration=0.7, reward_scale=scale)
        p0 = rng.dirichlet(np.ones(S)) if p0 is None else p0
        return Case(f"{S} states, {A} actions, {what}", (P, R, p0, T, alpha))

    grid = (_GRID.P, _GRID.R + rng.normal(scale=0.3, size=_GRID.R.shape), _GRID.p0, 6, 0.7)
    return [
        case(4, 2, 5, 1.0, "stochastic dynamics, T=5, alpha=1"),
        case(6, 3, 7, 0.5, "p0 on state 4 only, T=7, alpha=0.5", p0=np.eye(6)[4]),
        case(5, 3, 6, 2.0, "deterministic dynamics, T=6, alpha=2", "deterministic"),
        case(3, 2, 1, 1.0, "horizon T=1"),
        case(4, 2, 4, 1.0, "rewards of size 1000, T=4, alpha=1", scale=1e3),
        case(5, 2, 5, 1e-3, "alpha=1e-3 (almost greedy), T=5"),
        Case(
            f"a 3x3 gridworld with slip 0.2 ({len(_GRID.P)} states, 5 actions), T=6, alpha=0.7",
            grid,
        ),
    ]


_DIAGNOSES = dict(
    marginals="you returned state marginals D_t(s), shape (T, S); the visitation is over states "
    "and actions: mu_t(s, a) = D_t(s) * pi_t(a|s), shape (T, S, A).",
    table="you returned one (S, A) table; keep one distribution per time step: (T, S, A).",
    overflow="your visitation contains NaN or inf: exp(Q / alpha) overflows for rewards of size "
    "1000; compute the policy as exp((Q_t - V_t) / alpha), which is at most 1.",
    sums="each mu_t must be a distribution over (s, a): sum_(s,a) mu_t(s, a) = 1 for every t, "
    "yours sums to {} over t. Is your policy normalised (pi_t = exp((Q_t - V_t) / alpha)) and "
    "does D_0 = p0 sum to one?",
    start="the state marginal of your mu_0, sum_a mu_0(s, a), should equal the initial "
    "distribution p0; yours is {}.",
)


def _visitation_feedback(actual, expected, case: Case) -> str | None:
    """A wrong shape, an overflow, sums or a start that no mistake explains."""
    (T, S, A), R, p0, alpha = expected.shape, *case.args[1:3], case.args[4]
    if actual.shape in ((T, S), (S, A)):
        return _DIAGNOSES["marginals" if actual.shape == (T, S) else "table"]
    if actual.shape != expected.shape:
        return None
    if not np.isfinite(actual).all():
        return _DIAGNOSES["overflow"] if np.abs(R).max() > 100 or alpha < 0.01 else None
    if not np.allclose(sums := actual.sum(axis=(1, 2)), 1.0, atol=1e-6):
        return _DIAGNOSES["sums"].format(np.round(sums, 4).tolist())
    if not np.allclose(start := actual[0].sum(axis=1), p0, atol=1e-6):
        return _DIAGNOSES["start"].format(np.round(start, 4).tolist())
    return None


_PI_T = "use pi_t = exp((Q[t] - V[t]) / alpha) at step t."
_POLICIES = {  # "last" (pi_{T-1} at every step) is the slides' exp(r) policy: the erratum names it
    "first": "you used the first step's policy pi_0 at every step; the soft-optimal policy of a "
    f"finite horizon depends on time: {_PI_T}",
    "last": f"you used the last step's policy pi_{{T-1}} at every step; {_PI_T}",
    "reversed": "the time index of your policy is reversed: backward_messages returns Q[t], V[t] "
    "indexed by the time step t (computed backwards, stored forwards): use pi[t].",
    "next": f"your policy is one step ahead (pi_{{t+1}} at step t): {_PI_T}",
    "previous": f"your policy is one step behind (pi_{{t-1}} at step t): {_PI_T}",
    "optimistic": "you used the optimistic (exact) backward messages; this chapter's model of the "
    "expert uses the variational messages, backward_messages(..., optimistic=False).",
    "temperature": "your answer ignores the temperature: pass alpha to backward_messages and divide "
    "by it in pi_t = exp((Q_t - V_t) / alpha).",
}
_VISITATION = {
    "exp(r)": 'Slide erratum: the slides\' "recursive solution" writes pi(a_t|s_t) proportional to '
    "exp(r(s_t, a_t)) where exp(Q_t(s_t, a_t)) is meant. Your policy comes from the rewards R (the "
    "last step's policy, as Q_{T-1} = R); use pi_t(a|s) = exp((Q_t(s, a) - V_t(s)) / alpha) from "
    "backward_messages.",
    **{k: m for k, m in _POLICIES.items() if k != "last"},
    **{
        f"{k} in the recursion": "in the forward recursion D_{t+1}(s') = sum_(s,a) D_t(s) "
        f"pi_t(a|s) P(s'|s,a): {m}"
        for k, m in _POLICIES.items()
    },
    "unweighted": "each mu_t should sum to 1 but yours sums to A^t: the forward recursion must "
    "weight the transitions by the policy pi_t(a|s).",
    "uniform": "your visitation starts from the uniform distribution; the initial distribution "
    "matters: D_0 = p0.",
    "moved": "your D_0 is p0 already moved one step by the dynamics: D_0 = p0 itself, and D_{t+1} "
    "comes after step t.",
    "all steps": "you normalised over all time steps together; each time step is a distribution "
    "of its own.",
}
VISITATION = Exercise(
    id="8.1",
    check_name="check_visitation",
    reference=reference_state_action_visitation,
    cases=_visitation_cases,
    outputs=[Output("visitation mu", 1e-6, 1e-9)],
    mistakes=[Mistake(message, _visitation(mistake)) for mistake, message in _VISITATION.items()],
    fallbacks=[_visitation_feedback],
    success="mu_t(s, a) matches the reference on {n} MDPs (stochastic and deterministic dynamics, "
    "T from 1 to 7, alpha from 1e-3 to 2, rewards up to 1e3).",
)
check_visitation = VISITATION.check


def _builds_on(name: str, function: str, exercise: str):
    """A fallback: a mismatch no mistake explains may come from the earlier exercise."""
    note = f". Note: it builds on your {function} (Exercise {exercise}); if that check failed, fix it first."

    def fallback(a, e, case: Case) -> str | None:
        if a.shape == e.shape and np.isfinite(a).all():
            diff = np.abs(a - e).max()
            return f"the {name} does not match the reference (largest difference {diff:.3g}){note}"
        return None

    return fallback


def _problem(rng, what, S, A, K, N, T, *extra) -> Case:
    """(P, features, random expert_states, p0, *extra): a random MDP, or the gridworld if S = 0."""
    P, p0, features = _GRID.P, _GRID.p0, _GRID.features
    if S:
        kind = "deterministic" if "determ" in what else "dense"
        P = random_mdp(rng, S, A, kind=kind, concentration=0.7)[0]
        p0, features = rng.dirichlet(np.ones(S)), rng.normal(size=(S, K))
    where = f"{S} states, {A} actions" if S else f"the 3x3 gridworld ({len(P)} states)"
    return Case(f"{where}, {what}", (P, features, rng.integers(len(P), size=(N, T)), p0, *extra))


def _gradient_cases(rng: np.random.Generator) -> list[Case]:
    cases = [  # then theta first: (theta, P, features, expert_states, p0, alpha)
        _problem(rng, "3 features, 8 demos of T=4, alpha=1", 5, 2, 3, 8, 4, 1.0),
        _problem(rng, "2 features, 5 demos of T=6, alpha=0.5", 6, 3, 2, 5, 6, 0.5),
        _problem(rng, "deterministic, 4 features, 10 demos of T=5, alpha=2", 4, 2, 4, 10, 5, 2.0),
        _problem(rng, "1 feature, a single demo of T=3, alpha=1", 3, 2, 1, 1, 3, 1.0),
        _problem(rng, "its cell-type features, 12 demos of T=6, alpha=0.8", 0, 0, 0, 12, 6, 0.8),
    ]
    return [Case(c.name, (rng.normal(size=c.args[1].shape[1]), *c.args)) for c in cases]


def _gradient(mistake: str = ""):
    """Exercise 8.2's gradient, or the typical ``mistake`` of that name."""

    def irl_gradient(theta, P, features, expert_states, p0, alpha=1.0):
        N, T = expert_states.shape
        r = features @ theta * (mistake != "at 0")
        mu = reference_state_action_visitation(P, r, p0, T, alpha)
        expert = features[expert_states].sum(axis=1).mean(axis=0) * (N if mistake == "sum" else 1)
        model = np.einsum("tsa,sk->k", mu, features) * (mistake != "no model")
        scale = {"sign": -1.0, "no alpha": alpha, "alpha twice": 1 / alpha, "per step": 1 / T}
        return (expert - model) / alpha * scale.get(mistake, 1.0)

    return irl_gradient


reference_irl_gradient = _gradient()
_GRADIENT = {
    "sign": "your gradient has the wrong sign: d L / d theta = (expert feature counts - model "
    "feature counts) / alpha: gradient *ascent* moves the model towards the expert.",
    "no alpha": "you forgot to divide by the temperature alpha: L = mean_i r(tau_i) / alpha - "
    "log Z, so grad L = (expert - model) / alpha.",
    "alpha twice": "you divided by alpha twice (or multiplied where you should divide).",
    "per step": "you averaged the feature counts over the T time steps; both counts are sums over "
    "t = 0 .. T-1 (and the expert's is averaged over demonstrations only).",
    "sum": "you summed the expert's feature counts over the demonstrations; average them over "
    "the N demonstrations: mean_i sum_t f(s_it).",
    "no model": "you used the expert's states for both terms or left out the model's feature "
    "counts: sum_t sum_(s,a) mu_t(s, a) f(s) for r = features @ theta.",
    "at 0": "your model term uses the visitation at theta = 0 (the uniform-ish policy); compute "
    "mu for the current reward r = features @ theta.",
}
IRL_GRADIENT = Exercise(
    id="8.2",
    check_name="check_irl_gradient",
    reference=reference_irl_gradient,
    cases=_gradient_cases,
    outputs=[Output("gradient", 1e-6, 1e-9)],
    mistakes=[Mistake(message, _gradient(mistake)) for mistake, message in _GRADIENT.items()],
    fallbacks=[_builds_on("gradient", "state_action_visitation", "8.1")],
    success="the MaxEnt IRL gradient matches the reference on {n} MDPs with their demonstrations "
    "(K from 1 to 4, alpha from 0.5 to 2).",
)
check_irl_gradient = IRL_GRADIENT.check


def _loop_cases(rng: np.random.Generator) -> list[Case]:
    """The problems of 8.2 without theta, then (lr, n_iters, tol); the last one stops early."""
    p = _gradient_cases(rng)
    runs = [(p[0], 0.05, 25, 1e-8), (p[2], 0.01, 20, 1e-8), (p[4], 0.02, 40, 1e-8)]
    runs += [(p[0], 0.1, 200, 0.85)]  # stops early, after 33 steps
    return [
        Case(f"{c.name}, lr={lr}, n_iters={n}, tol={tol}", (*c.args[1:], lr, n, tol))
        for c, lr, n, tol in runs
    ]


def _loop(mistake: str = ""):
    """Exercise 8.3's gradient ascent from theta = 0 with early stopping, or the ``mistake``."""
    sign, extra = (
        -1.0 if mistake == "descent" else 1.0,
        {"too many": 1, "too few": -1}.get(mistake, 0),
    )

    def loop(P, features, expert_states, p0, alpha=1.0, lr=0.01, n_iters=200, tol=1e-4):
        theta = np.zeros(np.shape(features)[1])
        for _ in range(int(n_iters) + extra):
            at = 0 * theta if mistake == "at 0" else theta
            grad = reference_irl_gradient(at, P, features, expert_states, p0, alpha)
            if mistake != "no stop" and np.max(np.abs(grad)) < tol:
                break
            theta = theta + sign * lr * grad
        return theta

    return loop


reference_maxent_irl_loop = _loop()
_LOOP = {
    "descent": "you stepped *down* the gradient (theta -= lr * grad); MaxEnt IRL maximises the "
    "log-likelihood: theta = theta + lr * grad.",
    "no stop": "you did not stop early: stop as soon as max_k |grad_k| < tol (before the step).",
    "too many": "you took one gradient step too many: run at most n_iters iterations.",
    "too few": "you took one gradient step too few: run up to n_iters iterations.",
    "at 0": "you evaluated the gradient at theta = 0 every time; evaluate it at the current theta.",
}
MAXENT_IRL_LOOP = Exercise(
    id="8.3",
    check_name="check_maxent_irl_loop",
    reference=reference_maxent_irl_loop,
    cases=_loop_cases,
    outputs=[Output("theta", 1e-6, 1e-9)],
    mistakes=[Mistake(message, _loop(mistake)) for mistake, message in _LOOP.items()],
    fallbacks=[_builds_on("theta", "irl_gradient", "8.2")],
    success="your MaxEnt IRL loop reproduces the reference's gradient-ascent iterates on {n} "
    "problems, early stopping included.",
)
check_maxent_irl_loop = MAXENT_IRL_LOOP.check
