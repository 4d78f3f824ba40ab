"""Checks for chapter 09 (sample-based MaxEnt IRL): 9.1 log importance weights, 9.2 the
self-normalised estimate and the ESS, 9.3 the sample-based IRL gradient, 9.4 the guided cost
learning loss (value and gradients), 9.5 the guided cost learning update (build-it: the cost
network's parameters after one step of the student's update, compared with the reference's).
References: :mod:`course_utils.irl` and :mod:`.gcl`."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import softmax

from .. import gcl, irl
from . import (
    Case,
    Exercise,
    ExerciseError,
    Grad,
    Mistake,
    Output,
    flat_parameters,
    install_stale_gradients,
    messages,
)

__all__ = [
    "check_gcl_cost_loss",
    "check_gcl_cost_update",
    "check_log_importance_weights",
    "check_sample_irl_gradient",
    "reference_gcl_cost_update",
]
__all__ += ["check_self_normalized_estimate", "reference_gcl_cost_loss"]
__all__ += ["reference_log_importance_weights", "reference_sample_irl_gradient"]
__all__ += ["reference_self_normalized_estimate"]

reference_log_importance_weights = irl.log_importance_weights  # Exercise 9.1
reference_self_normalized_estimate = irl.self_normalized_estimate  # Exercise 9.2
reference_gcl_cost_loss = gcl.gcl_cost_loss  # Exercise 9.4
reference_gcl_cost_update = gcl.gcl_cost_update  # Exercise 9.5


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


# ----------------------------------------------------------------------- Exercise 9.5


def _update_cases(rng: np.random.Generator) -> list[Case]:
    """(cost_net, optimizer, demo_states, sample_states, sample_log_q, demo_log_q, config)."""

    def case(name, N, M, T, *, opt="sgd", alpha=1.0, mono=1.0, l2=0.01, log_q=-5.0, inf=False):
        torch.manual_seed(int(rng.integers(1 << 30)))
        net = gcl.CostNetwork(2, (8,), 3).double()
        if opt == "adam":  # an optimizer with state: two earlier steps on another loss
            optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
            for _ in range(2):
                optimizer.zero_grad()
                net(torch.rand(5, 2, dtype=torch.float64)).pow(2).sum().backward()
                optimizer.step()
        else:
            optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
        demo = torch.tensor(rng.uniform(-1, 1, size=(N, T, 2)))
        samples = torch.tensor(rng.uniform(-1, 1, size=(M, T, 2)))
        sample_log_q = torch.tensor(rng.normal(log_q, 2.0, size=M))
        demo_log_q = torch.tensor(rng.normal(log_q + 1.0, 2.0, size=N))
        if inf:  # train_gcl's default: each sample with its own sampler, the demos with weight 0
            demo_log_q = torch.full((N,), math.inf, dtype=torch.float64)
        config = gcl.GCLConfig(alpha=alpha, mono_weight=mono, cost_l2=l2)
        return Case(name, (net, optimizer, demo, samples, sample_log_q, demo_log_q, config))

    return [
        case("4 demos, 6 samples of T=5, SGD, alpha=1", 4, 6, 5),
        case(
            "Adam with state, 3 demos, 5 samples of T=8, alpha=0.2", 3, 5, 8, opt="adam", alpha=0.2
        ),
        case(
            "one demo and one sample of T=2, SGD, alpha=0.5, cost_l2=0.5",
            1,
            1,
            2,
            alpha=0.5,
            l2=0.5,
        ),
        case(
            "no regularizers (mono_weight=0, cost_l2=0), Adam",
            5,
            4,
            6,
            opt="adam",
            mono=0.0,
            l2=0.0,
        ),
        case("strong monotonic weight (mono_weight=10), SGD", 3, 3, 6, mono=10.0, l2=0.0),
        case("log q around -1000 (exp underflows: use logsumexp)", 4, 4, 5, log_q=-1000.0),
        case("demos with log q = +inf (weight 0: the estimator of 9.4)", 3, 4, 5, inf=True),
    ]


def _number(value) -> float | None:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.detach())
    if isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
        return float(value)
    return None


def _observe_update(fn, cost_net, optimizer, demo, samples, sample_log_q, demo_log_q, config):
    """The change of the cost network's parameters made by one call of ``fn``."""
    before = flat_parameters(cost_net)
    install_stale_gradients(cost_net.parameters(), 5)  # as after an earlier step
    out = fn(cost_net, optimizer, demo, samples, sample_log_q, demo_log_q, config)
    if getattr(fn, "_is_reference_variant", False) is False and _number(out) is None:
        raise ExerciseError(
            "Exercise 9.5: return the loss you minimised as a number (`return float(loss)` or "
            f"`return loss.item()`); your function returned {type(out).__name__}."
        )
    return flat_parameters(cost_net) - before


