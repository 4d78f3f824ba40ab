"""Chapter 01 (variational inference): course_utils.lvm and the checks of course_utils.checks.ch01.

Unit tests verify the slides' identities on the linear-Gaussian model (closed forms against
Monte Carlo and quadrature, log p(x) = KL + ELBO to 1e-6, the exact posterior); grader tests
prove that every check accepts the reference and rejects each typical wrong answer with its
own message.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_utils import lvm
from course_utils.checks import ExerciseError, ExerciseNotAttempted
from course_utils.checks.ch01 import (
    _cubature,
    check_elbo_mc,
    check_gaussian_kl,
    check_mean_field_variances,
    check_ml_step,
    check_vi_step,
)

F64 = torch.float64
HALF_LOG_2PI_E = 0.5 * math.log(2 * math.pi * math.e)


def _randn(*shape, seed=0, scale=1.0, loc=0.0):
    gen = torch.Generator().manual_seed(seed)
    return loc + scale * torch.randn(shape, generator=gen, dtype=F64)


# =============================================================== lvm: Gaussian algebra


def test_entropy_and_kl_match_torch_distributions():
    mu_q, ls_q = _randn(4, 3, seed=1), _randn(4, 3, seed=2)
    mu_p, ls_p = _randn(4, 3, seed=3), _randn(4, 3, seed=4)
    q = torch.distributions.Independent(torch.distributions.Normal(mu_q, ls_q.exp()), 1)
    p = torch.distributions.Independent(torch.distributions.Normal(mu_p, ls_p.exp()), 1)
    torch.testing.assert_close(lvm.gaussian_entropy(ls_q), q.entropy())
    torch.testing.assert_close(
        lvm.gaussian_kl(mu_q, ls_q, mu_p, ls_p), torch.distributions.kl_divergence(q, p)
    )
    z = _randn(4, 3, seed=5)
    torch.testing.assert_close(lvm.gaussian_log_prob(z, mu_q, ls_q), q.log_prob(z))


def test_entropy_closed_form_vs_monte_carlo():
    mu, ls = _randn(3, 2, seed=1), _randn(3, 2, seed=2, scale=0.8)
    z = lvm.sample_gaussian(mu, ls, 200_000, torch.Generator().manual_seed(0))
    neg_log_q = -lvm.gaussian_log_prob(z, mu, ls)  # (S, 3)
    err = neg_log_q.std(0) / math.sqrt(z.shape[0])
    assert ((neg_log_q.mean(0) - lvm.gaussian_entropy(ls)).abs() < 4 * err).all()


def test_kl_closed_form_vs_monte_carlo():
    mu_q, ls_q = _randn(3, 2, seed=1), _randn(3, 2, seed=2, scale=0.5)
    mu_p, ls_p = _randn(2, seed=3), _randn(2, seed=4, scale=0.5)  # broadcast against the batch
    z = lvm.sample_gaussian(mu_q, ls_q, 200_000, torch.Generator().manual_seed(0))
    log_ratio = lvm.gaussian_log_prob(z, mu_q, ls_q) - lvm.gaussian_log_prob(z, mu_p, ls_p)
    err = log_ratio.std(0) / math.sqrt(z.shape[0])
    assert ((log_ratio.mean(0) - lvm.gaussian_kl(mu_q, ls_q, mu_p, ls_p)).abs() < 4 * err).all()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-5, 5), min_size=4, max_size=4),
    st.lists(st.floats(-6, 6), min_size=4, max_size=4),
)
def test_kl_nonnegative_and_zero_on_the_diagonal(means, log_stds):
    mu_q, mu_p = torch.tensor(means[:2], dtype=F64), torch.tensor(means[2:], dtype=F64)
    ls_q, ls_p = torch.tensor(log_stds[:2], dtype=F64), torch.tensor(log_stds[2:], dtype=F64)
    assert lvm.gaussian_kl(mu_q, ls_q, mu_p, ls_p) >= -1e-12
    assert abs(lvm.gaussian_kl(mu_q, ls_q, mu_q, ls_q)) < 1e-12
    assert torch.isfinite(lvm.gaussian_entropy(ls_q))


def test_shapes_reduce_only_the_last_axis():
    ls = _randn(2, 5, 3)
    assert lvm.gaussian_entropy(ls).shape == (2, 5)
    assert lvm.gaussian_kl(ls, ls, torch.zeros(3, dtype=F64), torch.zeros(3, dtype=F64)).shape == (
        2,
        5,
    )
    assert lvm.sample_gaussian(ls, ls, 7).shape == (7, 2, 5, 3)


# ========================================================= lvm: the linear-Gaussian model


@pytest.fixture(
    params=[(1, 2, 0.5, False), (2, 4, 0.3, True), (3, 5, 1.2, False)],
    ids=["d1", "d2-orthogonal", "d3"],
)
def linear(request):
    d, D, s, orthogonal = request.param
    model = lvm.LinearGaussianLVM.random(d, D, noise_std=s, orthogonal=orthogonal, seed=d)
    x, _ = model.sample(6, torch.Generator().manual_seed(0))
    mu, ls = _randn(6, d, seed=7), _randn(6, d, seed=8, scale=0.7)
    return model, x, mu, ls


@pytest.mark.parametrize("d, n_points", [(1, 2001), (2, 401)])
def test_log_evidence_is_the_integral_of_the_joint(d, n_points):
    model = lvm.LinearGaussianLVM.random(d, 3, noise_std=0.4, seed=d)
    x, _ = model.sample(5, torch.Generator().manual_seed(0))
    torch.testing.assert_close(
        model.log_evidence_grid(x, n_points=n_points), model.log_evidence(x), rtol=0, atol=1e-8
    )


def test_posterior_is_bayes_rule(linear):
    model, x, _, _ = linear
    z = _randn(6, model.latent_dim, seed=3)
    bayes = model.log_joint(x, z) - model.log_evidence(x)  # log p(z|x) = log p(x, z) - log p(x)
    torch.testing.assert_close(model.posterior_log_prob(z, x), bayes, rtol=0, atol=1e-10)


def test_orthogonal_columns_give_a_diagonal_posterior():
    model = lvm.LinearGaussianLVM.random(3, 6, orthogonal=True, seed=4)
    _, cov = model.posterior(torch.zeros(6, dtype=F64))
    torch.testing.assert_close(cov, torch.diag(torch.diagonal(cov)), rtol=0, atol=1e-12)


def test_elbo_closed_form_vs_monte_carlo(linear):
    model, x, mu, ls = linear
    eps = torch.randn((100_000, *mu.shape), generator=torch.Generator().manual_seed(1), dtype=F64)
    z = mu + ls.exp() * eps
    samples = model.log_joint(x, z) + lvm.gaussian_entropy(ls)
    err = samples.std(0) / math.sqrt(eps.shape[0])
    mc = lvm.elbo_monte_carlo(model.log_joint, x, mu, ls, eps)
    assert ((mc - model.elbo(x, mu, ls)).abs() < 4 * err).all()


def test_jensen_bound(linear):
    model, x, mu, ls = linear
    z = lvm.sample_gaussian(mu, ls, 20_000, torch.Generator().manual_seed(2))
    log_w = model.log_joint(x, z) - lvm.gaussian_log_prob(z, mu, ls)  # log of p(x, z) / q(z)
    assert (log_w.mean(0) < lvm.log_mean_exp(log_w, 0)).all()  # E[log w] <= log E[w]
    assert (model.elbo(x, mu, ls) < model.log_evidence(x)).all()


def test_log_evidence_is_kl_plus_elbo_closed_form(linear):
    model, x, mu, ls = linear
    identity = model.kl_to_posterior(x, mu, ls) + model.elbo(x, mu, ls)
    assert (identity - model.log_evidence(x)).abs().max() < 1e-6
    assert (model.kl_to_posterior(x, mu, ls) > 0).all()


def test_log_evidence_is_kl_plus_elbo_monte_carlo(linear):
    model, x, mu, ls = linear
    z = lvm.sample_gaussian(mu, ls, 100_000, torch.Generator().manual_seed(3))
    log_q = lvm.gaussian_log_prob(z, mu, ls)
    kl_samples = log_q - model.posterior_log_prob(z, x)
    elbo_samples = model.log_joint(x, z) - log_q
    # per sample the two add up to log p(x) exactly (the slides' derivation) ...
    torch.testing.assert_close(kl_samples + elbo_samples, model.log_evidence(x).expand_as(log_q))
    # ... and each Monte Carlo average is within its error of the closed form
    exact_kl, exact_elbo = model.kl_to_posterior(x, mu, ls), model.elbo(x, mu, ls)
    for samples, exact in ((kl_samples, exact_kl), (elbo_samples, exact_elbo)):
        err = samples.std(0) / math.sqrt(z.shape[0])
        assert ((samples.mean(0) - exact).abs() < 4 * err).all()


def test_the_posterior_maximizes_the_elbo():
    model = lvm.LinearGaussianLVM.random(2, 4, noise_std=0.5, orthogonal=True, seed=5)
    x, _ = model.sample(3, torch.Generator().manual_seed(0))
    mean, cov = model.posterior(x)
    ls_post = 0.5 * torch.log(torch.diagonal(cov)).expand_as(mean)
    torch.testing.assert_close(
        model.kl_to_posterior(x, mean, ls_post), torch.zeros(3, dtype=F64), rtol=0, atol=1e-12
    )
    torch.testing.assert_close(
        model.elbo(x, mean, ls_post), model.log_evidence(x), rtol=0, atol=1e-10
    )
    for shift in (1e-2, -1e-2):  # any other q has a smaller ELBO
        assert (model.elbo(x, mean + shift, ls_post) < model.log_evidence(x)).all()
        assert (model.elbo(x, mean, ls_post + shift) < model.log_evidence(x)).all()


def test_vi_gradient_step_uses_the_analytic_gradient():
    model = lvm.LinearGaussianLVM.random(2, 4, noise_std=0.7, seed=6)
    x, _ = model.sample(5, torch.Generator().manual_seed(0))
    mu, ls = _randn(5, 2, seed=1), _randn(5, 2, seed=2, scale=0.5)
    precision = model.posterior_precision()
    mean, _ = model.posterior(x)
    grad_mu = (mean - mu) @ precision  # dL/dmu = Sigma^{-1} (m - mu)
    grad_ls = 1.0 - torch.diagonal(precision) * torch.exp(
        2 * ls
    )  # dL/dlog_sigma = 1 - Lambda_jj sigma_j^2
    new_mu, new_ls = lvm.vi_gradient_step(functools.partial(model.elbo, x), mu, ls, 0.1)
    torch.testing.assert_close(new_mu, mu + 0.1 * grad_mu)
    torch.testing.assert_close(new_ls, ls + 0.1 * grad_ls)
    assert not new_mu.requires_grad and not new_ls.requires_grad


def test_per_datapoint_vi_recovers_the_exact_posterior():
    model = lvm.LinearGaussianLVM.random(2, 5, noise_std=0.5, orthogonal=True, seed=3)
    x, _ = model.sample(8, torch.Generator().manual_seed(1))
    zeros = torch.zeros(8, 2, dtype=F64)
    mu, ls = lvm.fit_per_datapoint_vi(
        functools.partial(model.elbo, x), zeros, zeros, n_steps=300, lr=0.1
    )
    assert model.kl_to_posterior(x, mu, ls).max() < 1e-8
    gen = torch.Generator().manual_seed(0)

    def elbo_mc(mu, ls):
        eps = torch.randn((16, *mu.shape), generator=gen, dtype=F64)
        return lvm.elbo_monte_carlo(model.log_joint, x, mu, ls, eps)

    mu, ls = lvm.fit_per_datapoint_vi(elbo_mc, zeros, zeros, n_steps=2000, lr=0.1, decay=0.05)
    assert model.kl_to_posterior(x, mu, ls).max() < 1e-3


# ============================================================ lvm: the tanh-decoder model


def test_tanh_model_grid_identity_and_bound():
    model = lvm.TanhDecoderLVM.random(1, 2, hidden=8, noise_std=0.2, scale=3.0, seed=5)
    x, _ = model.sample(6, torch.Generator().manual_seed(5))
    mu, ls = _randn(6, 1, seed=1), _randn(6, 1, seed=2, scale=0.3, loc=-0.5)
    log_p = model.log_evidence(x)
    finer = model.log_evidence_grid(x, n_points=8001, limit=12.0)
    torch.testing.assert_close(finer, log_p, rtol=0, atol=1e-9)
    gap = log_p - model.elbo_grid(x, mu, ls)
    assert (gap > 0).all()
    torch.testing.assert_close(model.kl_to_posterior_grid(x, mu, ls), gap, rtol=0, atol=1e-8)
    eps = torch.randn((200_000, 6, 1), generator=torch.Generator().manual_seed(0), dtype=F64)
    mc = lvm.elbo_monte_carlo(model.log_joint, x, mu, ls, eps)
    torch.testing.assert_close(mc, model.elbo_grid(x, mu, ls), rtol=0, atol=0.02)


def test_grid_is_only_for_small_latent_dimensions():
    model = lvm.LinearGaussianLVM.random(3, 4)
    with pytest.raises(ValueError, match="d <= 2"):
        model.latent_grid()


C = HALF_LOG_2PI_E


def not_implemented(*args):
    raise NotImplementedError("Exercise 1.x: replace this line with your code")


# ============================================================== grader tests: Exercise 1.1


def kl_reference(mq, lq, mp, lp):
    return (lp - lq + (torch.exp(2 * lq) + (mq - mp) ** 2) / (2 * torch.exp(2 * lp)) - 0.5).sum(-1)


def kl_sign(mq, lq, mp, lp):
    return -kl_reference(mq, lq, mp, lp)


def kl_reversed(mq, lq, mp, lp):
    return kl_reference(mp, lp, mq, lq)


def kl_log_term_flipped(mq, lq, mp, lp):
    return (lq - lp + (torch.exp(2 * lq) + (mq - mp) ** 2) / (2 * torch.exp(2 * lp)) - 0.5).sum(-1)


def kl_log_std_as_sigma(mq, lq, mp, lp):  # the student thinks the inputs are standard deviations
    return (torch.log(lp / lq) + (lq**2 + (mq - mp) ** 2) / (2 * lp**2) - 0.5).sum(-1)


def kl_log_std_in_quadratic(mq, lq, mp, lp):
    return (lp - lq + (lq**2 + (mq - mp) ** 2) / (2 * lp**2) - 0.5).sum(-1)


def kl_std_for_variance(mq, lq, mp, lp):
    return (lp - lq + (torch.exp(lq) + (mq - mp) ** 2) / (2 * torch.exp(lp)) - 0.5).sum(-1)


def kl_missing_half(mq, lq, mp, lp):
    return (lp - lq + (torch.exp(2 * lq) + (mq - mp) ** 2) / (2 * torch.exp(2 * lp))).sum(-1)


def kl_sum_batch_axis(mq, lq, mp, lp):
    per_dim = lp - lq + (torch.exp(2 * lq) + (mq - mp) ** 2) / (2 * torch.exp(2 * lp)) - 0.5
    return per_dim.sum(0)


def kl_wrong_shape(mq, lq, mp, lp):
    return kl_reference(mq, lq, mp, lp)[..., None]


def kl_nan(mq, lq, mp, lp):
    return kl_reference(mq, lq, mp, lp) + torch.log(-torch.ones(()))


def kl_torch_distributions(mq, lq, mp, lp):
    normal = torch.distributions.Normal
    return torch.distributions.kl_divergence(normal(mq, lq.exp()), normal(mp, lp.exp())).sum(-1)


def test_kl_check_accepts_reference(capsys):
    check_gaussian_kl(lvm.gaussian_kl)
    check_gaussian_kl(kl_reference)
    check_gaussian_kl(kl_torch_distributions)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [lines[0]] * 3 and lines[0].startswith("Exercise 1.1 passed: ")


@pytest.mark.parametrize(
    "wrong, message",
    [
        (kl_sign, "negative of the right one"),
        (kl_reversed, r"you computed D_KL\(p\|\|q\), the reverse direction"),
        (kl_log_term_flipped, "the log term has the wrong sign"),
        (kl_log_std_as_sigma, "you treated log_std as sigma"),
        (kl_log_std_in_quadratic, "you used log_std as the standard deviation"),
        (kl_std_for_variance, r"you used sigma where the variance sigma\^2 belongs"),
        (kl_missing_half, "left out the -1/2 per dimension"),
        (kl_sum_batch_axis, r"summed over the batch axis \(axis 0\)"),
        (kl_wrong_shape, r"has shape \(5, 1\), expected \(5,\)"),
        (kl_nan, "non-finite value"),
    ],
)
def test_kl_check_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_gaussian_kl(wrong)


# ============================================================== grader tests: Exercise 1.2


def _entropy(ls):
    return (C + ls).sum(-1)


def elbo_reference(log_joint, x, mu, ls, eps):
    z = mu + torch.exp(ls) * eps
    return log_joint(x, z).mean(0) + _entropy(ls)


def elbo_no_entropy(log_joint, x, mu, ls, eps):
    return log_joint(x, mu + torch.exp(ls) * eps).mean(0)


def elbo_minus_entropy(log_joint, x, mu, ls, eps):
    return log_joint(x, mu + torch.exp(ls) * eps).mean(0) - _entropy(ls)


def elbo_log_std_as_sigma(log_joint, x, mu, ls, eps):
    return log_joint(x, mu + ls * eps).mean(0) + _entropy(ls)


def elbo_log_variance(log_joint, x, mu, ls, eps):
    return log_joint(x, mu + torch.exp(0.5 * ls) * eps).mean(0) + _entropy(ls)


def elbo_mc_entropy(log_joint, x, mu, ls, eps):
    z = mu + torch.exp(ls) * eps
    return (log_joint(x, z) - lvm.gaussian_log_prob(z, mu, ls)).mean(0)


def elbo_sum_samples(log_joint, x, mu, ls, eps):
    return log_joint(x, mu + torch.exp(ls) * eps).sum(0) + _entropy(ls)


def elbo_mean_data_axis(log_joint, x, mu, ls, eps):
    return log_joint(x, mu + torch.exp(ls) * eps).mean(1) + _entropy(ls).mean()


def elbo_no_sample_mean(log_joint, x, mu, ls, eps):
    return log_joint(x, mu + torch.exp(ls) * eps) + _entropy(ls)


def elbo_at_mean(log_joint, x, mu, ls, eps):
    return log_joint(x, mu) + _entropy(ls)


def elbo_entropy_of_sigma(log_joint, x, mu, ls, eps):  # sigma where log sigma belongs
    return log_joint(x, mu + torch.exp(ls) * eps).mean(0) + (C + torch.exp(ls)).sum(-1)


def elbo_entropy_of_log_variance(log_joint, x, mu, ls, eps):
    return log_joint(x, mu + torch.exp(ls) * eps).mean(0) + (C + 2 * ls).sum(-1)


def elbo_entropy_without_e(log_joint, x, mu, ls, eps):
    return log_joint(x, mu + torch.exp(ls) * eps).mean(0) + (0.5 * math.log(2 * math.pi) + ls).sum(
        -1
    )


def elbo_entropy_without_constant(log_joint, x, mu, ls, eps):
    return log_joint(x, mu + torch.exp(ls) * eps).mean(0) + ls.sum(-1)


def elbo_entropy_mean_over_dims(log_joint, x, mu, ls, eps):
    return log_joint(x, mu + torch.exp(ls) * eps).mean(0) + (C + ls).mean(-1)


def elbo_nan(log_joint, x, mu, ls, eps):
    return elbo_reference(log_joint, x, mu, ls, eps) * torch.sqrt(-torch.ones(()))


def test_elbo_check_accepts_reference(capsys):
    check_elbo_mc(lvm.elbo_monte_carlo)
    check_elbo_mc(elbo_reference)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [lines[0]] * 2 and lines[0].startswith("Exercise 1.2 passed: ")


@pytest.mark.parametrize(
    "wrong, message",
    [
        (elbo_no_entropy, r"the entropy term H\(q_i\) is missing"),
        (elbo_minus_entropy, "you subtracted the entropy"),
        (elbo_log_std_as_sigma, "you used log_std as the standard deviation in z = mu"),
        (elbo_log_variance, "you treated log_std as a log-variance"),
        (elbo_mc_entropy, "you estimated the entropy by Monte Carlo"),
        (elbo_sum_samples, "you summed over the samples"),
        (elbo_mean_data_axis, r"averaged over the data points \(axis 1\) instead of the samples"),
        (elbo_no_sample_mean, r"one value per sample and data point \(S, N\)"),
        (elbo_at_mean, "at the mean mu instead of at the samples"),
        (
            elbo_entropy_of_sigma,
            r"your entropy uses sigma = exp\(log_std\) where log sigma belongs",
        ),
        (elbo_entropy_of_log_variance, r"log sigma\^2 = 2 log_std where log sigma belongs"),
        (elbo_entropy_without_e, r"left out the \+1/2 that comes from the e"),
        (elbo_entropy_without_constant, r"dropped the entropy's constant 1/2 log\(2 pi e\)"),
        (elbo_entropy_mean_over_dims, "averaged the entropy over the latent dimensions"),
        (elbo_nan, "non-finite"),
    ],
)
def test_elbo_check_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_elbo_mc(wrong)


# ============================================================== grader tests: Exercise 1.3


def step_reference(elbo_fn, mu, log_std, lr):
    mu = mu.detach().requires_grad_(True)
    log_std = log_std.detach().requires_grad_(True)
    elbo = elbo_fn(mu, log_std).sum()
    elbo.backward()
    with torch.no_grad():
        return mu + lr * mu.grad, log_std + lr * log_std.grad


def step_descent(elbo_fn, mu, log_std, lr):
    new_mu, new_ls = step_reference(elbo_fn, mu, log_std, lr)
    return 2 * mu - new_mu, 2 * log_std - new_ls


def step_mean(elbo_fn, mu, log_std, lr):
    mu = mu.detach().requires_grad_(True)
    log_std = log_std.detach().requires_grad_(True)
    g_mu, g_ls = torch.autograd.grad(elbo_fn(mu, log_std).mean(), [mu, log_std])
    return (mu + lr * g_mu).detach(), (log_std + lr * g_ls).detach()


def step_passes_sigma(elbo_fn, mu, log_std, lr):
    mu = mu.detach().requires_grad_(True)
    log_std = log_std.detach().requires_grad_(True)
    g_mu, g_ls = torch.autograd.grad(elbo_fn(mu, torch.exp(log_std)).sum(), [mu, log_std])
    return (mu + lr * g_mu).detach(), (log_std + lr * g_ls).detach()


def step_on_sigma(elbo_fn, mu, log_std, lr):
    mu = mu.detach().requires_grad_(True)
    sigma = torch.exp(log_std).detach().requires_grad_(True)
    g_mu, g_sigma = torch.autograd.grad(elbo_fn(mu, torch.log(sigma)).sum(), [mu, sigma])
    return (mu + lr * g_mu).detach(), torch.log(sigma + lr * g_sigma).detach()


def step_returns_sigma(elbo_fn, mu, log_std, lr):
    new_mu, new_ls = step_reference(elbo_fn, mu, log_std, lr)
    return new_mu, torch.exp(new_ls)


def step_only_mu(elbo_fn, mu, log_std, lr):
    return step_reference(elbo_fn, mu, log_std, lr)[0], log_std


def step_swapped(elbo_fn, mu, log_std, lr):
    return step_reference(elbo_fn, mu, log_std, lr)[::-1]


def step_not_detached(elbo_fn, mu, log_std, lr):
    mu = mu.detach().requires_grad_(True)
    log_std = log_std.detach().requires_grad_(True)
    g_mu, g_ls = torch.autograd.grad(elbo_fn(mu, log_std).sum(), [mu, log_std])
    return mu + lr * g_mu, log_std + lr * g_ls


def step_single_tensor(elbo_fn, mu, log_std, lr):
    return torch.cat(step_reference(elbo_fn, mu, log_std, lr), dim=-1)


def step_wrong_shape(elbo_fn, mu, log_std, lr):
    new_mu, new_ls = step_reference(elbo_fn, mu, log_std, lr)
    return new_mu.sum(-1), new_ls


def step_nan(elbo_fn, mu, log_std, lr):
    new_mu, new_ls = step_reference(elbo_fn, mu, log_std, lr)
    return new_mu, new_ls * float("nan")


def test_vi_step_check_accepts_reference(capsys):
    check_vi_step(lvm.vi_gradient_step)
    check_vi_step(step_reference)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [lines[0]] * 2 and lines[0].startswith("Exercise 1.3 passed: ")


@pytest.mark.parametrize(
    "wrong, message",
    [
        (step_descent, r"you stepped downhill \(gradient descent\)"),
        (step_mean, "times too small: you averaged the ELBO over the data points"),
        (step_passes_sigma, r"you passed sigma = exp\(log_std\) to elbo_fn"),
        (step_on_sigma, "gradient step on sigma instead of on log sigma"),
        (step_returns_sigma, r"your second output is sigma = exp\(log_std\)"),
        (step_only_mu, "log_std did not change"),
        (step_swapped, r"you returned \(log_std, mu\)"),
        (step_not_detached, "still requires grad"),
        (step_single_tensor, r"return the tuple \(new_mu, new_log_std\)"),
        (step_wrong_shape, r"new_mu has shape \(1,\), expected \(1, 1\)"),
        (step_nan, "non-finite"),
    ],
)
def test_vi_step_check_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_vi_step(wrong)


# ============================================================== Exercise 1.4: the question


def test_question_accepts_b_in_any_spelling(capsys):
    for answer in ("b", "B", " (b) "):
        check_mean_field_variances(answer)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].startswith("Exercise 1.4 passed: (b)")


@pytest.mark.parametrize(
    "wrong, message",
    [
        ("a", "moment matching"),
        ("c", "Covering p's mass is what D_KL"),
        ("d", "the means are exact"),
        ("e", 'one of the strings "a", "b", "c" or "d"'),
        (2, "as a string"),
    ],
)
def test_question_explains_each_wrong_choice(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_mean_field_variances(wrong)


def test_the_answer_is_what_the_notebook_measures():
    """Per-datapoint VI with a diagonal q on a correlated posterior: exact means, variances
    1 / diag(precision) < marginal variances, and KL = -1/2 log(1 - rho^2)."""
    model = lvm.LinearGaussianLVM.random(2, 5, noise_std=0.5, seed=3)
    x, _ = model.sample(4, torch.Generator().manual_seed(0))
    zeros = torch.zeros(4, 2, dtype=F64)
    mu, ls = lvm.fit_per_datapoint_vi(
        functools.partial(model.elbo, x), zeros, zeros, n_steps=300, lr=0.05
    )
    mean, cov = model.posterior(x)
    precision = model.posterior_precision()
    torch.testing.assert_close(mu, mean, rtol=0, atol=1e-10)
    torch.testing.assert_close(torch.exp(2 * ls[0]), 1 / precision.diagonal(), rtol=1e-8, atol=0)
    assert (torch.exp(2 * ls[0]) < cov.diagonal()).all()
    rho = cov[0, 1] / cov.diagonal().prod().sqrt()
    kl = model.kl_to_posterior(x, mu, ls)
    torch.testing.assert_close(kl, (-0.5 * torch.log(1 - rho**2)).expand(4), rtol=1e-8, atol=1e-12)


# ============================================================== lvm: learning theta (Exercise 1.5)


def test_cubature_noise_gives_the_exact_elbo_of_the_linear_model(linear):
    model, x, mu, ls = linear
    eps = _cubature(*mu.shape)
    torch.testing.assert_close(
        lvm.elbo_monte_carlo(model.log_joint, x, mu, ls, eps), model.elbo(x, mu, ls)
    )


def _average_log_likelihood(W, b, log_s, x):
    cov = W @ W.T + torch.exp(2 * log_s) * torch.eye(W.shape[0], dtype=F64)
    return torch.distributions.MultivariateNormal(b, covariance_matrix=cov).log_prob(x).mean()


@pytest.mark.parametrize("d, D, seed", [(1, 3, 0), (2, 5, 1), (3, 6, 2)])
def test_ppca_maximum_likelihood_is_a_maximum(d, D, seed):
    true = lvm.LinearGaussianLVM.random(d, D, noise_std=0.6, seed=seed)
    x, _ = true.sample(300, torch.Generator().manual_seed(seed))
    ml = lvm.ppca_maximum_likelihood(x, d)
    theta = [ml.W.clone(), ml.b.clone(), torch.tensor(math.log(ml.noise_std), dtype=F64)]
    theta = [t.requires_grad_(True) for t in theta]
    best = _average_log_likelihood(*theta, x)
    torch.testing.assert_close(best, ml.log_evidence(x).mean())
    for grad in torch.autograd.grad(best, theta):
        assert grad.abs().max() < 1e-8
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        moved = [t.detach() + 0.05 * torch.randn(t.shape, generator=gen, dtype=F64) for t in theta]
        assert _average_log_likelihood(*moved, x) < best
    rotation, _ = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=F64))
    rotated = lvm.LinearGaussianLVM(ml.W @ rotation, ml.b, ml.noise_std)
    torch.testing.assert_close(rotated.log_evidence(x), ml.log_evidence(x))
    assert true.log_evidence(x).mean() <= best  # the generating model fits these data worse


def test_ml_gradient_step_is_ascent_on_the_average_for_theta_and_the_sum_for_q():
    model = lvm.LinearGaussianLVM.random(2, 4, noise_std=0.7, seed=6)
    x, _ = model.sample(5, torch.Generator().manual_seed(0))
    mu, ls = _randn(5, 2, seed=1), _randn(5, 2, seed=2, scale=0.5)
    log_s = torch.tensor(math.log(0.7), dtype=F64)
    eps = _cubature(5, 2)  # the exact ELBO: compare with the closed form's gradients
    new = lvm.ml_gradient_step(x, model.W, model.b, log_s, mu, ls, eps, 0.1, 0.01)
    W, b = model.W.clone().requires_grad_(True), model.b.clone().requires_grad_(True)
    elbo = lvm.LinearGaussianLVM(W, b, 0.7).elbo(x, mu, ls)
    g_W, g_b = torch.autograd.grad(elbo.mean(), [W, b])
    torch.testing.assert_close(new[0], model.W + 0.1 * g_W)
    torch.testing.assert_close(new[1], model.b + 0.1 * g_b)
    new_mu, new_ls = lvm.vi_gradient_step(functools.partial(model.elbo, x), mu, ls, 0.01)
    torch.testing.assert_close(new[3], new_mu)
    torch.testing.assert_close(new[4], new_ls)
    # d/dlog s of the average ELBO = -D + E_q|x - W z - b|^2 / s^2 (averaged over i)
    z = mu + ls.exp() * eps
    residual = ((x - z @ model.W.T - model.b) ** 2).sum(-1).mean(0).mean()
    torch.testing.assert_close(new[2], log_s + 0.1 * (-4 + residual / 0.49))
    assert not any(t.requires_grad for t in new)


# ============================================================== grader tests: Exercise 1.5


def ml_step_reference(x, W, b, log_s, mu, log_std, eps, lr_theta, lr_q):
    """Written like a student: torch.distributions, one backward on the sum, theta's gradient / N."""
    params = [t.detach().clone().requires_grad_(True) for t in (W, b, log_s, mu, log_std)]
    W, b, log_s, mu, log_std = params
    z = mu + log_std.exp() * eps
    normal = torch.distributions.Normal
    log_lik = normal(z @ W.T + b, log_s.exp()).log_prob(x).sum(-1)
    log_prior = normal(0.0, 1.0).log_prob(z).sum(-1)
    entropy = normal(mu, log_std.exp()).entropy().sum(-1)
    ((log_lik + log_prior).mean(0) + entropy).sum().backward()
    n = x.shape[0]
    with torch.no_grad():
        return (
            W + lr_theta * W.grad / n,
            b + lr_theta * b.grad / n,
            log_s + lr_theta * log_s.grad / n,
            mu + lr_q * mu.grad,
            log_std + lr_q * log_std.grad,
        )


