"""Correct answers to chapter 02, written differently from the solution (data for tests/test_mistakes.py)."""

ALTERNATIVES = [
    dict(
        exercise="2.1",
        name="autograd on the surrogate with torch.distributions.Normal",
        code="""
        mu = mu.detach().requires_grad_(True)
        log_std = log_std.detach().requires_grad_(True)
        with torch.no_grad():
            z = mu + eps * log_std.exp()
            rewards = r(z)
        log_q = torch.distributions.Normal(mu, log_std.exp()).log_prob(z).sum(-1)
        return torch.autograd.grad((log_q * rewards).mean(), (mu, log_std))
    """,
    ),
    dict(
        exercise="2.1",
        name="a loop over the samples in numpy",
        code="""
        with torch.no_grad():
            rewards = r(mu + eps * log_std.exp()).numpy()
        e, std = eps.numpy(), np.exp(log_std.numpy())
        grad_mu, grad_log_std = np.zeros_like(std), np.zeros_like(std)
        for j, reward in enumerate(rewards):
            grad_mu += reward * e[j] / std
            grad_log_std += reward * (e[j] ** 2 - 1)
        return grad_mu / len(rewards), grad_log_std / len(rewards)
    """,
    ),
    dict(
        exercise="2.1",
        name="float32, scores written with z - mu",
        code="""
        with torch.no_grad():
            z = mu + eps * log_std.exp()
            rewards = r(z).float()[:, None]
        diff, var = z.float() - mu.float(), torch.exp(2 * log_std.float())
        return (rewards * diff / var).mean(0), (rewards * (diff**2 / var - 1)).mean(0)
    """,
    ),
    dict(
        exercise="2.2",
        name="backward() on fresh leaves, then .grad",
        code="""
        mu = mu.detach().clone().requires_grad_(True)
        log_std = log_std.detach().clone().requires_grad_(True)
        r(mu + eps * torch.exp(log_std)).mean().backward()
        return mu.grad, log_std.grad
    """,
    ),
    dict(
        exercise="2.2",
        name="the chain rule by hand from the gradient with respect to z",
        code="""
        std = log_std.exp()
        z = (mu + eps * std).detach().requires_grad_(True)
        (grad_z,) = torch.autograd.grad(r(z).sum(), z)
        return grad_z.mean(0), (grad_z * eps * std).mean(0)
    """,
    ),
    dict(
        exercise="2.2",
        name="torch.func.grad in float32",
        code="""
        def objective(m, s):
            return r(m + eps.float() * s.exp()).mean()

        return torch.func.grad(objective, argnums=(0, 1))(mu.float(), log_std.float())
    """,
    ),
    dict(
        exercise="2.3",
        name="numpy: np.concatenate, np.var(ddof=1)",
        code="""
        rows = []
        for draw in noise:
            out = estimator(draw)
            parts = out if isinstance(out, (tuple, list)) else [out]
            rows.append(np.concatenate([np.ravel(torch.as_tensor(p).numpy()) for p in parts]))
        est = np.array(rows, dtype=float)
        mean, variance = est.mean(axis=0), est.var(axis=0, ddof=1)
        std_error = np.sqrt(variance / len(est))
        return mean, std_error, variance, np.abs(mean - np.asarray(exact)) / std_error
    """,
    ),
    dict(
        exercise="2.3",
        name="Welford's one-pass algorithm, without storing the estimates",
        code="""
        n, mean, m2 = 0, 0.0, 0.0
        for draw in noise:
            out = estimator(draw)
            parts = out if isinstance(out, (tuple, list)) else (out,)
            x = torch.cat([torch.as_tensor(p, dtype=torch.float64).flatten() for p in parts])
            n += 1
            delta = x - mean
            mean = mean + delta / n
            m2 = m2 + delta * (x - mean)
        variance = m2 / (n - 1)
        std_error = torch.sqrt(variance / n)
        return mean, std_error, variance, torch.abs(mean - exact) / std_error
    """,
    ),
    dict(
        exercise="2.3",
        name="float32, torch.std and a renamed parameter",
        rename={"noise": "draws"},
        code="""
        flat = [
            torch.cat([torch.as_tensor(p).float().reshape(-1) for p in (o if isinstance(o, tuple) else (o,))])
            for o in map(estimator, draws)
        ]
        est = torch.stack(flat)
        std = est.std(dim=0)
        std_error = std / len(est) ** 0.5
        return est.mean(0), std_error, std**2, (est.mean(0) - exact.float()).abs() / std_error
    """,
    ),
    dict(
        exercise="2.4",
        name="upper case",
        code="""
        offset_prediction = "C"
    """,
    ),
    dict(
        exercise="2.4",
        name="with parentheses and spaces",
        code="""
        offset_prediction = " (c) "
    """,
    ),
    dict(
        exercise="2.5",
        name="autograd on log_softmax with an explicit leave-one-out loop",
        code="""
        logits = logits.detach().requires_grad_(True)
        r = rewards[k]
        baseline = torch.stack([torch.cat([r[:j], r[j + 1 :]]).mean() for j in range(len(k))])
        log_q = torch.log_softmax(logits, dim=-1)[k]
        (grad,) = torch.autograd.grad(((r - baseline) * log_q).mean(), logits)
        return grad
    """,
    ),
    dict(
        exercise="2.5",
        name="numpy and scipy.special.softmax, a loop over the samples",
        code="""
        from scipy.special import softmax
        table, ks = rewards.numpy(), k.numpy()
        q = softmax(logits.numpy())
        grad = np.zeros_like(q)
        for kj in ks:
            baseline = (table[ks].sum() - table[kj]) / (len(ks) - 1)
            score = -q.copy()
            score[kj] += 1.0
            grad += (table[kj] - baseline) * score
        return grad / len(ks)
    """,
    ),
    dict(
        exercise="2.5",
        name="torch.distributions.Categorical in float32",
        code="""
        leaf = logits.float().detach().requires_grad_(True)
        r = rewards.float()[k]
        baseline = (r.sum() - r) / (len(k) - 1)
        log_q = torch.distributions.Categorical(logits=leaf).log_prob(k)
        (grad,) = torch.autograd.grad(((r - baseline) * log_q).mean(), leaf)
        return grad
    """,
    ),
]
