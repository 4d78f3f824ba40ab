"""Checks for chapter 07 (Soft Actor-Critic).

7.1 ``squashed_gaussian_sample(mean, log_std, eps)``: a = tanh(u), u = mean + sigma eps, and
log pi(a|s) = log N(u; mean, sigma) - sum_j log(1 - tanh(u_j)^2), stably; 7.2 ``value_loss``
J_V(psi); 7.3 ``q_loss`` J_Q(theta_1) + J_Q(theta_2); 7.4 ``policy_loss`` J_pi(phi); 7.5
``polyak_update(target, source, tau)``, in place; 7.6 ``temperature_loss`` J(alpha). The references
are :mod:`course_utils.rl.losses` and the change of variables of ``SquashedGaussianPolicy``.
Values and gradients are compared on fixed float64 batches (fixed noise); the mistakes are the
reference with one knob changed.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal

from ..rl import losses as ref
from . import Case, Exercise, ExerciseError, Grad, Mistake, Output, flat_parameters

__all__ = [
    "check_policy_loss",
    "check_polyak_update",
    "check_q_loss",
    "check_squashed_gaussian_sample",
    "check_temperature_loss",
    "check_value_loss",
    "reference_squashed_gaussian_sample",
]


def _t(x) -> torch.Tensor:
    return torch.tensor(np.asarray(x, dtype=float), dtype=torch.float64)


# ----------------------------------------------------------------------- Exercise 7.1


def _log1m_tanh_sq(u: torch.Tensor) -> torch.Tensor:
    """log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), exact and finite for every u."""
    return 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))


def reference_squashed_gaussian_sample(
    mean, log_std, eps, *, squash=True, sigma="exp", gauss_at="u", correction=-1.0, epsilon=0.0
):
    """a = tanh(mean + exp(log_std) eps) (B, d) and log pi(a) = log N(u) - sum log(1 - tanh(u)^2) (B,).

    The keyword knobs reproduce the typical mistakes (the reference uses the defaults).
    """
    std = log_std.exp() if sigma == "exp" else log_std
    u = mean + std * eps
    a = torch.tanh(u)
    log1m = _log1m_tanh_sq(u) if not epsilon else torch.log(1 - a.pow(2) + epsilon)
    log_prob = Normal(mean, std).log_prob(u if gauss_at == "u" else a).sum(
        -1
    ) + correction * log1m.sum(-1)
    return (a if squash else u), log_prob


def _sample_cases(rng: np.random.Generator) -> list[Case]:
    def case(name, mean, log_std):
        mean = np.asarray(mean, float)
        log_std = np.broadcast_to(np.asarray(log_std, float), mean.shape)
        return Case(name, (_t(mean), _t(log_std), _t(rng.normal(size=mean.shape))))

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


def _per_dimension(actual, expected, case: Case) -> str | None:
    if actual[1].shape == expected[0].shape:
        return (
            f"log_prob has shape {actual[1].shape}, expected {expected[1].shape}: the action "
            "dimensions are independent, so sum their log-densities over the last axis."
        )
    return None


_STABLE = (
    "Use the exact and stable identity log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u)) "
    "(torch.nn.functional.softplus)."
)


def _far_out(actual, expected, case: Case) -> str | None:
    if case.args[0].abs().max() > 15 and actual[0].shape == expected[0].shape:
        return (
            "log_prob is wrong or not finite where |u| is large. There tanh(u) rounds to +-1 and "
            "log(1 - tanh(u)^2) becomes log(0) = -inf (adding a small epsilon inside the log is "
            "not exact either). " + _STABLE
        )
    return None


def _fresh_noise(actual, expected, case: Case) -> str | None:
    if not np.allclose(actual[0], expected[0], rtol=1e-6, atol=1e-9):
        return "the action does not match the reference: use the given eps, not fresh noise."
    return None


def _sample_variant(**knobs):
    return lambda mean, log_std, eps: reference_squashed_gaussian_sample(
        mean, log_std, eps, **knobs
    )


_REPARAMETERISE = (
    "no gradient flows from the action back into mean and log_std (or a wrong one), so J_pi could "
    "not train the policy. Reparameterise: build a = tanh(mean + exp(log_std) * eps) from the given "
    "eps with torch operations (no .sample(), .detach(), torch.no_grad() or numpy), and detach nothing."
)
SQUASHED_GAUSSIAN = Exercise(
    id="7.1",
    check_name="check_squashed_gaussian_sample",
    reference=reference_squashed_gaussian_sample,
    cases=_sample_cases,
    seed=701,
    outputs=[Output("action", 1e-6, 1e-9), Output("log_prob", 1e-5, 1e-5)],
    diagnoses=[_per_dimension],
    mistakes=[
        Mistake("the action is u, not a = tanh(u): squash it.", _sample_variant(squash=False)),
        Mistake(
            "the action uses log_std as the standard deviation; sigma = exp(log_std).",
            lambda m, s, e: {0: torch.tanh(m + s * e)},
        ),
        Mistake(
            "log_prob misses the tanh correction. a = tanh(u) squeezes the density, so by the "
            "change of variables log pi(a|s) = log N(u; mean, sigma) - sum_j log(1 - tanh(u_j)^2).",
            _sample_variant(correction=0.0),
        ),
        Mistake(
            "the tanh correction has the wrong sign: log pi(a|s) = log N(u; mean, sigma) MINUS "
            "sum_j log(1 - tanh(u_j)^2) (squeezing [-inf, inf] into [-1, 1] raises the density).",
            _sample_variant(correction=1.0),
        ),
        Mistake(
            "the Gaussian is evaluated at the squashed action a = tanh(u); evaluate it at u, the "
            "pre-squash sample: log N(u; mean, sigma).",
            _sample_variant(gauss_at="a"),
        ),
        *(
            Mistake(
                "log_prob is slightly off: a small epsilon inside log(1 - tanh(u)^2 + epsilon) "
                "biases it. " + _STABLE,
                _sample_variant(epsilon=small),
            )
            for small in (1e-4, 1e-5, 1e-6, 1e-7, 1e-8)
        ),
    ],
    fallbacks=[_far_out, _fresh_noise],
    grad=Grad(track=(0, 1), needs={0: _REPARAMETERISE, 1: _REPARAMETERISE}),
    success="action and log-prob match the reference on {n} batches (also for |u| up to 40), with "
    "reparameterised gradients.",
)
check_squashed_gaussian_sample = SQUASHED_GAUSSIAN.check


# ----------------------------------------------------------------------- the losses 7.2-7.4, 7.6


def _batch(rng: np.random.Generator, b: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    q1 = rng.normal(-5.0, 3.0, size=b)
    return _t(q1), _t(q1 + rng.normal(0.0, 1.5, size=b)), _t(rng.normal(-0.5, 1.0, size=b))


def _half_mse(x, y, half=0.5, reduce=torch.mean):
    return half * reduce((x - y) ** 2)


def _value_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for name, b, alpha in (
        ("B=8, alpha=0.2", 8, 0.2),
        ("B=32, alpha=1.0", 32, 1.0),
        ("B=3, alpha=0.05 as a 0-d tensor", 3, _t(0.05)),
    ):
        q1, q2, log_prob = _batch(rng, b)
        cases.append(Case(name, (_t(rng.normal(-4.0, 3.0, size=b)), q1, q2, log_prob, alpha)))
    return cases


def _value_variant(target=lambda q1, q2, lp, alpha: torch.min(q1, q2) - alpha * lp, **loss):
    return lambda v, q1, q2, lp, alpha: _half_mse(v, target(q1, q2, lp, alpha).detach(), **loss)


_INTO_TARGET = (
    "gradient flows into the target: J_V(psi) must train V_psi only, but the critics and "
    "the policy receive gradients through min_i Q_i(s, a~) - alpha log pi(a~|s). Detach "
    "the target (.detach())."
)
VALUE_LOSS = Exercise(
    id="7.2",
    check_name="check_value_loss",
    reference=ref.sac_value_loss,
    cases=_value_cases,
    seed=702,
    outputs=[Output("loss", 1e-6, 1e-9)],
    mistakes=[
        Mistake(
            "the target uses the mean of the two critics; SAC takes their minimum, "
            "min(Q_theta1, Q_theta2), to counter over-estimation.",
            _value_variant(lambda q1, q2, lp, alpha: (q1 + q2) / 2 - alpha * lp),
        ),
        Mistake(
            "the target uses a single critic; SAC takes the minimum of the two, min(Q_theta1, Q_theta2).",
            _value_variant(lambda q1, q2, lp, alpha: q1 - alpha * lp),
        ),
        Mistake(
            "the target misses the entropy term: V(s) = E_pi[Q(s, a) - alpha log pi(a|s)] (soft "
            "policy evaluation), not E[Q].",
            _value_variant(lambda q1, q2, lp, alpha: torch.min(q1, q2)),
        ),
        Mistake(
            "the entropy term has the wrong sign: the target is min_i Q_i(s, a~) MINUS alpha log pi(a~|s).",
            _value_variant(lambda q1, q2, lp, alpha: torch.min(q1, q2) + alpha * lp),
        ),
        Mistake(
            "the temperature is missing: the target is min_i Q_i - alpha * log pi, not min_i Q_i - log pi.",
            _value_variant(lambda q1, q2, lp, alpha: torch.min(q1, q2) - lp),
        ),
        Mistake(
            "the loss is summed over the batch; take the mean.", _value_variant(reduce=torch.sum)
        ),
        Mistake(
            "the factor 1/2 is missing: J_V = mean of 1/2 (V - target)^2.", _value_variant(half=1.0)
        ),
    ],
    grad=Grad(
        track=(0, 1, 2, 3),
        leaks={1: _INTO_TARGET, 2: _INTO_TARGET, 3: _INTO_TARGET},
        needs={
            0: "the gradient w.r.t. v is not (V_psi(s) - target) / B: V_psi must be regressed "
            "on the target."
        },
    ),
    success="J_V matches the reference on {n} batches; only V_psi gets a gradient.",
)
check_value_loss = VALUE_LOSS.check


def _q_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for name, b, gamma in (
        ("B=10, gamma=0.99, some terminated and some truncated transitions", 10, 0.99),
        ("B=32, gamma=0.9", 32, 0.9),
        ("B=4, gamma=0.5", 4, 0.5),
    ):
        terminated = (rng.random(b) < 0.3).astype(float)
        truncated = ((rng.random(b) < 0.4) & (terminated == 0)).astype(float)
        terminated[0], truncated[0], terminated[1], truncated[1] = 1.0, 0.0, 0.0, 1.0
        q1, q2, _ = _batch(rng, b)
        cases.append(
            Case(
                name,
                (
                    q1,
                    q2,
                    _t(rng.normal(-2.0, 2.0, size=b)),
                    _t(rng.normal(-30.0, 10.0, size=b)),
                    _t(terminated),
                    _t(truncated),
                    gamma,
                ),
            )
        )
    return cases


def reference_q_loss(
    q1,
    q2,
    reward,
    next_value,
    terminated,
    truncated,
    gamma,
    *,
    mask="terminated",
    discount=True,
    critics="both",
    half=0.5,
):
    """J_Q(theta_1) + J_Q(theta_2) with the target r + gamma (1 - terminated) V(s'); knobs for mistakes."""
    done = {
        "terminated": terminated,
        "none": 0.0,
        "both": torch.clamp(terminated + truncated, max=1),
    }[mask]
    y = (reward + (gamma if discount else 1.0) * (1 - done) * next_value).detach()
    if critics == "min":
        return _half_mse(torch.min(q1, q2), y, half)
    if critics == "one":
        return _half_mse(q1, y, half)
    return _half_mse(q1, y, half) + _half_mse(q2, y, half)


def _q_variant(**knobs):
    return lambda *args: reference_q_loss(*args, **knobs)


Q_LOSS = Exercise(
    id="7.3",
    check_name="check_q_loss",
    reference=reference_q_loss,
    cases=_q_cases,
    seed=703,
    outputs=[Output("loss", 1e-6, 1e-9)],
    mistakes=[
        Mistake(
            "truncated transitions are treated as terminal. A time-out does not end the task: the "
            "future still exists, so bootstrap with gamma V(s'). Only `terminated` zeroes the "
            "bootstrap.",
            _q_variant(mask="both"),
        ),
        Mistake(
            "the target bootstraps through terminated states: after a terminal transition there is "
            "no future reward, so the target is r alone. Multiply gamma V(s') by (1 - terminated).",
            _q_variant(mask="none"),
        ),
        Mistake(
            "the discount is missing: the target is r + gamma (1 - terminated) V(s').",
            _q_variant(discount=False),
        ),
        Mistake(
            "only Q_theta1 is trained: the loss is J_Q(theta_1) + J_Q(theta_2), both critics "
            "regress on the same target.",
            _q_variant(critics="one"),
        ),
        Mistake(
            "the minimum of the critics is regressed on the target; each critic Q_theta_i regresses "
            "on it separately (the min belongs in V's and pi's losses).",
            _q_variant(critics="min"),
        ),
        Mistake(
            "the two critics' losses are averaged; add them: J_Q(theta_1) + J_Q(theta_2).",
            _q_variant(half=0.25),
        ),
        Mistake(
            "the factor 1/2 is missing: J_Q = mean of 1/2 (Q - target)^2 for each critic.",
            _q_variant(half=1.0),
        ),
    ],
    grad=Grad(
        track=(0, 1, 3),
        leaks={
            3: "gradient flows into the target value network: V_psibar(s') is "
            "a fixed target (psibar is only moved by the Polyak update). "
            "Detach the target r + gamma (1 - terminated) V_psibar(s')."
        },
        needs={
            0: "the gradient w.r.t. q1 is wrong: Q_theta1 must regress on the target.",
            1: "the gradient w.r.t. q2 is wrong: Q_theta2 must regress on the target.",
        },
    ),
    success="J_Q matches the reference on {n} batches (terminated vs truncated, no gradient into V_psibar).",
)
check_q_loss = Q_LOSS.check


def _policy_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for name, b, alpha in (
        ("B=8, alpha=0.2", 8, 0.2),
        ("B=32, alpha=1.0", 32, 1.0),
        ("B=5, alpha=0.1 as a 0-d tensor", 5, _t(0.1)),
    ):
        q1, q2, log_prob = _batch(rng, b)
        cases.append(Case(name, (log_prob, q1, q2, alpha)))
    return cases


def _policy_variant(critic=torch.min, temperature=True, sign=1.0, reduce=torch.mean):
    return lambda lp, q1, q2, alpha: (
        sign * reduce((alpha if temperature else 1.0) * lp - critic(q1, q2))
    )


_THROUGH_Q = (
    "no (or a wrong) gradient flows through Q(s, a~): the policy learns by moving its "
    "reparameterised action a~ = f_phi(eps; s) uphill on min_i Q_i, so do not detach the "
    "critics' values here (the critics' own optimiser ignores this loss)."
)
POLICY_LOSS = Exercise(
    id="7.4",
    check_name="check_policy_loss",
    reference=ref.sac_policy_loss,
    cases=_policy_cases,
    seed=704,
    outputs=[Output("loss", 1e-6, 1e-9)],
    mistakes=[
        Mistake(
            "the loss uses the mean of the two critics; SAC takes their minimum, min(Q_theta1, Q_theta2).",
            _policy_variant(critic=lambda q1, q2: (q1 + q2) / 2),
        ),
        Mistake(
            "the loss uses a single critic; SAC takes the minimum of the two, min(Q_theta1, Q_theta2).",
            _policy_variant(critic=lambda q1, q2: q1),
        ),
        Mistake(
            "the entropy term alpha log pi(a~|s) is missing: without it the policy collapses to a "
            "deterministic argmax of Q (J_pi is a KL to exp(Q / alpha) / Z, which includes "
            "E[alpha log pi]).",
            lambda lp, q1, q2, alpha: (-torch.min(q1, q2)).mean(),
        ),
        Mistake(
            "the sign is flipped: MINIMISE alpha log pi(a~|s) - min_i Q_i(s, a~) (high Q, high entropy).",
            _policy_variant(sign=-1.0),
        ),
        Mistake(
            "the temperature is missing: J_pi = mean[alpha * log pi - min_i Q_i].",
            _policy_variant(temperature=False),
        ),
        Mistake(
            "the loss is summed over the batch; take the mean.", _policy_variant(reduce=torch.sum)
        ),
    ],
    grad=Grad(
        track=(0, 1, 2),
        needs={
            1: _THROUGH_Q,
            2: _THROUGH_Q,
            0: "no (or a wrong) gradient flows through alpha log pi(a~|s): the entropy term must be "
            "differentiated too (do not detach log_prob here).",
        },
    ),
    success="J_pi matches the reference on {n} batches, with gradients through log pi and min Q.",
)
check_policy_loss = POLICY_LOSS.check


def _temperature_cases(rng: np.random.Generator) -> list[Case]:
    return [
        Case(
            "B=8, alpha=0.2, entropy above the target",
            (_t(np.log(0.2)), _t(rng.normal(-1.5, 0.5, size=8)), -1.0),
        ),
        Case(
            "B=16, alpha=1.5, entropy below the target",
            (_t(np.log(1.5)), _t(rng.normal(2.0, 0.5, size=16)), -1.0),
        ),
        Case(
            "B=4, alpha=0.05, 3-D actions (target -3)",
            (_t(np.log(0.05)), _t(rng.normal(0.0, 2.0, size=4)), -3.0),
        ),
    ]


def log_alpha_temperature_loss(log_alpha, log_prob_new, target_entropy):
    """The published variant -mean[log_alpha (log pi + H_target)] (SAC authors, Stable-Baselines3):
    its gradient has the same sign and the same fixed point (entropy = H_target)."""
    return -(log_alpha * (log_prob_new + target_entropy).detach()).mean()


TEMPERATURE_LOSS = Exercise(
    id="7.6",
    check_name="check_temperature_loss",
    reference=ref.temperature_loss,
    accept=[log_alpha_temperature_loss],
    cases=_temperature_cases,
    seed=706,
    outputs=[Output("loss", 1e-6, 1e-9)],
    mistakes=[
        Mistake(
            "the sign is flipped: with J(alpha) = mean[-alpha (log pi + H_target)], alpha grows when "
            "the entropy -E[log pi] is below the target; yours would shrink it.",
            lambda la, lp, h: (la.exp() * (lp.detach() + h)).mean(),
        ),
        Mistake(
            "the sign is flipped: with J = mean[-log_alpha (log pi + H_target)], alpha grows when "
            "the entropy -E[log pi] is below the target; yours would shrink it.",
            lambda la, lp, h: (la * (lp.detach() + h)).mean(),
        ),
        Mistake(
            "the target entropy enters with the wrong sign: the bracket is (log pi(a~|s) + H_target), "
            "i.e. H_target minus the policy's entropy estimate -log pi.",
            lambda la, lp, h: -(la.exp() * (lp.detach() - h)).mean(),
        ),
    ],
    grad=Grad(
        track=(0, 1),
        leaks={
            1: "gradient flows into the policy through log pi: J(alpha) must train "
            "alpha only. Detach log_prob_new."
        },
        needs={
            0: "the gradient w.r.t. log_alpha is wrong: differentiate through alpha = exp(log_alpha)."
        },
    ),
    success="J(alpha) matches the reference on {n} batches; only log_alpha gets a gradient.",
)
check_temperature_loss = TEMPERATURE_LOSS.check


# ----------------------------------------------------------------------- Exercise 7.5


def _polyak_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for seed, tau in enumerate((0.005, 0.3, 1.0)):
        torch.manual_seed(700 + seed)
        source = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).double()
        target = (
            nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
            .double()
            .requires_grad_(False)
        )
        cases.append(Case(f"a 2-layer network, tau={tau}", (target, source, tau)))
    return cases


