"""Unit tests of course_utils.lmdp (linearly solvable MDPs)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course_utils.inference import backward_messages, soft_policy, soft_value_iteration
from course_utils.lmdp import (
    average_reward_desirability,
    controlled_dynamics,
    finite_horizon_desirability,
    first_exit_desirability,
    lmdp_rewards,
    passive_dynamics,
)
from course_utils.mdp import gridworld, random_mdp

LAYOUT = ["S..#.", ".B...", "...#G"]


def _grid(absorbing="G"):
    grid = gridworld(LAYOUT, rewards={"G": 0.0, "B": -3.0}, step_reward=-1.0, absorbing=absorbing)
    goal = np.array([name.startswith("G") for name in grid.state_names])
    return grid, passive_dynamics(grid.P), grid.R[:, 0], goal


@pytest.mark.parametrize("alpha", [0.3, 1.0, 3.0])
def test_first_exit_equals_backward_messages_and_soft_value_iteration(alpha):
    grid, p, r, goal = _grid()
    z = first_exit_desirability(p, r, goal, alpha)
    V = alpha * np.log(z)
    R = lmdp_rewards(r, grid.n_actions, alpha)
    _, V_msg = backward_messages(grid.P, R, 300, alpha=alpha)
    np.testing.assert_allclose(V_msg[0], V, atol=1e-8)
    Q, V_svi = soft_value_iteration(grid.P, R, gamma=1 - 1e-12, alpha=alpha, tol=1e-13)
    np.testing.assert_allclose(V_svi, V, atol=1e-8)
    u = controlled_dynamics(p, z)  # the soft-optimal policy pushed through the moves
    np.testing.assert_allclose(
        u, np.einsum("sa,sap->sp", soft_policy(Q, V_svi, alpha), grid.P), atol=1e-8
    )


def test_first_exit_solves_the_linear_bellman_equation():
    _, p, r, goal = _grid()
    z = first_exit_desirability(p, r, goal, 0.7)
    g = np.exp(r / 0.7)
    np.testing.assert_allclose(z[~goal], (g * (p @ z))[~goal], rtol=1e-12)
    np.testing.assert_allclose(z[goal], g[goal])


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_states=st.integers(2, 8),
    n_actions=st.integers(1, 4),
    horizon=st.integers(1, 12),
    alpha=st.floats(0.05, 5.0),
)
def test_finite_horizon_equals_backward_messages_of_a_deterministic_mdp(
    seed, n_states, n_actions, horizon, alpha
):
    """Any deterministic MDP with a uniform action prior is an LMDP with p = mean_a P."""
    rng = np.random.default_rng(seed)
    P, _ = random_mdp(rng, n_states, n_actions, kind="deterministic")
    r = rng.normal(size=n_states)
    V = finite_horizon_desirability(passive_dynamics(P), r, horizon, alpha)
    _, V_msg = backward_messages(P, lmdp_rewards(r, n_actions, alpha), horizon, alpha=alpha)
    np.testing.assert_allclose(V, V_msg, atol=1e-9, rtol=1e-9)


def test_finite_horizon_stays_finite_for_large_rewards_and_small_alpha():
    _, p, r, _ = _grid()
    V = finite_horizon_desirability(p, 1e3 * r, 30, alpha=1e-3)
    assert np.isfinite(V).all()


def test_lmdp_rewards_with_a_prior_matches_the_uniform_default():
    r = np.array([0.5, -1.0, 2.0])
    uniform = np.full((3, 4), 0.25)
    np.testing.assert_allclose(lmdp_rewards(r, 4, 0.3, uniform), lmdp_rewards(r, 4, 0.3))


def test_average_reward_is_the_perron_root_and_what_the_controlled_chain_earns():
    grid, p, r, _ = _grid(absorbing="")
    alpha = 0.8
    rho, z = average_reward_desirability(p, r, alpha)
    assert (z > 0).all() and z.max() == 1.0
    np.testing.assert_allclose(np.exp(r / alpha) * (p @ z), np.exp(rho / alpha) * z, rtol=1e-8)
    u = controlled_dynamics(p, z)
    w, left = np.linalg.eig(u.T)
    mu = np.abs(left[:, np.argmax(w.real)].real)
    mu /= mu.sum()
    ratio = np.divide(u, p, out=np.ones_like(u), where=p > 0)
    earned = mu @ (r - alpha * np.sum(u * np.log(ratio), axis=1))
    assert earned == pytest.approx(rho, abs=1e-10)
    _, V = backward_messages(grid.P, lmdp_rewards(r, grid.n_actions, alpha), 400, alpha=alpha)
    np.testing.assert_allclose(V[0] - V[1], rho, atol=1e-8)


def test_average_reward_does_not_overflow_for_large_rewards():
    _, p, r, _ = _grid(absorbing="")
    rho, z = average_reward_desirability(p, 1e3 * r, 1.0)
    assert np.isfinite(rho) and np.isfinite(z).all()


def test_controlled_dynamics_rows_are_distributions_on_the_support_of_p():
    _, p, r, goal = _grid()
    u = controlled_dynamics(p, first_exit_desirability(p, r, goal, 1.0))
    np.testing.assert_allclose(u.sum(axis=1), 1.0)
    assert ((u > 0) == (p > 0)).all()


def test_passive_dynamics_with_a_prior():
    P = np.zeros((2, 2, 2))
    P[:, 0, 0] = P[:, 1, 1] = 1.0
    np.testing.assert_allclose(
        passive_dynamics(P, np.array([[0.3, 0.7], [1.0, 0.0]])), [[0.3, 0.7], [1.0, 0.0]]
    )
    with pytest.raises(ValueError, match="prior must have shape"):
        passive_dynamics(P, np.ones(2))


@pytest.mark.parametrize(
    "args, message",
    [
        ((np.ones((2, 3)) / 3, np.zeros(2), np.array([True, False])), "square"),
        ((np.eye(2), np.zeros(3), np.array([True, False])), "r must have shape"),
        ((np.eye(2), np.zeros(2), np.array([False, False])), "at least one goal"),
        ((np.eye(2), np.array([0.0, np.inf]), np.array([True, False])), "finite"),
        ((np.array([[0.5, 0.6], [0, 1]]), np.zeros(2), np.array([True, False])), "sum"),
    ],
)
def test_first_exit_rejects_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        first_exit_desirability(*args, alpha=1.0)


def test_bad_alpha_and_horizon_are_rejected():
    with pytest.raises(ValueError, match="alpha must be positive"):
        average_reward_desirability(np.eye(2), np.zeros(2), alpha=0.0)
    with pytest.raises(ValueError, match="horizon"):
        finite_horizon_desirability(np.eye(2), np.zeros(2), 0)
