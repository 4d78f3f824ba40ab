"""Unit tests of course_utils.irl: the MaxEnt IRL likelihood, its gradient, the optimiser, validation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course_utils import irl
from course_utils.inference import backward_messages, forward_messages, soft_policy
from course_utils.mdp import gridworld, sample_trajectories

LAYOUT = ["S...W", ".LL.W", "...#.", "W....", "..L.G"]
REWARDS = {".": -0.2, "W": -1.0, "L": -3.0, "G": 2.0}
THETA_TRUE = np.array([-0.2, 2.0, -3.0, -1.0])  # sorted cell types: '.', 'G', 'L', 'W'


def random_problem(seed: int, S: int = 4, A: int = 2, K: int = 2, deterministic: bool = False):
    rng = np.random.default_rng(seed)
    if deterministic:
        P = np.zeros((S, A, S))
        P[np.arange(S)[:, None], np.arange(A)[None, :], rng.integers(S, size=(S, A))] = 1.0
    else:
        P = rng.dirichlet(np.full(S, 0.7), size=(S, A))
    return rng, P, rng.normal(size=(S, K)), rng.dirichlet(np.ones(S)), rng.normal(size=K)


def soft_expert(mdp, theta, horizon, alpha=1.0):
    r = mdp.features @ theta
    Q, V = backward_messages(mdp.P, np.repeat(r[:, None], mdp.n_actions, 1), horizon, alpha=alpha)
    return soft_policy(Q, V, alpha)


@pytest.fixture(scope="module")
def grid():
    return gridworld(LAYOUT, rewards=REWARDS, step_reward=-0.2, slip=0.1, absorbing="G")


# ------------------------------------------------------------------ the likelihood and its gradient


def test_optimistic_log_partition_and_posterior_match_brute_force_enumeration():
    _, P, F, p0, theta = random_problem(0, S=3, A=2)
    T, alpha = 4, 0.7
    r = F @ theta
    Z, counts = 0.0, np.zeros(F.shape[1])
    for s in itertools.product(range(3), repeat=T):
        for a in itertools.product(range(2), repeat=T):
            p = p0[s[0]] * np.prod([P[s[t], a[t], s[t + 1]] for t in range(T - 1)])
            w = p * np.exp(r[list(s)].sum() / alpha)
            Z += w
            counts += w * F[list(s)].sum(axis=0)
    assert irl.log_partition(P, r, p0, T, alpha=alpha, optimistic=True) == pytest.approx(
        np.log(Z), abs=1e-12
    )
    mu = irl.state_action_visitation(P, r, p0, T, alpha=alpha, optimistic=True)
    np.testing.assert_allclose(np.einsum("tsa,sk->k", mu, F), counts / Z, atol=1e-12)


def test_causal_likelihood_is_the_expected_policy_log_likelihood():
    """With the expert's exact counts, L(theta) = E_expert[sum_t log pi^theta_t(a_t|s_t)]."""
    _, P, F, p0, theta_expert = random_problem(1, S=5, A=3, K=3)
    T, alpha = 6, 0.8
    mu_expert = irl.state_action_visitation(P, F @ theta_expert, p0, T, alpha=alpha)
    target = np.einsum("tsa,sk->k", mu_expert, F)
    theta = np.random.default_rng(2).normal(size=3)
    Q, V = backward_messages(P, np.repeat((F @ theta)[:, None], 3, 1), T, alpha=alpha)
    expected = np.sum(mu_expert * np.log(soft_policy(Q, V, alpha)))
    result = irl.maxent_irl_from_expectations(
        P, F, target, horizon=T, p0=p0, alpha=alpha, theta0=theta, n_iters=0
    )
    assert result.log_likelihood[0] == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("optimistic", [False, True])
