"""Exercise checks: compare a student's function with the reference and explain differences.

Every chapter has a module ``course_utils.checks.chNN`` whose ``check_*`` functions are
called in the notebooks' check cells. They build on the helpers here:

* :class:`ExerciseError` (an ``AssertionError``) carries feedback meant for the student;
  :class:`ExerciseNotAttempted` says the exercise still raises ``NotImplementedError``.
* :func:`call_student` runs the student's function on one :class:`Case` and turns their
  exceptions into feedback that names the exercise and the input.
* :func:`as_array`, :func:`check_shape`, :func:`check_dtype`, :func:`check_finite` and
  :func:`assert_close` validate a result and say where and by how much it is off.
* :func:`compare_with_reference` runs all of that over several random and edge-case inputs.
* :func:`passed` prints the one deterministic success line that nbval compares.

Frames of this module set ``__tracebackhide__`` so that IPython and pytest show the
student the feedback, not the checker's internals.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

__all__ = [
    "Mistakes",
    "outputs_match",
    "first_matching_mistake",
    "ExerciseError",
    "ExerciseNotAttempted",
    "Case",
    "call_student",
    "as_array",
    "check_shape",
    "check_dtype",
    "check_finite",
    "assert_close",
    "compare_with_reference",
    "passed",
]


class ExerciseError(AssertionError):
    """A student's answer is wrong; the message says what to fix."""


class ExerciseNotAttempted(ExerciseError):
    """The exercise still raises ``NotImplementedError``."""


@dataclass
class Case:
    """One input on which a student's function is compared with the reference.

    ``name`` describes the input in words the student understands, e.g.
    ``"a batch of 4 rows with entries near 1000"``; it appears in the feedback.
    """

    name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    def call(self, fn: Callable) -> Any:
        # Deep copies: a function that modifies its inputs in place must not corrupt the
        # reference's inputs (nor the next case).
        return fn(*copy.deepcopy(self.args), **copy.deepcopy(self.kwargs))


def _name_of(fn: Callable) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def call_student(exercise: str, fn: Callable, case: Case) -> Any:
    """Call ``fn`` on ``case``; translate its exceptions into feedback for ``exercise``."""
    __tracebackhide__ = True
    if not callable(fn):
        raise ExerciseError(
            f"Exercise {exercise}: expected a function, got {type(fn).__name__}. "
            "Pass the function itself, without calling it (no parentheses)."
        )
    try:
        return case.call(fn)
    except NotImplementedError:
        raise ExerciseNotAttempted(
            f"Exercise {exercise} is not attempted yet: `{_name_of(fn)}` still raises "
            "NotImplementedError. Replace `# YOUR CODE HERE` and the `raise` line with your "
            "solution, run that cell, then run this check again."
        ) from None
    except ExerciseError:
        raise
    except Exception as exc:  # the student's code crashed: show their error and the input
        raise ExerciseError(
            f"Exercise {exercise}: `{_name_of(fn)}` raised {type(exc).__name__}: {exc} "
            f"(input: {case.name}). The traceback above shows the line in your code."
        ) from exc


def as_array(exercise: str, value: Any, name: str = "result") -> np.ndarray:
    """Convert a number, list, numpy array or torch tensor to a numpy array (float or int).

    Rejects ``None`` (a forgotten ``return``), strings and objects with a clear message.
    """
    __tracebackhide__ = True
    if value is None:
        raise ExerciseError(
            f"Exercise {exercise}: your function returned None for the {name}. "
            "Did you forget the `return` statement?"
        )
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, (str, bytes, dict, set)):
        raise ExerciseError(
            f"Exercise {exercise}: the {name} should be numeric, got {type(value).__name__}."
        )
    try:
        array = np.asarray(value)
    except Exception as exc:
        raise ExerciseError(
            f"Exercise {exercise}: could not read the {name} as an array "
            f"({type(value).__name__}): {exc}"
        ) from None
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise ExerciseError(
            f"Exercise {exercise}: the {name} should be a numeric array, got dtype {array.dtype} "
            f"from a {type(value).__name__}."
        )
    return array


