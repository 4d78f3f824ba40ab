"""Tests of course_utils.rl: buffer, networks, losses, evaluation and short training runs."""

from __future__ import annotations

import copy
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import AffineTransform, Normal, TanhTransform, TransformedDistribution

from course_utils.rl import (
    relabel,
    BoltzmannPolicy,
    QNetwork,
    ReplayBuffer,
    SACConfig,
    SoftDQNConfig,
    SquashedGaussianPolicy,
    TwinQNetwork,
    ValueNetwork,
    boltzmann_probs,
    boltzmann_sample,
    evaluate,
    mlp,
    polyak_update,
    q_learning_loss,
    sac_policy_loss,
    sac_q_loss,
    sac_value_loss,
    sac_value_target,
    soft_q_target,
    soft_value,
    temperature_loss,
    train_dqn,
    train_sac,
    train_soft_dqn,
)


# ----------------------------------------------------------------------------------------
# Replay buffer
# ----------------------------------------------------------------------------------------
def test_buffer_wraps_around_and_overwrites_the_oldest():
    buffer = ReplayBuffer(capacity=5, obs_shape=(2,), action_shape=(), action_dtype=np.int64)
    for i in range(7):
        buffer.add([i, -i], i % 3, float(i), [i + 1, -i - 1], i == 6)
    assert len(buffer) == 5 and buffer.pos == 2
    # slots 0 and 1 now hold transitions 5 and 6; 2..4 still hold 2..4
    np.testing.assert_array_equal(buffer.rewards, [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(buffer.obs[:, 0], [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(buffer.next_obs[:, 0], [6, 7, 3, 4, 5])
    np.testing.assert_array_equal(buffer.terminated, [0, 1, 0, 0, 0])
    batch = buffer.sample(1000)
    assert set(batch.rewards.tolist()) == {2.0, 3.0, 4.0, 5.0, 6.0}


def test_buffer_sample_shapes_dtypes_device_and_consistency():
    buffer = ReplayBuffer(100, obs_shape=(3,), action_shape=(2,), device="cpu", seed=0)
    for i in range(10):
        buffer.add(np.full(3, i), np.full(2, -i), float(i), np.full(3, i + 0.5), i % 2 == 0)
    batch = buffer.sample(32)
    assert batch.obs.shape == (32, 3) and batch.next_obs.shape == (32, 3)
    assert batch.actions.shape == (32, 2) and batch.rewards.shape == (32,)
    assert batch.terminated.shape == (32,)
    for tensor in batch:
        assert tensor.dtype == torch.float32 and tensor.device.type == "cpu"
    # the fields of a sampled row belong to the same transition
    i = batch.rewards
    torch.testing.assert_close(batch.obs[:, 0], i)
    torch.testing.assert_close(batch.actions[:, 0], -i)
    torch.testing.assert_close(batch.next_obs[:, 0], i + 0.5)
    torch.testing.assert_close(batch.terminated, (i % 2 == 0).float())
    # sampling does not alias the storage
    batch.obs.add_(100.0)
    assert buffer.obs.max() < 10
    # seeded sampling is reproducible
    a = ReplayBuffer(10, (1,), seed=3)
    b = ReplayBuffer(10, (1,), seed=3)
    for buf in (a, b):
        for k in range(10):
            buf.add([k], 0.0, 0.0, [k], False)
    torch.testing.assert_close(a.sample(8).obs, b.sample(8).obs)


def test_buffer_for_env_and_empty_sample():
    discrete = ReplayBuffer.for_env(gym.make("CartPole-v1"), capacity=10)
    assert discrete.obs.shape == (10, 4) and discrete.actions.shape == (10,)
    assert discrete.actions.dtype == np.int64
    continuous = ReplayBuffer.for_env(gym.make("Pendulum-v1"), capacity=10)
    assert continuous.actions.shape == (10, 1) and continuous.actions.dtype == np.float32
    with pytest.raises(ValueError, match="empty"):
        discrete.sample(4)
    discrete.add(np.zeros(4), 1, 1.0, np.zeros(4), False)
    assert discrete.sample(4).actions.dtype == torch.int64


def test_terminated_and_truncated_transitions_are_stored_differently():
    """The loop of the agents: a time-out bootstraps (terminated = 0), a failure does not."""
    env = gym.make("CartPole-v1", max_episode_steps=3)  # truncates after 3 steps
    buffer = ReplayBuffer.for_env(env, capacity=100)
    flags = []
    for episode in range(2):
        obs, _ = env.reset(seed=episode)
        while True:
            # episode 0: alternate pushes (survives, so it is truncated); episode 1: push right
            action = (len(flags) % 2) if episode == 0 else 1
            next_obs, reward, terminated, truncated, _ = env.step(action)
            buffer.add(obs, action, reward, next_obs, terminated)
            flags.append((terminated, truncated))
            last_next_obs = next_obs
            obs = next_obs
            if terminated or truncated:
                break
        if episode == 0:
            assert flags[-1] == (False, True)
            assert buffer.terminated[buffer.pos - 1] == 0.0  # time-out: bootstrap from s'
            # s' is the real last observation, not the reset observation of the next episode
            np.testing.assert_array_equal(buffer.next_obs[buffer.pos - 1], last_next_obs)
    # episode 1 ran into the time limit too (3 steps): use a longer limit to see termination
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=0)
    buffer = ReplayBuffer.for_env(env, capacity=100)
    terminated = False
    while not terminated:
        next_obs, reward, terminated, truncated, _ = env.step(1)  # always push right: falls over
        buffer.add(obs, 1, reward, next_obs, terminated)
        obs = next_obs
    assert buffer.terminated[buffer.pos - 1] == 1.0
    assert buffer.terminated[: buffer.pos - 1].sum() == 0.0
    # and the soft target uses the flag: no bootstrap through termination only
    batch_next_q = torch.full((2, 2), 10.0)
    targets = soft_q_target(batch_next_q, torch.ones(2), torch.tensor([0.0, 1.0]), 0.9, 0.0)
    torch.testing.assert_close(targets, torch.tensor([1.0 + 0.9 * 10.0, 1.0]))


# ----------------------------------------------------------------------------------------
# Networks
# ----------------------------------------------------------------------------------------
def test_network_shapes():
    torch.manual_seed(0)
    assert len(mlp(3, 2, (8, 8, 8))) == 7
    obs, act = torch.randn(5, 3), torch.randn(5, 2)
    assert QNetwork(3, 4, (16,))(obs).shape == (5, 4)
    q1, q2 = TwinQNetwork(3, 2, (16,))(obs, act)
    assert q1.shape == q2.shape == (5,) and not torch.allclose(q1, q2)
    assert ValueNetwork(3, (16,))(obs).shape == (5,)
    policy = SquashedGaussianPolicy(3, 2, -2.0, 2.0, (16,))
    action, log_prob = policy(obs)
    assert action.shape == (5, 2) and log_prob.shape == (5,)
    assert policy.act(obs).shape == (5, 2) and policy.act(obs, deterministic=False).shape == (5, 2)


def _policy_with_output(mean: float | list, log_std: float | list, low=-2.0, high=2.0):
    """A 1-input policy whose mu and log sigma are fixed (last layer weights zero)."""
    mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
    log_std = torch.as_tensor(log_std, dtype=torch.float32).reshape(-1)
    policy = SquashedGaussianPolicy(1, len(mean), low, high, hidden_sizes=(4,))
    with torch.no_grad():
        policy.net[-1].weight.zero_()
        policy.net[-1].bias.copy_(torch.cat([mean, log_std]))
    return policy


def test_squashed_gaussian_matches_torch_transformed_distribution():
    torch.manual_seed(0)
    policy = SquashedGaussianPolicy(3, 2, np.array([-2.0, 0.0]), np.array([2.0, 1.0]), (32,))
    obs = torch.randn(1000, 3)
    action, log_prob = policy(obs)
    dist = policy.distribution(obs)
    reference = TransformedDistribution(
        dist,
        [TanhTransform(cache_size=1), AffineTransform(policy.action_center, policy.action_scale)],
    )
    # sample u, push it through the same transforms, compare the log-densities of the same a
    u = dist.rsample()
    a = reference.transforms[1](reference.transforms[0](u))
    ours = dist.log_prob(u).sum(-1) - policy._log_det_jacobian(u)
    torch.testing.assert_close(ours, reference.log_prob(a).sum(-1), atol=1e-4, rtol=1e-4)
    # forward's sample is within the bounds and log_prob(obs, a) recovers forward's log_prob
    assert (
        (action[:, 0].abs() <= 2).all() and (action[:, 1] >= 0).all() and (action[:, 1] <= 1).all()
    )
    inside = (torch.tanh(policy.distribution(obs).mean).abs() < 0.99).all(-1)
    torch.testing.assert_close(
        policy.log_prob(obs, action)[inside], log_prob[inside], atol=2e-3, rtol=1e-3
    )


def test_squashed_gaussian_log_prob_is_the_change_of_variables_density():
    mu, log_sigma, low, high = 0.3, math.log(0.8), -2.0, 2.0
    policy = _policy_with_output(mu, log_sigma, low, high)
    obs = torch.zeros(1, 1)
    # analytic: p_a(a) = N(u; mu, sigma) / |da/du| with a = 2 tanh(u), da/du = 2 (1 - tanh(u)^2)
    u = torch.linspace(-4, 4, 81)
    a = 2.0 * torch.tanh(u)
    analytic = Normal(mu, math.exp(log_sigma)).log_prob(u) - torch.log(
        2.0 * (1 - torch.tanh(u) ** 2)
    )
    ours = policy.log_prob(obs.expand(81, 1), a.unsqueeze(-1))
    torch.testing.assert_close(ours, analytic, atol=1e-3, rtol=1e-4)
    # the density integrates to one over [low, high] (trapezoid rule on a fine grid)
    grid = torch.linspace(low + 1e-4, high - 1e-4, 20001)
    density = policy.log_prob(obs.expand(len(grid), 1), grid.unsqueeze(-1)).exp()
    assert torch.trapezoid(density, grid).item() == pytest.approx(1.0, abs=2e-3)
    # Monte Carlo: P(a in [0, 1]) from samples matches the integral of exp(log_prob)
    torch.manual_seed(1)
    samples, _ = policy(obs.expand(200_000, 1))
    frequency = ((samples >= 0) & (samples <= 1)).float().mean().item()
    part = (grid >= 0) & (grid <= 1)
    assert frequency == pytest.approx(torch.trapezoid(density[part], grid[part]).item(), abs=5e-3)


def test_squashed_gaussian_log_prob_is_stable_for_saturated_actions():
    policy = _policy_with_output(20.0, math.log(0.1), -1.0, 1.0)  # tanh(20) == 1 in float32
    action, log_prob = policy(torch.zeros(4, 1))
    naive = Normal(20.0, 0.1).log_prob(torch.tensor(20.0)) - torch.log(
        1 - torch.tanh(torch.tensor(20.0)) ** 2
    )
    assert not torch.isfinite(naive)  # what the textbook formula gives
    assert torch.isfinite(log_prob).all() and (action == 1.0).all()
    # log(1 - tanh(u)^2) ~ log 4 - 2|u| for large |u|: log pi ~ log N(u) - log 4 + 2 u
    u = torch.tensor([[20.0]])
    expected = Normal(20.0, 0.1).log_prob(u).sum(-1) - math.log(4.0) + 40.0
    torch.testing.assert_close(
        policy.distribution(torch.zeros(1, 1)).log_prob(u).sum(-1) - policy._log_det_jacobian(u),
        expected,
    )


def test_squashed_gaussian_is_reparameterised_and_deterministic_mode_is_the_mean():
    torch.manual_seed(0)
    policy = SquashedGaussianPolicy(3, 2, -1.0, 1.0, (16,))
    obs = torch.randn(8, 3)
    action, _log_prob = policy(obs)
    action.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.net.parameters())
    mean = policy.distribution(obs).mean
    torch.testing.assert_close(policy(obs, deterministic=True)[0], torch.tanh(mean))
    torch.testing.assert_close(policy.act(obs, deterministic=True), torch.tanh(mean))


# ----------------------------------------------------------------------------------------
# Soft Q-learning pieces
# ----------------------------------------------------------------------------------------
def test_soft_value_and_target_tend_to_the_hard_max():
    torch.manual_seed(0)
    next_q = 10 * torch.randn(16, 3)
    reward, terminated = torch.randn(16), (torch.rand(16) < 0.3).float()
    hard = reward + 0.99 * (1 - terminated) * next_q.max(-1).values
    torch.testing.assert_close(soft_q_target(next_q, reward, terminated, 0.99, 0.0), hard)
    for alpha in (1.0, 0.1, 1e-3):
        soft = soft_q_target(next_q, reward, terminated, 0.99, alpha)
        gap = soft - hard  # in [0, gamma * alpha * log A] where not terminated
        assert (gap >= -1e-5).all() and (gap <= 0.99 * alpha * math.log(3) + 1e-5).all()
        torch.testing.assert_close(soft[terminated == 1], reward[terminated == 1])
    torch.testing.assert_close(
        soft_q_target(next_q, reward, terminated, 0.99, 1e-4), hard, atol=1e-3, rtol=0
    )
    # alpha = 1: the slides' log sum exp
    torch.testing.assert_close(soft_value(next_q, 1.0), torch.log(torch.exp(next_q).sum(-1)))
    # stays finite for large Q and small alpha
    assert torch.isfinite(soft_value(torch.tensor([[1e3, -1e3]]), 1e-3)).all()


def test_soft_target_has_no_gradient():
    next_q = torch.randn(4, 2, requires_grad=True)
    target = soft_q_target(next_q, torch.zeros(4), torch.zeros(4), 0.9, 0.5)
    assert not target.requires_grad
    q = torch.randn(4, requires_grad=True)
    q_learning_loss(q, target).backward()
    torch.testing.assert_close(q.grad, (q - target).detach() / 4)
    assert next_q.grad is None


def test_boltzmann_policy():
    q = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [1e3, -1e3, 0.0]])
    for alpha in (0.5, 1.0, 1e-3):
        probs = boltzmann_probs(q, alpha)
        torch.testing.assert_close(probs, torch.softmax(q / alpha, -1))
        torch.testing.assert_close(probs.sum(-1), torch.ones(3))
    torch.manual_seed(0)
    draws = boltzmann_sample(q[:1].expand(20_000, 3), 1.0)
    frequencies = torch.bincount(draws, minlength=3).float() / 20_000
    torch.testing.assert_close(frequencies, boltzmann_probs(q[:1], 1.0)[0], atol=0.015, rtol=0)
    q_net = QNetwork(2, 3, (8,))
    obs = torch.randn(6, 2)
    greedy = BoltzmannPolicy(q_net, alpha=0.1).act(obs, deterministic=True)
    torch.testing.assert_close(greedy, q_net(obs).argmax(-1))
    torch.testing.assert_close(
        BoltzmannPolicy(q_net, alpha=0.0).act(obs, deterministic=False), greedy
    )


