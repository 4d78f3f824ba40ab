"""Checks for chapter 07 (Soft Actor-Critic).

* Exercise 7.1 ``squashed_gaussian_sample(mean, log_std, eps)``: a = tanh(u), u = mean + sigma eps,
  and log pi(a|s) = log N(u; mean, sigma) - sum_j log(1 - tanh(u_j)^2), in a stable form.
* Exercise 7.2 ``value_loss(v, q1_new, q2_new, log_prob_new, alpha)``: J_V(psi).
* Exercise 7.3 ``q_loss(q1, q2, reward, next_value, terminated, truncated, gamma)``: J_Q(theta_1) + J_Q(theta_2).
* Exercise 7.4 ``policy_loss(log_prob_new, q1_new, q2_new, alpha)``: J_pi(phi).
* Exercise 7.5 ``polyak_update(target, source, tau)``: psibar <- tau psi + (1 - tau) psibar, in place.
* Exercise 7.6 ``temperature_loss(log_alpha, log_prob_new, target_entropy)``: J(alpha).

The references are those of :mod:`course_utils.rl.losses` (7.2-7.6) and the change of variables of
:class:`course_utils.rl.SquashedGaussianPolicy` (7.1). Every check runs the student's function on
fixed float64 tensors (fixed noise, so the values are comparable), compares values and gradients
with the reference, and names typical mistakes by recomputing them ("mistake models"): the missing
tanh correction, min vs mean of the critics, a missing alpha log pi, bootstrapping through
terminated states, truncated treated as terminal, gradients leaking into targets, polyak in the
wrong direction, no reparameterisation.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal

from ..rl import losses as ref
from . import (
    Case,
    ExerciseError,
    as_array,
    assert_close,
    call_student,
    check_finite,
    check_shape,
    passed,
)

__all__ = [
    "check_policy_loss",
    "check_polyak_update",
    "check_q_loss",
    "check_squashed_gaussian_sample",
    "check_temperature_loss",
    "check_value_loss",
    "reference_squashed_gaussian_sample",
]

_F64 = torch.float64
_RTOL, _ATOL = 1e-6, 1e-9
Mistake = tuple[str, Callable[..., torch.Tensor]]  # (feedback, the wrong answer on the inputs)


def _t(x, grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.asarray(x, dtype=float), dtype=_F64, requires_grad=grad)


def _call(exercise: str, fn: Callable, args: dict, name: str):
    """Call ``fn(**args)`` on the very tensors given (no copies: their .grad is inspected)."""
    __tracebackhide__ = True
    if not callable(fn):
        return call_student(exercise, fn, Case(name))  # raises the "expected a function" feedback

    @functools.wraps(fn)
    def bound():
        return fn(**args)

    return call_student(exercise, bound, Case(name))


def _detached(args: dict) -> dict:
    return {k: (v.detach() if isinstance(v, torch.Tensor) else v) for k, v in args.items()}


def _close(a, b, rtol=1e-5, atol=1e-7) -> bool:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return a.shape == b.shape and np.allclose(a, b, rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------------------
# Exercise 7.1: tanh-squashed Gaussian


def _log1m_tanh_sq(u: torch.Tensor) -> torch.Tensor:
    """log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), exact and finite for every u."""
    return 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))


def reference_squashed_gaussian_sample(
    mean: torch.Tensor, log_std: torch.Tensor, eps: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """a = tanh(mean + exp(log_std) eps) (B, d) and log pi(a) = log N(u) - sum log(1 - tanh(u)^2) (B,)."""
    std = log_std.exp()
    u = mean + std * eps
    log_prob = Normal(mean, std).log_prob(u).sum(-1) - _log1m_tanh_sq(u).sum(-1)
    return torch.tanh(u), log_prob


def _gaussian_cases(rng: np.random.Generator) -> list[tuple[str, dict]]:
    def case(name, mean, log_std):
        mean, log_std = np.asarray(mean, float), np.asarray(log_std, float)
        return name, {
            "mean": mean,
            "log_std": np.broadcast_to(log_std, mean.shape).copy(),
            "eps": rng.normal(size=mean.shape),
        }

    return [
        case("B=6 states, 1-D actions, sigma=1", rng.normal(size=(6, 1)), 0.0),
        case(
            "B=5 states, 3-D actions, random mean and sigma in [0.4, 2]",
            rng.normal(size=(5, 3)),
            rng.uniform(-0.9, 0.7, size=(5, 3)),
        ),
        case("B=1 state, 2-D actions, small sigma=0.05", rng.normal(size=(1, 2)), np.log(0.05)),
        case(
            "B=4 states, 2-D actions, means far out (|u| about 20 to 40, where tanh(u) rounds to +-1)",
            [[25.0, -30.0], [40.0, 0.5], [-22.0, 21.0], [0.0, -35.0]],
            np.log(0.1),
        ),
    ]


def check_squashed_gaussian_sample(fn: Callable) -> None:
    """Exercise 7.1: values, stability for large |u|, and gradients (reparameterisation)."""
    __tracebackhide__ = True
    ex = "7.1"
    rng = np.random.default_rng(701)
    cases = _gaussian_cases(rng)
    for index, (name, raw) in enumerate(cases):
        args = {k: _t(v, grad=(k != "eps")) for k, v in raw.items()}
        out = _call(ex, fn, args, name)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise ExerciseError(
                f"Exercise {ex}: return a pair (action, log_prob), got {type(out).__name__} (input: {name})."
            )
        action, log_prob = out
        a_ref, lp_ref = reference_squashed_gaussian_sample(**_detached(args))
        a_arr = as_array(ex, action, "action")
        check_shape(ex, a_arr, a_ref.shape, "action", name)
        if not _close(a_arr, a_ref.numpy(), 1e-6, 1e-9):
            if _close(a_arr, (args["mean"] + args["log_std"].exp() * args["eps"]).detach().numpy()):
                raise ExerciseError(
                    f"Exercise {ex}: the action is u, not a = tanh(u): squash it (input: {name})."
                )
            if _close(
                a_arr, torch.tanh(args["mean"] + args["log_std"] * args["eps"]).detach().numpy()
            ):
                raise ExerciseError(
                    f"Exercise {ex}: the action uses log_std as the standard deviation; sigma = exp(log_std) "
                    f"(input: {name})."
                )
            assert_close(
                ex,
                a_arr,
                a_ref,
                name="action",
                context=name + "; use the given eps, not fresh noise",
            )
        lp_arr = as_array(ex, log_prob, "log_prob")
        if lp_arr.shape == tuple(a_ref.shape):
            raise ExerciseError(
                f"Exercise {ex}: log_prob has shape {lp_arr.shape}, expected {tuple(lp_ref.shape)}: the action "
                f"dimensions are independent, so sum their log-densities over the last axis (input: {name})."
            )
        check_shape(ex, lp_arr, lp_ref.shape, "log_prob", name)
        extreme = index == len(cases) - 1
        if not np.all(np.isfinite(lp_arr)) or not _close(lp_arr, lp_ref.numpy(), 1e-5, 1e-5):
            d = _detached(args)
            std = d["log_std"].exp()
            u = d["mean"] + std * d["eps"]
            gauss = Normal(d["mean"], std).log_prob(u).sum(-1)
            correction = _log1m_tanh_sq(u).sum(-1)
            mistakes = [
                (
                    (
                        "log_prob misses the tanh correction. a = tanh(u) squeezes the density, so by the change "
                        "of variables log pi(a|s) = log N(u; mean, sigma) - sum_j log(1 - tanh(u_j)^2)."
                    ),
                    gauss,
                ),
                (
                    (
                        "the tanh correction has the wrong sign: log pi(a|s) = log N(u; mean, sigma) MINUS "
                        "sum_j log(1 - tanh(u_j)^2) (squeezing [-inf, inf] into [-1, 1] raises the density)."
                    ),
                    gauss + correction,
                ),
                (
                    (
                        "the Gaussian is evaluated at the squashed action a = tanh(u); evaluate it at u, the "
                        "pre-squash sample: log N(u; mean, sigma)."
                    ),
                    Normal(d["mean"], std).log_prob(torch.tanh(u)).sum(-1) - correction,
                ),
            ]
            a = torch.tanh(u)
            for small in (1e-4, 1e-5, 1e-6, 1e-7, 1e-8):
                mistakes.append(
                    (
                        (
                            "log_prob is slightly off: a small epsilon inside log(1 - tanh(u)^2 + epsilon) biases "
                            "it. Use the exact and stable identity log(1 - tanh(u)^2) = 2 * (log 2 - u - "
                            "softplus(-2u)) (torch.nn.functional.softplus)."
                        ),
                        gauss - torch.log(1 - a.pow(2) + small).sum(-1),
                    )
                )
            for message, wrong in mistakes:
                if np.all(np.isfinite(lp_arr)) and _close(lp_arr, wrong.numpy()):
                    raise ExerciseError(f"Exercise {ex}: {message} (input: {name})")
            if extreme:
                raise ExerciseError(
                    f"Exercise {ex}: log_prob is wrong or not finite where |u| is large (input: {name}). "
                    "There tanh(u) rounds to +-1 and log(1 - tanh(u)^2) becomes log(0) = -inf (adding a "
                    "small epsilon inside the log is not exact either). Use the stable identity "
                    "log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u)) (torch.nn.functional.softplus)."
                )
            assert_close(ex, lp_arr, lp_ref, name="log_prob", context=name, rtol=1e-5, atol=1e-5)
    # reparameterisation: gradients of the action and log_prob w.r.t. mean and log_std
    name, raw = cases[1]
    args = {k: _t(v, grad=(k != "eps")) for k, v in raw.items()}
    action, log_prob = _call(ex, fn, args, name)
    if not isinstance(action, torch.Tensor) or action.grad_fn is None:
        raise ExerciseError(
            f"Exercise {ex}: no gradient flows from the action back into mean and log_std, so J_pi could "
            "not train the policy. Reparameterise: build a = tanh(mean + exp(log_std) * eps) from the "
            "given eps with torch operations (no .sample(), .detach(), torch.no_grad() or numpy)."
        )
    weights = _t(rng.normal(size=tuple(action.shape)))
    grads = torch.autograd.grad(
        (action * weights).sum() + log_prob.sum(),
        [args["mean"], args["log_std"]],
        allow_unused=True,
    )
    ref_args = {k: _t(v, grad=(k != "eps")) for k, v in raw.items()}
    a_ref, lp_ref = reference_squashed_gaussian_sample(**ref_args)
    ref_grads = torch.autograd.grad(
        (a_ref * weights).sum() + lp_ref.sum(), [ref_args["mean"], ref_args["log_std"]]
    )
    for label, g, g_ref in zip(("mean", "log_std"), grads, ref_grads):
        if g is None or not _close(g.numpy(), g_ref.numpy(), 1e-5, 1e-7):
            raise ExerciseError(
                f"Exercise {ex}: the gradient of (action, log_prob) w.r.t. {label} differs from the "
                "reference: the sample must be a differentiable function of mean and log_std "
                "(reparameterisation), and nothing may be detached (input: " + name + ")."
            )
    passed(
        ex,
        f"action and log-prob match the reference on {len(cases)} batches (also for |u| up to 40), "
        "with reparameterised gradients.",
    )


# ---------------------------------------------------------------------------------------
# the scalar losses 7.2, 7.3, 7.4, 7.6


def _check_loss(
    ex: str,
    fn: Callable,
    cases: list[tuple[str, dict]],
    grad_keys: tuple[str, ...],
    reference: Callable,
    mistakes: list[Mistake],
    leaks: dict[str, str],
    needs_grad: dict[str, str],
) -> None:
    """Compare a scalar loss with ``reference`` on every case, then its gradients.

    ``leaks[name]``: feedback when the input ``name`` (a target) receives a gradient;
    ``needs_grad[name]``: feedback when the input ``name`` receives none (or a wrong one).
    """
    __tracebackhide__ = True
    for name, raw in cases:
        args = {
            k: (_t(v, grad=k in grad_keys) if isinstance(v, np.ndarray) else v)
            for k, v in raw.items()
        }
        out = _call(ex, fn, args, name)
        arr = as_array(ex, out, "loss")
        if arr.ndim == 1 and arr.shape[0] > 1:
            raise ExerciseError(
                f"Exercise {ex}: the loss has shape {arr.shape}, expected a scalar: average over the "
                f"batch with .mean() (input: {name})."
            )
        check_shape(ex, arr, (), "loss", name)
        check_finite(ex, arr, "loss", name)
        plain = _detached(args)
        expected = reference(**plain)
        if not _close(arr, expected.numpy(), _RTOL, _ATOL):
            for message, wrong in mistakes:
                value = wrong(**plain)
                if value is None or _close(value.numpy(), expected.numpy(), _RTOL, _ATOL):
                    continue
                if _close(arr, value.numpy(), 1e-6, 1e-9):
                    raise ExerciseError(f"Exercise {ex}: {message} (input: {name})")
            assert_close(ex, arr, expected, name="loss", context=name)
        # gradients
        if not isinstance(out, torch.Tensor) or out.grad_fn is None:
            raise ExerciseError(
                f"Exercise {ex}: the loss carries no gradient (input: {name}). Compute it with torch "
                "operations on the given tensors, without .item(), numpy or torch.no_grad()."
            )
        tensors = {k: args[k] for k in grad_keys}
        got = dict(
            zip(tensors, torch.autograd.grad(out, list(tensors.values()), allow_unused=True))
        )
        ref_args = {
            k: (
                _t(v, grad=True)
                if isinstance(v, np.ndarray) and k in grad_keys
                else (_t(v) if isinstance(v, np.ndarray) else v)
            )
            for k, v in raw.items()
        }
        ref_out = reference(**ref_args)
        ref_grads = {}
        for k in grad_keys:
            g = torch.autograd.grad(ref_out, ref_args[k], retain_graph=True, allow_unused=True)[0]
            ref_grads[k] = torch.zeros_like(ref_args[k]) if g is None else g
        for k, message in leaks.items():
            g = got.get(k)
            if g is not None and g.abs().max() > 0:
                raise ExerciseError(f"Exercise {ex}: {message} (input: {name})")
        for k, message in needs_grad.items():
            g = got.get(k)
            if g is None or not _close(g.numpy(), ref_grads[k].numpy(), 1e-5, 1e-9):
                raise ExerciseError(f"Exercise {ex}: {message} (input: {name})")


def _batch(rng: np.random.Generator, b: int) -> dict:
    q1 = rng.normal(-5.0, 3.0, size=b)
    return {
        "q1": q1,
        "q2": q1 + rng.normal(0.0, 1.5, size=b),
        "log_prob": rng.normal(-0.5, 1.0, size=b),
    }


def _value_cases() -> list[tuple[str, dict]]:
    rng = np.random.default_rng(702)
    out = []
    for name, b, alpha in (
        ("B=8, alpha=0.2", 8, 0.2),
        ("B=32, alpha=1.0", 32, 1.0),
        ("B=3, alpha=0.05 as a 0-d tensor", 3, torch.tensor(0.05, dtype=_F64)),
    ):
        d = _batch(rng, b)
        out.append(
            (
                name,
                {
                    "v": rng.normal(-4.0, 3.0, size=b),
                    "q1_new": d["q1"],
                    "q2_new": d["q2"],
                    "log_prob_new": d["log_prob"],
                    "alpha": alpha,
                },
            )
        )
    return out


def check_value_loss(fn: Callable) -> None:
    """Exercise 7.2: J_V(psi) = mean 1/2 (V_psi(s) - (min_i Q_i(s, a~) - alpha log pi(a~|s)))^2."""
    __tracebackhide__ = True
    cases = _value_cases()

    def loss(v, y, half=0.5, reduce=torch.mean):
        return half * reduce((v - y) ** 2)

    mn = lambda q1_new, q2_new: torch.min(q1_new, q2_new)
    mistakes: list[Mistake] = [
        (
            (
                "the target uses the mean of the two critics; SAC takes their minimum, min(Q_theta1, Q_theta2), "
                "to counter over-estimation."
            ),
            lambda v, q1_new, q2_new, log_prob_new, alpha: loss(
                v, (q1_new + q2_new) / 2 - alpha * log_prob_new
            ),
        ),
        (
            "the target uses a single critic; SAC takes the minimum of the two, min(Q_theta1, Q_theta2).",
            lambda v, q1_new, q2_new, log_prob_new, alpha: loss(v, q1_new - alpha * log_prob_new),
        ),
        (
            (
                "the target misses the entropy term: V(s) = E_pi[Q(s, a) - alpha log pi(a|s)] (soft policy "
                "evaluation), not E[Q]."
            ),
            lambda v, q1_new, q2_new, log_prob_new, alpha: loss(v, mn(q1_new, q2_new)),
        ),
        (
            "the entropy term has the wrong sign: the target is min_i Q_i(s, a~) MINUS alpha log pi(a~|s).",
            lambda v, q1_new, q2_new, log_prob_new, alpha: loss(
                v, mn(q1_new, q2_new) + alpha * log_prob_new
            ),
        ),
        (
            "the temperature is missing: the target is min_i Q_i - alpha * log pi, not min_i Q_i - log pi.",
            lambda v, q1_new, q2_new, log_prob_new, alpha: loss(
                v, mn(q1_new, q2_new) - log_prob_new
            ),
        ),
        (
            "the loss is summed over the batch; take the mean.",
            lambda v, q1_new, q2_new, log_prob_new, alpha: loss(
                v, mn(q1_new, q2_new) - alpha * log_prob_new, reduce=torch.sum
            ),
        ),
        (
            "the factor 1/2 is missing: J_V = mean of 1/2 (V - target)^2.",
            lambda v, q1_new, q2_new, log_prob_new, alpha: loss(
                v, mn(q1_new, q2_new) - alpha * log_prob_new, 1.0
            ),
        ),
    ]
    leak = (
        "gradient flows into the target: J_V(psi) must train V_psi only, but the critics and the policy "
        "receive gradients through min_i Q_i(s, a~) - alpha log pi(a~|s). Detach the target (.detach())."
    )
    _check_loss(
        "7.2",
        fn,
        cases,
        ("v", "q1_new", "q2_new", "log_prob_new"),
        ref.sac_value_loss,
        mistakes,
        leaks={"q1_new": leak, "q2_new": leak, "log_prob_new": leak},
        needs_grad={
            "v": "the gradient w.r.t. v is not (V_psi(s) - target) / B: V_psi must be "
            "regressed on the target."
        },
    )
    passed("7.2", f"J_V matches the reference on {len(cases)} batches; only V_psi gets a gradient.")


def _q_cases() -> list[tuple[str, dict]]:
    rng = np.random.default_rng(703)
    out = []
    for name, b, gamma in (
        ("B=10, gamma=0.99, some terminated and some truncated transitions", 10, 0.99),
        ("B=32, gamma=0.9", 32, 0.9),
        ("B=4, gamma=0.5", 4, 0.5),
    ):
        terminated = (rng.random(b) < 0.3).astype(float)
        truncated = ((rng.random(b) < 0.4) & (terminated == 0)).astype(float)
        terminated[0], truncated[0], terminated[1], truncated[1] = 1.0, 0.0, 0.0, 1.0
        d = _batch(rng, b)
        out.append(
            (
                name,
                {
                    "q1": d["q1"],
                    "q2": d["q2"],
                    "reward": rng.normal(-2.0, 2.0, size=b),
                    "next_value": rng.normal(-30.0, 10.0, size=b),
                    "terminated": terminated,
                    "truncated": truncated,
                    "gamma": gamma,
                },
            )
        )
    return out


def _reference_q_loss(q1, q2, reward, next_value, terminated, truncated, gamma):
    return ref.sac_q_loss(q1, q2, reward, terminated, next_value, gamma)


def check_q_loss(fn: Callable) -> None:
    """Exercise 7.3: J_Q(theta_1) + J_Q(theta_2), target r + gamma (1 - terminated) V_psibar(s')."""
    __tracebackhide__ = True
    cases = _q_cases()

    def both(q1, q2, y, half=0.5):
        return half * ((q1 - y) ** 2).mean() + half * ((q2 - y) ** 2).mean()

    mistakes: list[Mistake] = [
        (
            (
                "truncated transitions are treated as terminal. A time-out does not end the task: the future "
                "still exists, so bootstrap with gamma V(s'). Only `terminated` zeroes the bootstrap."
            ),
            lambda q1, q2, reward, next_value, terminated, truncated, gamma: both(
                q1,
                q2,
                reward + gamma * (1 - torch.clamp(terminated + truncated, max=1)) * next_value,
            ),
        ),
        (
            (
                "the target bootstraps through terminated states: after a terminal transition there is no "
                "future reward, so the target is r alone. Multiply gamma V(s') by (1 - terminated)."
            ),
            lambda q1, q2, reward, next_value, terminated, truncated, gamma: both(
                q1, q2, reward + gamma * next_value
            ),
        ),
        (
            "the discount is missing: the target is r + gamma (1 - terminated) V(s').",
            lambda q1, q2, reward, next_value, terminated, truncated, gamma: both(
                q1, q2, reward + (1 - terminated) * next_value
            ),
        ),
        (
            (
                "only Q_theta1 is trained: the loss is J_Q(theta_1) + J_Q(theta_2), both critics regress on the "
                "same target."
            ),
            lambda q1, q2, reward, next_value, terminated, truncated, gamma: (
                0.5 * ((q1 - (reward + gamma * (1 - terminated) * next_value)) ** 2).mean()
            ),
        ),
        (
            (
                "the minimum of the critics is regressed on the target; each critic Q_theta_i regresses on it "
                "separately (the min belongs in V's and pi's losses)."
            ),
            lambda q1, q2, reward, next_value, terminated, truncated, gamma: (
                0.5
                * (
                    (torch.min(q1, q2) - (reward + gamma * (1 - terminated) * next_value)) ** 2
                ).mean()
            ),
        ),
        (
            "the two critics' losses are averaged; add them: J_Q(theta_1) + J_Q(theta_2).",
            lambda q1, q2, reward, next_value, terminated, truncated, gamma: (
                0.5 * both(q1, q2, reward + gamma * (1 - terminated) * next_value)
            ),
        ),
        (
            "the factor 1/2 is missing: J_Q = mean of 1/2 (Q - target)^2 for each critic.",
            lambda q1, q2, reward, next_value, terminated, truncated, gamma: both(
                q1, q2, reward + gamma * (1 - terminated) * next_value, 1.0
            ),
        ),
    ]
    _check_loss(
        "7.3",
        fn,
        cases,
        ("q1", "q2", "next_value"),
        _reference_q_loss,
        mistakes,
        leaks={
            "next_value": "gradient flows into the target value network: V_psibar(s') is a "
            "fixed target (psibar is only moved by the Polyak update). Detach "
            "the target r + gamma (1 - terminated) V_psibar(s')."
        },
        needs_grad={
            "q1": "the gradient w.r.t. q1 is wrong: Q_theta1 must regress on the target.",
            "q2": "the gradient w.r.t. q2 is wrong: Q_theta2 must regress on the target.",
        },
    )
    passed(
        "7.3",
        f"J_Q matches the reference on {len(cases)} batches (terminated vs truncated, "
        "no gradient into V_psibar).",
    )


def _policy_cases() -> list[tuple[str, dict]]:
    rng = np.random.default_rng(704)
    out = []
    for name, b, alpha in (
        ("B=8, alpha=0.2", 8, 0.2),
        ("B=32, alpha=1.0", 32, 1.0),
        ("B=5, alpha=0.1 as a 0-d tensor", 5, torch.tensor(0.1, dtype=_F64)),
    ):
        d = _batch(rng, b)
        out.append(
            (
                name,
                {
                    "log_prob_new": d["log_prob"],
                    "q1_new": d["q1"],
                    "q2_new": d["q2"],
                    "alpha": alpha,
                },
            )
        )
    return out


def check_policy_loss(fn: Callable) -> None:
    """Exercise 7.4: J_pi(phi) = mean[alpha log pi(a~|s) - min_i Q_i(s, a~)], gradients through both terms."""
    __tracebackhide__ = True
    cases = _policy_cases()
    mistakes: list[Mistake] = [
        (
            "the loss uses the mean of the two critics; SAC takes their minimum, min(Q_theta1, Q_theta2).",
            lambda log_prob_new, q1_new, q2_new, alpha: (
                alpha * log_prob_new - (q1_new + q2_new) / 2
            ).mean(),
        ),
        (
            "the loss uses a single critic; SAC takes the minimum of the two, min(Q_theta1, Q_theta2).",
            lambda log_prob_new, q1_new, q2_new, alpha: (alpha * log_prob_new - q1_new).mean(),
        ),
        (
            (
                "the entropy term alpha log pi(a~|s) is missing: without it the policy collapses to a "
                "deterministic argmax of Q (J_pi is a KL to exp(Q / alpha) / Z, which includes E[alpha log pi])."
            ),
            lambda log_prob_new, q1_new, q2_new, alpha: (-torch.min(q1_new, q2_new)).mean(),
        ),
        (
            "the sign is flipped: MINIMISE alpha log pi(a~|s) - min_i Q_i(s, a~) (high Q, high entropy).",
            lambda log_prob_new, q1_new, q2_new, alpha: (
                torch.min(q1_new, q2_new) - alpha * log_prob_new
            ).mean(),
        ),
        (
            "the temperature is missing: J_pi = mean[alpha * log pi - min_i Q_i].",
            lambda log_prob_new, q1_new, q2_new, alpha: (
                log_prob_new - torch.min(q1_new, q2_new)
            ).mean(),
        ),
        (
            "the loss is summed over the batch; take the mean.",
            lambda log_prob_new, q1_new, q2_new, alpha: (
                alpha * log_prob_new - torch.min(q1_new, q2_new)
            ).sum(),
        ),
    ]
    _check_loss(
        "7.4",
        fn,
        cases,
        ("log_prob_new", "q1_new", "q2_new"),
        ref.sac_policy_loss,
        mistakes,
        leaks={},
        needs_grad={
            "q1_new": "no (or a wrong) gradient flows through Q(s, a~): the policy learns by moving its "
            "reparameterised action a~ = f_phi(eps; s) uphill on min_i Q_i, so do not detach "
            "the critics' values here (the critics' own optimiser ignores this loss).",
            "q2_new": "no (or a wrong) gradient flows through Q(s, a~): the policy learns by moving its "
            "reparameterised action a~ = f_phi(eps; s) uphill on min_i Q_i, so do not detach "
            "the critics' values here.",
            "log_prob_new": "no (or a wrong) gradient flows through alpha log pi(a~|s): the entropy term "
            "must be differentiated too (do not detach log_prob here).",
        },
    )
    passed(
        "7.4",
        f"J_pi matches the reference on {len(cases)} batches, with gradients through log pi and min Q.",
    )


def _temperature_cases() -> list[tuple[str, dict]]:
    rng = np.random.default_rng(706)
    return [
        (
            "B=8, alpha=0.2, entropy above the target",
            {
                "log_alpha": np.array(np.log(0.2)),
                "log_prob_new": rng.normal(-1.5, 0.5, size=8),
                "target_entropy": -1.0,
            },
        ),
        (
            "B=16, alpha=1.5, entropy below the target",
            {
                "log_alpha": np.array(np.log(1.5)),
                "log_prob_new": rng.normal(2.0, 0.5, size=16),
                "target_entropy": -1.0,
            },
        ),
        (
            "B=4, alpha=0.05, 3-D actions (target -3)",
            {
                "log_alpha": np.array(np.log(0.05)),
                "log_prob_new": rng.normal(0.0, 2.0, size=4),
                "target_entropy": -3.0,
            },
        ),
    ]


def check_temperature_loss(fn: Callable) -> None:
    """Exercise 7.6: J(alpha) = mean[-alpha (log pi(a~|s) + H_target)], alpha = exp(log_alpha)."""
    __tracebackhide__ = True
    cases = _temperature_cases()
    mistakes: list[Mistake] = [
        (
            (
                "the sign is flipped: with J(alpha) = mean[-alpha (log pi + H_target)], alpha grows when the "
                "entropy -E[log pi] is below the target; yours would shrink it."
            ),
            lambda log_alpha, log_prob_new, target_entropy: (
                log_alpha.exp() * (log_prob_new + target_entropy)
            ).mean(),
        ),
        (
            (
                "the loss uses log_alpha where it should use alpha = exp(log_alpha) (log_alpha is only the "
                "parameterisation that keeps alpha positive)."
            ),
            lambda log_alpha, log_prob_new, target_entropy: (
                -(log_alpha * (log_prob_new + target_entropy)).mean()
            ),
        ),
        (
            (
                "the target entropy enters with the wrong sign: the bracket is (log pi(a~|s) + H_target), i.e. "
                "H_target minus the policy's entropy estimate -log pi."
            ),
            lambda log_alpha, log_prob_new, target_entropy: (
                -(log_alpha.exp() * (log_prob_new - target_entropy)).mean()
            ),
        ),
    ]
    _check_loss(
        "7.6",
        fn,
        cases,
        ("log_alpha", "log_prob_new"),
        ref.temperature_loss,
        mistakes,
        leaks={
            "log_prob_new": "gradient flows into the policy through log pi: J(alpha) must train "
            "alpha only. Detach log_prob_new."
        },
        needs_grad={
            "log_alpha": "the gradient w.r.t. log_alpha is wrong: differentiate through "
            "alpha = exp(log_alpha)."
        },
    )
    passed(
        "7.6",
        f"J(alpha) matches the reference on {len(cases)} batches; only log_alpha gets a gradient.",
    )


# ---------------------------------------------------------------------------------------
# Exercise 7.5: Polyak averaging


def _polyak_nets(seed: int) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    source = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).double()
    target = (
        nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).double().requires_grad_(False)
    )
    return target, source


