"""course_utils.iq_learn: the IQ loss by hand, signs, terminals, the recovered reward, bad input, runs."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from course_utils.inference import soft_value_iteration
from course_utils.iq_learn import (
    IQCritic,
    IQLearnConfig,
    iq_loss,
    iq_update,
    recovered_reward,
    train_iq_learn,
)
from course_utils.rl import Batch, SquashedGaussianPolicy, mlp
from course_utils.rl.experts import CartPoleExpert, PendulumExpert, generate_demonstrations


def t(*values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def test_iq_loss_on_a_hand_computed_batch():
    # r = q - gamma (1 - term) next_v = [1 - 0.5 * 2, 2 - 0] = [0, 2]
    # loss = -mean_expert r + mean (v - gamma (1 - term) next_v) + mean r^2 / (4 * 0.5)
    #      = -0 + mean(1.5 - 1, 3 - 0) + mean(0, 4) / 2 = 1.75 + 1 = 2.75
    q, v, next_v, term = t(1.0, 2.0), t(1.5, 3.0), t(2.0, 4.0), t(0.0, 1.0)
    is_expert = torch.tensor([True, False])
    loss = iq_loss(q, v, next_v, term, is_expert, gamma=0.5, chi2_alpha=0.5)
    assert loss.ndim == 0
    assert loss.item() == pytest.approx(2.75)
    # the chi^2 weight scales the last term only: 1 / (4 * 2) * mean(0, 4) = 0.25
    assert iq_loss(q, v, next_v, term, is_expert, 0.5, chi2_alpha=2.0).item() == pytest.approx(2.0)


def test_iq_loss_signs_expert_rewards_up_values_down():
    q, v, next_v, term = t(0.1, 0.2), t(0.3, 0.4), t(0.5, 0.6), t(0.0, 0.0)
    is_expert = torch.tensor([True, False])
    q.requires_grad_(True)
    v.requires_grad_(True)
    loss = iq_loss(q, v, next_v, term, is_expert, gamma=0.9, chi2_alpha=1e6)  # ~ no regulariser
    loss.backward()
    # raising Q of the expert's transition lowers the loss (its reward goes up) ...
    assert q.grad[0].item() == pytest.approx(-1.0, abs=1e-5)
    # ... a policy transition's Q enters only the regulariser
    assert q.grad[1].item() == pytest.approx(0.0, abs=1e-5)
    # ... and V of the visited states is pushed down: d/dv mean(v - ...) = 1 / B
    np.testing.assert_allclose(v.grad.numpy(), [0.5, 0.5], atol=1e-6)


def test_offline_iq_loss_is_behaviour_cloning_plus_chi2():
    # with expert rows only, -E[Q - gamma V'] + E[V - gamma V'] = E[V - Q] = -alpha E[log pi_Q(a|s)]
    torch.manual_seed(0)
    alpha, gamma, chi2_alpha = 0.3, 0.95, 0.5
    q_all, next_q_all = torch.randn(6, 3), torch.randn(6, 3)
    actions = torch.tensor([0, 2, 1, 1, 0, 2])
    term = t(0, 0, 1, 0, 1, 0)
    q = q_all.gather(1, actions[:, None]).squeeze(1)
    v = alpha * torch.logsumexp(q_all / alpha, -1)
    next_v = alpha * torch.logsumexp(next_q_all / alpha, -1)
    loss = iq_loss(q, v, next_v, term, torch.ones(6, dtype=torch.bool), gamma, chi2_alpha)
    log_pi = torch.log_softmax(q_all / alpha, -1).gather(1, actions[:, None]).squeeze(1)
    r = q - gamma * (1 - term) * next_v
    expected = -alpha * log_pi.mean() + (r**2).mean() / (4 * chi2_alpha)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_terminal_transitions_ignore_the_next_value():
    q, v, term = t(1.0, 2.0, 3.0), t(0.5, 0.5, 0.5), t(1.0, 0.0, 1.0)
    is_expert = torch.tensor([True, True, False])
    a, b = t(10.0, 4.0, -7.0), t(-3.0, 4.0, 99.0)  # differ only where terminated
    np.testing.assert_allclose(recovered_reward(q, a, term, 0.9), recovered_reward(q, b, term, 0.9))
    np.testing.assert_allclose(recovered_reward(q, a, term, 0.9)[[0, 2]], [1.0, 3.0])
    assert iq_loss(q, v, a, term, is_expert, 0.9).item() == pytest.approx(
        iq_loss(q, v, b, term, is_expert, 0.9).item()
    )


def _tabular_critic(Q: np.ndarray, alpha: float) -> IQCritic:
    """A discrete critic whose Q(s, .) is the table Q for one-hot observations."""
    S, A = Q.shape
    net = nn.Linear(S, A, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.as_tensor(Q.T, dtype=torch.float32))
    return IQCritic(net, alpha)


def test_recovered_reward_inverts_the_soft_bellman_equation():
    # deterministic MDP: s' = (s + a + 1) mod S; Q from soft value iteration with a known R
    rng = np.random.default_rng(0)
    S, A, gamma, alpha = 5, 3, 0.9, 0.5
    P = np.zeros((S, A, S))
    for s in range(S):
        for a in range(A):
            P[s, a, (s + a + 1) % S] = 1.0
    R = rng.normal(size=(S, A))
    Q, V = soft_value_iteration(P, R, gamma=gamma, alpha=alpha)
    critic = _tabular_critic(Q, alpha)
    s, a = np.repeat(np.arange(S), A), np.tile(np.arange(A), S)
    eye = torch.eye(S)
    batch = Batch(
        obs=eye[s],
        actions=torch.as_tensor(a),
        rewards=torch.zeros(S * A),
        next_obs=eye[(s + a + 1) % S],
        terminated=torch.zeros(S * A),
    )
    np.testing.assert_allclose(critic.v(eye).detach().numpy(), V, atol=1e-5)
    np.testing.assert_allclose(critic.reward(batch, gamma).numpy(), R[s, a], atol=1e-4)
    # a terminated transition's reward is Q(s, a) itself
    done = batch._replace(terminated=torch.ones(S * A))
    np.testing.assert_allclose(critic.reward(done, gamma).numpy(), Q[s, a], atol=1e-5)


def test_continuous_critic_value_and_reward_are_deterministic():
    torch.manual_seed(0)
    actor = SquashedGaussianPolicy(3, 1, -2.0, 2.0, (16,))
    critic = IQCritic(mlp(4, 1, (16,)), alpha=0.1, actor=actor)
    obs = torch.randn(7, 3)
    batch = Batch(obs, torch.rand(7, 1) * 4 - 2, torch.zeros(7), torch.randn(7, 3), torch.zeros(7))
    state = torch.get_rng_state()
    r1, r2 = critic.reward(batch, 0.99), critic.reward(batch, 0.99)
    assert torch.equal(r1, r2) and r1.shape == (7,)
    assert torch.equal(state, torch.get_rng_state())  # the caller's random stream is left alone
    assert critic.v(obs).shape == (7,)


def test_bad_inputs_get_clear_errors():
    q, term = t(1.0, 2.0), t(0.0, 0.0)
    yes = torch.tensor([True, False])
    with pytest.raises(ValueError, match="next_v has 3 entries"):
        recovered_reward(q, t(1.0, 2.0, 3.0), term, 0.9)
    with pytest.raises(ValueError, match="gamma"):
        recovered_reward(q, q, term, 1.5)
    with pytest.raises(ValueError, match="NaN"):
        iq_loss(t(1.0, float("nan")), q, q, term, yes, 0.9)
    with pytest.raises(ValueError, match="bool"):
        iq_loss(q, q, q, term, t(1.0, 0.0), 0.9)
    with pytest.raises(ValueError, match="no expert"):
        iq_loss(q, q, q, term, torch.tensor([False, False]), 0.9)
    with pytest.raises(ValueError, match="chi2_alpha"):
        iq_loss(q, q, q, term, yes, 0.9, chi2_alpha=0.0)
    with pytest.raises(ValueError, match=r"shape \(B,\)"):
        iq_loss(q[:, None], q, q, term, yes, 0.9)
    with pytest.raises(ValueError, match="alpha must be positive"):
        IQCritic(nn.Linear(2, 2), alpha=0.0)


@pytest.fixture(scope="module")
def cartpole_demos():
    return generate_demonstrations(CartPoleExpert(), "CartPole-v1", 1, seed=0).transitions


def test_train_rejects_bad_arguments(cartpole_demos):
    with pytest.raises(ValueError, match=r"expert\.obs must have shape"):
        train_iq_learn("CartPole-v1", cartpole_demos._replace(obs=cartpole_demos.obs[:, :3]), 10)
    with pytest.raises(ValueError, match="integers"):
        bad = cartpole_demos._replace(actions=cartpole_demos.actions.float())
        train_iq_learn("CartPole-v1", bad, 10)
    with pytest.raises(ValueError, match="total_steps"):
        train_iq_learn("CartPole-v1", cartpole_demos, 0)
    with pytest.raises(ValueError, match="Batch"):
        train_iq_learn("CartPole-v1", cartpole_demos.obs, 10)
    with pytest.raises(TypeError, match="update must be a function"):
        train_iq_learn("CartPole-v1", cartpole_demos, 10, update=3)
    with pytest.raises(ValueError, match="learning_starts"):
        train_iq_learn("CartPole-v1", cartpole_demos, 10, config=IQLearnConfig(online=True))


def test_offline_cartpole_run_is_deterministic_and_uses_the_hook(cartpole_demos):
    cfg = IQLearnConfig(eval_every=None, eval_episodes=1, lr_decay=True)
    calls = []

    def hook(critic, optimizer, expert, policy, gamma, chi2_alpha):
        calls.append(policy is None)
        return iq_update(critic, optimizer, expert, policy, gamma, chi2_alpha)

    a = train_iq_learn("CartPole-v1", cartpole_demos, 40, seed=3, config=cfg, update=hook)
    b = train_iq_learn("CartPole-v1", cartpole_demos, 40, seed=3, config=cfg)
    assert calls == [True] * 40  # offline: one step per gradient step, no policy batch
    assert a.curve.returns == b.curve.returns and a.curve.steps == [40]
    for pa, pb in zip(a.critic.parameters(), b.critic.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not a.online and a.env_steps == 0 and a.buffer is None
    r = a.reward_fn(cartpole_demos)
    assert r.shape == cartpole_demos.rewards.shape and torch.isfinite(r).all()


def test_online_pendulum_smoke_run():
    demos = generate_demonstrations(PendulumExpert(), "Pendulum-v1", 1, seed=0).transitions
    cfg = IQLearnConfig(
        learning_starts=50, batch_size=32, eval_every=None, eval_episodes=1, twin_q=True
    )
    res = train_iq_learn("Pendulum-v1", demos, 120, seed=0, config=cfg)
    assert res.online and res.env_steps == 120 and len(res.buffer) == 120
    assert np.isfinite(res.diagnostics["policy_reward"][-1])
    assert len(res.critic.q_heads(demos.obs[:5], demos.actions[:5])) == 2  # twin critics
    assert res.reward_fn(demos).shape == (len(demos.rewards),)


def _pendulum_like_critic(seed=0):
    torch.manual_seed(seed)
    actor = SquashedGaussianPolicy(3, 1, -2.0, 2.0, (16,))
    critic = IQCritic(mlp(4, 1, (16,)), alpha=0.1, actor=actor)
    n = 6
    batch = Batch(
        torch.randn(n, 3),
        torch.rand(n, 1) * 4 - 2,
        torch.zeros(n),
        torch.randn(n, 3),
        torch.zeros(n),
    )
    return critic, batch


def test_target_critic_gives_v_next_without_gradient():
    critic, batch = _pendulum_like_critic()
    critic.target_q_net = copy.deepcopy(critic.q_net).requires_grad_(False)
    torch.manual_seed(1)
    v_target = critic.next_v(batch.next_obs)
    torch.manual_seed(1)
    v_online = critic.v(batch.next_obs)
    assert not v_target.requires_grad and v_online.requires_grad
    torch.testing.assert_close(v_target, v_online.detach())  # same weights, same actor draw
    with torch.no_grad():  # moving the online critic leaves the target's V(s') alone
        for p in critic.q_net.parameters():
            p.add_(1.0)
    torch.manual_seed(1)
    torch.testing.assert_close(critic.next_v(batch.next_obs), v_target)


def test_fresh_policy_actions_replace_the_policy_rows_q():
    critic, batch = _pendulum_like_critic()
    critic.fresh_policy_actions = True
    expert, policy = Batch(*(x[:2] for x in batch)), Batch(*(x[2:] for x in batch))
    opt = torch.optim.SGD(critic.q_net.parameters(), lr=0.0)
    torch.manual_seed(5)
    loss = iq_update(critic, opt, expert, policy, 0.9, 0.5)
    torch.manual_seed(5)  # the same draws, in iq_update's order: V(s), V(s'), fresh actions
    v, next_v = critic.v(batch.obs), critic.v(batch.next_obs)
    fresh, _ = critic.actor(policy.obs)
    q = torch.cat([critic.q(expert.obs, expert.actions), critic.q(policy.obs, fresh)])
    is_expert = torch.tensor([True, True, False, False, False, False])
    expected = iq_loss(q, v, next_v, batch.terminated, is_expert, 0.9, 0.5)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    critic.fresh_policy_actions = False  # the buffer's actions give another loss
    torch.manual_seed(5)
    assert iq_update(critic, opt, expert, policy, 0.9, 0.5).item() != pytest.approx(loss.item())


def test_online_run_with_a_target_critic():
    demos = generate_demonstrations(PendulumExpert(), "Pendulum-v1", 1, seed=0).transitions
    base = dict(learning_starts=50, batch_size=32, eval_every=None, eval_episodes=1)
    res = train_iq_learn("Pendulum-v1", demos, 80, config=IQLearnConfig(**base, target_tau=1.0))
    for p_t, p in zip(
        res.critic.target_q_net.parameters(), res.critic.q_net.parameters(), strict=True
    ):
        assert torch.equal(p_t, p)  # tau 1: a copy after every step
    res = train_iq_learn("Pendulum-v1", demos, 80, config=IQLearnConfig(**base, target_tau=0.01))
    gaps = [
        (p_t - p).abs().max().item()
        for p_t, p in zip(
            res.critic.target_q_net.parameters(), res.critic.q_net.parameters(), strict=True
        )
    ]
    assert max(gaps) > 0  # tau 0.01: the target lags behind
    with pytest.raises(ValueError, match="target_tau"):
        train_iq_learn("Pendulum-v1", demos, 80, config=IQLearnConfig(**base, target_tau=0.0))
