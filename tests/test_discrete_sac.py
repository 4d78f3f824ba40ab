"""Tests of discrete SAC (course_utils.rl.discrete_sac): the update step and short training runs."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from course_utils.rl import (
    Batch,
    CategoricalPolicy,
    DiscreteSACAgent,
    DiscreteSACConfig,
    TwinDiscreteQNetwork,
    discrete_sac_update,
    evaluate,
    train_discrete_sac,
)

OBS_DIM, N_ACTIONS, B = 4, 3, 8  # three actions: nothing may assume |A| = 2


@pytest.fixture
def cpu(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")


def _agent(alpha: float = 0.5, target_entropy: float = 0.5, lr: float = 1e-2, seed: int = 0):
    torch.manual_seed(seed)
    policy = CategoricalPolicy(OBS_DIM, N_ACTIONS, (16,))
    q_net = TwinDiscreteQNetwork(OBS_DIM, N_ACTIONS, (16,))
    # the target critics differ from q_net on purpose, and are trained by Polyak averaging only
    q_target = TwinDiscreteQNetwork(OBS_DIM, N_ACTIONS, (16,)).requires_grad_(False)
    log_alpha = torch.tensor(math.log(alpha), requires_grad=True)
    return DiscreteSACAgent(
        policy=policy,
        q_net=q_net,
        q_target=q_target,
        log_alpha=log_alpha,
        target_entropy=target_entropy,
        policy_opt=torch.optim.Adam(policy.parameters(), lr=lr),
        q_opt=torch.optim.Adam(q_net.parameters(), lr=lr),
        alpha_opt=torch.optim.Adam([log_alpha], lr=lr),
    )


def _batch(seed: int = 1, terminated: float | None = None) -> Batch:
    g = torch.Generator().manual_seed(seed)
    if terminated is None:
        done = (torch.rand(B, generator=g) < 0.3).float()
    else:
        done = torch.full((B,), terminated)
    return Batch(
        obs=torch.randn(B, OBS_DIM, generator=g),
        actions=torch.randint(0, N_ACTIONS, (B,), generator=g),
        rewards=torch.randn(B, generator=g),
        next_obs=torch.randn(B, OBS_DIM, generator=g),
        terminated=done,
    )


def _exact_losses(agent: DiscreteSACAgent, batch: Batch, gamma: float):
    """J_Q, J_pi, J(alpha) written out independently of the module, with autograd graphs."""
    alpha = agent.log_alpha.exp().detach()
    with torch.no_grad():
        pi_next = torch.softmax(agent.policy(batch.next_obs), -1)
        qbar = torch.minimum(*agent.q_target(batch.next_obs))
        v_next = (pi_next * (qbar - alpha * torch.log(pi_next))).sum(-1)
        y = batch.rewards + gamma * (1 - batch.terminated) * v_next
    q1, q2 = agent.q_net(batch.obs)
    idx = torch.arange(B), batch.actions
    q_loss = 0.5 * ((q1[idx] - y) ** 2).mean() + 0.5 * ((q2[idx] - y) ** 2).mean()
    pi = torch.softmax(agent.policy(batch.obs), -1)
    policy_loss = (pi * (alpha * torch.log(pi) - torch.minimum(q1, q2).detach())).sum(-1).mean()
    entropy = -(pi * torch.log(pi)).sum(-1).detach()
    alpha_loss = (agent.log_alpha.exp() * (entropy - agent.target_entropy)).mean()
    return q_loss, policy_loss, alpha_loss


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


# ----------------------------------------------------------------------------------------
# The update step
# ----------------------------------------------------------------------------------------
def test_update_returns_the_three_losses_and_moves_every_trained_parameter():
    agent, batch, gamma, tau = _agent(), _batch(), 0.9, 0.1
    before = copy.deepcopy(agent)
    expected = [loss.item() for loss in _exact_losses(before, batch, gamma)]
    losses = discrete_sac_update(agent, batch, gamma, tau)
    assert isinstance(losses, tuple) and all(isinstance(x, float) for x in losses)
    np.testing.assert_allclose(losses, expected, rtol=1e-5, atol=1e-6)
    for module in ("policy", "q_net"):
        old_new = zip(
            _params(getattr(before, module)), _params(getattr(agent, module)), strict=True
        )
        for old, new in old_new:
            assert not torch.equal(old, new), f"{module} did not move"
    assert agent.log_alpha.item() != before.log_alpha.item()
    # target critics: Polyak average of their old values and the critics *after* the step
    for old, online, new in zip(
        _params(before.q_target), _params(agent.q_net), _params(agent.q_target), strict=True
    ):
        torch.testing.assert_close(new, (1 - tau) * old + tau * online)


def test_each_loss_trains_only_its_own_network():
    """The gradients left by the update are those of J_Q (critics), J_pi (actor), J(alpha)."""
    agent, batch, gamma = _agent(), _batch(), 0.99
    before = copy.deepcopy(agent)
    q_loss, policy_loss, alpha_loss = _exact_losses(before, batch, gamma)
    discrete_sac_update(agent, batch, gamma, tau=0.005)
    for loss, module in ((q_loss, "q_net"), (policy_loss, "policy")):
        params = list(getattr(before, module).parameters())
        grads = torch.autograd.grad(loss, params, retain_graph=True)
        for grad, param in zip(grads, getattr(agent, module).parameters(), strict=True):
            torch.testing.assert_close(param.grad, grad, rtol=1e-5, atol=1e-7)
    (alpha_grad,) = torch.autograd.grad(alpha_loss, before.log_alpha)
    torch.testing.assert_close(agent.log_alpha.grad, alpha_grad)


def test_exact_expectations_match_monte_carlo_over_sampled_actions():
    """V(s') and J_pi summed over all actions equal their averages over a ~ pi (200k samples)."""
    agent, batch, gamma = _agent(alpha=1.0), _batch(terminated=0.0), 0.9
    before = copy.deepcopy(agent)
    q_loss, policy_loss, _ = discrete_sac_update(agent, batch, gamma, tau=0.005)
    n, alpha = 200_000, 1.0
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        pi_next = torch.softmax(before.policy(batch.next_obs), -1)  # (B, A)
        a_next = torch.multinomial(pi_next, n, replacement=True, generator=g)  # (B, n)
        qbar = torch.minimum(*before.q_target(batch.next_obs))
        soft = qbar.gather(1, a_next) - alpha * torch.log(pi_next.gather(1, a_next))  # (B, n)
        y_mc = batch.rewards + gamma * soft.mean(1)
        q1, q2 = before.q_net(batch.obs)
        q_taken = torch.stack([q.gather(1, batch.actions[:, None])[:, 0] for q in (q1, q2)])
        q_loss_mc = (0.5 * (q_taken - y_mc) ** 2).mean(1).sum().item()
        pi = torch.softmax(before.policy(batch.obs), -1)
        a = torch.multinomial(pi, n, replacement=True, generator=g)
        terms = alpha * torch.log(pi.gather(1, a)) - torch.minimum(q1, q2).gather(1, a)
        policy_loss_mc = terms.mean().item()
        # a wrong formula (no entropy term in V(s')) is far outside the tolerance used below
        y_no_entropy = batch.rewards + gamma * (pi_next * qbar).sum(-1)
        q_loss_wrong = (0.5 * (q_taken - y_no_entropy) ** 2).mean(1).sum().item()
    assert abs(q_loss - q_loss_wrong) > 0.05
    assert q_loss == pytest.approx(q_loss_mc, abs=0.01)
    assert policy_loss == pytest.approx(policy_loss_mc, abs=0.01)


def test_terminated_transitions_do_not_bootstrap():
    agent, batch = _agent(), _batch(terminated=1.0)
    q1, q2 = (q.gather(1, batch.actions[:, None])[:, 0] for q in agent.q_net(batch.obs))
    expected = 0.5 * ((q1 - batch.rewards) ** 2).mean() + 0.5 * ((q2 - batch.rewards) ** 2).mean()
    q_loss, _, _ = discrete_sac_update(agent, batch, gamma=0.99, tau=0.005)
    assert q_loss == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("target, direction", [(math.log(N_ACTIONS), +1), (0.0, -1)])
def test_temperature_rises_below_the_target_entropy_and_falls_above_it(target, direction):
    """H_target = log|A| (uniform) is above every policy's entropy: alpha must grow; 0: shrink."""
    agent = _agent(target_entropy=target)
    before = agent.alpha
    for _ in range(5):
        discrete_sac_update(agent, _batch(), gamma=0.99, tau=0.005)
    assert np.sign(agent.alpha - before) == direction


# ----------------------------------------------------------------------------------------
# Configuration and bad input
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"target_entropy_ratio": 1.5}, "target_entropy_ratio must be in"),
        ({"alpha": 0.0}, "alpha .* must be positive"),
        ({"tau": 0.0}, "tau must be in"),
    ],
)
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DiscreteSACConfig(**kwargs)


