"""Correct answers to chapter 09, written differently from the solution (tests/test_mistakes.py)."""

ALTERNATIVES = [
    dict(
        exercise="9.1",
        name="torch float32",
        code="""
        r = torch.as_tensor(rewards, dtype=torch.float32)
        lp = torch.as_tensor(log_probs, dtype=torch.float32)
        return (r - lp).sum(dim=1)
    """,
    ),
    dict(
        exercise="9.1",
        name="a loop over trajectories with math.fsum",
        code="""
        import math
        return np.array([math.fsum(r) - math.fsum(lp) for r, lp in zip(rewards, log_probs)])
    """,
    ),
    dict(
        exercise="9.1",
        name="einsum of the per-step log-ratios",
        code="""
        return np.einsum("mt->m", np.subtract(rewards, log_probs))
    """,
    ),
    dict(
        exercise="9.2",
        name="torch float32 softmax",
        code="""
        w_bar = torch.softmax(torch.as_tensor(log_w, dtype=torch.float32), dim=0)
        values = torch.as_tensor(values, dtype=torch.float32)
        estimate = torch.tensordot(w_bar, values, dims=([0], [0]))
        return estimate, 1.0 / (w_bar ** 2).sum()
    """,
    ),
    dict(
        exercise="9.2",
        name="scipy softmax, ESS from two logsumexps",
        code="""
        from scipy.special import softmax
        w_bar = softmax(log_w)
        ess = np.exp(2 * logsumexp(log_w) - logsumexp(2 * log_w))
        return (w_bar[:, None] * np.reshape(values, (len(log_w), -1))).sum(axis=0).reshape(
            np.shape(values)[1:]), ess
    """,
    ),
    dict(
        exercise="9.2",
        name="subtract the maximum, loop over the samples",
        code="""
        m = max(log_w)
        w = [np.exp(lw - m) for lw in log_w]
        total = sum(w)
        estimate = sum(wj * np.asarray(fj, dtype=float) for wj, fj in zip(w, values)) / total
        return estimate, total ** 2 / sum(wj ** 2 for wj in w)
    """,
    ),
    dict(
        exercise="9.2",
        name="the solution's idiom in torch float32 (its logsumexp rounds near 1000)",
        code="""
        lw = torch.as_tensor(log_w, dtype=torch.float32)
        w_bar = torch.exp(lw - torch.logsumexp(lw, dim=0))
        values = torch.as_tensor(values, dtype=torch.float32)
        return torch.tensordot(w_bar, values, dims=([0], [0])), 1.0 / (w_bar ** 2).sum()
    """,
    ),
    dict(
        exercise="9.3",
        name="irl.trajectory_log_probs and scipy softmax",
        code="""
        from scipy.special import softmax
        log_probs = irl.trajectory_log_probs(sampler_policy, sample_states, sample_actions)
        w_bar = softmax(((features @ theta)[sample_states] - log_probs).sum(axis=1))
        expert = irl.feature_expectations(features, expert_states)
        return expert - w_bar @ features[sample_states].sum(axis=1)
    """,
    ),
    dict(
        exercise="9.3",
        name="loops over samples and steps",
        code="""
        M, T = sample_states.shape
        log_w, counts = np.zeros(M), np.zeros((M, features.shape[1]))
        for j in range(M):
            for t in range(T):
                s, a = sample_states[j, t], sample_actions[j, t]
                pi = sampler_policy if sampler_policy.ndim == 2 else sampler_policy[t]
                log_w[j] += features[s] @ theta - np.log(pi[s, a])
                counts[j] += features[s]
        w = np.exp(log_w - log_w.max())
        expert = features[expert_states].sum(axis=1).mean(axis=0)
        return expert - (w / w.sum()) @ counts
    """,
    ),
    dict(
        exercise="9.3",
        name="torch float32",
        code="""
        f = torch.as_tensor(features, dtype=torch.float32)
        pi = torch.as_tensor(sampler_policy, dtype=torch.float32)
        s, a = torch.as_tensor(sample_states), torch.as_tensor(sample_actions)
        T = s.shape[1]
        lp = torch.log(pi[s, a] if pi.ndim == 2 else pi[torch.arange(T), s, a])
        log_w = (f @ torch.as_tensor(theta, dtype=torch.float32))[s].sum(1) - lp.sum(1)
        model = torch.softmax(log_w, 0) @ f[s].sum(1)
        return f[torch.as_tensor(expert_states)].sum(1).mean(0) - model
    """,
    ),
    dict(
        exercise="9.4",
        name="float32, log Z with the maximum subtracted",
        code="""
        log_w = -(sample_costs.float() + sample_log_probs.float()).sum(dim=1)
        m = log_w.max().detach()
        log_z = m + torch.log(torch.exp(log_w - m).mean())
        return demo_costs.float().sum(dim=1).mean() + log_z
    """,
    ),
    dict(
        exercise="9.4",
        name="Tensor.logsumexp and math.log",
        code="""
        import math
        log_w = -sample_costs.sum(1) - sample_log_probs.sum(1)
        return demo_costs.sum(1).mean() + log_w.logsumexp(0) - math.log(len(log_w))
    """,
    ),
    dict(
        exercise="9.4",
        name="log-mean-exp via torch.special and the mean over demonstrations",
        code="""
        M = sample_costs.shape[0]
        log_z = torch.special.logsumexp(-(sample_costs + sample_log_probs).sum(-1), dim=-1)
        return torch.mean(torch.sum(demo_costs, -1)) + log_z - torch.log(torch.tensor(float(M)))
    """,
    ),
    dict(
        exercise="9.5",
        name="log-sum-exp by hand with the maximum subtracted, no -log n (same gradient)",
        code="""
        d, c = cost_net(demo_states), cost_net(sample_states)
        C = torch.cat([c, d]).sum(-1) / config.alpha
        log_w = -C - torch.cat([sample_log_q, demo_log_q])
        m = log_w.max().detach()
        log_z = m + torch.log(torch.exp(log_w - m).sum())
        mono = (d[:, 1:] - d[:, :-1]).clamp(min=0).square().sum(-1).mean()
        l2 = d.square().mean() + c.square().mean()
        loss = d.sum(-1).mean() / config.alpha + log_z
        loss = loss + config.mono_weight * mono + config.cost_l2 * l2
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return float(loss)
    """,
    ),
    dict(
        exercise="9.5",
        name="surrogate with detached self-normalised weights, demos first, other local names",
        code="""
        net, opt, cfg = cost_net, optimizer, config
        d, c = net(demo_states), net(sample_states)
        C = torch.cat([d.sum(1), c.sum(1)]) / cfg.alpha  # demonstrations first: same set
        log_q = torch.cat([demo_log_q, sample_log_q])
        w_bar = torch.softmax(-C - log_q, dim=0).detach()  # the gradient's weights
        surrogate = d.sum(1).mean() / cfg.alpha - (w_bar * C).sum()
        rises = [torch.relu(d[i, 1:] - d[i, :-1]).pow(2).sum() for i in range(len(d))]
        surrogate = surrogate + cfg.mono_weight * torch.stack(rises).mean()
        n_demo_steps, n_sample_steps = d.numel(), c.numel()
        l2 = (d**2).sum() / n_demo_steps + (c**2).sum() / n_sample_steps
        surrogate = surrogate + cfg.cost_l2 * l2
        opt.zero_grad()
        surrogate.backward()
        opt.step()
        return surrogate.item()
    """,
    ),
    dict(
        exercise="9.5",
        name="log-mean-exp with torch.special and getattr on the config",
        code="""
        alpha = getattr(config, "alpha")
        costs_d = cost_net(demo_states)
        costs_s = cost_net(sample_states)
        traj = torch.cat([costs_s, costs_d], dim=0).sum(dim=-1)
        log_w = -traj / alpha - torch.cat([sample_log_q, demo_log_q], dim=0)
        n = torch.tensor(float(log_w.numel()), dtype=log_w.dtype)
        loss = costs_d.sum(-1).mean() / alpha + torch.special.logsumexp(log_w, 0) - torch.log(n)
        diffs = torch.diff(costs_d, dim=1)
        loss = loss + config.mono_weight * torch.where(diffs > 0, diffs, 0.0).pow(2).sum(1).mean()
        loss = loss + config.cost_l2 * (costs_d.pow(2).mean() + costs_s.pow(2).mean())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()
    """,
    ),
]
