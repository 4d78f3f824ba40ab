"""Correct answers to chapter 03, written differently from the solution (data for tests/test_mistakes.py)."""

ALTERNATIVES = [
    dict(
        exercise="3.1",
        name="torch.distributions.Normal(...).rsample()",
        code="""
        return torch.distributions.Normal(mu, log_std.exp()).rsample()
    """,
    ),
    dict(
        exercise="3.1",
        name="torch.addcmul with torch.randn of the same shape and dtype",
        code="""
        return torch.addcmul(mu, torch.randn(mu.shape, dtype=mu.dtype), torch.exp(log_std))
    """,
    ),
    dict(
        exercise="3.1",
        name="float32 noise",
        code="""
        return mu + torch.exp(log_std) * torch.randn(mu.shape)
    """,
    ),
    dict(
        exercise="3.2",
        name="F.binary_cross_entropy_with_logits",
        code="""
        import torch.nn.functional as F
        return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=-1)
    """,
    ),
    dict(
        exercise="3.2",
        name="torch.distributions.Bernoulli(logits=...)",
        code="""
        return torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(dim=-1)
    """,
    ),
    dict(
        exercise="3.2",
        name="logsigmoid of both signs, in float32",
        code="""
        import torch.nn.functional as F
        x, logits = x.float(), logits.float()
        return (x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum(dim=-1)
    """,
    ),
    dict(
        exercise="3.3",
        name="torch.distributions.kl_divergence",
        code="""
        Normal = torch.distributions.Normal
        q = Normal(mu, log_std.exp())
        prior = Normal(torch.zeros_like(mu), torch.ones_like(mu))
        return torch.distributions.kl_divergence(q, prior).sum(dim=-1)
    """,
    ),
    dict(
        exercise="3.3",
        name="the log-variance form, in float32",
        code="""
        mu, log_var = mu.float(), 2 * log_std.float()
        return -0.5 * (1 + log_var - mu**2 - log_var.exp()).sum(dim=-1)
    """,
    ),
    dict(
        exercise="3.3",
        name="a loop over the latent dimensions",
        code="""
        kl = torch.zeros(mu.shape[:-1], dtype=mu.dtype)
        for j in range(mu.shape[-1]):
            sigma = torch.exp(log_std[..., j])
            kl = kl + (mu[..., j] ** 2 + sigma**2) / 2 - torch.log(sigma) - 0.5
        return kl
    """,
    ),
    dict(
        exercise="3.4",
        name="through model(x), the forward pass",
        code="""
        logits, mu, log_std = model(x)
        return (-bernoulli_log_likelihood(x, logits) + beta * kl_to_prior(mu, log_std)).mean()
    """,
    ),
    dict(
        exercise="3.4",
        name="rsample, F.binary_cross_entropy_with_logits and kl_divergence",
        code="""
        import torch.nn.functional as F
        mu, log_std = model.encode(x)
        q = torch.distributions.Normal(mu, log_std.exp())
        prior = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
        recon = F.binary_cross_entropy_with_logits(model.decode(q.rsample()), x, reduction="sum")
        kl = torch.distributions.kl_divergence(q, prior).sum()
        return (recon + beta * kl) / x.shape[0]
    """,
    ),
    dict(
        exercise="3.4",
        name="noise drawn in another order",
        code="""
        mu, log_std = model.encode(x)
        eps = torch.randn(mu.shape[::-1], dtype=mu.dtype).T
        log_likelihood = bernoulli_log_likelihood(x, model.decode(mu + eps * torch.exp(log_std)))
        return torch.mean(beta * kl_to_prior(mu, log_std) - log_likelihood)
    """,
    ),
]
