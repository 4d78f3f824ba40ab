"""The shared check helpers and chapter 00's checks: accept the reference, explain mistakes."""

import re

import numpy as np
import pytest
import torch

from course_utils.checks import (
    Case,
    ExerciseError,
    ExerciseNotAttempted,
    as_array,
    assert_close,
    call_student,
    check_dtype,
    check_finite,
    check_shape,
    compare_with_reference,
    passed,
)
from course_utils.checks.ch00 import (
    check_boltzmann,
    check_logsumexp,
    reference_boltzmann,
    reference_logsumexp,
)


# ---------------------------------------------------------------- the harness


def test_call_student_reports_not_attempted():
    def stub(x):
        raise NotImplementedError("Exercise 9.9: replace this line with your code")

    with pytest.raises(ExerciseNotAttempted, match=r"Exercise 9\.9 is not attempted yet: `stub`"):
        call_student("9.9", stub, Case("one number", (1.0,)))


def test_call_student_wraps_crashes_with_the_input_named():
    def crashes(x):
        return x["key"]

    with pytest.raises(ExerciseError, match=r"`crashes` raised IndexError: .*\(input: a vector\)") as info:
        call_student("9.9", crashes, Case("a vector", (np.zeros(3),)))
    assert isinstance(info.value.__cause__, IndexError)  # the student's own traceback is kept


def test_call_student_rejects_a_called_function():
    with pytest.raises(ExerciseError, match="expected a function, got float"):
        call_student("9.9", 3.0, Case("x", ()))


def test_inputs_are_copied_so_in_place_edits_do_not_leak():
    x = np.ones(3)

    def mutates(a):
        a[:] = 0
        return a

    call_student("9.9", mutates, Case("x", (x,)))
    assert np.all(x == 1)


def test_as_array_accepts_tensors_and_rejects_none_and_strings():
    assert np.allclose(as_array("9.9", torch.ones(2, requires_grad=True)), 1)
    with pytest.raises(ExerciseError, match="returned None.*forget the `return`"):
        as_array("9.9", None)
    with pytest.raises(ExerciseError, match="should be numeric, got str"):
        as_array("9.9", "1.0")
    with pytest.raises(ExerciseError, match="numeric array, got dtype object"):
        as_array("9.9", np.array([None, 1]))


def test_check_shape_messages_hint_at_the_axis_mistake():
    with pytest.raises(ExerciseError, match=r"shape \(4, 1\), expected \(4,\).*keepdims"):
        check_shape("9.9", np.zeros((4, 1)), (4,))
    with pytest.raises(ExerciseError, match=r"shape \(\), expected \(4,\).*too many axes"):
        check_shape("9.9", np.zeros(()), (4,))
    with pytest.raises(ExerciseError, match=r"shape \(3,\), expected \(4,\).*wrong axis"):
        check_shape("9.9", np.zeros(3), (4,))
    check_shape("9.9", np.zeros((2, 3)), (2, 3))


def test_check_dtype():
    check_dtype("9.9", np.zeros(2), "float")
    with pytest.raises(ExerciseError, match="should have a int dtype, got float64"):
        check_dtype("9.9", np.zeros(2), "int")


def test_check_finite_locates_the_first_bad_entry():
    x = np.zeros((2, 3))
    x[1, 2] = np.nan
    with pytest.raises(ExerciseError, match=r"1 non-finite value\(s\); the first is NaN at index \(1, 2\)"):
        check_finite("9.9", x)
    # an infinity the reference also has is fine
    check_finite("9.9", np.array([-np.inf, 0.0]), expected=np.array([-np.inf, 1.0]))
    with pytest.raises(ExerciseError, match="first is inf"):
        check_finite("9.9", np.array([np.inf, 0.0]), expected=np.array([-np.inf, 1.0]))


def test_assert_close_shows_where_and_by_how_much():
    expected = np.arange(6.0).reshape(2, 3)
    actual = expected.copy()
    actual[1, 0] += 0.5
    with pytest.raises(ExerciseError) as info:
        assert_close("9.9", actual, expected, context="a small matrix")
    message = str(info.value)
    assert "1 of 6 entries differ" in message
    assert "largest difference is 0.5 at index (1, 0)" in message
    assert "yours is 3.5 and the reference is 3" in message
    assert "(input: a small matrix)" in message
    assert_close("9.9", expected + 1e-12, expected)
    assert_close("9.9", np.array([-np.inf, 1.0]), np.array([-np.inf, 1.0]))


def test_compare_with_reference_prefers_a_specific_diagnosis():
    cases = [Case("two numbers", (np.array([1.0, 2.0]),))]

    def diagnose(actual, expected, case):
        return "you doubled instead of squaring" if np.allclose(actual, 2 * case.args[0]) else None

    with pytest.raises(ExerciseError, match=r"you doubled instead of squaring \(input: two numbers\)"):
        compare_with_reference("9.9", lambda x: 2 * x, np.square, cases, diagnose=diagnose)
    with pytest.raises(ExerciseError, match="does not match the reference"):
        compare_with_reference("9.9", lambda x: x + 5, np.square, cases, diagnose=diagnose)
    assert compare_with_reference("9.9", lambda x: x * x, np.square, cases, diagnose=diagnose) == 1
    with pytest.raises(ValueError, match="at least one case"):
        compare_with_reference("9.9", np.square, np.square, [])


