"""Grader tests of course_utils.checks.ch08: accept correct answers, name each typical mistake."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.checks import ExerciseError, ExerciseNotAttempted
from course_utils.checks.ch08 import (
    check_irl_gradient,
    check_maxent_irl_loop,
    check_visitation,
    reference_irl_gradient,
    reference_maxent_irl_loop,
    reference_state_action_visitation,
)
from course_utils.inference import backward_messages

# ------------------------------------------------------------------ a student's answers, and mistakes


def visitation(
    P,
    R,
    p0,
    horizon,
    alpha=1.0,
    *,
    start="p0",
    policy_time="t",
    normalise=True,
    weight_by_policy=True,
    optimistic=False,
    use_alpha=True,
    recursion_time="t",
    from_reward=False,
    dtype=np.float64,
):
    """The solution of Exercise 8.1, with switches that reproduce typical mistakes."""
    P, R, p0 = (np.asarray(x, dtype=dtype) for x in (P, R, p0))
    a = alpha if use_alpha else 1.0
    Q, V = backward_messages(P, R, horizon, alpha=a, optimistic=optimistic)
    Q, V = Q.astype(dtype), V.astype(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        pi = np.exp((Q - V[..., None]) / a) if normalise else np.exp(Q / a)
    if (
        from_reward
    ):  # the slides' "recursive solution": pi(a_t|s_t) proportional to exp(r(s_t, a_t))
        pi = np.broadcast_to(np.exp(R / a) / np.exp(R / a).sum(axis=1, keepdims=True), Q.shape)
    index = {
        "t": np.arange(horizon),
        "0": np.zeros(horizon, int),
        "reversed": np.arange(horizon)[::-1],
        "next": np.minimum(np.arange(horizon) + 1, horizon - 1),
        "last": np.full(horizon, horizon - 1),
    }[policy_time]
    pi = pi[index]
    recursion_index = {
        "t": np.arange(horizon),
        "0": np.zeros(horizon, int),
        "next": np.minimum(np.arange(horizon) + 1, horizon - 1),
    }[recursion_time]
    pi_recursion = pi[recursion_index]  # a time-index mistake made only in the forward recursion
    S = P.shape[0]
    D = np.empty((horizon, S), dtype=dtype)
    D[0] = (
        {"p0": p0, "uniform": np.full(S, 1 / S)}.get(start)
        if start != "moved"
        else np.einsum("s,sa,sap->p", p0, pi[0], P)
    )
    for t in range(horizon - 1):
        if weight_by_policy:
            D[t + 1] = np.einsum("s,sa,sap->p", D[t], pi_recursion[t], P)
        else:
            D[t + 1] = np.einsum("s,sap->p", D[t], P)
    with np.errstate(invalid="ignore"):
        return D[:, :, None] * pi


def gradient(
    theta,
    P,
    features,
    expert_states,
    p0,
    alpha=1.0,
    *,
    sign=1.0,
    divide=True,
    per_step=False,
    sum_demos=False,
    visitation_fn=visitation,
):
    """The solution of Exercise 8.2 (on top of a visitation function), with mistakes."""
    T = expert_states.shape[1]
    R = np.repeat((features @ theta)[:, None], P.shape[1], axis=1)
    mu = visitation_fn(P, R, p0, T, alpha)
    counts = features[expert_states].sum(axis=1)
    expert = counts.sum(axis=0) if sum_demos else counts.mean(axis=0)
    model = np.einsum("tsa,sk->k", mu, features)
    grad = sign * (expert - model)
    grad = grad / alpha if divide else grad
    return grad / T if per_step else grad


def loop(
    P,
    features,
    expert_states,
    p0,
    alpha=1.0,
    lr=0.01,
    n_iters=200,
    tol=1e-4,
    *,
    sign=1.0,
    early=True,
    extra=0,
    gradient_fn=gradient,
):
    """The solution of Exercise 8.3 (on top of a gradient function), with mistakes."""
    theta = np.zeros(features.shape[1])
    for _ in range(n_iters + extra):
        grad = gradient_fn(theta, P, features, expert_states, p0, alpha)
        if early and np.max(np.abs(grad)) < tol:
            break
        theta = theta + sign * lr * grad
    return theta


def with_options(fn, **options):
    def wrapped(*args, **kwargs):
        return fn(*args, **kwargs, **options)

    wrapped.__name__ = fn.__name__
    return wrapped


def not_attempted(exercise):
    def function(*args, **kwargs):
        raise NotImplementedError(f"Exercise {exercise}: replace this line with your code")

    return function


# ------------------------------------------------------------------ Exercise 8.1


@pytest.mark.parametrize(
    "answer",
    [reference_state_action_visitation, visitation, with_options(visitation, dtype=np.float32)],
    ids=["reference", "student", "student-float32"],
)
def test_check_visitation_accepts_correct_answers(answer, capsys):
    check_visitation(answer)
    out = capsys.readouterr().out
    assert out.startswith("Exercise 8.1 passed:") and out.count("\n") == 1


@pytest.mark.parametrize(
    "options, message",
    [
        ({"normalise": False}, r"each mu_t must be a distribution over \(s, a\)"),
        ({"weight_by_policy": False}, "sums to A\\^t: the forward recursion must weight"),
        (
            {"start": "uniform"},
            "starts from the uniform distribution; the initial distribution matters",
        ),
        ({"start": "moved"}, "D_0 is p0 already moved one step"),
        ({"policy_time": "0"}, "used the first step's policy pi_0 at every step"),
        ({"policy_time": "reversed"}, "time index of your policy is reversed"),
        ({"policy_time": "next"}, "one step ahead"),
        ({"optimistic": True}, "optimistic"),
        ({"use_alpha": False}, "ignores the temperature"),
        (
            {"recursion_time": "0"},
            "in the forward recursion .*used the first step's policy pi_0 at every step",
        ),
        (
            {"recursion_time": "next"},
            r"in the forward recursion .*one step ahead \(pi_\{t\+1\} at step t\)",
        ),
        ({"from_reward": True}, r"Slide erratum: .*Your policy comes from the rewards R"),
        ({"policy_time": "last"}, r"Slide erratum: .*the last step's policy"),
    ],
    ids=[
        "unnormalised",
        "no-policy-weights",
        "uniform-start",
        "moved-start",
        "stationary-policy",
        "reversed-time",
        "off-by-one",
        "optimistic",
        "no-temperature",
        "stationary-policy-in-recursion",
        "off-by-one-in-recursion",
        "slide-erratum-policy-from-R",
        "last-step-policy-is-the-erratum",
    ],
)
def test_check_visitation_names_typical_mistakes(options, message):
    with pytest.raises(ExerciseError, match=message):
        check_visitation(with_options(visitation, **options))


def test_check_visitation_rejects_shape_nan_and_global_normalisation():
    with pytest.raises(ExerciseError, match=r"returned state marginals D_t\(s\), shape \(T, S\)"):
        check_visitation(lambda P, R, p0, T, alpha=1.0: visitation(P, R, p0, T, alpha).sum(axis=2))
    with pytest.raises(ExerciseError, match=r"has shape \(\d+, \d+, \d+\), expected"):
        check_visitation(
            lambda P, R, p0, T, alpha=1.0: visitation(P, R, p0, T, alpha).transpose(0, 2, 1)
        )
    with pytest.raises(ExerciseError, match=r"non-finite value.*the first is NaN"):
        check_visitation(lambda P, R, p0, T, alpha=1.0: visitation(P, R, p0, T, alpha) * np.nan)
    with pytest.raises(ExerciseError, match="normalised over all time steps together"):
        check_visitation(lambda P, R, p0, T, alpha=1.0: visitation(P, R, p0, T, alpha) / T)


def test_check_visitation_explains_overflow_for_large_rewards():
    def overflowing(P, R, p0, horizon, alpha=1.0):
        Q, _ = backward_messages(P, R, horizon, alpha=alpha)
        with np.errstate(over="ignore", invalid="ignore"):
            pi = np.exp(Q / alpha) / np.exp(Q / alpha).sum(axis=-1, keepdims=True)
        D = np.empty((horizon, P.shape[0]))
        D[0] = p0
        for t in range(horizon - 1):
            D[t + 1] = np.einsum("s,sa,sap->p", D[t], pi[t], P)
        return D[:, :, None] * pi

    with pytest.raises(
        ExerciseError,
        match=r"exp\(Q / alpha\) overflows .*input: 4 states, 2 actions, rewards of size 1000",
    ):
        check_visitation(overflowing)


# ------------------------------------------------------------------ Exercise 8.2


@pytest.mark.parametrize("answer", [reference_irl_gradient, gradient], ids=["reference", "student"])
def test_check_irl_gradient_accepts_correct_answers(answer, capsys):
    check_irl_gradient(answer)
    assert capsys.readouterr().out.startswith("Exercise 8.2 passed:")


@pytest.mark.parametrize(
    "options, message",
    [
        ({"sign": -1.0}, "wrong sign"),
        ({"divide": False}, "forgot to divide by the temperature alpha"),
        ({"per_step": True}, "averaged the feature counts over the T time steps"),
        ({"sum_demos": True}, "summed the expert's feature counts over the demonstrations"),
    ],
    ids=["sign", "no-alpha", "per-step", "sum-demos"],
)
def test_check_irl_gradient_names_typical_mistakes(options, message):
    with pytest.raises(ExerciseError, match=message):
        check_irl_gradient(with_options(gradient, **options))


def test_check_irl_gradient_points_to_exercise_8_1_when_the_visitation_is_wrong():
    wrong = with_options(gradient, visitation_fn=with_options(visitation, start="uniform"))
    with pytest.raises(
        ExerciseError,
        match=r"does not match the reference.*builds on your state_action_visitation \(Exercise 8\.1\)",
    ):
        check_irl_gradient(wrong)


def test_check_irl_gradient_rejects_shape_and_nan():
    with pytest.raises(ExerciseError, match=r"shape \(1, \d\), expected \(\d,\)"):
        check_irl_gradient(lambda *args, **kwargs: gradient(*args, **kwargs)[None])
    with pytest.raises(ExerciseError, match="NaN"):
        check_irl_gradient(lambda *args, **kwargs: gradient(*args, **kwargs) * np.nan)


# ------------------------------------------------------------------ Exercise 8.3


@pytest.mark.parametrize("answer", [reference_maxent_irl_loop, loop], ids=["reference", "student"])
def test_check_maxent_irl_loop_accepts_correct_answers(answer, capsys):
    check_maxent_irl_loop(answer)
    assert capsys.readouterr().out.startswith("Exercise 8.3 passed:")


@pytest.mark.parametrize(
    "options, message",
    [
        ({"sign": -1.0}, r"stepped \*down\* the gradient"),
        ({"early": False}, "did not stop early"),
        ({"extra": 1}, "one gradient step too many"),
        ({"extra": -1}, "one gradient step too few"),
    ],
    ids=["descent", "no-early-stop", "one-too-many", "one-too-few"],
)
def test_check_maxent_irl_loop_names_typical_mistakes(options, message):
    with pytest.raises(ExerciseError, match=message):
        check_maxent_irl_loop(with_options(loop, **options))


def test_check_maxent_irl_loop_detects_a_gradient_evaluated_at_zero():
    def frozen(P, features, expert_states, p0, alpha=1.0, lr=0.01, n_iters=200, tol=1e-4):
        theta = np.zeros(features.shape[1])
        for _ in range(n_iters):
            grad = gradient(np.zeros_like(theta), P, features, expert_states, p0, alpha)
            if np.max(np.abs(grad)) < tol:
                break
            theta = theta + lr * grad
        return theta

    with pytest.raises(ExerciseError, match="evaluated the gradient at theta = 0 every time"):
        check_maxent_irl_loop(frozen)


def test_check_maxent_irl_loop_points_to_exercise_8_2_when_the_gradient_is_wrong():
    wrong = with_options(loop, gradient_fn=with_options(gradient, divide=False))
    with pytest.raises(ExerciseError, match=r"builds on your irl_gradient \(Exercise 8\.2\)"):
        check_maxent_irl_loop(wrong)


# ------------------------------------------------------------------ not attempted, crashes


@pytest.mark.parametrize(
    "check, exercise",
    [
        (check_visitation, "8.1"),
        (check_irl_gradient, "8.2"),
        (check_maxent_irl_loop, "8.3"),
    ],
)
def test_checks_report_not_attempted(check, exercise):
    with pytest.raises(ExerciseNotAttempted, match=rf"Exercise {exercise} is not attempted yet"):
        check(not_attempted(exercise))


def test_a_function_built_on_an_unattempted_exercise_says_which():
    unattempted = with_options(gradient, visitation_fn=not_attempted("8.1"))
    with pytest.raises(ExerciseNotAttempted, match=r"calls the function of Exercise 8\.1"):
        check_irl_gradient(unattempted)


def test_a_crash_keeps_the_students_error_and_no_dependency_note():
    def crashes(theta, P, features, expert_states, p0, alpha=1.0):
        return features[expert_states, 99]

    with pytest.raises(ExerciseError, match="raised IndexError") as info:
        check_irl_gradient(crashes)
    assert "builds on" not in str(info.value)
