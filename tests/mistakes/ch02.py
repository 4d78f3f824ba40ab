"""Plausible mistakes in chapter 02 (data for tests/test_mistakes.py)."""

_SF_BODY = (
    "    std = log_std.exp()\n"
    "    with torch.no_grad():             # z_j and r(z_j) are numbers, not functions of phi\n"
    "        rewards = r(mu + eps * std)[:, None]          # (M, 1), broadcasts over d\n"
    "    score_mu = eps / std              # d log q / d mu      = (z - mu) / sigma^2\n"
    "    score_log_std = eps**2 - 1        # d log q / d log_std = (z - mu)^2 / sigma^2 - 1\n"
    "    return (rewards * score_mu).mean(0), (rewards * score_log_std).mean(0)\n"
)
_SURROGATE = (
    "    mu, log_std = mu.detach().requires_grad_(), log_std.detach().requires_grad_()\n"
    "    z = mu + eps * log_std.exp()\n"
    "    log_q = torch.distributions.Normal(mu, log_std.exp()).log_prob({z}).sum(-1)\n"
    "    return torch.autograd.grad((log_q * r(z)).mean(), (mu, log_std))\n"
)

NOTEBOOK = "solutions/02_gradient_estimators.ipynb"
MISTAKES = [
    dict(
        exercise="2.1",
        name="score of log_std misses the -1",
        old="score_log_std = eps**2 - 1",
        new="score_log_std = eps**2",
        feedback="your d/d log_std misses the -1",
    ),
    dict(
        exercise="2.1",
        name="sum over the samples instead of the mean",
        old="return (rewards * score_mu).mean(0), (rewards * score_log_std).mean(0)",
        new="return (rewards * score_mu).sum(0), (rewards * score_log_std).sum(0)",
        feedback="you summed over the M samples",
    ),
    dict(
        exercise="2.1",
        name="score of mu not divided by sigma",
        old="score_mu = eps / std",
        new="score_mu = eps",
        feedback="your d/d mu has the wrong scale",
    ),
    dict(
        exercise="2.1",
        name="slide literal: surrogate log q(z_j) r(z_j) with the reward left attached to the graph",
        old=(
            "    std = log_std.exp()\n"
            "    with torch.no_grad():  # z_j and r(z_j) are numbers, not functions of phi\n"
            "        rewards = r(mu + eps * std)[:, None]  # (M, 1), broadcasts over d\n"
            "    score_mu = eps / std  # d log q / d mu      = (z - mu) / sigma^2\n"
            "    score_log_std = eps**2 - 1  # d log q / d log_std = (z - mu)^2 / sigma^2 - 1\n"
            "    return (rewards * score_mu).mean(0), (rewards * score_log_std).mean(0)"
        ),
        new=(
            "    mu, log_std = mu.detach().requires_grad_(), log_std.detach().requires_grad_()\n"
            "    z = mu + eps * log_std.exp()\n"
            "    log_q = torch.distributions.Normal(mu, log_std.exp()).log_prob(z.detach()).sum(-1)\n"
            "    return torch.autograd.grad((log_q * r(z)).mean(), (mu, log_std))"
        ),
        feedback="r(z_j) is still attached to the graph",
    ),
    dict(
        exercise="2.1",
        name="slide literal: surrogate log q(z_j) r(z_j) with nothing detached",
        old=(
            "    std = log_std.exp()\n"
            "    with torch.no_grad():  # z_j and r(z_j) are numbers, not functions of phi\n"
            "        rewards = r(mu + eps * std)[:, None]  # (M, 1), broadcasts over d\n"
            "    score_mu = eps / std  # d log q / d mu      = (z - mu) / sigma^2\n"
            "    score_log_std = eps**2 - 1  # d log q / d log_std = (z - mu)^2 / sigma^2 - 1\n"
            "    return (rewards * score_mu).mean(0), (rewards * score_log_std).mean(0)"
        ),
        new=(
            "    mu, log_std = mu.detach().requires_grad_(), log_std.detach().requires_grad_()\n"
            "    z = mu + eps * log_std.exp()\n"
            "    log_q = torch.distributions.Normal(mu, log_std.exp()).log_prob(z).sum(-1)\n"
            "    return torch.autograd.grad((log_q * r(z)).mean(), (mu, log_std))"
        ),
        feedback="z_j and r(z_j) must be constants in the score function",
    ),
    dict(
        exercise="2.2",
        name="sum over the samples instead of the mean",
        old="objective = r(z).mean()",
        new="objective = r(z).sum()",
        feedback="you summed over the M samples",
    ),
    dict(
        exercise="2.2",
        name="gradient of the loss -J (descent direction)",
        old="objective = r(z).mean()",
        new="objective = -r(z).mean()",
        feedback="wrong sign: J(phi) = E[r] is maximized by gradient ASCENT",
    ),
    dict(
        exercise="2.2",
        name="sigma detached from log_std",
        old="z = mu + eps * log_std.exp()",
        new="z = mu + eps * log_std.exp().detach() + 0 * log_std",
        feedback="your gradient w.r.t. log_std is zero",
    ),
    dict(
        exercise="2.3",
        name="baseline includes the sample itself",
        old="baseline = (r.sum() - r) / (m - 1)",
        new="baseline = r.mean()",
        feedback="your baseline is the mean of all M rewards, including r(k_j) itself",
    ),
    dict(
        exercise="2.3",
        name="leave-one-out mean divides by M",
        old="baseline = (r.sum() - r) / (m - 1)",
        new="baseline = (r.sum() - r) / m",
        feedback="your leave-one-out baseline divides by M",
    ),
    dict(
        exercise="2.3",
        name="sum over the samples instead of the mean",
        old="return ((r - baseline)[:, None] * scores).mean(0)",
        new="return ((r - baseline)[:, None] * scores).sum(0)",
        feedback="you summed over the M samples",
    ),
]
