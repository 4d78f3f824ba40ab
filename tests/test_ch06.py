"""Chapter 06 (soft Q-learning): grader tests of course_utils.checks.ch06.

Every check must accept the reference (and a typical correct student solution) and reject each
typical wrong answer with its specific message.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_utils.checks import ExerciseError, ExerciseNotAttempted
from course_utils.checks.ch06 import (
    check_boltzmann_probs,
    check_soft_dqn_loss,
    check_soft_q_target,
    reference_boltzmann_probs,
    reference_soft_dqn_loss,
    reference_soft_q_target,
)


def _not_attempted(*args, **kwargs):
    raise NotImplementedError("Exercise 6.N: replace this line with your code")


# ---------------------------------------------------------------------------------- Exercise 6.1


def student_target(next_q, reward, terminated, truncated, gamma, alpha):
    """A typical correct answer: a hand-written stable soft max under no_grad."""
    with torch.no_grad():
        m = next_q.max(dim=1, keepdim=True).values
        v = (
            m + alpha * torch.log(torch.exp((next_q - m) / alpha).sum(dim=1, keepdim=True))
        ).squeeze(1)
        return reward + gamma * (1.0 - terminated) * v


def _target(value=None, mask=None, detach=True, keepdim=False):
    def target(next_q, reward, terminated, truncated, gamma, alpha):
        v = (
            value(next_q, alpha)
            if value
            else alpha * torch.logsumexp(next_q / alpha, dim=-1, keepdim=keepdim)
        )
        m = mask(terminated, truncated) if mask else terminated
        y = reward + gamma * (1 - m) * v
        return y.detach() if detach else y

    return target


def _naive_value(q, alpha):
    return alpha * torch.log(torch.exp(q / alpha).sum(dim=-1))


def test_check_soft_q_target_accepts_the_reference_and_a_student_solution(capsys):
    check_soft_q_target(reference_soft_q_target)
    check_soft_q_target(student_target)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.startswith("Exercise 6.1 passed:") for line in lines)
    assert lines[0] == lines[1]


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_target(mask=lambda term, trunc: torch.zeros_like(term)), "bootstraps through TERMINATED"),
        (_target(mask=lambda term, trunc: torch.clamp(term + trunc, max=1)), "treats TRUNCATED"),
        (_target(mask=lambda term, trunc: trunc), "treats TRUNCATED"),
        (_target(mask=lambda term, trunc: 1 - term), "mask is inverted"),
        (_target(value=lambda q, a: q.max(dim=-1).values), "hard max"),
        (_target(value=lambda q, a: torch.logsumexp(q, dim=-1)), "ignores the temperature"),
        (_target(value=lambda q, a: a * torch.logsumexp(q, dim=-1)), "divide Q' by alpha"),
        (_target(value=lambda q, a: torch.logsumexp(q / a, dim=-1)), "multiply by alpha outside"),
        (_target(value=lambda q, a: q.mean(dim=-1)), "averaged Q'"),
        (_target(value=lambda q, a: a * torch.logsumexp(q / a, dim=0)), "wrong axis"),
        (_target(value=_naive_value), "overflowed"),
        (_target(detach=False), "still carries gradients"),
        (_target(keepdim=True), r"shape \(B, B\)"),
        (
            lambda q, r, term, trunc, gamma, alpha: (
                gamma * _target()(q, r, term, trunc, 1.0, alpha)
            ),
            "discounted the reward too",
        ),
        (lambda *args, **kwargs: _target()(*args, **kwargs).numpy(), "as a torch tensor"),
    ],
)
def test_check_soft_q_target_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message) as info:
        check_soft_q_target(wrong)
    assert not isinstance(info.value, ExerciseNotAttempted)
    assert info.value.args[0].startswith("Exercise 6.1:")


def test_check_soft_q_target_not_attempted_and_not_callable():
    with pytest.raises(ExerciseNotAttempted, match="not attempted"):
        check_soft_q_target(_not_attempted)
    with pytest.raises(ExerciseError, match="expected a function"):
        check_soft_q_target(None)


def test_soft_target_tends_to_the_hard_target():
    rng = np.random.default_rng(0)
    q = torch.tensor(rng.normal(size=(10, 3)))
    r, zeros = torch.tensor(rng.normal(size=10)), torch.zeros(10)
    hard = r + 0.9 * q.max(dim=1).values
    for alpha in (1.0, 0.1, 0.01, 0.001):
        gap = reference_soft_q_target(q, r, zeros, zeros, 0.9, alpha) - hard
        assert (gap >= -1e-6).all() and gap.max() <= 0.9 * alpha * np.log(3) + 1e-6


# ---------------------------------------------------------------------------------- Exercise 6.2


def student_probs(q, alpha):
    """A typical correct answer: subtract the soft value, exponentiate."""
    v = alpha * torch.logsumexp(q / alpha, dim=-1, keepdim=True)
    return torch.exp((q - v) / alpha)


@pytest.mark.parametrize(
    "answer",
    [reference_boltzmann_probs, student_probs, lambda q, alpha: torch.softmax(q / alpha, dim=-1)],
)
def test_check_boltzmann_probs_accepts_correct_answers(answer, capsys):
    check_boltzmann_probs(answer)
    assert capsys.readouterr().out.startswith("Exercise 6.2 passed:")


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda q, a: torch.softmax(q / a, dim=0), "wrong axis"),
        (lambda q, a: torch.softmax(q, dim=-1), "ignores the temperature"),
        (lambda q, a: torch.softmax(q * a, dim=-1), "multiplied Q by alpha"),
        (lambda q, a: F.one_hot(q.argmax(-1), q.shape[-1]).float(), "greedy one-hot"),
        (lambda q, a: torch.log_softmax(q / a, dim=-1), "log-probabilities"),
        (lambda q, a: torch.exp(q / a), "not normalised"),
        (lambda q, a: torch.exp(q / a) / torch.exp(q / a).sum(-1, keepdim=True), "overflows"),
        (
            lambda q, a: torch.exp(q - a * torch.logsumexp(q / a, -1, keepdim=True)),
            "temperature is missing",
        ),
        (lambda q, a: a * torch.logsumexp(q / a, dim=-1), r"shape \(\.\.\., A\)"),
        (lambda q, a: torch.softmax(q / a, dim=-1).numpy(), "as a torch tensor"),
    ],
)
def test_check_boltzmann_probs_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message) as info:
        check_boltzmann_probs(wrong)
    assert not isinstance(info.value, ExerciseNotAttempted)
    assert info.value.args[0].startswith("Exercise 6.2:")


def test_check_boltzmann_probs_not_attempted():
    with pytest.raises(ExerciseNotAttempted, match="not attempted"):
        check_boltzmann_probs(_not_attempted)


# ---------------------------------------------------------------------------------- Exercise 6.3


def student_loss(q_net, target_net, batch, gamma, alpha):
    """A typical correct answer built on the student's own target (Exercise 6.1)."""
    y = student_target(
        target_net(batch.next_obs), batch.rewards, batch.terminated, batch.truncated, gamma, alpha
    )
    q_taken = q_net(batch.obs)[torch.arange(len(batch.actions)), batch.actions]
    return 0.5 * ((q_taken - y) ** 2).mean()


