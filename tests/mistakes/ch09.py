"""Plausible mistakes in the exercises of chapter 09, each with the feedback its check must give."""

NOTEBOOK = "solutions/09_sample_based_irl.ipynb"
MISTAKES = [
    # Exercise 9.1: log importance weights
    dict(
        exercise="9.1",
        name="forgets to divide by the sampler's probability",
        old="return rewards.sum(axis=1) - log_probs.sum(axis=1)",
        new="return rewards.sum(axis=1)",
        feedback="did not divide by the sampler's probability",
    ),
    dict(
        exercise="9.1",
        name="multiplies by the sampler's probability",
        old="return rewards.sum(axis=1) - log_probs.sum(axis=1)",
        new="return rewards.sum(axis=1) + log_probs.sum(axis=1)",
        feedback="multiplied by the sampler's probability instead of dividing",
    ),
    dict(
        exercise="9.1",
        name="averages the per-step terms over time",
        old="return rewards.sum(axis=1) - log_probs.sum(axis=1)",
        new="return (rewards - log_probs).mean(axis=1)",
        feedback="you averaged over the time steps",
    ),
    dict(
        exercise="9.1",
        name="returns the weights instead of their logarithm",
        old="return rewards.sum(axis=1) - log_probs.sum(axis=1)",
        new="return np.exp(rewards.sum(axis=1) - log_probs.sum(axis=1))",
        feedback="return the log-weights, not the weights",
    ),
    # Exercise 9.2: self-normalised estimate and ESS
    dict(
        exercise="9.2",
        name="does not normalise the importance weights",
        old="w_bar = np.exp(log_w - logsumexp(log_w))",
        new="w_bar = np.exp(log_w) / len(log_w)",
        feedback="the weights are not normalised",
    ),
    dict(
        exercise="9.2",
        name="exponentiates without subtracting the maximum (overflow)",
        old="w_bar = np.exp(log_w - logsumexp(log_w))",
        new="w_bar = np.exp(log_w) / np.exp(log_w).sum()",
        feedback="subtract the largest log-weight",
    ),
    dict(
        exercise="9.2",
        name="inverts the effective sample size",
        old="    ess = 1.0 / np.sum(w_bar**2)",
        new="    ess = np.sum(w_bar**2)",
        feedback="the ESS is inverted",
    ),
    dict(
        exercise="9.2",
        name="reports the number of samples as the ESS",
        old="    ess = 1.0 / np.sum(w_bar**2)",
        new="    ess = len(log_w)",
        feedback="sum_j w_j^2, not M",
    ),
    dict(
        exercise="9.2",
        name="ignores the importance weights (plain average)",
        old="w_bar = np.exp(log_w - logsumexp(log_w))",
        new="w_bar = np.full(len(log_w), 1.0 / len(log_w))",
        feedback="you ignored the importance weights",
    ),
    # Exercise 9.3: the sample-based MaxEnt IRL gradient
    dict(
        exercise="9.3",
        name="gradient with the wrong sign",
        old="return expert - model",
        new="return model - expert",
        feedback="the gradient has the wrong sign",
    ),
    dict(
        exercise="9.3",
        name="plain average of the lagging policy's samples (no importance weights)",
        old="log_w = log_importance_weights(rewards, log_probs)",
        new="log_w = np.zeros(len(sample_states))",
        feedback="you ignored the importance weights",
    ),
    dict(
        exercise="9.3",
        name="uses the step-0 policy of the sampler at every step",
        old="log_probs = np.log(pi[np.arange(T), sample_states, sample_actions])",
        new="log_probs = np.log(pi[0][sample_states, sample_actions])",
        feedback="use pi_t at step t",
    ),
    dict(
        exercise="9.3",
        name="uses the uniform action prior instead of the sampler's log-probabilities",
        old="log_probs = np.log(pi[np.arange(T), sample_states, sample_actions])",
        new="log_probs = np.full(sample_states.shape, -np.log(pi.shape[-1]))",
        feedback="do not use the sampler's log-probabilities",
    ),
    dict(
        exercise="9.3",
        name="sums the demonstrations' feature counts over demonstrations",
        old="expert = features[expert_states].sum(axis=1).mean(axis=0)",
        new="expert = features[expert_states].sum(axis=1).sum(axis=0)",
        feedback="average them",
    ),
    # Exercise 9.4: the guided cost learning loss
    dict(
        exercise="9.4",
        name="subtracts log Z instead of adding it",
        old="return demo_costs.sum(dim=1).mean() + log_z",
        new="return demo_costs.sum(dim=1).mean() - log_z",
        feedback="log Z enters the negative log-likelihood with a plus sign",
    ),
    dict(
        exercise="9.4",
        name="leaves the sampler's log-probabilities out of the weights",
        old="log_w = -sample_costs.sum(dim=1) - sample_log_probs.sum(dim=1)",
        new="log_w = -sample_costs.sum(dim=1)",
        feedback="you left out the log-probabilities",
    ),
    dict(
        exercise="9.4",
        name="estimates Z with a sum instead of an average",
        old="log_z = torch.logsumexp(log_w, dim=0) - np.log(log_w.shape[0])",
        new="log_z = torch.logsumexp(log_w, dim=0)",
        feedback="subtract log M",
    ),
    dict(
        exercise="9.4",
        name="plain average of the sample costs for log Z",
        old="log_z = torch.logsumexp(log_w, dim=0) - np.log(log_w.shape[0])",
        new="log_z = -sample_costs.sum(dim=1).mean()",
        feedback="plain average of the sample costs",
    ),
    dict(
        exercise="9.4",
        name="computes log Z with exp and log (overflow)",
        old="log_z = torch.logsumexp(log_w, dim=0) - np.log(log_w.shape[0])",
        new="log_z = torch.log(torch.exp(log_w).mean())",
        feedback="torch.logsumexp",
    ),
]
