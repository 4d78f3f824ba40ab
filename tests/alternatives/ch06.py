"""Correct answers to chapter 06, written differently from the solution (data for tests/test_mistakes.py)."""

ALTERNATIVES = [
    dict(
        exercise="6.1",
        name="a hand-written stable soft max (max subtracted) under no_grad",
        code="""
        with torch.no_grad():
            m = next_q.max(dim=1, keepdim=True).values
            soft_value = m + alpha * torch.log(torch.exp((next_q - m) / alpha).sum(dim=1, keepdim=True))
            return reward + gamma * (1.0 - terminated) * soft_value.squeeze(1)
    """,
    ),
    dict(
        exercise="6.1",
        name="scipy.special.logsumexp in float64 and torch.where on the flag",
        code="""
        from scipy.special import logsumexp
        v = torch.from_numpy(alpha * logsumexp(next_q.detach().double().numpy() / alpha, axis=-1))
        return torch.where(terminated.bool(), reward.double(), reward + gamma * v)
    """,
    ),
    dict(
        exercise="6.1",
        name="a loop over the transitions, renamed parameters",
        rename={"next_q": "q_next", "reward": "r", "terminated": "done", "truncated": "timeout"},
        code="""
        targets = []
        for q_row, r_i, done_i in zip(q_next.detach(), r, done):
            v = alpha * torch.logsumexp(q_row / alpha, dim=0)
            targets.append(r_i if done_i else r_i + gamma * v)
        return torch.stack(targets)
    """,
    ),
    dict(
        exercise="6.2",
        name="torch.softmax",
        code="""
        return torch.softmax(q / alpha, dim=-1)
    """,
    ),
    dict(
        exercise="6.2",
        name="torch.distributions.Categorical(logits=...).probs",
        code="""
        return torch.distributions.Categorical(logits=q / alpha).probs
    """,
    ),
    dict(
        exercise="6.2",
        name="exp / sum after subtracting the maximum",
        code="""
        z = q / alpha
        e = torch.exp(z - z.amax(dim=-1, keepdim=True))
        return e / e.sum(dim=-1, keepdim=True)
    """,
    ),
    dict(
        exercise="6.2",
        name="scipy.special.softmax in float64",
        code="""
        from scipy.special import softmax
        return torch.from_numpy(softmax(q.double().numpy() / alpha, axis=-1))
    """,
    ),
    dict(
        exercise="6.3",
        name="F.mse_loss / 2 and fancy indexing",
        code="""
        import torch.nn.functional as F
        y = soft_q_target(target_net(batch.next_obs), batch.rewards, batch.terminated,
                          batch.truncated, gamma, alpha).detach()
        q_taken = q_net(batch.obs)[torch.arange(len(batch.actions)), batch.actions]
        return 0.5 * F.mse_loss(q_taken, y)
    """,
    ),
    dict(
        exercise="6.3",
        name="a one-hot mask and F.mse_loss(reduction='sum') / 2B",
        code="""
        import torch.nn.functional as F
        with torch.no_grad():
            y = soft_q_target(target_net(batch.next_obs), batch.rewards, batch.terminated,
                              batch.truncated, gamma, alpha)
        q = q_net(batch.obs)
        q_taken = (q * F.one_hot(batch.actions, q.shape[1])).sum(dim=1)
        return F.mse_loss(q_taken, y, reduction="sum") / (2 * len(y))
    """,
    ),
    dict(
        exercise="6.3",
        name="take_along_dim, the square accumulated in float64, renamed parameters",
        rename={"q_net": "online", "target_net": "frozen", "batch": "b"},
        code="""
        with torch.no_grad():
            y = soft_q_target(frozen(b.next_obs), b.rewards, b.terminated, b.truncated, gamma, alpha)
        q_taken = torch.take_along_dim(online(b.obs), b.actions[:, None], dim=1).squeeze(1)
        return 0.5 * (q_taken.double() - y.double()).pow(2).mean()
    """,
    ),
    dict(
        exercise="6.4",
        name="manual stable log-sum-exp, handwritten Huber with torch.where, fancy indexing",
        code="""
        with torch.no_grad():
            next_q = target_net(batch.next_obs)
            m = next_q.max(dim=1, keepdim=True).values
            v = (m + alpha * torch.log(torch.exp((next_q - m) / alpha).sum(dim=1, keepdim=True))).squeeze(1)
            y = batch.rewards + gamma * (1 - batch.terminated) * v
        q_taken = q_net(batch.obs)[torch.arange(len(batch.actions)), batch.actions]
        e = q_taken - y
        if huber:
            loss = torch.where(e.abs() < 1, 0.5 * e**2, e.abs() - 0.5).mean()
        else:
            loss = 0.5 * (e**2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()
    """,
    ),
    dict(
        exercise="6.4",
        name="the student's soft_q_target (6.1), F.huber_loss and F.mse_loss / 2, renamed parameters",
        rename={"q_net": "online", "target_net": "frozen", "optimizer": "opt", "batch": "b"},
        code="""
        y = soft_q_target(frozen(b.next_obs), b.rewards, b.terminated,
                          torch.zeros_like(b.terminated), gamma, alpha)
        q_taken = torch.take_along_dim(online(b.obs), b.actions[:, None], dim=1).squeeze(1)
        if huber:
            loss = F.huber_loss(q_taken, y, delta=1.0)
        else:
            loss = F.mse_loss(q_taken, y) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss)
    """,
    ),
    dict(
        exercise="6.4",
        name="a one-hot mask, the target detached instead of no_grad, zero_grad(set_to_none=False)",
        code="""
        y = (batch.rewards + gamma * (1.0 - batch.terminated)
             * alpha * torch.logsumexp(target_net(batch.next_obs) / alpha, dim=-1)).detach()
        q = q_net(batch.obs)
        q_taken = (q * F.one_hot(batch.actions, q.shape[-1])).sum(-1)
        loss = (F.smooth_l1_loss(q_taken, y, reduction="sum") if huber
                else 0.5 * ((q_taken - y) ** 2).sum()) / len(y)
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        optimizer.step()
        return loss
    """,
    ),
]