def _loss(
    taken="gather", net="target", detach=True, reduce="half_mean", mask="terminated", value="soft"
):
    def loss(q_net, target_net, batch, gamma, alpha):
        next_q = (target_net if net == "target" else q_net)(batch.next_obs)
        if detach:
            next_q = next_q.detach()
        m = {
            "terminated": batch.terminated,
            "none": torch.zeros_like(batch.terminated),
            "done": torch.clamp(batch.terminated + batch.truncated, max=1),
        }[mask]
        v = (
            alpha * torch.logsumexp(next_q / alpha, -1)
            if value == "soft"
            else next_q.max(-1).values
        )
        y = batch.rewards + gamma * (1 - m) * v
        q = q_net(batch.obs)
        q_taken = {
            "gather": lambda: q.gather(1, batch.actions[:, None]).squeeze(1),
            "unsqueezed": lambda: q.gather(1, batch.actions[:, None]),
            "max": lambda: q.max(1).values,
        }[taken]()
        sq = (q_taken - y) ** 2
        if reduce == "huber":
            return F.smooth_l1_loss(q_taken, y)
        return {"half_mean": 0.5 * sq.mean(), "mean": sq.mean(), "half_sum": 0.5 * sq.sum()}[reduce]

    return loss


def test_check_soft_dqn_loss_accepts_the_reference_and_a_student_solution(capsys):
    check_soft_dqn_loss(reference_soft_dqn_loss)
    check_soft_dqn_loss(student_loss)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.startswith("Exercise 6.3 passed:") for line in lines)


