"""Checks for chapter 09 (sample-based MaxEnt IRL, importance sampling, guided cost learning).

Exercise 9.1 ``log_importance_weights(rewards, log_probs)``: log w_j = sum_t r_jt - sum_t log pi(a_jt|s_jt),
shape (M,); 9.2 ``self_normalized_estimate(log_w, values)``: (sum_j w_j f_j / sum_j w_j, ESS) computed
stably; 9.3 ``sample_irl_gradient(theta, features, expert_states, sample_states, sample_actions,
sampler_policy)``: the demonstrations' feature counts minus the self-normalised importance-weighted
feature counts of the samples, with the *sampler's* time-indexed log-probabilities; 9.4
``gcl_cost_loss(demo_costs, sample_costs, sample_log_probs)``: the importance-sampled negative
log-likelihood of guided cost learning (a torch scalar; its value and its gradients are checked).

The references are in :mod:`course_utils.irl` and :mod:`course_utils.gcl`. Each check runs the
student's function on several random inputs (weights of size 1000, a single sample, one dominating
sample, stationary and time-indexed samplers) and, when the answer is wrong, recomputes the typical
mistakes to name them.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from scipy.special import logsumexp

from .. import gcl, irl
from . import (
    Case,
    ExerciseError,
    ExerciseNotAttempted,
    as_array,
    assert_close,
    call_student,
    check_finite,
    check_shape,
    compare_with_reference,
    first_matching_mistake,
    outputs_match,
    passed,
)

__all__ = [
    "check_log_importance_weights",
    "check_self_normalized_estimate",
    "check_sample_irl_gradient",
    "check_gcl_cost_loss",
    "reference_log_importance_weights",
    "reference_self_normalized_estimate",
    "reference_sample_irl_gradient",
    "reference_gcl_cost_loss",
]


# ----------------------------------------------------------------------------- references


def reference_log_importance_weights(rewards, log_probs):
    """Exercise 9.1: log w_j = sum_t rewards[j, t] - sum_t log_probs[j, t], shape (M,)."""
    return irl.log_importance_weights(rewards, log_probs)


def reference_self_normalized_estimate(log_w, values):
    """Exercise 9.2: (sum_j w_j values_j / sum_j w_j, (sum_j w_j)^2 / sum_j w_j^2)."""
    return irl.self_normalized_estimate(log_w, values)


def reference_sample_irl_gradient(theta, features, expert_states, sample_states, sample_actions, sampler_policy):
    """Exercise 9.3: f_E - sum_j w_j f(tau_j) / sum_j w_j, shape (K,) (alpha = 1)."""
    return irl.sample_irl_gradient(theta, features, expert_states, sample_states, sample_actions, sampler_policy)


def reference_gcl_cost_loss(demo_costs, sample_costs, sample_log_probs):
    """Exercise 9.4: mean_i C(tau_i) + logsumexp_j(-C(tau_j) - sum_t log pi_j) - log M."""
    return gcl.gcl_cost_loss(demo_costs, sample_costs, sample_log_probs)


# ----------------------------------------------------------------------------- helpers


# ----------------------------------------------------------------------------- Exercise 9.1


def _weight_cases(rng: np.random.Generator) -> list[Case]:
    def probs(M, T, A=4):
        return np.log(rng.dirichlet(np.ones(A), size=(M, T))[..., 0])  # log-probabilities in (-inf, 0)

    return [
        Case("8 trajectories of 5 steps, log-probabilities of a discrete policy",
             (rng.normal(size=(8, 5)), probs(8, 5))),
        Case("3 trajectories of 50 steps, log-densities of a continuous policy (some > 0)",
             (rng.normal(size=(3, 50)), rng.normal(1.0, 1.5, size=(3, 50)))),
        Case("a single trajectory of 7 steps", (rng.normal(size=(1, 7)), probs(1, 7))),
        Case("6 trajectories of a single step", (rng.normal(size=(6, 1)), probs(6, 1))),
        Case("4 trajectories of 6 steps with rewards of size 1000",
             (1000 * rng.normal(size=(4, 6)), probs(4, 6))),
    ]


def _diagnose_weights(actual: np.ndarray, expected: np.ndarray, case: Case) -> str | None:
    rewards, log_probs = case.args
    M, T = rewards.shape
    if actual.shape != expected.shape:
        if actual.shape == (T,) and T != M:
            return ("your result has one entry per time step: sum over the time steps (axis=1), "
                    "keeping one log-weight per trajectory, shape (M,).")
        if actual.shape == (M, T):
            return ("your result has one entry per step; the weight of a trajectory is a product over "
                    "its steps, so its log is a sum over t: shape (M,).")
        return None
    R, L = rewards.sum(axis=1), log_probs.sum(axis=1)
    return first_matching_mistake(actual, [
        ("you did not divide by the sampler's probability: w_j = exp(sum_t r) / prod_t pi(a_t|s_t), "
         "so log w_j = sum_t r - sum_t log pi(a_t|s_t).", lambda: R),
        ("you multiplied by the sampler's probability instead of dividing by it: log w_j = sum_t r - "
         "sum_t log pi(a_t|s_t), not + sum_t log pi.", lambda: R + L),
        ("the sign is flipped: log w_j = sum_t r(s_t, a_t) - sum_t log pi(a_t|s_t) (you returned its "
         "negative, the log of pi(tau) / exp(r(tau))).", lambda: L - R),
        ("return the log-weights, not the weights: do not exponentiate (exp overflows for long "
         "trajectories).", lambda: np.exp(R - L)),
        ("you averaged over the time steps; the trajectory's weight is a product over steps, so sum "
         "the per-step terms (sum over axis=1, not mean).", lambda: (rewards - log_probs).mean(axis=1)),
    ])


def check_log_importance_weights(log_importance_weights: Callable, seed: int = 0) -> None:
    """Exercise 9.1: ``log_importance_weights(rewards (M, T), log_probs (M, T))`` -> (M,)."""
    __tracebackhide__ = True
    cases = _weight_cases(np.random.default_rng(seed))
    n = compare_with_reference("9.1", log_importance_weights, reference_log_importance_weights, cases,
                               name="log-weights", rtol=1e-9, atol=1e-9, diagnose=_diagnose_weights)
    passed("9.1", f"the log importance weights match the reference on {n} inputs (discrete and continuous "
                  "policies, M = 1, T = 1, rewards up to 1e3).")


# ----------------------------------------------------------------------------- Exercise 9.2


def _estimate_cases(rng: np.random.Generator) -> list[Case]:
    dominated = rng.normal(size=6)
    dominated[2] += 40.0
    return [
        Case("10 samples, values of shape (10,)", (rng.normal(size=10), rng.normal(size=10))),
        Case("7 samples, values of shape (7, 3)", (2 * rng.normal(size=7), rng.normal(size=(7, 3)))),
        Case("5 samples with log-weights around 1000 (exp overflows)",
             (1000 + 3 * rng.normal(size=5), rng.normal(size=(5, 2)))),
        Case("5 samples with log-weights around -1000 (exp underflows to 0)",
             (-1000 + 3 * rng.normal(size=5), rng.normal(size=5))),
        Case("6 samples, one of them carries (almost) all the weight", (dominated, rng.normal(size=(6, 2)))),
        Case("4 samples with equal weights", (np.full(4, 0.7), rng.normal(size=(4, 3)))),
        Case("a single sample", (np.array([3.2]), rng.normal(size=(1, 4)))),
    ]


def _estimate_mistakes(log_w: np.ndarray, values: np.ndarray) -> tuple[list, list]:
    """Typical wrong estimates and wrong ESS values, each with its feedback."""
    M = len(log_w)
    with np.errstate(all="ignore"):  # the mistakes overflow on purpose
        w = np.exp(log_w)
    w_shift = np.exp(log_w - log_w.max())
    w_bar = w_shift / w_shift.sum()
    estimates = [
        ("the weights are not normalised: the self-normalised estimate divides by the sum of the weights, "
         "sum_j w_j f_j / sum_j w_j (the plain (1/M) sum_j w_j f_j needs the normalising constant Z, which "
         "we do not know).", lambda: np.tensordot(w, values, axes=(0, 0)) / M),
        ("the weights are not normalised: divide by sum_j w_j (after subtracting the maximum, the weights "
         "are only defined up to a constant factor).", lambda: np.tensordot(w_shift, values, axes=(0, 0)) / M),
        ("the weights are not normalised: divide by sum_j w_j, not by M.",
         lambda: np.tensordot(w_shift, values, axes=(0, 0))),
        ("you ignored the importance weights (a plain average over the samples); weight sample j by "
         "w_j / sum_k w_k.", lambda: values.mean(axis=0)),
        ("you weighted by the log-weights; the weights are w_j = exp(log w_j), normalised to sum to one.",
         lambda: np.tensordot(log_w / log_w.sum(), values, axes=(0, 0))),
    ]
    ess = [
        ("the ESS is inverted: ESS = (sum_j w_j)^2 / sum_j w_j^2, between 1 and M (you computed "
         "sum_j w_j^2 / (sum_j w_j)^2).", lambda: float((w_bar ** 2).sum())),
        ("the ESS uses the weights w_j = exp(log w_j), not the log-weights.",
         lambda: float(log_w.sum() ** 2 / (log_w ** 2).sum())),
        ("the ESS is (sum_j w_j)^2 / sum_j w_j^2, not M (it measures how evenly the weights are spread).",
         lambda: float(M)),
        ("you returned ESS / M (a fraction of the samples); return the ESS itself, (sum_j w_j)^2 / sum_j w_j^2.",
         lambda: float(1.0 / (w_bar ** 2).sum() / M) if M > 1 else np.nan),
    ]
    return estimates, ess


def check_self_normalized_estimate(self_normalized_estimate: Callable, seed: int = 0) -> None:
    """Exercise 9.2: ``self_normalized_estimate(log_w (M,), values (M,) or (M, K))`` -> (estimate, ess)."""
    __tracebackhide__ = True
    ex = "9.2"
    cases = _estimate_cases(np.random.default_rng(seed))
    for case in cases:
        expected_estimate, expected_ess = case.call(reference_self_normalized_estimate)
        result = call_student(ex, self_normalized_estimate, case)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise ExerciseError(f"Exercise {ex}: return a pair (estimate, ess), got "
                                f"{type(result).__name__}{'' if not isinstance(result, (tuple, list)) else f' of length {len(result)}'}.")
        estimate, ess = (as_array(ex, r, name) for r, name in zip(result, ("estimate", "ESS")))
        log_w, values = case.args
        estimates, ess_mistakes = _estimate_mistakes(log_w, values)
        for actual, expected, name, mistakes in ((estimate, expected_estimate, "estimate", estimates),
                                                 (ess, expected_ess, "ESS", ess_mistakes)):
            if name == "ESS" and actual.size == 1:
                actual = actual.reshape(())
            try:
                check_shape(ex, actual, np.shape(expected), name, case.name)
                if not np.isfinite(actual).all():
                    if np.abs(log_w).max() > 500:
                        raise ExerciseError(
                            f"Exercise {ex}: your {name} is NaN or inf (input: {case.name}): exp of "
                            "log-weights around +-1000 overflows or underflows. Subtract the largest "
                            "log-weight before exponentiating (or use scipy.special.logsumexp): the "
                            "normalised weights do not change.")
                    check_finite(ex, actual, name, case.name)
                assert_close(ex, actual, expected, name=name, context=case.name, rtol=1e-7, atol=1e-10)
            except ExerciseNotAttempted:
                raise
            except ExerciseError as generic:
                specific = first_matching_mistake(np.asarray(actual, dtype=float), mistakes)
                if specific:
                    raise ExerciseError(f"Exercise {ex}: {specific} (input: {case.name})") from None
                raise generic from None
    passed(ex, f"the self-normalised estimate and the ESS match the reference on {len(cases)} inputs "
               "(log-weights of size 1000, one dominating sample, equal weights, M = 1).")


# ----------------------------------------------------------------------------- Exercise 9.3


def _random_problem(rng: np.random.Generator, S: int, A: int, K: int, T: int, N: int, M: int,
                    stationary: bool = False):
    features = rng.normal(size=(S, K))
    theta = rng.normal(size=K)
    expert_states = rng.integers(S, size=(N, T))
    shape = (S, A) if stationary else (T, S, A)
    sampler = rng.dirichlet(np.ones(A), size=shape[:-1])
    sample_states = rng.integers(S, size=(M, T))
    sample_actions = np.empty((M, T), dtype=np.int64)
    for t in range(T):
        pi = sampler if stationary else sampler[t]
        sample_actions[:, t] = [rng.choice(A, p=pi[s]) for s in sample_states[:, t]]
    return theta, features, expert_states, sample_states, sample_actions, sampler


def _gradient_cases(rng: np.random.Generator) -> list[Case]:
    return [
        Case("5 states, 3 actions, 2 features, 6 demos and 20 samples of T=4, time-indexed sampler",
             _random_problem(rng, 5, 3, 2, 4, 6, 20)),
        Case("8 states, 4 actions, 3 features, 3 demos and 12 samples of T=6, time-indexed sampler",
             _random_problem(rng, 8, 4, 3, 6, 3, 12)),
        Case("4 states, 2 actions, 1 feature, 5 demos and 9 samples of T=3, time-indexed sampler",
             _random_problem(rng, 4, 2, 1, 3, 5, 9)),
        Case("6 states, 5 actions, 4 features, T=1, time-indexed sampler",
             _random_problem(rng, 6, 5, 4, 1, 4, 10)),
        Case("5 states, 3 actions, 2 features, T=5, a stationary sampler of shape (S, A)",
             _random_problem(rng, 5, 3, 2, 5, 4, 15, stationary=True)),
    ]


def _gradient_variant(case: Case, *, sign=1.0, weights="snis", log_probs="sampler", sum_demos=False) -> np.ndarray:
    theta, features, expert_states, states, actions, sampler = case.args
    A = sampler.shape[-1]
    counts = features[states].sum(axis=1)
    rewards = (features @ theta)[states]
    if log_probs == "sampler":
        lp = irl.trajectory_log_probs(sampler, states, actions)
    elif log_probs == "step0":
        lp = np.log((sampler if sampler.ndim == 2 else sampler[0])[states, actions])
    elif log_probs == "uniform":
        lp = np.full(states.shape, -np.log(A))
    elif log_probs == "none":
        lp = np.zeros(states.shape)
    else:
        raise ValueError(log_probs)
    log_w = (rewards - lp).sum(axis=1)
    if log_probs == "plus":
        log_w = (rewards + irl.trajectory_log_probs(sampler, states, actions)).sum(axis=1)
    if weights == "snis":
        w = np.exp(log_w - logsumexp(log_w))
    elif weights == "unnormalised":
        w = np.exp(log_w) / len(log_w)
    else:  # plain mean
        w = np.full(len(log_w), 1 / len(log_w))
    demo = features[expert_states].sum(axis=1)
    demo = demo.sum(axis=0) if sum_demos else demo.mean(axis=0)
    return sign * (demo - w @ counts)


def _diagnose_gradient(actual: np.ndarray, expected: np.ndarray, case: Case) -> str | None:
    if actual.shape != expected.shape or not np.isfinite(actual).all():
        return None
    stationary = case.args[-1].ndim == 2
    v = lambda **kw: (lambda: _gradient_variant(case, **kw))  # noqa: E731
    mistakes = [
        ("the gradient has the wrong sign: it is the demonstrations' feature counts MINUS the weighted "
         "feature counts of the samples (the log-likelihood grows along it).", v(sign=-1.0)),
        ("you ignored the importance weights (a plain average over the samples): the samples come from a "
         "different policy than p(tau|O, psi), so the plain average is biased. Weight sample j by "
         "w_j / sum_k w_k.", v(weights="plain")),
        ("the importance weights are not normalised: use the self-normalised estimate sum_j w_j f(tau_j) / "
         "sum_j w_j (Z is unknown, so (1/M) sum_j w_j f(tau_j) is off by the factor Z).", v(weights="unnormalised")),
        ("the weights do not use the sampler's log-probabilities: log w_j = sum_t r(s_t) - sum_t "
         "log pi_t(a_t|s_t) with pi the sampler, evaluated at the actions it took (leaving them out, or using "
         "the uniform action prior log(1/|A|), gives the same wrong answer: a constant cancels in the "
         "self-normalisation).", v(log_probs="none")),
        ("the weights multiply by the sampler's probability instead of dividing: log w_j = sum_t r(s_t) "
         "- sum_t log pi_t(a_t|s_t).", v(log_probs="plus")),
        ("you summed the demonstrations' feature counts over demonstrations; average them (mean over "
         "the N demonstrations, sum over time steps).", v(sum_demos=True)),
    ]
    if not stationary:
        mistakes.append(("the weights use the wrong policy's log-probabilities: the sampler is time-indexed "
                         "(T, S, A); use pi_t at step t (sampler_policy[t, s_t, a_t]), not pi_0 at every step.",
                         v(log_probs="step0")))
    return first_matching_mistake(actual, mistakes)


def check_sample_irl_gradient(sample_irl_gradient: Callable, seed: int = 0) -> None:
    """Exercise 9.3: ``sample_irl_gradient(theta, features, expert_states, sample_states, sample_actions,
    sampler_policy)`` -> (K,)."""
    __tracebackhide__ = True
    cases = _gradient_cases(np.random.default_rng(seed))
    n = compare_with_reference("9.3", sample_irl_gradient, reference_sample_irl_gradient, cases,
                               name="gradient", rtol=1e-7, atol=1e-9, diagnose=_diagnose_gradient)
    passed("9.3", f"the sample-based MaxEnt IRL gradient matches the reference on {n} problems "
                  "(time-indexed and stationary samplers, K from 1 to 4, T from 1 to 6).")


# ----------------------------------------------------------------------------- Exercise 9.4


def _loss_cases(rng: np.random.Generator) -> list[tuple[str, dict]]:
    return [
        ("5 demos and 8 samples of T=6", dict(demo_costs=rng.normal(size=(5, 6)),
                                              sample_costs=rng.normal(size=(8, 6)),
                                              sample_log_probs=rng.normal(0.5, 1.0, size=(8, 6)))),
        ("3 demos and 4 samples of T=50 with costs of size 300 (exp overflows)",
         dict(demo_costs=300 * rng.normal(size=(3, 50)), sample_costs=300 * rng.normal(size=(4, 50)),
              sample_log_probs=rng.normal(size=(4, 50)))),
        ("2 demos and a single sample of T=3", dict(demo_costs=rng.normal(size=(2, 3)),
                                                    sample_costs=rng.normal(size=(1, 3)),
                                                    sample_log_probs=rng.normal(size=(1, 3)))),
        ("4 demos and 6 samples of T=1", dict(demo_costs=rng.normal(size=(4, 1)),
                                              sample_costs=rng.normal(size=(6, 1)),
                                              sample_log_probs=rng.normal(size=(6, 1)))),
    ]


def _loss_mistakes(d: dict) -> list[tuple[str, Callable[[], torch.Tensor]]]:
    C_demo = d["demo_costs"].sum(1).mean()
    C = d["sample_costs"].sum(1)
    L = d["sample_log_probs"].sum(1)
    M = C.shape[0]
    lse = lambda x: torch.logsumexp(x, 0)  # noqa: E731
    return [
        ("log Z enters the negative log-likelihood with a plus sign: loss = mean_i C(tau_i) + log Z_hat, "
         "with log Z_hat = logsumexp_j(log w_j) - log M.", lambda: C_demo - (lse(-C - L) - math.log(M))),
        ("the importance weight divides by the sampler's probability: log w_j = -C(tau_j) - sum_t log "
         "pi(a_t|s_t); you left out the log-probabilities.", lambda: C_demo + lse(-C) - math.log(M)),
        ("the importance weight divides by the sampler's probability, it does not multiply: log w_j = "
         "-C(tau_j) - sum_t log pi(a_t|s_t).", lambda: C_demo + lse(-C + L) - math.log(M)),
        ("you estimated log Z with a plain average of the sample costs (no importance weights): log Z_hat "
         "= log((1/M) sum_j w_j) with log w_j = -C(tau_j) - sum_t log pi(a_t|s_t).", lambda: C_demo - C.mean()),
        ("Z_hat is an average over the M samples, not a sum: subtract log M after the logsumexp.",
         lambda: C_demo + lse(-C - L)),
        ("the cost of a trajectory is the sum of its per-step costs; you averaged over time steps.",
         lambda: d["demo_costs"].mean(1).mean() + lse(-d["sample_costs"].mean(1) - L) - math.log(M)),
    ]


def check_gcl_cost_loss(gcl_cost_loss: Callable, seed: int = 0) -> None:
    """Exercise 9.4: ``gcl_cost_loss(demo_costs (N, T), sample_costs (M, T), sample_log_probs (M, T))``
    -> a scalar tensor; its value and its gradients w.r.t. both cost tensors are checked."""
    __tracebackhide__ = True
    ex = "9.4"
    cases = _loss_cases(np.random.default_rng(seed))
    for name, raw in cases:
        def tensors():
            return {k: torch.tensor(v, dtype=torch.float64, requires_grad=(k != "sample_log_probs"))
                    for k, v in raw.items()}
        args = tensors()
        case = Case(name, (), {})
        # positional, on the very tensors: their gradients are inspected below
        case.call = lambda fn, a=args: fn(a["demo_costs"], a["sample_costs"], a["sample_log_probs"])
        loss = call_student(ex, gcl_cost_loss, case)
        ref_args = tensors()
        ref = reference_gcl_cost_loss(**ref_args)
        value = as_array(ex, loss, "loss")
        detached = {k: v.detach() for k, v in ref_args.items()}
        try:
            if value.size != 1:
                raise ExerciseError(f"Exercise {ex}: the loss must be a scalar (one number for the whole "
                                    f"batch), got shape {tuple(value.shape)} (input: {name}).")
            value = value.reshape(())
            if not np.isfinite(value):
                raise ExerciseError(
                    f"Exercise {ex}: your loss is {value} (input: {name}). With costs summed over 50 steps, "
                    "exp(-C) overflows or underflows: compute log Z_hat with torch.logsumexp.")
            assert_close(ex, value, ref.detach().numpy(), name="loss", context=name, rtol=1e-7, atol=1e-9)
        except ExerciseError as generic:
            for message, make in _loss_mistakes(detached):
                try:
                    candidate = make().numpy()
                except Exception:
                    continue
                if value.size == 1 and outputs_match(value.reshape(()), candidate):
                    raise ExerciseError(f"Exercise {ex}: {message} (input: {name})") from None
            raise generic from None
        if not isinstance(loss, torch.Tensor) or loss.grad_fn is None:
            raise ExerciseError(
                f"Exercise {ex}: your loss carries no gradient back to the costs (input: {name}); the cost "
                "network is trained through it. Use torch operations only (no .item(), numpy or "
                "torch.no_grad()).")
        grads = torch.autograd.grad(loss, [args["demo_costs"], args["sample_costs"]], allow_unused=True)
        ref_grads = torch.autograd.grad(ref, [ref_args["demo_costs"], ref_args["sample_costs"]])
        for label, g, g_ref in zip(("demo_costs", "sample_costs"), grads, ref_grads):
            if g is None:
                raise ExerciseError(f"Exercise {ex}: your loss does not depend on {label} (input: {name}).")
            assert_close(ex, g.detach().numpy(), g_ref.numpy(), name=f"gradient w.r.t. {label}",
                         context=name, rtol=1e-7, atol=1e-9)
    passed(ex, f"the guided cost learning loss and its gradients match the reference on {len(cases)} inputs "
               "(costs of size 300 over 50 steps, a single sample, T = 1).")