def _flat(module: nn.Module) -> np.ndarray:
    return torch.cat([p.detach().reshape(-1) for p in module.parameters()]).numpy().copy()


def check_polyak_update(fn: Callable) -> None:
    """Exercise 7.5: target <- tau source + (1 - tau) target, in place, source untouched, no graph."""
    __tracebackhide__ = True
    ex = "7.5"
    taus = (0.005, 0.3, 1.0)
    for seed, tau in enumerate(taus):
        name = f"a 2-layer network, tau={tau}"
        target, source = _polyak_nets(700 + seed)
        ids = [id(p) for p in target.parameters()]
        t0, s0 = _flat(target), _flat(source)
        try:
            result = _call(ex, fn, {"target": target, "source": source, "tau": tau}, name)
        except ExerciseError as err:
            if "leaf Variable" in str(err) or "in-place operation" in str(err):
                raise ExerciseError(
                    f"Exercise {ex}: an in-place update of a parameter that requires grad must not be "
                    "recorded by autograd: wrap the loop in `with torch.no_grad():` (input: {name})."
                ) from None
            raise
        if result is not None and result is not target:
            if isinstance(result, nn.Module) and _close(_flat(result), tau * s0 + (1 - tau) * t0):
                raise ExerciseError(
                    f"Exercise {ex}: you return a new network; update `target` in place (the training loop "
                    f"keeps using the same object) and return nothing (input: {name})."
                )
        if [id(p) for p in target.parameters()] != ids:
            raise ExerciseError(
                f"Exercise {ex}: the target's parameters were replaced by new tensors; update them in place "
                f"(p_target.mul_(...).add_(...), .lerp_ or .copy_) (input: {name})."
            )
        if not np.array_equal(_flat(source), s0):
            raise ExerciseError(
                f"Exercise {ex}: the source network was modified; only the target moves, "
                f"psibar <- tau psi + (1 - tau) psibar (input: {name})."
            )
        t1 = _flat(target)
        expected = tau * s0 + (1 - tau) * t0
        if not _close(t1, expected, 1e-10, 1e-12):
            if _close(t1, (1 - tau) * s0 + tau * t0, 1e-10, 1e-12):
                raise ExerciseError(
                    f"Exercise {ex}: the Polyak update goes the wrong way: tau weighs the SOURCE, "
                    f"psibar <- tau psi + (1 - tau) psibar. Yours keeps only a fraction tau of the target "
                    f"(input: {name})."
                )
            if np.array_equal(t1, t0):
                raise ExerciseError(
                    f"Exercise {ex}: the target did not change. Update its parameters in place "
                    f"(assigning to a loop variable does not change the network) (input: {name})."
                )
            if _close(t1, s0, 1e-10, 1e-12):
                raise ExerciseError(
                    f"Exercise {ex}: the target was overwritten by the source; blend them with weight "
                    f"tau (input: {name})."
                )
            assert_close(
                ex, t1, expected, name="target's parameters", context=name, rtol=1e-10, atol=1e-12
            )
        if any(p.grad_fn is not None for p in target.parameters()):
            raise ExerciseError(
                f"Exercise {ex}: the target's parameters carry an autograd graph; do the update under "
                f"torch.no_grad() (input: {name})."
            )
    passed(ex, f"the target moves by tau towards the source, in place, for tau in {taus}.")