def _no_grad_loss(q_net, target_net, batch, gamma, alpha):
    with torch.no_grad():
        return _loss()(q_net, target_net, batch, gamma, alpha)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_loss(detach=False), "gradients flow into the target"),
        (_loss(net="online"), "ONLINE network"),
        (_loss(net="online", detach=False), "online network q_net and did not detach"),
        (_loss(taken="unsqueezed"), r"shape \(B, B\)"),
        (_loss(taken="max"), "TAKEN"),
        (_loss(reduce="mean"), "without the factor 1/2"),
        (_loss(reduce="half_sum"), "SUMS over the batch"),
        (_loss(mask="none"), "bootstraps through TERMINATED"),
        (_loss(mask="done"), "treats TRUNCATED"),
        (_loss(value="hard"), "hard max"),
        (_loss(reduce="huber"), "Huber loss"),
        (_no_grad_loss, "no gradient"),
        (lambda *args, **kwargs: _loss()(*args, **kwargs).reshape(1), "0-d tensor"),
        (lambda *args, **kwargs: _loss()(*args, **kwargs).item(), "as a torch tensor"),
    ],
)
def test_check_soft_dqn_loss_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message) as info:
        check_soft_dqn_loss(wrong)
    assert not isinstance(info.value, ExerciseNotAttempted)
    assert info.value.args[0].startswith("Exercise 6.3:")


def test_check_soft_dqn_loss_not_attempted_and_crash():
    with pytest.raises(ExerciseNotAttempted, match="not attempted"):
        check_soft_dqn_loss(_not_attempted)

    def crashes(q_net, target_net, batch, gamma, alpha):
        return q_net(batch.next_obs.T)

    with pytest.raises(ExerciseError, match="raised RuntimeError"):
        check_soft_dqn_loss(crashes)


def test_check_soft_dqn_loss_names_the_formula_when_no_mistake_matches():
    def scaled(q_net, target_net, batch, gamma, alpha):
        return 0.6 * _loss()(q_net, target_net, batch, gamma, alpha) / 0.5

    with pytest.raises(
        ExerciseError, match=r"does not match the reference: yours is .*0\.5 \* mean_i"
    ):
        check_soft_dqn_loss(scaled)


def test_check_soft_dqn_loss_value_right_gradient_wrong():
    def wrong_gradient(q_net, target_net, batch, gamma, alpha):
        loss = _loss()(q_net, target_net, batch, gamma, alpha)
        return loss + 0.1 * (loss - loss.detach())  # same value, gradient scaled by 1.1

    with pytest.raises(ExerciseError, match="value is right but its gradient"):
        check_soft_dqn_loss(wrong_gradient)


def test_check_soft_dqn_loss_target_leak_without_other_mistake():
    def leaky(q_net, target_net, batch, gamma, alpha):
        loss = _loss()(q_net, target_net, batch, gamma, alpha)
        return loss + sum((p - p.detach()).sum() for p in target_net.parameters())

    with pytest.raises(ExerciseError, match="gradients reach the target network's parameters"):
        check_soft_dqn_loss(leaky)