def _student(elbo_of, theta_reduce=torch.mean, q_reduce=torch.sum, sign=1.0, detach=True):
    """A student's step whose ELBO is elbo_of(x, W, b, log_s, mu, log_std, eps) -> (N,)."""

    def step(x, W, b, log_s, mu, log_std, eps, lr_theta, lr_q):
        theta = [t.detach().requires_grad_(True) for t in (W, b, log_s)]
        q = [t.detach().requires_grad_(True) for t in (mu, log_std)]
        elbo = elbo_of(x, *theta, *q, eps)
        g_theta = torch.autograd.grad(theta_reduce(elbo), theta, retain_graph=True)
        g_q = torch.autograd.grad(q_reduce(elbo), q)
        out = [p + sign * lr_theta * g for p, g in zip(theta, g_theta, strict=True)]
        out += [p + sign * lr_q * g for p, g in zip(q, g_q, strict=True)]
        return tuple(o.detach() if detach else o for o in out)

    return step


def _elbo_of(x, W, b, log_s, mu, log_std, eps, entropy=1.0, norm=1.0, prior=1.0):
    z = mu + log_std.exp() * eps
    residual = x - z @ W.T - b
    log_lik = -0.5 * (residual**2).sum(-1) / torch.exp(2 * log_s) - norm * x.shape[-1] * log_s
    log_prior = -0.5 * (z**2).sum(-1)
    return (log_lik + prior * log_prior).mean(0) + entropy * (C + log_std).sum(-1)


