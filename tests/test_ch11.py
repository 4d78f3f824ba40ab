"""Chapter 11 (beyond the slides): grader tests of course_utils.checks.ch11.

Every check must accept the reference (and typical correct student solutions) and reject each
typical wrong answer with its specific message.
"""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from course_utils.checks import ExerciseError, ExerciseNotAttempted
from course_utils.checks.ch11 import (
    check_discrete_sac_training,
    check_discrete_sac_update,
    check_first_exit_control,
    check_iq_loss,
    check_iq_training,
    check_pcl_loss,
    check_slip_question,
    reference_discrete_sac_update,
    reference_first_exit_control,
    reference_iq_loss,
    reference_pcl_loss,
)
from course_utils.rl import polyak_update


def _not_attempted(*args, **kwargs):
    raise NotImplementedError("Exercise 11.N: replace this line with your code")


# --------------------------------------------------------------------------------- Exercise 11.1


def _first_exit(g_sign=1.0, use_alpha=True, arrive=False, goal_one=False, control="pz"):
    """A student's first-exit solver, right with the defaults, with one slip otherwise."""

    def solve(p, r, goal, alpha):
        p, r, goal = np.asarray(p, float), np.asarray(r, float), np.asarray(goal, bool)
        g = np.exp(g_sign * r / (alpha if use_alpha else 1.0))
        i, j = np.flatnonzero(~goal), np.flatnonzero(goal)
        z = np.zeros_like(r)
        z[j] = 1.0 if goal_one else g[j]
        if arrive:
            z[i] = np.linalg.solve(np.eye(len(i)) - p[i][:, i] * g[i], p[i][:, j] @ (g[j] * z[j]))
        else:
            z[i] = np.linalg.solve(
                np.eye(len(i)) - g[i, None] * p[i][:, i], g[i] * (p[i][:, j] @ z[j])
            )
        weights = {"pz": p * z, "z": np.tile(z, (len(z), 1)), "p": p}[control]
        return z, weights / weights.sum(axis=1, keepdims=True)

    return solve


def _columns(p, r, goal, alpha):
    z, _ = _first_exit()(p, r, goal, alpha)
    return z, p * z / (p * z).sum(axis=0)


def _iterate(p, r, goal, alpha):
    """Value iteration on z until it stops changing: slower, just as right."""
    g = np.exp(np.asarray(r) / alpha)
    z = np.where(goal, g, 0.0)
    for _ in range(100_000):
        new = np.where(goal, g, g * (p @ z))
        if np.allclose(new, z, rtol=1e-15, atol=0):
            break
        z = new
    return new, p * new / (p @ new)[:, None]


def test_check_first_exit_control_accepts_the_reference_and_other_solutions(capsys):
    check_first_exit_control(reference_first_exit_control)
    check_first_exit_control(_first_exit())
    check_first_exit_control(_iterate)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(line.startswith("Exercise 11.1 passed:") for line in lines)
    assert len(set(lines)) == 1


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_first_exit(g_sign=-1.0), "sign of the reward flipped"),
        (_first_exit(use_alpha=False), "ignores the temperature"),
        (_first_exit(arrive=True), "reward of the NEXT state"),
        (_first_exit(goal_one=True), "your goals have z(g) = 1"),
        (_first_exit(control="z"), "ignore the passive dynamics"),
        (_first_exit(control="p"), "are the passive ones"),
        (_columns, "normalised over the wrong axis"),
        (lambda p, r, goal, alpha: _first_exit()(np.asarray(p).T, r, goal, alpha), "transposed"),
        (
            lambda p, r, goal, alpha: (lambda z, u: (alpha * np.log(z), u))(
                *_first_exit()(p, r, goal, alpha)
            ),
            "you returned V = alpha log z",
        ),
        (lambda p, r, goal, alpha: _first_exit()(p, r, goal, alpha)[0], "return the tuple"),
    ],
)
def test_check_first_exit_control_names_the_mistake(wrong, message):
    with pytest.raises(ExerciseError, match=r"Exercise 11\.1") as info:
        check_first_exit_control(wrong)
    assert message in str(info.value)


def test_check_first_exit_control_not_attempted_and_not_a_function():
    with pytest.raises(ExerciseNotAttempted, match="not attempted"):
        check_first_exit_control(_not_attempted)
    with pytest.raises(ExerciseError, match="expected a function"):
        check_first_exit_control(np.ones(3))


# --------------------------------------------------------------------------------- Exercise 11.2


@pytest.mark.parametrize("answer", ["b", "B", " (b) "])
def test_slip_question_accepts_b(answer, capsys):
    check_slip_question(answer)
    assert capsys.readouterr().out.startswith("Exercise 11.2 passed: b.")


