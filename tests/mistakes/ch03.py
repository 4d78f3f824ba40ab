"""Plausible mistakes in chapter 03 (data for tests/test_mistakes.py)."""

NOTEBOOK = "solutions/03_vae.ipynb"
MISTAKES = [
    dict(
        exercise="3.1",
        name="uniform noise instead of normal",
        old="eps = torch.randn_like(mu)",
        new="eps = torch.rand_like(mu)",
        feedback="your noise is uniform on [0, 1]",
    ),
    dict(
        exercise="3.1",
        name="log_std used as the standard deviation",
        old="return mu + eps * torch.exp(log_std)",
        new="return mu + eps * log_std",
        feedback="you used log_std as the standard deviation",
    ),
    dict(
        exercise="3.1",
        name="sigma detached (no gradient to log_std)",
        old="return mu + eps * torch.exp(log_std)",
        new="return mu + eps * torch.exp(log_std).detach()",
        feedback="no gradient reaches log_std",
    ),
    dict(
        exercise="3.2",
        name="mean over the pixels",
        old="torch.nn.functional.softplus(logits)).sum(dim=-1)",
        new="torch.nn.functional.softplus(logits)).mean(dim=-1)",
        feedback="you averaged over the pixels",
    ),
    dict(
        exercise="3.2",
        name="naive log of sigmoid (not finite for large logits)",
        old="return (x * logits - torch.nn.functional.softplus(logits)).sum(dim=-1)",
        new="return (x * torch.log(torch.sigmoid(logits)) "
        "+ (1 - x) * torch.log(1 - torch.sigmoid(logits))).sum(dim=-1)",
        feedback="not finite for extreme logits",
    ),
    dict(
        exercise="3.2",
        name="returns the binary cross-entropy",
        old="return (x * logits - torch.nn.functional.softplus(logits)).sum(dim=-1)",
        new="return (torch.nn.functional.softplus(logits) - x * logits).sum(dim=-1)",
        feedback="you returned the binary cross-entropy",
    ),
    dict(
        exercise="3.3",
        name="forgot the -1/2",
        old="- log_std - 0.5).sum(dim=-1)",
        new="- log_std).sum(dim=-1)",
        feedback="you left out the -1/2 per dimension",
    ),
    dict(
        exercise="3.3",
        name="sigma where the variance belongs",
        old="torch.exp(2 * log_std)",
        new="torch.exp(log_std)",
        feedback="you used sigma = exp(log_std) where the variance",
    ),
    dict(
        exercise="3.3",
        name="log term with the wrong sign",
        old="- log_std - 0.5)",
        new="+ log_std - 0.5)",
        feedback="the log term has the wrong sign",
    ),
    dict(
        exercise="3.4",
        name="KL added with the wrong sign",
        old="(-log_likelihood + beta * kl_to_prior(mu, log_std))",
        new="(-log_likelihood - beta * kl_to_prior(mu, log_std))",
        feedback="the KL term has the wrong sign",
    ),
    dict(
        exercise="3.4",
        name="decodes the mean instead of a sample",
        old="bernoulli_log_likelihood(x, model.decode(z))",
        new="bernoulli_log_likelihood(x, model.decode(mu))",
        feedback="you decoded the mean mu_phi(x)",
    ),
    dict(
        exercise="3.4",
        name="ignores beta",
        old="+ beta * kl_to_prior(mu, log_std)",
        new="+ kl_to_prior(mu, log_std)",
        feedback="you ignored beta",
    ),
    dict(
        exercise="3.4",
        name="sum over the batch",
        old="beta * kl_to_prior(mu, log_std)).mean()",
        new="beta * kl_to_prior(mu, log_std)).sum()",
        feedback="you summed over the batch",
    ),
    dict(
        exercise="3.1",
        name="sample detached",
        old="return mu + eps * torch.exp(log_std)",
        new="return (mu + eps * torch.exp(log_std)).detach()",
        feedback="the gradient path is cut",
    ),
    dict(
        exercise="3.2",
        name="F.binary_cross_entropy on probabilities (clips the log at -100)",
        old="return (x * logits - torch.nn.functional.softplus(logits)).sum(dim=-1)",
        new="return -torch.nn.functional.binary_cross_entropy(torch.sigmoid(logits), x, "
        "reduction='none').sum(dim=-1)",
        feedback="you clipped the probability, the logits or the log",
    ),
    dict(
        exercise="3.4",
        name="sample detached before decoding",
        old="z = reparameterize(mu, log_std)",
        new="z = reparameterize(mu, log_std).detach()",
        feedback="no gradient flows from the reconstruction term back to the encoder",
    ),
]
