"""course_utils.mdp and course_utils.inference: the tabular contract, checked from first principles."""

import itertools
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

from course_utils.inference import (
    backward_messages,
    forward_messages,
    soft_max,
    soft_policy,
    soft_value_iteration,
    value_iteration,
)
from course_utils.mdp import TabularEnv, TabularMDP, gridworld, sample_trajectories

LAYOUT = ["S..#", ".#.G", "...T"]


def random_mdp(rng, S, A, deterministic=False, sparsity=0.0):
    if deterministic:
        P = np.zeros((S, A, S))
        P[np.arange(S)[:, None], np.arange(A)[None, :], rng.integers(S, size=(S, A))] = 1.0
    else:
        P = rng.random((S, A, S)) * (rng.random((S, A, S)) >= sparsity)
        P[..., 0] += 1e-3  # every row keeps some mass
        P /= P.sum(axis=2, keepdims=True)
    return P, rng.normal(size=(S, A))


mdp_sizes = st.tuples(st.integers(1, 6), st.integers(1, 4), st.integers(0, 2**31 - 1))


# ------------------------------------------------------------------ validation


def test_transition_rows_that_do_not_sum_to_one_are_named():
    P = np.full((2, 2, 2), 0.5)
    P[1, 0] = [0.5, 0.4]
    with pytest.raises(ValueError, match=r"P\[1, 0, :\] sums to 0.9 \(off by -0.1\)"):
        TabularMDP(P, np.zeros((2, 2)), np.array([1.0, 0.0]))


@pytest.mark.parametrize(
    "P, R, p0, message",
    [
        (
            np.full((2, 2, 3), 1 / 3),
            np.zeros((2, 2)),
            [1, 0],
            r"P must have shape \(S, A, S\), got \(2, 2, 3\)",
        ),
        (
            np.full((2, 2, 2), 0.5),
            np.zeros((2, 3)),
            [1, 0],
            r"R must have shape \(S, A\) = \(2, 2\), got \(2, 3\)",
        ),
        (np.full((2, 2, 2), 0.5), np.zeros((2, 2)), [0.7, 0.2], r"p0 sums to 0.9 \(off by -0.1\)"),
        (np.full((2, 2, 2), 0.5), np.zeros((2, 2)), [1.5, -0.5], r"p0\[1\] = -0.5"),
        (np.full((2, 2, 2), 0.5), np.full((2, 2), np.nan), [1, 0], r"R\[0, 0\] is nan"),
        (
            np.stack([np.full((2, 2), 1.5), np.full((2, 2), -0.5)], axis=2),
            np.zeros((2, 2)),
            [1, 0],
            "is negative",
        ),
    ],
)
def test_invalid_mdps_are_rejected_clearly(P, R, p0, message):
    with pytest.raises(ValueError, match=message):
        TabularMDP(P, R, np.asarray(p0, dtype=float))


# ------------------------------------------------------------------ gridworld


def test_gridworld_structure():
    mdp = gridworld(LAYOUT, rewards={"G": 1.0, "T": -1.0}, step_reward=-0.1, slip=0.2)
    assert mdp.n_states == 10 and mdp.n_actions == 5  # 12 cells minus 2 walls
    assert mdp.p0[0] == 1.0 and mdp.state_names[0] == ".(0,0)"
    goal = mdp.state_names.index("G(1,3)")
    assert np.all(mdp.P[goal, :, goal] == 1.0) and np.all(mdp.R[goal] == 1.0)
    assert np.all(mdp.R[0] == -0.1)
    # from (0,0), "right" reaches (0,1) with 0.8 + 0.2/4; up and left bump into the border
    assert mdp.P[0, 1, 1] == pytest.approx(0.85)
    assert mdp.P[0, 1, 0] == pytest.approx(0.1)
    assert mdp.P[0, 4, 0] == pytest.approx(0.8 + 0.1)  # stay, or slip into the border
    assert mdp.features.shape == (10, 3) and np.all(mdp.features.sum(axis=1) == 1)
    grid = mdp.to_grid(np.arange(10.0))
    assert (
        grid.shape == (3, 4)
        and np.isnan(grid[0, 3])
        and np.isnan(grid[1, 1])
        and grid[1, 3] == goal
    )