def test_huber_loss_option():
    q, y = torch.tensor([0.0, 0.0]), torch.tensor([0.5, 3.0])
    assert q_learning_loss(q, y).item() == pytest.approx(0.5 * (0.25 + 9) / 2)
    assert q_learning_loss(q, y, huber=True).item() == pytest.approx((0.5 * 0.25 + 2.5) / 2)


# ----------------------------------------------------------------------------------------
# SAC losses on a fixed batch
# ----------------------------------------------------------------------------------------
def test_sac_losses_against_hand_computations():
    v = torch.tensor([1.0, 2.0], requires_grad=True)
    q1_new = torch.tensor([3.0, 0.0], requires_grad=True)
    q2_new = torch.tensor([2.0, 1.0], requires_grad=True)
    log_prob = torch.tensor([-1.0, 0.5], requires_grad=True)
    alpha = 0.2
    # V target: min Q - alpha log pi = [2 + 0.2, 0 - 0.1] = [2.2, -0.1]
    torch.testing.assert_close(
        sac_value_target(q1_new, q2_new, log_prob, alpha), torch.tensor([2.2, -0.1])
    )
    # J_V = mean 1/2 (v - target)^2 = (0.5 * 1.2^2 + 0.5 * 2.1^2) / 2
    value_loss = sac_value_loss(v, q1_new, q2_new, log_prob, alpha)
    assert value_loss.item() == pytest.approx((0.5 * 1.44 + 0.5 * 4.41) / 2)
    value_loss.backward()
    torch.testing.assert_close(v.grad, torch.tensor([-1.2, 2.1]) / 2)
    assert (
        q1_new.grad is None and q2_new.grad is None and log_prob.grad is None
    )  # no gradient into Q, pi

    # J_Q: targets r + gamma (1 - terminated) V(s') = [1 + 0.9 * 5, -1] (second one terminated)
    q1 = torch.tensor([4.0, 0.0], requires_grad=True)
    q2 = torch.tensor([6.0, -2.0], requires_grad=True)
    next_value = torch.tensor([5.0, 7.0], requires_grad=True)
    q_loss = sac_q_loss(
        q1, q2, torch.tensor([1.0, -1.0]), torch.tensor([0.0, 1.0]), next_value, 0.9
    )
    expected = 0.5 * ((4 - 5.5) ** 2 + 1**2) / 2 + 0.5 * ((6 - 5.5) ** 2 + 1**2) / 2
    assert q_loss.item() == pytest.approx(expected)
    q_loss.backward()
    torch.testing.assert_close(q1.grad, torch.tensor([-1.5, 1.0]) / 2)
    torch.testing.assert_close(q2.grad, torch.tensor([0.5, -1.0]) / 2)
    assert next_value.grad is None

    # J_pi = mean(alpha log pi - min Q) = mean([-0.2 - 2, 0.1 - 0]) = -1.05
    log_prob = torch.tensor([-1.0, 0.5], requires_grad=True)
    policy_loss = sac_policy_loss(log_prob, q1_new, q2_new, alpha)
    assert policy_loss.item() == pytest.approx(-1.05)
    policy_loss.backward()
    torch.testing.assert_close(log_prob.grad, torch.tensor([0.1, 0.1]))
    torch.testing.assert_close(q2_new.grad, torch.tensor([-0.5, 0.0]))  # min picks q2 then q1
    torch.testing.assert_close(q1_new.grad, torch.tensor([0.0, -0.5]))