def test_checks_call_positionally_so_renamed_parameters_pass(capsys):
    check_soft_q_target(lambda q, r, done, timeout, g, a: student_target(q, r, done, timeout, g, a))
    check_boltzmann_probs(lambda values, temperature: torch.softmax(values / temperature, -1))
    check_soft_dqn_loss(lambda online, frozen, b, g, a: student_loss(online, frozen, b, g, a))
    assert capsys.readouterr().out.count(" passed: ") == 3


@pytest.mark.parametrize(
    "answer",
    [
        lambda q, alpha: torch.distributions.Categorical(logits=q / alpha).probs,
        lambda q, alpha: torch.softmax(q.double() / alpha, dim=-1),
    ],
)
def test_check_boltzmann_probs_accepts_other_idioms(answer, capsys):
    check_boltzmann_probs(answer)
    assert capsys.readouterr().out.startswith("Exercise 6.2 passed:")


def test_check_soft_q_target_extra_axis_gets_the_keepdim_hint():
    """(B, 1) is also what the (B, B) broadcasting mistake gives for B = 1: the hint comes first."""

    def kept(next_q, reward, terminated, truncated, gamma, alpha):
        return reference_soft_q_target(next_q, reward, terminated, truncated, gamma, alpha)[:, None]

    with pytest.raises(
        ExerciseError, match=r"shape \(B, 1\); reduce over the actions without keepdim"
    ):
        check_soft_q_target(kept)


# ---------------------------------------------------------------------------------- Exercise 6.4


def student_update(q_net, target_net, optimizer, batch, gamma, alpha, huber):
    """A typical correct answer: manual stable soft max, handwritten Huber, fancy indexing."""
    with torch.no_grad():
        next_q = target_net(batch.next_obs)
        m = next_q.max(dim=1, keepdim=True).values
        v = (m + alpha * torch.log(torch.exp((next_q - m) / alpha).sum(1, keepdim=True))).squeeze(1)
        y = batch.rewards + gamma * (1 - batch.terminated) * v
    q_taken = q_net(batch.obs)[torch.arange(len(batch.actions)), batch.actions]
    e = q_taken - y
    loss = (
        torch.where(e.abs() < 1, 0.5 * e**2, e.abs() - 0.5).mean() if huber else 0.5 * (e**2).mean()
    )
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def test_check_soft_dqn_update_accepts_the_reference_and_a_student_solution(capsys):
    from course_utils.checks.ch06 import check_soft_dqn_update, reference_soft_dqn_update

    check_soft_dqn_update(reference_soft_dqn_update)
    check_soft_dqn_update(student_update)
    assert capsys.readouterr().out.count("Exercise 6.4 passed") == 2


def _wrong_update(change):
    """student_update with one line changed by ``change`` (a dict of knobs)."""

    def update(q_net, target_net, optimizer, batch, gamma, alpha, huber):
        with torch.no_grad():
            net = q_net if change.get("online") else target_net
            next_q = net(batch.next_obs)
            v = (
                next_q.max(-1).values
                if change.get("hard")
                else alpha * torch.logsumexp(next_q / alpha, dim=-1)
            )
            done = 0.0 if change.get("no_mask") else batch.terminated
            y = batch.rewards + gamma * (1 - done) * v
        q_taken = q_net(batch.obs).gather(1, batch.actions[:, None]).squeeze(1)
        loss = F.smooth_l1_loss(q_taken, y) if huber else 0.5 * ((q_taken - y) ** 2).mean()
        if not change.get("no_zero"):
            optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if change.get("polyak"):
            target_net.load_state_dict(q_net.state_dict())
        return None if change.get("none") else loss

    return update


