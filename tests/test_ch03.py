"""Chapter 03 grader tests: every check of course_utils.checks.ch03 accepts the reference (and
equivalent rewrites) and rejects each typical wrong answer with its own message."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_utils import vae
from course_utils.checks import ExerciseError, ExerciseNotAttempted
from course_utils.checks.ch03 import (
    check_bernoulli_log_likelihood,
    check_kl_to_prior,
    check_negative_elbo,
    check_reparameterize,
)


def _not_attempted(*args, **kwargs):
    raise NotImplementedError()


def _rejects(check, fn, *fragments):
    """The check raises ExerciseError whose message contains every fragment."""
    with pytest.raises(ExerciseError) as info:
        check(fn)
    assert not isinstance(info.value, ExerciseNotAttempted), str(info.value)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"
    return message


@pytest.mark.parametrize(
    "check",
    [check_reparameterize, check_bernoulli_log_likelihood, check_kl_to_prior, check_negative_elbo],
)
def test_not_attempted_and_not_callable(check):
    with pytest.raises(ExerciseNotAttempted, match="not attempted yet"):
        check(_not_attempted)
    with pytest.raises(ExerciseError, match="expected a function"):
        check(42)


def test_checks_leave_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_reparameterize(vae.reparameterize)
    check_negative_elbo(vae.negative_elbo)
    torch.testing.assert_close(torch.rand(3), expected)


# ------------------------------------------------------------------------- Exercise 3.1


def test_reparameterize_accepts_reference_and_rewrites(capsys):
    check_reparameterize(vae.reparameterize)
    check_reparameterize(
        lambda mu, log_std: torch.distributions.Normal(mu, log_std.exp()).rsample()
    )
    check_reparameterize(lambda mu, log_std: mu + torch.exp(log_std) * torch.randn(mu.shape))
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("Exercise 3.1 passed: ") for line in lines)
    assert len(set(lines)) == 1  # deterministic


def _sigma(log_std):
    return torch.exp(log_std)


REPARAM_MISTAKES = [
    (
        "detach",
        lambda mu, ls: (mu + _sigma(ls) * torch.randn_like(mu)).detach(),
        ["gradient path is cut"],
    ),
    (
        "distributions .sample()",
        lambda mu, ls: torch.distributions.Normal(mu, _sigma(ls)).sample(),
        ["gradient path is cut", ".sample()"],
    ),
    (
        "torch.normal",
        lambda mu, ls: torch.normal(mu, _sigma(ls)),
        ["torch.normal(mu, std)", "zero"],
    ),
    ("no_grad", lambda mu, ls: _no_grad_sample(mu, ls), ["gradient path is cut"]),
    (
        "sigma detached",
        lambda mu, ls: mu + _sigma(ls).detach() * torch.randn_like(mu),
        ["no gradient reaches log_std"],
    ),
    (
        "mu detached",
        lambda mu, ls: mu.detach() + _sigma(ls) * torch.randn_like(mu),
        ["no gradient reaches mu"],
    ),
    (
        "log-variance",
        lambda mu, ls: mu + torch.exp(0.5 * ls) * torch.randn_like(mu),
        ["log-VARIANCE"],
    ),
    (
        "variance",
        lambda mu, ls: mu + torch.exp(2 * ls) * torch.randn_like(mu),
        ["variance sigma^2"],
    ),
    (
        "log_std as sigma",
        lambda mu, ls: mu + ls * torch.randn_like(mu),
        ["used log_std as the standard deviation"],
    ),
    ("uniform noise", lambda mu, ls: mu + _sigma(ls) * torch.rand_like(mu), ["uniform"]),
    (
        "shared noise",
        lambda mu, ls: mu + _sigma(ls) * torch.randn(mu.shape[-1], dtype=mu.dtype),
        ["same noise eps"],
    ),
    (
        "noise per data point",
        lambda mu, ls: mu + _sigma(ls) * torch.randn(*mu.shape[:-1], 1, dtype=mu.dtype),
        ["every latent dimension got the same noise"],
    ),
    (
        "wrong noise scale",
        lambda mu, ls: mu + _sigma(ls) * 2 * torch.randn_like(mu),
        ["standard normal"],
    ),
    ("seeded inside", lambda mu, ls: _seeded_sample(mu, ls), ["two calls returned the same z"]),
    (
        "returns numpy",
        lambda mu, ls: (mu + _sigma(ls) * torch.randn_like(mu)).detach().numpy(),
        ["as a torch tensor"],
    ),
    ("returns the mean", lambda mu, ls: mu * 1.0, ["z equals mu"]),
    ("returns None", lambda mu, ls: None, ["forget the `return`"]),
    ("wrong shape", lambda mu, ls: (mu + _sigma(ls) * torch.randn_like(mu))[None], ["has shape"]),
    ("in place", lambda mu, ls: _in_place(mu, ls), ["changed its argument `log_std` in place"]),
]


def _no_grad_sample(mu, log_std):
    with torch.no_grad():
        return mu + _sigma(log_std) * torch.randn_like(mu)


def _seeded_sample(mu, log_std):
    generator = torch.Generator().manual_seed(0)
    return mu + _sigma(log_std) * torch.randn(mu.shape, generator=generator, dtype=mu.dtype)


def _in_place(mu, log_std):
    with torch.no_grad():
        log_std.mul_(1.0000001)
    return mu + _sigma(log_std) * torch.randn_like(mu)


@pytest.mark.parametrize(
    "fn, fragments", [m[1:] for m in REPARAM_MISTAKES], ids=[m[0] for m in REPARAM_MISTAKES]
)
def test_reparameterize_rejects(fn, fragments):
    _rejects(check_reparameterize, fn, "Exercise 3.1", *fragments)


# ------------------------------------------------------------------------- Exercise 3.2


def _bce_naive(x, logits):
    p = torch.sigmoid(logits)
    return (x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum(-1)


def _clamped(eps):
    def fn(x, logits):
        p = torch.sigmoid(logits).clamp(eps, 1 - eps)
        return (x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum(-1)

    return fn


def test_bernoulli_accepts_reference_and_rewrites(capsys):
    check_bernoulli_log_likelihood(vae.bernoulli_log_likelihood)
    check_bernoulli_log_likelihood(
        lambda x, lg: -F.binary_cross_entropy_with_logits(lg, x, reduction="none").sum(-1)
    )
    check_bernoulli_log_likelihood(
        lambda x, lg: (x * F.logsigmoid(lg) + (1 - x) * F.logsigmoid(-lg)).sum(dim=-1)
    )
    check_bernoulli_log_likelihood(
        lambda x, lg: torch.distributions.Bernoulli(logits=lg).log_prob(x).sum(-1)
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith("Exercise 3.2 passed: ") for line in lines)


BERNOULLI_MISTAKES = [
    ("naive log sigmoid", _bce_naive, ["not finite for extreme logits", "logsigmoid"]),
    (
        "logits as probabilities",
        lambda x, lg: (x * torch.log(lg) + (1 - x) * torch.log(1 - lg)).sum(-1),
        ["as if they were probabilities"],
    ),
    ("clamp 1e-7", _clamped(1e-7), ["clipped the probabilities to [1e-07"]),
    ("clamp 1e-4 (no exact model)", _clamped(1e-4), ["you clipped the probability, the logits"]),
    (
        "torch BCE on probabilities",
        lambda x, lg: -F.binary_cross_entropy(torch.sigmoid(lg), x, reduction="none").sum(-1),
        ["F.binary_cross_entropy clips"],
    ),
    (
        "clamped logits",
        lambda x, lg: vae.bernoulli_log_likelihood(x, lg.clamp(-20, 20)),
        ["clipped"],
    ),
    (
        "sign (BCE)",
        lambda x, lg: F.binary_cross_entropy_with_logits(lg, x, reduction="none").sum(-1),
        ["binary cross-entropy, the NEGATIVE"],
    ),
    (
        "mean over pixels",
        lambda x, lg: -F.binary_cross_entropy_with_logits(lg, x, reduction="none").mean(-1),
        ["averaged over the pixels"],
    ),
    (
        "no reduction",
        lambda x, lg: -F.binary_cross_entropy_with_logits(lg, x, reduction="none"),
        ["one log-likelihood per pixel"],
    ),
    (
        "sum over batch",
        lambda x, lg: -F.binary_cross_entropy_with_logits(lg, x, reduction="none").sum(0),
        ["batch axis (axis 0)"],
    ),
    (
        "total sum",
        lambda x, lg: -F.binary_cross_entropy_with_logits(lg, x, reduction="sum"),
        ["every axis"],
    ),
    ("MSE", lambda x, lg: -((x - torch.sigmoid(lg)) ** 2).sum(-1), ["squared error"]),
    (
        "MSE on logits",
        lambda x, lg: -((x - lg) ** 2).sum(-1),
        ["squared error between x and the logits"],
    ),
    (
        "missing zero term",
        lambda x, lg: (x * F.logsigmoid(lg)).sum(-1),
        ["pixels that are 0 is missing"],
    ),
    (
        "swapped terms",
        lambda x, lg: (x * F.logsigmoid(-lg) + (1 - x) * F.logsigmoid(lg)).sum(-1),
        ["swapped the two terms"],
    ),
]


@pytest.mark.parametrize(
    "fn, fragments", [m[1:] for m in BERNOULLI_MISTAKES], ids=[m[0] for m in BERNOULLI_MISTAKES]
)
def test_bernoulli_rejects(fn, fragments):
    _rejects(check_bernoulli_log_likelihood, fn, "Exercise 3.2", *fragments)


def test_bernoulli_reference_rejects_grey_values():
    x = torch.tensor([[0.0, 1.0, 0.5]])
    with pytest.raises(ValueError, match="binary x"):
        vae.bernoulli_log_likelihood(x, torch.zeros(1, 3))


# ------------------------------------------------------------------------- Exercise 3.3


def test_kl_accepts_reference_and_rewrites(capsys):
    check_kl_to_prior(vae.kl_to_prior)
    check_kl_to_prior(lambda mu, ls: -0.5 * (1 + 2 * ls - mu**2 - torch.exp(2 * ls)).sum(-1))
    check_kl_to_prior(
        lambda mu, ls: torch.distributions.kl_divergence(
            torch.distributions.Normal(mu, ls.exp()),
            torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu)),
        ).sum(-1)
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("Exercise 3.3 passed: ") for line in lines)


def _kl_per_dim(mu, ls):
    return 0.5 * (mu**2 + torch.exp(2 * ls)) - ls - 0.5


KL_MISTAKES = [
    ("sign", lambda mu, ls: -_kl_per_dim(mu, ls).sum(-1), ["negative of the right one"]),
    (
        "log-variance formula",
        lambda mu, ls: -0.5 * (1 + ls - mu**2 - ls.exp()).sum(-1),
        ["log-VARIANCE"],
    ),
    (
        "sigma for variance",
        lambda mu, ls: (0.5 * (mu**2 + ls.exp()) - ls - 0.5).sum(-1),
        ["variance sigma^2"],
    ),
    (
        "log_std as sigma",
        lambda mu, ls: (0.5 * (mu**2 + ls**2) - torch.log(ls) - 0.5).sum(-1),
        ["treated log_std as sigma"],
    ),
    (
        "reverse KL",
        lambda mu, ls: (ls + (1 + mu**2) / (2 * torch.exp(2 * ls)) - 0.5).sum(-1),
        ["reverse direction"],
    ),
    ("missing mu^2", lambda mu, ls: (0.5 * torch.exp(2 * ls) - ls - 0.5).sum(-1), ["mean term"]),
    ("missing -1/2", lambda mu, ls: (0.5 * (mu**2 + torch.exp(2 * ls)) - ls).sum(-1), ["-1/2"]),
    ("sum over batch", lambda mu, ls: _kl_per_dim(mu, ls).sum(0), ["summed over the batch axis"]),
    (
        "mean over latent dims",
        lambda mu, ls: _kl_per_dim(mu, ls).mean(-1),
        ["averaged over the latent"],
    ),
    ("no reduction", _kl_per_dim, ["one KL divergence per latent dimension"]),
    ("total sum", lambda mu, ls: _kl_per_dim(mu, ls).sum(), ["every axis"]),
]


@pytest.mark.parametrize(
    "fn, fragments", [m[1:] for m in KL_MISTAKES], ids=[m[0] for m in KL_MISTAKES]
)
def test_kl_rejects(fn, fragments):
    _rejects(check_kl_to_prior, fn, "Exercise 3.3", *fragments)


# ------------------------------------------------------------------------- Exercise 3.4


def test_negative_elbo_accepts_reference_and_rewrites(capsys):
    def via_forward(model, x, beta=1.0):
        logits, mu, log_std = model(x)
        return (
            -vae.bernoulli_log_likelihood(x, logits) + beta * vae.kl_to_prior(mu, log_std)
        ).mean()

    def via_rsample(model, x, beta=1.0):
        mu, log_std = model.encode(x)
        z = torch.distributions.Normal(mu, log_std.exp()).rsample()
        recon = F.binary_cross_entropy_with_logits(model.decode(z), x, reduction="sum") / len(x)
        return recon + beta * vae.kl_to_prior(mu, log_std).mean()

    for fn in (vae.negative_elbo, via_forward, via_rsample):
        check_negative_elbo(fn)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("Exercise 3.4 passed: ") for line in lines)


def _loss(
    model,
    x,
    beta,
    *,
    sample=vae.reparameterize,
    recon_scale=1.0,
    kl_sign=1.0,
    kl_weight=None,
    reduce=torch.mean,
    kl_fn=vae.kl_to_prior,
    loglik=vae.bernoulli_log_likelihood,
):
    mu, log_std = model.encode(x)
    z = sample(mu, log_std)
    recon = -loglik(x, model.decode(z)) * recon_scale
    weight = beta if kl_weight is None else kl_weight
    return reduce(recon + kl_sign * weight * kl_fn(mu, log_std))


def _mean_pixels(x, logits):
    return vae.bernoulli_log_likelihood(x, logits) / x.shape[-1]


ELBO_MISTAKES = [
    ("returns the ELBO", lambda m, x, beta=1.0: -_loss(m, x, beta), ["returned the ELBO itself"]),
    (
        "KL sign",
        lambda m, x, beta=1.0: _loss(m, x, beta, kl_sign=-1.0),
        ["KL term has the wrong sign"],
    ),
    ("missing KL", lambda m, x, beta=1.0: _loss(m, x, beta, kl_weight=0.0), ["KL term is missing"]),
    ("beta ignored", lambda m, x, beta=1.0: _loss(m, x, beta, kl_weight=1.0), ["ignored beta"]),
    (
        "beta on the reconstruction",
        lambda m, x, beta=1.0: _loss(m, x, beta, recon_scale=beta, kl_weight=1.0),
        ["beta multiplies the wrong term"],
    ),
    (
        "sum over batch",
        lambda m, x, beta=1.0: _loss(m, x, beta, reduce=torch.sum),
        ["summed over the batch"],
    ),
    (
        "per-image vector",
        lambda m, x, beta=1.0: _loss(m, x, beta, reduce=lambda v: v),
        ["single number"],
    ),
    (
        "pixel mean",
        lambda m, x, beta=1.0: _loss(m, x, beta, loglik=_mean_pixels),
        ["over the pixels"],
    ),
    (
        "KL mean over latent dims",
        lambda m, x, beta=1.0: _loss(
            m, x, beta, kl_fn=lambda mu, ls: vae.kl_to_prior(mu, ls) / mu.shape[-1]
        ),
        ["KL over the latent"],
    ),
    (
        "decodes the mean",
        lambda m, x, beta=1.0: _loss(m, x, beta, sample=lambda mu, ls: mu),
        ["decoded the mean"],
    ),
    (
        "detached sample",
        lambda m, x, beta=1.0: _loss(
            m, x, beta, sample=lambda mu, ls: vae.reparameterize(mu, ls).detach()
        ),
        ["no gradient flows"],
    ),
    (
        "torch.normal",
        lambda m, x, beta=1.0: _loss(m, x, beta, sample=lambda mu, ls: torch.normal(mu, ls.exp())),
        ["no gradient flows"],
    ),
    (
        "log-variance sample",
        lambda m, x, beta=1.0: _loss(
            m, x, beta, sample=lambda mu, ls: mu + torch.exp(0.5 * ls) * torch.randn_like(mu)
        ),
        ["log-variance"],
    ),
    (
        "naive likelihood",
        lambda m, x, beta=1.0: _loss(m, x, beta, loglik=_naive_loglik),
        ["not finite", "Exercise 3.2"],
    ),
    (
        "never decodes",
        lambda m, x, beta=1.0: vae.kl_to_prior(*m.encode(x)).mean() * beta + 10.0,
        ["never called model.decode"],
    ),
    ("returns a float", lambda m, x, beta=1.0: _loss(m, x, beta).item(), ["as a torch tensor"]),
    (
        "detached loss",
        lambda m, x, beta=1.0: _loss(m, x, beta).detach(),
        ["requires_grad is False"],
    ),
]


def _naive_loglik(x, logits):
    p = torch.sigmoid(logits)
    return (x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum(-1)


@pytest.mark.parametrize(
    "fn, fragments", [m[1:] for m in ELBO_MISTAKES], ids=[m[0] for m in ELBO_MISTAKES]
)
def test_negative_elbo_rejects(fn, fragments):
    _rejects(check_negative_elbo, fn, "Exercise 3.4", *fragments)


def test_negative_elbo_names_an_unfinished_earlier_exercise():
    def uses_stub(model, x, beta=1.0):
        raise NotImplementedError("Exercise 3.1: replace this line with your code")

    with pytest.raises(ExerciseNotAttempted, match=r"calls the function of Exercise 3\.1"):
        check_negative_elbo(uses_stub)


def test_negative_elbo_check_is_exact_for_any_noise():
    """The student may draw the noise any way they like: the check uses the z they decoded."""

    def other_noise(model, x, beta=1.0):
        mu, log_std = model.encode(x)
        eps = torch.randn(mu.shape[::-1], dtype=mu.dtype).T  # a different draw order
        z = mu + eps * log_std.exp()
        return (
            -vae.bernoulli_log_likelihood(x, model.decode(z)) + beta * vae.kl_to_prior(mu, log_std)
        ).mean()

    check_negative_elbo(other_noise)


# ------------------------------------------------------- the harness's observations (new checks)


def test_reparameterize_gradient_fallbacks():
    """Gradients that no typical mistake explains still get a gradient-specific message."""

    def double_mu(mu, log_std):  # dz/dmu = 2
        return 2 * mu - mu.detach() + torch.randn_like(mu) * log_std.exp()

    def sigma_to_the_1_5(mu, log_std):  # dz/dlog_std = 1.5 (z - mu)
        return mu + torch.randn_like(mu) * log_std.exp() ** 1.5

    _rejects(check_reparameterize, double_mu, "dz/dmu should be 1 for every entry", "from 2 to 2")
    _rejects(check_reparameterize, sigma_to_the_1_5, "dz/dlog_std should equal z - mu")


def test_reparameterize_noise_statistics_name_the_input():
    message = _rejects(check_reparameterize, lambda mu, ls: mu + ls.exp() * torch.rand_like(mu))
    assert "uniform" in message and message.endswith(
        "(input: 4000 q's with d=3 (sigma from 0.37 to 2.7))"
    )


def test_bernoulli_float32_answers_are_judged_at_float32_precision(capsys):
    check_bernoulli_log_likelihood(
        lambda x, logits: (x.float() * logits.float() - F.softplus(logits.float())).sum(-1)
    )
    assert capsys.readouterr().out.startswith("Exercise 3.2 passed: ")


def _recon_and_kl(model, x, beta, *, logits_grad=1.0, kl_mu=lambda mu: mu):
    mu, log_std = model.encode(x)
    logits = model.decode(vae.reparameterize(mu, log_std))
    logits = logits.detach() + logits_grad * (logits - logits.detach())  # same value
    nll = -vae.bernoulli_log_likelihood(x, logits)
    return (nll + beta * vae.kl_to_prior(kl_mu(mu), log_std)).mean()


def test_negative_elbo_gradient_fallbacks():
    _rejects(
        check_negative_elbo,
        lambda m, x, beta=1.0: _recon_and_kl(m, x, beta, logits_grad=0.5),
        "its gradient with respect to the decoder's parameters is not",
    )
    _rejects(
        check_negative_elbo,
        lambda m, x, beta=1.0: _recon_and_kl(m, x, beta, kl_mu=lambda mu: mu.detach()),
        "its gradient with respect to the encoder's parameters is not",
    )


def test_negative_elbo_mistakes_are_named_whatever_noise_the_student_draws():
    """The mistakes replay the z's the student's function decoded."""

    def kl_sign_other_noise(model, x, beta=1.0):
        mu, log_std = model.encode(x)
        eps = torch.randn(mu.shape[::-1], dtype=mu.dtype).T
        nll = -vae.bernoulli_log_likelihood(x, model.decode(mu + eps * log_std.exp()))
        return (nll - beta * vae.kl_to_prior(mu, log_std)).mean()

    def detached_rsample(model, x, beta=1.0):
        mu, log_std = model.encode(x)
        z = torch.distributions.Normal(mu, log_std.exp()).rsample().detach()
        nll = -vae.bernoulli_log_likelihood(x, model.decode(z))
        return (nll + beta * vae.kl_to_prior(mu, log_std)).mean()

    _rejects(check_negative_elbo, kl_sign_other_noise, "the KL term has the wrong sign")
    _rejects(check_negative_elbo, detached_rsample, "no gradient flows")


def test_negative_elbo_value_fallback_reports_the_terms():
    def half_kl(model, x, beta=1.0):  # no typical mistake
        mu, log_std = model.encode(x)
        nll = -vae.bernoulli_log_likelihood(x, model.decode(vae.reparameterize(mu, log_std)))
        return (nll + 0.7 * beta * vae.kl_to_prior(mu, log_std)).mean()

    _rejects(
        check_negative_elbo,
        half_kl,
        "but on the same samples z the reference",
        "Check Exercises 3.2",
    )
