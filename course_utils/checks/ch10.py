"""Checks for chapter 10 (adversarial inverse RL: GANs, AIRL, GAIL).

* Exercise 10.1 ``airl_logits(g_s, h_s, h_next, log_pi, gamma)``: the logit of the structured
  discriminator, f_psi(s, a, s') - log pi(a|s) with f_psi = g_psi(s) + gamma h_psi(s') - h_psi(s).
* Exercise 10.2 ``discriminator_loss(expert_logits, policy_logits)``: binary cross-entropy with label 1
  for expert and 0 for policy samples, mean over each batch, stable for any logit.
* Exercise 10.3 ``gail_reward(discriminator, obs, actions)``: log D(s, a) - log(1 - D(s, a)) for the
  policy update, computed without any gradient into the discriminator.

The references are those of :mod:`course_utils.adversarial`. Each check compares values with the
reference on several float64 batches (including extreme logits) and names the typical mistakes by
recomputing them: a missing or flipped log pi term, no discount, shaping the wrong way round, swapped
labels, log D where log(1 - D) belongs, sums instead of means, unstable logs, gradients leaking into
the discriminator.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .. import adversarial as ref
from . import Case, ExerciseError, as_array, assert_close, call_student, check_finite, check_shape, passed

__all__ = ["check_airl_logits", "check_discriminator_loss", "check_gail_reward", "reference_gail_reward"]

_F64 = torch.float64


def _t(x, grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.asarray(x, dtype=float), dtype=_F64, requires_grad=grad)


def _call(exercise: str, fn: Callable, args: dict, name: str):
    """Call ``fn(**args)`` on the very tensors given (no copies: gradients are inspected)."""
    __tracebackhide__ = True
    if not callable(fn):
        return call_student(exercise, fn, Case(name))

    @functools.wraps(fn)
    def bound():
        return fn(**args)

    return call_student(exercise, bound, Case(name))


def _close(a, b, rtol=1e-6, atol=1e-8) -> bool:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return a.shape == b.shape and bool(np.all(np.isfinite(a))) and np.allclose(a, b, rtol=rtol, atol=atol)


def _match_mistake(ex: str, arr: np.ndarray, expected: np.ndarray, mistakes, name: str) -> None:
    __tracebackhide__ = True
    for message, wrong in mistakes:
        wrong = np.asarray(wrong, float)
        if _close(wrong, expected):
            continue  # this mistake gives the right answer on this input: not diagnosable here
        if _close(arr, wrong):
            raise ExerciseError(f"Exercise {ex}: {message} (input: {name})")


# ---------------------------------------------------------------------------------- 10.1


def _logit_cases() -> list[tuple[str, dict]]:
    rng = np.random.default_rng(1001)

    def case(name, b, gamma, scale=1.0):
        return name, {
            "g_s": rng.normal(0.0, scale, size=b),
            "h_s": rng.normal(0.0, 2.0 * scale, size=b),
            "h_next": rng.normal(0.0, 2.0 * scale, size=b),
            "log_pi": rng.normal(-1.0, 1.5, size=b),
            "gamma": gamma,
        }

    return [
        case("B=6 transitions, gamma=0.9", 6, 0.9),
        case("B=16 transitions, gamma=0.99", 16, 0.99),
        case("B=3 transitions, gamma=0.5, large rewards and potentials (scale 50)", 3, 0.5, 50.0),
    ]


def check_airl_logits(fn: Callable) -> None:
    """Exercise 10.1: f - log pi with f = g(s) + gamma h(s') - h(s), values and gradients."""
    __tracebackhide__ = True
    ex = "10.1"
    cases = _logit_cases()
    for name, raw in cases:
        args = {k: (_t(v, grad=True) if isinstance(v, np.ndarray) else v) for k, v in raw.items()}
        out = _call(ex, fn, args, name)
        arr = as_array(ex, out, "logits")
        d = {k: (_t(v) if isinstance(v, np.ndarray) else v) for k, v in raw.items()}
        expected = ref.airl_logits(**d).numpy()
        check_shape(ex, arr, expected.shape, "logits", name)
        check_finite(ex, arr, "logits", name)
        if not _close(arr, expected):
            g, h, h2, lp, gamma = d["g_s"], d["h_s"], d["h_next"], d["log_pi"], d["gamma"]
            f = g + gamma * h2 - h
            mistakes = [
                ("the logits miss the -log pi(a|s) term. The structured discriminator is "
                 "D = exp(f) / (exp(f) + pi(a|s)), whose logit is f - log pi(a|s), not f.", f),
                ("log pi(a|s) has the wrong sign: the logit is f - log pi(a|s) "
                 "(D = exp(f) / (exp(f) + pi), so a policy that is likely to take a makes D smaller).", f + lp),
                ("the discount is missing: f = g(s) + gamma * h(s') - h(s).", g + h2 - h - lp),
                ("the shaping term is the wrong way round: f = g(s) + gamma * h(s') - h(s) "
                 "(the potential of the next state, discounted, minus that of the current state).",
                 g + h - gamma * h2 - lp),
                ("the discount multiplies the wrong potential: f = g(s) + gamma * h(s') - h(s), "
                 "not g(s) + h(s') - gamma * h(s).", g + h2 - gamma * h - lp),
                ("you returned D = sigmoid(logit), a probability; return the logit f - log pi(a|s) itself "
                 "(D = sigmoid(logit) is computed from it where needed).", torch.sigmoid(f - lp)),
                ("the shaping term is missing: f = g(s) + gamma * h(s') - h(s), not g(s) alone.", g - lp),
            ]
            _match_mistake(ex, arr, expected, [(m, w.numpy()) for m, w in mistakes], name)
            assert_close(ex, arr, expected, name="logits", context=name)
        if not isinstance(out, torch.Tensor) or out.grad_fn is None:
            raise ExerciseError(
                f"Exercise {ex}: the logits carry no gradient (input: {name}); the discriminator is trained "
                "through them. Use torch operations on the given tensors (no .detach(), numpy or no_grad)."
            )
        grads = torch.autograd.grad(out.sum(), [args["g_s"], args["h_s"], args["h_next"]], allow_unused=True)
        want = (1.0, -1.0, raw["gamma"])
        for label, g_, w in zip(("g_s", "h_s", "h_next"), grads, want):
            if g_ is None or not np.allclose(g_.numpy(), w):
                raise ExerciseError(
                    f"Exercise {ex}: the gradient of the logits w.r.t. {label} should be {w:g} for every "
                    f"transition (input: {name}); nothing of f may be detached."
                )
    passed(ex, f"the AIRL logits f - log pi match the reference on {len(cases)} batches, with gradients.")


# ---------------------------------------------------------------------------------- 10.2


def _loss_cases() -> list[tuple[str, dict]]:
    rng = np.random.default_rng(1002)
    return [
        ("8 expert and 8 policy logits", {"expert_logits": rng.normal(0.5, 1.0, 8), "policy_logits": rng.normal(-0.5, 1.0, 8)}),
        ("5 expert and 12 policy logits (different batch sizes)",
         {"expert_logits": rng.normal(1.0, 2.0, 5), "policy_logits": rng.normal(-1.0, 2.0, 12)}),
        ("a confident discriminator: logits of size 50 to 900, both signs",
         {"expert_logits": np.array([120.0, -800.0, 50.0, 900.0]), "policy_logits": np.array([-900.0, 80.0, 850.0])}),
    ]


def check_discriminator_loss(fn: Callable) -> None:
    """Exercise 10.2: BCE with expert label 1 and policy label 0, per-batch means, stable, differentiable."""
    __tracebackhide__ = True
    ex = "10.2"
    cases = _loss_cases()
    sp = F.softplus
    for name, raw in cases:
        args = {k: _t(v, grad=True) for k, v in raw.items()}
        out = _call(ex, fn, args, name)
        arr = as_array(ex, out, "loss")
        if arr.ndim == 1 and arr.shape[0] > 1:
            raise ExerciseError(
                f"Exercise {ex}: the loss has shape {arr.shape}, expected a scalar: average each term over its "
                f"batch with .mean() and add the two (input: {name})."
            )
        check_shape(ex, arr, (), "loss", name)
        e, p = _t(raw["expert_logits"]), _t(raw["policy_logits"])
        expected = ref.discriminator_loss(e, p).numpy()
        if not np.all(np.isfinite(arr)):
            raise ExerciseError(
                f"Exercise {ex}: the loss is not finite for large logits (input: {name}). log(sigmoid(x)) "
                "underflows to log(0) = -inf once |x| is large; use -log D = softplus(-logit) and "
                "-log(1 - D) = softplus(logit) (torch.nn.functional.softplus), or "
                "torch.nn.functional.binary_cross_entropy_with_logits."
            )
        if not _close(arr, expected):
            mistakes = [
                ("the labels are swapped: expert samples get label 1 (-log D) and policy samples label 0 "
                 "(-log(1 - D)), so that D(x) is the probability that x comes from the expert.",
                 sp(e).mean() + sp(-p).mean()),
                ("the policy term uses log D where log(1 - D) belongs: policy samples (label 0) cost "
                 "-log(1 - D) = softplus(logit).", sp(-e).mean() + sp(-p).mean()),
                ("the expert term uses log(1 - D) where log D belongs: expert samples (label 1) cost "
                 "-log D = softplus(-logit).", sp(e).mean() + sp(p).mean()),
                ("the signs are flipped: L_D = E_expert[-log D] + E_policy[-log(1 - D)] is minimised, so "
                 "both terms are negative log-probabilities (positive numbers).", -(sp(-e).mean() + sp(p).mean())),
                ("the terms are summed over the batch; take the mean of each term over its own batch.",
                 sp(-e).sum() + sp(p).sum()),
                ("both batches are averaged together; the slides' loss averages each expectation over its own "
                 "batch: mean over experts of -log D plus mean over policy samples of -log(1 - D).",
                 torch.cat([sp(-e), sp(p)]).mean()),
                ("the policy term is missing: add the mean over policy samples of -log(1 - D).", sp(-e).mean()),
                ("the expert term is missing: add the mean over expert samples of -log D.", sp(p).mean()),
            ]
            _match_mistake(ex, arr, expected, [(m, w.numpy()) for m, w in mistakes], name)
            assert_close(ex, arr, expected, name="loss", context=name)
        if not isinstance(out, torch.Tensor) or out.grad_fn is None:
            raise ExerciseError(
                f"Exercise {ex}: the loss carries no gradient (input: {name}); the discriminator is trained by "
                "backpropagating it. Use torch operations, no .item(), numpy or torch.no_grad()."
            )
        got = torch.autograd.grad(out, [args["expert_logits"], args["policy_logits"]], allow_unused=True)
        want = (-torch.sigmoid(-e) / len(e), torch.sigmoid(p) / len(p))
        for label, g_, w in zip(("expert_logits", "policy_logits"), got, want):
            if g_ is None or not _close(g_.numpy(), w.numpy(), 1e-5, 1e-9):
                raise ExerciseError(
                    f"Exercise {ex}: the gradient w.r.t. {label} differs from the reference (input: {name}); "
                    "clamping or detaching the logits changes it."
                )
    passed(ex, f"the discriminator loss matches the reference on {len(cases)} batches (also for logits up to 900), with gradients.")


# ---------------------------------------------------------------------------------- 10.3


def reference_gail_reward(discriminator, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """log D(s, a) - log(1 - D(s, a)) = the discriminator's logit, (B,), without gradient."""
    with torch.no_grad():
        return ref.adversarial_reward(discriminator(obs, actions), "logit")


def _discriminators() -> list[tuple[str, object, torch.Tensor, torch.Tensor]]:
    out = []
    for name, seed, b, scale, discrete in (
        ("a discriminator of 2-D states and 2-D actions, B=7", 1, 7, 1.0, False),
        ("a discriminator of 4-D states and 2 discrete actions, B=9", 2, 9, 1.0, True),
        ("a very confident discriminator (logits of size 30 to 300), B=6", 3, 6, 200.0, False),
    ):
        torch.manual_seed(seed)
        obs_dim = 4 if discrete else 2
        if discrete:
            disc = ref.GAILDiscriminator(obs_dim, n_actions=2, hidden_sizes=(16,)).double()
            actions = torch.randint(0, 2, (b,))
        else:
            disc = ref.GAILDiscriminator(obs_dim, act_dim=2, hidden_sizes=(16,)).double()
            actions = torch.rand(b, 2, dtype=_F64) * 2 - 1
        with torch.no_grad():
            disc.net[-1].weight.mul_(scale)
            disc.net[-1].bias.fill_(0.3 * scale)
        obs = torch.randn(b, obs_dim, dtype=_F64)
        out.append((name, disc, obs, actions))
    return out


def check_gail_reward(fn: Callable) -> None:
    """Exercise 10.3: the reward log D - log(1 - D), its stability, and no gradient into the discriminator."""
    __tracebackhide__ = True
    ex = "10.3"
    cases = _discriminators()
    for name, disc, obs, actions in cases:
        disc.zero_grad(set_to_none=True)
        out = _call(ex, fn, {"discriminator": disc, "obs": obs, "actions": actions}, name)
        arr = as_array(ex, out, "reward")
        with torch.no_grad():
            logits = disc(obs, actions)
        expected = logits.numpy()
        if arr.shape == (len(expected), 1):
            raise ExerciseError(
                f"Exercise {ex}: the reward has shape {arr.shape}, expected {expected.shape}: one reward per "
                f"transition (squeeze the last axis) (input: {name})."
            )
        check_shape(ex, arr, expected.shape, "reward", name)
        if not np.all(np.isfinite(arr)):
            raise ExerciseError(
                f"Exercise {ex}: the reward is not finite for a confident discriminator (input: {name}). "
                "sigmoid(logit) rounds to exactly 1 (or 0) for large |logit|, and then log(1 - D) = log(0). "
                "Work with the logit: log D - log(1 - D) = logsigmoid(x) - logsigmoid(-x) = x."
            )
        if not _close(arr, expected, 1e-6, 1e-8):
            D = torch.sigmoid(logits)
            mistakes = [
                ("you returned log D only; the reward is log D - log(1 - D) (the generator minimises "
                 "log(1 - D) - log D).", F.logsigmoid(logits)),
                ("you returned -log(1 - D) only; the reward is log D - log(1 - D).", -F.logsigmoid(-logits)),
                ("the sign is flipped: the policy should be rewarded where the discriminator believes it is the "
                 "expert, reward = log D - log(1 - D), not log(1 - D) - log D.", -logits),
                ("you returned D itself; the reward is log D - log(1 - D).", D),
                ("you returned log(1 - D); the reward is log D - log(1 - D) (log(1 - D) belongs to the "
                 "generator's loss, with a minus sign in the reward).", F.logsigmoid(-logits)),
            ]
            _match_mistake(ex, arr, expected, [(m, w.numpy()) for m, w in mistakes], name)
            assert_close(ex, arr, expected, name="reward", context=name, rtol=1e-6, atol=1e-8)
        if isinstance(out, torch.Tensor) and out.requires_grad:
            raise ExerciseError(
                f"Exercise {ex}: the reward requires grad, so the policy update would flow gradients into the "
                f"discriminator (input: {name}). The reward is a fixed number for the policy: compute it under "
                "torch.no_grad() (or .detach() it)."
            )
        if any(p.grad is not None for p in disc.parameters()):
            raise ExerciseError(
                f"Exercise {ex}: your function left gradients on the discriminator's parameters (input: {name}); "
                "computing a reward must not touch the discriminator (no backward, compute under torch.no_grad())."
            )
    passed(ex, f"the reward log D - log(1 - D) matches the reference for {len(cases)} discriminators, finite and gradient-free.")
