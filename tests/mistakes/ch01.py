"""Plausible mistakes in chapter 01 (data for tests/test_mistakes.py)."""

NOTEBOOK = "solutions/01_variational_inference.ipynb"
MISTAKES = [
    dict(
        exercise="1.1",
        name="log term with the wrong sign",
        old="return (log_std_p - log_std_q +",
        new="return (log_std_q - log_std_p +",
        feedback="the log term has the wrong sign",
    ),
    dict(
        exercise="1.1",
        name="forgot the -1/2",
        old="+ mean_term) - 0.5).sum(dim=-1)",
        new="+ mean_term)).sum(dim=-1)",
        feedback="you left out the -1/2 per dimension",
    ),
    dict(
        exercise="1.1",
        name="sigma where the variance belongs",
        old=(
            "    var_ratio = torch.exp(2 * (log_std_q - log_std_p))  # sigma_q^2 / sigma_p^2\n"
            "    mean_term = (mu_q - mu_p) ** 2 / torch.exp(2 * log_std_p)  # (mu_q - mu_p)^2 / sigma_p^2"
        ),
        new=(
            "    var_ratio = torch.exp(log_std_q - log_std_p)\n"
            "    mean_term = (mu_q - mu_p) ** 2 / torch.exp(log_std_p)  # (mu_q - mu_p)^2 / sigma_p^2"
        ),
        feedback="you used sigma where the variance sigma^2 belongs",
    ),
    dict(
        exercise="1.2",
        name="entropy term missing",
        old="return log_joint(x, z).mean(dim=0) + entropy",
        new="return log_joint(x, z).mean(dim=0)",
        feedback="the entropy term H(q_i) is missing",
    ),
    dict(
        exercise="1.2",
        name="sum over samples instead of mean",
        old="log_joint(x, z).mean(dim=0)",
        new="log_joint(x, z).sum(dim=0)",
        feedback="you summed over the samples",
    ),
    dict(
        exercise="1.2",
        name="log_std used as the standard deviation",
        old="z = mu + torch.exp(log_std) * eps",
        new="z = mu + log_std * eps",
        feedback="you used log_std as the standard deviation in z",
    ),
    dict(
        exercise="1.3",
        name="gradient descent instead of ascent",
        old="return (mu + lr * grad_mu).detach(), (log_std + lr * grad_log_std).detach()",
        new="return (mu - lr * grad_mu).detach(), (log_std - lr * grad_log_std).detach()",
        feedback="you stepped downhill",
    ),
    dict(
        exercise="1.3",
        name="mean of the ELBOs instead of their sum",
        old="elbo_fn(mu, log_std).sum()",
        new="elbo_fn(mu, log_std).mean()",
        feedback="times too small: you averaged the ELBO over the data points",
    ),
    dict(
        exercise="1.3",
        name="forgot to detach the new parameters",
        old="return (mu + lr * grad_mu).detach(), (log_std + lr * grad_log_std).detach()",
        new="return mu + lr * grad_mu, log_std + lr * grad_log_std",
        feedback="still requires grad",
    ),
    dict(
        exercise="1.2",
        name="entropy estimated by Monte Carlo (defensible, but not the closed form asked for)",
        old="return log_joint(x, z).mean(dim=0) + entropy",
        new="return (log_joint(x, z) - lvm.gaussian_log_prob(z, mu, log_std)).mean(dim=0)",
        feedback="That is valid in general",
    ),
    dict(
        exercise="1.3",
        name="step taken on sigma",
        old="(log_std + lr * grad_log_std).detach()",
        new="torch.log(log_std.exp() + lr * grad_log_std / log_std.exp()).detach()",
        feedback="gradient step on sigma instead of on log sigma",
    ),
    dict(
        exercise="1.2",
        name="entropy subtracted",
        old="entropy = (0.5 * math.log(2 * math.pi * math.e) + log_std).sum(dim=-1)",
        new="entropy = -(0.5 * math.log(2 * math.pi * math.e) + log_std).sum(dim=-1)",
        feedback="you subtracted the entropy",
    ),
    dict(
        exercise="1.2",
        name="entropy averaged over the latent dimensions",
        old="+ log_std).sum(dim=-1)",
        new="+ log_std).mean(dim=-1)",
        feedback="you averaged the entropy over the latent dimensions",
    ),
    dict(
        exercise="1.2",
        name="entropy of sigma instead of log sigma",
        old="+ log_std).sum(dim=-1)",
        new="+ torch.exp(log_std)).sum(dim=-1)",
        feedback="your entropy uses sigma = exp(log_std) where log sigma belongs",
    ),
    dict(
        exercise="1.2",
        name="entropy without the e",
        old="math.log(2 * math.pi * math.e)",
        new="math.log(2 * math.pi)",
        feedback="you left out the +1/2 that comes from the e",
    ),
    dict(
        exercise="1.4",
        name="a: the marginal variances",
        old='answer_1_4 = "b"',
        new='answer_1_4 = "a"',
        feedback="what minimizing the other direction, D_KL(p || q), does (moment matching)",
    ),
    dict(
        exercise="1.4",
        name="c: wider than the marginals",
        old='answer_1_4 = "b"',
        new='answer_1_4 = "c"',
        feedback="Covering p's mass is what D_KL(p || q) would ask for",
    ),
    dict(
        exercise="1.4",
        name="d: shifted means",
        old='answer_1_4 = "b"',
        new='answer_1_4 = "d"',
        feedback="the means are exact",
    ),
    dict(
        exercise="1.5",
        name="ELBO without the entropy",
        old="elbo = elbo_mc(log_joint, x, *q, eps)",
        new="elbo = log_joint(x, q[0] + torch.exp(q[1]) * eps).mean(dim=0)",
        feedback="the entropy H(q_i) is missing from your ELBO",
    ),
    dict(
        exercise="1.5",
        name="theta stepped on the ELBO of the first data point only",
        old="elbo.mean(), theta",
        new="elbo[0], theta",
        feedback="you stepped theta on the ELBO of one data point only",
    ),
    dict(
        exercise="1.5",
        name="gradient descent on theta",
        old="(p + lr_theta * g)",
        new="(p - lr_theta * g)",
        feedback="theta stepped downhill",
    ),
    dict(
        exercise="1.5",
        name="theta on the sum of the ELBOs",
        old="elbo.mean(), theta",
        new="elbo.sum(), theta",
        feedback="your theta step is N times too large",
    ),
    dict(
        exercise="1.5",
        name="-D log s dropped with the constants",
        old=" - x.shape[-1] * log_s",
        new="",
        feedback="lacks its normalizer -D log s",
    ),
    dict(
        exercise="1.5",
        name="the variance used as the noise standard deviation",
        old="/ torch.exp(2 * log_s) - x.shape[-1] * log_s",
        new="/ torch.exp(4 * log_s) - x.shape[-1] * 2 * log_s",
        feedback="you used the variance s^2 = exp(2 log_s) as the standard deviation",
    ),
]