def test_gridworld_rejects_bad_layouts():
    with pytest.raises(ValueError, match="equal length"):
        gridworld(["...", ".."])
    with pytest.raises(ValueError, match="slip must be a probability"):
        gridworld(["..G"], slip=1.5)


def test_gymnasium_wrapper_samples_the_same_world():
    from gymnasium.utils.env_checker import check_env

    mdp = gridworld(LAYOUT, slip=0.1)
    env = TabularEnv(mdp, horizon=7, render_mode="ansi")
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=3)
    assert obs == 0 and "@" in env.render()
    for t in range(7):
        previous = obs
        obs, reward, terminated, truncated, _ = env.step(1)
        assert reward == mdp.R[previous, 1]  # the reward of the state-action just taken
        assert mdp.P[previous, 1, obs] > 0
        assert not terminated and truncated == (t == 6)
    with pytest.raises(ValueError, match="action must be an integer"):
        env.step(9)


def test_sampled_trajectories_follow_the_forward_messages():
    mdp = gridworld(LAYOUT, slip=0.3)
    Q, V = backward_messages(mdp.P, mdp.R, 6)
    pi = soft_policy(Q, V)
    states, actions = sample_trajectories(mdp, pi, 6, 20_000, np.random.default_rng(0))
    D = forward_messages(mdp.P, pi, mdp.p0, 6)
    empirical = np.stack(
        [np.bincount(states[:, t], minlength=mdp.n_states) / 20_000 for t in range(6)]
    )
    assert np.abs(empirical - D).max() < 0.02
    assert states.shape == actions.shape == (20_000, 6) and actions.max() < 5


# ------------------------------------------------------------------ messages


def test_optimistic_messages_equal_brute_force_log_evidence():
    """exp V_0(s) = sum over all action sequences and next states of p(tau | s) exp(sum_t r)."""
    rng = np.random.default_rng(1)
    P, R = random_mdp(rng, 3, 2)
    T = 3
    _, V = backward_messages(P, R, T, optimistic=True)
    for s0 in range(3):
        total = 0.0
        for acts in itertools.product(range(2), repeat=T):
            for nxt in itertools.product(range(3), repeat=T - 1):
                states = (s0, *nxt)
                prob = np.prod([P[states[t], acts[t], states[t + 1]] for t in range(T - 1)])
                total += prob * np.exp(sum(R[states[t], acts[t]] for t in range(T)))
        assert V[0, s0] == pytest.approx(np.log(total), rel=1e-12)


def test_variational_messages_follow_the_contract():
    rng = np.random.default_rng(2)
    P, R = random_mdp(rng, 4, 3)
    Q, V = backward_messages(P, R, 5, alpha=0.5)
    assert Q.shape == (5, 4, 3) and V.shape == (5, 4)
    assert np.allclose(Q[-1], R)
    assert np.allclose(Q[1], R + np.einsum("sap,p->sa", P, V[2]))
    assert np.allclose(V, 0.5 * logsumexp(Q / 0.5, axis=-1))


@settings(max_examples=40, deadline=None)
@given(mdp_sizes, st.integers(1, 6), st.floats(1e-3, 10.0))
def test_policies_are_distributions_and_forward_messages_conserve_probability(size, T, alpha):
    S, A, seed = size
    rng = np.random.default_rng(seed)
    P, R = random_mdp(rng, S, A, sparsity=0.5)
    for optimistic in (False, True):
        Q, V = backward_messages(P, R, T, alpha=alpha, optimistic=optimistic)
        pi = soft_policy(Q, V, alpha)
        assert np.all(pi >= 0) and np.allclose(pi.sum(axis=-1), 1.0)
        p0 = rng.dirichlet(np.ones(S))
        D = forward_messages(P, pi, p0, T)
        assert np.all(D >= -1e-15) and np.allclose(D.sum(axis=1), 1.0)


