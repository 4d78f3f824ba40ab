"""Chapter 10 (adversarial IRL): grader tests of course_utils.checks.ch10.

Every check must accept the reference (and a typical correct student answer) and reject each
typical wrong answer with its specific message; an untouched exercise is "not attempted".
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_utils import adversarial
from course_utils.checks import ExerciseError, ExerciseNotAttempted
from course_utils.checks.ch10 import (
    check_airl_logits,
    check_airl_update,
    check_discriminator_loss,
    check_gail_reward,
    reference_gail_reward,
)

ALL_CHECKS = [check_airl_logits, check_discriminator_loss, check_gail_reward]


def _not_attempted(*args, **kwargs):
    raise NotImplementedError("Exercise 10.N: replace this line with your code")


@pytest.mark.parametrize("check", ALL_CHECKS)
def test_not_attempted(check):
    with pytest.raises(ExerciseNotAttempted):
        check(_not_attempted)


@pytest.mark.parametrize("check", ALL_CHECKS)
def test_not_a_function(check):
    with pytest.raises(ExerciseError, match="expected a function"):
        check(3.0)


# ---------------------------------------------------------------------------------- 10.1


def student_logits(g_s, h_s, h_next, log_pi, gamma):
    f = g_s + gamma * h_next - h_s
    return f - log_pi


def test_logits_accepts(capsys):
    check_airl_logits(student_logits)
    check_airl_logits(
        lambda g_s, h_s, h_next, log_pi, gamma: adversarial.airl_logits(
            g_s, h_s, h_next, log_pi, gamma
        )
    )
    assert capsys.readouterr().out.startswith("Exercise 10.1 passed:")


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda g_s, h_s, h_next, log_pi, gamma: g_s + gamma * h_next - h_s, "miss the -log pi"),
        (lambda g_s, h_s, h_next, log_pi, gamma: g_s + gamma * h_next - h_s + log_pi, "wrong sign"),
        (
            lambda g_s, h_s, h_next, log_pi, gamma: g_s + h_next - h_s - log_pi,
            "discount is missing",
        ),
        (
            lambda g_s, h_s, h_next, log_pi, gamma: g_s + h_s - gamma * h_next - log_pi,
            "wrong way round",
        ),
        (
            lambda g_s, h_s, h_next, log_pi, gamma: torch.sigmoid(
                g_s + gamma * h_next - h_s - log_pi
            ),
            "you returned D",
        ),
        (lambda g_s, h_s, h_next, log_pi, gamma: g_s - log_pi, "shaping term is missing"),
        (
            lambda g_s, h_s, h_next, log_pi, gamma: (g_s + gamma * h_next - h_s - log_pi).detach(),
            "no gradient",
        ),
        (
            lambda g_s, h_s, h_next, log_pi, gamma: (g_s + gamma * h_next - h_s - log_pi)[:, None],
            "shape",
        ),
        (lambda g_s, h_s, h_next, log_pi, gamma: None, "return"),
    ],
)
def test_logits_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_airl_logits(wrong)


# ---------------------------------------------------------------------------------- 10.2


def student_loss(expert_logits, policy_logits):
    ones, zeros = torch.ones_like(expert_logits), torch.zeros_like(policy_logits)
    return F.binary_cross_entropy_with_logits(
        expert_logits, ones
    ) + F.binary_cross_entropy_with_logits(policy_logits, zeros)


def test_loss_accepts(capsys):
    check_discriminator_loss(student_loss)
    check_discriminator_loss(adversarial.discriminator_loss)
    assert capsys.readouterr().out.startswith("Exercise 10.2 passed:")


sp = F.softplus


@pytest.mark.parametrize(
    "wrong, message",
    [
        (
            lambda expert_logits, policy_logits: (
                sp(expert_logits).mean() + sp(-policy_logits).mean()
            ),
            "labels are swapped",
        ),
        (
            lambda expert_logits, policy_logits: (
                sp(-expert_logits).mean() + sp(-policy_logits).mean()
            ),
            "log D where log",
        ),
        (
            lambda expert_logits, policy_logits: (
                sp(expert_logits).mean() + sp(policy_logits).mean()
            ),
            "expert term uses log",
        ),
        (
            lambda expert_logits, policy_logits: sp(-expert_logits).sum() + sp(policy_logits).sum(),
            "summed",
        ),
        (
            lambda expert_logits, policy_logits: torch.cat(
                [sp(-expert_logits), sp(policy_logits)]
            ).mean(),
            "averaged together",
        ),
        (lambda expert_logits, policy_logits: sp(-expert_logits).mean(), "policy term is missing"),
        (
            lambda expert_logits, policy_logits: (
                -(
                    torch.log(torch.sigmoid(expert_logits)).mean()
                    + torch.log(1 - torch.sigmoid(policy_logits)).mean()
                )
            ),
            "not finite",
        ),
        (
            lambda expert_logits, policy_logits: (
                -(sp(-expert_logits).mean() + sp(policy_logits).mean())
            ),
            "signs are flipped",
        ),
        (
            lambda expert_logits, policy_logits: torch.cat([sp(-expert_logits), sp(policy_logits)]),
            "scalar",
        ),
        (
            lambda expert_logits, policy_logits: (
                sp(-expert_logits).mean() + sp(policy_logits).mean()
            ).item(),
            "no gradient",
        ),
    ],
)
def test_loss_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_discriminator_loss(wrong)


# ---------------------------------------------------------------------------------- 10.3


def student_reward(discriminator, obs, actions):
    with torch.no_grad():
        logits = discriminator(obs, actions)
        return F.logsigmoid(logits) - F.logsigmoid(-logits)


def test_reward_accepts(capsys):
    check_gail_reward(student_reward)
    check_gail_reward(reference_gail_reward)
    assert capsys.readouterr().out.startswith("Exercise 10.3 passed:")


def _r(transform, grad=False):
    def fn(discriminator, obs, actions):
        if grad:
            return transform(discriminator(obs, actions))
        with torch.no_grad():
            return transform(discriminator(obs, actions))

    return fn


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_r(F.logsigmoid), "slides' GAIL gradient.*published variant"),
        (_r(lambda x: -F.logsigmoid(-x)), "Ho & Ermon's GAIL paper.*published variant"),
        (_r(lambda x: -x), "sign is flipped"),
        (_r(torch.sigmoid), "D itself"),
        (_r(lambda x: x, grad=True), "requires grad"),
        (_r(lambda x: torch.log(torch.sigmoid(x)) - torch.log(1 - torch.sigmoid(x))), "not finite"),
        (_r(lambda x: x[:, None]), "squeeze"),
    ],
)
def test_reward_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_gail_reward(wrong)


def test_reward_backward_into_discriminator_is_caught():
    def leaky(discriminator, obs, actions):
        logits = discriminator(obs, actions)
        logits.sum().backward()
        return logits.detach()

    with pytest.raises(ExerciseError, match="left gradients"):
        check_gail_reward(leaky)


def test_checks_call_positionally_so_renamed_parameters_pass(capsys):
    check_airl_logits(lambda g, h, h_prime, logp, discount: g + discount * h_prime - h - logp)
    check_discriminator_loss(lambda e, p: student_loss(e, p))
    check_gail_reward(lambda disc, states, acts: disc(states, acts).detach())
    assert capsys.readouterr().out.count(" passed: ") == 3


@pytest.mark.parametrize(
    "check, answer",
    [
        (
            check_airl_logits,
            lambda g_s, h_s, h_next, log_pi, gamma: (g_s + gamma * h_next - h_s - log_pi).float(),
        ),
        (
            check_discriminator_loss,
            lambda e, p: -(F.logsigmoid(e.float()).mean() + F.logsigmoid(-p.float()).mean()),
        ),
        (check_gail_reward, _r(lambda x: x.float())),
    ],
)
def test_float32_answers_pass(check, answer, capsys):
    check(answer)
    assert " passed: " in capsys.readouterr().out


def test_logits_gradient_cut_from_one_input():
    def cut(g_s, h_s, h_next, log_pi, gamma):
        return g_s + gamma * h_next.detach() - h_s - log_pi

    with pytest.raises(ExerciseError, match=r"w\.r\.t\. h_next should be gamma"):
        check_airl_logits(cut)


def test_loss_clamped_logits_change_the_gradient():
    def clamped(expert_logits, policy_logits):
        e, p = expert_logits.clamp(-20, 20), policy_logits.clamp(-20, 20)
        return (
            student_loss(e, p)
            + (sp(-expert_logits) - sp(-e)).mean().detach()
            + (sp(policy_logits) - sp(p)).mean().detach()
        )

    with pytest.raises(ExerciseError, match=r"gradient w\.r\.t\. expert_logits differs"):
        check_discriminator_loss(clamped)


# ---------------------------------------------------------------------------------- 10.4


def student_step(discriminator, optimizer, policy, expert, samples):
    logits = []
    for batch in (expert, samples):
        with torch.no_grad():
            log_pi = policy.log_prob(batch.obs, batch.actions)
        g_s = discriminator.reward(batch.obs)
        h_s, h_next = discriminator.potential(batch.obs), discriminator.potential(batch.next_obs)
        logits.append(g_s + discriminator.gamma * h_next - h_s - log_pi)
    loss = F.softplus(-logits[0]).mean() + F.softplus(logits[1]).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def student_f_reward(discriminator, batch):
    with torch.no_grad():
        g_s = discriminator.reward(batch.obs)
        h_s, h_next = discriminator.potential(batch.obs), discriminator.potential(batch.next_obs)
        return g_s + discriminator.gamma * h_next - h_s


def detached_reward(discriminator, batch):  # .detach() instead of torch.no_grad()
    return discriminator.f(batch.obs, batch.next_obs).detach()


def test_airl_update_accepts(capsys):
    check_airl_update(student_step, student_f_reward)
    check_airl_update(adversarial.discriminator_step, adversarial.airl_reward)
    check_airl_update(student_step, detached_reward)
    check_airl_update(student_step, lambda d, b: student_f_reward(d, b).float())  # float32 rewards
    out = capsys.readouterr().out
    assert out.count("Exercise 10.4 passed:") == 4, out


def test_airl_update_not_attempted_and_not_functions():
    with pytest.raises(ExerciseNotAttempted):
        check_airl_update(_not_attempted, student_f_reward)
    with pytest.raises(ExerciseNotAttempted):
        check_airl_update(student_step, _not_attempted)
    with pytest.raises(ExerciseError, match="expected two functions"):
        check_airl_update(student_step, 3.0)


def leaky_step(discriminator, optimizer, policy, expert, samples):
    logits = []
    for batch in (expert, samples):
        log_pi = policy.log_prob(batch.obs, batch.actions)  # not detached
        f = discriminator.f(batch.obs, batch.next_obs)
        logits.append(f - log_pi)
    loss = adversarial.discriminator_loss(*logits)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


@pytest.mark.parametrize(
    "step, reward, message",
    [
        (leaky_step, student_f_reward, "sent gradient into the policy"),
        (student_step, lambda d, b: d.f(b.obs, b.next_obs), "your rewards require grad"),
        (student_step, lambda d, b: -student_f_reward(d, b), "wrong sign"),
        (student_step, lambda d, b: student_f_reward(d, b)[:, None], "shape"),
        (
            lambda d, o, p, e, s: student_step(d, o, p, s, e),
            student_f_reward,
            "the labels are swapped",
        ),
    ],
)
def test_airl_update_rejects(step, reward, message):
    with pytest.raises(ExerciseError, match=message):
        check_airl_update(step, reward)


def test_airl_update_or_reference(capsys):
    from course_utils.checks.ch10 import AIRL_UPDATE

    AIRL_UPDATE.passed = False
    step, reward = check_airl_update.or_reference(student_step, student_f_reward)
    assert (step, reward) == (adversarial.discriminator_step, adversarial.airl_reward)
    assert "has not passed its check yet" in capsys.readouterr().out
    check_airl_update(student_step, student_f_reward)
    assert check_airl_update.or_reference(student_step, student_f_reward) == (
        student_step,
        student_f_reward,
    )