def _alternating(x, W, b, log_s, mu, log_std, eps, lr_theta, lr_q):
    """q first (with vi_step), then theta at the new q: accepted as a correct variant."""
    mu, log_std = lvm.vi_gradient_step(
        lambda m, s: _elbo_of(x, W, b, log_s, m, s, eps), mu, log_std, lr_q
    )
    theta = [t.detach().requires_grad_(True) for t in (W, b, log_s)]
    grads = torch.autograd.grad(_elbo_of(x, *theta, mu, log_std, eps).mean(), theta)
    return (*[(p + lr_theta * g).detach() for p, g in zip(theta, grads, strict=True)], mu, log_std)


def test_ml_step_check_accepts_reference_and_variants(capsys):
    check_ml_step(lvm.ml_gradient_step)
    check_ml_step(ml_step_reference)
    check_ml_step(_student(_elbo_of))
    check_ml_step(_alternating)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [lines[0]] * 4 and lines[0].startswith("Exercise 1.5 passed: ")


def _no_entropy(*a):
    return _elbo_of(*a, entropy=0.0)


def _no_norm(*a):
    return _elbo_of(*a, norm=0.0)


def _no_prior(*a):
    return _elbo_of(*a, prior=0.0)


def _detached_z(x, W, b, log_s, mu, log_std, eps):
    z = (mu + log_std.exp() * eps).detach()
    residual = x - z @ W.T - b
    log_lik = -0.5 * (residual**2).sum(-1) / torch.exp(2 * log_s) - x.shape[-1] * log_s
    return (log_lik - 0.5 * (z**2).sum(-1)).mean(0) + (C + log_std + 0 * mu).sum(-1)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_student(_no_entropy), r"the entropy H\(q_i\) is missing"),
        (_student(_elbo_of, theta_reduce=lambda v: v[0]), "ELBO of one data point only"),
        (_student(_elbo_of, sign=-1.0), "you stepped downhill on everything"),
        (_student(_elbo_of, theta_reduce=torch.sum), "your theta step is N times too large"),
        (_student(_elbo_of, q_reduce=torch.mean), "your q_i steps are N times too small"),
        (_student(_no_norm), "lacks its normalizer -D log s"),
        (_student(_no_prior), r"log p\(z\) is missing"),
        (_student(_detached_z), "your q_i steps see only the entropy"),
        (_student(_elbo_of, detach=False), "still require grad"),
    ],
)
def test_ml_step_check_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_ml_step(wrong)


