"""course_utils.adversarial: the formulas, the discriminators, bad inputs, and a short training run."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_utils.adversarial import (
    AdversarialConfig,
    AIRLDiscriminator,
    GAILDiscriminator,
    PenalisedOptimizer,
    WiderActions,
    adversarial_reward,
    airl_logits,
    airl_reward,
    discriminator_loss,
    discriminator_step,
    gail_reward_fn,
    gan_optimal_discriminator,
    policy_log_prob,
    r1_penalty,
    state_reward_fn,
    train_adversarial,
)
from course_utils.envs import PointMassEnv
from course_utils.rl import Batch, BoltzmannPolicy, QNetwork, SACConfig, SquashedGaussianPolicy
from course_utils.rl.experts import SoftPointMassExpert, generate_demonstrations


def test_gan_optimal_discriminator_minimises_the_pointwise_loss():
    p_data, p_model = np.array([0.2, 1.0, 0.0, 3.0]), np.array([0.6, 1.0, 2.0, 0.0])
    d_star = gan_optimal_discriminator(p_data, p_model)
    np.testing.assert_allclose(d_star, [0.25, 0.5, 0.0, 1.0])
    grid = np.linspace(1e-4, 1 - 1e-4, 20001)
    for a, b in zip(p_data[:2], p_model[:2], strict=True):
        best = grid[np.argmin(-a * np.log(grid) - b * np.log(1 - grid))]
        assert abs(best - a / (a + b)) < 1e-3
    with pytest.raises(ValueError, match="same shape"):
        gan_optimal_discriminator(np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match="non-negative"):
        gan_optimal_discriminator(np.array([-1.0]), np.array([1.0]))


def test_airl_logits_is_the_slides_structured_discriminator():
    torch.manual_seed(0)
    g, h, h2, log_pi = torch.randn(10), torch.randn(10), torch.randn(10), -torch.rand(10)
    logits = airl_logits(g, h, h2, log_pi, 0.9)
    f = g + 0.9 * h2 - h
    torch.testing.assert_close(torch.sigmoid(logits), f.exp() / (f.exp() + log_pi.exp()))
    terminated = torch.tensor([1.0] * 5 + [0.0] * 5)
    with_end = airl_logits(g, h, h2, log_pi, 0.9, terminated)
    torch.testing.assert_close(with_end[:5], (g - h - log_pi)[:5])


@pytest.mark.parametrize(
    "args, message",
    [
        ((torch.zeros(3), torch.zeros(3), torch.zeros(4), torch.zeros(3)), "shapes must agree"),
        ((torch.zeros(3, 1), torch.zeros(3), torch.zeros(3), torch.zeros(3)), "dimension"),
        (
            (torch.tensor([0.0, float("nan")]), torch.zeros(2), torch.zeros(2), torch.zeros(2)),
            "NaN",
        ),
        ((np.zeros(3), torch.zeros(3), torch.zeros(3), torch.zeros(3)), "torch tensor"),
    ],
)
def test_airl_logits_rejects_bad_inputs(args, message):
    with pytest.raises(ValueError, match=message):
        airl_logits(*args, gamma=0.99)


def test_discriminator_loss_is_bce_and_stable():
    e, p = torch.tensor([0.3, -1.0, 2.0]), torch.tensor([-0.5, 1.5])
    expected = F.binary_cross_entropy_with_logits(
        e, torch.ones(3)
    ) + F.binary_cross_entropy_with_logits(p, torch.zeros(2))
    torch.testing.assert_close(discriminator_loss(e, p), expected)
    big = discriminator_loss(torch.tensor([-500.0]), torch.tensor([500.0]))
    assert torch.isfinite(big) and abs(big.item() - 1000.0) < 1e-3
    with pytest.raises(ValueError, match="NaN"):
        discriminator_loss(torch.tensor([float("inf")]), p)


def test_adversarial_reward_shapes_and_no_gradient():
    logits = torch.tensor([-30.0, 0.0, 2.0], requires_grad=True)
    r = adversarial_reward(logits)
    assert not r.requires_grad
    torch.testing.assert_close(r, logits.detach())
    assert (adversarial_reward(logits, "positive") > 0).all()
    assert (adversarial_reward(logits, "negative") < 0).all()
    torch.testing.assert_close(
        adversarial_reward(logits, "positive") - (-adversarial_reward(logits, "negative")),
        logits.detach(),
    )
    with pytest.raises(ValueError, match="shape must be"):
        adversarial_reward(logits, "log")


def test_discriminators_and_log_probs():
    gail = GAILDiscriminator(4, n_actions=2, hidden_sizes=(8,))
    assert gail(torch.zeros(5, 4), torch.tensor([0, 1, 0, 1, 1])).shape == (5,)
    gail_c = GAILDiscriminator(2, act_dim=2, hidden_sizes=(8,))
    batch = Batch(
        torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3), torch.ones(3, 2), torch.zeros(3)
    )
    assert gail_reward_fn(gail_c)(batch).shape == (3,)
    airl = AIRLDiscriminator(2, gamma=0.9, hidden_sizes=(8,))
    assert state_reward_fn(airl)(batch).shape == (3,)
    assert airl.batch_logits(batch, torch.zeros(3)).shape == (3,)
    # log pi: finite and clamped even for saturated actions and extreme policies
    policy = SquashedGaussianPolicy(2, 2, hidden_sizes=(8,))
    lp = policy_log_prob(
        policy, torch.zeros(4, 2), torch.tensor([[1.0, 1.0], [-1.0, 0.0], [0.0, 0.0], [0.5, -0.99]])
    )
    assert lp.shape == (4,) and torch.isfinite(lp).all() and lp.abs().max() <= 20.0
    boltzmann = BoltzmannPolicy(QNetwork(4, 2, (8,)), alpha=0.5)
    lp = policy_log_prob(boltzmann, torch.zeros(3, 4), torch.tensor([0, 1, 1]))
    assert lp.shape == (3,) and (lp <= 0).all()


def test_wider_actions_clip_to_the_true_bounds():
    env = WiderActions(PointMassEnv(), factor=1.5)
    assert np.allclose(env.action_space.high, 1.5)
    env.reset(seed=0)
    start = env.unwrapped._pos.copy()
    obs, *_ = env.step(np.array([1.5, -1.5], dtype=np.float32))
    np.testing.assert_allclose(obs, np.clip(start + 0.1 * np.array([1.0, -1.0]), -1, 1), atol=1e-6)


def test_train_adversarial_bad_arguments():
    demos = generate_demonstrations(SoftPointMassExpert(seed=0), PointMassEnv, 1, seed=0)
    with pytest.raises(ValueError, match="method"):
        train_adversarial("gan", PointMassEnv, demos.transitions, 10)
    with pytest.raises(ValueError, match="AIRL"):
        train_adversarial(
            "gail", PointMassEnv, demos.transitions, 10, config=AdversarialConfig(reward_shape="f")
        )
    bad = demos.transitions._replace(obs=demos.transitions.obs[:, :1])
    with pytest.raises(ValueError, match="features"):
        train_adversarial("airl", PointMassEnv, bad, 10)
    nan = demos.transitions._replace(obs=demos.transitions.obs * float("nan"))
    with pytest.raises(ValueError, match="NaN"):
        train_adversarial("airl", PointMassEnv, nan, 10)


@pytest.mark.parametrize("method, shape", [("gail", "logit"), ("airl", "f")])
def test_short_training_run_is_deterministic(method, shape):
    demos = generate_demonstrations(SoftPointMassExpert(seed=0), PointMassEnv, 4, seed=0)
    kwargs = dict(
        config=AdversarialConfig(reward_shape=shape, disc_every=100, disc_updates=2),
        rl_config=SACConfig(
            learning_starts=200, eval_every=None, eval_episodes=2, hidden_sizes=(16,), batch_size=32
        ),
    )

    def make_env():
        return WiderActions(PointMassEnv())

    a = train_adversarial(method, make_env, demos.transitions, 400, seed=0, **kwargs)
    b = train_adversarial(method, make_env, demos.transitions, 400, seed=0, **kwargs)
    assert a.history["step"] == [200, 300, 400]
    assert a.history["loss"] == b.history["loss"]
    assert np.isfinite(a.run.final_eval.mean) and a.run.final_eval.mean == b.run.final_eval.mean
    assert all(0 < d < 1 for d in a.history["expert_D"] + a.history["policy_D"])


def test_disc_until_freezes_the_discriminator():
    demos = generate_demonstrations(SoftPointMassExpert(seed=0), PointMassEnv, 2, seed=0)
    config = AdversarialConfig(reward_shape="f", disc_every=100, disc_updates=1, disc_until=300)
    rl_config = SACConfig(
        learning_starts=200, eval_every=None, eval_episodes=1, hidden_sizes=(8,), batch_size=16
    )
    res = train_adversarial(
        "airl",
        lambda: WiderActions(PointMassEnv()),
        demos.transitions,
        500,
        seed=1,
        config=config,
        rl_config=rl_config,
    )
    assert res.history["step"] == [200, 300]


def _small_airl(**hooks):
    demos = generate_demonstrations(SoftPointMassExpert(seed=0), PointMassEnv, 2, seed=0)
    config = AdversarialConfig(reward_shape="f", disc_every=100, disc_updates=2)
    rl_config = SACConfig(
        learning_starts=200, eval_every=None, eval_episodes=1, hidden_sizes=(8,), batch_size=16
    )
    return train_adversarial(
        "airl",
        lambda: WiderActions(PointMassEnv()),
        demos.transitions,
        400,
        seed=2,
        config=config,
        rl_config=rl_config,
        **hooks,
    )


def test_hooks_receive_the_update_and_the_relabelling():
    """The default run IS the reference hooks; a hook sees the discriminator, an optimizer over its
    parameters, a policy with log_prob, expert and policy batches; relabel sees critic batches."""
    calls = {"step": 0, "relabel": 0}

    def step(disc, optimizer, policy, expert, samples):
        calls["step"] += 1
        assert isinstance(disc, AIRLDiscriminator) and isinstance(optimizer, PenalisedOptimizer)
        assert expert.obs.shape == samples.obs.shape == (256, 2)
        assert policy.log_prob(expert.obs, expert.actions).requires_grad  # the hook must detach it
        return discriminator_step(disc, optimizer, policy, expert, samples)

    def relabel(disc, batch):
        calls["relabel"] += 1
        return airl_reward(disc, batch)

    default = _small_airl()
    hooked = _small_airl(disc_step=step, relabel=relabel)
    assert calls["step"] == 2 * 3 and calls["relabel"] > 0
    assert hooked.history == default.history
    assert set(default.history) == {"step", "loss", "expert_D", "policy_D", "recent_D"}
    assert hooked.run.final_eval.mean == default.run.final_eval.mean
    assert len(default.buffer.latest(10**6).obs) == 400


def test_a_wrong_hook_changes_the_run():
    def no_step(disc, optimizer, policy, expert, samples):
        return 0.0

    frozen = _small_airl(disc_step=no_step)
    default = _small_airl()
    assert frozen.history["expert_D"] != default.history["expert_D"]


def test_penalised_optimizer_adds_the_r1_gradient():
    torch.manual_seed(0)
    disc = AIRLDiscriminator(2, gamma=0.9, hidden_sizes=(8,))
    expert = Batch(
        torch.randn(5, 2), torch.randn(5, 2), torch.zeros(5), torch.randn(5, 2), torch.zeros(5)
    )
    samples = Batch(
        torch.randn(7, 2), torch.randn(7, 2), torch.zeros(7), torch.randn(7, 2), torch.zeros(7)
    )
    log_pi = torch.randn(5), torch.randn(7)

    def loss_of(d):
        return discriminator_loss(
            d.batch_logits(expert, log_pi[0]), d.batch_logits(samples, log_pi[1])
        )

    joint = copy.deepcopy(disc)
    sgd = torch.optim.SGD(joint.parameters(), lr=0.1)
    sgd.zero_grad()
    (loss_of(joint) + 2.0 * r1_penalty(joint, expert, discrete=False)).backward()
    sgd.step()
    wrapped = PenalisedOptimizer(torch.optim.SGD(disc.parameters(), lr=0.1), disc, 2.0, False)
    wrapped.expert = expert
    wrapped.zero_grad()
    loss_of(disc).backward()
    wrapped.step()
    for a, b in zip(joint.parameters(), disc.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    assert wrapped.param_groups[0]["lr"] == 0.1  # everything else is the wrapped optimizer's


def test_hooks_bad_arguments():
    demos = generate_demonstrations(SoftPointMassExpert(seed=0), PointMassEnv, 1, seed=0)
    with pytest.raises(ValueError, match="relabel replaces AIRL's reward f"):
        train_adversarial("gail", PointMassEnv, demos.transitions, 10, relabel=airl_reward)
    with pytest.raises(ValueError, match="disc_step must be a function"):
        train_adversarial("airl", PointMassEnv, demos.transitions, 10, disc_step=3)


def test_policy_log_prob_with_gradient_follows_the_grad_mode():
    policy = SquashedGaussianPolicy(2, 2, hidden_sizes=(8,))
    obs, actions = torch.randn(4, 2), torch.rand(4, 2) * 2 - 1
    assert not policy_log_prob(policy, obs, actions).requires_grad
    assert policy_log_prob(policy, obs, actions, grad=True).requires_grad
    with torch.no_grad():
        assert not policy_log_prob(policy, obs, actions, grad=True).requires_grad