@pytest.mark.parametrize(
    "change, message",
    [
        ({"hard": True}, "hard max over next actions"),
        ({"online": True}, "ONLINE network"),
        ({"no_mask": True}, "TERMINATED"),
        ({"no_zero": True}, "did not clear the gradients"),
        ({"polyak": True}, "changed the target network"),
        ({"none": True}, "returned None"),
    ],
)
def test_check_soft_dqn_update_rejects_typical_mistakes(change, message):
    from course_utils.checks.ch06 import check_soft_dqn_update

    with pytest.raises(ExerciseError, match=message):
        check_soft_dqn_update(_wrong_update(change))


def test_check_soft_dqn_update_not_attempted():
    from course_utils.checks.ch06 import check_soft_dqn_update

    with pytest.raises(ExerciseNotAttempted):
        check_soft_dqn_update(_not_attempted)


def test_train_soft_dqn_update_hook_reproduces_the_default_and_keep_best():
    """The student's update plugs into train_soft_dqn: the reference passed as ``update`` gives the
    same run bit for bit; keep_best returns the best snapshot, re-evaluated on held-out seeds."""
    from course_utils.rl import SoftDQNConfig, train_soft_dqn
    from course_utils.rl.soft_dqn import soft_dqn_update

    config = SoftDQNConfig(learning_starts=100, eval_every=200, eval_episodes=2, batch_size=32)
    plain = train_soft_dqn("CartPole-v1", 600, seed=3, config=config, progress=False)
    hooked = train_soft_dqn(
        "CartPole-v1", 600, seed=3, config=config, progress=False, update=soft_dqn_update
    )
    assert plain.curve.returns == hooked.curve.returns
    for a, b in zip(plain.q_net.parameters(), hooked.q_net.parameters(), strict=True):
        assert torch.equal(a, b)
    assert plain.best_step is None

    best = SoftDQNConfig(**{**vars(config), "keep_best": True})
    kept = train_soft_dqn("CartPole-v1", 600, seed=3, config=best, progress=False)
    assert kept.curve.returns == plain.curve.returns  # training is unchanged
    returns = kept.curve.returns
    assert (
        kept.best_step
        == kept.curve.steps[max(i for i, r in enumerate(returns) if r == max(returns))]
    )


def test_train_soft_dqn_rejects_a_bad_update():
    from course_utils.rl import SoftDQNConfig, train_soft_dqn

    config = SoftDQNConfig(learning_starts=10, eval_every=None, eval_episodes=1, batch_size=8)
    with pytest.raises(TypeError, match="update must be a function"):
        train_soft_dqn("CartPole-v1", 20, config=config, progress=False, update=3)
    with pytest.raises(TypeError, match="must return the loss"):
        train_soft_dqn("CartPole-v1", 20, config=config, progress=False, update=lambda *args: None)


def test_entropy_regularized_pg_equals_soft_q_learning_step():
    """Schulman, Abbeel and Chen (2017), as in section 8: with Q = alpha log pi + V, the soft
    Q-learning step is alpha times the entropy-regularized policy gradient (baseline V) plus the
    value-error term, sample by sample."""
    torch.manual_seed(1)
    alpha = 0.7
    features = torch.randn(3, 4, dtype=torch.float64)
    theta = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    s, a = torch.tensor([0, 1, 2, 2]), torch.tensor([1, 4, 0, 3])
    r = torch.randn(4, dtype=torch.float64)

    def parts():
        q = features @ theta
        v = alpha * torch.logsumexp(q / alpha, -1)
        return q, v, (q - v[:, None]) / alpha

    def grad(f):
        return torch.autograd.grad(f(*parts()), theta)[0]

    _, v, log_pi = parts()
    adv = (r - alpha * log_pi[s, a] - v[s]).detach()
    g_q = -grad(lambda q, v, lp: (0.5 * (q[s, a] - r) ** 2).mean())
    g_pg = grad(lambda q, v, lp: (adv * lp[s, a]).mean())
    g_v = grad(lambda q, v, lp: (adv * v[s]).mean())
    assert torch.allclose(g_q, alpha * g_pg + g_v, atol=1e-12)
    assert not torch.allclose(g_q, alpha * g_pg, atol=1e-3)  # the value term matters