def test_with_deterministic_dynamics_the_likelihood_is_the_policy_log_likelihood(optimistic):
    """mean_i r(tau_i) / alpha - log Z = mean_i log p(tau_i | O) - log p(tau_i), exactly."""
    rng, P, F, p0, theta = random_problem(3, S=5, A=3, K=2, deterministic=True)
    states = np.empty((7, 5), dtype=int)
    actions = rng.integers(3, size=(7, 5))
    states[:, 0] = rng.choice(5, size=7, p=p0)
    for t in range(4):
        states[:, t + 1] = P[states[:, t], actions[:, t]].argmax(axis=1)
    p0 = (
        np.bincount(states[:, 0], minlength=5) / 7
    )  # the identity needs the demos' start distribution
    L = irl.irl_log_likelihood(theta, P, F, states, p0, alpha=0.5, optimistic=optimistic)
    Q, V = backward_messages(
        P, np.repeat((F @ theta)[:, None], 3, 1), 5, alpha=0.5, optimistic=optimistic
    )
    pi = soft_policy(Q, V, 0.5)
    if optimistic:  # the exact posterior also puts its start distribution on p0 * beta_0
        with np.errstate(divide="ignore"):
            start = np.log(p0) + V[0] / 0.5
        start -= np.log(np.exp(start).sum())
        direct = (
            irl.policy_log_likelihood(pi, states, actions)
            + start[states[:, 0]].mean()
            - np.log(p0[states[:, 0]]).mean()
        )
    else:
        direct = irl.policy_log_likelihood(pi, states, actions)
    assert L == pytest.approx(direct, abs=1e-10)


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    optimistic=st.booleans(),
    alpha=st.sampled_from([0.3, 1.0, 2.5]),
    deterministic=st.booleans(),
)
def test_gradient_equals_finite_differences(seed, optimistic, alpha, deterministic):
    rng, P, F, p0, theta = random_problem(seed, S=5, A=2, K=3, deterministic=deterministic)
    states = rng.integers(5, size=(6, 4))
    grad = irl.irl_gradient(theta, P, F, states, p0, alpha, optimistic=optimistic)
    eps = 1e-5
    fd = [
        (
            irl.irl_log_likelihood(
                theta + eps * e, P, F, states, p0, alpha=alpha, optimistic=optimistic
            )
            - irl.irl_log_likelihood(
                theta - eps * e, P, F, states, p0, alpha=alpha, optimistic=optimistic
            )
        )
        / (2 * eps)
        for e in np.eye(3)
    ]
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-7)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), optimistic=st.booleans())
def test_log_likelihood_is_concave_along_lines(seed, optimistic):
    rng, P, F, p0, theta = random_problem(seed, S=5, A=3, K=3)
    states = rng.integers(5, size=(4, 5))
    direction = rng.normal(size=3)
    ts = np.linspace(-3, 3, 13)
    values = np.array(
        [
            irl.irl_log_likelihood(theta + t * direction, P, F, states, p0, optimistic=optimistic)
            for t in ts
        ]
    )
    assert np.all(values[:-2] - 2 * values[1:-1] + values[2:] <= 1e-9)


def test_visitation_is_normalised_starts_at_p0_and_stays_finite_for_extreme_rewards():
    _, P, _, p0, _ = random_problem(4, S=6, A=3)
    for R, alpha in [
        (np.random.default_rng(5).normal(size=(6, 3)), 1.0),
        (1000 * np.random.default_rng(6).normal(size=(6, 3)), 1.0),
        (np.random.default_rng(7).normal(size=6), 1e-3),
        (1000 * np.random.default_rng(8).normal(size=6), 1e-3),
    ]:
        for optimistic in (False, True):
            mu = irl.state_action_visitation(P, R, p0, 7, alpha=alpha, optimistic=optimistic)
            assert mu.shape == (7, 6, 3) and np.isfinite(mu).all()
            np.testing.assert_allclose(mu.sum(axis=(1, 2)), 1.0, atol=1e-10)
            if not optimistic:
                np.testing.assert_allclose(mu[0].sum(axis=1), p0, atol=1e-12)
        L = irl.log_partition(P, R, p0, 7, alpha=alpha)
        assert np.isfinite(L)


def test_state_reward_and_table_give_the_same_visitation():
    _, P, _, p0, _ = random_problem(9, S=4, A=3)
    r = np.array([0.5, -1.0, 2.0, 0.0])
    np.testing.assert_allclose(
        irl.state_action_visitation(P, r, p0, 5),
        irl.state_action_visitation(P, np.repeat(r[:, None], 3, 1), p0, 5),
    )


def test_feature_expectations_are_mean_sums_over_time():
    F = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    states = np.array([[0, 2, 2], [1, 1, 0]])
    np.testing.assert_allclose(irl.feature_expectations(F, states), [(3 + 1) / 2, (2 + 2) / 2])


# ------------------------------------------------------------------ maxent_irl


