"""Every unmodified exercise notebook fails only at its exercises.

(The solution notebooks themselves are executed by nbval: `testpaths` includes solutions/.)
"""

from pathlib import Path

import pytest

from course_utils import grade

ROOT = Path(__file__).resolve().parent.parent
EXERCISE_NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_is_an_exercise_notebook_for_every_solution():
    solutions = sorted(p.name for p in (ROOT / "solutions").glob("*.ipynb"))
    assert solutions and solutions == [p.name for p in EXERCISE_NOTEBOOKS]


@pytest.mark.parametrize("path", EXERCISE_NOTEBOOKS, ids=lambda p: p.stem)
def test_unmodified_exercise_notebook_fails_only_at_exercises(path):
    result = grade.grade_notebook(path, timeout=600)
    assert not result.problem, result.problem
    assert result.other_errors == [], "cells outside exercises failed: " + "; ".join(
        result.other_errors
    )
    assert result.exercises, "no exercises found"
    not_attempted = [e.exercise for e in result.exercises if e.status == grade.NOT_ATTEMPTED]
    assert not_attempted == [e.exercise for e in result.exercises], grade.format_report([result])
