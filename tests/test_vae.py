"""Chapter 03: unit tests of course_utils.data (binarized digits) and course_utils.vae (the reference VAE)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from course_utils import lvm, vae
from course_utils.data import (
    DIGITS_THRESHOLD,
    as_image_grid,
    binarize,
    load_binarized_digits,
)
import itertools

F64 = torch.float64


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread, as in the notebook: far faster than two on a busy 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def digits():
    return load_binarized_digits()


@pytest.fixture(scope="module")
def small_model(digits):
    """A small VAE, 1000 steps (about 2 s on one thread)."""
    config = vae.VAEConfig(latent_dim=2, hidden=128, steps=1000, seed=3)
    return vae.train_vae(digits.x_train, config, x_test=digits.x_test, device="cpu", progress=False)


# ------------------------------------------------------------------------------ data.py


def test_split_shapes_labels_and_binary_pixels(digits):
    x_train, y_train, x_test, y_test = digits
    assert x_train.shape == (1438, 64) and x_test.shape == (359, 64)
    assert y_train.shape == (1438,) and y_test.shape == (359,)
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.int64
    assert set(torch.cat([x_train, x_test]).unique().tolist()) == {0.0, 1.0}
    # stratified: every class has about 20% of its images in the test set
    counts_test = torch.bincount(y_test, minlength=10)
    counts_all = counts_test + torch.bincount(y_train, minlength=10)
    assert ((counts_test.double() / counts_all - 0.2).abs() < 0.02).all()


def test_binarization_threshold_is_8_of_16():
    assert DIGITS_THRESHOLD == 8
    np.testing.assert_array_equal(binarize(np.array([0, 7, 8, 9, 16])), [0.0, 0.0, 1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="threshold"):
        binarize(np.zeros(3), threshold=17)


def test_split_is_a_partition_of_the_binarized_digits(digits):
    raw = load_digits()
    expected = binarize(raw.data)
    together = torch.cat([digits.x_train, digits.x_test]).double().numpy()
    assert together.shape == expected.shape
    # same multiset of images: sort the rows lexicographically
    np.testing.assert_array_equal(
        np.unique(together, axis=0, return_counts=True)[1],
        np.unique(expected, axis=0, return_counts=True)[1],
    )
    assert together.sum() == expected.sum()
    np.testing.assert_array_equal(
        np.sort(np.concatenate([digits.y_train, digits.y_test])), np.sort(raw.target)
    )


def test_split_is_deterministic_per_seed(digits):
    again = load_binarized_digits(seed=0)
    for a, b in zip(digits, again, strict=True):
        assert torch.equal(a, b)
    other = load_binarized_digits(seed=1)
    assert not torch.equal(other.x_test, digits.x_test)
    assert load_binarized_digits(test_fraction=0.5, dtype=torch.float64).x_test.dtype == F64
    with pytest.raises(ValueError, match="test_fraction"):
        load_binarized_digits(test_fraction=1.0)


def test_image_grid_tiles_with_nan_gaps(digits):
    grid = as_image_grid(digits.x_test[:5], 3)
    assert grid.shape == (2 * 8 + 1, 3 * 8 + 2)
    np.testing.assert_array_equal(grid[:8, :8], digits.x_test[0].reshape(8, 8).numpy())
    np.testing.assert_array_equal(grid[9:, 9:17], digits.x_test[4].reshape(8, 8).numpy())
    assert np.isnan(grid[8]).all() and np.isnan(grid[9:, 18:]).all()


# ------------------------------------------------------------------------- the ELBO's terms


def test_reparameterize_is_differentiable_and_uses_eps():
    mu = torch.tensor([[0.5, -1.0]], dtype=F64, requires_grad=True)
    log_std = torch.tensor([[0.2, -0.7]], dtype=F64, requires_grad=True)
    eps = torch.tensor([[1.5, -0.3]], dtype=F64)
    z = vae.reparameterize(mu, log_std, eps)
    torch.testing.assert_close(z, mu + eps * log_std.exp())
    grad_mu, grad_log_std = torch.autograd.grad(z.sum(), [mu, log_std])
    torch.testing.assert_close(grad_mu, torch.ones_like(mu))
    torch.testing.assert_close(grad_log_std, (z - mu).detach())
    assert vae.reparameterize(mu.float(), log_std.float()).dtype == torch.float32


def test_bernoulli_log_likelihood_matches_torch_and_is_stable():
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(3, 4, 64, generator=gen) < 0.3).double()
    logits = 4 * torch.randn(3, 4, 64, generator=gen, dtype=F64)
    expected = torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(-1)
    torch.testing.assert_close(vae.bernoulli_log_likelihood(x, logits), expected)
    extreme = vae.bernoulli_log_likelihood(
        torch.tensor([1.0, 0.0, 1.0, 0.0]), torch.tensor([1e3, 1e3, -1e3, -1e3])
    )
    assert math.isfinite(extreme.item()) and abs(extreme.item() + 2e3) < 1e-3
    # x broadcasts against samples of logits: (N, D) with (S, N, D) -> (S, N)
    assert vae.bernoulli_log_likelihood(x[0], logits[:, None, 0].expand(3, 4, 64)).shape == (3, 4)


@pytest.mark.parametrize("bad", [0.5, 2.0, -1.0, float("nan")])
def test_bernoulli_log_likelihood_rejects_non_binary_x(bad):
    x = torch.tensor([[0.0, 1.0, bad]])
    with pytest.raises(ValueError, match="binary x"):
        vae.bernoulli_log_likelihood(x, torch.zeros(1, 3))


def test_kl_to_prior_matches_chapter_01_and_torch():
    gen = torch.Generator().manual_seed(1)
    mu, log_std = (
        torch.randn(5, 3, generator=gen, dtype=F64),
        torch.randn(5, 3, generator=gen, dtype=F64),
    )
    zeros = torch.zeros(3, dtype=F64)
    torch.testing.assert_close(
        vae.kl_to_prior(mu, log_std), lvm.gaussian_kl(mu, log_std, zeros, zeros)
    )
    q = torch.distributions.Independent(torch.distributions.Normal(mu, log_std.exp()), 1)
    p = torch.distributions.Independent(
        torch.distributions.Normal(zeros, torch.ones(3, dtype=F64)), 1
    )
    torch.testing.assert_close(
        vae.kl_to_prior(mu, log_std), torch.distributions.kl_divergence(q, p)
    )
    assert vae.kl_to_prior(torch.zeros(2, 4), torch.zeros(2, 4)).abs().max() == 0
    assert vae.kl_to_prior(mu.float(), log_std.float()).dtype == torch.float32


# ------------------------------------------------------------------------------- the model


def test_model_shapes():
    torch.manual_seed(0)
    model = vae.VAE(data_dim=64, latent_dim=3, hidden=16, n_hidden_layers=2)
    x = torch.zeros(5, 64)
    mu, log_std = model.encode(x)
    assert mu.shape == log_std.shape == (5, 3)
    assert model.decode(torch.zeros(7, 5, 3)).shape == (7, 5, 64)
    logits, mu_f, _ = model(x)
    assert logits.shape == (5, 64) and torch.equal(mu_f, mu)
    samples = model.sample(4, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (4, 64) and ((samples >= 0) & (samples <= 1)).all()


def test_negative_elbo_is_minus_the_elbo_on_the_same_noise(digits):
    torch.manual_seed(0)
    model = vae.VAE(latent_dim=2, hidden=16)
    x = digits.x_train[:8]
    torch.manual_seed(5)
    loss = vae.negative_elbo(model, x, beta=0.5)
    torch.manual_seed(5)
    mu, log_std = model.encode(x)
    z = mu + torch.randn_like(mu) * log_std.exp()
    manual = (
        -vae.bernoulli_log_likelihood(x, model.decode(z)) + 0.5 * vae.kl_to_prior(mu, log_std)
    ).mean()
    torch.testing.assert_close(loss, manual)
    assert loss.shape == () and loss.requires_grad


def test_elbo_given_q_is_differentiable_in_q(digits):
    torch.manual_seed(0)
    model = vae.VAE(latent_dim=2, hidden=16).double()
    x = digits.x_test[:4].double()
    mu = torch.zeros(4, 2, dtype=F64, requires_grad=True)
    log_std = torch.zeros(4, 2, dtype=F64, requires_grad=True)
    value = vae.elbo_given_q(
        model, x, mu, log_std, n_samples=8, generator=torch.Generator().manual_seed(0)
    )
    assert value.shape == (4,)
    grads = torch.autograd.grad(value.sum(), [mu, log_std])
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


# --------------------------------------------------------------------- importance weighting


def test_iwae_matches_the_formula_by_hand(small_model, digits):
    model, x, k = small_model.model, digits.x_test[:3], 6
    with torch.no_grad():
        mu, log_std = model.encode(x)
        eps = torch.randn((k, *mu.shape), generator=torch.Generator().manual_seed(4))
        z = mu + eps * log_std.exp()
        q = torch.distributions.Normal(mu, log_std.exp())
        prior = torch.distributions.Normal(0.0, 1.0)
        log_w = (
            vae.bernoulli_log_likelihood(x, model.decode(z))
            + prior.log_prob(z).sum(-1)
            - q.log_prob(z).sum(-1)
        )
        by_hand = torch.logsumexp(log_w, 0) - math.log(k)
        bound = vae.iwae_bound(model, x, k, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(bound, by_hand, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="positive"):
        vae.iwae_bound(model, x, 0)


def test_iwae_is_above_the_elbo_and_increases_with_k(small_model, digits):
    model, x = small_model.model, digits.x_test
    with torch.no_grad():
        elbo = (
            vae.elbo(model, x, n_samples=200, generator=torch.Generator().manual_seed(0))
            .mean()
            .item()
        )
        per_image = [
            vae.iwae_bound(model, x, k, generator=torch.Generator().manual_seed(k))
            for k in (1, 10, 100)
        ]
    for smaller, larger in itertools.pairwise(per_image):  # each gain is several standard errors
        gain = larger - smaller
        assert gain.mean() > 3 * gain.std() / math.sqrt(len(gain))
    bounds = [b.mean().item() for b in per_image]
    assert abs(bounds[0] - elbo) < 0.3  # L_1 and the ELBO estimate the same expectation
    assert bounds[0] < bounds[1] < bounds[2]  # L_k grows with k
    assert bounds[2] > elbo + 0.2


def test_iwae_chunking_does_not_change_the_estimate(small_model, digits, monkeypatch):
    """Batches of data and chunks of samples give exactly the one-shot answer for the same noise."""
    model, x, k = small_model.model, digits.x_test[:40], 300
    table = torch.randn(k, 1, model.latent_dim, generator=torch.Generator().manual_seed(0))
    position = 0

    def same_noise(shape, like, generator):  # sample j gets table[j], whatever the chunking
        nonlocal position
        rows = torch.arange(position, position + shape[0]) % k
        position = (position + shape[0]) % k
        return table[rows].expand(shape).to(like.dtype)

    monkeypatch.setattr(vae, "_standard_normal", same_noise)
    with torch.no_grad():
        one_chunk = vae.iwae_bound(model, x, k)
        tiny_chunks = vae.iwae_bound(
            model, x, k, batch_size=7, max_elements=64 * 7 * 30
        )  # chunks of 30
        odd_chunks = vae.iwae_bound(
            model, x, k, batch_size=40, max_elements=64 * 40 * 7
        )  # 7 does not divide 300
    assert one_chunk.shape == (40,)
    torch.testing.assert_close(tiny_chunks, one_chunk, rtol=0, atol=1e-4)
    torch.testing.assert_close(odd_chunks, one_chunk, rtol=0, atol=1e-4)


# --------------------------------------------------------------------------------- training


def test_training_improves_the_elbo_and_returns_a_cpu_model(small_model):
    history = small_model.history
    assert history["step"][0] == 0 and history["step"][-1] == 1000
    assert len(history["loss"]) == 1000 and len(history["test_elbo"]) == len(history["step"])
    assert history["train_elbo"][0] < -40 < history["train_elbo"][-1]
    assert history["test_elbo"][-1] > history["test_elbo"][0] + 15
    assert (
        next(small_model.model.parameters()).device.type == "cpu" and not small_model.model.training
    )
    assert small_model.seconds > 0 and small_model.config.seed == 3


def test_training_is_deterministic_for_a_seed(digits):
    config = vae.VAEConfig(
        latent_dim=2, hidden=16, n_hidden_layers=1, steps=60, eval_every=20, seed=7
    )
    runs = [
        vae.train_vae(digits.x_train, config, x_test=digits.x_test, device="cpu", progress=False)
        for _ in range(2)
    ]
    assert runs[0].history["loss"] == runs[1].history["loss"]
    assert runs[0].history["test_elbo"] == runs[1].history["test_elbo"]
    for a, b in zip(runs[0].model.parameters(), runs[1].model.parameters(), strict=True):
        assert torch.equal(a, b)
    other = vae.train_vae(
        digits.x_train,
        vae.VAEConfig(**{**config.__dict__, "seed": 8}),
        device="cpu",
        progress=False,
    )
    assert other.history["loss"] != runs[0].history["loss"]
    assert all(math.isnan(v) for v in other.history["test_elbo"])  # no test set given


def test_training_passes_the_warmed_up_beta_to_the_loss(digits):
    seen = []

    def loss_fn(model, x, beta):
        seen.append(beta)
        return vae.negative_elbo(model, x, beta)

    config = vae.VAEConfig(
        latent_dim=2,
        hidden=8,
        n_hidden_layers=1,
        steps=6,
        beta=2.0,
        kl_warmup_steps=4,
        batch_size=500,
        seed=0,
    )
    vae.train_vae(digits.x_train, config, loss_fn=loss_fn, device="cpu", progress=False)
    assert seen == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.0, 2.0])
