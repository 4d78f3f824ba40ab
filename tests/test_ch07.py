"""Chapter 07 (Soft Actor-Critic): grader tests of course_utils.checks.ch07.

Every check must accept the reference (and a typical correct student answer) and reject each
typical wrong answer with its specific message; an untouched exercise is "not attempted".
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, TanhTransform, TransformedDistribution

from course_utils.checks import ExerciseError, ExerciseNotAttempted
from course_utils.checks.ch07 import (
    check_policy_loss,
    check_polyak_update,
    check_q_loss,
    check_sac_training,
    check_sac_update,
    check_squashed_gaussian_sample,
    check_temperature_loss,
    check_value_loss,
    reference_squashed_gaussian_sample,
    reference_update,
)
from course_utils.rl import SquashedGaussianPolicy, losses, sac_update
from course_utils.rl.evaluation import EvalResult


def _not_attempted(*args, **kwargs):
    raise NotImplementedError("Exercise 7.N: replace this line with your code")


ALL_CHECKS = [
    check_squashed_gaussian_sample,
    check_value_loss,
    check_q_loss,
    check_policy_loss,
    check_polyak_update,
    check_sac_update,
    check_temperature_loss,
]


@pytest.mark.parametrize("check", ALL_CHECKS)
def test_not_attempted(check):
    with pytest.raises(ExerciseNotAttempted):
        check(_not_attempted)


@pytest.mark.parametrize("check", ALL_CHECKS)
def test_not_a_function(check):
    with pytest.raises(ExerciseError, match="expected a function"):
        check(3.0)


# ---------------------------------------------------------------------------------- 7.1


def test_reference_sample_matches_torch_and_the_policy():
    torch.manual_seed(0)
    mean, log_std = (
        torch.randn(50, 2, dtype=torch.float64),
        0.5 * torch.randn(50, 2, dtype=torch.float64),
    )
    eps = torch.randn(50, 2, dtype=torch.float64)
    a, lp = reference_squashed_gaussian_sample(mean, log_std, eps)
    dist = TransformedDistribution(Normal(mean, log_std.exp()), [TanhTransform()])
    torch.testing.assert_close(lp, dist.log_prob(a).sum(-1), rtol=1e-6, atol=1e-6)
    policy = SquashedGaussianPolicy(3, 2, hidden_sizes=(8,))
    obs = torch.randn(7, 3)
    torch.manual_seed(1)
    a_pol, lp_pol = policy(obs)
    torch.manual_seed(1)
    d = policy.distribution(obs)
    a_ref, lp_ref = reference_squashed_gaussian_sample(
        d.loc, d.scale.log(), torch.randn_like(d.loc)
    )
    torch.testing.assert_close(a_pol, a_ref)
    torch.testing.assert_close(lp_pol, lp_ref, rtol=1e-5, atol=1e-5)


def student_sample(mean, log_std, eps):
    std = torch.exp(log_std)
    u = mean + std * eps
    log_prob = Normal(mean, std).log_prob(u).sum(dim=-1)
    log_prob = log_prob - (2 * (math.log(2) - u - F.softplus(-2 * u))).sum(dim=-1)
    return torch.tanh(u), log_prob


def _sample(correction="stable", at_a=False, detach=False, no_sum=False):
    def fn(mean, log_std, eps):
        std = log_std.exp()
        u = mean + std * eps
        if detach:
            u = u.detach()
        a = torch.tanh(u)
        gauss = Normal(mean, std).log_prob(a if at_a else u)
        if correction == "stable":
            corr = 2 * (math.log(2) - u - F.softplus(-2 * u))
        elif correction == "naive":
            corr = torch.log(1 - a.pow(2))
        elif correction == "eps":
            corr = torch.log(1 - a.pow(2) + 1e-6)
        elif correction == "flipped":
            corr = -2 * (math.log(2) - u - F.softplus(-2 * u))
        else:
            corr = torch.zeros_like(u)
        lp = gauss - corr
        return a, (lp if no_sum else lp.sum(-1))

    return fn


def test_sample_accepts(capsys):
    check_squashed_gaussian_sample(student_sample)
    check_squashed_gaussian_sample(reference_squashed_gaussian_sample)
    assert capsys.readouterr().out.startswith("Exercise 7.1 passed:")


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_sample(correction="none"), "misses the tanh correction"),
        (_sample(correction="flipped"), "wrong sign"),
        (_sample(at_a=True), "evaluated at the squashed action"),
        (_sample(correction="naive"), "stable identity"),
        (_sample(correction="eps"), "stable identity"),
        (_sample(detach=True), "no gradient flows from the action"),
        (_sample(no_sum=True), "sum their log-densities"),
        (
            lambda mean, log_std, eps: (
                mean + log_std.exp() * eps,
                student_sample(mean, log_std, eps)[1],
            ),
            r"not a = tanh\(u\)",
        ),
        (
            lambda mean, log_std, eps: student_sample(mean, log_std, torch.randn_like(eps)),
            "use the given eps",
        ),
        (lambda mean, log_std, eps: student_sample(mean, log_std, eps)[0], "return the tuple"),
        (
            lambda mean, log_std, eps: (
                student_sample(mean, log_std, eps)[0],
                student_sample(mean, log_std, eps)[1] * float("nan"),
            ),
            "non-finite",
        ),
    ],
)
def test_sample_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_squashed_gaussian_sample(wrong)


# ---------------------------------------------------------------------------------- 7.2


def student_value_loss(v, q1_new, q2_new, log_prob_new, alpha):
    target = torch.min(q1_new, q2_new) - alpha * log_prob_new
    return 0.5 * ((v - target.detach()) ** 2).mean()


def test_value_loss_accepts(capsys):
    check_value_loss(student_value_loss)
    check_value_loss(losses.sac_value_loss)
    assert capsys.readouterr().out.startswith("Exercise 7.2 passed:")


def _vloss(target, detach=True, half=0.5, reduce="mean"):
    def fn(v, q1_new, q2_new, log_prob_new, alpha):
        y = target(q1_new, q2_new, log_prob_new, alpha)
        if detach:
            y = y.detach()
        err = half * (v - y) ** 2
        return err.mean() if reduce == "mean" else (err.sum() if reduce == "sum" else err)

    return fn


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_vloss(lambda q1, q2, lp, a: (q1 + q2) / 2 - a * lp), "mean of the two critics"),
        (_vloss(lambda q1, q2, lp, a: q1 - a * lp), "single critic"),
        (_vloss(lambda q1, q2, lp, a: torch.min(q1, q2)), "misses the entropy term"),
        (_vloss(lambda q1, q2, lp, a: torch.min(q1, q2) + a * lp), "wrong sign"),
        (
            _vloss(lambda q1, q2, lp, a: torch.min(q1, q2) - a * lp, detach=False),
            "gradient flows into the target",
        ),
        (
            _vloss(lambda q1, q2, lp, a: torch.min(q1, q2) - a * lp, reduce="sum"),
            "summed over the batch",
        ),
        (_vloss(lambda q1, q2, lp, a: torch.min(q1, q2) - a * lp, half=1.0), "factor 1/2"),
        (
            _vloss(lambda q1, q2, lp, a: torch.min(q1, q2) - a * lp, reduce="none"),
            "single number",
        ),
        (_vloss(lambda q1, q2, lp, a: torch.min(q1, q2) - a * lp * float("nan")), "non-finite"),
    ],
)
def test_value_loss_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_value_loss(wrong)


# ---------------------------------------------------------------------------------- 7.3


def student_q_loss(q1, q2, reward, next_value, terminated, truncated, gamma):
    with torch.no_grad():
        target = reward + gamma * (1.0 - terminated) * next_value
    return 0.5 * ((q1 - target) ** 2).mean() + 0.5 * ((q2 - target) ** 2).mean()


def test_q_loss_accepts(capsys):
    check_q_loss(student_q_loss)
    assert capsys.readouterr().out.startswith("Exercise 7.3 passed:")


def _qloss(target, detach=True, combine=None):
    def fn(q1, q2, reward, next_value, terminated, truncated, gamma):
        y = target(reward, next_value, terminated, truncated, gamma)
        if detach:
            y = y.detach()
        if combine:
            return combine(q1, q2, y)
        return 0.5 * ((q1 - y) ** 2).mean() + 0.5 * ((q2 - y) ** 2).mean()

    return fn


def _good_target(r, v, te, tr, g):
    return r + g * (1 - te) * v


@pytest.mark.parametrize(
    "wrong, message",
    [
        (
            _qloss(lambda r, v, te, tr, g: r + g * (1 - torch.maximum(te, tr)) * v),
            "truncated transitions are treated as terminal",
        ),
        (_qloss(lambda r, v, te, tr, g: r + g * v), "bootstraps through terminated"),
        (_qloss(lambda r, v, te, tr, g: r + (1 - te) * v), "discount is missing"),
        (_qloss(_good_target, detach=False), "gradient flows into the target value network"),
        (
            _qloss(_good_target, combine=lambda q1, q2, y: 0.5 * ((q1 - y) ** 2).mean()),
            "only Q_theta1",
        ),
        (
            _qloss(
                _good_target, combine=lambda q1, q2, y: 0.5 * ((torch.min(q1, q2) - y) ** 2).mean()
            ),
            "minimum of the critics",
        ),
        (
            _qloss(
                _good_target,
                combine=lambda q1, q2, y: 0.25 * ((q1 - y) ** 2 + (q2 - y) ** 2).mean(),
            ),
            "averaged",
        ),
        (
            _qloss(
                _good_target,
                combine=lambda q1, q2, y: ((q1 - y) ** 2).mean() + ((q2 - y) ** 2).mean(),
            ),
            "factor 1/2",
        ),
        (
            _qloss(
                _good_target, combine=lambda q1, q2, y: 0.5 * (q1 - y) ** 2 + 0.5 * (q2 - y) ** 2
            ),
            "single number",
        ),
    ],
)
def test_q_loss_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_q_loss(wrong)


# ---------------------------------------------------------------------------------- 7.4


def student_policy_loss(log_prob_new, q1_new, q2_new, alpha):
    return (alpha * log_prob_new - torch.minimum(q1_new, q2_new)).mean()


def test_policy_loss_accepts(capsys):
    check_policy_loss(student_policy_loss)
    check_policy_loss(losses.sac_policy_loss)
    assert capsys.readouterr().out.startswith("Exercise 7.4 passed:")


@pytest.mark.parametrize(
    "wrong, message",
    [
        (
            lambda log_prob_new, q1_new, q2_new, alpha: (
                alpha * log_prob_new - (q1_new + q2_new) / 2
            ).mean(),
            "mean of the two critics",
        ),
        (lambda log_prob_new, q1_new, q2_new, alpha: (alpha * log_prob_new - q2_new).mean(), None),
        (
            lambda log_prob_new, q1_new, q2_new, alpha: (alpha * log_prob_new - q1_new).mean(),
            "single critic",
        ),
        (
            lambda log_prob_new, q1_new, q2_new, alpha: (-torch.min(q1_new, q2_new)).mean(),
            "entropy term",
        ),
        (
            lambda log_prob_new, q1_new, q2_new, alpha: (
                torch.min(q1_new, q2_new) - alpha * log_prob_new
            ).mean(),
            "sign is flipped",
        ),
        (
            lambda log_prob_new, q1_new, q2_new, alpha: (
                alpha * log_prob_new - torch.min(q1_new, q2_new).detach()
            ).mean(),
            "no \\(or a wrong\\) gradient flows through Q",
        ),
        (
            lambda log_prob_new, q1_new, q2_new, alpha: (
                alpha * log_prob_new.detach() - torch.min(q1_new, q2_new)
            ).mean(),
            "entropy term\\s+must be differentiated",
        ),
        (
            lambda log_prob_new, q1_new, q2_new, alpha: (
                alpha * log_prob_new - torch.min(q1_new, q2_new)
            ).sum(),
            "summed",
        ),
        (
            lambda log_prob_new, q1_new, q2_new, alpha: (
                (alpha * log_prob_new - torch.min(q1_new, q2_new)).detach().mean()
            ),
            "carries no gradient",
        ),
    ],
)
def test_policy_loss_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_policy_loss(wrong)


# ---------------------------------------------------------------------------------- 7.5


def student_polyak(target, source, tau):
    with torch.no_grad():
        for p_target, p in zip(target.parameters(), source.parameters(), strict=True):
            p_target.mul_(1 - tau).add_(tau * p)


def test_polyak_accepts(capsys):
    check_polyak_update(student_polyak)
    check_polyak_update(losses.polyak_update)
    assert capsys.readouterr().out.startswith("Exercise 7.5 passed:")


def _reversed(target, source, tau):
    with torch.no_grad():
        for p_target, p in zip(target.parameters(), source.parameters(), strict=True):
            p_target.copy_(tau * p_target + (1 - tau) * p)


def _source_moved(target, source, tau):
    with torch.no_grad():
        for p_target, p in zip(target.parameters(), source.parameters(), strict=True):
            p.lerp_(p_target, tau)


def _rebinding(target, source, tau):
    for p_target, p in zip(target.parameters(), source.parameters(), strict=True):
        p_target = tau * p + (1 - tau) * p_target


def _new_module(target, source, tau):
    import copy

    new = copy.deepcopy(target)
    losses.polyak_update(new, source, tau)
    return new


def _copy(target, source, tau):
    target.load_state_dict(source.state_dict())


def _no_no_grad(target, source, tau):
    for p_target, p in zip(target.parameters(), source.parameters(), strict=True):
        p_target.requires_grad_(True)
        p_target.mul_(1 - tau).add_(tau * p)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_reversed, "goes the wrong way"),
        (_source_moved, "changed its argument `source` in place"),
        (_rebinding, "did not change"),
        (_new_module, "return a new network"),
        (_copy, "overwritten by the source"),
        (_no_no_grad, "torch.no_grad"),
    ],
)
def test_polyak_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_polyak_update(wrong)


# ---------------------------------------------------------------------------------- 7.7


def student_temperature_loss(log_alpha, log_prob_new, target_entropy):
    return (-log_alpha.exp() * (log_prob_new.detach() + target_entropy)).mean()


def test_temperature_accepts(capsys):
    check_temperature_loss(student_temperature_loss)
    check_temperature_loss(losses.temperature_loss)
    assert capsys.readouterr().out.startswith("Exercise 7.7 passed:")


def test_temperature_accepts_the_log_alpha_variant(capsys):
    """-mean[log_alpha (log pi + H_target)] (SAC authors, Stable-Baselines3) has the same fixed point."""
    check_temperature_loss(lambda log_alpha, lp, h: -(log_alpha * (lp + h).detach()).mean())
    assert capsys.readouterr().out.startswith("Exercise 7.7 passed:")


@pytest.mark.parametrize(
    "wrong, message",
    [
        (
            lambda log_alpha, log_prob_new, target_entropy: (
                log_alpha.exp() * (log_prob_new.detach() + target_entropy)
            ).mean(),
            "sign is flipped",
        ),
        (
            lambda log_alpha, log_prob_new, target_entropy: (
                -(log_alpha * (log_prob_new + target_entropy)).mean()
            ),
            "gradient flows into the policy",
        ),
        (
            lambda log_alpha, log_prob_new, target_entropy: (
                -(log_alpha.exp() * (log_prob_new.detach() - target_entropy)).mean()
            ),
            "target entropy enters",
        ),
        (
            lambda log_alpha, log_prob_new, target_entropy: (
                -(log_alpha.exp() * (log_prob_new + target_entropy)).mean()
            ),
            "gradient flows into the policy",
        ),
        (
            lambda log_alpha, log_prob_new, target_entropy: (
                -(log_alpha.exp() * (log_prob_new.detach() + target_entropy))
            ),
            "single number",
        ),
    ],
)
def test_temperature_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_temperature_loss(wrong)


# ---------------------------------------------------------------------------------- 7.6


def student_update(agent, batch, alpha, gamma, tau):
    """The notebook's solution, with the course's losses."""
    with torch.no_grad():
        next_value = agent.value_target(batch.next_obs)
    q1, q2 = agent.q_net(batch.obs, batch.actions)
    loss_q = losses.sac_q_loss(q1, q2, batch.rewards, batch.terminated, next_value, gamma)
    new_actions, log_probs = agent.sample(batch.obs)
    agent.q_net.requires_grad_(False)
    q1_new, q2_new = agent.q_net(batch.obs, new_actions)
    agent.q_net.requires_grad_(True)
    loss_v = losses.sac_value_loss(agent.value_net(batch.obs), q1_new, q2_new, log_probs, alpha)
    loss_pi = losses.sac_policy_loss(log_probs, q1_new, q2_new, alpha)
    optimizers = (agent.q_opt, agent.value_opt, agent.policy_opt)
    for optimizer, loss in zip(optimizers, (loss_q, loss_v, loss_pi), strict=True):
        optimizer.zero_grad()
        loss.backward()
    for optimizer in optimizers:
        optimizer.step()
    losses.polyak_update(agent.value_target, agent.value_net, tau)
    return loss_q.item(), loss_v.item(), loss_pi.item()


def _sequential(agent, batch, alpha, gamma, tau):
    """Critics first; J_pi and J_V with the updated critics, J_V after the policy's step too."""
    with torch.no_grad():
        y = batch.rewards + gamma * (1 - batch.terminated) * agent.value_target(batch.next_obs)
    q1, q2 = agent.q_net(batch.obs, batch.actions)
    loss_q = 0.5 * ((q1 - y) ** 2).mean() + 0.5 * ((q2 - y) ** 2).mean()
    agent.q_opt.zero_grad(set_to_none=True)
    loss_q.backward()
    agent.q_opt.step()
    for p in agent.q_net.parameters():
        p.requires_grad = False
    a, lp = agent.sample(batch.obs)
    loss_pi = (alpha * lp - torch.minimum(*agent.q_net(batch.obs, a))).mean()
    agent.policy_opt.zero_grad()
    loss_pi.backward()
    agent.policy_opt.step()
    for p in agent.q_net.parameters():
        p.requires_grad = True
    with torch.no_grad():
        a, lp = agent.sample(batch.obs)
        target = torch.minimum(*agent.q_net(batch.obs, a)) - alpha * lp
    loss_v = 0.5 * F.mse_loss(agent.value_net(batch.obs), target)
    agent.value_opt.zero_grad()
    loss_v.backward()
    agent.value_opt.step()
    with torch.no_grad():
        for p_target, p in zip(
            agent.value_target.parameters(), agent.value_net.parameters(), strict=True
        ):
            p_target.lerp_(p, tau)
    return loss_q, loss_v, loss_pi


