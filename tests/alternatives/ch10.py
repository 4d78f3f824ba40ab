"""Correct answers to chapter 10, written differently from the solution (data for tests/test_mistakes.py)."""

ALTERNATIVES = [
    dict(
        exercise="10.1",
        name="renamed parameters (the check calls positionally)",
        rename={"g_s": "g", "h_s": "h", "h_next": "h_prime", "log_pi": "logp", "gamma": "discount"},
        code="""
        return g + discount * h_prime - h - logp
    """,
    ),
    dict(
        exercise="10.1",
        name="float32",
        code="""
        f = g_s.float() + gamma * h_next.float() - h_s.float()
        return f - log_pi.float()
    """,
    ),
    dict(
        exercise="10.1",
        name="a stack of the four terms times their coefficients",
        code="""
        coefficients = torch.tensor([1.0, gamma, -1.0, -1.0], dtype=g_s.dtype)
        return torch.stack([g_s, h_next, h_s, log_pi], dim=-1) @ coefficients
    """,
    ),
    dict(
        exercise="10.2",
        name="F.binary_cross_entropy_with_logits with labels 1 and 0",
        code="""
        expert = F.binary_cross_entropy_with_logits(expert_logits, torch.ones_like(expert_logits))
        policy = F.binary_cross_entropy_with_logits(policy_logits, torch.zeros_like(policy_logits))
        return expert + policy
    """,
    ),
    dict(
        exercise="10.2",
        name="F.logsigmoid",
        code="""
        return -(F.logsigmoid(expert_logits).mean() + F.logsigmoid(-policy_logits).mean())
    """,
    ),
    dict(
        exercise="10.2",
        name="nn.BCEWithLogitsLoss in float32, renamed parameters",
        rename={"expert_logits": "expert", "policy_logits": "generated"},
        code="""
        bce = nn.BCEWithLogitsLoss()
        expert, generated = expert.float(), generated.float()
        return bce(expert, torch.ones_like(expert)) + bce(generated, torch.zeros_like(generated))
    """,
    ),
    dict(
        exercise="10.2",
        name="torch.logaddexp(0, -x) for -log sigmoid(x)",
        code="""
        zero_e, zero_p = torch.zeros_like(expert_logits), torch.zeros_like(policy_logits)
        return torch.logaddexp(zero_e, -expert_logits).mean() + torch.logaddexp(zero_p, policy_logits).mean()
    """,
    ),
    dict(
        exercise="10.3",
        name="the logit itself, detached, renamed parameters",
        rename={"discriminator": "disc", "obs": "states", "actions": "acts"},
        code="""
        return disc(states, acts).detach()
    """,
    ),
    dict(
        exercise="10.3",
        name="torch.inference_mode",
        code="""
        with torch.inference_mode():
            logits = discriminator(obs, actions)
            return F.logsigmoid(logits) - F.logsigmoid(-logits)
    """,
    ),
    dict(
        exercise="10.3",
        name="float32 logsigmoid difference",
        code="""
        with torch.no_grad():
            x = discriminator(obs, actions).float()
        return F.logsigmoid(x) - F.logsigmoid(-x)
    """,
    ),
    dict(
        exercise="10.4",
        name="binary_cross_entropy_with_logits by hand, .detach() for log pi",
        code="""
        losses = []
        for batch, label in ((expert, 1.0), (samples, 0.0)):
            log_pi = policy.log_prob(batch.obs, batch.actions).detach()
            g = discriminator.reward(batch.obs)
            f = g + discriminator.gamma * discriminator.potential(batch.next_obs)
            f = f - discriminator.potential(batch.obs)
            logit = f - log_pi
            losses.append(F.binary_cross_entropy_with_logits(logit, torch.full_like(logit, label)))
        loss = losses[0] + losses[1]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss
    """,
    ),
    dict(
        exercise="10.4",
        name="logsigmoid by hand, renamed parameters, zero_grad(set_to_none=False)",
        rename={"discriminator": "disc", "optimizer": "opt", "expert": "demo", "samples": "gen"},
        code="""
        def logit(batch):
            with torch.no_grad():
                lp = policy.log_prob(batch.obs, batch.actions)
            h = disc.potential
            return disc.reward(batch.obs) + disc.gamma * h(batch.next_obs) - h(batch.obs) - lp

        loss = -F.logsigmoid(logit(demo)).mean() - F.logsigmoid(-logit(gen)).mean()
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        return float(loss)
    """,
    ),
    dict(
        exercise="10.4",
        name="one concatenated batch with labels and nn.BCEWithLogitsLoss per group",
        code="""
        both = [torch.cat([a, b]) for a, b in zip(expert, samples)]
        obs, actions, _, next_obs, _ = both
        with torch.inference_mode():
            log_pi = policy.log_prob(obs, actions)
        log_pi = log_pi.clone()
        f = discriminator.reward(obs) + discriminator.gamma * discriminator.potential(next_obs)
        logits = f - discriminator.potential(obs) - log_pi
        n = expert.obs.shape[0]
        bce = nn.BCEWithLogitsLoss()
        loss = bce(logits[:n], torch.ones_like(logits[:n])) + bce(logits[n:], torch.zeros_like(logits[n:]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.detach()
    """,
    ),
]