def _update_variant(
    *,
    background="both",  # "both", "samples": demos left out of the background set
    partition="log",  # "log": log Z_hat; "plain": Z_hat itself (weights not self-normalised)
    sign=1.0,  # sign of the log-partition term
    log_q_sign=-1.0,  # log w = -C / alpha + log_q_sign * log q
    alpha=True,  # divide the costs by alpha (False: nowhere; "demo_only": not in the weights)
    reduce="sum",  # per-trajectory cost: sum over t, or "mean"
    mono_on="demo",  # "demo", "samples", "reversed", "unsquared", "none"
    l2_on="both",  # "both", "demo", "samples", "none"
    detach=False,  # the log-partition term cut from the graph
    order="zbs",
):
    def gcl_cost_update(
        cost_net, optimizer, demo_states, sample_states, sample_log_q, demo_log_q, config
    ):
        a = config.alpha if alpha else 1.0  # alpha="demo_only": the weights miss it
        demo_c, sample_c = cost_net(demo_states), cost_net(sample_states)
        traj = (lambda c: c.sum(1)) if reduce == "sum" else (lambda c: c.mean(1))
        if background == "both":
            C, log_q = (
                torch.cat([traj(sample_c), traj(demo_c)]),
                torch.cat([sample_log_q, demo_log_q]),
            )
        else:
            C, log_q = traj(sample_c), sample_log_q
        log_w = -C / (1.0 if alpha == "demo_only" else a) + log_q_sign * log_q
        log_z = torch.logsumexp(log_w, 0) - math.log(len(log_w))
        if partition == "plain":
            log_z = torch.exp(log_z)
        if detach:
            log_z = log_z.detach()
        loss = traj(demo_c).mean() / a + sign * log_z
        along = {"samples": sample_c}.get(mono_on, demo_c)
        rises = along[:, 1:] - along[:, :-1]
        penalty = {
            "reversed": torch.relu(-rises).pow(2),
            "unsquared": torch.relu(rises),
        }.get(mono_on, torch.relu(rises).pow(2))
        if mono_on != "none":
            loss = loss + config.mono_weight * penalty.sum(1).mean()
        l2 = {
            "both": demo_c.pow(2).mean() + sample_c.pow(2).mean(),
            "demo": demo_c.pow(2).mean(),
            "samples": sample_c.pow(2).mean(),
            "none": 0.0,
        }[l2_on]
        loss = loss + config.cost_l2 * l2
        for action in order:
            {"z": optimizer.zero_grad, "b": loss.backward, "s": optimizer.step}[action]()
        return float(loss.detach())

    gcl_cost_update._is_reference_variant = True
    return gcl_cost_update