def test_ml_step_outcome_check_catches_a_step_that_stalls():
    """A step that matches on every case but not in a long run is caught by the outcome check."""
    calls = {"n": 0}

    def stalls(*args):
        calls["n"] += 1
        return (
            lvm.ml_gradient_step(*args) if calls["n"] <= 6 else tuple(a.clone() for a in args[1:6])
        )

    with pytest.raises(ExerciseError, match="below the closed-form maximum"):
        check_ml_step(stalls)


# ======================================================================= all checks


@pytest.mark.parametrize("check", [check_gaussian_kl, check_elbo_mc, check_vi_step, check_ml_step])
def test_not_attempted(check):
    with pytest.raises(ExerciseNotAttempted, match="is not attempted yet"):
        check(not_implemented)


@pytest.mark.parametrize("check", [check_gaussian_kl, check_elbo_mc, check_vi_step, check_ml_step])
def test_a_crash_names_the_input(check):
    def crashes(*args):
        raise ValueError("boom")

    with pytest.raises(ExerciseError, match=r"raised ValueError: boom \(input: "):
        check(crashes)


@pytest.mark.parametrize("check", [check_gaussian_kl, check_elbo_mc, check_vi_step, check_ml_step])
def test_forgotten_return(check):
    with pytest.raises(ExerciseError, match=r"returned None|returned a NoneType"):
        check(lambda *args: None)


