"""Correct answers to chapter 07, written differently from the solution (data for tests/test_mistakes.py)."""

ALTERNATIVES = [
    dict(
        exercise="7.1",
        name="torch.distributions with a TanhTransform",
        code="""
        from torch.distributions import TransformedDistribution
        from torch.distributions.transforms import TanhTransform
        base = Normal(mean, log_std.exp())
        u = base.loc + base.scale * eps
        a = torch.tanh(u)
        # TanhTransform's log|det J| is the stable 2 (log 2 - u - softplus(-2u)); evaluate it at u
        log_prob = base.log_prob(u).sum(-1) - TanhTransform().log_abs_det_jacobian(u, a).sum(-1)
        return a, log_prob
    """,
    ),
    dict(
        exercise="7.1",
        name="the Gaussian density written out, log1p form of the correction",
        code="""
        sigma = torch.exp(log_std)
        u = mean + sigma * eps
        log_normal = -0.5 * eps.pow(2) - log_std - 0.5 * math.log(2 * math.pi)
        correction = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
        return torch.tanh(u), (log_normal - correction).sum(dim=1)
    """,
    ),
    dict(
        exercise="7.1",
        name="float32",
        code="""
        mean, log_std, eps = mean.float(), log_std.float(), eps.float()
        u = mean + log_std.exp() * eps
        log_prob = Normal(mean, log_std.exp()).log_prob(u) - 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
        return torch.tanh(u), log_prob.sum(-1)
    """,
    ),
    dict(
        exercise="7.2",
        name="F.mse_loss on a target computed under no_grad",
        code="""
        with torch.no_grad():
            target = torch.minimum(q1_new, q2_new) - alpha * log_prob_new
        return 0.5 * F.mse_loss(v, target)
    """,
    ),
    dict(
        exercise="7.2",
        name="stack the critics and take the minimum over dim 0",
        code="""
        target = torch.stack([q1_new, q2_new]).min(dim=0).values - alpha * log_prob_new
        return ((v - target.detach()) ** 2).mean() / 2
    """,
    ),
    dict(
        exercise="7.3",
        name="F.mse_loss for each critic, torch.where for the mask",
        code="""
        bootstrap = torch.where(terminated > 0, torch.zeros_like(next_value), next_value)
        target = (reward + gamma * bootstrap).detach()
        return 0.5 * (F.mse_loss(q1, target) + F.mse_loss(q2, target))
    """,
    ),
    dict(
        exercise="7.3",
        name="renamed parameters and a loop over the critics",
        rename={"reward": "r", "next_value": "v_next", "terminated": "done"},
        code="""
        target = r + gamma * (1 - done) * v_next.detach()
        return sum(0.5 * ((q - target) ** 2).mean() for q in (q1, q2))
    """,
    ),
    dict(
        exercise="7.4",
        name="torch.minimum and an explicit sum / B",
        code="""
        b = log_prob_new.shape[0]
        return (alpha * log_prob_new - torch.minimum(q1_new, q2_new)).sum() / b
    """,
    ),
    dict(
        exercise="7.4",
        name="entropy and value terms averaged separately",
        code="""
        entropy_term = (alpha * log_prob_new).mean()
        value_term = torch.stack([q1_new, q2_new]).min(0).values.mean()
        return entropy_term - value_term
    """,
    ),
    dict(
        exercise="7.5",
        name="lerp_ under no_grad",
        code="""
        with torch.no_grad():
            for p_target, p in zip(target.parameters(), source.parameters()):
                p_target.lerp_(p, tau)
    """,
    ),
    dict(
        exercise="7.5",
        name="through the state dicts with copy_",
        code="""
        with torch.no_grad():
            source_state = source.state_dict()
            for name, p_target in target.state_dict().items():
                p_target.copy_(tau * source_state[name] + (1.0 - tau) * p_target)
    """,
    ),
    dict(
        exercise="7.5",
        name="torch._foreach_mul_ and _foreach_add_",
        code="""
        with torch.no_grad():
            targets, sources = list(target.parameters()), list(source.parameters())
            torch._foreach_mul_(targets, 1.0 - tau)
            torch._foreach_add_(targets, sources, alpha=tau)
    """,
    ),
    dict(
        exercise="7.6",
        name="the log-alpha form of the SAC authors and Stable-Baselines3",
        code="""
        return -(log_alpha * (log_prob_new + target_entropy).detach()).mean()
    """,
    ),
    dict(
        exercise="7.6",
        name="renamed parameters, the gap under no_grad, alpha through torch.exp",
        rename={"log_alpha": "la", "log_prob_new": "lp", "target_entropy": "h_target"},
        code="""
        with torch.no_grad():
            gap = lp + h_target
        return (-torch.exp(la) * gap).mean()
    """,
    ),
]
