"""Grader tests of course_utils.checks.ch09: accept correct answers, name each typical mistake."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from course_utils.checks import ExerciseError, ExerciseNotAttempted
from course_utils.checks.ch09 import (
    check_gcl_cost_loss,
    check_log_importance_weights,
    check_sample_irl_gradient,
    check_self_normalized_estimate,
    reference_gcl_cost_loss,
    reference_log_importance_weights,
    reference_sample_irl_gradient,
    reference_self_normalized_estimate,
)

# ------------------------------------------------------------------ a student's answers, and mistakes


def weights(rewards, log_probs, *, mode="ok"):
    """The solution of Exercise 9.1, with switches that reproduce typical mistakes."""
    R, L = rewards.sum(axis=1), log_probs.sum(axis=1)
    return {
        "ok": R - L,
        "no_log_probs": R,
        "plus": R + L,
        "flipped": L - R,
        "exp": np.exp(R - L),
        "mean": (rewards - log_probs).mean(axis=1),
        "axis0": (rewards - log_probs).sum(axis=0),
    }[mode]


def estimate(log_w, values, *, mode="ok", ess_mode="ok"):
    """The solution of Exercise 9.2, with mistakes."""
    M = len(log_w)
    if mode == "overflow":
        w = np.exp(log_w)
        w_bar = w / w.sum()
    else:
        w_bar = np.exp(log_w - logsumexp(log_w))
    est = np.tensordot(w_bar, values, axes=(0, 0))
    if mode == "unnormalised":
        est = np.tensordot(np.exp(log_w), values, axes=(0, 0)) / M
    elif mode == "plain":
        est = values.mean(axis=0)
    ess = {
        "ok": 1 / np.sum(w_bar**2),
        "inverted": np.sum(w_bar**2),
        "M": float(M),
        "fraction": 1 / np.sum(w_bar**2) / M,
    }[ess_mode]
    return est, ess


def gradient(
    theta,
    features,
    expert_states,
    sample_states,
    sample_actions,
    sampler_policy,
    *,
    sign=1.0,
    weights_mode="snis",
    log_probs="sampler",
    sum_demos=False,
):
    """The solution of Exercise 9.3, with mistakes."""
    M, T = sample_states.shape
    pi = (
        sampler_policy
        if sampler_policy.ndim == 3
        else np.broadcast_to(sampler_policy, (T, *sampler_policy.shape))
    )
    lp = {
        "sampler": np.log(pi[np.arange(T), sample_states, sample_actions]),
        "step0": np.log(pi[0][sample_states, sample_actions]),
        "uniform": np.full((M, T), -np.log(pi.shape[-1])),
        "none": np.zeros((M, T)),
    }[log_probs]
    log_w = ((features @ theta)[sample_states] - lp).sum(axis=1)
    counts = features[sample_states].sum(axis=1)
    if weights_mode == "snis":
        w = np.exp(log_w - logsumexp(log_w))
    elif weights_mode == "unnormalised":
        w = np.exp(log_w) / M
    else:
        w = np.full(M, 1 / M)
    demo = features[expert_states].sum(axis=1)
    demo = demo.sum(axis=0) if sum_demos else demo.mean(axis=0)
    return sign * (demo - w @ counts)


def loss(demo_costs, sample_costs, sample_log_probs, *, mode="ok"):
    """The solution of Exercise 9.4, with mistakes."""
    C_demo = demo_costs.sum(1).mean()
    C, L = sample_costs.sum(1), sample_log_probs.sum(1)
    M = C.shape[0]
    lse = torch.logsumexp
    return {
        "ok": lambda: C_demo + lse(-C - L, 0) - np.log(M),
        "minus_logz": lambda: C_demo - (lse(-C - L, 0) - np.log(M)),
        "no_log_probs": lambda: C_demo + lse(-C, 0) - np.log(M),
        "plus_log_probs": lambda: C_demo + lse(-C + L, 0) - np.log(M),
        "plain": lambda: C_demo - C.mean(),
        "no_log_m": lambda: C_demo + lse(-C - L, 0),
        "naive": lambda: C_demo + torch.log(torch.exp(-C - L).mean()),
        "detached": lambda: torch.tensor(float(C_demo + lse(-C - L, 0) - np.log(M))),
    }[mode]()


def with_options(fn, **options):
    def wrapped(*args, **kwargs):
        return fn(*args, **kwargs, **options)

    wrapped.__name__ = fn.__name__
    return wrapped


def not_attempted(*args, **kwargs):
    raise NotImplementedError("Exercise 9.x: replace this line with your code")


# ------------------------------------------------------------------ accept


@pytest.mark.parametrize(
    "check, fn",
    [
        (check_log_importance_weights, reference_log_importance_weights),
        (check_log_importance_weights, weights),
        (check_self_normalized_estimate, reference_self_normalized_estimate),
        (check_self_normalized_estimate, estimate),
        (check_sample_irl_gradient, reference_sample_irl_gradient),
        (check_sample_irl_gradient, gradient),
        (check_gcl_cost_loss, reference_gcl_cost_loss),
        (check_gcl_cost_loss, loss),
    ],
)
def test_checks_accept_correct_answers(check, fn, capsys):
    check(fn)
    out = capsys.readouterr().out
    assert out.startswith("Exercise 9.") and "passed" in out and out.count("\n") == 1


@pytest.mark.parametrize(
    "check",
    [
        check_log_importance_weights,
        check_self_normalized_estimate,
        check_sample_irl_gradient,
        check_gcl_cost_loss,
    ],
)
def test_not_attempted(check):
    with pytest.raises(ExerciseNotAttempted):
        check(not_attempted)


# ------------------------------------------------------------------ reject, with specific feedback


@pytest.mark.parametrize(
    "mode, message",
    [
        ("no_log_probs", "did not divide by the sampler's probability"),
        ("plus", "multiplied by the sampler's probability instead of dividing"),
        ("flipped", "the sign is flipped"),
        ("exp", "return the log-weights, not the weights"),
        ("mean", "you averaged over the time steps"),
        ("axis0", "one entry per time step"),
    ],
)
def test_weights_mistakes(mode, message):
    with pytest.raises(ExerciseError, match=message):
        check_log_importance_weights(with_options(weights, mode=mode))


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(mode="unnormalised"), "the weights are not normalised"),
        (dict(mode="plain"), "you ignored the importance weights"),
        (dict(mode="overflow"), "(?i)subtract the largest log-weight"),
        (dict(ess_mode="inverted"), "the ESS is inverted"),
        (dict(ess_mode="M"), "not M"),
        (dict(ess_mode="fraction"), "you returned ESS / M"),
    ],
)
def test_estimate_mistakes(options, message):
    with pytest.raises(ExerciseError, match=message):
        check_self_normalized_estimate(with_options(estimate, **options))


def test_estimate_must_return_a_pair():
    with pytest.raises(ExerciseError, match=r"return the tuple \(estimate, ESS\)"):
        check_self_normalized_estimate(lambda log_w, values: estimate(log_w, values)[0])


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(sign=-1.0), "the gradient has the wrong sign"),
        (dict(weights_mode="plain"), "you ignored the importance weights"),
        (dict(weights_mode="unnormalised"), "the importance weights are not normalised"),
        (dict(log_probs="step0"), "use pi_t at step t"),
        (dict(log_probs="uniform"), "do not use the sampler's log-probabilities"),
        (dict(log_probs="none"), "do not use the sampler's log-probabilities"),
        (dict(sum_demos=True), "average them"),
    ],
)
def test_gradient_mistakes(options, message):
    with pytest.raises(ExerciseError, match=message):
        check_sample_irl_gradient(with_options(gradient, **options))


@pytest.mark.parametrize(
    "mode, message",
    [
        ("minus_logz", "log Z enters the negative log-likelihood with a plus sign"),
        ("no_log_probs", "you left out the log-probabilities"),
        ("plus_log_probs", "it does not multiply"),
        ("plain", "plain average of the sample costs"),
        ("no_log_m", "subtract log M"),
        ("naive", "torch.logsumexp"),
        ("detached", "carries no gradient"),
    ],
)
def test_loss_mistakes(mode, message):
    with pytest.raises(ExerciseError, match=message):
        check_gcl_cost_loss(with_options(loss, mode=mode))


def test_wrong_shapes_and_crashes_are_reported():
    with pytest.raises(ExerciseError, match="raised ZeroDivisionError"):
        check_log_importance_weights(lambda r, lp: 1 / 0)
    with pytest.raises(ExerciseError, match="returned None"):
        check_sample_irl_gradient(lambda *args: None)
    with pytest.raises(ExerciseError, match="Expected a single number"):
        check_gcl_cost_loss(lambda d, s, lp: d.sum(1))


# ------------------------------------------------------------------ float32 answers


def test_float32_answers_are_judged_at_float32_precision(capsys):
    def estimate32(log_w, values):  # torch.softmax subtracts the maximum: exact in float32
        w_bar = torch.softmax(torch.as_tensor(log_w, dtype=torch.float32), dim=0)
        values = torch.as_tensor(values, dtype=torch.float32)
        return torch.tensordot(w_bar, values, dims=([0], [0])), 1.0 / (w_bar**2).sum()

    def estimate32_lse(log_w, values):  # the solution's idiom: its logsumexp rounds near 1000
        lw = torch.as_tensor(log_w, dtype=torch.float32)
        w_bar = torch.exp(lw - torch.logsumexp(lw, dim=0))
        values = torch.as_tensor(values, dtype=torch.float32)
        return torch.tensordot(w_bar, values, dims=([0], [0])), 1.0 / (w_bar**2).sum()

    def loss32(demo_costs, sample_costs, sample_log_probs):
        log_w = -(sample_costs.float() + sample_log_probs.float()).sum(dim=1)
        log_z = torch.logsumexp(log_w, dim=0) - np.log(log_w.shape[0])
        return demo_costs.float().sum(dim=1).mean() + log_z

    def weights32(rewards, log_probs):
        return np.float32(rewards).sum(axis=1) - np.float32(log_probs).sum(axis=1)

    for check, fn in [
        (check_self_normalized_estimate, estimate32),
        (check_self_normalized_estimate, estimate32_lse),
        (check_gcl_cost_loss, loss32),
        (check_log_importance_weights, weights32),
    ]:
        check(fn)
        assert "passed" in capsys.readouterr().out


def test_a_float32_gradient_is_accepted_with_a_float32_rounded_sampler(capsys):
    def gradient32(theta, features, expert_states, sample_states, sample_actions, sampler_policy):
        return gradient(
            theta,
            np.float32(features),
            expert_states,
            sample_states,
            sample_actions,
            np.float32(sampler_policy),
        ).astype(np.float32)

    check_sample_irl_gradient(gradient32)
    assert capsys.readouterr().out.startswith("Exercise 9.3 passed")


def test_the_loss_needs_gradients_into_both_cost_tensors():
    with pytest.raises(ExerciseError, match="no \\(or a wrong\\) gradient to demo_costs"):
        check_gcl_cost_loss(lambda d, s, lp: loss(d.detach(), s, lp))
    with pytest.raises(ExerciseError, match="no \\(or a wrong\\) gradient to sample_costs"):
        check_gcl_cost_loss(lambda d, s, lp: loss(d, s.detach(), lp))


# ------------------------------------------------------------------ Exercise 9.5 (build-it)


def test_cost_update_accepts_the_reference_and_is_not_attempted_when_raising(capsys):
    from course_utils.checks.ch09 import check_gcl_cost_update, reference_gcl_cost_update

    check_gcl_cost_update(reference_gcl_cost_update)
    assert capsys.readouterr().out.startswith("Exercise 9.5 passed")
    with pytest.raises(ExerciseNotAttempted):
        check_gcl_cost_update(not_attempted)


def test_cost_update_names_each_mistake():
    from course_utils.checks import ch09

    for mistake in ch09.GCL_COST_UPDATE.mistakes:
        with pytest.raises(ExerciseError) as info:
            ch09.check_gcl_cost_update(mistake.fn)
        text = str(info.value)
        # the order mistakes (no step) are diagnosed as parameters that did not move
        assert mistake.message[:40] in text or "did not change" in text, (mistake.message, text)


def test_cost_update_must_return_the_loss():
    from course_utils import gcl
    from course_utils.checks.ch09 import check_gcl_cost_update

    def no_return(*args):
        gcl.gcl_cost_update(*args)

    with pytest.raises(ExerciseError, match="return the loss"):
        check_gcl_cost_update(no_return)
