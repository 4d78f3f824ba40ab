"""The exercise harness (course_utils.checks) on small exercises, and chapter 00's checks."""

import re

import numpy as np
import pytest
import torch

from course_utils.checks import (
    Case,
    Exercise,
    ExerciseError,
    ExerciseNotAttempted,
    Grad,
    Mistake,
    Output,
    Question,
)
from course_utils.checks.ch00 import (
    check_boltzmann,
    check_logsumexp,
    reference_boltzmann,
    reference_logsumexp,
)


# ---------------------------------------------------------------- the harness


def _scaled(x, factor=2.0):
    return factor * np.asarray(x, dtype=float)


def _cases(rng):
    return [
        Case("a vector of 4", (rng.normal(size=4),)),
        Case("a (2, 3) matrix, factor 3", (rng.normal(size=(2, 3)), 3.0)),
    ]


SCALE = Exercise(
    id="9.9",
    check_name="check_scaled_test",
    reference=_scaled,
    cases=_cases,
    outputs=[Output("scaled array")],
    mistakes=[
        Mistake("you added the factor instead of multiplying.", lambda x, factor=2.0: x + factor)
    ],
    success="scaled on {n} inputs.",
)
check_scaled = SCALE.check


def test_the_success_line_is_printed_once(capsys):
    check_scaled(_scaled)
    assert capsys.readouterr().out == "Exercise 9.9 passed: scaled on 2 inputs.\n"


def test_renamed_parameters_lists_and_torch_tensors_are_accepted(capsys):
    check_scaled(
        lambda values, k=2.0: (
            [float(k) * v for v in np.ravel(values)]
            if np.ndim(values) == 1
            else torch.as_tensor(values) * k
        )
    )
    assert capsys.readouterr().out.startswith("Exercise 9.9 passed")


def test_a_float32_answer_is_compared_at_float32_precision(capsys):
    check_scaled(lambda x, factor=2.0: np.float32(factor) * np.asarray(x, dtype=np.float32))
    assert capsys.readouterr().out.startswith("Exercise 9.9 passed")


def test_float64_when_required_is_named():
    strict = Exercise(
        id="9.8",
        check_name="check_strict_test",
        reference=_scaled,
        cases=_cases,
        float64="the exponent amplifies round-off",
        success="ok",
    )
    with pytest.raises(ExerciseError, match="needs float64: the exponent amplifies round-off"):
        strict.check(
            lambda x, factor=2.0: (
                np.float32(factor) * np.asarray(x, dtype=np.float32) * np.float32(1 + 1e-6)
            )
        )


def test_a_mistake_is_named_with_the_input():
    with pytest.raises(
        ExerciseError,
        match=r"^Exercise 9\.9: you added the factor instead of multiplying\. \(input: a vector of 4\)$",
    ):
        check_scaled(lambda x, factor=2.0: np.asarray(x) + factor)


def test_generic_mismatch_says_where_and_by_how_much():
    with pytest.raises(
        ExerciseError,
        match=r"scaled array does not match the reference \(input: a vector of 4\): 1 of 4 "
        r"entries differ; the largest difference is 1 at index \(2,\)",
    ):
        check_scaled(
            lambda x, factor=2.0: (
                _scaled(x, factor) + np.eye(1, len(np.ravel(x)), 2).reshape(np.shape(x))
            )
        )


def test_nan_none_strings_and_shapes_get_their_own_messages():
    for wrong, message in [
        (
            lambda x, factor=2.0: _scaled(x, factor) * np.nan,
            "contains 4 non-finite value.*the first is NaN at index \\(0,\\)",
        ),
        (lambda x, factor=2.0: None, "returned None .* forget the `return`"),
        (lambda x, factor=2.0: "2x", "should be numeric, got str"),
        (lambda x, factor=2.0: _scaled(x, factor).sum(), "has shape \\(\\), expected \\(4,\\)"),
    ]:
        with pytest.raises(ExerciseError, match=message):
            check_scaled(wrong)


def test_not_a_function_and_not_attempted():
    with pytest.raises(ExerciseError, match="expected a function, got float"):
        check_scaled(3.0)

    def stub(x, factor=2.0):
        raise NotImplementedError("Exercise 9.9: replace this line with your code")

    with pytest.raises(ExerciseNotAttempted, match=r"Exercise 9\.9 is not attempted yet: `stub`"):
        check_scaled(stub)

    def uses_an_unsolved_one(x, factor=2.0):
        raise NotImplementedError("Exercise 9.1: replace this line with your code")

    with pytest.raises(ExerciseNotAttempted, match=r"calls the function of Exercise 9\.1"):
        check_scaled(uses_an_unsolved_one)


def test_a_crash_keeps_the_students_exception_as_the_cause():
    def crashes(x, factor=2.0):
        return x["key"]

    with pytest.raises(
        ExerciseError, match=r"`crashes` raised IndexError: .*\(input: a vector of 4\)"
    ) as info:
        check_scaled(crashes)
    assert isinstance(info.value.__cause__, IndexError)