@pytest.mark.parametrize(
    "answer, message",
    [("a", "with slip the next state is random"), ("c", "has mean zero given (s, a)")],
)
def test_slip_question_explains_wrong_choices(answer, message):
    with pytest.raises(ExerciseError, match=r"Exercise 11\.2") as info:
        check_slip_question(answer)
    assert message in str(info.value)


def test_slip_question_wants_a_choice():
    with pytest.raises(ExerciseError, match="one of the choices"):
        check_slip_question(2)
    with pytest.raises(ExerciseError, match='answer "a", "b" or "c"'):
        check_slip_question("d")


# --------------------------------------------------------------------------------- Exercise 11.3


def _pcl(detach_end=False, sign=-1.0, boot=0, discount=True, next_policy=False, reduce="mean"):
    """A student's PCL loss, right with the defaults, with one slip otherwise."""

    def loss(values, log_pi, states, actions, rewards, gamma, alpha):
        d = actions.shape[1]
        end = values[states[:, -1]]
        end = end.detach() if detach_end else end
        where = states[:, 1:] if next_policy else states[:, :-1]
        weights = gamma ** torch.arange(d, dtype=values.dtype) if discount else 1.0
        c = (
            -values[states[:, 0]]
            + gamma ** (d + boot) * end
            + (weights * (rewards + sign * alpha * log_pi[where, actions])).sum(1)
        )
        return 0.5 * c.mean() ** 2 if reduce == "mean_first" else 0.5 * (c**2).mean()

    return loss


def _float32(values, log_pi, states, actions, rewards, gamma, alpha):
    """Right, computed in float32."""
    return _pcl()(values.float(), log_pi.float(), states, actions, rewards.float(), gamma, alpha)


def test_check_pcl_loss_accepts_the_reference_and_other_solutions(capsys):
    check_pcl_loss(reference_pcl_loss)
    check_pcl_loss(_pcl())
    check_pcl_loss(_float32)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(line.startswith("Exercise 11.3 passed:") for line in lines)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_pcl(detach_end=True), "you detached the bootstrap value"),
        (_pcl(sign=1.0), "entropy term has the wrong sign"),
        (_pcl(sign=0.0), "hard (alpha = 0) consistency"),
        (_pcl(boot=-1), "gamma^(d-1)"),
        (_pcl(discount=False), "rewards are not discounted"),
        (_pcl(next_policy=True), "log pi at the NEXT states"),
        (_pcl(reduce="mean_first"), "squared the MEAN"),
        (
            lambda v, lp, s, a, r, g, al: _pcl()(v, lp.detach(), s, a, r, g, al),
            "no gradient reaches log pi",
        ),
        (
            lambda v, lp, s, a, r, g, al: _pcl()(v.detach(), lp, s, a, r, g, al).item(),
            "torch tensor",
        ),
        (lambda v, lp, s, a, r, g, al: lp[s, a].sum(), "shape mismatch"),
    ],
)
def test_check_pcl_loss_names_the_mistake(wrong, message):
    with pytest.raises(ExerciseError, match=r"Exercise 11\.3") as info:
        check_pcl_loss(wrong)
    assert message in str(info.value)


def test_check_pcl_loss_not_attempted():
    with pytest.raises(ExerciseNotAttempted, match="not attempted"):
        check_pcl_loss(_not_attempted)


# --------------------------------------------------------------------------------- Exercise 11.4


def test_check_discrete_sac_update_accepts_the_reference_and_a_sequential_step(capsys):
    check_discrete_sac_update(reference_discrete_sac_update)
    check_discrete_sac_update(_sequential_dsac)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.startswith("Exercise 11.4 passed:") for line in lines)


def _sequential_dsac(agent, batch, gamma, tau, online=False, polyak=True):
    """Critics, then actor (on the updated critics), then log-alpha loss: a common correct form
    (with ``online`` or ``polyak=False``: one common mistake)."""
    alpha = agent.log_alpha.exp().item()
    with torch.no_grad():
        p_next, logp_next = agent.policy.probs_and_log_probs(batch.next_obs)
        critics = agent.q_net if online else agent.q_target
        v_next = (p_next * (torch.min(*critics(batch.next_obs)) - alpha * logp_next)).sum(-1)
        y = batch.rewards + gamma * (1 - batch.terminated) * v_next
    q1, q2 = agent.q_net(batch.obs)
    a = batch.actions[:, None]
    q_loss = (
        0.5 * ((q1.gather(1, a)[:, 0] - y) ** 2).mean()
        + 0.5 * ((q2.gather(1, a)[:, 0] - y) ** 2).mean()
    )
    agent.q_opt.zero_grad()
    q_loss.backward()
    agent.q_opt.step()
    with torch.no_grad():
        q_min = torch.min(*agent.q_net(batch.obs))
    probs, logp = agent.policy.probs_and_log_probs(batch.obs)
    policy_loss = (probs * (alpha * logp - q_min)).sum(-1).mean()
    agent.policy_opt.zero_grad()
    policy_loss.backward()
    agent.policy_opt.step()
    entropy = -(probs * logp).sum(-1).detach()
    alpha_loss = (agent.log_alpha * (entropy - agent.target_entropy)).mean()
    agent.alpha_opt.zero_grad()
    alpha_loss.backward()
    agent.alpha_opt.step()
    if polyak:
        polyak_update(agent.q_target, agent.q_net, tau)
    return q_loss.item(), policy_loss.item(), alpha_loss.item()