def test_exact_expert_visitation_is_matched_within_1e_3_and_recovers_expert(grid):
    T = 20
    pi_expert = soft_expert(grid, THETA_TRUE, T)
    D = forward_messages(grid.P, pi_expert, grid.p0, T)
    target = D.sum(axis=0) @ grid.features
    result = irl.maxent_irl_from_expectations(grid.P, grid.features, target, horizon=T, p0=grid.p0)
    assert result.converged
    assert np.abs(result.feature_expectations - target).max() < 1e-3
    assert np.abs(result.policy - pi_expert).max() < 1e-3
    shift = (
        result.theta - THETA_TRUE
    ).mean()  # one-hot features: the reward is defined up to a constant
    np.testing.assert_allclose(result.theta - shift, THETA_TRUE, atol=1e-3)


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000), optimistic=st.booleans(), alpha=st.sampled_from([1e-3, 0.5, 1.0])
)
def test_exact_counts_of_a_random_soft_expert_are_matched_within_1e_3(seed, optimistic, alpha):
    _, P, F, p0, theta_expert = random_problem(seed, S=6, A=3, K=3)
    theta_expert = alpha * theta_expert  # a reward on the scale of the temperature
    mu = irl.state_action_visitation(P, F @ theta_expert, p0, 8, alpha=alpha, optimistic=optimistic)
    target = np.einsum("tsa,sk->k", mu, F)
    result = irl.maxent_irl_from_expectations(
        P, F, target, horizon=8, p0=p0, alpha=alpha, optimistic=optimistic
    )
    assert np.abs(result.feature_expectations - target).max() < 1e-3
    assert np.abs(result.visitation - mu).max() < 1e-3


def test_maxent_irl_from_demos_matches_the_empirical_counts(grid):
    T = 20
    states, actions = sample_trajectories(
        grid, soft_expert(grid, THETA_TRUE, T), T, 200, np.random.default_rng(0)
    )
    result = irl.maxent_irl(grid.P, grid.features, states, actions, horizon=T)
    assert result.converged and result.feature_gap[-1] <= 1e-6
    np.testing.assert_allclose(
        result.expert_feature_expectations, irl.feature_expectations(grid.features, states)
    )
    assert np.all(np.diff(result.log_likelihood) >= -1e-9)  # L-BFGS never goes down
    assert result.theta_history.shape == (result.n_iters + 1, 4)
    np.testing.assert_allclose(result.reward, grid.features @ result.theta)
    assert result.policy.shape == (T, grid.n_states, grid.n_actions)
    np.testing.assert_allclose(result.visitation.sum(axis=(1, 2)), 1.0)
    assert np.corrcoef(result.reward, grid.features @ THETA_TRUE)[0, 1] > 0.9
    # p0 defaults to the demonstrations' start distribution
    p0 = np.bincount(states[:, 0], minlength=grid.n_states) / len(states)
    np.testing.assert_allclose(result.visitation[0].sum(axis=1), p0)


@pytest.mark.parametrize("optimizer, lr", [("adam", 0.05), ("gradient", None)])
def test_first_order_optimizers_climb_to_the_same_optimum(grid, optimizer, lr):
    T = 15
    pi_expert = soft_expert(grid, THETA_TRUE, T)
    target = forward_messages(grid.P, pi_expert, grid.p0, T).sum(axis=0) @ grid.features
    reference = irl.maxent_irl_from_expectations(
        grid.P, grid.features, target, horizon=T, p0=grid.p0
    )
    result = irl.maxent_irl_from_expectations(
        grid.P,
        grid.features,
        target,
        horizon=T,
        p0=grid.p0,
        optimizer=optimizer,
        lr=lr,
        n_iters=3000,
        tol=1e-4,
    )
    assert result.feature_gap[-1] < min(1e-2, result.feature_gap[0] / 100)
    assert result.log_likelihood[-1] == pytest.approx(reference.log_likelihood[-1], abs=1e-4)
    if optimizer == "gradient":  # small steps on a concave function: monotone
        assert np.all(np.diff(result.log_likelihood) >= -1e-12)