def check_shape(
    exercise: str, array: np.ndarray, expected: Sequence[int], name: str = "result", context: str = ""
) -> None:
    """Fail with both shapes (and a hint for the usual axis mistakes) when they differ."""
    __tracebackhide__ = True
    expected = tuple(int(d) for d in expected)
    if tuple(array.shape) == expected:
        return
    where = f" (input: {context})" if context else ""
    hint = ""
    if array.ndim == len(expected) + 1 and 1 in array.shape:
        hint = " An extra axis of size 1: did you keep a dimension you should have reduced (keepdims)?"
    elif array.ndim + 1 == len(expected) and 1 in expected:
        hint = " One axis of size 1 is missing: this case asks you to keep the reduced dimension."
    elif array.ndim < len(expected):
        hint = " Did you reduce over too many axes (or over all of them)?"
    elif array.ndim == len(expected):
        hint = " Did you reduce over the wrong axis, or transpose something?"
    raise ExerciseError(
        f"Exercise {exercise}: the {name} has shape {tuple(array.shape)}, expected {expected}{where}.{hint}"
    )


def check_dtype(
    exercise: str, array: np.ndarray, kind: str = "float", name: str = "result"
) -> None:
    """``kind`` is ``"float"``, ``"int"`` or ``"bool"``."""
    __tracebackhide__ = True
    kinds = {"float": "f", "int": "iu", "bool": "b"}
    if kind not in kinds:
        raise ValueError(f"kind must be one of {sorted(kinds)}, got {kind!r}")
    if array.dtype.kind not in kinds[kind]:
        raise ExerciseError(
            f"Exercise {exercise}: the {name} should have a {kind} dtype, got {array.dtype}."
        )


def _index(flat_index: int, shape: tuple) -> str:
    if not shape:
        return ""
    return " at index " + str(tuple(int(i) for i in np.unravel_index(flat_index, shape)))


def check_finite(
    exercise: str,
    array: np.ndarray,
    name: str = "result",
    context: str = "",
    expected: np.ndarray | None = None,
) -> None:
    """Fail on NaN or ±inf, saying how many entries and where the first one is.

    With ``expected``, infinities that the reference also has (same sign) are allowed.
    """
    __tracebackhide__ = True
    array = np.asarray(array, dtype=float)
    bad = ~np.isfinite(array)
    if expected is not None:
        expected = np.broadcast_to(np.asarray(expected, dtype=float), array.shape)
        bad &= ~(np.isinf(expected) & (array == expected))
    if not bad.any():
        return
    first = int(np.flatnonzero(bad)[0])
    value = array.ravel()[first]
    where = f" (input: {context})" if context else ""
    kind = "NaN" if np.isnan(value) else ("inf" if value > 0 else "-inf")
    hint = (
        " NaN usually comes from inf - inf, 0 * inf, 0 / 0 or the log of a negative number."
        if kind == "NaN"
        else " An infinity usually means exp overflowed or log got 0."
    )
    raise ExerciseError(
        f"Exercise {exercise}: the {name} contains {int(bad.sum())} non-finite value(s); "
        f"the first is {kind}{_index(first, array.shape)}{where}.{hint}"
    )


def assert_close(
    exercise: str,
    actual: Any,
    expected: Any,
    *,
    name: str = "result",
    context: str = "",
    rtol: float = 1e-6,
    atol: float = 1e-8,
) -> None:
    """Compare ``actual`` with the reference ``expected``: type, shape, finiteness, values.

    The message shows how many entries differ, the largest difference, its index, and
    both values there.
    """
    __tracebackhide__ = True
    actual_arr = as_array(exercise, actual, name)
    expected_arr = np.asarray(expected.detach().cpu().numpy() if hasattr(expected, "detach") else expected)
    check_shape(exercise, actual_arr, expected_arr.shape, name, context)
    check_finite(exercise, actual_arr, name, context, expected=expected_arr)
    a = actual_arr.astype(float)
    e = expected_arr.astype(float)
    both_inf = np.isinf(e) & (a == e)
    a_cmp, e_cmp = np.where(both_inf, 0.0, a), np.where(both_inf, 0.0, e)
    wrong = ~np.isclose(a_cmp, e_cmp, rtol=rtol, atol=atol)
    if not wrong.any():
        return
    diff = np.where(wrong, np.abs(a_cmp - e_cmp), -np.inf)
    worst = int(np.argmax(diff))
    where = f" (input: {context})" if context else ""
    count = f"{int(wrong.sum())} of {wrong.size} entries differ; " if wrong.size > 1 else ""
    raise ExerciseError(
        f"Exercise {exercise}: the {name} does not match the reference{where}: {count}"
        f"the largest difference is {diff.ravel()[worst]:.3g}{_index(worst, a.shape)}, "
        f"where yours is {a.ravel()[worst]:.6g} and the reference is {e.ravel()[worst]:.6g} "
        f"(tolerance rtol={rtol:g}, atol={atol:g})."
    )


