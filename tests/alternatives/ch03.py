"""Correct answers to chapter 03, written differently from the solution (data for tests/test_mistakes.py)."""

ALTERNATIVES = [
    dict(
        exercise="3.1",
        name="torch.distributions (rsample, Bernoulli, kl_divergence), model.zero_grad, floats",
        code="""
        mu, log_std = model.encode(x)
        q = torch.distributions.Normal(mu, log_std.exp())
        prior = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
        logits = model.decode(q.rsample())
        log_likelihood = torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(-1)
        kl = torch.distributions.kl_divergence(q, prior).sum(-1)
        loss = torch.mean(beta * kl - log_likelihood)
        model.zero_grad()
        loss.backward()
        optimizer.step()
        return float(loss), float(log_likelihood.mean()), float(kl.mean())
    """,
    ),
    dict(
        exercise="3.1",
        name="model(x), binary_cross_entropy_with_logits, log-variance KL form, tensors returned",
        code="""
        import torch.nn.functional as F
        logits, mu, log_std = model(x)
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
        kl = -0.5 * (1 + 2 * log_std - mu**2 - torch.exp(2 * log_std)).sum(-1).mean()
        loss = recon + beta * kl
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        optimizer.step()
        return loss.detach(), -recon.detach(), kl.detach()
    """,
    ),
    dict(
        exercise="3.1",
        name="noise drawn in another order, renamed parameters",
        rename={"optimizer": "opt", "x": "batch"},
        code="""
        mu, log_std = model.encode(batch)
        eps = torch.randn(mu.shape[::-1], dtype=mu.dtype).T
        logits = model.decode(torch.addcmul(mu, eps, log_std.exp()))
        log_p = torch.nn.functional.logsigmoid(logits)
        log_1mp = torch.nn.functional.logsigmoid(-logits)
        log_likelihood = (batch * log_p + (1 - batch) * log_1mp).sum(-1)
        kl = 0.5 * (mu.pow(2) + log_std.exp().pow(2) - 1).sum(-1) - log_std.sum(-1)
        loss = (beta * kl - log_likelihood).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item(), log_likelihood.mean().item(), kl.mean().item()
    """,
    ),
    dict(
        exercise="3.2",
        name="the slides' reward log p(x|z) + log p(z) with the entropy in closed form",
        code="""
        mu, log_std = model.encode(x)
        q = torch.distributions.Normal(mu, log_std.exp())
        z = q.sample()
        reward = vae.bernoulli_log_likelihood(x, model.decode(z))
        log_prior = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
        score = q.log_prob(z).sum(-1) * (reward + beta * log_prior).detach()
        return (-reward - score - beta * q.entropy().sum(-1)).mean()
    """,
    ),
    dict(
        exercise="3.2",
        name="sample under torch.no_grad, log q by hand without its constant",
        code="""
        mu, log_std = model.encode(x)
        with torch.no_grad():
            z = mu + torch.exp(log_std) * torch.randn_like(mu)
        log_q = (-0.5 * ((z - mu) / torch.exp(log_std)) ** 2 - log_std).sum(-1)
        reward = vae.bernoulli_log_likelihood(x, model.decode(z))
        return torch.mean(-reward - reward.detach() * log_q + beta * vae.kl_to_prior(mu, log_std))
    """,
    ),
    dict(
        exercise="3.2",
        name="a surrogate whose value is the loss (log q - its detached value)",
        code="""
        mu, log_std = model.encode(x)
        z = torch.distributions.Normal(mu, log_std.exp()).sample()
        log_q = torch.distributions.Normal(mu, log_std.exp()).log_prob(z).sum(-1)
        reward = vae.bernoulli_log_likelihood(x, model.decode(z))
        kl = vae.kl_to_prior(mu, log_std)
        return (-reward - reward.detach() * (log_q - log_q.detach()) + beta * kl).mean()
    """,
    ),
    dict(
        exercise="3.3",
        name="upper case",
        code="""
        race_prediction = "B"
    """,
    ),
    dict(
        exercise="3.3",
        name="with parentheses and spaces",
        code="""
        race_prediction = " (b) "
    """,
    ),
    dict(
        exercise="3.4",
        name="log p(z) - log q(z|x) in closed form, logsumexp of log w - log k",
        code="""
        mu, log_std = model.encode(x)
        z = mu + eps * log_std.exp()
        log_ratio = (0.5 * eps**2 - 0.5 * z**2 + log_std).sum(-1)
        log_w = vae.bernoulli_log_likelihood(x, model.decode(z)) + log_ratio
        return torch.logsumexp(log_w - math.log(eps.shape[0]), dim=0)
    """,
    ),
    dict(
        exercise="3.4",
        name="a loop over the samples and a max-shifted log-mean-exp",
        code="""
        mu, log_std = model.encode(x)
        q = torch.distributions.Normal(mu, torch.exp(log_std))
        prior = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
        log_ws = []
        for e in eps:
            z = mu + e * torch.exp(log_std)
            log_lik = vae.bernoulli_log_likelihood(x, model.decode(z))
            log_ws.append(log_lik + (prior.log_prob(z) - q.log_prob(z)).sum(-1))
        log_w = torch.stack(log_ws)
        top = log_w.max(dim=0).values
        return top + torch.log(torch.exp(log_w - top).mean(dim=0))
    """,
    ),
]
