"""Every unmodified exercise notebook fails only at its exercises, in both grading modes, and
every solution notebook passes in the grader's fast mode.

(The solution notebooks themselves are executed in full by nbval: `testpaths` includes
solutions/; their stored outputs grade all passed in tests/test_grade.py.)
"""

from pathlib import Path

import pytest

from course_utils import grade

ROOT = Path(__file__).resolve().parent.parent
EXERCISE_NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOLUTION_NOTEBOOKS = sorted((ROOT / "solutions").glob("*.ipynb"))


def test_there_is_an_exercise_notebook_for_every_solution():
    solutions = sorted(p.name for p in SOLUTION_NOTEBOOKS)
    assert solutions and solutions == [p.name for p in EXERCISE_NOTEBOOKS]


@pytest.mark.parametrize("full", [True, False], ids=["full", "fast"])
@pytest.mark.parametrize("path", EXERCISE_NOTEBOOKS, ids=lambda p: p.stem)
def test_unmodified_exercise_notebook_fails_only_at_exercises(path, full):
    result = grade.grade_notebook(path, timeout=600, full=full)
    assert result.mode == ("full" if full else "fast"), result.mode
    assert not result.problem, result.problem
    assert result.other_errors == [], "cells outside exercises failed: " + "; ".join(
        result.other_errors
    )
    assert result.exercises, "no exercises found"
    not_attempted = [e.exercise for e in result.exercises if e.status == grade.NOT_ATTEMPTED]
    assert not_attempted == [e.exercise for e in result.exercises], grade.format_report([result])


@pytest.mark.parametrize("path", SOLUTION_NOTEBOOKS, ids=lambda p: p.stem)
def test_solution_notebook_passes_in_fast_mode(path):
    """Fast mode keeps every cell the checks need: the verdicts of the full run (all passed)."""
    result = grade.grade_notebook(path, timeout=600)
    assert result.mode == "fast" and result.all_passed, grade.format_report([result])