def test_changing_an_input_in_place_is_reported_unless_it_is_the_job():
    def in_place(x, factor=2.0):
        x *= factor
        return x

    with pytest.raises(ExerciseError, match="changed its argument `x` in place"):
        check_scaled(in_place)


def _pair(x):
    return np.sum(x), np.asarray(x) * 2


PAIR = Exercise(
    id="9.7",
    check_name="check_pair_test",
    reference=_pair,
    cases=lambda rng: [Case("a (3,) vector", (rng.normal(size=3),))],
    outputs=[Output("total"), Output("doubled")],
    mistakes=[Mistake("the total is the mean.", lambda x: {0: np.mean(x)})],
    success="ok",
)


def test_tuples_their_structure_their_order_and_partial_mistakes():
    with pytest.raises(ExerciseError, match=r"return the tuple \(total, doubled\)"):
        PAIR.check(lambda x: np.sum(x))
    with pytest.raises(ExerciseError, match="wrong order"):
        PAIR.check(lambda x: _pair(x)[::-1])
    with pytest.raises(ExerciseError, match="the total is the mean"):
        PAIR.check(lambda x: (np.mean(x), np.asarray(x) * 2))


def test_a_mistake_invisible_on_the_failing_input_is_found_on_another():
    ex = Exercise(
        id="9.6",
        check_name="check_elsewhere_test",
        reference=_scaled,
        cases=lambda rng: [
            Case("factor 1", (np.ones(2), 1.0)),
            Case("factor 3", (np.ones(2), 3.0)),
        ],
        mistakes=[Mistake("you squared the factor.", lambda x, factor=2.0: factor**2 * x)],
        success="ok",
    )
    with pytest.raises(ExerciseError, match=r"you squared the factor\. \(input: factor 3\)"):
        ex.check(lambda x, factor=2.0: (factor**2 * np.asarray(x)) + (factor == 1.0))


def test_accepted_variants_and_fallbacks():
    ex = Exercise(
        id="9.5",
        check_name="check_variants_test",
        reference=_scaled,
        cases=_cases,
        accept=[lambda x, factor=2.0: -_scaled(x, factor)],
        fallbacks=[lambda actual, expected, case: "look at the factor."],
        success="ok",
    )
    ex.check(lambda x, factor=2.0: -factor * np.asarray(x))
    with pytest.raises(ExerciseError, match=r"look at the factor\. \(input: a vector of 4\)"):
        ex.check(lambda x, factor=2.0: 7 * np.asarray(x))


def _loss(pred, target):
    return 0.5 * ((pred - target.detach()) ** 2).mean()


LOSS = Exercise(
    id="9.4",
    check_name="check_loss_test",
    reference=_loss,
    cases=lambda rng: [
        Case("B=5", (torch.tensor(rng.normal(size=5)), torch.tensor(rng.normal(size=5))))
    ],
    outputs=[Output("loss")],
    grad=Grad(track=(0, 1), needs={0: "pred must be trained."}, leaks={1: "the target leaks."}),
    success="ok",
)


def test_gradient_expectations():
    LOSS.check(lambda pred, target: torch.nn.functional.mse_loss(pred, target.detach()) / 2)
    with pytest.raises(ExerciseError, match="the target leaks"):
        LOSS.check(lambda pred, target: 0.5 * ((pred - target) ** 2).mean())
    with pytest.raises(ExerciseError, match="the loss carries no gradient"):
        LOSS.check(lambda pred, target: (0.5 * ((pred - target) ** 2).mean()).detach())
    with pytest.raises(ExerciseError, match="pred must be trained"):
        LOSS.check(
            lambda pred, target: (
                0.5 * ((pred - target) ** 2).mean() * 0
                + _loss(pred.detach(), target)
                + 0 * target.sum()
            )
        )


def test_crash_hints():
    ex = Exercise(
        id="9.3",
        check_name="check_hint_test",
        reference=_scaled,
        cases=_cases,
        crashes={"could not broadcast": "Mind the shapes."},
        success="ok",
    )

    def crashes(x, factor=2.0):
        raise ValueError("could not broadcast (4,) into (3,)")

    with pytest.raises(ExerciseError, match=r"could not broadcast .* Mind the shapes"):
        ex.check(crashes)


def test_questions_check_a_choice_or_a_number_with_feedback(capsys):
    choice = Question(
        id="9.2",
        check_name="check_choice_test",
        answer="b",
        success="b, because ...",
        feedback={"a": "a ignores the discount."},
        hint="Which one discounts?",
    )
    choice.check(" B ")
    assert capsys.readouterr().out == "Exercise 9.2 passed: b, because ...\n"
    with pytest.raises(ExerciseError, match=r"^Exercise 9\.2: a ignores the discount\.$"):
        choice.check("a")
    with pytest.raises(ExerciseError, match="Which one discounts"):
        choice.check("c")
    with pytest.raises(ExerciseError, match="as a string"):
        choice.check(2)
    number = Question(
        id="9.1",
        check_name="check_number_test",
        answer=2.49,
        success="ok",
        feedback={-2.49: "that is a loss, not a gain."},
        rtol=1e-2,
    )
    number.check(np.float32(2.488))
    with pytest.raises(ExerciseError, match="a loss, not a gain"):
        number.check(-2.49)
    with pytest.raises(ExerciseError, match="one number"):
        number.check([1, 2])