def _after_update(fn, target, source, tau):
    """Run ``fn`` and return the target's parameters (flat), after checking it updated them in place."""
    ids = [id(p) for p in target.parameters()]
    result = fn(target, source, tau)
    if isinstance(result, nn.Module) and result is not target:
        raise ExerciseError(
            "Exercise 7.5: you return a new network; update `target` in place (the "
            "training loop keeps using the same object) and return nothing."
        )
    if [id(p) for p in target.parameters()] != ids:
        raise ExerciseError(
            "Exercise 7.5: the target's parameters were replaced by new tensors; update "
            "them in place (p_target.mul_(...).add_(...), .lerp_ or .copy_)."
        )
    if any(p.grad_fn is not None for p in target.parameters()):
        raise ExerciseError(
            "Exercise 7.5: the target's parameters carry an autograd graph; do the "
            "update under torch.no_grad()."
        )
    return flat_parameters(target)


def _polyak_variant(weight):
    def update(target, source, tau):
        with torch.no_grad():
            for p_target, p in zip(target.parameters(), source.parameters(), strict=True):
                p_target.copy_(weight(tau) * p + (1 - weight(tau)) * p_target)

    return update


POLYAK = Exercise(
    id="7.5",
    check_name="check_polyak_update",
    reference=ref.polyak_update,
    cases=_polyak_cases,
    call=_after_update,
    mutates=(0,),
    outputs=[Output("target's parameters", 1e-10, 1e-12)],
    mistakes=[
        Mistake(
            "the Polyak update goes the wrong way: tau weighs the SOURCE, psibar <- tau psi + "
            "(1 - tau) psibar. Yours keeps only a fraction tau of the target.",
            _polyak_variant(lambda tau: 1 - tau),
        ),
        Mistake(
            "the target did not change. Update its parameters in place (assigning to a loop "
            "variable does not change the network).",
            lambda target, source, tau: None,
        ),
        Mistake(
            "the target was overwritten by the source; blend them with weight tau.",
            _polyak_variant(lambda tau: 1.0),
        ),
    ],
    crashes={
        "leaf Variable": "An in-place update of a parameter that requires grad must not be "
        "recorded by autograd: wrap the loop in `with torch.no_grad():`."
    },
    success="the target moves by tau towards the source, in place, for tau in (0.005, 0.3, 1.0).",
)
check_polyak_update = POLYAK.check
