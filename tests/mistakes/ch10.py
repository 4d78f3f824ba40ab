"""Plausible mistakes in chapter 10 (data for tests/test_mistakes.py)."""

NOTEBOOK = "solutions/10_adversarial_irl.ipynb"
MISTAKES = [
    # ---- 10.1: the AIRL logit f - log pi
    dict(
        exercise="10.1",
        name="forgot the log pi term",
        old="    return f - log_pi\n",
        new="    return f\n",
        feedback="miss the -log pi(a|s) term",
    ),
    dict(
        exercise="10.1",
        name="log pi with the wrong sign",
        old="    return f - log_pi\n",
        new="    return f + log_pi\n",
        feedback="log pi(a|s) has the wrong sign",
    ),
    dict(
        exercise="10.1",
        name="no discount on the next potential",
        old="f = g_s + gamma * h_next - h_s",
        new="f = g_s + h_next - h_s",
        feedback="the discount is missing",
    ),
    dict(
        exercise="10.1",
        name="shaping the wrong way round",
        old="f = g_s + gamma * h_next - h_s",
        new="f = g_s + h_s - gamma * h_next",
        feedback="shaping term is the wrong way round",
    ),
    dict(
        exercise="10.1",
        name="returns D instead of the logit",
        old="    return f - log_pi\n",
        new="    return torch.sigmoid(f - log_pi)\n",
        feedback="you returned D = sigmoid(logit)",
    ),
    dict(
        exercise="10.1",
        name="logits detached",
        old="    return f - log_pi\n",
        new="    return (f - log_pi).detach()\n",
        feedback="the logits carry no gradient",
    ),
    dict(
        exercise="10.1",
        name="no shaping term",
        old="f = g_s + gamma * h_next - h_s",
        new="f = g_s",
        feedback="the shaping term is missing",
    ),
    # ---- 10.2: the discriminator loss
    dict(
        exercise="10.2",
        name="expert and policy labels swapped",
        old="expert_term = F.softplus(-expert_logits).mean()",
        new="expert_term = F.softplus(expert_logits).mean()",
        feedback="expert term uses log(1 - D) where log D belongs",
    ),
    dict(
        exercise="10.2",
        name="log D where log(1 - D) belongs (policy term)",
        old="policy_term = F.softplus(policy_logits).mean()",
        new="policy_term = F.softplus(-policy_logits).mean()",
        feedback="uses log D where log(1 - D) belongs",
    ),
    dict(
        exercise="10.2",
        name="both labels swapped",
        old="    return expert_term + policy_term\n",
        new="    return F.softplus(expert_logits).mean() + F.softplus(-policy_logits).mean()\n",
        feedback="the labels are swapped",
    ),
    dict(
        exercise="10.2",
        name="unstable log of sigmoid",
        old="expert_term = F.softplus(-expert_logits).mean()",
        new="expert_term = -torch.log(torch.sigmoid(expert_logits)).mean()",
        feedback="not finite for large logits",
    ),
    dict(
        exercise="10.2",
        name="one mean over both batches",
        old="    return expert_term + policy_term\n",
        new="    return torch.cat([F.softplus(-expert_logits), F.softplus(policy_logits)]).mean()\n",
        feedback="both batches are averaged together",
    ),
    dict(
        exercise="10.2",
        name="maximises instead of minimises",
        old="    return expert_term + policy_term\n",
        new="    return -(expert_term + policy_term)\n",
        feedback="the signs are flipped",
    ),
    dict(
        exercise="10.2",
        name="summed over each batch",
        old="    return expert_term + policy_term\n",
        new="    return F.softplus(-expert_logits).sum() + F.softplus(policy_logits).sum()\n",
        feedback="summed over the batch",
    ),
    dict(
        exercise="10.2",
        name="one loss per sample",
        old="    return expert_term + policy_term\n",
        new="    return torch.cat([F.softplus(-expert_logits), F.softplus(policy_logits)])\n",
        feedback="expected a scalar",
    ),
    # ---- 10.3: the reward for the policy
    dict(
        exercise="10.3",
        name="gradient flows into the discriminator",
        old="    with torch.no_grad():\n        logits = discriminator(obs, actions)\n"
        "        return F.logsigmoid(logits) - F.logsigmoid(-logits)",
        new="    logits = discriminator(obs, actions)\n    return F.logsigmoid(logits) - F.logsigmoid(-logits)",
        feedback="the reward requires grad",
    ),
    dict(
        exercise="10.3",
        name="log D only",
        old="return F.logsigmoid(logits) - F.logsigmoid(-logits)",
        new="return F.logsigmoid(logits)",
        feedback="the reward in the slides' GAIL gradient",
    ),
    dict(
        exercise="10.3",
        name="-log(1 - D) only",
        old="return F.logsigmoid(logits) - F.logsigmoid(-logits)",
        new="return -F.logsigmoid(-logits)",
        feedback="reward of Ho & Ermon's GAIL paper",
    ),
    dict(
        exercise="10.3",
        name="sign flipped",
        old="return F.logsigmoid(logits) - F.logsigmoid(-logits)",
        new="return F.logsigmoid(-logits) - F.logsigmoid(logits)",
        feedback="the sign is flipped",
    ),
    dict(
        exercise="10.3",
        name="log of sigmoid overflows",
        old="return F.logsigmoid(logits) - F.logsigmoid(-logits)",
        new="return torch.log(torch.sigmoid(logits)) - torch.log(1 - torch.sigmoid(logits))",
        feedback="not finite for a confident discriminator",
    ),
    dict(
        exercise="10.3",
        name="backward through the discriminator",
        old="    with torch.no_grad():\n        logits = discriminator(obs, actions)\n"
        "        return F.logsigmoid(logits) - F.logsigmoid(-logits)",
        new="    logits = discriminator(obs, actions)\n    logits.sum().backward()\n    return logits.detach()",
        feedback="left gradients on the discriminator's parameters",
    ),
    dict(
        exercise="10.3",
        name="D itself",
        old="return F.logsigmoid(logits) - F.logsigmoid(-logits)",
        new="return torch.sigmoid(logits)",
        feedback="you returned D itself",
    ),
    # ---- 10.4: the AIRL discriminator step and the generator's reward
    dict(
        exercise="10.4",
        name="labels swapped",
        old="loss = discriminator_loss(logits[0], logits[1])",
        new="loss = discriminator_loss(logits[1], logits[0])",
        feedback="the labels are swapped",
    ),
    dict(
        exercise="10.4",
        name="log pi not subtracted",
        old="logits.append(airl_logits(g_s, h_s, h_next, log_pi, discriminator.gamma))",
        new="logits.append(airl_logits(g_s, h_s, h_next, 0 * log_pi, discriminator.gamma))",
        feedback="the logits miss -log pi(a|s)",
    ),
    dict(
        exercise="10.4",
        name="log pi not detached: the policy gets gradient",
        old="        with torch.no_grad():  # log pi is a fixed number here: this step must not move the policy\n"
        "            log_pi = policy.log_prob(batch.obs, batch.actions)\n",
        new="        log_pi = policy.log_prob(batch.obs, batch.actions)\n",
        feedback="sent gradient into the policy",
    ),
    dict(
        exercise="10.4",
        name="no zero_grad",
        old="    optimizer.zero_grad()\n    loss.backward()",
        new="    loss.backward()",
        feedback="did not clear the gradients",
    ),
    dict(
        exercise="10.4",
        name="no optimizer step",
        old="    loss.backward()\n    optimizer.step()\n",
        new="    loss.backward()\n",
        feedback="did not move",
    ),
    dict(
        exercise="10.4",
        name="reward computed with gradient",
        old="    with torch.no_grad():  # a fixed reward for the critic: no gradient into the discriminator\n"
        "        g_s = discriminator.reward(batch.obs)\n"
        "        h_s, h_next = discriminator.potential(batch.obs), discriminator.potential(batch.next_obs)\n"
        "        return g_s + discriminator.gamma * h_next - h_s\n",
        new="    g_s = discriminator.reward(batch.obs)\n"
        "    h_s, h_next = discriminator.potential(batch.obs), discriminator.potential(batch.next_obs)\n"
        "    return g_s + discriminator.gamma * h_next - h_s\n",
        feedback="your rewards require grad",
    ),
    dict(
        exercise="10.4",
        name="reward with the wrong sign",
        old="return g_s + discriminator.gamma * h_next - h_s",
        new="return h_s - discriminator.gamma * h_next - g_s",
        feedback="the reward has the wrong sign",
    ),
    dict(
        exercise="10.4",
        name="reward is the state-only g",
        old="return g_s + discriminator.gamma * h_next - h_s",
        new="return g_s",
        feedback="your reward is g(s) alone",
    ),
]