def test_temperature_loss_raises_alpha_when_entropy_is_too_low():
    log_alpha = torch.tensor(math.log(0.5), requires_grad=True)
    log_prob = torch.tensor([2.0, 1.0], requires_grad=True)  # entropy estimate -1.5 < target -1
    loss = temperature_loss(log_alpha, log_prob, target_entropy=-1.0)
    assert loss.item() == pytest.approx(-0.5 * ((2 - 1) + (1 - 1)) / 2)
    loss.backward()
    assert log_alpha.grad.item() == pytest.approx(-0.25)  # descent increases log alpha
    assert log_prob.grad is None
    log_alpha.grad = None
    temperature_loss(log_alpha, torch.tensor([0.0, 0.0]), target_entropy=-1.0).backward()
    assert log_alpha.grad.item() > 0  # entropy 0 > -1: descent lowers alpha


def test_polyak_update_direction_and_no_gradient_into_targets():
    torch.manual_seed(0)
    source = ValueNetwork(3, (8,))
    target = copy.deepcopy(source).requires_grad_(False)
    with torch.no_grad():
        for p in target.parameters():
            p.zero_()
    before = [p.clone() for p in source.parameters()]
    polyak_update(target, source, tau=0.1)
    for t, s, b in zip(target.parameters(), source.parameters(), before, strict=True):
        torch.testing.assert_close(t, 0.1 * s)  # (1 - tau) * 0 + tau * source
        torch.testing.assert_close(s, b)  # the source is untouched
        assert not t.requires_grad
    polyak_update(target, source, tau=1.0)
    for t, s in zip(target.parameters(), source.parameters(), strict=True):
        assert torch.equal(t, s)
    # a critic loss through the target network trains the online network only
    obs = torch.randn(5, 3)
    loss = sac_q_loss(source(obs), source(obs), torch.ones(5), torch.zeros(5), target(obs), 0.9)
    loss.backward()
    assert all(p.grad is None for p in target.parameters())
    assert all(p.grad is not None for p in source.parameters())