def test_passed_prints_one_line(capsys):
    passed("9.9", "all good.")
    assert capsys.readouterr().out == "Exercise 9.9 passed: all good.\n"


def test_exercise_errors_are_assertion_errors():
    assert issubclass(ExerciseNotAttempted, ExerciseError)
    assert issubclass(ExerciseError, AssertionError)


# ---------------------------------------------------------------- chapter 00


def test_check_logsumexp_accepts_the_reference(capsys):
    check_logsumexp(reference_logsumexp)
    assert capsys.readouterr().out.startswith("Exercise 0.1 passed:")


def _naive(x, axis=-1, keepdims=False):
    with np.errstate(over="ignore", divide="ignore"):
        return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))


def _no_add_back(x, axis=-1, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)), axis) if not keepdims \
        else np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


def _nan_on_all_neg_inf(x, axis=-1, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    with np.errstate(invalid="ignore"):
        out = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axis)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_naive, "overflow or underflow"),
        (_no_add_back, "forgot to add it back"),
        (lambda x, axis=-1, keepdims=False: np.max(x, axis=axis, keepdims=keepdims), "returned the maximum"),
        (_nan_on_all_neg_inf, "all -inf should give -inf"),
        (lambda x, axis=-1, keepdims=False: reference_logsumexp(x, axis=None), r"has shape \(\), expected \(4,\)"),
        (lambda x, axis=-1, keepdims=False: reference_logsumexp(x, axis=axis), r"shape \(2, 5\), expected \(2, 1, 5\).*keep the reduced"),
        (lambda x, axis=-1, keepdims=False: reference_logsumexp(x, axis=axis, keepdims=keepdims) * np.nan, "NaN"),
        (lambda x, axis=-1, keepdims=False: None, "returned None"),
    ],
    ids=["naive", "no-add-back", "max", "nan-for-all-neg-inf", "all-axes", "no-keepdims", "nan", "none"],
)
def test_check_logsumexp_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_logsumexp(wrong)


def test_check_boltzmann_accepts_the_reference(capsys):
    check_boltzmann(reference_boltzmann)
    assert capsys.readouterr().out.startswith("Exercise 0.2 passed:")


def _unnormalised(q, alpha=1.0, axis=-1):
    q = np.asarray(q, dtype=float)
    return np.exp((q - q.max(axis=axis, keepdims=True)) / alpha)


def _wrong_axis(q, alpha=1.0, axis=-1):
    q = np.asarray(q, dtype=float)
    other = 0 if axis in (-1, q.ndim - 1) else -1
    return reference_boltzmann(q, alpha, axis=other if q.ndim > 1 else axis)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_unnormalised, "should sum to 1 along axis"),
        (_wrong_axis, "sum to 1 along the wrong axis"),
        (lambda q, alpha=1.0, axis=-1: reference_boltzmann(q, 1.0 / alpha, axis), "multiplied by alpha"),
        (lambda q, alpha=1.0, axis=-1: reference_boltzmann(q, 1.0, axis), "ignores the temperature"),
        (lambda q, alpha=1.0, axis=-1: np.exp(np.asarray(q) / alpha) / np.exp(np.asarray(q) / alpha).sum(axis, keepdims=True),
         "non-finite"),
    ],
    ids=["unnormalised", "wrong-axis", "inverted-temperature", "no-temperature", "overflow"],
)
def test_check_boltzmann_rejects_typical_mistakes(wrong, message):
    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(ExerciseError, match=message):
            check_boltzmann(wrong)


def test_checks_report_not_attempted():
    def stub(*args, **kwargs):
        raise NotImplementedError("Exercise 0.1: replace this line with your code")

    with pytest.raises(ExerciseNotAttempted, match=r"Exercise 0\.1 is not attempted yet"):
        check_logsumexp(stub)
    with pytest.raises(ExerciseNotAttempted, match=r"Exercise 0\.2 is not attempted yet"):
        check_boltzmann(stub)


def test_notebook_shows_feedback_without_checker_frames():
    """In a kernel, a rejected answer shows the feedback; a crash keeps the student's traceback."""
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[
        new_code_cell("import numpy as np\nfrom course_utils.checks.ch00 import check_logsumexp"),
        new_code_cell("check_logsumexp(lambda x, axis=-1, keepdims=False: np.max(x, axis=axis, keepdims=keepdims))"),
        new_code_cell("def mine(x, axis=-1, keepdims=False):\n    return x['oops']\ncheck_logsumexp(mine)"),
    ])
    NotebookClient(nb, kernel_name="python3", allow_errors=True, timeout=120).execute()
    rejected, crashed = (next(o for o in c.outputs if o.output_type == "error") for c in nb.cells[1:])

    def shown(output):  # the traceback as the student sees it, without colour codes
        return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(output.traceback))

    assert rejected.ename == "ExerciseError" and "returned the maximum" in rejected.evalue
    assert "compare_with_reference" not in shown(rejected)  # no checker internals
    assert crashed.ename == "ExerciseError" and "raised IndexError" in crashed.evalue
    assert "x['oops']" in shown(crashed)  # the student's failing line is shown