def _dsac_with(**mistake):
    return lambda agent, batch, gamma, tau: _sequential_dsac(agent, batch, gamma, tau, **mistake)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_dsac_with(online=True), "your critic target uses the ONLINE critics"),
        (_dsac_with(polyak=False), "your step did not move the target critics"),
        (lambda agent, batch, gamma, tau: None, "Did you forget the `return` statement?"),
    ],
)
def test_check_discrete_sac_update_names_the_mistake(wrong, message):
    with pytest.raises(ExerciseError, match=r"Exercise 11\.4") as info:
        check_discrete_sac_update(wrong)
    assert message in str(info.value)


def test_check_discrete_sac_training(monkeypatch, capsys):
    from course_utils.checks import ch11

    def run(returns, steps=15_000):
        curve = types.SimpleNamespace(
            steps=[2500 * (k + 1) for k in range(len(returns))], returns=returns
        )
        return types.SimpleNamespace(curve=curve, total_steps=steps)

    monkeypatch.setattr(ch11.DISCRETE_SAC_UPDATE, "passed", False)
    check_discrete_sac_training(run([20.0]))
    assert capsys.readouterr().out.startswith("Note: Exercise 11.4 has not passed")
    monkeypatch.setattr(ch11.DISCRETE_SAC_UPDATE, "passed", True)
    check_discrete_sac_training(run([100, 300, 200, 150, 180, 220]))
    assert capsys.readouterr().out.startswith("Exercise 11.4 passed:")
    with pytest.raises(ExerciseError, match="below 250"):
        check_discrete_sac_training(run([100, 120, 200, 150, 180, 220]))
    with pytest.raises(ExerciseError, match="train for at least 15000 steps"):
        check_discrete_sac_training(run([500, 500], steps=5000))
    with pytest.raises(ExerciseError, match="pass the result of train_discrete_sac"):
        check_discrete_sac_training(42)


# --------------------------------------------------------------------------------- Exercise 11.5


def _iq_student(sign=-1.0, mask=True, detach_next=False, chi2_scale=4.0):
    """A student's IQ loss with torch.where masks, right with the defaults."""

    def loss(q, v, next_v, terminated, is_expert, gamma, chi2_alpha):
        nv = next_v.detach() if detach_next else next_v
        future = gamma * torch.where(terminated.bool() & mask, torch.zeros_like(nv), nv)
        r = q - future
        expert = torch.where(is_expert, r, torch.zeros_like(r)).sum() / is_expert.sum()
        return sign * expert + (v - future).mean() + (r**2).mean() / (chi2_scale * chi2_alpha)

    return loss


def test_check_iq_loss_accepts_the_reference_and_a_student_solution(capsys):
    check_iq_loss(reference_iq_loss)
    check_iq_loss(_iq_student())
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.startswith("Exercise 11.5 passed:") for line in lines)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_iq_student(sign=1.0), "your expert term has the wrong sign"),
        (_iq_student(mask=False), "ignores `terminated`"),
        (_iq_student(detach_next=True), "you detached next_v"),
        (_iq_student(chi2_scale=2.0), "1 / (2 chi2_alpha)"),
    ],
)
def test_check_iq_loss_names_the_mistake(wrong, message):
    with pytest.raises(ExerciseError, match=r"Exercise 11\.5") as info:
        check_iq_loss(wrong)
    assert message in str(info.value)


def test_check_iq_training(monkeypatch, capsys):
    from course_utils.checks import ch11

    def run(mean, steps=3000):
        return types.SimpleNamespace(final_eval=types.SimpleNamespace(mean=mean), total_steps=steps)

    monkeypatch.setattr(ch11.IQ_LOSS, "passed", True)
    check_iq_training(run(500.0))
    assert capsys.readouterr().out.startswith("Exercise 11.5 passed:")
    with pytest.raises(ExerciseError, match="below 475"):
        check_iq_training(run(300.0))
    with pytest.raises(ExerciseError, match="at least 3000 gradient steps"):
        check_iq_training(run(500.0, steps=1000))
