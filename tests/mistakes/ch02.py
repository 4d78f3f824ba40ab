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
        name="variance divided by N (numpy's default ddof=0)",
        old="variance = estimates.var(0)",
        new="variance = estimates.var(0, unbiased=False)",
        feedback="your variance divides by N: the sample variance of N estimates divides by N - 1",
    ),
    dict(
        exercise="2.3",
        name="standard deviation of one estimate instead of the standard error of the mean",
        old="std_error = (variance / n).sqrt()",
        new="std_error = variance.sqrt()",
        feedback="your std_error is the standard deviation of ONE estimate",
    ),
    dict(
        exercise="2.3",
        name="standard error without the square root",
        old="std_error = (variance / n).sqrt()",
        new="std_error = variance / n",
        feedback="your std_error is variance / N, which is a variance",
    ),
    dict(
        exercise="2.3",
        name="signed z",
        old="z = (mean - exact).abs() / std_error",
        new="z = (mean - exact) / std_error",
        feedback="your z is signed; it is a distance",
    ),
    dict(
        exercise="2.3",
        name="only the first part of a tuple estimate (grad_mu)",
        old="parts = estimate if isinstance(estimate, (tuple, list)) else (estimate,)",
        new="parts = estimate[:1] if isinstance(estimate, (tuple, list)) else (estimate,)",
        feedback="did you keep only the first part of the estimator's output?",
    ),
    dict(
        exercise="2.4",
        name="a constant changes nothing (confuses the mean with the spread)",
        old='offset_prediction = "c"',
        new='offset_prediction = "a"',
        feedback="the MEAN of the estimates does not change",
    ),
    dict(
        exercise="2.4",
        name="both estimators grow like C^2",
        old='offset_prediction = "c"',
        new='offset_prediction = "b"',
        feedback="the derivative of a constant is zero",
    ),
    dict(
        exercise="2.4",
        name="linear growth in |C|",
        old='offset_prediction = "c"',
        new='offset_prediction = "d"',
        feedback="its variance is quadratic in C",
    ),
    dict(
        exercise="2.5",
        name="baseline includes the sample itself",
        old="baseline = (r.sum() - r) / (m - 1)",
        new="baseline = r.mean()",
        feedback="your baseline is the mean of all M rewards, including r(k_j) itself",
    ),
    dict(
        exercise="2.5",
        name="leave-one-out mean divides by M",
        old="baseline = (r.sum() - r) / (m - 1)",
        new="baseline = (r.sum() - r) / m",
        feedback="your leave-one-out baseline divides by M",
    ),
    dict(
        exercise="2.5",
        name="sum over the samples instead of the mean",
        old="return ((r - baseline)[:, None] * scores).mean(0)",
        new="return ((r - baseline)[:, None] * scores).sum(0)",
        feedback="you summed over the M samples",
    ),
]
