"""The point mass of course_utils.envs: gymnasium API, dynamics, changed dynamics, expert."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from course_utils.envs import POINT_MASS_ID, PointMassEnv


@pytest.mark.parametrize(
    "kwargs", [{}, {"action_rotation": np.pi / 2}, {"wall": True}, {"action_scale": 0.5}]
)
def test_passes_gymnasium_env_checker(kwargs):
    check_env(PointMassEnv(**kwargs), skip_render_check=True)


def test_registered_and_seeded_reset_is_reproducible():
    import course_utils.envs  # noqa: F401  (registers the id)

    env = gym.make(POINT_MASS_ID)
    a, _ = env.reset(seed=3)
    b, _ = env.reset(seed=3)
    c, _ = env.reset(seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_step_moves_by_rotated_scaled_action_and_reward_is_negative_distance():
    env = PointMassEnv(action_rotation=np.pi / 2, action_scale=0.5, start_spread=0.0)
    obs, _ = env.reset(seed=0)
    np.testing.assert_allclose(obs, [-0.6, -0.6])
    new, reward, terminated, truncated, info = env.step(np.array([1.0, 0.0]))
    # rotating (1, 0) by 90 degrees gives (0, 1); scaled by 0.5 and step 0.1: +0.05 in y
    np.testing.assert_allclose(new, [-0.6, -0.55], atol=1e-6)
    assert reward == pytest.approx(-np.linalg.norm(np.array([-0.6, -0.55]) - env.goal))
    assert not terminated and not truncated and not info["in_goal"]


def test_episode_is_truncated_at_the_horizon_never_terminated():
    env = PointMassEnv(horizon=7)
    env.reset(seed=0)
    flags = [env.step(env.action_space.sample())[2:4] for _ in range(7)]
    assert [f[0] for f in flags] == [False] * 7
    assert [f[1] for f in flags] == [False] * 6 + [True]


def test_wall_blocks_crossing_below_its_top_only():
    env = PointMassEnv(wall=True, wall_top=0.4)
    env._pos = np.array([-0.05, 0.0])
    new, *_ = env.step(np.array([1.0, 0.0]))
    assert new[0] < 0, "crossed the wall"
    env._pos = np.array([-0.05, 0.6])
    new, *_ = env.step(np.array([1.0, 0.0]))
    assert new[0] > 0, "blocked above the wall's top"


@pytest.mark.parametrize(
    "kwargs", [{}, {"action_rotation": np.pi / 2}, {"wall": True}, {"action_scale": 0.5}]
)
def test_expert_reaches_the_goal_and_beats_random(kwargs):
    env = PointMassEnv(**kwargs)
    for seed in range(10):
        obs, _ = env.reset(seed=seed)
        for _ in range(env.horizon):
            obs, _, _, _, info = env.step(env.expert_action(obs))
        assert info["in_goal"], f"expert missed the goal from seed {seed} with {kwargs}"
    batch = np.array([[-0.5, -0.5], [0.0, 0.9]])
    assert env.expert_action(batch).shape == (2, 2)
    assert np.abs(env.expert_action(batch)).max() <= 1.0


def test_rejects_non_finite_actions_and_bad_parameters():
    env = PointMassEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="positive"):
        PointMassEnv(horizon=0)
