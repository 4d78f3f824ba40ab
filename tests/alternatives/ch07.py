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
        exercise="7.7",
        name="the log-alpha form of the SAC authors and Stable-Baselines3",
        code="""
        return -(log_alpha * (log_prob_new + target_entropy).detach()).mean()
    """,
    ),
    dict(
        exercise="7.7",
        name="renamed parameters, the gap under no_grad, alpha through torch.exp",
        rename={"log_alpha": "la", "log_prob_new": "lp", "target_entropy": "h_target"},
        code="""
        with torch.no_grad():
            gap = lp + h_target
        return (-torch.exp(la) * gap).mean()
    """,
    ),
    dict(
        exercise="7.6",
        name="critics first, then J_pi and J_V with the updated critics (Spinning Up order), "
        "torch.minimum, zero_grad(set_to_none=True), two samples",
        code="""
        with torch.no_grad():
            y = batch.rewards + gamma * (1 - batch.terminated) * agent.value_target(batch.next_obs)
        q1, q2 = agent.q_net(batch.obs, batch.actions)
        loss_q = 0.5 * ((q1 - y) ** 2).mean() + 0.5 * ((q2 - y) ** 2).mean()
        agent.q_opt.zero_grad(set_to_none=True)
        loss_q.backward()
        agent.q_opt.step()
        for p in agent.q_net.parameters():
            p.requires_grad = False
        a, lp = agent.sample(batch.obs)
        loss_pi = (alpha * lp - torch.minimum(*agent.q_net(batch.obs, a))).mean()
        agent.policy_opt.zero_grad(set_to_none=True)
        loss_pi.backward()
        agent.policy_opt.step()
        for p in agent.q_net.parameters():
            p.requires_grad = True
        with torch.no_grad():
            a, lp = agent.sample(batch.obs)
            target = torch.minimum(*agent.q_net(batch.obs, a)) - alpha * lp
        loss_v = 0.5 * F.mse_loss(agent.value_net(batch.obs), target)
        agent.value_opt.zero_grad(set_to_none=True)
        loss_v.backward()
        agent.value_opt.step()
        with torch.no_grad():
            for p_target, p in zip(agent.value_target.parameters(), agent.value_net.parameters()):
                p_target.lerp_(p, tau)
        return loss_q, loss_v, loss_pi
    """,
    ),
    dict(
        exercise="7.6",
        name="renamed parameters, J_V's target under no_grad, the critics' gradients cleared "
        "after J_pi instead of frozen, Polyak before the V step",
        rename={"agent": "ag", "batch": "b", "alpha": "temperature"},
        code="""
        with torch.no_grad():
            v_next = ag.value_target(b.next_obs)
        q1, q2 = ag.q_net(b.obs, b.actions)
        zeros = torch.zeros_like(b.terminated)
        loss_q = q_loss(q1, q2, b.rewards, v_next, b.terminated, zeros, gamma)
        a, lp = ag.sample(b.obs)
        q_min = torch.stack(ag.q_net(b.obs, a)).min(dim=0).values
        loss_pi = (temperature * lp - q_min).mean()
        ag.policy_opt.zero_grad()
        loss_pi.backward()
        ag.q_opt.zero_grad()  # J_pi's gradient reached the critics too: clear it before J_Q's
        loss_q.backward()
        with torch.no_grad():
            v_target = q_min - temperature * lp
        loss_v = 0.5 * ((ag.value_net(b.obs) - v_target) ** 2).mean()
        ag.value_opt.zero_grad()
        loss_v.backward()
        ag.q_opt.step()
        ag.policy_opt.step()
        polyak_update(ag.value_target, ag.value_net, tau)
        ag.value_opt.step()
        return float(loss_q), float(loss_v), float(loss_pi)
    """,
    ),
]
