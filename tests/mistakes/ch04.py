"""Plausible mistakes in chapter 04 (data for tests/test_mistakes.py)."""

NOTEBOOK = "solutions/04_control_as_inference.ipynb"
_BACKWARD = (  # the backward pass of the solution of Exercise 4.2
    "V[-1] = alpha * logsumexp(R / alpha, axis=1)\n"
    "    for t in range(horizon - 2, -1, -1):\n"
    "        # alpha log E_{s'}[exp(V_{t+1}(s') / alpha)], then the soft max over actions\n"
    "        Q[t] = R + alpha * logsumexp(log_P + V[t + 1] / alpha, axis=2)\n"
    "        V[t] = alpha * logsumexp(Q[t] / alpha, axis=1)"
)
MISTAKES = [
    dict(
        exercise="4.1",
        name="factors added instead of multiplied",
        old="beta_sa[t] = np.exp(R) * (P @ beta_s[t + 1])",
        new="beta_sa[t] = np.exp(R) + (P @ beta_s[t + 1])",
        feedback="in probability space the factors MULTIPLY",
    ),
    dict(
        exercise="4.1",
        name="last message set to one",
        old="beta_sa[-1] = np.exp(R)",
        new="beta_sa[-1] = np.ones((S, A))",
        feedback="the last message is beta_{T-1}(s, a)",
    ),
    dict(
        exercise="4.1",
        name="expectation indexes the current state",
        old="(P @ beta_s[t + 1])",
        new='np.einsum("sap,s->sa", P, beta_s[t + 1])',
        feedback="uses the value of the CURRENT state",
    ),
    dict(
        exercise="4.2",
        name="variational backup E[V] instead of log E[exp V]",
        old="Q[t] = R + alpha * logsumexp(log_P + V[t + 1] / alpha, axis=2)",
        new="Q[t] = R + P @ V[t + 1]",
        feedback="you used Q = r + E_{s'}[V_{t+1}(s')]",
    ),
    dict(
        exercise="4.2",
        name="next-state backup not multiplied by alpha",
        old="Q[t] = R + alpha * logsumexp(log_P",
        new="Q[t] = R + logsumexp(log_P",
        feedback="you did not multiply the next-state backup by alpha",
    ),
    dict(
        exercise="4.3",
        name="optimality factor missing",
        old="log_alpha[t][:, None, None] + R[:, :, None] + log_P",
        new="log_alpha[t][:, None, None] + log_P",
        feedback="the optimality factor p(O_t | s_t, a_t) = exp(r(s_t, a_t)) is missing",
    ),
    dict(
        exercise="4.3",
        name="max instead of logsumexp",
        old="log_alpha[t + 1] = logsumexp(scores, axis=(0, 1))",
        new="log_alpha[t + 1] = np.max(scores, axis=(0, 1))",
        feedback="you took a max where the forward message SUMS",
    ),
    dict(
        exercise="4.3",
        name="alpha_0 = 1 instead of p0",
        old="log_alpha[0] = np.log(p0)",
        new="log_alpha[0] = 0.0",
        feedback="alpha_0 must be the initial distribution",
    ),
    dict(
        exercise="4.2",
        name="hard value iteration (max over actions and E[V])",
        old=_BACKWARD,
        new=(
            "V[-1] = R.max(axis=1)\n"
            "    for t in range(horizon - 2, -1, -1):\n"
            "        Q[t] = R + P @ V[t + 1]\n"
            "        V[t] = Q[t].max(axis=1)"
        ),
        feedback="this is hard value iteration",
    ),
    dict(
        exercise="4.2",
        name="the slides' action prior read literally (log int exp(Q) + log p(a|s))",
        old=_BACKWARD,
        new=_BACKWARD.replace(", axis=1)", ", axis=1) + alpha * np.log(1 / A)"),
        feedback='Slide erratum: "The Action Prior" misplaces a parenthesis',
    ),
    dict(
        exercise="4.3",
        name="the slides' forward message: action posterior normalised per state",
        old="log_alpha[t][:, None, None] + R[:, :, None] + log_P",
        new="log_alpha[t][:, None, None] + (R - logsumexp(R, axis=1, keepdims=True))[:, :, None] + log_P",
        feedback="lacks the factor p(O_t | s_t)",
    ),
    dict(
        exercise="4.4",
        name="the agent's marginals: the policy pushed through the true dynamics",
        old='marginals[t + 1] = np.einsum("s,sa,sap->p", marginals[t], pi[t], posterior_dynamics)',
        new='marginals[t + 1] = np.einsum("s,sa,sap->p", marginals[t], pi[t], P)',
        feedback="you pushed the policy forward with the TRUE dynamics",
    ),
    dict(
        exercise="4.4",
        name="starts from p0 instead of p(s_0 | O)",
        old="marginals[0] = np.exp(log_start - logsumexp(log_start))",
        new="marginals[0] = p0",
        feedback="your marginals start from p0",
    ),
    dict(
        exercise="4.4",
        name="the variational backward pass (chapter 05) instead of the exact messages",
        old="Q, V = backward_log_messages(P, R, horizon, alpha)",
        new="Q, V = backward_messages(P, R, horizon, alpha=alpha)",
        feedback="you used the variational backward pass",
    ),
    dict(
        exercise="4.4",
        name="pi(s | a) as the slides write it: the policy normalised over states",
        old="pi = np.exp((Q - V[..., None]) / alpha)",
        new="pi = np.exp((Q - alpha * logsumexp(Q / alpha, axis=-2, keepdims=True)) / alpha)",
        feedback="Slide erratum: the slides write pi(s_t | a_t)",
    ),
    dict(
        exercise="4.5",
        name="predicts that the temperature alone decides",
        old='answer_4_5 = "c"',
        new='answer_4_5 = "a"',
        feedback="the horizon decides how many steps the agent will spend at the goal",
    ),
    dict(
        exercise="4.5",
        name="predicts more wandering with more time",
        old='answer_4_5 = "c"',
        new='answer_4_5 = "b"',
        feedback="More steps left make the goal worth more",
    ),
]
