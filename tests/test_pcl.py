"""Unit tests of course_utils.pcl (path consistency learning)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_utils.inference import soft_policy, soft_value_iteration
from course_utils.mdp import TabularMDP, gridworld, random_mdp
from course_utils.pcl import fit_pcl, path_consistency, pcl_loss, sample_segments

GAMMA, ALPHA = 0.9, 0.5


def _grid(slip):
    return gridworld(
        ["S..#.", "...B.", ".#..G"],
        rewards={"G": 1.0, "B": -2.0},
        step_reward=-0.1,
        slip=slip,
        absorbing="",
    )


def _optimum(mdp):
    Q, V = soft_value_iteration(mdp.P, mdp.R, gamma=GAMMA, alpha=ALPHA, tol=1e-13)
    return V, soft_policy(Q, V, ALPHA)


def _uniform(mdp):
    return np.full((mdp.n_states, mdp.n_actions), 1 / mdp.n_actions)


def _consistency(V, pi, segments):
    return path_consistency(
        torch.tensor(V), torch.tensor(np.log(pi)), *segments, GAMMA, ALPHA
    ).numpy()


@pytest.mark.parametrize("d", [1, 3, 7])
def test_consistency_holds_on_every_path_of_a_deterministic_mdp(d):
    rng = np.random.default_rng(d)
    P, R = random_mdp(rng, 6, 3, kind="deterministic")
    mdp = TabularMDP(P, R, np.full(6, 1 / 6))
    V, pi = _optimum(mdp)
    segments = sample_segments(mdp, _uniform(mdp), n_trajectories=30, length=10, d=d, rng=rng)
    assert np.abs(_consistency(V, pi, segments)).max() < 1e-9


def test_with_slip_the_consistency_holds_on_average_only():
    mdp = _grid(slip=0.2)
    V, pi = _optimum(mdp)
    expected = mdp.R + GAMMA * mdp.P @ V - ALPHA * np.log(pi) - V[:, None]
    assert np.abs(expected).max() < 1e-9  # E_{s'}[one-step C] = 0 for every (s, a)
    rng = np.random.default_rng(0)
    segments = sample_segments(mdp, _uniform(mdp), n_trajectories=100, length=10, d=1, rng=rng)
    assert np.abs(_consistency(V, pi, segments)).max() > 0.1


def test_pcl_recovers_soft_values_from_uniform_data_on_a_deterministic_grid():
    mdp = _grid(slip=0.0)
    V, pi = _optimum(mdp)
    rng = np.random.default_rng(0)
    segments = sample_segments(mdp, _uniform(mdp), n_trajectories=200, length=20, d=4, rng=rng)
    V_fit, pi_fit, history = fit_pcl(
        segments, mdp.n_states, mdp.n_actions, gamma=GAMMA, alpha=ALPHA, steps=100
    )
    assert np.abs(V_fit - V).max() < 1e-3
    assert np.abs(pi_fit - pi).max() < 1e-3
    assert history[-1] < 1e-8 < history[0]


def test_pcl_loss_is_half_mean_square_and_reaches_both_tables():
    torch.manual_seed(0)
    values = torch.randn(4, dtype=torch.float64, requires_grad=True)
    log_pi = torch.log_softmax(torch.randn(4, 2, dtype=torch.float64), 1).requires_grad_()
    states = torch.tensor([[0, 1, 2], [3, 3, 1]])
    actions = torch.tensor([[0, 1], [1, 1]])
    rewards = torch.tensor([[1.0, -1.0], [0.5, 0.0]], dtype=torch.float64)
    C = path_consistency(values, log_pi, states, actions, rewards, 0.9, 0.3)
    by_hand = torch.stack(
        [
            -values[s[0]]
            + 0.9**2 * values[s[2]]
            + sum(0.9**j * (r[j] - 0.3 * log_pi[s[j], a[j]]) for j in range(2))
            for s, a, r in zip(states, actions, rewards, strict=True)
        ]
    )
    torch.testing.assert_close(C, by_hand)
    loss = pcl_loss(values, log_pi, states, actions, rewards, 0.9, 0.3)
    torch.testing.assert_close(loss, 0.5 * (by_hand**2).mean())
    loss.backward()
    assert values.grad[[0, 2, 3, 1]].abs().min() > 0 and log_pi.grad.abs().sum() > 0


def test_sample_segments_are_windows_of_the_trajectories():
    mdp = _grid(slip=0.2)
    segments = sample_segments(
        mdp, _uniform(mdp), n_trajectories=5, length=6, d=2, rng=np.random.default_rng(0)
    )
    assert segments.states.shape == (20, 3)
    assert segments.actions.shape == segments.rewards.shape == (20, 2)
    s, a = segments.states.numpy(), segments.actions.numpy()
    np.testing.assert_array_equal(segments.rewards.numpy(), mdp.R[s[:, :-1], a])
    # consecutive windows of one trajectory overlap: window i+1 starts where window i's step 1 is
    np.testing.assert_array_equal(s[5:10, 0], s[0:5, 1])
    assert (mdp.P[s[:, :-1], a, s[:, 1:]] > 0).all()  # every step is a possible transition


def test_sample_segments_rejects_bad_d():
    mdp = _grid(slip=0.0)
    with pytest.raises(ValueError, match="1 <= d < length"):
        sample_segments(
            mdp, _uniform(mdp), n_trajectories=2, length=3, d=3, rng=np.random.default_rng()
        )
