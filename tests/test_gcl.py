"""Unit tests of chapter 09's library: importance weights, self-normalised estimates, the
sample-based MaxEnt IRL gradient (course_utils.irl) and guided cost learning (course_utils.gcl)."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math

import numpy as np
import pytest
import torch

from course_utils import gcl, irl
from course_utils.mdp import TabularMDP, sample_trajectories


def _tiny(seed=0, deterministic=False, one_start=False):
    rng = np.random.default_rng(seed)
    S, A, T = 3, 2, 3
    if deterministic:
        P = np.eye(S)[rng.integers(S, size=(S, A))]
    else:
        P = rng.dirichlet(np.ones(S), size=(S, A))
    p0 = np.eye(S)[0] if one_start else rng.dirichlet(np.ones(S))
    F = rng.normal(size=(S, 2))
    return rng, P, p0, F, S, A, T


def _enumerate(P, p0, S, A, T):
    taus = [
        (s, a)
        for s in itertools.product(range(S), repeat=T)
        for a in itertools.product(range(A), repeat=T)
    ]
    states = np.array([s for s, _ in taus])
    actions = np.array([a for _, a in taus])
    p_tau = np.array(
        [p0[s[0]] * np.prod([P[s[t], a[t], s[t + 1]] for t in range(T - 1)]) for s, a in taus]
    )
    return states, actions, p_tau


def test_weights_are_the_exact_probability_ratio():
    rng, P, p0, _F, S, A, T = _tiny()
    r = rng.normal(size=S)
    sampler = rng.dirichlet(np.ones(A), size=(T, S))
    states, actions, p_tau = _enumerate(P, p0, S, A, T)
    pi_tau = p_tau * np.prod(sampler[np.arange(T), states, actions], axis=1)
    log_w = irl.log_importance_weights(
        r[states], irl.trajectory_log_probs(sampler, states, actions)
    )
    # w(tau) = p(tau) exp(r(tau)) / pi(tau) for every trajectory, without using the dynamics
    support = pi_tau > 0
    np.testing.assert_allclose(
        np.exp(log_w[support]),
        (p_tau * np.exp(r[states].sum(1)))[support] / pi_tau[support],
        rtol=1e-10,
    )


def test_temperature_divides_the_rewards():
    rewards, log_probs = np.ones((2, 3)), np.zeros((2, 3))
    np.testing.assert_allclose(
        irl.log_importance_weights(rewards, log_probs, alpha=0.5), [6.0, 6.0]
    )


def test_self_normalized_estimate_is_consistent():
    # p = N(1, 1), q = N(0, 2^2): E_p[x] = 1, weights known up to a constant
    errors = {}
    for M in (100, 100_000):
        errs = []
        for rep in range(10):
            x = np.random.default_rng(rep).normal(0.0, 2.0, size=M)
            log_w = (
                -0.5 * (x - 1) ** 2 + 0.5 * (x / 2) ** 2 + 7.0
            )  # log p - log q + an arbitrary constant
            est, ess = irl.self_normalized_estimate(log_w, x)
            errs.append(abs(est - 1.0))
            assert 1.0 <= ess <= M
        errors[M] = np.mean(errs)
    assert errors[100_000] < 0.02 and errors[100_000] < errors[100] / 5


def test_effective_sample_size_limits_and_stability():
    assert irl.effective_sample_size(np.full(7, 3.0)) == pytest.approx(7.0)
    assert irl.effective_sample_size(np.array([0.0, -1e4, -1e4])) == pytest.approx(1.0)
    w = irl.self_normalized_weights(np.array([1000.0, 1000.0, 999.0]))
    assert np.isfinite(w).all() and w.sum() == pytest.approx(1.0)


def test_sample_gradient_matches_the_exact_gradient():
    # deterministic dynamics, one start state: the posterior is the soft-optimal (causal) policy
    rng, P, p0, F, S, A, T = _tiny(seed=2, deterministic=True, one_start=True)
    mdp = TabularMDP(P=P, R=np.zeros((S, A)), p0=p0)
    theta, theta_old = rng.normal(size=2), rng.normal(size=2)
    demos, _ = sample_trajectories(
        mdp, irl.soft_optimal_trajectory_policy(P, F @ rng.normal(size=2), T), T, 50, rng
    )
    exact = irl.irl_gradient(theta, P, F, demos, p0)
    lagging = irl.soft_optimal_trajectory_policy(P, F @ theta_old, T)
    states, actions = sample_trajectories(mdp, lagging, T, 40_000, np.random.default_rng(5))
    np.testing.assert_allclose(
        irl.sample_irl_gradient(theta, F, demos, states, actions, lagging), exact, atol=0.03
    )
    # the current soft-optimal policy: all weights equal (they are Z), the plain average is unbiased
    current = irl.soft_optimal_trajectory_policy(P, F @ theta, T)
    states, actions = sample_trajectories(mdp, current, T, 2000, np.random.default_rng(6))
    _, ess = irl.sample_irl_gradient(theta, F, demos, states, actions, current, return_ess=True)
    assert ess == pytest.approx(2000, rel=1e-9)


def test_sample_gradient_targets_the_exact_posterior_with_stochastic_dynamics():
    rng, P, p0, F, S, A, T = _tiny(seed=3)
    mdp = TabularMDP(P=P, R=np.zeros((S, A)), p0=p0)
    theta = 2 * rng.normal(size=2)
    demos = rng.integers(S, size=(20, T))
    sampler = np.full((S, A), 1 / A)
    states, actions = sample_trajectories(mdp, sampler, T, 100_000, np.random.default_rng(0))
    estimate = irl.sample_irl_gradient(theta, F, demos, states, actions, sampler)
    np.testing.assert_allclose(
        estimate, irl.irl_gradient(theta, P, F, demos, p0, optimistic=True), atol=0.03
    )


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: irl.log_importance_weights(np.ones(3), np.ones(3)), "shape"),
        (lambda: irl.log_importance_weights(np.ones((2, 3)), np.ones((3, 2))), "same shape"),
        (lambda: irl.log_importance_weights(np.full((2, 3), np.nan), np.ones((2, 3))), "NaN"),
        (lambda: irl.self_normalized_estimate(np.zeros(3), np.ones(4)), "values must have shape"),
        (lambda: irl.self_normalized_estimate(np.array([0.0, np.nan]), np.ones(2)), "NaN"),
        (
            lambda: irl.trajectory_log_probs(
                np.full((2, 2), 0.6), np.zeros((1, 2), int), np.zeros((1, 2), int)
            ),
            "not normalised",
        ),
        (
            lambda: irl.trajectory_log_probs(
                np.full((1, 2, 2), 0.5), np.zeros((1, 3), int), np.zeros((1, 3), int)
            ),
            "T >= 3",
        ),
        (
            lambda: irl.sample_irl_gradient(
                np.ones(3),
                np.eye(2),
                np.zeros((1, 2), int),
                np.zeros((1, 2), int),
                np.zeros((1, 2), int),
                np.full((2, 2), 0.5),
            ),
            "theta must",
        ),
    ],
)
def test_bad_inputs_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_gcl_loss_gradient_signs():
    gen = torch.Generator().manual_seed(0)
    demo = torch.randn(4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    samples = torch.randn(6, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    log_probs = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    gcl.gcl_cost_loss(demo, samples, log_probs).backward()
    np.testing.assert_allclose(demo.grad.numpy(), 0.25)  # +1/N: descending lowers the demos' costs
    w_bar = torch.softmax(-samples.sum(1) - log_probs.sum(1), 0)
    np.testing.assert_allclose(
        samples.grad.numpy(), -w_bar[:, None].expand(6, 5).detach().numpy()
    )  # raises the samples'
    # a constant shift of the cost changes nothing
    shifted = gcl.gcl_cost_loss(demo + 3.0, samples + 3.0, log_probs)
    assert float(shifted) == pytest.approx(float(gcl.gcl_cost_loss(demo, samples, log_probs)))


def test_gcl_loss_rejects_bad_inputs():
    with pytest.raises(ValueError, match="same shape"):
        gcl.gcl_cost_loss(torch.zeros(2, 3), torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="NaN"):
        gcl.gcl_cost_loss(torch.full((2, 3), float("nan")), torch.zeros(4, 3), torch.zeros(4, 3))


def test_demonstrations_and_rollouts():
    demos = gcl.expert_demonstrations(3, noise=0.0, seed=0)
    assert demos.next_obs.shape == (3, 50, 2) and demos.in_goal.all() and demos.log_probs is None
    np.testing.assert_allclose(demos.obs[:, 1:], demos.next_obs[:, :-1])
    policy = gcl.SquashedGaussianPolicy(2, 2, -1.0, 1.0, (8,))
    runs = gcl.rollout(policy, 2, seed=0)
    assert runs.log_probs.shape == (2, 50) and np.isfinite(runs.log_probs).all()


def test_short_gcl_run_is_deterministic():
    demos = gcl.expert_demonstrations(3, seed=0)
    config = gcl.GCLConfig(
        iterations=3,
        cost_iterations=2,
        cost_average=2,
        episodes_per_iter=2,
        sac_steps_per_iter=10,
        warmup_episodes=1,
        cost_steps=2,
        batch_size=16,
        hidden_sizes=(16,),
    )
    a = gcl.train_gcl(demos, config=config, seed=1)
    b = gcl.train_gcl(demos, config=config, seed=1)
    assert a.history == b.history and len(a.history["loss"]) == 3
    assert (
        isinstance(a.cost_net, gcl.AveragedCost) and len(a.cost_net.costs) == 2
    )  # frozen as an average
    for p, q in zip(a.cost_net.parameters(), b.cost_net.parameters(), strict=True):
        assert torch.equal(p, q)
    _X, _Y, C = gcl.cost_on_grid(a.cost_net, 5)
    assert C.shape == (5, 5) and (C >= 0).all()  # the squared-norm cost is never negative


def test_fused_log_density_is_the_mixture():
    rng = np.random.default_rng(0)
    obs, actions = rng.normal(size=(3, 4, 2)), rng.normal(size=(3, 4, 2))
    a = lambda o, x: -0.5 * (x**2).sum(-1)  # noqa: E731
    b = lambda o, x: -((x - 1) ** 2).sum(-1) + 0.3  # noqa: E731
    got = gcl.fused_log_density([(a, 1), (b, 3)], obs, actions)
    expected = np.log(0.25 * np.exp(a(obs, actions).sum(1)) + 0.75 * np.exp(b(obs, actions).sum(1)))
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_demo_density_is_a_normalised_gaussian_around_the_neighbours_mean():
    demos = gcl.expert_demonstrations(5, seed=0)
    density = gcl.DemoDensity.fit(demos, k=10)
    s = np.array([[0.1, -0.2]])
    mean = density.mean(s)[0]
    # integrates to one over the actions (a 2-D grid around the mean)
    grid = np.linspace(-6, 6, 401)
    X, Y = np.meshgrid(mean[0] + grid * density.std[0], mean[1] + grid * density.std[1])
    acts = np.stack([X, Y], -1)
    p = np.exp(density.log_prob(np.broadcast_to(s, acts.shape), acts))
    cell = (grid[1] - grid[0]) ** 2 * density.std.prod()
    assert p.sum() * cell == pytest.approx(1.0, abs=1e-3)
    # the mean is that of the 10 nearest demonstration states
    d = ((density.states - s) ** 2).sum(1)
    np.testing.assert_allclose(mean, density.actions[np.argsort(d)[:10]].mean(0))


def test_cost_update_follows_the_fused_importance_weights():
    torch.manual_seed(0)
    net = gcl.CostNetwork(2, (8,), 3).double()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    demo, samples = (
        torch.rand(3, 4, 2, dtype=torch.float64),
        torch.rand(5, 4, 2, dtype=torch.float64),
    )
    slq, dlq = torch.randn(5, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    cfg = gcl.GCLConfig(alpha=0.5, mono_weight=0.0, cost_l2=0.0)
    # the gradient: demos +1/(N alpha), every background trajectory -w_bar_b / alpha
    d_c, s_c = net(demo), net(samples)
    C = torch.cat([s_c, d_c]).sum(1) / cfg.alpha
    w_bar = torch.softmax(-C - torch.cat([slq, dlq]), 0).detach()
    surrogate = d_c.sum(1).mean() / cfg.alpha - (w_bar * C).sum()
    grads = torch.autograd.grad(surrogate, list(net.parameters()))
    before = [p.detach().clone() for p in net.parameters()]
    gcl.gcl_cost_update(net, opt, demo, samples, slq, dlq, cfg)
    for p, p0, g in zip(net.parameters(), before, grads, strict=True):
        torch.testing.assert_close(p.detach(), p0 - 0.1 * g)


def test_train_gcl_uses_the_update_hook_and_rejects_bad_importance():
    demos = gcl.expert_demonstrations(3, seed=0)
    config = gcl.GCLConfig(
        iterations=2, cost_iterations=2, cost_average=1, episodes_per_iter=2,
        sac_steps_per_iter=5, warmup_episodes=1, cost_steps=3, batch_size=16, hidden_sizes=(16,),
    )  # fmt: skip
    calls = []

    def update(cost_net, optimizer, demo_states, sample_states, sample_log_q, demo_log_q, cfg):
        calls.append(
            (tuple(sample_states.shape), tuple(sample_log_q.shape), tuple(demo_log_q.shape))
        )
        return gcl.gcl_cost_update(
            cost_net, optimizer, demo_states, sample_states, sample_log_q, demo_log_q, cfg
        )

    result = gcl.train_gcl(demos, config=config, seed=0, update=update)
    assert len(calls) == 6  # cost_steps per learning iteration
    assert calls[0] == ((2, 50, 2), (2,), (3,)) and calls[-1] == ((4, 50, 2), (4,), (3,))
    assert all(1.0 <= e <= 7.0 for e in result.history["ess"])  # of 4 samples + 3 demos
    assert all(1.0 <= e <= 4.0 for e in result.history["ess_own"])
    with pytest.raises(ValueError, match="importance"):
        gcl.train_gcl(demos, config=dataclasses.replace(config, importance="mixture"), seed=0)


def test_own_importance_is_the_samples_only_estimator():
    demos = gcl.expert_demonstrations(3, seed=0)
    config = gcl.GCLConfig(
        iterations=1, cost_iterations=1, cost_average=1, episodes_per_iter=2,
        sac_steps_per_iter=2, warmup_episodes=1, cost_steps=1, batch_size=16, hidden_sizes=(16,),
        importance="own", mono_weight=0.0, cost_l2=0.0,
    )  # fmt: skip
    seen = {}

    def update(cost_net, optimizer, demo_states, sample_states, sample_log_q, demo_log_q, cfg):
        seen["inf"] = bool(torch.isinf(demo_log_q).all())
        seen["log_q"] = sample_log_q.clone()
        return gcl.gcl_cost_update(
            cost_net, optimizer, demo_states, sample_states, sample_log_q, demo_log_q, cfg
        )

    gcl.train_gcl(demos, config=config, seed=0, update=update)
    assert seen["inf"] and torch.isfinite(seen["log_q"]).all()


def test_infinite_demo_log_q_gives_the_samples_only_gradient():
    torch.manual_seed(1)
    net = gcl.CostNetwork(2, (8,), 3).double()
    twin = copy.deepcopy(net)
    demo, samples = (
        torch.rand(3, 4, 2, dtype=torch.float64),
        torch.rand(5, 4, 2, dtype=torch.float64),
    )
    slq = torch.randn(5, dtype=torch.float64)
    cfg = gcl.GCLConfig(alpha=0.5, mono_weight=0.0, cost_l2=0.0)
    gcl.gcl_cost_update(
        net, torch.optim.SGD(net.parameters(), lr=0.1), demo, samples, slq,
        torch.full((3,), math.inf, dtype=torch.float64), cfg,
    )  # fmt: skip
    per_step = torch.zeros(5, 4, dtype=torch.float64)
    per_step[:, 0] = slq
    loss = gcl.gcl_cost_loss(twin(demo) / cfg.alpha, twin(samples) / cfg.alpha, per_step)
    opt = torch.optim.SGD(twin.parameters(), lr=0.1)
    opt.zero_grad()
    loss.backward()
    opt.step()
    for p, q in zip(net.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(p, q)