# ----------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------
def test_evaluate_is_deterministic_for_a_seed_and_leaves_the_global_rng_alone():
    torch.manual_seed(0)
    policy = SquashedGaussianPolicy(3, 1, -2.0, 2.0, (16,))
    torch.manual_seed(123)
    expected_next_draw = torch.rand(3)
    torch.manual_seed(123)
    first = evaluate(policy, "Pendulum-v1", n_episodes=3, seed=7, deterministic=False)
    assert torch.equal(torch.rand(3), expected_next_draw)  # evaluation used a forked RNG
    second = evaluate(policy, "Pendulum-v1", n_episodes=3, seed=7, deterministic=False)
    np.testing.assert_array_equal(first.returns, second.returns)
    other = evaluate(policy, "Pendulum-v1", n_episodes=3, seed=8, deterministic=False)
    assert not np.array_equal(first.returns, other.returns)
    deterministic = evaluate(policy, "Pendulum-v1", n_episodes=3, seed=7)
    assert not np.array_equal(first.returns, deterministic.returns)
    assert first.lengths.tolist() == [200, 200, 200]
    assert first.mean == pytest.approx(first.returns.mean()) and first.std >= 0


def test_evaluate_matches_sequential_episodes_and_accepts_functions():
    """Episode i is exactly the episode reset with seed + i, whatever runs beside it."""
    returns = evaluate(
        lambda obs: (obs[:, 2] > 0).long(), "CartPole-v1", n_episodes=4, seed=3
    ).returns
    for i in range(4):
        env = gym.make("CartPole-v1")
        obs, _ = env.reset(seed=3 + i)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(int(obs[2] > 0))
            total += reward
            done = terminated or truncated
        assert returns[i] == total