def test_temperature_only_rescales_theta(grid):
    T = 15
    states, actions = sample_trajectories(
        grid, soft_expert(grid, THETA_TRUE, T), T, 50, np.random.default_rng(1)
    )
    base = irl.maxent_irl(grid.P, grid.features, states, actions, horizon=T)
    cold = irl.maxent_irl(grid.P, grid.features, states, actions, horizon=T, alpha=1e-3)
    assert np.isfinite(cold.theta).all() and np.isfinite(cold.policy).all()
    np.testing.assert_allclose(cold.theta, 1e-3 * base.theta, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(cold.policy, base.policy, atol=1e-9)
    np.testing.assert_allclose(cold.log_likelihood, base.log_likelihood)


def test_large_rewards_stay_finite(grid):
    T = 15
    target = (
        forward_messages(grid.P, soft_expert(grid, 300 * THETA_TRUE, T), grid.p0, T).sum(axis=0)
        @ grid.features
    )
    result = irl.maxent_irl_from_expectations(
        grid.P,
        grid.features,
        target,
        horizon=T,
        p0=grid.p0,
        theta0=300 * THETA_TRUE + 5.0,
        n_iters=20,
    )
    assert np.isfinite(result.theta).all() and np.isfinite(result.log_likelihood).all()
    assert np.abs(result.reward).max() > 500
    assert result.feature_gap[-1] < 1e-3


def test_optimistic_model_matches_its_own_posterior_counts(grid):
    T = 12
    states, actions = sample_trajectories(
        grid, soft_expert(grid, THETA_TRUE, T), T, 100, np.random.default_rng(2)
    )
    result = irl.maxent_irl(grid.P, grid.features, states, actions, horizon=T, optimistic=True)
    assert result.converged and result.optimistic
    counts = np.einsum("tsa,sk->k", result.visitation, grid.features)
    np.testing.assert_allclose(counts, result.expert_feature_expectations, atol=1e-5)


def test_maximum_likelihood_is_minus_the_maximum_causal_entropy(grid):
    T = 15
    target = (
        forward_messages(grid.P, soft_expert(grid, THETA_TRUE, T), grid.p0, T).sum(axis=0)
        @ grid.features
    )
    result = irl.maxent_irl_from_expectations(
        grid.P, grid.features, target, horizon=T, p0=grid.p0, tol=1e-9
    )
    H = irl.causal_entropy(grid.P, result.policy, grid.p0, T)
    assert result.log_likelihood[-1] == pytest.approx(-H, abs=1e-6)


def test_a_gaussian_prior_keeps_weights_finite_when_a_feature_never_occurs(grid):
    T = 15
    states, actions = sample_trajectories(
        grid, soft_expert(grid, THETA_TRUE, T), T, 3, np.random.default_rng(4)
    )
    assert irl.feature_expectations(grid.features, states)[2] == 0  # no lava step in these demos
    mle = irl.maxent_irl(grid.P, grid.features, states, actions, horizon=T, n_iters=100)
    assert (
        mle.theta[2] - mle.theta[0] < -10
    )  # maximum likelihood pushes the lava weight towards -inf
    for l2 in (0.01, 0.1):
        map_fit = irl.maxent_irl(grid.P, grid.features, states, actions, horizon=T, l2=l2)
        assert map_fit.converged and np.isfinite(map_fit.theta).all()
        assert np.abs(map_fit.theta).max() < np.abs(mle.theta).max()
        assert map_fit.theta[2] == map_fit.theta.min()  # lava is still the worst cell type


# ------------------------------------------------------------------ input validation


@pytest.fixture(scope="module")
def demos(grid):
    return sample_trajectories(
        grid, soft_expert(grid, THETA_TRUE, 6), 6, 5, np.random.default_rng(3)
    )


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda s, a, F: (np.where(s == s[0, 0], 999, s), a, F),
            r"expert_states\[0, 0\] = 999 is not a valid state index",
        ),
        (
            lambda s, a, F: (s, np.where(a == a[0, 1], -1, a), F),
            r"expert_actions\[0, 1\] = -1 is not a valid action index",
        ),
        (lambda s, a, F: ([[0, 1, 2, 3, 4, 5], [0, 1]], a, F), "ragged"),
        (lambda s, a, F: (s, a, F[:-1]), r"features must have shape \(S, K\)"),
        (lambda s, a, F: (s, a, F[:, 0]), r"features must have shape \(S, K\)"),
        (lambda s, a, F: (s[:, :-1], a[:, :-1], F), "horizon"),
        (lambda s, a, F: (s, a[:-1], F), "same shape"),
        (lambda s, a, F: (s + 0.5, a, F), "integer state indices"),
        (lambda s, a, F: (s[0], a[0], F), r"shape \(N, T\)"),
        (lambda s, a, F: (s, a, np.where(F > 0, np.nan, F)), "NaN"),
    ],
    ids=[
        "state-out-of-range",
        "negative-action",
        "ragged",
        "features-rows",
        "features-1d",
        "length",
        "shape-mismatch",
        "float-states",
        "1d-demos",
        "nan-features",
    ],
)
def test_maxent_irl_rejects_bad_inputs(grid, demos, change, message):
    states, actions, features = change(*demos, grid.features)
    with pytest.raises(ValueError, match=message):
        irl.maxent_irl(grid.P, features, states, actions, horizon=6)


