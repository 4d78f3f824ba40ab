"""Correct answers to chapter 01, written differently from the solution (data for tests/test_mistakes.py)."""

ALTERNATIVES = [
    dict(
        exercise="1.1",
        name="torch.distributions.kl_divergence",
        code="""
        Normal = torch.distributions.Normal
        q, p = Normal(mu_q, log_std_q.exp()), Normal(mu_p, log_std_p.exp())
        return torch.distributions.kl_divergence(q, p).sum(dim=-1)
    """,
    ),
    dict(
        exercise="1.1",
        name="float32, with the log-variances",
        code="""
        mu_q, log_var_q = mu_q.float(), 2 * log_std_q.float()
        mu_p, log_var_p = mu_p.float(), 2 * log_std_p.float()
        per_dim = log_var_p - log_var_q + ((mu_q - mu_p) ** 2 + log_var_q.exp()) / log_var_p.exp() - 1
        return 0.5 * per_dim.sum(dim=-1)
    """,
    ),
    dict(
        exercise="1.1",
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
        exercise="1.2",
        name="a loop over the samples, torch.distributions entropy",
        code="""
        values = [log_joint(x, mu + torch.exp(log_std) * eps_s) for eps_s in eps]
        entropy = torch.distributions.Normal(mu, log_std.exp()).entropy().sum(dim=-1)
        return torch.stack(values).mean(dim=0) + entropy
    """,
    ),
    dict(
        exercise="1.2",
        name="torch.addcmul, the entropy written out",
        code="""
        z = torch.addcmul(mu, log_std.exp(), eps)
        entropy = log_std.sum(dim=-1) + 0.5 * mu.shape[-1] * (1 + math.log(2 * math.pi))
        return log_joint(x, z).sum(dim=0) / eps.shape[0] + entropy
    """,
    ),
    dict(
        exercise="1.2",
        name="float32",
        code="""
        mu, log_std, eps = mu.float(), log_std.float(), eps.float()
        z = mu + torch.exp(log_std) * eps
        entropy = log_std.sum(dim=-1) + 0.5 * log_std.shape[-1] * math.log(2 * math.pi * math.e)
        return (log_joint(x, z).mean(dim=0) + entropy).float()
    """,
    ),
    dict(
        exercise="1.3",
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
        exercise="1.3",
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
        exercise="1.3",
        name="gradient descent on -ELBO with torch.func.grad",
        code="""
        loss = lambda m, s: -elbo_fn(m, s).sum()
        grad_mu, grad_log_std = torch.func.grad(loss, argnums=(0, 1))(mu, log_std)
        return mu - lr * grad_mu, log_std - lr * grad_log_std
    """,
    ),
    dict(
        exercise="1.3",
        name="float32",
        code="""
        mu = mu.detach().float().requires_grad_(True)
        log_std = log_std.detach().float().requires_grad_(True)
        grad_mu, grad_log_std = torch.autograd.grad(elbo_fn(mu, log_std).sum(), [mu, log_std])
        return (mu + lr * grad_mu).detach(), (log_std + lr * grad_log_std).detach()
    """,
    ),
    dict(
        exercise="1.4",
        name="upper case",
        code="""
        answer_1_4 = "B"
    """,
    ),
    dict(
        exercise="1.4",
        name="with parentheses and spaces",
        code="""
        answer_1_4 = " (b) "
    """,
    ),
    dict(
        exercise="1.5",
        name="torch.distributions, one backward on the sum, theta's gradient divided by N",
        code="""
        params = [t.detach().clone().requires_grad_(True) for t in (W, b, log_s, mu, log_std)]
        W, b, log_s, mu, log_std = params
        normal = torch.distributions.Normal
        z = mu + log_std.exp() * eps
        log_lik = normal(z @ W.T + b, log_s.exp()).log_prob(x).sum(-1)
        log_prior = normal(0.0, 1.0).log_prob(z).sum(-1)
        entropy = normal(mu, log_std.exp()).entropy().sum(-1)
        elbo = (log_lik + log_prior).mean(0) + entropy
        elbo.sum().backward()
        n = x.shape[0]
        with torch.no_grad():
            new_theta = [p + lr_theta * p.grad / n for p in (W, b, log_s)]
            new_q = [p + lr_q * p.grad for p in (mu, log_std)]
        return (*new_theta, *new_q)
    """,
    ),
    dict(
        exercise="1.5",
        name="alternating: the q_i first with vi_step, then theta at the new q_i",
        code="""
        theta = [t.detach().requires_grad_(True) for t in (W, b, log_s)]

        def log_joint(x, z):
            mean = z @ theta[0].T + theta[1]
            log_lik = torch.distributions.Normal(mean, theta[2].exp()).log_prob(x).sum(-1)
            return log_lik + torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)

        def elbo_of_q(mu, log_std):
            return elbo_mc(log_joint, x, mu, log_std, eps)

        mu, log_std = vi_step(elbo_of_q, mu, log_std, lr_q)
        grads = torch.autograd.grad(elbo_of_q(mu, log_std).mean(), theta)
        new_theta = [(p + lr_theta * g).detach() for p, g in zip(theta, grads, strict=True)]
        return (*new_theta, mu, log_std)
    """,
    ),
    dict(
        exercise="1.5",
        name="float32, descent on the negative ELBO with torch.optim.SGD",
        code="""
        params = [t.detach().float().clone().requires_grad_(True) for t in (W, b, log_s, mu, log_std)]
        W, b, log_s, mu, log_std = params
        theta_opt = torch.optim.SGD([W, b, log_s], lr=lr_theta)
        q_opt = torch.optim.SGD([mu, log_std], lr=lr_q)
        z = mu + torch.exp(log_std) * eps.float()
        residual = x.float() - z @ W.T - b
        log_lik = -0.5 * (residual**2).sum(-1) * torch.exp(-2 * log_s) - x.shape[-1] * log_s
        entropy = log_std.sum(-1)
        elbo = (log_lik - 0.5 * (z**2).sum(-1)).mean(0) + entropy
        loss = -elbo.sum()  # theta's gradient of the sum is N times that of the mean
        loss.backward()
        for p in (W, b, log_s):
            p.grad /= x.shape[0]
        theta_opt.step()
        q_opt.step()
        return tuple(p.detach() for p in params)
    """,
    ),
]
