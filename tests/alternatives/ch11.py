"""Correct answers to chapter 11, written differently from the solution (data for tests/test_mistakes.py)."""

ALTERNATIVES = [
    dict(
        exercise="11.1",
        name="fixed-point iteration z <- G p z until it stops changing",
        code="""
        p, r, goal = np.asarray(p, float), np.asarray(r, float), np.asarray(goal, bool)
        g = np.exp(r / alpha)
        z = np.where(goal, g, 0.0)
        for _ in range(100_000):
            new = np.where(goal, g, g * (p @ z))
            if np.max(np.abs(new - z) / np.maximum(np.abs(new), 1e-300)) < 1e-15:
                break
            z = new
        u = p * new
        return new, u / u.sum(axis=1)[:, None]
    """,
    ),
    dict(
        exercise="11.1",
        name="one S x S system with the goal rows as equations, scipy, renamed parameters",
        rename={"p": "passive", "r": "reward", "goal": "terminal", "alpha": "temperature"},
        code="""
        import scipy.linalg
        passive = np.asarray(passive, dtype=np.float64)
        g = np.exp(np.asarray(reward, dtype=np.float64) / temperature)
        terminal = np.asarray(terminal, dtype=bool)
        S = len(g)
        M = np.eye(S) - np.where(terminal[:, None], 0.0, g[:, None] * passive)
        b = np.where(terminal, g, 0.0)
        z = scipy.linalg.solve(M, b)
        weights = passive * z
        return z, weights / weights.sum(axis=1, keepdims=True)
    """,
    ),
    dict(
        exercise="11.1",
        name="torch in float64 with torch.linalg.solve",
        code="""
        P = torch.as_tensor(p, dtype=torch.float64)
        G = torch.exp(torch.as_tensor(r, dtype=torch.float64) / alpha)
        mask = torch.as_tensor(goal, dtype=torch.bool)
        i, j = (~mask).nonzero().squeeze(1), mask.nonzero().squeeze(1)
        z = torch.empty_like(G)
        z[j] = G[j]
        A = torch.eye(len(i), dtype=torch.float64) - torch.diag(G[i]) @ P[i][:, i]
        z[i] = torch.linalg.solve(A, G[i] * (P[i][:, j] @ z[j]))
        u = P * z
        return z.numpy(), (u / u.sum(dim=1, keepdim=True)).numpy()
    """,
    ),
    dict(
        exercise="11.2",
        name="upper case",
        code="""
        answer_11_2 = "B"
    """,
    ),
    dict(
        exercise="11.2",
        name="with parentheses and spaces",
        code="""
        answer_11_2 = " (b) "
    """,
    ),
    dict(
        exercise="11.3",
        name="a loop over the d steps, accumulating the discount",
        code="""
        n_steps = actions.shape[1]
        total = -values[states[:, 0]]
        discount = 1.0
        for j in range(n_steps):
            total = total + discount * (rewards[:, j] - alpha * log_pi[states[:, j], actions[:, j]])
            discount = discount * gamma
        total = total + discount * values[states[:, n_steps]]
        return (total**2).mean() / 2
    """,
    ),
    dict(
        exercise="11.3",
        name="F.mse_loss between both sides of the consistency, gather, renamed parameters",
        rename={"values": "V", "log_pi": "logp", "states": "s", "actions": "a", "rewards": "r"},
        code="""
        import torch.nn.functional as F
        d = a.shape[1]
        weights = torch.cumprod(torch.full((d,), gamma, dtype=V.dtype), 0) / gamma
        logp_taken = logp[s[:, :-1]].gather(-1, a.unsqueeze(-1)).squeeze(-1)
        right = gamma**d * V[s[:, d]] + ((r - alpha * logp_taken) * weights).sum(-1)
        return 0.5 * F.mse_loss(V[s[:, 0]], right)
    """,
    ),
    dict(
        exercise="11.3",
        name="einsum over the discounts, torch.square",
        code="""
        d = actions.shape[1]
        powers = torch.tensor([gamma**j for j in range(d)], dtype=rewards.dtype)
        soft = rewards - alpha * log_pi[states[:, :d], actions]
        c = torch.einsum("nd,d->n", soft, powers) + gamma**d * values[states[:, d]] - values[states[:, 0]]
        return torch.square(c).mean() * 0.5
    """,
    ),
    dict(
        exercise="11.4",
        name="critics, actor and temperature stepped in turn, log-alpha loss, by-hand Polyak",
        code="""
        import torch.nn.functional as F
        alpha = agent.log_alpha.exp().item()
        with torch.no_grad():
            p_next, logp_next = agent.policy.probs_and_log_probs(batch.next_obs)
            q1_t, q2_t = agent.q_target(batch.next_obs)
            v_next = (p_next * (torch.minimum(q1_t, q2_t) - alpha * logp_next)).sum(-1)
            y = batch.rewards + gamma * (1 - batch.terminated) * v_next
        q1, q2 = agent.q_net(batch.obs)
        a = batch.actions.view(-1, 1)
        q_loss = 0.5 * F.mse_loss(q1.gather(1, a).view(-1), y) + 0.5 * F.mse_loss(q2.gather(1, a).view(-1), y)
        agent.q_opt.zero_grad()
        q_loss.backward()
        agent.q_opt.step()
        with torch.no_grad():
            q_min = torch.minimum(*agent.q_net(batch.obs))
        probs, log_probs = agent.policy.probs_and_log_probs(batch.obs)
        policy_loss = (probs * (alpha * log_probs - q_min)).sum(-1).mean()
        agent.policy_opt.zero_grad()
        policy_loss.backward()
        agent.policy_opt.step()
        entropy = torch.distributions.Categorical(probs=probs.detach()).entropy()
        alpha_loss = (agent.log_alpha * (entropy - agent.target_entropy)).mean()
        agent.alpha_opt.zero_grad()
        alpha_loss.backward()
        agent.alpha_opt.step()
        with torch.no_grad():
            for target, source in zip(agent.q_target.parameters(), agent.q_net.parameters()):
                target.mul_(1 - tau).add_(tau * source)
        return q_loss.item(), policy_loss.item(), alpha_loss.item()
    """,
    ),
    dict(
        exercise="11.4",
        name="one backward pass per loss before any step, einsum and fancy indexing",
        code="""
        alpha = agent.log_alpha.detach().exp()
        with torch.no_grad():
            probs_next, logp_next = agent.policy.probs_and_log_probs(batch.next_obs)
            target_q = torch.stack(agent.q_target(batch.next_obs)).min(dim=0).values
            v = torch.einsum("ba,ba->b", probs_next, target_q - alpha * logp_next)
            y = batch.rewards + gamma * v * (1 - batch.terminated)
        rows = torch.arange(len(batch.actions))
        q1, q2 = agent.q_net(batch.obs)
        q_loss = ((q1[rows, batch.actions] - y) ** 2).mean() / 2 + ((q2[rows, batch.actions] - y) ** 2).mean() / 2
        probs, logp = agent.policy.probs_and_log_probs(batch.obs)
        policy_loss = torch.einsum("ba,ba->b", probs, alpha * logp - torch.min(q1, q2).detach()).mean()
        entropy = (-(probs * logp).sum(-1)).detach()
        alpha_loss = (agent.log_alpha.exp() * (entropy - agent.target_entropy)).mean()
        pairs = ((agent.q_opt, q_loss), (agent.policy_opt, policy_loss), (agent.alpha_opt, alpha_loss))
        for opt, loss in pairs:
            opt.zero_grad()
            loss.backward()
        for opt, _ in pairs:
            opt.step()
        polyak_update(agent.q_target, agent.q_net, tau)
        return q_loss.item(), policy_loss.item(), alpha_loss.item()
    """,
    ),
    dict(
        exercise="11.5",
        name="torch.where masks and sums divided by counts, renamed parameters",
        rename={
            "q": "q_sa",
            "v": "v_s",
            "next_v": "v_next",
            "terminated": "done",
            "is_expert": "mask",
        },
        code="""
        r = q_sa - gamma * torch.where(done.bool(), torch.zeros_like(v_next), v_next)
        n_expert = mask.sum()
        expert_part = -(torch.where(mask, r, torch.zeros_like(r))).sum() / n_expert
        value_part = (v_s - (q_sa - r)).mean()
        return expert_part + value_part + r.pow(2).sum() / len(r) / (4 * chi2_alpha)
    """,
    ),
    dict(
        exercise="11.5",
        name="float mask weights and torch.square, in one expression",
        code="""
        w = is_expert.to(q.dtype)
        r = q - gamma * (1 - terminated) * next_v
        return (
            -(w * r).sum() / w.sum()
            + torch.mean(v - gamma * (1 - terminated) * next_v)
            + torch.square(r).mean() * (0.25 / chi2_alpha)
        )
    """,
    ),
]
