"""Chapter 03 grader tests: every check of course_utils.checks.ch03 accepts the reference and
equivalent rewrites (any way of drawing the noise included) and rejects each typical wrong answer,
written as a student would write it, with its own message."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from course_utils import vae
from course_utils.checks import ExerciseError, ExerciseNotAttempted
from course_utils.checks.ch03 import (
    check_importance_weighted_bound,
    check_race_prediction,
    check_score_function_loss,
    check_training_step,
)

CHECKS = [check_training_step, check_score_function_loss, check_importance_weighted_bound]


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


@pytest.mark.parametrize("check", CHECKS)
def test_not_attempted_and_not_callable(check):
    with pytest.raises(ExerciseNotAttempted, match="not attempted yet"):
        check(_not_attempted)
    with pytest.raises(ExerciseError, match="expected a function"):
        check(42)


def test_checks_leave_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_training_step(vae.training_step)
    check_score_function_loss(vae.score_function_loss)
    torch.testing.assert_close(torch.rand(3), expected)


# ------------------------------------------------------------------------- Exercise 3.1


def _step(
    model,
    optimizer,
    x,
    beta=1.0,
    *,
    sample=lambda mu, log_std: mu + torch.randn_like(mu) * log_std.exp(),
    loglik=vae.bernoulli_log_likelihood,
    kl_fn=vae.kl_to_prior,
    order="zbs",
    sign=1.0,
    returns=None,
):
    """A student's training step; the keywords write the mistakes."""
    mu, log_std = model.encode(x)
    log_likelihood = loglik(x, model.decode(sample(mu, log_std)))
    kl = kl_fn(mu, log_std)
    loss = sign * (-log_likelihood + beta * kl).mean()
    for action in order:
        {"z": optimizer.zero_grad, "b": loss.backward, "s": optimizer.step}[action]()
    if returns is not None:
        return returns(loss, log_likelihood, kl)
    return loss.item(), log_likelihood.mean().item(), kl.mean().item()


def test_training_step_accepts_rewrites(capsys):
    def via_forward(model, optimizer, x, beta=1.0):
        logits, mu, log_std = model(x)
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
        kl = vae.kl_to_prior(mu, log_std).mean()
        loss = recon + beta * kl
        model.zero_grad()
        loss.backward()
        optimizer.step()
        return loss, -recon, kl  # tensors that still require grad are read as values

    def other_noise(model, optimizer, x, beta=1.0):
        def sample(mu, log_std):
            return mu + torch.randn(mu.shape[::-1], dtype=mu.dtype).T * log_std.exp()

        return _step(model, optimizer, x, beta, sample=sample)

    def rsample(model, optimizer, x, beta=1.0):
        def sample(mu, log_std):
            return torch.distributions.Normal(mu, log_std.exp()).rsample()

        return _step(model, optimizer, x, beta, sample=sample)

    for fn in (vae.training_step, _step, via_forward, other_noise, rsample):
        check_training_step(fn)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5 and all(line.startswith("Exercise 3.1 passed: ") for line in lines)
    assert len(set(lines)) == 1  # deterministic


