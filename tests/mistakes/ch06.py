"""Plausible mistakes in chapter 06 (data for tests/test_mistakes.py)."""

NOTEBOOK = "solutions/06_soft_q_learning.ipynb"
MISTAKES = [
    dict(
        exercise="6.1",
        name="bootstraps through terminated transitions",
        old="gamma * (1.0 - terminated) * soft_value",
        new="gamma * soft_value",
        feedback="your target bootstraps through TERMINATED transitions",
    ),
    dict(
        exercise="6.1",
        name="truncation treated as termination",
        old="gamma * (1.0 - terminated) * soft_value",
        new="gamma * (1.0 - terminated) * (1.0 - truncated) * soft_value",
        feedback="treats TRUNCATED transitions (time-outs) as terminal",
    ),
    dict(
        exercise="6.1",
        name="hard max (DQN target)",
        old="soft_value = alpha * torch.logsumexp(next_q / alpha, dim=-1)",
        new="soft_value = next_q.max(dim=-1).values",
        feedback="you used the hard max over next actions",
    ),
    dict(
        exercise="6.1",
        name="target not detached",
        old="return (reward + gamma * (1.0 - terminated) * soft_value).detach()",
        new="return reward + gamma * (1.0 - terminated) * soft_value",
        feedback="your target still carries gradients",
    ),
    dict(
        exercise="6.1",
        name="keepdim=True broadcasts y to (B, B)",
        old="torch.logsumexp(next_q / alpha, dim=-1)",
        new="torch.logsumexp(next_q / alpha, dim=-1, keepdim=True)",
        feedback="your target has shape (B, B)",
    ),
    dict(
        exercise="6.1",
        name="log of a sum of exponentials overflows",
        old="alpha * torch.logsumexp(next_q / alpha, dim=-1)",
        new="alpha * torch.log(torch.exp(next_q / alpha).sum(dim=-1))",
        feedback="your soft max overflowed",
    ),
    dict(
        exercise="6.2",
        name="temperature missing in the exponent",
        old="return torch.exp((q - soft_value) / alpha)",
        new="return torch.exp(q - soft_value)",
        feedback="the temperature is missing in the value or the exponent",
    ),
    dict(
        exercise="6.2",
        name="returns log-probabilities",
        old="return torch.exp((q - soft_value) / alpha)",
        new="return (q - soft_value) / alpha",
        feedback="you returned log-probabilities",
    ),
    dict(
        exercise="6.2",
        name="normalised over the wrong axis",
        old="torch.logsumexp(q / alpha, dim=-1, keepdim=True)",
        new="torch.logsumexp(q / alpha, dim=0, keepdim=True)",
        feedback="you normalised over the wrong axis",
    ),
    dict(
        exercise="6.2",
        name="softmax without the temperature",
        old="return torch.exp((q - soft_value) / alpha)",
        new="return torch.softmax(q, dim=-1)",
        feedback="your policy ignores the temperature alpha",
    ),
    dict(
        exercise="6.2",
        name="exp / sum overflows",
        old="return torch.exp((q - soft_value) / alpha)",
        new="return torch.exp(q / alpha) / torch.exp(q / alpha).sum(dim=-1, keepdim=True)",
        feedback="exp(Q / alpha) overflows",
    ),
    dict(
        exercise="6.3",
        name="target from the online network",
        old=(
            "            target_net(batch.next_obs),\n"
            "            batch.rewards,\n"
            "            batch.terminated,\n"
            "            batch.truncated,\n"
            "            gamma,\n"
            "            alpha,"
        ),
        new="            q_net(batch.next_obs), batch.rewards, batch.terminated, batch.truncated, gamma, alpha",
        feedback="you computed the target with the ONLINE network",
    ),
    dict(
        exercise="6.3",
        name="max over actions instead of the taken action",
        old="q_net(batch.obs).gather(1, batch.actions.unsqueeze(1)).squeeze(1)",
        new="q_net(batch.obs).max(dim=1).values",
        feedback="you regressed max_a Q(s, a) onto the target",
    ),
    dict(
        exercise="6.3",
        name="mse_loss without the factor 1/2",
        old="return 0.5 * ((q_taken - y) ** 2).mean()",
        new="return torch.nn.functional.mse_loss(q_taken, y)",
        feedback="without the factor 1/2",
    ),
    dict(
        exercise="6.3",
        name="forgot to squeeze the gathered Q",
        old="batch.actions.unsqueeze(1)).squeeze(1)",
        new="batch.actions.unsqueeze(1))",
        feedback="has shape (B, B)",
    ),
    dict(
        exercise="6.3",
        name="Huber loss (F.smooth_l1_loss)",
        old="return 0.5 * ((q_taken - y) ** 2).mean()",
        new="return torch.nn.functional.smooth_l1_loss(q_taken, y)",
        feedback="your loss is the Huber loss",
    ),
    dict(
        exercise="6.3",
        name="summed over the batch",
        old="return 0.5 * ((q_taken - y) ** 2).mean()",
        new="return 0.5 * ((q_taken - y) ** 2).sum()",
        feedback="your loss SUMS over the batch",
    ),
    dict(
        exercise="6.3",
        name="Q(s, a) detached too",
        old="q_taken = q_net(batch.obs).gather",
        new="q_taken = q_net(batch.obs).detach().gather",
        feedback="your loss has no gradient",
    ),
    dict(
        exercise="6.4",
        name="hard max instead of the soft value",
        old="next_v = alpha * torch.logsumexp(next_q / alpha, dim=-1)",
        new="next_v = next_q.max(dim=-1).values",
        feedback="you used the hard max over next actions",
    ),
    dict(
        exercise="6.4",
        name="gradient through a target from the online network",
        old=(
            "    with torch.no_grad():  # the target is a regression label: no gradient into either network\n"
            "        next_q = target_net(batch.next_obs)  # Q_phi'(s', .), (B, A)\n"
            "        next_v = alpha * torch.logsumexp(next_q / alpha, dim=-1)  # soft value V(s'), (B,)\n"
            "        y = batch.rewards + gamma * (1.0 - batch.terminated) * next_v  # (B,)"
        ),
        new=(
            "    next_q = q_net(batch.next_obs)\n"
            "    next_v = alpha * torch.logsumexp(next_q / alpha, dim=-1)\n"
            "    y = batch.rewards + gamma * (1.0 - batch.terminated) * next_v"
        ),
        feedback="your target is computed with q_net and not detached",
    ),
    dict(
        exercise="6.4",
        name="online network for the target",
        old="next_q = target_net(batch.next_obs)",
        new="next_q = q_net(batch.next_obs)",
        feedback="you computed the target with the ONLINE network",
    ),
    dict(
        exercise="6.4",
        name="missing (1 - terminated)",
        old="y = batch.rewards + gamma * (1.0 - batch.terminated) * next_v",
        new="y = batch.rewards + gamma * next_v",
        feedback="your target bootstraps through TERMINATED transitions",
    ),
    dict(
        exercise="6.4",
        name="temperature outside only (alpha * logsumexp(Q'))",
        old="alpha * torch.logsumexp(next_q / alpha, dim=-1)",
        new="alpha * torch.logsumexp(next_q, dim=-1)",
        feedback="you did not divide Q' by alpha inside the logsumexp",
    ),
    dict(
        exercise="6.4",
        name="temperature inverted",
        old="alpha * torch.logsumexp(next_q / alpha, dim=-1)",
        new="torch.logsumexp(next_q * alpha, dim=-1) / alpha",
        feedback="the temperature is inverted",
    ),
    dict(
        exercise="6.4",
        name="no optimizer.zero_grad()",
        old="    optimizer.zero_grad()  # .grad still holds the previous step's gradients\n",
        new="",
        feedback="you did not clear the gradients before loss.backward()",
    ),
    dict(
        exercise="6.4",
        name="huber ignored (always the squared error)",
        old="    if huber:  # 1/2 e^2 for |e| < 1, |e| - 1/2 beyond\n",
        new="    if False:\n",
        feedback="your loss ignores the `huber` argument",
    ),
    dict(
        exercise="6.4",
        name="F.mse_loss for the squared error",
        old="loss = 0.5 * ((q_taken - y) ** 2).mean()",
        new="loss = F.mse_loss(q_taken, y)",
        feedback="your squared loss lacks the factor 1/2",
    ),
    dict(
        exercise="6.4",
        name="the target network refreshed inside the update",
        old="    optimizer.step()\n",
        new="    optimizer.step()\n    target_net.load_state_dict(q_net.state_dict())\n",
        feedback="your update changed the target network's parameters",
    ),
]