# ----------------------------------------------------------------------------------------
# Short training runs: end to end, deterministic for a seed on CPU
# ----------------------------------------------------------------------------------------
@pytest.fixture
def cpu(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")


def _same_parameters(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(
        torch.equal(p, q)
        for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


@pytest.mark.parametrize("alpha", [0.05, 0.0])
def test_soft_dqn_smoke_run_is_deterministic(cpu, alpha):
    config = SoftDQNConfig(
        learning_starts=100, eval_every=150, eval_episodes=2, target_update_every=50
    )
    threads = torch.get_num_threads()
    runs = [
        train_soft_dqn("CartPole-v1", 300, seed=1, alpha=alpha, config=config, progress=False)
        for _ in range(2)
    ]
    assert torch.get_num_threads() == threads  # the thread count is restored
    first, second = runs
    assert first.curve.steps == [150, 300]
    assert first.curve.returns == second.curve.returns
    assert _same_parameters(first.q_net, second.q_net)
    assert first.diagnostics == second.diagnostics
    assert np.isfinite(first.diagnostics["loss"]).all()
    assert first.train_seconds > 0 and first.final_eval.mean == first.curve.returns[-1]
    other = train_soft_dqn("CartPole-v1", 300, seed=2, alpha=alpha, config=config, progress=False)
    assert not _same_parameters(first.q_net, other.q_net)


def test_train_dqn_is_soft_dqn_with_alpha_zero(cpu):
    config = SoftDQNConfig(learning_starts=50, eval_every=None, eval_episodes=1)
    result = train_dqn("CartPole-v1", 100, seed=0, config=config, progress=False)
    assert result.alpha == 0.0 and result.policy.alpha == 0.0


@pytest.mark.parametrize("variant", ["v", "auto_alpha"])
def test_sac_smoke_run_is_deterministic(cpu, variant):
    config = SACConfig(
        learning_starts=100, batch_size=32, hidden_sizes=(32, 32), eval_every=150, eval_episodes=2
    )
    runs = [
        train_sac("Pendulum-v1", 300, seed=0, variant=variant, config=config, progress=False)
        for _ in range(2)
    ]
    first, second = runs
    assert first.curve.steps == [150, 300]
    assert first.curve.returns == second.curve.returns
    assert _same_parameters(first.policy, second.policy)
    assert _same_parameters(first.q_net, second.q_net)
    assert first.diagnostics == second.diagnostics
    if variant == "v":
        assert first.value_net is not None and first.q_target is None
        assert first.alpha == config.alpha
    else:
        assert first.value_net is None and first.q_target is not None
        assert first.alpha != config.alpha  # learned
        assert not _same_parameters(first.q_target, first.q_net)  # Polyak-averaged, lagging


def test_sac_rejects_unknown_variant():
    with pytest.raises(ValueError, match="variant"):
        train_sac(variant="twin", total_steps=1)


def _small_sac_config(**kwargs):
    return SACConfig(
        learning_starts=100,
        batch_size=32,
        hidden_sizes=(32, 32),
        eval_every=150,
        eval_episodes=2,
        **kwargs,
    )


def test_sac_update_hook_with_the_reference_step_reproduces_the_plain_run(cpu):
    """update=sac_update (the public reference step) is exactly what train_sac does itself, and a
    probe is called at every evaluation after the warm-up with the named networks."""
    from course_utils.rl import SACAgent, sac_update

    seen = []

    def probe(networks, alpha):
        seen.append(sorted(networks))
        return {"probe_value": float(len(seen))}

    config = _small_sac_config()
    plain = train_sac("Pendulum-v1", 300, seed=0, config=config, progress=False)
    hooked = train_sac(
        "Pendulum-v1", 300, seed=0, config=config, progress=False, update=sac_update, probe=probe
    )
    assert hooked.curve.returns == plain.curve.returns
    assert _same_parameters(hooked.policy, plain.policy)
    assert _same_parameters(hooked.value_target, plain.value_target)
    assert hooked.diagnostics["q_loss"] == plain.diagnostics["q_loss"]
    assert seen == [["policy", "q_net", "value_net"]] * 2  # at steps 150 and 300 (after warm-up)
    assert hooked.diagnostics["probe_value"] == [1.0, 2.0]

    calls = []

    def counting(agent, batch, alpha, gamma, tau):
        assert isinstance(agent, SACAgent) and batch.obs.shape == (32, 3)
        calls.append((alpha, gamma, tau))
        return None  # no losses returned: recorded as NaN

    run = train_sac("Pendulum-v1", 150, seed=0, config=config, progress=False, update=counting)
    assert len(calls) == 50 and calls[0] == (0.1, 0.99, 0.005)
    assert np.isnan(run.diagnostics["q_loss"][-1])


def test_sac_hooks_need_variant_v_and_a_function():
    with pytest.raises(ValueError, match="variant='v'"):
        train_sac(variant="auto_alpha", total_steps=1, update=lambda *args: None)
    with pytest.raises(TypeError, match="function"):
        train_sac(total_steps=1, update="sac_update")


def test_sac_no_v_variant_and_single_critic(cpu):
    """no_v: target critics and a fixed alpha; twin_q=False changes the run (Q_theta1 alone)."""
    config = _small_sac_config()
    no_v = train_sac("Pendulum-v1", 300, seed=0, variant="no_v", config=config, progress=False)
    assert no_v.value_net is None and no_v.q_target is not None
    assert no_v.alpha == config.alpha
    assert not _same_parameters(no_v.q_target, no_v.q_net)
    twin = train_sac("Pendulum-v1", 300, seed=0, config=config, progress=False)
    single = train_sac(
        "Pendulum-v1", 300, seed=0, config=_small_sac_config(twin_q=False), progress=False
    )
    assert not _same_parameters(twin.policy, single.policy)


def test_pendulum_step_matches_gymnasium_and_q_bias_is_deterministic():
    from course_utils.rl.evaluation import pendulum_q_bias, pendulum_step

    env = gym.make("Pendulum-v1")
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(30):
        theta, theta_dot = env.unwrapped.state
        torque = rng.uniform(-3, 3, size=1).astype(np.float32)
        _, reward, *_ = env.step(torque)
        new_theta, new_theta_dot, r = pendulum_step(
            np.array([theta]), np.array([theta_dot]), torque.astype(float)
        )
        assert np.allclose([new_theta[0], new_theta_dot[0]], env.unwrapped.state, atol=1e-5)
        assert r[0] == pytest.approx(reward, abs=1e-4)

    torch.manual_seed(0)
    policy = SquashedGaussianPolicy(3, 1, -2.0, 2.0, (16,))
    q_net = TwinQNetwork(3, 1, (16,))

    def critic(obs, actions):
        return torch.min(*q_net(obs, actions))

    state = torch.random.get_rng_state()
    first = pendulum_q_bias(policy, critic, alpha=0.1, n_states=20, horizon=50, seed=1)
    second = pendulum_q_bias(policy, critic, alpha=0.1, n_states=20, horizon=50, seed=1)
    assert torch.equal(state, torch.random.get_rng_state())
    assert np.array_equal(first.q, second.q) and np.array_equal(first.mc, second.mc)
    assert first.bias == pytest.approx(float((first.q - first.mc).mean()))
    # with gamma = 0 the Monte Carlo return is the first reward alone
    zero = pendulum_q_bias(policy, critic, alpha=0.1, gamma=0.0, n_states=5, horizon=3, seed=2)
    assert np.all(zero.mc <= 0) and np.all(zero.mc >= -(np.pi**2 + 0.1 * 1 + 0.001 * 4) - 1e-9)


# ---- hooks for learned rewards (chapters 09-10) ----------------------------------------------
def test_buffer_latest_returns_the_newest_transitions_oldest_first():
    buffer = ReplayBuffer(4, (1,), seed=0)
    for i in range(6):  # wraps around: slots hold 4, 5, 2, 3
        buffer.add([i], 0.0, float(i), [i + 1], False)
    assert buffer.latest(3).rewards.tolist() == [3.0, 4.0, 5.0]
    assert buffer.latest(10).rewards.tolist() == [2.0, 3.0, 4.0, 5.0]
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(2, (1,)).latest(1)


def test_relabel_replaces_rewards_without_gradient_and_checks_the_shape():
    buffer = ReplayBuffer(8, (2,), seed=0)
    for i in range(8):
        buffer.add([i, 0.0], 0.0, 1.0, [i, 1.0], False)
    batch = buffer.sample(5)
    weight = torch.ones(2, requires_grad=True)
    out = relabel(batch, lambda b: b.obs @ weight)
    assert torch.equal(out.rewards, batch.obs[:, 0]) and not out.rewards.requires_grad
    assert torch.equal(out.obs, batch.obs)
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        relabel(batch, lambda b: b.obs)
    with pytest.raises(ValueError, match="NaN"):
        relabel(batch, lambda b: b.rewards * float("nan"))


@pytest.mark.parametrize("algorithm", ["soft_dqn", "sac"])
def test_reward_fn_and_callback_hooks(cpu, algorithm):
    """A zero learned reward drives the critic to ~0 (the env reward is ignored); the callback
    sees every step; evaluation still reports the environment's return; a factory is accepted."""
    calls = []

    def callback(step, buffer, policy):
        calls.append((step, len(buffer)))

    def zero(batch):
        return torch.zeros_like(batch.rewards)

    if algorithm == "soft_dqn":
        config = SoftDQNConfig(learning_starts=100, eval_every=None, eval_episodes=1)
        run = train_soft_dqn(
            lambda: gym.make("CartPole-v1"),
            400,
            seed=0,
            config=config,
            progress=False,
            reward_fn=zero,
            callback=callback,
        )
        q = run.q_net(torch.zeros(1, 4))
        plain = train_soft_dqn("CartPole-v1", 400, seed=0, config=config, progress=False)
        q_plain = plain.q_net(torch.zeros(1, 4))
    else:
        config = SACConfig(
            learning_starts=100,
            batch_size=32,
            hidden_sizes=(32, 32),
            eval_every=None,
            eval_episodes=1,
        )
        run = train_sac(
            lambda: gym.make("Pendulum-v1"),
            400,
            seed=0,
            config=config,
            progress=False,
            reward_fn=zero,
            callback=callback,
        )
        q = torch.stack(run.q_net(torch.zeros(1, 3), torch.zeros(1, 1)))
        plain = train_sac("Pendulum-v1", 400, seed=0, config=config, progress=False)
        q_plain = torch.stack(plain.q_net(torch.zeros(1, 3), torch.zeros(1, 1)))
    assert calls == [(step, step) for step in range(1, 401)]
    assert run.final_eval.mean != 0.0  # evaluated with the environment's reward
    assert (q - q_plain).abs().max() > 0.1, "the learned reward did not change the critic"
