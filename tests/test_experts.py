"""The analytic experts of course_utils.rl.experts: fast, deterministic, near-optimal."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_utils.envs import PointMassEnv
from course_utils.rl import evaluate
from course_utils.rl.experts import (
    CartPoleExpert,
    PendulumExpert,
    generate_demonstrations,
    make_expert,
    point_mass_expert,
)


def test_cartpole_expert_balances_for_500_steps():
    result = evaluate(CartPoleExpert(), "CartPole-v1", 10, seed=10_000)
    assert result.mean == 500.0


def test_pendulum_expert_swings_up():
    result = evaluate(PendulumExpert(), "Pendulum-v1", 10, seed=10_000)
    assert result.mean > -130.0  # measured: -110.5 (uniformly random actions: about -1200)


def test_point_mass_expert_under_rotated_dynamics():
    def rotated():
        return PointMassEnv(action_rotation=np.pi / 2)

    assert evaluate(point_mass_expert(action_rotation=np.pi / 2), rotated, 5, seed=0).mean > -12.0
    assert evaluate(point_mass_expert(), rotated, 5, seed=0).mean < -40.0  # the old expert is lost


def test_experts_accept_numpy_and_torch_batches_and_single_observations():
    cart = CartPoleExpert()
    obs = np.array([[0.0, 0.0, 0.05, 0.0], [0.0, 0.0, -0.05, 0.0]])
    assert cart(obs).tolist() == [1, 0]
    assert cart(obs[0]) == 1
    assert torch.equal(cart(torch.as_tensor(obs, dtype=torch.float32)), torch.tensor([1, 0]))
    pend = PendulumExpert()
    upright = np.array([1.0, 0.0, 0.0])
    assert pend(upright).shape == (1,) and abs(float(pend(upright)[0])) < 1e-9
    assert pend(torch.zeros(3, 3) + torch.tensor([-1.0, 0.0, 0.0])).shape == (3, 1)


def test_demonstrations_are_deterministic_and_consistent():
    a = generate_demonstrations(CartPoleExpert(), "CartPole-v1", 2, seed=3)
    b = generate_demonstrations(CartPoleExpert(), "CartPole-v1", 2, seed=3)
    assert len(a) == 1000 and a.returns.tolist() == [500.0, 500.0]
    assert torch.equal(a.transitions.obs, b.transitions.obs)
    assert a.transitions.actions.dtype == torch.int64
    assert torch.equal(a.transitions.obs[1:500], a.transitions.next_obs[:499])
    p = generate_demonstrations(PendulumExpert(), "Pendulum-v1", 1, seed=0, action_noise=0.3)
    assert p.transitions.actions.shape == (200, 1) and p.transitions.actions.abs().max() < 2.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="no expert"):
        make_expert("MountainCar-v0")
    with pytest.raises(ValueError, match="n_episodes"):
        generate_demonstrations(CartPoleExpert(), "CartPole-v1", 0)
    with pytest.raises(ValueError, match="action_noise"):
        generate_demonstrations(CartPoleExpert(), "CartPole-v1", 1, action_noise=0.1)