_UPDATE = messages("""
samples_only: the demonstrations are missing from the background set. Finn et al.'s partition
    estimate uses the policy samples AND the demonstrations: concatenate both (their costs and
    their log q) before the logsumexp, n = M + N trajectories.
plain: the importance weights are not self-normalised: the partition term is log Z_hat =
    logsumexp_b(log w_b) - log n, whose gradient is the self-normalised average sum_b w_bar_b grad
    C(tau_b) / alpha; you used Z_hat itself (an unnormalised average of the weights).
sign: the log-partition term has the wrong sign: loss = mean_i C(tau_i) / alpha + log Z_hat. Your
    step lowered the cost of the policy samples and raised that of the demonstrations.
plus_log_q: the importance weight DIVIDES by the sampler's density: log w_b = -C(tau_b) / alpha -
    log q(tau_b); you added log q.
no_log_q: the importance weights ignore the sampler: log w_b = -C(tau_b) / alpha - log q(tau_b);
    you left out log q.
no_alpha: the costs are divided by the temperature: the model is p(tau) exp(-C(tau) / alpha), so
    use C / config.alpha in the demo term and in the log-weights (not in the regularizers).
mean_time: the cost of a trajectory is the SUM of its per-step costs c(s_t); you averaged over the
    time steps.
mono_samples: the monotonic-decrease regularizer belongs to the demonstrations (they make steady
    progress towards their goal); you applied it along the policy samples.
mono_reversed: the monotonic regularizer penalises the cost going UP along a demonstration:
    max(0, c(s_{t+1}) - c(s_t))^2; yours penalises it going down.
mono_unsquared: square the hinge: sum_t max(0, c(s_{t+1}) - c(s_t))^2 (Finn et al.'s g_mono).
no_mono: the monotonic-decrease regularizer is missing: add config.mono_weight * mean over demos of
    sum_t max(0, c(s_{t+1}) - c(s_t))^2.
l2_demo: the L2 penalty covers the cost values of the demonstrations AND of the policy samples:
    config.cost_l2 * (mean c(s)^2 over the demo steps + mean c(s)^2 over the sample steps).
l2_samples: the L2 penalty covers the demonstrations too: config.cost_l2 * (mean c(s)^2 over the
    demo steps + over the sample steps).
no_l2: the L2 penalty on the cost values is missing: add config.cost_l2 * (mean c(s)^2 over the
    demo steps + over the sample steps).
detached: no gradient flows through the log-partition term (it was detached, computed under
    torch.no_grad() or with .item()): the samples' costs must be raised through it.
no_zero_grad: you did not clear the gradients before loss.backward(): backward ADDS to .grad. Call
    optimizer.zero_grad() first.
""")


def _update_unchanged(actual, expected, case: Case) -> str | None:
    if actual.shape == expected.shape and not np.any(actual) and np.any(expected):
        return (
            "the cost network's parameters did not change: call optimizer.zero_grad(), "
            "loss.backward() and optimizer.step() on the optimizer you were given."
        )
    return None


GCL_COST_UPDATE = Exercise(
    id="9.5",
    check_name="check_gcl_cost_update",
    reference=reference_gcl_cost_update,
    cases=_update_cases,
    call=_observe_update,
    mutates=(0, 1),
    outputs=[Output("change of the cost network's parameters", 1e-6, 1e-10)],
    diagnoses=[_update_unchanged],
    mistakes=[
        Mistake(_UPDATE[name], _update_variant(**knobs))
        for name, knobs in [
            ("samples_only", dict(background="samples")),
            ("plain", dict(partition="plain")),
            ("sign", dict(sign=-1.0)),
            ("plus_log_q", dict(log_q_sign=1.0)),
            ("no_log_q", dict(log_q_sign=0.0)),
            ("no_alpha", dict(alpha=False)),
            ("no_alpha", dict(alpha="demo_only")),
            ("mean_time", dict(reduce="mean")),
            ("mono_samples", dict(mono_on="samples")),
            ("mono_reversed", dict(mono_on="reversed")),
            ("mono_unsquared", dict(mono_on="unsquared")),
            ("no_mono", dict(mono_on="none")),
            ("l2_demo", dict(l2_on="demo")),
            ("l2_samples", dict(l2_on="samples")),
            ("no_l2", dict(l2_on="none")),
            ("detached", dict(detach=True)),
            ("no_zero_grad", dict(order="bs")),
        ]
    ],
    success="one cost update matches the reference on {n} inputs (SGD and Adam with state, one "
    "demo and one sample, no regularizers, log q around -1000 and +inf): same parameters after the "
    "step.",
)
check_gcl_cost_update = GCL_COST_UPDATE.check