def test_later_cells_use_the_reference_until_the_check_passes(capsys):
    def mine(x, factor=2.0):
        raise NotImplementedError("Exercise 9.9: replace this line with your code")

    SCALE.passed = False
    assert check_scaled.or_reference(mine) is _scaled
    assert "Exercise 9.9 has not passed its check yet" in capsys.readouterr().out
    with pytest.raises(ExerciseError):
        check_scaled(lambda x, factor=2.0: np.asarray(x) + factor)
    assert check_scaled.or_reference(mine) is _scaled
    check_scaled(_scaled)
    capsys.readouterr()
    assert check_scaled.or_reference(mine) is mine and capsys.readouterr().out == ""


def test_exercise_errors_are_assertion_errors():
    assert issubclass(ExerciseError, AssertionError)
    assert issubclass(ExerciseNotAttempted, ExerciseError)


# ---------------------------------------------------------------- chapter 00


def test_check_logsumexp_accepts_the_reference(capsys):
    check_logsumexp(reference_logsumexp)
    assert capsys.readouterr().out.startswith("Exercise 0.1 passed:")


def _naive(x, axis=-1, keepdims=False):
    with np.errstate(over="ignore", divide="ignore"):
        return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))


def _no_add_back(x, axis=-1, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    return (
        np.squeeze(np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)), axis)
        if not keepdims
        else np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    )


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
        (
            lambda x, axis=-1, keepdims=False: np.max(x, axis=axis, keepdims=keepdims),
            "returned the maximum",
        ),
        (_nan_on_all_neg_inf, "all -inf should give -inf"),
        (
            lambda x, axis=-1, keepdims=False: reference_logsumexp(x, axis=None),
            r"has shape \(\), expected \(4,\)",
        ),
        (
            lambda x, axis=-1, keepdims=False: reference_logsumexp(x, axis=axis),
            r"shape \(2, 5\), expected \(2, 1, 5\).*keep the reduced",
        ),
        (
            lambda x, axis=-1, keepdims=False: (
                reference_logsumexp(x, axis=axis, keepdims=keepdims) * np.nan
            ),
            "NaN",
        ),
        (lambda x, axis=-1, keepdims=False: None, "returned None"),
    ],
    ids=[
        "naive",
        "no-add-back",
        "max",
        "nan-for-all-neg-inf",
        "all-axes",
        "no-keepdims",
        "nan",
        "none",
    ],
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
        (
            lambda q, alpha=1.0, axis=-1: reference_boltzmann(q, 1.0 / alpha, axis),
            "multiplied by alpha",
        ),
        (
            lambda q, alpha=1.0, axis=-1: reference_boltzmann(q, 1.0, axis),
            "ignores the temperature",
        ),
        (
            lambda q, alpha=1.0, axis=-1: (
                np.exp(np.asarray(q) / alpha)
                / np.exp(np.asarray(q) / alpha).sum(axis, keepdims=True)
            ),
            "non-finite",
        ),
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
    with pytest.raises(
        ExerciseNotAttempted, match=r"Exercise 0\.2: `stub` calls the function of Exercise 0\.1"
    ):
        check_boltzmann(stub)  # 0.2's boltzmann calls 0.1's unsolved logsumexp


def test_notebook_shows_feedback_without_checker_frames():
    """In a kernel, a rejected answer shows the feedback; a crash keeps the student's traceback."""
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(
        cells=[
            new_code_cell(
                "import numpy as np\nfrom course_utils.checks.ch00 import check_logsumexp"
            ),
            new_code_cell(
                "check_logsumexp(lambda x, axis=-1, keepdims=False: np.max(x, axis=axis, keepdims=keepdims))"
            ),
            new_code_cell(
                "def mine(x, axis=-1, keepdims=False):\n    return x['oops']\ncheck_logsumexp(mine)"
            ),
        ]
    )
    NotebookClient(nb, kernel_name="python3", allow_errors=True, timeout=120).execute()
    rejected, crashed = (
        next(o for o in c.outputs if o.output_type == "error") for c in nb.cells[1:]
    )

    def shown(output):  # the traceback as the student sees it, without colour codes
        return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(output.traceback))

    assert rejected.ename == "ExerciseError" and "returned the maximum" in rejected.evalue
    assert "course_utils" not in shown(rejected)  # no checker internals: the feedback alone
    assert crashed.ename == "ExerciseError" and "raised IndexError" in crashed.evalue
    assert "x['oops']" in shown(crashed)  # the student's failing line is shown ...
    assert "course_utils/checks" not in shown(crashed)  # ... and none of the checker's frames
    assert shown(crashed).rstrip().endswith(crashed.evalue)  # the feedback comes last