def _naive_loglik(x, logits):
    p = torch.sigmoid(logits)
    return (x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum(-1)


def _seeded(mu, log_std):
    eps = torch.randn(mu.shape, dtype=mu.dtype, generator=torch.Generator().manual_seed(0))
    return mu + eps * log_std.exp()


def _new_optimizer(model, optimizer, x, beta=1.0):
    return _step(model, torch.optim.SGD(model.parameters(), lr=0.1), x, beta)


STEP_MISTAKES = [
    ("forgot zero_grad", dict(order="bs"), ["you did not clear the gradients"]),
    ("step before backward", dict(order="zsb"), ["did not move the parameters by this loss"]),
    (
        "step, zero_grad, backward",
        dict(order="szb"),
        ["changed the parameters in place before loss.backward()", "in this order"],
    ),
    ("zero_grad after backward", dict(order="bzs"), ["did not move the parameters"]),
    ("no step", dict(order="zb"), ["did not move the parameters"]),
    ("loss sign", dict(sign=-1.0), ["you minimised the ELBO itself"]),
    (
        "detached z",
        dict(sample=lambda m, s: (m + torch.randn_like(m) * s.exp()).detach()),
        ["no gradient flows"],
    ),
    ("torch.normal", dict(sample=lambda m, s: torch.normal(m, s.exp())), ["no gradient flows"]),
    (
        ".sample()",
        dict(sample=lambda m, s: torch.distributions.Normal(m, s.exp()).sample()),
        ["no gradient flows"],
    ),
    (
        "log-variance",
        dict(sample=lambda m, s: m + torch.randn_like(m) * torch.exp(s / 2)),
        ["log-variance"],
    ),
    ("decoded mean", dict(sample=lambda m, s: m), ["you decoded the mean"]),
    ("naive log(sigmoid)", dict(loglik=_naive_loglik), ["not finite", "softplus"]),
    ("uniform noise", dict(sample=lambda m, s: m + torch.rand_like(m) * s.exp()), ["uniform"]),
    (
        "one noise per latent dimension",
        dict(sample=lambda m, s: m + torch.randn(m.shape[-1], dtype=m.dtype) * s.exp()),
        ["every image got the same noise"],
    ),
    ("noise seeded inside", dict(sample=_seeded), ["two calls decoded the same z"]),
    (
        "returns the loss only",
        dict(returns=lambda loss, rec, kl: loss.item()),
        ["return the three numbers (loss, reconstruction, kl)"],
    ),
    (
        "returns per-image vectors",
        dict(returns=lambda loss, rec, kl: (loss, rec, kl)),
        ["has shape", ".mean()"],
    ),
    (
        "returns None for the KL",
        dict(returns=lambda loss, rec, kl: (loss, rec.mean(), None)),
        ["returned None for the KL"],
    ),
]


@pytest.mark.parametrize(
    "knobs, fragments", [m[1:] for m in STEP_MISTAKES], ids=[m[0] for m in STEP_MISTAKES]
)
def test_training_step_rejects(knobs, fragments):
    def student(model, optimizer, x, beta=1.0):
        return _step(model, optimizer, x, beta, **knobs)

    _rejects(check_training_step, student, "Exercise 3.1", *fragments)


def test_training_step_fallbacks_speak_in_the_students_numbers():
    _rejects(
        check_training_step,
        lambda m, o, x, beta=1.0: _step(
            m, o, x, beta, kl_fn=lambda mu, s: 0.7 * vae.kl_to_prior(mu, s)
        ),
        "on the z your code decoded the reference's is",
    )
    _rejects(check_training_step, _new_optimizer, "a new optimizer would lose")


def test_training_step_names_an_unfinished_helper():
    def uses_stub(model, optimizer, x, beta=1.0):
        raise NotImplementedError("Exercise 3.4: replace this line with your code")

    with pytest.raises(ExerciseNotAttempted, match=r"calls the function of Exercise 3\.4"):
        check_training_step(uses_stub)


def test_training_step_reference_is_deterministic_for_given_noise():
    x = (torch.rand(5, 16, generator=torch.Generator().manual_seed(0)) < 0.4).double()
    eps = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    results = []
    for _ in range(2):
        torch.manual_seed(3)
        model = vae.VAE(16, 2, 8, 1).double()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        numbers = vae.training_step(model, optimizer, x, 1.0, eps=eps)
        results.append((numbers, [p.detach().clone() for p in model.parameters()]))
    assert results[0][0] == results[1][0]
    assert all(torch.equal(a, b) for a, b in zip(results[0][1], results[1][1], strict=True))
    loss, recon, kl = results[0][0]
    assert loss == pytest.approx(-recon + kl)


def test_train_vae_takes_a_step_fn_or_a_loss_fn():
    x = (torch.rand(64, 16, generator=torch.Generator().manual_seed(0)) < 0.4).float()
    config = vae.VAEConfig(latent_dim=2, hidden=8, steps=5, batch_size=16, eval_every=5)
    by_step = vae.train_vae(x, config, step_fn=vae.training_step, device="cpu", progress=False)
    by_loss = vae.train_vae(x, config, device="cpu", progress=False)
    assert by_step.history["loss"] == by_loss.history["loss"]
    with pytest.raises(ValueError, match="not both"):
        vae.train_vae(
            x, config, loss_fn=vae.negative_elbo, step_fn=vae.training_step, progress=False
        )


# ------------------------------------------------------------------------- Exercise 3.2


def _surrogate(
    model,
    x,
    beta=1.0,
    *,
    sample=lambda mu, log_std: (mu + torch.randn_like(mu) * log_std.exp()).detach(),
    reward=lambda ll: ll.detach(),
    score_sign=1.0,
    baseline=0.0,
    reduce=torch.mean,
):
    mu, log_std = model.encode(x)
    z = sample(mu, log_std)
    log_likelihood = vae.bernoulli_log_likelihood(x, model.decode(z))
    log_q = torch.distributions.Normal(mu, log_std.exp()).log_prob(z.detach()).sum(-1)
    score = (reward(log_likelihood) - baseline) * log_q
    return reduce(-log_likelihood - score_sign * score + beta * vae.kl_to_prior(mu, log_std))


def test_score_function_accepts_rewrites(capsys):
    def slides(model, x, beta=1.0):
        mu, log_std = model.encode(x)
        q = torch.distributions.Normal(mu, log_std.exp())
        z = q.sample()
        reward = vae.bernoulli_log_likelihood(x, model.decode(z))
        log_prior = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
        score = q.log_prob(z).sum(-1) * (reward + beta * log_prior).detach()
        return (-reward - score - beta * q.entropy().sum(-1)).mean()

    def magic_box(model, x, beta=1.0):  # its value is the loss, its gradient the estimate
        mu, log_std = model.encode(x)
        q = torch.distributions.Normal(mu, log_std.exp())
        z = q.sample()
        log_q = q.log_prob(z).sum(-1)
        reward = vae.bernoulli_log_likelihood(x, model.decode(z))
        kl = vae.kl_to_prior(mu, log_std)
        return (-reward - reward.detach() * (log_q - log_q.detach()) + beta * kl).mean()

    for fn in (vae.score_function_loss, _surrogate, slides, magic_box):
        check_score_function_loss(fn)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith("Exercise 3.2 passed: ") for line in lines)


