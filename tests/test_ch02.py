"""Chapter 02: unit tests of course_utils.estimators, grader tests of course_utils.checks.ch02."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_utils import estimators as E
from course_utils.checks import ExerciseError, ExerciseNotAttempted
from course_utils.checks.ch02 import (
    check_gradient_statistics,
    check_offset_prediction,
    check_reparam_gradient,
    check_score_function_gradient,
    check_score_function_gradient_loo,
)

F64 = torch.float64


def t(x):
    return torch.as_tensor(np.asarray(x, dtype=float), dtype=F64)


QUAD = E.QuadraticReward(t([[2.0, 0.5], [0.5, 1.0]]), t([1.0, -1.0]))
MU, LOG_STD = t([0.0, 0.5]), t([0.0, -0.5])
REWARDS = t([-11.0, -9.0, -12.0, -7.0, -10.0])
LOGITS = t([0.5, -0.3, 1.0, -1.0, 0.0])


def within_standard_errors(estimates: np.ndarray, exact: np.ndarray, n_se: float = 5.0) -> bool:
    mean = estimates.mean(0)
    se = estimates.std(0, ddof=1) / np.sqrt(len(estimates))
    return bool(np.all(np.abs(mean - exact) <= n_se * se + 1e-12))


# ---------------------------------------------------------------------------------------
# unit tests: estimators.py


@settings(max_examples=25, deadline=None)
@given(d=st.integers(1, 4), seed=st.integers(0, 10_000))
def test_quadratic_gradient_is_the_gradient_of_the_expectation(d, seed):
    rng = np.random.default_rng(seed)
    reward = E.QuadraticReward(t(rng.normal(size=(d, d))), t(rng.normal(size=d)))
    mu = t(rng.normal(size=d)).requires_grad_(True)
    log_std = t(rng.uniform(-2, 2, size=d)).requires_grad_(True)
    auto = torch.autograd.grad(reward.expectation(mu, log_std), (mu, log_std))
    exact = reward.gradient(mu.detach(), log_std.detach())
    for a, e in zip(auto, exact, strict=True):
        torch.testing.assert_close(a, e)


def test_quadratic_expectation_matches_monte_carlo():
    eps = torch.randn(400_000, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    values = QUAD(E.gaussian_sample(MU, LOG_STD, eps)).numpy()
    se = values.std() / np.sqrt(len(values))
    assert abs(values.mean() - QUAD.expectation(MU, LOG_STD).item()) < 5 * se


def test_quadratic_reward_validates_shapes():
    with pytest.raises(ValueError, match="A must be"):
        E.QuadraticReward(t(np.eye(2)), t([1.0, 2.0, 3.0]))


def test_score_function_analytic_equals_autograd_surrogate():
    rng = np.random.default_rng(1)
    for d, m in [(1, 1), (3, 50), (2, 2)]:
        reward = E.QuadraticReward(t(np.eye(d)), t(rng.normal(size=d)))
        args = (reward, t(rng.normal(size=d)), t(rng.normal(size=d)), t(rng.normal(size=(m, d))))
        analytic = E.score_function_gradient(*args)
        for a, b in zip(analytic, E.score_function_gradient_autograd(*args), strict=True):
            assert a.shape == (d,)
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("estimator", [E.score_function_gradient, E.reparam_gradient])
def test_gaussian_estimators_are_unbiased(estimator):
    estimates = E.repeat_gaussian_estimator(
        estimator, QUAD, MU, LOG_STD, n_samples=8, n_reps=2000, seed=3
    )
    exact = torch.stack(QUAD.gradient(MU, LOG_STD)).numpy()
    assert estimates.shape == (2000, 2, 2)
    assert within_standard_errors(estimates, exact)


def test_reparam_has_lower_variance_and_both_scale_as_one_over_m():
    def total_variance(estimator, m):
        est = E.repeat_gaussian_estimator(
            estimator, QUAD, MU, LOG_STD, n_samples=m, n_reps=1500, seed=4
        )
        return est.reshape(len(est), -1).var(0).sum()

    for m in (1, 16):
        score = total_variance(E.score_function_gradient, m)
        assert score > 5 * total_variance(E.reparam_gradient, m)
    for estimator in (E.score_function_gradient, E.reparam_gradient):
        ratio = total_variance(estimator, 4) / total_variance(estimator, 16)
        assert 2.5 < ratio < 6.0  # 1/M scaling: 4x fewer samples, 4x the variance


def test_repeat_gaussian_estimator_is_deterministic_and_shares_noise():
    a, b = (
        E.repeat_gaussian_estimator(
            E.reparam_gradient, QUAD, MU, LOG_STD, n_samples=3, n_reps=5, seed=7
        )
        for _ in range(2)
    )
    np.testing.assert_array_equal(a, b)


def test_categorical_exact_gradient_matches_autograd_of_the_enumeration():
    logits = LOGITS.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad((torch.softmax(logits, -1) * REWARDS).sum(), logits)
    torch.testing.assert_close(E.categorical_exact_gradient(REWARDS, LOGITS), auto)


@pytest.mark.parametrize(
    "estimator", [E.categorical_score_gradient, E.categorical_score_gradient_loo]
)
def test_categorical_estimators_are_unbiased(estimator):
    estimates = E.repeat_categorical_estimator(
        estimator, REWARDS, LOGITS, n_samples=4, n_reps=3000, seed=5
    )
    assert within_standard_errors(estimates, E.categorical_exact_gradient(REWARDS, LOGITS).numpy())


def test_loo_baseline_reduces_variance_and_ignores_reward_offsets():
    plain = E.repeat_categorical_estimator(
        E.categorical_score_gradient, REWARDS, LOGITS, n_samples=8, n_reps=1000, seed=6
    )
    loo = E.repeat_categorical_estimator(
        E.categorical_score_gradient_loo, REWARDS, LOGITS, n_samples=8, n_reps=1000, seed=6
    )
    assert plain.var(0).sum() > 10 * loo.var(0).sum()
    k = torch.tensor([0, 3, 3, 1])
    torch.testing.assert_close(
        E.categorical_score_gradient_loo(REWARDS + 100.0, LOGITS, k),
        E.categorical_score_gradient_loo(REWARDS, LOGITS, k),
    )


def test_loo_needs_two_samples():
    with pytest.raises(ValueError, match="at least M = 2"):
        E.categorical_score_gradient_loo(REWARDS, LOGITS, torch.tensor([1]))


def test_gradient_statistics_matches_numpy_and_flattens_tuples_in_order():
    noise = torch.randn(50, 4, 2, generator=torch.Generator().manual_seed(9), dtype=F64)
    exact = torch.cat(QUAD.gradient(MU, LOG_STD))
    mean, se, var, z = E.gradient_statistics(
        lambda eps: E.score_function_gradient(QUAD, MU, LOG_STD, eps), noise, exact
    )
    rows = np.array(
        [torch.cat(E.score_function_gradient(QUAD, MU, LOG_STD, e)).numpy() for e in noise]
    )
    np.testing.assert_allclose(mean.numpy(), rows.mean(0))
    np.testing.assert_allclose(var.numpy(), rows.var(0, ddof=1))
    np.testing.assert_allclose(se.numpy(), rows.std(0, ddof=1) / np.sqrt(50))
    np.testing.assert_allclose(z.numpy(), np.abs(rows.mean(0) - exact.numpy()) / se.numpy())
    assert all(t.shape == (4,) and t.dtype == F64 for t in (mean, se, var, z))


def test_gradient_statistics_tells_biased_from_unbiased():
    noise = torch.randn(2000, 16, 1, generator=torch.Generator().manual_seed(2), dtype=F64)
    mu, log_std = t([0.3]), t([0.0])

    def step(z):
        return (0.5 * (1 + torch.sign(z))).sum(-1)

    density = np.exp(-(0.3**2) / 2) / np.sqrt(2 * np.pi)
    exact = t([density, -0.3 * density])  # d/dphi of Phi(mu / sigma)
    *_, z_score = E.gradient_statistics(
        lambda eps: E.score_function_gradient(step, mu, log_std, eps), noise, exact
    )
    _, se, var, z_path = E.gradient_statistics(
        lambda eps: E.reparam_gradient(step, mu, log_std, eps), noise, exact
    )
    assert z_score.max() < 4.0  # unbiased
    assert torch.all(var == 0) and torch.all(se == 0) and torch.all(torch.isinf(z_path))


def test_score_function_beats_reparameterization_on_a_rough_reward():
    noise = torch.randn(1000, 16, 1, generator=torch.Generator().manual_seed(3), dtype=F64)
    mu, log_std = t([0.3]), t([0.0])
    exact = torch.zeros(2, dtype=F64)  # not used here: only the variances are compared

    def variances(omega):
        def ripple(z):
            return torch.cos(omega * z).sum(-1)

        return [
            float(
                E.gradient_statistics(lambda e, f=f: f(ripple, mu, log_std, e), noise, exact)[
                    2
                ].sum()
            )
            for f in (E.score_function_gradient, E.reparam_gradient)
        ]

    smooth, rough = variances(0.5), variances(3.0)
    assert smooth[0] > 3 * smooth[1]  # a smooth reward: reparameterization wins
    assert rough[1] > 3 * rough[0]  # a rough one: the score function wins


# ---------------------------------------------------------------------------------------
# grader tests: references and correct variants pass


def test_checks_accept_the_references(capsys):
    check_score_function_gradient(E.score_function_gradient)
    check_score_function_gradient(E.score_function_gradient_autograd)
    check_reparam_gradient(E.reparam_gradient)
    check_gradient_statistics(E.gradient_statistics)
    check_offset_prediction("c")
    check_score_function_gradient_loo(E.categorical_score_gradient_loo)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 6
    assert lines[0].startswith("Exercise 2.1 passed: ")
    assert lines[2].startswith("Exercise 2.2 passed: ")
    assert lines[3].startswith("Exercise 2.3 passed: ")
    assert lines[4].startswith("Exercise 2.4 passed: ")
    assert lines[5].startswith("Exercise 2.5 passed: ")


def test_checks_accept_numpy_outputs_and_lists(capsys):
    def score_numpy(r, mu, log_std, eps):
        grad_mu, grad_log_std = E.score_function_gradient(r, mu, log_std, eps)
        return [grad_mu.numpy(), grad_log_std.numpy()]

    def loo_numpy(rewards, logits, k):
        return E.categorical_score_gradient_loo(rewards, logits, k).numpy()

    check_score_function_gradient(score_numpy)
    check_score_function_gradient_loo(loo_numpy)
    assert capsys.readouterr().out.count("passed") == 2


def test_checks_accept_float32_answers(capsys):
    def score_float32(r, mu, log_std, eps):
        mu, log_std, eps = mu.float(), log_std.float(), eps.float()
        rewards = r(mu + eps * log_std.exp()).float()[:, None]
        return (rewards * eps / log_std.exp()).mean(0), (rewards * (eps**2 - 1)).mean(0)

    def reparam_float32(r, mu, log_std, eps):
        mu, log_std = mu.float().requires_grad_(), log_std.float().requires_grad_()
        return torch.autograd.grad(r(mu + eps.float() * log_std.exp()).mean(), (mu, log_std))

    def loo_float32(rewards, logits, k):
        return E.categorical_score_gradient_loo(rewards.float(), logits.float(), k)

    check_score_function_gradient(score_float32)
    check_reparam_gradient(reparam_float32)
    check_score_function_gradient_loo(loo_float32)
    assert capsys.readouterr().out.count("passed") == 3


# ---------------------------------------------------------------------------------------
# grader tests: Exercise 2.1, typical wrong answers


def _score_parts(r, mu, log_std, eps):
    std = log_std.exp()
    rewards = r(mu + eps * std)[:, None]
    return rewards, eps / std, eps**2 - 1, std


def sf_sign(r, mu, log_std, eps):
    g_mu, g_ls = E.score_function_gradient(r, mu, log_std, eps)
    return -g_mu, -g_ls


def sf_chain_rule(r, mu, log_std, eps):  # gradient w.r.t. sigma instead of log sigma
    rewards, s_mu, s_ls, std = _score_parts(r, mu, log_std, eps)
    return (rewards * s_mu).mean(0), (rewards * s_ls / std).mean(0)


def sf_missing_minus_one(r, mu, log_std, eps):
    rewards, s_mu, _, _ = _score_parts(r, mu, log_std, eps)
    return (rewards * s_mu).mean(0), (rewards * eps**2).mean(0)


def sf_mu_score_not_scaled(r, mu, log_std, eps):
    rewards, _, s_ls, _ = _score_parts(r, mu, log_std, eps)
    return (rewards * eps).mean(0), (rewards * s_ls).mean(0)


def sf_missing_r(r, mu, log_std, eps):
    _, s_mu, s_ls, _ = _score_parts(r, mu, log_std, eps)
    return s_mu.mean(0), s_ls.mean(0)


def sf_missing_score(r, mu, log_std, eps):
    rewards = r(mu + eps * log_std.exp())
    return rewards.mean() * torch.ones_like(mu), rewards.mean() * torch.ones_like(mu)


def sf_wrong_axis(r, mu, log_std, eps):
    rewards, s_mu, s_ls, _ = _score_parts(r, mu, log_std, eps)
    return (rewards * s_mu).mean(1), (rewards * s_ls).mean(1)


def sf_per_sample(r, mu, log_std, eps):
    rewards, s_mu, s_ls, _ = _score_parts(r, mu, log_std, eps)
    return rewards * s_mu, rewards * s_ls


def sf_sum(r, mu, log_std, eps):
    rewards, s_mu, s_ls, _ = _score_parts(r, mu, log_std, eps)
    return (rewards * s_mu).sum(0), (rewards * s_ls).sum(0)


def sf_z_not_detached(r, mu, log_std, eps):
    mu, log_std = mu.detach().requires_grad_(), log_std.detach().requires_grad_()
    z = mu + eps * log_std.exp()
    log_q = torch.distributions.Normal(mu, log_std.exp()).log_prob(z).sum(-1)
    surrogate = (log_q * r(z).detach()).mean()
    return torch.autograd.grad(surrogate, (mu, log_std))


def sf_reward_attached(r, mu, log_std, eps):  # the slide read literally: log q at the sample
    mu, log_std = mu.detach().requires_grad_(), log_std.detach().requires_grad_()
    z = mu + eps * log_std.exp()
    log_q = torch.distributions.Normal(mu, log_std.exp()).log_prob(z.detach()).sum(-1)
    return torch.autograd.grad((log_q * r(z)).mean(), (mu, log_std))


def sf_reward_attached_handwritten(r, mu, log_std, eps):  # log q without its constant
    mu, log_std = mu.detach().requires_grad_(), log_std.detach().requires_grad_()
    z = mu + eps * log_std.exp()
    log_q = (-0.5 * ((z.detach() - mu) / log_std.exp()) ** 2 - log_std).sum(-1)
    return torch.autograd.grad((log_q * r(z)).mean(), (mu, log_std))


def sf_nothing_detached(r, mu, log_std, eps):  # d/dphi of log q(z) r(z), z in the graph
    mu, log_std = mu.detach().requires_grad_(), log_std.detach().requires_grad_()
    z = mu + eps * log_std.exp()
    log_q = torch.distributions.Normal(mu, log_std.exp()).log_prob(z).sum(-1)
    return torch.autograd.grad((log_q * r(z)).mean(), (mu, log_std))


def sf_log_std_as_scale(r, mu, log_std, eps):
    mu, log_std = mu.detach().requires_grad_(), log_std.detach().requires_grad_()
    with torch.no_grad():
        z = mu + eps * log_std.exp()
        rewards = r(z)
    log_q = torch.distributions.Normal(mu, log_std).log_prob(z).sum(-1)
    return torch.autograd.grad((log_q * rewards).mean(), (mu, log_std))


def sf_no_requires_grad(r, mu, log_std, eps):
    with torch.no_grad():
        z = mu + eps * log_std.exp()
    log_q = torch.distributions.Normal(mu, log_std.exp()).log_prob(z).sum(-1)
    return torch.autograd.grad((log_q * r(z)).mean(), (mu, log_std))


def sf_reads_grad_without_backward(r, mu, log_std, eps):
    return mu.grad, log_std.grad


def sf_nan(r, mu, log_std, eps):
    g_mu, g_ls = E.score_function_gradient(r, mu, log_std, eps)
    return g_mu * float("nan"), g_ls


def sf_fresh_noise(r, mu, log_std, eps):
    return E.score_function_gradient(r, mu, log_std, torch.randn_like(eps))


def sf_biased(r, mu, log_std, eps):
    g_mu, g_ls = E.score_function_gradient(r, mu, log_std, eps)
    return 0.7 * g_mu + 0.1, g_ls


def sf_single_tensor(r, mu, log_std, eps):
    return torch.cat(E.score_function_gradient(r, mu, log_std, eps))


def sf_no_return(r, mu, log_std, eps):
    E.score_function_gradient(r, mu, log_std, eps)


def sf_in_place(r, mu, log_std, eps):
    out = E.score_function_gradient(r, mu, log_std, eps)
    eps.mul_(2.0)
    return out


def not_implemented(*args):
    raise NotImplementedError("Exercise 2.N: replace this line with your code")


@pytest.mark.parametrize(
    "wrong, message",
    [
        (sf_sign, "wrong sign"),
        (sf_chain_rule, "chain rule through sigma"),
        (sf_missing_minus_one, "misses the -1"),
        (sf_mu_score_not_scaled, r"d/d mu has the wrong scale"),
        (sf_missing_r, "forgot the factor r"),
        (sf_missing_score, "forgot the score"),
        (sf_wrong_axis, "averaged over the d dimensions"),
        (sf_per_sample, "one row per sample"),
        (sf_sum, "summed over the M samples"),
        (sf_z_not_detached, "z_j must be a constant"),
        (sf_reward_attached, "r\\(z_j\\) is still attached to the graph.*Slide erratum"),
        (sf_reward_attached_handwritten, "r\\(z_j\\) is still attached to the graph"),
        (sf_nothing_detached, "z_j and r\\(z_j\\) must be constants.*Slide erratum"),
        (sf_log_std_as_scale, "passed log_std where the standard deviation belongs"),
        (sf_no_requires_grad, "make fresh leaves"),
        (sf_reads_grad_without_backward, "is None"),
        (sf_nan, "non-finite"),
        (sf_fresh_noise, "unbiased on average, but they do not match"),
        (sf_biased, "your estimator is biased"),
        (sf_single_tensor, "return the tuple"),
        (sf_no_return, "returned None"),
        (sf_in_place, "changed its argument `eps` in place"),
        (
            lambda r, mu, log_std, eps: E.reparam_gradient(r, mu, log_std, eps),
            "reparameterization estimate",
        ),
        (3.0, "expected a function"),
    ],
)
def test_score_function_check_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message) as info:
        check_score_function_gradient(wrong)
    assert not isinstance(info.value, ExerciseNotAttempted)
    assert "Exercise 2.1" in str(info.value)


# ---------------------------------------------------------------------------------------
# grader tests: Exercise 2.2, typical wrong answers


def _leaves(mu, log_std):
    return mu.detach().requires_grad_(True), log_std.detach().requires_grad_(True)


def rp_detached_z_autograd(r, mu, log_std, eps):
    mu, log_std = _leaves(mu, log_std)
    z = (mu + eps * log_std.exp()).detach()
    return torch.autograd.grad(r(z).mean(), (mu, log_std))


def rp_detached_z_zeros(r, mu, log_std, eps):
    mu, log_std = _leaves(mu, log_std)
    z = (mu + eps * log_std.exp()).detach()
    return torch.autograd.grad(r(z).mean() + 0 * (mu.sum() + log_std.sum()), (mu, log_std))


def rp_detached_z_backward(r, mu, log_std, eps):
    mu, log_std = _leaves(mu, log_std)
    with torch.no_grad():
        z = mu + eps * log_std.exp()
    r(z).mean().backward()
    return mu.grad, log_std.grad


def rp_detached_std(r, mu, log_std, eps):
    mu, log_std = _leaves(mu, log_std)
    z = mu + eps * log_std.exp().detach()
    grad_mu, grad_ls = torch.autograd.grad(
        r(z).mean(), (mu, log_std), allow_unused=True, materialize_grads=True
    )
    return grad_mu, grad_ls


def rp_sign(r, mu, log_std, eps):
    g_mu, g_ls = E.reparam_gradient(r, mu, log_std, eps)
    return -g_mu, -g_ls


def rp_sum(r, mu, log_std, eps):
    mu, log_std = _leaves(mu, log_std)
    return torch.autograd.grad(r(mu + eps * log_std.exp()).sum(), (mu, log_std))


def rp_chain_rule(r, mu, log_std, eps):  # differentiates w.r.t. sigma
    mu = mu.detach().requires_grad_(True)
    std = log_std.exp().detach().requires_grad_(True)
    return torch.autograd.grad(r(mu + eps * std).mean(), (mu, std))


def rp_log_std_as_std(r, mu, log_std, eps):
    mu, log_std = _leaves(mu, log_std)
    return torch.autograd.grad(r(mu + eps * log_std).mean(), (mu, log_std))


def rp_wrong_axis(r, mu, log_std, eps):
    z = (mu + eps * log_std.exp()).detach().requires_grad_(True)
    (grad_z,) = torch.autograd.grad(r(z).sum(), z)
    return grad_z.mean(1), (grad_z * eps * log_std.exp()).mean(1)


def rp_accumulates(r, mu, log_std, eps):
    mu.requires_grad_(True)
    log_std.requires_grad_(True)
    r(mu + eps * log_std.exp()).mean().backward()
    return mu.grad.clone(), log_std.grad.clone()


def rp_nan(r, mu, log_std, eps):
    g_mu, g_ls = E.reparam_gradient(r, mu, log_std, eps)
    return g_mu, g_ls / 0.0 * 0.0


def rp_fresh_noise(r, mu, log_std, eps):
    return E.reparam_gradient(r, mu, log_std, torch.randn_like(eps))


@pytest.mark.parametrize(
    "wrong, message",
    [
        (rp_detached_z_autograd, "autograd found no path from mu and log_std"),
        (rp_detached_z_zeros, "exactly zero: z was cut off"),
        (rp_detached_z_backward, "autograd found no path|is None"),
        (rp_detached_std, "w.r.t. log_std is zero"),
        (rp_sign, "wrong sign"),
        (rp_sum, "summed over the M samples"),
        (rp_chain_rule, "chain rule"),
        (rp_log_std_as_std, "used log_std as the standard deviation"),
        (rp_wrong_axis, "averaged over the d dimensions"),
        (rp_accumulates, "two calls with the same inputs"),
        (rp_nan, "non-finite"),
        (rp_fresh_noise, "unbiased on average"),
        (
            lambda r, mu, log_std, eps: E.score_function_gradient(r, mu, log_std, eps),
            "score-function estimate of Exercise 2.1",
        ),
    ],
)
def test_reparam_check_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message) as info:
        check_reparam_gradient(wrong)
    assert not isinstance(info.value, ExerciseNotAttempted)
    assert "Exercise 2.2" in str(info.value)


# ---------------------------------------------------------------------------------------
# grader tests: Exercise 2.3 (gradient_statistics) and the question 2.4


def _rows(estimator, noise):
    out = []
    for draw in noise:
        est = estimator(draw)
        parts = est if isinstance(est, (tuple, list)) else (est,)
        out.append(torch.cat([torch.as_tensor(p, dtype=F64).reshape(-1) for p in parts]))
    return torch.stack(out)


def stats_with(var=lambda r: r.var(0), se=lambda v, n: (v / n).sqrt(), z=None):
    def statistics(estimator, noise, exact):
        rows = _rows(estimator, noise)
        mean, v = rows.mean(0), var(rows)
        s = se(v, len(rows))
        return mean, s, v, ((mean - exact).abs() / s) if z is None else z(mean, exact, s, v)

    return statistics


def stats_first_part(estimator, noise, exact):
    def first(draw):
        est = estimator(draw)
        return est[0] if isinstance(est, tuple) else est

    return E.gradient_statistics(first, noise, exact[: _rows(first, noise[:1]).shape[1]])


def stats_over_draws(estimator, noise, exact):
    rows = _rows(estimator, noise)
    return rows.mean(1), rows.std(1), rows.var(1), rows.mean(1)


def stats_total(estimator, noise, exact):
    mean, se, var, z = E.gradient_statistics(estimator, noise, exact)
    return mean, se, var.sum(), z


def stats_stacked(estimator, noise, exact):
    mean, se, var, z = E.gradient_statistics(estimator, noise, exact)
    return mean[None], se, var, z


def stats_in_place(estimator, noise, exact):
    out = E.gradient_statistics(estimator, noise, exact)
    noise.zero_()
    return out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (stats_with(var=lambda r: r.var(0, unbiased=False)), "divides by N - 1"),
        (stats_with(se=lambda v, n: v.sqrt()), "standard deviation of ONE estimate"),
        (stats_with(se=lambda v, n: v / n), "which is a variance"),
        (stats_with(se=lambda v, n: v.sqrt() / n), "divides the standard deviation by N"),
        (stats_with(z=lambda m, e, s, v: (m - e) / s), "your z is signed"),
        (stats_with(z=lambda m, e, s, v: (m - e).abs() / v.sqrt()), "standard errors of the mean"),
        (stats_first_part, "only the first part"),
        (stats_over_draws, "one number per draw"),
        (stats_total, "is a single number; return one per parameter"),
        (stats_stacked, "flatten each estimate"),
        (stats_in_place, "changed its argument `noise` in place"),
    ],
)
def test_statistics_check_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message) as info:
        check_gradient_statistics(wrong)
    assert not isinstance(info.value, ExerciseNotAttempted)
    assert "Exercise 2.3" in str(info.value)


def test_statistics_check_accepts_numpy_and_float32(capsys):
    def numpy_version(estimator, noise, exact):
        return tuple(np.asarray(o) for o in E.gradient_statistics(estimator, noise, exact))

    def float32_version(estimator, noise, exact):
        return tuple(o.float() for o in E.gradient_statistics(estimator, noise, exact))

    check_gradient_statistics(numpy_version)
    check_gradient_statistics(float32_version)
    assert capsys.readouterr().out.count("Exercise 2.3 passed") == 2


@pytest.mark.parametrize(
    "answer, message",
    [
        ("a", "the MEAN of the estimates does not change"),
        ("B", "derivative of a constant is zero"),
        ("(d)", "quadratic in C"),
        ("e", 'one of the choices "a", "b", "c" or "d"'),
        (3, "answer with one of the choices as a string"),
    ],
)
def test_offset_question_explains_each_wrong_choice(answer, message):
    with pytest.raises(ExerciseError, match=re.escape(message)):
        check_offset_prediction(answer)


# ---------------------------------------------------------------------------------------
# grader tests: Exercise 2.5, typical wrong answers


def _loo_parts(rewards, logits, k):
    r = rewards[k]
    score = torch.nn.functional.one_hot(k, logits.shape[0]).to(F64) - torch.softmax(logits, -1)
    return r, score, k.shape[0]


def loo_with(baseline_fn, score_fn=None):
    def estimator(rewards, logits, k):
        r, score, m = _loo_parts(rewards, logits, k)
        if score_fn is not None:
            score = score_fn(logits, k)
        return ((r - baseline_fn(r, m))[:, None] * score).mean(0)

    return estimator


def loo_reference_baseline(r, m):
    return (r.sum() - r) / (m - 1)


def loo_wrong_axis(rewards, logits, k):
    r, score, m = _loo_parts(rewards, logits, k)
    return ((r - loo_reference_baseline(r, m))[:, None] * score).mean(1)


def loo_per_sample(rewards, logits, k):
    r, score, m = _loo_parts(rewards, logits, k)
    return (r - loo_reference_baseline(r, m))[:, None] * score


def loo_sum(rewards, logits, k):
    return k.shape[0] * E.categorical_score_gradient_loo(rewards, logits, k)


def loo_missing_reward(rewards, logits, k):
    _, score, _ = _loo_parts(rewards, logits, k)
    return score.mean(0)


def loo_naive_softmax(rewards, logits, k):
    r, _, m = _loo_parts(rewards, logits, k)
    q = logits.exp() / logits.exp().sum()
    score = torch.nn.functional.one_hot(k, logits.shape[0]).to(F64) - q
    return ((r - loo_reference_baseline(r, m))[:, None] * score).mean(0)


def loo_accumulates(rewards, logits, k):  # reads logits.grad, which accumulates
    logits.requires_grad_(True)
    r, _, m = _loo_parts(rewards, logits.detach(), k)
    log_q = torch.log_softmax(logits, -1)[k]
    ((r - loo_reference_baseline(r, m)) * log_q).mean().backward()
    return logits.grad.clone()


def loo_constant_baseline(rewards, logits, k):  # a constant baseline: unbiased, not LOO
    r, score, _ = _loo_parts(rewards, logits, k)
    return ((r - rewards.max())[:, None] * score).mean(0)


def loo_in_place(rewards, logits, k):
    out = E.categorical_score_gradient_loo(rewards, logits, k)
    rewards -= rewards.mean()
    return out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (loo_with(lambda r, m: r.mean()), "including r\\(k_j\\) itself"),
        (loo_with(lambda r, m: r), "exactly zero"),
        (loo_with(lambda r, m: 0.0), "subtracted no baseline"),
        (loo_with(lambda r, m: (r.sum() - r) / m), "divides by M"),
        (loo_with(lambda r, m: 0.5 * r), "your estimator is biased"),
        (
            lambda rewards, logits, k: -E.categorical_score_gradient_loo(rewards, logits, k),
            "wrong sign",
        ),
        (
            loo_with(
                loo_reference_baseline,
                lambda logits, k: (
                    torch.softmax(logits, -1)
                    - torch.nn.functional.one_hot(k, logits.shape[0]).to(F64)
                ),
            ),
            "wrong sign",
        ),
        (loo_wrong_axis, "exactly zero.*averaged over the K categories"),
        (loo_per_sample, "one row per sample"),
        (loo_sum, "summed over the M samples"),
        (loo_missing_reward, "forgot the factor r"),
        (loo_naive_softmax, "exp\\(1000\\) overflows"),
        (loo_accumulates, "two calls with the same inputs"),
        (loo_constant_baseline, "look unbiased on average but differ"),
        (loo_in_place, "changed its argument `rewards` in place"),
        (lambda rewards, logits, k: torch.zeros(()), "single number"),
    ],
)
def test_loo_check_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message) as info:
        check_score_function_gradient_loo(wrong)
    assert not isinstance(info.value, ExerciseNotAttempted)
    assert "Exercise 2.5" in str(info.value)


@pytest.mark.parametrize(
    "check",
    [
        check_score_function_gradient,
        check_reparam_gradient,
        check_gradient_statistics,
        check_score_function_gradient_loo,
    ],
)
def test_unattempted_exercises_are_reported_as_not_attempted(check):
    with pytest.raises(ExerciseNotAttempted, match="not attempted yet"):
        check(not_implemented)