def test_training_rejects_bad_input(cpu):
    with pytest.raises(TypeError, match="update must be a function"):
        train_discrete_sac(total_steps=10, update="discrete_sac_update", progress=False)
    with pytest.raises(ValueError, match="total_steps must be a positive integer"):
        train_discrete_sac(total_steps=0, progress=False)
    with pytest.raises(TypeError, match="discrete SAC needs discrete actions"):
        train_discrete_sac("Pendulum-v1", total_steps=10, progress=False)


# ----------------------------------------------------------------------------------------
# Short training runs
# ----------------------------------------------------------------------------------------
def _small_config(**kwargs) -> DiscreteSACConfig:
    defaults = dict(learning_starts=100, batch_size=32, eval_every=150, eval_episodes=2)
    return DiscreteSACConfig(**(defaults | kwargs))


def _same_parameters(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(
        torch.equal(p, q)
        for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_smoke_run_is_deterministic_and_the_reference_hook_reproduces_it(cpu):
    config = _small_config()
    threads = torch.get_num_threads()
    first, second = (
        train_discrete_sac("CartPole-v1", 300, seed=1, config=config, progress=False)
        for _ in range(2)
    )
    assert torch.get_num_threads() == threads  # the thread count is restored
    assert first.curve.steps == [150, 300]
    assert first.curve.returns == second.curve.returns
    assert first.diagnostics == second.diagnostics
    for name in ("policy", "q_net", "q_target"):
        assert _same_parameters(getattr(first, name), getattr(second, name))
    assert all(np.isfinite(v).all() for v in first.diagnostics.values())
    assert first.target_entropy == pytest.approx(config.target_entropy_ratio * math.log(2))
    assert first.alpha == first.diagnostics["alpha"][-1] != config.alpha
    assert first.final_eval.mean == first.curve.returns[-1] and first.train_seconds > 0
    hooked = train_discrete_sac(
        "CartPole-v1", 300, seed=1, config=config, progress=False, update=discrete_sac_update
    )
    assert hooked.curve.returns == first.curve.returns and _same_parameters(
        hooked.policy, first.policy
    )
    other = train_discrete_sac("CartPole-v1", 300, seed=2, config=config, progress=False)
    assert not _same_parameters(first.policy, other.policy)


def test_update_hook_is_called_once_per_learning_step(cpu):
    calls = []

    def counting(agent, batch, gamma, tau):
        calls.append((batch.obs.shape, gamma, tau))  # returns no losses: recorded as NaN

    config = _small_config(eval_every=None)
    run = train_discrete_sac(
        "CartPole-v1", 150, seed=0, config=config, progress=False, update=counting
    )
    assert len(calls) == 150 - config.learning_starts
    assert calls[0] == (torch.Size([32, 4]), config.gamma, config.tau)
    assert np.isnan(run.diagnostics["q_loss"]).all()
    assert np.isfinite(run.diagnostics["entropy"]).all()


def test_keep_best_scores_the_snapshot_on_held_out_episodes(cpu):
    config = _small_config(keep_best=True)
    run = train_discrete_sac("CartPole-v1", 300, seed=0, config=config, progress=False)
    best = int(np.argmax(run.curve.returns[::-1]))  # ties: the later evaluation
    assert run.best_step == run.curve.steps[::-1][best]
    held_out = evaluate(run.policy, "CartPole-v1", 2, seed=config.test_seed)
    np.testing.assert_array_equal(run.final_eval.returns, held_out.returns)