SURROGATE_MISTAKES = [
    (
        "z with its path",
        dict(sample=lambda m, s: m + torch.randn_like(m) * s.exp()),
        ["still depends on the encoder"],
    ),
    ("reward not detached", dict(reward=lambda ll: ll), ["must be a constant: detach it"]),
    ("score sign", dict(score_sign=-1.0), ["the score term has the wrong sign"]),
    ("sum over the batch", dict(reduce=torch.sum), ["you summed over the batch"]),
    ("a constant baseline", dict(baseline=-20.0), ["If you subtracted a baseline"]),
    ("decoded mean", dict(sample=lambda m, s: m.detach()), ["you decoded the mean"]),
    (
        "uniform noise",
        dict(sample=lambda m, s: (m + torch.rand_like(m) * s.exp()).detach()),
        ["uniform"],
    ),
    ("returns a float", dict(reduce=lambda v: v.mean().item()), ["as a torch tensor"]),
    ("returns a vector", dict(reduce=lambda v: v), ["return one number"]),
    (
        "returns a detached loss",
        dict(reduce=lambda v: v.mean().detach()),
        ["requires_grad is False"],
    ),
]


@pytest.mark.parametrize(
    "knobs, fragments",
    [m[1:] for m in SURROGATE_MISTAKES],
    ids=[m[0] for m in SURROGATE_MISTAKES],
)
def test_score_function_rejects(knobs, fragments):
    def student(model, x, beta=1.0):
        return _surrogate(model, x, beta, **knobs)

    _rejects(check_score_function_loss, student, "Exercise 3.2", *fragments)


def test_score_function_reference_is_unbiased():
    """Averaged over many draws, the score-function gradient w.r.t. the encoder's outputs equals
    the reparameterization gradient (within a few standard errors)."""
    torch.manual_seed(0)
    model = vae.VAE(16, 2, 8, 1).double()
    x = (torch.rand(1, 16) < 0.4).double().repeat(20000, 1)
    with torch.no_grad():
        mu0, log_std0 = model.encode(x)

    class Given:
        def __init__(self, mu, log_std):
            self.mu, self.log_std = mu, log_std

        def encode(self, x):
            return self.mu, self.log_std

        def decode(self, z):
            return model.decode(z)

    estimates = []
    for loss_fn in (vae.negative_elbo, vae.score_function_loss):
        mu, log_std = mu0.clone().requires_grad_(), log_std0.clone().requires_grad_()
        grads = torch.autograd.grad(loss_fn(Given(mu, log_std), x, 0.0), [mu, log_std])
        estimates.append(torch.cat(grads, -1) * len(x))
    pathwise, score = estimates
    error = ((pathwise.var(0) + score.var(0)) / len(x)).sqrt()
    assert ((pathwise.mean(0) - score.mean(0)).abs() < 4 * error).all()
    assert (score.std(0) > 2 * pathwise.std(0)).all()


# ------------------------------------------------------------------------- Exercise 3.3


def test_race_question():
    check_race_prediction("b")
    with pytest.raises(ExerciseError, match="unbiased means right on average"):
        check_race_prediction("a")
    with pytest.raises(ExerciseError, match="one of the choices as a string"):
        check_race_prediction(2)


# ------------------------------------------------------------------------- Exercise 3.4


def _bound(model, x, eps, *, combine="logsumexp", prior=True):
    mu, log_std = model.encode(x)
    z = mu + eps * log_std.exp()
    normal = torch.distributions.Normal
    log_w = vae.bernoulli_log_likelihood(x, model.decode(z)) - normal(mu, log_std.exp()).log_prob(
        z
    ).sum(-1)
    if prior:
        log_w = log_w + normal(0.0, 1.0).log_prob(z).sum(-1)
    if combine == "naive":
        return torch.log(torch.exp(log_w).mean(0))
    return torch.logsumexp(log_w, 0) - math.log(len(eps))


def test_importance_weighted_bound_accepts_rewrites(capsys):
    def float32(model, x, eps):
        return _bound(copy.deepcopy(model).float(), x.float(), eps.float())

    for fn in (vae.importance_weighted_bound, _bound, float32):
        check_importance_weighted_bound(fn)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("Exercise 3.4 passed: ") for line in lines)


@pytest.mark.parametrize(
    "knobs, fragments",
    [
        (dict(combine="naive"), ["not finite", "logsumexp"]),
        (dict(prior=False), ["log p(z) is missing"]),
    ],
    ids=["log of the mean of exp", "no prior"],
)
def test_importance_weighted_bound_rejects(knobs, fragments):
    _rejects(
        check_importance_weighted_bound,
        lambda model, x, eps: _bound(model, x, eps, **knobs),
        "Exercise 3.4",
        *fragments,
    )
