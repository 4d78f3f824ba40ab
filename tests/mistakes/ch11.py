"""Plausible mistakes in chapter 11 (data for tests/test_mistakes.py)."""

NOTEBOOK = "solutions/11_beyond_the_slides.ipynb"
_SYSTEM = (
    "lhs = np.eye(inner.sum()) - g[inner, None] * p[np.ix_(inner, inner)]  # I - G_II p_II\n"
    "    rhs = g[inner] * (p[np.ix_(inner, goal)] @ z[goal])  # G_II p_IG z_G"
)
MISTAKES = [
    dict(
        exercise="11.1",
        name="Todorov's cost convention read literally: exp(-r / alpha)",
        old="g = np.exp(r / alpha)",
        new="g = np.exp(-r / alpha)",
        feedback="your z has the sign of the reward flipped",
    ),
    dict(
        exercise="11.1",
        name="temperature forgotten: exp(r)",
        old="g = np.exp(r / alpha)",
        new="g = np.exp(r)",
        feedback="your z ignores the temperature",
    ),
    dict(
        exercise="11.1",
        name="reward of the next state (z = p G z)",
        old=_SYSTEM,
        new=(
            "lhs = np.eye(inner.sum()) - p[np.ix_(inner, inner)] * g[None, inner]\n"
            "    rhs = p[np.ix_(inner, goal)] @ (g[goal] * z[goal])"
        ),
        feedback="your equation pays the reward of the NEXT state",
    ),
    dict(
        exercise="11.1",
        name="goals with z = 1 (exit reward dropped)",
        old="z[goal] = g[goal]  # V(g) = r(g)",
        new="z[goal] = 1.0",
        feedback="your goals have z(g) = 1",
    ),
    dict(
        exercise="11.1",
        name="control proportional to z alone",
        old="u = p * z[None, :]  # p(s'|s) z(s')",
        new="u = np.tile(z, (len(z), 1))",
        feedback="your controlled dynamics ignore the passive dynamics",
    ),
    dict(
        exercise="11.1",
        name="control normalised over the wrong axis",
        old="return z, u / u.sum(axis=1, keepdims=True)",
        new="return z, u / u.sum(axis=0, keepdims=True)",
        feedback="normalised over the wrong axis",
    ),
    dict(
        exercise="11.2",
        name="pathwise consistency expected under slip",
        old='answer_11_2 = "b"',
        new='answer_11_2 = "a"',
        feedback="with slip the next state is random",
    ),
    dict(
        exercise="11.2",
        name="soft values believed biased under slip",
        old='answer_11_2 = "b"',
        new='answer_11_2 = "c"',
        feedback="has mean zero given (s, a)",
    ),
    dict(
        exercise="11.3",
        name="bootstrap detached, as in a TD target",
        old="+ gamma**d * values[states[:, -1]]",
        new="+ gamma**d * values[states[:, -1]].detach()",
        feedback="you detached the bootstrap value V(s_d)",
    ),
    dict(
        exercise="11.3",
        name="entropy bonus with the wrong sign",
        old="rewards - alpha * log_pi",
        new="rewards + alpha * log_pi",
        feedback="your entropy term has the wrong sign",
    ),
    dict(
        exercise="11.3",
        name="bootstrap discounted by gamma^(d-1)",
        old="+ gamma**d * values[states[:, -1]]",
        new="+ gamma ** (d - 1) * values[states[:, -1]]",
        feedback="discounted by gamma^(d-1)",
    ),
    dict(
        exercise="11.3",
        name="log pi read at the next states",
        old="log_pi[states[:, :-1], actions]",
        new="log_pi[states[:, 1:], actions]",
        feedback="you read log pi at the NEXT states",
    ),
    dict(
        exercise="11.3",
        name="rewards not discounted",
        old="(discounts * soft_rewards).sum(dim=1)",
        new="soft_rewards.sum(dim=1)",
        feedback="your rewards are not discounted",
    ),
    dict(
        exercise="11.3",
        name="the mean error squared",
        old="return 0.5 * (consistency**2).mean()",
        new="return 0.5 * consistency.mean() ** 2",
        feedback="you squared the MEAN consistency error",
    ),
    dict(
        exercise="11.3",
        name="all d + 1 states indexed with d actions",
        old="log_pi[states[:, :-1], actions]",
        new="log_pi[states, actions]",
        feedback="the policy terms use states[:, :-1]",
    ),
    dict(
        exercise="11.4",
        name="critic target from the online critics",
        old="next_q = torch.min(*agent.q_target(batch.next_obs))",
        new="next_q = torch.min(*agent.q_net(batch.next_obs))",
        feedback="your critic target uses the ONLINE critics",
    ),
    dict(
        exercise="11.4",
        name="V(s') without the entropy term",
        old="(next_probs * (next_q - alpha * next_log_probs)).sum(dim=-1)",
        new="(next_probs * next_q).sum(dim=-1)",
        feedback="your V(s') has no entropy term",
    ),
    dict(
        exercise="11.4",
        name="the actor backpropagates into the critics",
        old="min_q = torch.min(q1, q2).detach()",
        new="min_q = torch.min(q1, q2)",
        feedback="J_pi moved the critics",
    ),
    dict(
        exercise="11.4",
        name="temperature loss with the wrong sign",
        old="alpha_loss = (agent.log_alpha.exp() * (entropy - agent.target_entropy)).mean()",
        new="alpha_loss = (agent.log_alpha.exp() * (agent.target_entropy - entropy)).mean()",
        feedback="your temperature loss has the wrong sign",
    ),
    dict(
        exercise="11.4",
        name="target critics never updated",
        old="polyak_update(agent.q_target, agent.q_net, tau)",
        new="pass",
        feedback="your step did not move the target critics",
    ),
    dict(
        exercise="11.5",
        name="expert term with the wrong sign",
        old="expert_term = -reward[is_expert].mean()",
        new="expert_term = reward[is_expert].mean()",
        feedback="your expert term has the wrong sign",
    ),
    dict(
        exercise="11.5",
        name="next value detached, as in a TD target",
        old="future = gamma * (1.0 - terminated) * next_v",
        new="future = gamma * (1.0 - terminated) * next_v.detach()",
        feedback="you detached next_v",
    ),
    dict(
        exercise="11.5",
        name="terminal mask dropped",
        old="future = gamma * (1.0 - terminated) * next_v",
        new="future = gamma * next_v",
        feedback="your implied reward ignores `terminated`",
    ),
    dict(
        exercise="11.5",
        name="chi^2 over the expert rows only",
        old="chi2_term = (reward**2).mean() / (4.0 * chi2_alpha)",
        new="chi2_term = (reward[is_expert] ** 2).mean() / (4.0 * chi2_alpha)",
        feedback="your chi^2 term averages over the expert rows only",
    ),
    dict(
        exercise="11.5",
        name="value term V(s) alone (the paper's (1 - gamma) E[V(s0)] read as mean V)",
        old="value_term = (v - future).mean()",
        new="value_term = v.mean()",
        feedback="your value term is mean(v) alone",
    ),
]