Diagnose = Callable[[np.ndarray, np.ndarray, Case], "str | None"]


def compare_with_reference(
    exercise: str,
    student_fn: Callable,
    reference_fn: Callable,
    cases: Sequence[Case],
    *,
    name: str = "result",
    rtol: float = 1e-6,
    atol: float = 1e-8,
    diagnose: Diagnose | None = None,
) -> int:
    """Run ``student_fn`` and ``reference_fn`` on every case; fail on the first mismatch.

    ``diagnose(actual, expected, case)`` may return a specific explanation of a typical
    mistake (e.g. "overflow: subtract the maximum first"); it is consulted before the
    generic comparison, only when the answer is wrong. Returns the number of cases.
    """
    __tracebackhide__ = True
    if not cases:
        raise ValueError("compare_with_reference needs at least one case")
    for case in cases:
        expected = case.call(reference_fn)
        actual = call_student(exercise, student_fn, case)
        try:
            assert_close(
                exercise, actual, expected, name=name, context=case.name, rtol=rtol, atol=atol
            )
        except ExerciseNotAttempted:
            raise
        except ExerciseError as generic:
            if diagnose is not None:
                try:
                    actual_arr = as_array(exercise, actual, name)
                except ExerciseError:
                    raise generic from None
                specific = diagnose(actual_arr, np.asarray(expected), case)
                if specific:
                    raise ExerciseError(
                        f"Exercise {exercise}: {specific} (input: {case.name})"
                    ) from None
            raise generic from None
    return len(cases)


Mistakes = Sequence[tuple[str, Callable[[], Any]]]
"""(message, make) pairs: ``make()`` computes what a typical wrong answer would return."""


def outputs_match(actual: np.ndarray, candidate: Any, rtol: float = 1e-6, atol: float = 1e-9) -> bool:
    """True when ``candidate`` is finite, has ``actual``'s shape and equals it within tolerance."""
    candidate = np.asarray(candidate, dtype=float)
    if candidate.shape != actual.shape or not np.isfinite(candidate).all():
        return False
    with np.errstate(all="ignore"):
        return bool(np.allclose(actual, candidate, rtol=rtol, atol=atol))


def first_matching_mistake(actual: np.ndarray, mistakes: Mistakes, rtol: float = 1e-6,
                           atol: float = 1e-9) -> str | None:
    """The message of the first typical mistake whose output equals ``actual`` (None: no match).

    A ``diagnose`` hook for :func:`compare_with_reference` is usually this, applied to a list of
    mistakes computed on the case's inputs. Mistakes that cannot be computed are skipped.
    """
    for message, make in mistakes:
        try:
            with np.errstate(all="ignore"):
                candidate = make()
        except Exception:  # a mistake that cannot be computed on this input
            continue
        if outputs_match(actual, candidate, rtol, atol):
            return message
    return None


def passed(exercise: str, message: str) -> None:
    """Print the single deterministic success line that nbval compares."""
    print(f"Exercise {exercise} passed: {message}")


def _show_feedback(shell, etype, evalue, tb, tb_offset=None):
    """IPython display of an ExerciseError: the feedback alone, without the checker's frames.

    When the student's own code crashed (the error has a cause), the full traceback is
    kept, because it points at the line to fix.
    """
    shell.showtraceback((etype, evalue, tb), exception_only=evalue.__cause__ is None)


def _register_ipython_display() -> None:
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python: nothing to register
        return
    shell = get_ipython()
    if shell is not None:
        shell.set_custom_exc((ExerciseError,), _show_feedback)


_register_ipython_display()