@settings(max_examples=40, deadline=None)
@given(mdp_sizes, st.integers(1, 6), st.floats(1e-3, 10.0))
def test_optimistic_and_variational_coincide_for_deterministic_dynamics(size, T, alpha):
    S, A, seed = size
    P, R = random_mdp(np.random.default_rng(seed), S, A, deterministic=True)
    Qv, Vv = backward_messages(P, R, T, alpha=alpha)
    Qo, Vo = backward_messages(P, R, T, alpha=alpha, optimistic=True)
    assert np.allclose(Qv, Qo, rtol=1e-9, atol=1e-9) and np.allclose(Vv, Vo, rtol=1e-9, atol=1e-9)


def test_optimism_under_stochastic_dynamics():
    """log E[exp V] >= E[V] (Jensen): the exact messages are optimistic about luck."""
    P, R = random_mdp(np.random.default_rng(3), 5, 3)
    Qv, _ = backward_messages(P, R, 4)
    Qo, _ = backward_messages(P, R, 4, optimistic=True)
    assert np.all(Qo >= Qv - 1e-12) and np.any(Qo > Qv + 1e-3)


@settings(max_examples=30, deadline=None)
@given(mdp_sizes, st.floats(0.0, 0.95))
def test_alpha_to_zero_recovers_hard_value_iteration(size, gamma):
    S, A, seed = size
    P, R = random_mdp(np.random.default_rng(seed), S, A)
    _, V_hard = value_iteration(P, R, gamma=gamma)
    for alpha in (1e-1, 1e-2, 1e-3):
        _, V_soft = soft_value_iteration(P, R, gamma=gamma, alpha=alpha)
        # the soft max exceeds the max by at most alpha log A per step
        gap = V_soft - V_hard
        assert np.all(gap >= -1e-8) and np.all(gap <= alpha * np.log(A) / (1 - gamma) + 1e-8)


def test_soft_value_iteration_is_a_fixed_point():
    P, R = random_mdp(np.random.default_rng(4), 6, 3)
    Q, V = soft_value_iteration(P, R, gamma=0.9, alpha=0.3, tol=1e-12)
    assert np.array_equal(V, soft_max(Q, 0.3))  # V is exactly the soft max of the returned Q
    assert np.allclose(soft_policy(Q, V, 0.3).sum(axis=1), 1.0, atol=1e-14)
    assert np.allclose(Q, R + 0.9 * np.einsum("sap,p->sa", P, V), atol=1e-10)


def test_extreme_rewards_and_temperatures_stay_finite():
    P, R = random_mdp(np.random.default_rng(5), 6, 3, sparsity=0.6)
    R = 1e3 * np.sign(R)
    for optimistic in (False, True):
        Q, V = backward_messages(P, R, 10, alpha=1e-3, optimistic=optimistic)
        assert np.isfinite(Q).all() and np.isfinite(V).all()
        assert np.isfinite(soft_policy(Q, V, 1e-3)).all()
    Q, V = soft_value_iteration(P, R, gamma=0.9, alpha=1e-3)
    assert np.isfinite(Q).all() and np.isfinite(V).all()
    assert np.allclose(soft_max(np.array([[1e3, -1e3]]), 1e-3), 1e3)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda P, R: backward_messages(P, R, 3, alpha=0.0), "alpha .* must be a positive number"),
        (lambda P, R: backward_messages(P, R[:, :1], 3), r"R must have shape \(S, A\) = \(3, 2\)"),
        (lambda P, R: backward_messages(P, R, 0), "horizon must be a positive integer"),
        (lambda P, R: forward_messages(P, np.full((3, 2), 0.4), np.ones(3) / 3, 3), r"sums to 0.8"),
        (lambda P, R: forward_messages(P, np.full((2, 3, 2), 0.5), np.ones(3) / 3, 3), "T >= 3"),
        (lambda P, R: soft_value_iteration(P, R, gamma=1.0), r"gamma must be in \[0, 1\)"),
        (lambda P, R: soft_policy(np.zeros((3, 2)), np.zeros(2)), "V must have Q's shape"),
    ],
)
def test_bad_arguments_get_clear_errors(call, message):
    P, R = random_mdp(np.random.default_rng(6), 3, 2)
    with pytest.raises(ValueError, match=message):
        call(P, R)


def test_non_convergence_warns():
    P, R = random_mdp(np.random.default_rng(7), 3, 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        soft_value_iteration(P, R, gamma=0.99, max_iter=3)
    assert any("did not reach tol" in str(w.message) for w in caught)
