"""Correct answers to chapter 01, written differently from the solution (data for tests/test_mistakes.py)."""

ALTERNATIVES = [
    dict(
        exercise="1.1",
        name="torch.distributions.Normal(...).entropy()",
        code="""
        normal = torch.distributions.Normal(torch.zeros_like(log_std), log_std.exp())
        return normal.entropy().sum(dim=-1)
    """,
    ),
    dict(
        exercise="1.1",
        name="float32",
        code="""
        return (0.5 * math.log(2 * math.pi * math.e) + log_std.float()).sum(dim=-1)
    """,
    ),
    dict(
        exercise="1.1",
        name="a loop over the latent dimensions",
        code="""
        entropy = torch.zeros(log_std.shape[:-1], dtype=log_std.dtype)
        for j in range(log_std.shape[-1]):
            entropy = entropy + 0.5 * (math.log(2 * math.pi) + 1.0) + log_std[..., j]
        return entropy
    """,
    ),
    dict(
        exercise="1.1",
        name="numpy",
        code="""
        return np.sum(0.5 * np.log(2 * np.pi * np.e) + np.asarray(log_std), axis=-1)
    """,
    ),
    dict(
        exercise="1.2",
        name="torch.distributions.kl_divergence",
        code="""
        Normal = torch.distributions.Normal
        q, p = Normal(mu_q, log_std_q.exp()), Normal(mu_p, log_std_p.exp())
        return torch.distributions.kl_divergence(q, p).sum(dim=-1)
    """,
    ),
    dict(
        exercise="1.2",
        name="float32, with the log-variances",
        code="""
        mu_q, log_var_q = mu_q.float(), 2 * log_std_q.float()
        mu_p, log_var_p = mu_p.float(), 2 * log_std_p.float()
        per_dim = log_var_p - log_var_q + ((mu_q - mu_p) ** 2 + log_var_q.exp()) / log_var_p.exp() - 1
        return 0.5 * per_dim.sum(dim=-1)
    """,
    ),
    dict(
        exercise="1.2",
        name="a loop over the latent dimensions",
        code="""
        mu_q, log_std_q, mu_p, log_std_p = torch.broadcast_tensors(mu_q, log_std_q, mu_p, log_std_p)
        kl = 0.0
        for j in range(mu_q.shape[-1]):
            sigma_q, sigma_p = log_std_q[..., j].exp(), log_std_p[..., j].exp()
            quadratic = (sigma_q**2 + (mu_q[..., j] - mu_p[..., j]) ** 2) / (2 * sigma_p**2)
            kl = kl + torch.log(sigma_p / sigma_q) + quadratic - 0.5
        return kl
    """,
    ),
    dict(
        exercise="1.3",
        name="a loop over the samples, torch.distributions entropy",
        code="""
        values = [log_joint(x, mu + torch.exp(log_std) * eps_s) for eps_s in eps]
        entropy = torch.distributions.Normal(mu, log_std.exp()).entropy().sum(dim=-1)
        return torch.stack(values).mean(dim=0) + entropy
    """,
    ),
    dict(
        exercise="1.3",
        name="torch.addcmul, the entropy written out",
        code="""
        z = torch.addcmul(mu, log_std.exp(), eps)
        entropy = log_std.sum(dim=-1) + 0.5 * mu.shape[-1] * (1 + math.log(2 * math.pi))
        return log_joint(x, z).sum(dim=0) / eps.shape[0] + entropy
    """,
    ),
    dict(
        exercise="1.3",
        name="float32",
        code="""
        mu, log_std, eps = mu.float(), log_std.float(), eps.float()
        z = mu + torch.exp(log_std) * eps
        return (log_joint(x, z).mean(dim=0) + gaussian_entropy(log_std)).float()
    """,
    ),
    dict(
        exercise="1.4",
        name="backward() and .grad",
        code="""
        mu = mu.detach().clone().requires_grad_(True)
        log_std = log_std.detach().clone().requires_grad_(True)
        elbo_fn(mu, log_std).sum().backward()
        with torch.no_grad():
            return mu + lr * mu.grad, log_std + lr * log_std.grad
    """,
    ),
    dict(
        exercise="1.4",
        name="torch.optim.SGD with maximize=True",
        code="""
        mu = mu.detach().clone().requires_grad_(True)
        log_std = log_std.detach().clone().requires_grad_(True)
        optimizer = torch.optim.SGD([mu, log_std], lr=lr, maximize=True)
        elbo_fn(mu, log_std).sum().backward()
        optimizer.step()
        return mu.detach(), log_std.detach()
    """,
    ),
    dict(
        exercise="1.4",
        name="gradient descent on -ELBO with torch.func.grad",
        code="""
        loss = lambda m, s: -elbo_fn(m, s).sum()
        grad_mu, grad_log_std = torch.func.grad(loss, argnums=(0, 1))(mu, log_std)
        return mu - lr * grad_mu, log_std - lr * grad_log_std
    """,
    ),
    dict(
        exercise="1.4",
        name="float32",
        code="""
        mu = mu.detach().float().requires_grad_(True)
        log_std = log_std.detach().float().requires_grad_(True)
        grad_mu, grad_log_std = torch.autograd.grad(elbo_fn(mu, log_std).sum(), [mu, log_std])
        return (mu + lr * grad_mu).detach(), (log_std + lr * grad_log_std).detach()
    """,
    ),
]