# ======================================================= harness semantics for chapter 01


def test_monte_carlo_entropy_is_called_valid_in_general():
    with pytest.raises(ExerciseError) as info:
        check_elbo_mc(elbo_mc_entropy)
    message = str(info.value)
    assert "valid in" in message and "general" in message and "closed-form H(q_i)" in message


def test_float32_answers_are_accepted(capsys):
    check_gaussian_kl(lambda *args: kl_reference(*(a.float() for a in args)))
    check_elbo_mc(
        lambda lj, x, mu, ls, eps: elbo_reference(lj, x, mu.float(), ls.float(), eps.float())
    )

    def step_float32(elbo_fn, mu, log_std, lr):
        return step_reference(elbo_fn, mu.float(), log_std.float(), lr)

    check_vi_step(step_float32)
    lines = capsys.readouterr().out.splitlines()

    def ml_step_float32(*args):
        return ml_step_reference(*(a.float() if torch.is_tensor(a) else a for a in args))

    check_ml_step(ml_step_float32)
    assert [line[:14] for line in lines + capsys.readouterr().out.splitlines()] == [
        "Exercise 1.1 p",
        "Exercise 1.2 p",
        "Exercise 1.3 p",
        "Exercise 1.5 p",
    ]


def test_a_kept_axis_of_size_one_gets_the_shape_hint_even_where_d_is_1():
    """On the d=1 input a keepdims answer equals the per-dimension terms: no mistake is named."""
    with pytest.raises(ExerciseError, match="An extra axis of size 1"):
        check_gaussian_kl(lambda *args: kl_reference(*args)[..., None])


def test_the_checks_leave_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    for check, reference in [
        (check_gaussian_kl, lvm.gaussian_kl),
        (check_elbo_mc, lvm.elbo_monte_carlo),
        (check_vi_step, lvm.vi_gradient_step),
        (check_ml_step, lvm.ml_gradient_step),
    ]:
        check(reference)
    torch.testing.assert_close(torch.rand(3), expected)
