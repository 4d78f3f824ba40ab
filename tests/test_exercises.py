"""Every exercise, driven by its declaration (course_utils.checks.Exercise), without kernels.

* The reference passes its own check and prints the success line.
* Every declared mistake, played by a student whose function IS that mistake, is rejected
  with that mistake's own message: each mistake is reachable on some input, and none is
  shadowed by an earlier entry.
* Every accepted published variant passes.
* Every gradient expectation is enforced: a gradient leaked into an input that must not get
  one, or cut from an input that needs one, is rejected with the declared message.
"""

from __future__ import annotations

import copy
import importlib
from pathlib import Path

import pytest
import torch
from torch import nn

from course_utils.checks import _CHECKS, Exercise, ExerciseError, Question

CHAPTERS = sorted(
    p.stem for p in (Path(__file__).parents[1] / "course_utils" / "checks").glob("ch[0-9][0-9].py")
)
BROKEN, FOUND = {}, {}
for _chapter in CHAPTERS:
    try:
        _module = importlib.import_module(f"course_utils.checks.{_chapter}")
    except Exception as exc:
        BROKEN[_chapter] = f"{type(exc).__name__}: {exc}"
        continue
    FOUND.update({id(e): e for e in vars(_module).values() if isinstance(e, (Exercise, Question))})
_ALL = sorted(FOUND.values(), key=lambda e: [int(x) for x in e.id.split(".")])
EXERCISES = [e for e in _ALL if isinstance(e, Exercise)]
QUESTIONS = [q for q in _ALL if isinstance(q, Question)]


def _ids(items):
    return [e.id for e in items]


def test_every_chapter_imports_and_registers_its_exercises_once():
    assert not BROKEN, BROKEN
    ids = [e.id for e in _ALL]
    assert len(ids) == len(set(ids)), ids
    assert len(ids) >= 39
    for exercise in _ALL:  # the grader finds each exercise from its check's name
        assert _CHECKS[exercise.check_name] is exercise


@pytest.mark.parametrize("exercise", EXERCISES, ids=_ids(EXERCISES))
def test_the_reference_passes(exercise: Exercise, capsys):
    exercise.check(exercise.reference)
    out = capsys.readouterr().out
    assert out.startswith(f"Exercise {exercise.id} passed: ") and out.count("\n") == 1, out


def _student_making(exercise: Exercise, message: str):
    """A student whose answer is the first applicable mistake with ``message`` (else correct)."""
    mistakes = [m for m in exercise.mistakes if m.message == message]

    def student(*args):
        for mistake in mistakes:
            try:
                wrong = mistake.fn(*args)
            except Exception:
                continue
            if exercise.mutates:  # in-place exercises: the mistake is what it does
                return wrong
            if wrong is None:
                continue
            if isinstance(wrong, dict):
                right = exercise.reference(*args)
                right = right if isinstance(right, tuple) else (right,)
                return tuple(wrong.get(k, right[k]) for k in range(len(exercise.outputs)))
            return wrong
        return exercise.reference(*args)

    return student


MISTAKES = [(e, m) for e in EXERCISES for m in dict.fromkeys(x.message for x in e.mistakes)]


@pytest.mark.parametrize(
    "exercise, message", MISTAKES, ids=[f"{e.id}:{m[:40]}" for e, m in MISTAKES]
)
def test_each_mistake_is_reachable_with_its_own_message(exercise: Exercise, message: str):
    with pytest.raises(ExerciseError) as caught:
        exercise.check(_student_making(exercise, message))
    assert message in str(caught.value), (
        f"the mistake {message!r} is shadowed: the student who makes it is told {caught.value}"
    )


VARIANTS = [(e, v) for e in EXERCISES for v in e.accept]


@pytest.mark.parametrize("exercise, variant", VARIANTS, ids=[e.id for e, _ in VARIANTS])
def test_accepted_variants_pass(exercise: Exercise, variant, capsys):
    exercise.check(variant)
    assert capsys.readouterr().out.startswith(f"Exercise {exercise.id} passed: ")


def _leaking(exercise: Exercise, position: int):
    """The reference, with a gradient (and no change of value) flowing into argument ``position``."""

    def student(*args):
        out = exercise.reference(*args)
        arg = args[position]
        leaves = list(arg.parameters()) if isinstance(arg, nn.Module) else [arg]
        extra = sum((p - p.detach()).sum() for p in leaves)
        return tuple(o + extra for o in out) if isinstance(out, tuple) else out + extra

    return student


def _cutting(exercise: Exercise, position: int):
    """The reference, with argument ``position`` detached (no gradient reaches it)."""

    def student(*args):
        args = list(args)
        arg = args[position]
        args[position] = (
            copy.deepcopy(arg).requires_grad_(False) if isinstance(arg, nn.Module) else arg.detach()
        )
        return exercise.reference(*args)

    return student


GRADIENTS = [
    (e, kind, i, message)
    for e in EXERCISES
    if e.grad
    for kind, table in (("leak", e.grad.leaks), ("cut", e.grad.needs))
    for i, message in table.items()
]


@pytest.mark.parametrize(
    "exercise, kind, position, message",
    GRADIENTS,
    ids=[f"{e.id}:{k}:{e.params[i]}" for e, k, i, _ in GRADIENTS],
)
def test_gradient_expectations_are_enforced(exercise: Exercise, kind, position, message):
    student = (_leaking if kind == "leak" else _cutting)(exercise, position)
    with pytest.raises(ExerciseError) as caught:
        exercise.check(student)
    text = str(caught.value)
    declared = [m.message for m in exercise.mistakes]
    generic = "carries no gradient"  # cutting the only input with a gradient cuts the graph
    assert message in text or generic in text or any(m in text for m in declared), text


def test_a_float32_answer_is_judged_at_float32_precision(capsys):
    boltzmann = _CHECKS["check_boltzmann"]

    def float32(q, alpha=1.0, axis=-1):
        q = torch.as_tensor(q, dtype=torch.float32) / alpha
        return torch.softmax(q, dim=axis)

    boltzmann.check(float32)
    assert capsys.readouterr().out.startswith("Exercise 0.2 passed")


WRONG_CHOICES = [(q, k) for q in QUESTIONS for k in q.feedback]


@pytest.mark.parametrize("question", QUESTIONS, ids=_ids(QUESTIONS))
def test_each_question_accepts_its_answer(question: Question, capsys):
    question.check(question.answer)
    assert capsys.readouterr().out.startswith(f"Exercise {question.id} passed: ")


@pytest.mark.parametrize(
    "question, wrong", WRONG_CHOICES, ids=[f"{q.id}:{k}" for q, k in WRONG_CHOICES]
)
def test_each_wrong_choice_gets_its_own_feedback(question: Question, wrong):
    with pytest.raises(ExerciseError) as caught:
        question.check(wrong)
    assert question.feedback[wrong] in str(caught.value)
