"""Checks for chapter 09 (sample-based MaxEnt IRL): 9.1 log importance weights, 9.2 the
self-normalised estimate and the ESS, 9.3 the sample-based IRL gradient, 9.4 the guided cost
learning loss (value and gradients). References: :mod:`course_utils.irl` and :mod:`.gcl`."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import softmax

from .. import gcl, irl
from . import Case, Exercise, Grad, Mistake, Output

__all__ = ["check_gcl_cost_loss", "check_log_importance_weights", "check_sample_irl_gradient"]
__all__ += ["check_self_normalized_estimate", "reference_gcl_cost_loss"]
__all__ += ["reference_log_importance_weights", "reference_sample_irl_gradient"]
__all__ += ["reference_self_normalized_estimate"]

reference_log_importance_weights = irl.log_importance_weights  # Exercise 9.1
reference_self_normalized_estimate = irl.self_normalized_estimate  # Exercise 9.2
reference_gcl_cost_loss = gcl.gcl_cost_loss  # Exercise 9.4


def reference_sample_irl_gradient(
    theta, features, expert_states, sample_states, sample_actions, sampler_policy
):
    """Exercise 9.3: f_E - sum_j w_j f(tau_j) / sum_j w_j, shape (K,) (alpha = 1)."""
    # renormalised: float32-rounded probabilities (a float32 answer's reference) sum to 1 +- 1e-7
    pi = sampler_policy / np.sum(sampler_policy, axis=-1, keepdims=True)
    args = (theta, features, expert_states, sample_states, sample_actions, pi)
    return irl.sample_irl_gradient(*args)


def _weight_cases(rng: np.random.Generator) -> list[Case]:
    def case(name, M, T, scale=1.0, continuous=False):
        rewards = scale * rng.normal(size=(M, T))
        if continuous:  # log-densities, some > 0
            return Case(name, (rewards, rng.normal(1.0, 1.5, size=(M, T))))
        return Case(name, (rewards, np.log(rng.dirichlet(np.ones(4), size=(M, T))[..., 0])))

    return [
        case("8 trajectories of 5 steps, log-probabilities of a discrete policy", 8, 5),
        case("3 trajectories of 50 steps, log-densities of a continuous policy", 3, 50, 1, True),
        case("a single trajectory of 7 steps", 1, 7),
        case("6 trajectories of a single step", 6, 1),
        case("4 trajectories of 6 steps with rewards of size 1000", 4, 6, 1000.0),
    ]


def _weights_shape(actual, expected, case: Case) -> str | None:
    M, T = case.args[0].shape
    if actual.shape == (T,) != (M,):
        return (
            "your result has one entry per time step: sum over the time steps (axis=1), keeping "
            "one log-weight per trajectory, shape (M,)."
        )
    if actual.shape == (M, T):
        return (
            "your result has one entry per step; the weight of a trajectory is a product over its "
            "steps, so its log is a sum over t: shape (M,)."
        )
    return None


def _weights(mistake: str):
    """A typical wrong ``log_importance_weights``, named by ``mistake``."""

    def log_importance_weights(rewards, log_probs):
        R, L = rewards.sum(1), log_probs.sum(1)
        wrong = {"no log pi": R, "plus": R + L, "flipped": L - R, "exp": np.exp(R - L)}
        return wrong.get(mistake, (rewards - log_probs).mean(1))  # "mean"

    return log_importance_weights


_WEIGHTS = {
    "no log pi": "you did not divide by the sampler's probability: w_j = exp(sum_t r) / prod_t "
    "pi(a_t|s_t), so log w_j = sum_t r - sum_t log pi(a_t|s_t).",
    "plus": "you multiplied by the sampler's probability instead of dividing by it: log w_j = "
    "sum_t r - sum_t log pi(a_t|s_t), not + sum_t log pi.",
    "flipped": "the sign is flipped: log w_j = sum_t r(s_t, a_t) - sum_t log pi(a_t|s_t) (you "
    "returned its negative, the log of pi(tau) / exp(r(tau))).",
    "exp": "return the log-weights, not the weights: do not exponentiate (exp overflows for long "
    "trajectories).",
    "mean": "you averaged over the time steps; the trajectory's weight is a product over steps, so "
    "sum the per-step terms (sum over axis=1, not mean).",
}
LOG_WEIGHTS = Exercise(
    id="9.1",
    check_name="check_log_importance_weights",
    reference=reference_log_importance_weights,
    cases=_weight_cases,
    outputs=[Output("log-weights", 1e-9, 1e-9)],
    diagnoses=[_weights_shape],
    mistakes=[Mistake(message, _weights(mistake)) for mistake, message in _WEIGHTS.items()],
    success="the log importance weights match the reference on {n} inputs (discrete and "
    "continuous policies, M = 1, T = 1, rewards up to 1e3).",
)
check_log_importance_weights = LOG_WEIGHTS.check


def _estimate_cases(rng: np.random.Generator) -> list[Case]:
    def case(name, log_w, K=None):  # values (M,) or (M, K)
        return Case(name, (log_w, rng.normal(size=(len(log_w),) if K is None else (len(log_w), K))))

    dominated = rng.normal(size=6)
    dominated[2] += 40.0
    return [
        case("10 samples, values of shape (10,)", rng.normal(size=10)),
        case("7 samples, values of shape (7, 3)", 2 * rng.normal(size=7), 3),
        case(
            "5 samples, log-weights around 1000 (exp overflows)", 1000 + 3 * rng.normal(size=5), 2
        ),
        case(
            "5 samples, log-weights around -1000 (exp underflows)", -1000 + 3 * rng.normal(size=5)
        ),
        case("6 samples, one of them carries (almost) all the weight", dominated, 2),
        case("4 samples with equal weights", np.full(4, 0.7), 3),
        case("a single sample", np.array([3.2]), 4),
    ]


def _overflow(actual, expected, case: Case) -> str | None:
    if np.abs(case.args[0]).max() > 500 and not all(np.isfinite(a).all() for a in actual):
        return (
            "your estimate or ESS is NaN or inf: exp of log-weights around +-1000 overflows or "
            "underflows. Subtract the largest log-weight before exponentiating (or use "
            "scipy.special.logsumexp): the normalised weights do not change."
        )
    return None


def _estimate(mistake: str):
    """A typical wrong estimate {0: ...} or ESS {1: ...}, named by ``mistake``."""

    def self_normalized_estimate(log_w, values):
        M, w_bar, shifted = len(log_w), softmax(log_w), np.exp(log_w - log_w.max())
        weights = {"Z": np.exp(log_w) / M, "shifted": shifted / M, "not divided": shifted}
        weights.update({"plain": np.full(M, 1 / M), "log w": log_w / log_w.sum()})
        if mistake in weights:
            return {0: np.tensordot(weights[mistake], values, axes=(0, 0))}
        ess = {"inverted": (w_bar**2).sum(), "log w ESS": log_w.sum() ** 2 / (log_w**2).sum()}
        return {1: {"M": M, "fraction": 1 / (w_bar**2).sum() / M, **ess}[mistake]}

    return self_normalized_estimate


_NORMALISE = "the weights are not normalised: divide by their sum, sum_j w_j f_j / sum_j w_j"
_ESTIMATE = {
    "Z": f"{_NORMALISE} (the plain (1/M) sum_j w_j f_j needs the normalising constant Z, which we "
    "do not know).",
    "shifted": f"{_NORMALISE} (after subtracting the maximum, the weights are only defined up to a "
    "constant factor).",
    "not divided": f"{_NORMALISE}, not by M.",
    "plain": "you ignored the importance weights (a plain average over the samples); weight sample "
    "j by w_j / sum_k w_k.",
    "log w": "you weighted by the log-weights; the weights are w_j = exp(log w_j), normalised to "
    "sum to one.",
    "inverted": "the ESS is inverted: ESS = (sum_j w_j)^2 / sum_j w_j^2, between 1 and M (you "
    "computed sum_j w_j^2 / (sum_j w_j)^2).",
    "log w ESS": "the ESS uses the weights w_j = exp(log w_j), not the log-weights.",
    "M": "the ESS is (sum_j w_j)^2 / sum_j w_j^2, not M (it measures how evenly the weights are "
    "spread).",
    "fraction": "you returned ESS / M (a fraction of the samples); return the ESS itself, (sum_j "
    "w_j)^2 / sum_j w_j^2.",
}
SELF_NORMALIZED = Exercise(
    id="9.2",
    check_name="check_self_normalized_estimate",
    reference=reference_self_normalized_estimate,
    cases=_estimate_cases,
    outputs=[Output("estimate", 1e-7, 1e-10), Output("ESS", 1e-7, 1e-10)],
    diagnoses=[_overflow],
    mistakes=[Mistake(message, _estimate(mistake)) for mistake, message in _ESTIMATE.items()],
    success="the self-normalised estimate and the ESS match the reference on {n} inputs "
    "(log-weights of size 1000, one dominating sample, equal weights, M = 1).",
)
check_self_normalized_estimate = SELF_NORMALIZED.check


def _gradient_cases(rng: np.random.Generator) -> list[Case]:
    def case(what, S, A, K, T, N, M, stationary=False):
        sampler = rng.dirichlet(np.ones(A), size=(S,) if stationary else (T, S))
        pis, states = np.broadcast_to(sampler, (T, S, A)), rng.integers(S, size=(M, T))
        actions = [[rng.choice(A, p=pis[t, s]) for t, s in enumerate(row)] for row in states]
        demos, features = rng.integers(S, size=(N, T)), rng.normal(size=(S, K))
        args = (rng.normal(size=K), features, demos, states, np.array(actions), sampler)
        return Case(f"{S} states, {A} actions, {K} feature(s), {what}", args)

    return [
        case("6 demos and 20 samples of T=4, time-indexed sampler", 5, 3, 2, 4, 6, 20),
        case("3 demos and 12 samples of T=6, time-indexed sampler", 8, 4, 3, 6, 3, 12),
        case("5 demos and 9 samples of T=3, time-indexed sampler", 4, 2, 1, 3, 5, 9),
        case("T=1, time-indexed sampler", 6, 5, 4, 1, 4, 10),
        case("T=5, a stationary sampler of shape (S, A)", 5, 3, 2, 5, 4, 15, True),
    ]


def _sample_gradient(mistake: str):
    """A typical wrong 9.3 gradient, named by ``mistake`` (None where it does not apply)."""

    def sample_irl_gradient(theta, features, expert_states, states, actions, sampler):
        if mistake == "step 0" and sampler.ndim == 2:
            return None
        policy, sign = sampler[0] if mistake == "step 0" else sampler, {"no log pi": 0, "plus": 1}
        lp = irl.trajectory_log_probs(policy, states, actions) * sign.get(mistake, -1)
        log_w = ((features @ theta)[states] + lp).sum(axis=1)
        M, demos = len(log_w), features[expert_states].sum(axis=1)
        w = {"plain": np.full(M, 1 / M), "unnormalised": np.exp(log_w) / M}
        w = w.get(mistake, softmax(log_w))
        expert = demos.sum(axis=0) if mistake == "sum" else demos.mean(axis=0)
        return (-1 if mistake == "sign" else 1) * (expert - w @ features[states].sum(axis=1))

    return sample_irl_gradient


_SAMPLE_GRADIENT = {
    "sign": "the gradient has the wrong sign: it is the demonstrations' feature counts MINUS the "
    "weighted feature counts of the samples (the log-likelihood grows along it).",
    "plain": "you ignored the importance weights (a plain average over the samples): the samples "
    "come from a different policy than p(tau|O, psi), so the plain average is biased. Weight "
    "sample j by w_j / sum_k w_k.",
    "unnormalised": "the importance weights are not normalised: use the self-normalised estimate "
    "sum_j w_j f(tau_j) / sum_j w_j (Z is unknown, so (1/M) sum_j w_j f(tau_j) is off by the "
    "factor Z).",
    "no log pi": "the weights do not use the sampler's log-probabilities: log w_j = sum_t r(s_t) - "
    "sum_t log pi_t(a_t|s_t) with pi the sampler, at the actions it took (leaving them out, or "
    "using the uniform prior log(1/|A|), gives the same wrong answer: a constant cancels in the "
    "self-normalisation).",
    "plus": "the weights multiply by the sampler's probability instead of dividing: log w_j = "
    "sum_t r(s_t) - sum_t log pi_t(a_t|s_t).",
    "sum": "you summed the demonstrations' feature counts over demonstrations; average them (mean "
    "over the N demonstrations, sum over time steps).",
    "step 0": "the weights use the wrong policy's log-probabilities: the sampler is time-indexed "
    "(T, S, A); use pi_t at step t (sampler_policy[t, s_t, a_t]), not pi_0 at every step.",
}
SAMPLE_IRL_GRADIENT = Exercise(
    id="9.3",
    check_name="check_sample_irl_gradient",
    reference=reference_sample_irl_gradient,
    cases=_gradient_cases,
    outputs=[Output("gradient", 1e-7, 1e-9)],
    mistakes=[Mistake(m, _sample_gradient(mistake)) for mistake, m in _SAMPLE_GRADIENT.items()],
    success="the sample-based MaxEnt IRL gradient matches the reference on {n} problems "
    "(time-indexed and stationary samplers, K from 1 to 4, T from 1 to 6).",
)
check_sample_irl_gradient = SAMPLE_IRL_GRADIENT.check


def _loss_cases(rng: np.random.Generator) -> list[Case]:
    def case(name, N, M, T, scale=1.0, loc=0.0):  # (demo_costs, sample_costs, sample_log_probs)
        draws = scale * rng.normal(size=(N, T)), scale * rng.normal(size=(M, T))
        draws += (rng.normal(loc, 1.0, size=(M, T)),)
        return Case(name, tuple(torch.tensor(x, dtype=torch.float64) for x in draws))

    return [
        case("5 demos and 8 samples of T=6", 5, 8, 6, loc=0.5),
        case("3 demos and 4 samples of T=50, costs of size 300 (exp overflows)", 3, 4, 50, 300.0),
        case("2 demos and a single sample of T=3", 2, 1, 3),
        case("4 demos and 6 samples of T=1", 4, 6, 1),
    ]


def _gcl_loss(mistake: str):
    """A typical wrong guided cost learning loss, named by ``mistake``."""

    def gcl_cost_loss(demo_costs, sample_costs, sample_log_probs):
        reduce = torch.mean if mistake == "per step" else torch.sum
        C_demo, C = reduce(demo_costs, 1).mean(), reduce(sample_costs, 1)
        if mistake == "plain":
            return C_demo - C.mean()
        log_w = -C + {"no log pi": 0, "plus": 1}.get(mistake, -1) * sample_log_probs.sum(1)
        log_z = torch.logsumexp(log_w, 0) - (mistake != "sum") * math.log(len(log_w))
        return C_demo - log_z if mistake == "minus" else C_demo + log_z

    return gcl_cost_loss


def _loss_overflow(actual, expected, case: Case) -> str | None:
    if actual.shape == () and not np.isfinite(actual):
        return (
            f"your loss is {float(actual)}: with costs summed over 50 steps, exp(-C) overflows or "
            "underflows. Compute log Z_hat with torch.logsumexp."
        )
    return None


_GCL = {
    "minus": "log Z enters the negative log-likelihood with a plus sign: loss = mean_i C(tau_i) + "
    "log Z_hat, with log Z_hat = logsumexp_j(log w_j) - log M.",
    "no log pi": "the importance weight divides by the sampler's probability: log w_j = -C(tau_j) "
    "- sum_t log pi(a_t|s_t); you left out the log-probabilities.",
    "plus": "the importance weight divides by the sampler's probability, it does not multiply: "
    "log w_j = -C(tau_j) - sum_t log pi(a_t|s_t).",
    "plain": "you estimated log Z with a plain average of the sample costs (no importance "
    "weights): log Z_hat = log((1/M) sum_j w_j) with log w_j = -C(tau_j) - sum_t log pi(a_t|s_t).",
    "sum": "Z_hat is an average over the M samples, not a sum: subtract log M after the logsumexp.",
    "per step": "the cost of a trajectory is the sum of its per-step costs; you averaged over "
    "time steps.",
}
_NEEDS = "your loss passes no (or a wrong) gradient to {}; the cost network is trained through it."
_NEEDS = {0: _NEEDS.format("demo_costs"), 1: _NEEDS.format("sample_costs")}
GCL_COST_LOSS = Exercise(
    id="9.4",
    check_name="check_gcl_cost_loss",
    reference=reference_gcl_cost_loss,
    cases=_loss_cases,
    outputs=[Output("loss", 1e-7, 1e-9, tensor="the cost network is trained through it")],
    diagnoses=[_loss_overflow],
    grad=Grad(track=(0, 1), needs=_NEEDS),
    mistakes=[Mistake(message, _gcl_loss(mistake)) for mistake, message in _GCL.items()],
    success="the guided cost learning loss and its gradients match the reference on {n} inputs "
    "(costs of size 300 over 50 steps, a single sample, T = 1).",
)
check_gcl_cost_loss = GCL_COST_LOSS.check
