"""Checks for chapter 10 (adversarial inverse RL: GANs, AIRL, GAIL).

10.1 ``airl_logits``: f - log pi with f = g(s) + gamma h(s') - h(s); 10.2 ``discriminator_loss``:
binary cross-entropy (expert label 1, policy label 0), a mean over each batch, stable for any
logit; 10.3 ``gail_reward``: log D - log(1 - D), without gradient into the discriminator. The
references are :mod:`course_utils.adversarial`; the mistakes are the reference with one knob changed.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from .. import adversarial as ref
from . import Case, Exercise, Grad, Mistake, Output

__all__ = ["check_airl_logits", "check_discriminator_loss", "check_gail_reward"]
__all__ += ["reference_airl_logits", "reference_gail_reward"]
sp = F.softplus


def _t(x) -> torch.Tensor:
    return torch.tensor(np.asarray(x, dtype=float), dtype=torch.float64)


def _detached(reference):
    return lambda *args: reference(*args).detach()


# ----------------------------------------------------------------------- Exercise 10.1


def reference_airl_logits(g_s, h_s, h_next, log_pi, gamma):
    """f - log pi(a|s) with f = g(s) + gamma h(s') - h(s) (no terminal states here)."""
    return ref.airl_logits(g_s, h_s, h_next, log_pi, gamma)


def _logit_cases(rng: np.random.Generator) -> list[Case]:
    def case(name, b, gamma, s=1.0):
        draws = [(0.0, s), (0.0, 2 * s), (0.0, 2 * s), (-1.0, 1.5)]  # g(s), h(s), h(s'), log pi
        return Case(name, (*(_t(rng.normal(m, sd, size=b)) for m, sd in draws), gamma))

    return [
        case("B=6 transitions, gamma=0.9", 6, 0.9),
        case("B=16 transitions, gamma=0.99", 16, 0.99),
        case("B=3 transitions, gamma=0.5, large rewards and potentials (scale 50)", 3, 0.5, 50.0),
    ]


def _needs(name: str, value: str) -> str:
    return (
        f"the gradient of the logits w.r.t. {name} should be {value} for every transition; "
        "nothing of f may be detached."
    )


AIRL_LOGITS = Exercise(
    id="10.1",
    check_name="check_airl_logits",
    reference=reference_airl_logits,
    cases=_logit_cases,
    seed=1001,
    mistakes=[
        Mistake(
            "the logits miss the -log pi(a|s) term. The structured discriminator is D = exp(f) / "
            "(exp(f) + pi(a|s)), whose logit is f - log pi(a|s), not f.",
            lambda g, h, h2, lp, gm: g + gm * h2 - h,
        ),
        Mistake(
            "log pi(a|s) has the wrong sign: the logit is f - log pi(a|s) (D = exp(f) / (exp(f) + "
            "pi), so a policy that is likely to take a makes D smaller).",
            lambda g, h, h2, lp, gm: g + gm * h2 - h + lp,
        ),
        Mistake(
            "the discount is missing: f = g(s) + gamma * h(s') - h(s).",
            lambda g, h, h2, lp, gm: g + h2 - h - lp,
        ),
        Mistake(
            "the shaping term is the wrong way round: f = g(s) + gamma * h(s') - h(s) (the "
            "potential of the next state, discounted, minus that of the current state).",
            lambda g, h, h2, lp, gm: g + h - gm * h2 - lp,
        ),
        Mistake(
            "the discount multiplies the wrong potential: f = g(s) + gamma * h(s') - h(s), not "
            "g(s) + h(s') - gamma * h(s).",
            lambda g, h, h2, lp, gm: g + h2 - gm * h - lp,
        ),
        Mistake(
            "you returned D = sigmoid(logit), a probability; return the logit f - log pi(a|s) "
            "itself (D = sigmoid(logit) is computed from it where needed).",
            lambda *args: torch.sigmoid(reference_airl_logits(*args)),
        ),
        Mistake(
            "the shaping term is missing: f = g(s) + gamma * h(s') - h(s), not g(s) alone.",
            lambda g, h, h2, lp, gm: g - lp,
        ),
        Mistake(
            "the logits carry no gradient; the discriminator is trained through them. Use torch "
            "operations on the given tensors (no .detach(), numpy or no_grad).",
            _detached(reference_airl_logits),
        ),
    ],
    grad=Grad(
        track=(0, 1, 2),
        needs={0: _needs("g_s", "1"), 1: _needs("h_s", "-1"), 2: _needs("h_next", "gamma")},
    ),
    success="the AIRL logits f - log pi match the reference on {n} batches, with gradients.",
)
check_airl_logits = AIRL_LOGITS.check


# ----------------------------------------------------------------------- Exercise 10.2


def _loss_cases(rng: np.random.Generator) -> list[Case]:
    same = (_t(rng.normal(0.5, 1, 8)), _t(rng.normal(-0.5, 1, 8)))
    sizes = (_t(rng.normal(1.0, 2.0, 5)), _t(rng.normal(-1.0, 2.0, 12)))
    extreme = (_t([120.0, -800.0, 50.0, 900.0]), _t([-900.0, 80.0, 850.0]))
    return [
        Case("8 expert and 8 policy logits", same),
        Case("5 expert and 12 policy logits (different batch sizes)", sizes),
        Case("a confident discriminator: logits of size 50 to 900, both signs", extreme),
    ]


def _bce(expert=-1.0, policy=1.0, reduce=torch.mean):
    """The mean over each batch of -log D (expert) and -log(1 - D) (policy): softplus(-+logit)."""
    return lambda e, p: reduce(sp(expert * e)) + reduce(sp(policy * p))


def _loss_shape(actual, expected, case: Case) -> str | None:
    if actual.ndim == 1 and actual.shape[0] > 1:
        return (
            f"the loss has shape {actual.shape}, expected a scalar: average each term over its "
            "batch with .mean() and add the two."
        )
    if actual.shape == () and not np.isfinite(actual):
        return (
            "the loss is not finite for large logits. log(sigmoid(x)) underflows to log(0) = -inf "
            "once |x| is large; use -log D = softplus(-logit) and -log(1 - D) = softplus(logit) "
            "(torch.nn.functional.softplus), or torch.nn.functional.binary_cross_entropy_with_logits."
        )
    return None


def _loss_needs(name: str) -> str:
    return (
        f"the gradient w.r.t. {name} differs from the reference; clamping or detaching the "
        "logits changes it."
    )


DISCRIMINATOR_LOSS = Exercise(
    id="10.2",
    check_name="check_discriminator_loss",
    reference=ref.discriminator_loss,
    cases=_loss_cases,
    seed=1002,
    diagnoses=[_loss_shape],
    mistakes=[
        Mistake(
            "the labels are swapped: expert samples get label 1 (-log D) and policy samples label "
            "0 (-log(1 - D)), so that D(x) is the probability that x comes from the expert.",
            _bce(expert=1.0, policy=-1.0),
        ),
        Mistake(
            "the policy term uses log D where log(1 - D) belongs: policy samples (label 0) cost "
            "-log(1 - D) = softplus(logit).",
            _bce(policy=-1.0),
        ),
        Mistake(
            "the expert term uses log(1 - D) where log D belongs: expert samples (label 1) cost "
            "-log D = softplus(-logit).",
            _bce(expert=1.0),
        ),
        Mistake(
            "the signs are flipped: L_D = E_expert[-log D] + E_policy[-log(1 - D)] is minimised, "
            "so both terms are negative log-probabilities (positive numbers).",
            lambda e, p: -_bce()(e, p),
        ),
        Mistake(
            "the terms are summed over the batch; take the mean of each term over its own batch.",
            _bce(reduce=torch.sum),
        ),
        Mistake(
            "both batches are averaged together; the slides' loss averages each expectation over "
            "its own batch: mean over experts of -log D plus mean over policy samples of "
            "-log(1 - D).",
            lambda e, p: torch.cat([sp(-e), sp(p)]).mean(),
        ),
        Mistake(
            "the policy term is missing: add the mean over policy samples of -log(1 - D).",
            lambda e, p: sp(-e).mean(),
        ),
        Mistake(
            "the expert term is missing: add the mean over expert samples of -log D.",
            lambda e, p: sp(p).mean(),
        ),
        Mistake(
            "the loss carries no gradient; the discriminator is trained by backpropagating it. Use "
            "torch operations, no .item(), numpy or torch.no_grad().",
            _detached(ref.discriminator_loss),
        ),
    ],
    grad=Grad(
        track=(0, 1),
        needs={0: _loss_needs("expert_logits"), 1: _loss_needs("policy_logits")},
        atol=1e-9,
    ),
    success="the discriminator loss matches the reference on {n} batches (also for logits up to "
    "900), with gradients.",
)
check_discriminator_loss = DISCRIMINATOR_LOSS.check


# ----------------------------------------------------------------------- Exercise 10.3


def reference_gail_reward(discriminator, obs, actions):
    """log D(s, a) - log(1 - D(s, a)) = the discriminator's logit, (B,), without gradient."""
    with torch.no_grad():
        return ref.adversarial_reward(discriminator(obs, actions), "logit")


def _discriminators(rng: np.random.Generator) -> list[Case]:
    cases = []
    for name, seed, b, scale, discrete in (
        ("a discriminator of 2-D states and 2-D actions, B=7", 1, 7, 1.0, False),
        ("a discriminator of 4-D states and 2 discrete actions, B=9", 2, 9, 1.0, True),
        ("a very confident discriminator (logits of size 30 to 300), B=6", 3, 6, 200.0, False),
    ):
        torch.manual_seed(seed)  # the notebook's torch RNG after the check depends on these calls
        obs_dim, kind = (4, {"n_actions": 2}) if discrete else (2, {"act_dim": 2})
        disc = ref.GAILDiscriminator(obs_dim, hidden_sizes=(16,), **kind).double()
        if discrete:
            actions = torch.randint(0, 2, (b,))
        else:
            actions = torch.rand(b, 2, dtype=torch.float64) * 2 - 1
        with torch.no_grad():
            disc.net[-1].weight.mul_(scale)
            disc.net[-1].bias.fill_(0.3 * scale)
        cases.append(Case(name, (disc, torch.randn(b, obs_dim, dtype=torch.float64), actions)))
    return cases


def _reward_shape(actual, expected, case: Case) -> str | None:
    if actual.shape == (*expected.shape, 1):
        return (
            f"the reward has shape {actual.shape}, expected {expected.shape}: one reward per "
            "transition (squeeze the last axis)."
        )
    if actual.shape == expected.shape and not np.isfinite(actual).all():
        return (
            "the reward is not finite for a confident discriminator. sigmoid(logit) rounds to "
            "exactly 1 (or 0) for large |logit|, and then log(1 - D) = log(0). Work with the "
            "logit: log D - log(1 - D) = logsigmoid(x) - logsigmoid(-x) = x."
        )
    return None


def _no_gradients_left(fn, cases) -> str | None:
    for case in cases:
        disc, obs, actions = copy.deepcopy(case.args)
        fn(disc, obs, actions)
        if any(p.grad is not None for p in disc.parameters()):
            return (
                "your function left gradients on the discriminator's parameters; computing a "
                "reward must not touch the discriminator (no backward, compute under "
                f"torch.no_grad()) (input: {case.name})"
            )
    return None


def _reward(transform):  # a wrong function of the logits
    return lambda d, o, a: transform(reference_gail_reward(d, o, a))


GAIL_REWARD = Exercise(
    id="10.3",
    check_name="check_gail_reward",
    reference=reference_gail_reward,
    cases=_discriminators,
    outputs=[Output("reward", 1e-6, 1e-8)],
    diagnoses=[_reward_shape],
    mistakes=[
        Mistake(
            "you returned log D only; the reward is log D - log(1 - D) (the generator minimises "
            "log(1 - D) - log D).",
            _reward(F.logsigmoid),
        ),
        Mistake(
            "you returned -log(1 - D) only; the reward is log D - log(1 - D).",
            _reward(lambda x: -F.logsigmoid(-x)),
        ),
        Mistake(
            "the sign is flipped: the policy should be rewarded where the discriminator believes "
            "it is the expert, reward = log D - log(1 - D), not log(1 - D) - log D.",
            _reward(lambda x: -x),
        ),
        Mistake("you returned D itself; the reward is log D - log(1 - D).", _reward(torch.sigmoid)),
        Mistake(
            "you returned log(1 - D); the reward is log D - log(1 - D) (log(1 - D) belongs to the "
            "generator's loss, with a minus sign in the reward).",
            _reward(lambda x: F.logsigmoid(-x)),
        ),
    ],
    grad=Grad(
        detached="the reward requires grad, so the policy update would flow gradients into the "
        "discriminator. The reward is a fixed number for the policy: compute it under "
        "torch.no_grad() (or .detach() it)."
    ),
    after=[_no_gradients_left],
    success="the reward log D - log(1 - D) matches the reference for {n} discriminators, finite "
    "and gradient-free.",
)
check_gail_reward = GAIL_REWARD.check
