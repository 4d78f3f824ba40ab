"""Checks for chapter 10 (adversarial inverse RL: GANs, AIRL, GAIL).

10.1 ``airl_logits``: f - log pi with f = g(s) + gamma h(s') - h(s); 10.2 ``discriminator_loss``:
binary cross-entropy (expert label 1, policy label 0), a mean over each batch, stable for any
logit; 10.3 ``gail_reward``: log D - log(1 - D), without gradient into the discriminator. The
references are :mod:`course_utils.adversarial`; the mistakes are the reference with one knob changed.
"""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import torch
import torch.nn.functional as F

from .. import adversarial as ref
from ..rl.networks import SquashedGaussianPolicy
from . import (
    Case,
    Exercise,
    Grad,
    Mistake,
    Output,
    flat_parameters,
    install_stale_gradients,
    messages,
    mistake_table,
)

__all__ = [
    "check_airl_logits",
    "check_airl_update",
    "check_discriminator_loss",
    "check_gail_reward",
]
__all__ += ["airl_pair", "reference_airl_logits", "reference_airl_update", "reference_gail_reward"]
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
            "you returned log D. That is the reward in the slides' GAIL gradient, grad_theta L ~ "
            "1/M sum_j grad_theta log pi_theta(tau_j) log D(tau_j), and Goodfellow's "
            '"non-saturating" generator objective: a published variant with the same fixed point '
            "(pi = p*, where D = 1/2), but a different gradient elsewhere and always negative (a "
            "penalty for living in tasks that terminate). This exercise asks for the reward of the "
            "IRL-as-GAN generator, log D - log(1 - D) (the notebook compares the two below).",
            _reward(F.logsigmoid),
        ),
        Mistake(
            "you returned -log(1 - D). That is the reward of Ho & Ermon's GAIL paper (their cost "
            "log D' with D' = 1 - D the probability of the policy) and the minimax GAN generator: "
            "a published variant with the same fixed point, but always positive (a survival bonus "
            "in tasks that terminate). This exercise asks for log D - log(1 - D), the IRL-as-GAN "
            "generator's reward (the sum of the two variants).",
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


# ----------------------------------------------------------------------- Exercise 10.4


def reference_airl_update(discriminator, optimizer, policy, expert, samples, replay):
    """One discriminator step (the library's), then the generator's rewards f for ``replay`` from
    the updated discriminator: the student's ``airl_discriminator_step`` and ``airl_reward`` in turn."""
    loss = ref.discriminator_step(discriminator, optimizer, policy, expert, samples)
    return loss, ref.airl_reward(discriminator, replay)


def airl_pair(step, reward):
    """The student's two functions of Exercise 10.4 as one function of the reference's arguments."""
    for name, fn in (("airl_discriminator_step", step), ("airl_reward", reward)):
        if not callable(fn) or isinstance(fn, type):
            raise AIRL_UPDATE.error(
                f"expected two functions, (airl_discriminator_step, airl_reward); the {name} "
                f"argument is a {type(fn).__name__}. Pass the functions themselves, without calling them."
            )

    def airl_update(discriminator, optimizer, policy, expert, samples, replay):
        loss = step(discriminator, optimizer, policy, expert, samples)
        return loss, reward(discriminator, replay)

    names = [getattr(fn, "__name__", "your function") for fn in (step, reward)]
    airl_update.__name__ = airl_update.__qualname__ = "` and `".join(names)
    return airl_update


def _update_variant(
    *,
    expert_label=1.0,
    log_pi_sign=-1.0,
    detach_log_pi=True,
    zero_grad=True,
    step=True,
    reduce=torch.mean,
    reward="f",
    reward_grad=False,
):
    """The reference of Exercise 10.4 written out, with knobs for the mistakes."""

    def parts(d, batch):
        return d.reward(batch.obs), d.potential(batch.obs), d.potential(batch.next_obs)

    def airl_update(discriminator, optimizer, policy, expert, samples, replay):
        logits = []
        for batch in (expert, samples):
            with contextlib.nullcontext() if not detach_log_pi else torch.no_grad():
                log_pi = policy.log_prob(batch.obs, batch.actions)
            g, h, h_next = parts(discriminator, batch)
            logits.append(g + discriminator.gamma * h_next - h + log_pi_sign * log_pi)
        e, s = logits
        loss = reduce(sp(-expert_label * e)) + reduce(sp(expert_label * s))
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        if step:
            optimizer.step()
        with contextlib.nullcontext() if reward_grad else torch.no_grad():
            g, h, h_next = parts(discriminator, replay)
            f = g + discriminator.gamma * h_next - h
            rewards = {
                "f": f,
                "-f": -f,
                "g": g,
                "logit": f - policy.log_prob(replay.obs, replay.actions),
                "log D": -sp(-f + policy.log_prob(replay.obs, replay.actions)),
            }[reward]
        return loss.item(), rewards

    return airl_update


def _airl_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for name, obs_dim, act_dim, n_e, n_s, n_r, gamma, make_opt, stale in [
        (
            "SGD (lr 0.1), 6 expert and 8 policy transitions, gamma 0.9",
            2,
            2,
            6,
            8,
            5,
            0.9,
            lambda p: torch.optim.SGD(p, lr=0.1),
            False,
        ),
        (
            "Adam with state from earlier steps and stale gradients left on the discriminator, "
            "4-D states, 1-D actions, 10 and 7 transitions, gamma 0.99",
            4,
            1,
            10,
            7,
            6,
            0.99,
            lambda p: torch.optim.Adam(p, lr=0.05),
            True,
        ),
        (
            "SGD with momentum and stale gradients, 3 expert and 12 policy transitions, gamma 0.5",
            2,
            2,
            3,
            12,
            4,
            0.5,
            lambda p: torch.optim.SGD(p, lr=0.2, momentum=0.9),
            True,
        ),
    ]:
        torch.manual_seed(int(rng.integers(1 << 30)))
        disc = ref.AIRLDiscriminator(obs_dim, gamma=gamma, hidden_sizes=(8,)).double()
        policy = SquashedGaussianPolicy(obs_dim, act_dim, hidden_sizes=(8,)).double()
        optimizer = make_opt(disc.parameters())
        if isinstance(optimizer, torch.optim.Adam):  # two earlier steps give Adam its moments
            for _ in range(2):
                optimizer.zero_grad()
                disc.reward(torch.randn(5, obs_dim, dtype=torch.float64)).pow(2).mean().backward()
                optimizer.step()
        disc.stale_gradients = stale

        def batch(n, low=-0.9, high=0.9, obs_dim=obs_dim, act_dim=act_dim):
            obs = torch.as_tensor(rng.uniform(-1, 1, (n, obs_dim)))
            actions = torch.as_tensor(rng.uniform(low, high, (n, act_dim)))
            next_obs = obs + 0.1 * torch.as_tensor(rng.normal(size=(n, obs_dim)))
            return ref.Batch(
                obs,
                actions,
                torch.zeros(n, dtype=torch.float64),
                next_obs,
                torch.zeros(n, dtype=torch.float64),
            )

        expert = batch(n_e, -0.5, 0.5)
        cases.append(Case(name, (disc, optimizer, policy, expert, batch(n_s), batch(n_r))))
    return cases


def _observe_update(fn, discriminator, optimizer, policy, expert, samples, replay):
    """Run ``fn`` and return (loss, change of the discriminator's parameters, rewards, status).

    status 1: the policy's parameters received gradient (log pi not detached); 2: the rewards
    require grad."""
    params = list(discriminator.parameters())
    if getattr(discriminator, "stale_gradients", False):  # gradients a previous loss left behind
        install_stale_gradients(params, 7)
    before = flat_parameters(discriminator)
    out = fn(discriminator, optimizer, policy, expert, samples, replay)
    if not isinstance(out, tuple) or len(out) != 2:
        return None
    loss, rewards = out
    change = flat_parameters(discriminator) - before
    leaked = any(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.parameters())
    with_grad = isinstance(rewards, torch.Tensor) and rewards.requires_grad
    status = 1.0 if leaked else 2.0 if with_grad else 0.0
    if isinstance(loss, torch.Tensor):
        loss = loss.detach()
    if isinstance(rewards, torch.Tensor):
        rewards = rewards.detach()
    return loss, change, rewards, status


_UPDATE = """
leaked: your discriminator step sent gradient into the policy: after loss.backward() the policy's
    parameters hold a .grad. log pi(a|s) is a fixed number in the discriminator's loss (the policy is
    the generator, trained by its own loss): compute it under torch.no_grad() or .detach() it.
    Otherwise an optimizer that holds the policy too, or a policy update that does not zero its
    gradients first, moves the policy by the discriminator's loss.
reward_grad: your rewards require grad. The generator's reward is a fixed number for the critic's
    target: compute it under torch.no_grad() (or .detach() it), so no gradient reaches the discriminator.
swapped: the labels are swapped: expert transitions have label 1 (-log D) and policy samples label 0
    (-log(1 - D)). Your step trained D to call the policy the expert.
no_log_pi: the logits miss -log pi(a|s): AIRL's discriminator is D = exp(f) / (exp(f) + pi(a|s)),
    with logit f - log pi(a|s) (your airl_logits of Exercise 10.1, with log_pi from policy.log_prob).
plus_log_pi: log pi(a|s) enters the logit with the wrong sign: the logit is f - log pi(a|s).
no_zero_grad: you did not clear the gradients before loss.backward(): backward ADDS to .grad, so the
    step used this loss's gradient plus what an earlier loss left there. Call optimizer.zero_grad() first.
no_step: the discriminator's parameters did not move: after loss.backward(), call optimizer.step().
sum: your loss sums over each batch; the discriminator loss averages each term over its own batch
    (your discriminator_loss of Exercise 10.2).
reward_sign: the reward has the wrong sign: the generator is paid where the discriminator believes
    it is the expert, r = f(s, a, s').
reward_logit: your reward is the whole logit f - log pi = log D - log(1 - D), the slides' generator
    reward. The SAC generator here already adds the entropy bonus -alpha log pi(a|s) to every reward,
    so with the logit the policy would count its entropy twice: return f(s, a, s') = g(s) + gamma h(s')
    - h(s) alone.
reward_g: your reward is g(s) alone, the state-only reward that is re-optimised after training
    (section 5). During training the generator gets f(s, a, s') = g(s) + gamma h(s') - h(s): the
    shaping term is part of what the discriminator learned.
reward_log_d: your reward is log D = -softplus(-(f - log pi)). The generator here gets f(s, a, s')
    (the logit without -log pi, which SAC adds itself).
"""
_U = messages(_UPDATE)


def _update_structure(actual, expected, case: Case) -> str | None:
    status = float(np.asarray(actual[-1]))
    return {1.0: _U["leaked"], 2.0: _U["reward_grad"]}.get(status)


AIRL_UPDATE = Exercise(
    id="10.4",
    check_name="check_airl_update",
    reference=reference_airl_update,
    cases=_airl_cases,
    seed=1004,
    call=_observe_update,
    mutates=(0, 1),
    outputs=[
        Output("loss", 1e-6, 1e-8),
        Output("change of the discriminator's parameters", 1e-5, 1e-9),
        Output("rewards", 1e-6, 1e-8),
        Output("status"),
    ],
    diagnoses=[_update_structure],
    mistakes=mistake_table(
        _UPDATE,
        swapped=_update_variant(expert_label=-1.0),
        no_log_pi=_update_variant(log_pi_sign=0.0),
        plus_log_pi=_update_variant(log_pi_sign=1.0),
        no_zero_grad=_update_variant(zero_grad=False),
        no_step=_update_variant(step=False),
        sum=_update_variant(reduce=torch.sum),
        reward_sign=_update_variant(reward="-f"),
        reward_logit=_update_variant(reward="logit"),
        reward_g=_update_variant(reward="g"),
        reward_log_d=_update_variant(reward="log D"),
    ),
    success="one discriminator step matches the reference on {n} small AIRL discriminators (SGD, "
    "momentum and Adam with state, stale gradients), and so do the rewards f of the updated "
    "discriminator; no gradient reaches the policy or the rewards.",
)


def check_airl_update(airl_discriminator_step, airl_reward, seed: int | None = None) -> None:
    """Check Exercise 10.4: prints 'Exercise 10.4 passed: ...', or raises ExerciseError with
    feedback on what to fix."""
    __tracebackhide__ = True
    AIRL_UPDATE.check(airl_pair(airl_discriminator_step, airl_reward), seed)


def _or_reference(step, reward):
    """(step, reward) once Exercise 10.4 has passed in this session, else the references."""
    if AIRL_UPDATE.passed:
        return step, reward
    AIRL_UPDATE.or_reference(airl_pair(step, reward))  # prints the note
    return ref.discriminator_step, ref.airl_reward


check_airl_update.exercise = AIRL_UPDATE
check_airl_update.or_reference = _or_reference