def test_update_accepts(capsys):
    for fn in (student_update, _sequential, sac_update, reference_update):
        check_sac_update(fn)
    out = capsys.readouterr().out
    assert out.count("Exercise 7.6 passed:") == 4


def _mutant(old, new):
    import inspect
    import textwrap

    source = textwrap.dedent(inspect.getsource(student_update))
    assert old in source, old
    namespace = {"torch": torch, "losses": losses}
    exec(source.replace(old, new).replace("def student_update", "def mutant"), namespace)
    return namespace["mutant"]


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("    agent.q_net.requires_grad_(False)\n", "", "J_pi also moved the critics"),
        (
            "polyak_update(agent.value_target, agent.value_net, tau)",
            "polyak_update(agent.value_target, agent.value_net, 1 - tau)",
            "moved by 1 - tau instead of tau",
        ),
        (
            "polyak_update(agent.value_target, agent.value_net, tau)",
            "polyak_update(agent.value_net, agent.value_target, tau)",
            "moved V_psi towards V_psibar",
        ),
        (
            "    losses.polyak_update(agent.value_target, agent.value_net, tau)\n",
            "",
            "did not move",
        ),
        (
            "agent.q_net(batch.obs, new_actions)",
            "agent.q_net(batch.obs, batch.actions)",
            "stored actions a_t of the batch",
        ),
        (
            "agent.q_net(batch.obs, new_actions)",
            "agent.q_net(batch.obs, new_actions.detach())",
            "learned nothing from the critics",
        ),
        ("agent.value_target(batch.next_obs)", "agent.value_net(batch.next_obs)", "uses V_psi"),
        ("        optimizer.zero_grad()\n", "", "not cleared before backward"),
        (
            "        optimizer.zero_grad()\n        loss.backward()\n",
            "        loss.backward()\n        optimizer.zero_grad()\n",
            "did not move by their losses",
        ),
        ("agent.sample(batch.obs)", "agent.policy(batch.obs)", "never called agent.sample"),
        ("    agent.q_net.requires_grad_(True)\n", "", "left frozen"),
        ("log_probs, alpha)\n    loss_pi", "log_probs, 0.0)\n    loss_pi", "J_V's target misses"),
        (
            "losses.sac_policy_loss(log_probs, q1_new, q2_new, alpha)",
            "losses.sac_policy_loss(log_probs, q1_new, q2_new, 0.0)",
            "J_pi misses alpha log pi",
        ),
        (
            "batch.terminated, next_value",
            "torch.zeros_like(batch.terminated), next_value",
            "bootstraps through terminated",
        ),
        ("    return loss_q.item(), loss_v.item(), loss_pi.item()\n", "", "returned None"),
    ],
)
def test_update_rejects(old, new, message):
    with pytest.raises(ExerciseError, match=message):
        check_sac_update(_mutant(old, new))


def test_training_outcome_check(capsys, monkeypatch):
    from course_utils.checks.ch07 import UPDATE_STEP

    monkeypatch.setattr(UPDATE_STEP, "passed", False)
    check_sac_training(None)  # the run used the reference: a note, no verdict
    assert capsys.readouterr().out.startswith("Note: Exercise 7.6 has not passed")
    monkeypatch.setattr(UPDATE_STEP, "passed", True)

    class Run:
        total_steps = 6000
        final_eval = EvalResult(returns=torch.full((10,), -150.0).numpy(), lengths=None)

    check_sac_training(Run())
    assert capsys.readouterr().out.startswith("Exercise 7.6 passed:")
    Run.final_eval = EvalResult(returns=torch.full((10,), -450.0).numpy(), lengths=None)
    with pytest.raises(ExerciseError, match="below -200"):
        check_sac_training(Run())
    with pytest.raises(ExerciseError, match="final_eval"):
        check_sac_training(None)