def test_maxent_irl_rejects_bad_options(grid, demos):
    states, actions = demos
    with pytest.raises(ValueError, match="optimizer must be one of"):
        irl.maxent_irl(grid.P, grid.features, states, actions, horizon=6, optimizer="newton")
    with pytest.raises(ValueError, match="alpha"):
        irl.maxent_irl(grid.P, grid.features, states, actions, horizon=6, alpha=0.0)
    with pytest.raises(ValueError, match="p0"):
        irl.maxent_irl(grid.P, grid.features, states, actions, horizon=6, p0=np.ones(grid.n_states))
    with pytest.raises(ValueError, match="l2 must be a non-negative number"):
        irl.maxent_irl(grid.P, grid.features, states, actions, horizon=6, l2=-1.0)
    with pytest.raises(ValueError, match="expert_feature_expectations"):
        irl.maxent_irl_from_expectations(grid.P, grid.features, np.zeros(3), horizon=6, p0=grid.p0)


def test_integer_valued_float_demos_and_lists_are_accepted(grid, demos):
    states, actions = demos
    a = irl.maxent_irl(grid.P, grid.features, states.tolist(), actions.astype(float), horizon=6)
    b = irl.maxent_irl(grid.P, grid.features, states, actions, horizon=6)
    np.testing.assert_allclose(a.theta, b.theta)


# ------------------------------------------------------------------ evaluation and max margin helpers


def test_entropy_return_and_policy_log_likelihood_on_simple_policies():
    _, P, _, p0, _ = random_problem(10, S=4, A=3)
    uniform = np.full((4, 3), 1 / 3)
    assert irl.causal_entropy(P, uniform, p0, 6) == pytest.approx(6 * np.log(3))
    deterministic = np.eye(3)[[0, 2, 1, 0]]
    assert irl.causal_entropy(P, deterministic, p0, 6) == pytest.approx(0.0)
    R = np.arange(12.0).reshape(4, 3)
    D = forward_messages(P, uniform, p0, 6)
    assert irl.expected_return(P, R, uniform, p0, 6) == pytest.approx(np.sum(D @ R.mean(axis=1)))
    states, actions = np.array([[0, 1, 2]]), np.array([[0, 0, 1]])
    assert irl.policy_log_likelihood(uniform, states, actions) == pytest.approx(3 * np.log(1 / 3))
    assert irl.policy_log_likelihood(deterministic, states, actions) == -np.inf


def test_greedy_policy_is_optimal_by_brute_force():
    _, P, _, p0, _ = random_problem(11, S=3, A=2)
    R = np.random.default_rng(12).normal(size=(3, 2))
    T = 3
    pi = irl.greedy_policy(P, R, T)
    assert set(np.unique(pi)) <= {0.0, 1.0} and np.allclose(pi.sum(-1), 1)
    best = -np.inf
    for choice in itertools.product(
        range(2), repeat=3 * T
    ):  # every deterministic time-indexed policy
        candidate = np.eye(2)[np.array(choice).reshape(T, 3)]
        best = max(best, irl.expected_return(P, R, candidate, p0, T))
    assert irl.expected_return(P, R, pi, p0, T) == pytest.approx(best)


def test_projection_reduces_the_margin_and_its_mixture_matches_the_expert(grid):
    T = 20
    pi_expert = soft_expert(grid, THETA_TRUE, T)
    target = forward_messages(grid.P, pi_expert, grid.p0, T).sum(axis=0) @ grid.features
    result = irl.apprenticeship_projection(grid.P, grid.features, target, grid.p0, T, n_iters=60)
    assert np.all(np.diff(result.margins[1:]) <= 1e-12)
    assert np.linalg.norm(result.mixture_feature_expectations - target) < 0.1 * result.margins[1]
    assert (
        result.mixture_weights.sum() == pytest.approx(1.0) and (result.mixture_weights >= 0).all()
    )
    np.testing.assert_allclose(
        result.mixture_weights @ result.feature_expectations,
        result.mixture_feature_expectations,
        atol=1e-9,
    )
    # the Markov policy of the mixture has the mixture's feature counts
    markov = irl.mixture_policy(grid.P, result.policies, result.mixture_weights, grid.p0, T)
    counts = forward_messages(grid.P, markov, grid.p0, T).sum(axis=0) @ grid.features
    np.testing.assert_allclose(counts, result.mixture_feature_expectations, atol=1e-9)
