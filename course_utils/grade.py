"""Grade exercise notebooks: run them and report each exercise as passed, failed or not attempted.

Usage::

    python -m course_utils.grade notebooks/00_start_here.ipynb
    python -m course_utils.grade submissions/ --csv grades.csv

Each notebook is executed top to bottom on a copy (the file is never modified), in the
current Python environment, with errors allowed so that one broken exercise does not hide
the others. An exercise is the cell that carries an ``# Exercise N.M`` comment; a check cell
is a cell that calls a check function (``check_...(...)``), and it belongs to the exercise it
checks: the one its output names ("Exercise N.M passed" or "Exercise N.M: ..."), else the one
whose function it passes to the check, else the one the check function is registered for.
Other cells (results compared by nbval, figures) are not checks. Statuses:

* ``passed``: every check cell of the exercise printed "Exercise N.M passed: ...";
* ``failed``: a check rejected the answer, or the exercise cell itself raised
  (a syntax error, say); the feedback says why;
* ``not attempted``: the exercise still raises ``NotImplementedError``;
* ``error``: the check could not run (an earlier cell failed, the cell timed out, the
  kernel died). Errors in cells outside exercises are listed under the table as well.

The exit code is 0 only when every exercise of every notebook passed and nothing errored.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .build import EXERCISE_ID, run_notebook

PASSED, FAILED, NOT_ATTEMPTED, ERROR = "passed", "failed", "not attempted", "error"
NOT_ATTEMPTED_ERRORS = {"NotImplementedError", "ExerciseNotAttempted"}
FEEDBACK_ERRORS = {"ExerciseError", "AssertionError"}
NOT_ATTEMPTED_FEEDBACK = "still raises NotImplementedError"


class GradeInputError(Exception):
    """A path that cannot be graded (missing, not a notebook, invalid JSON)."""


@dataclass
class ExerciseResult:
    exercise: str
    status: str
    feedback: str = ""


@dataclass
class NotebookResult:
    path: str
    exercises: list[ExerciseResult] = field(default_factory=list)
    other_errors: list[str] = field(default_factory=list)
    problem: str = ""  # set when the notebook could not be graded at all

    @property
    def score(self) -> tuple[int, int]:
        return sum(e.status == PASSED for e in self.exercises), len(self.exercises)

    @property
    def all_passed(self) -> bool:
        n_passed, total = self.score
        return not self.problem and not self.other_errors and n_passed == total


def _one_line(text: str, limit: int = 300) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # ANSI colours of IPython tracebacks
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error_of(cell) -> dict | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return output
    return None


def _stdout_of(cell) -> str:
    return "".join(
        output.get("text", "")
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream"
    )


def _describe(error: dict) -> str:
    ename, evalue = error.get("ename", "Error"), error.get("evalue", "")
    if ename in ("SyntaxError", "IndentationError", "TabError"):
        # IPython names the cell's temporary file: "invalid syntax (1512602710.py, line 2)"
        evalue = re.sub(r"\(\S+\.py, line (\d+)\)", r"(line \1 of the cell)", evalue)
        return f"your cell has a {ename}: {evalue}"
    return f"{ename}: {evalue}"


def load_notebook(path: Path) -> nbformat.NotebookNode:
    """Read and validate one notebook, raising GradeInputError with a one-line reason."""
    if not path.exists():
        raise GradeInputError(f"{path}: no such file or folder")
    if path.suffix != ".ipynb":
        raise GradeInputError(f"{path}: not a notebook (expected a .ipynb file)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GradeInputError(f"{path}: not valid notebook JSON ({exc})") from None
    try:
        nb = nbformat.reads(json.dumps(raw), as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises several kinds of validation errors
        raise GradeInputError(
            f"{path}: not a valid Jupyter notebook ({_one_line(str(exc), 120)})"
        ) from None
    return nb


def execute(nb: nbformat.NotebookNode, cwd: Path, timeout: int) -> str:
    """Run every cell (errors allowed). Returns a problem description, or "" when it ran through."""
    from nbclient.exceptions import DeadKernelError

    try:
        run_notebook(nb, cwd, timeout=timeout, allow_errors=True)
    except DeadKernelError as exc:
        return f"the kernel died ({_one_line(str(exc), 120)})"
    return ""


CHECK_CALL = re.compile(r"\b(check_\w+)\s*\(\s*(\w*)")
CHECKED_ID = re.compile(r"^Exercise (\d+\.\d+)[ :]")
DEFINED = re.compile(r"^(?:def (\w+)\s*\(|(\w+)\s*=[^=])", re.MULTILINE)  # functions, answers


def _checked_exercise(cell, functions: dict[str, str], known: set[str]) -> str | None:
    """The exercise a check cell checks (None: the cell calls no check function)."""
    calls = CHECK_CALL.findall(cell.source)
    if not calls:
        return None
    error = _error_of(cell)
    for text in [_stdout_of(cell), (error or {}).get("evalue", "")]:
        for line in text.splitlines():
            match = CHECKED_ID.match(line.strip())
            if match and match.group(1) in known:
                return match.group(1)
    for _, argument in calls:
        if argument in functions:
            return functions[argument]
    from .checks import exercise_of_check

    for check, _ in calls:
        exercise = exercise_of_check(check)
        if exercise in known:
            return exercise
    return None


def assess(nb: nbformat.NotebookNode) -> tuple[list[ExerciseResult], list[str]]:
    """Turn an executed notebook into one result per exercise, plus other cells' errors."""
    order: list[str] = []
    exercise_cells: dict[str, list] = {}
    check_cells: dict[str, list] = {}
    functions: dict[str, str] = {}  # function defined in an exercise cell -> its exercise
    for cell in nb.cells:
        ids = EXERCISE_ID.findall(cell.source) if cell.cell_type == "code" else []
        if ids:
            if ids[0] not in exercise_cells:
                order.append(ids[0])
                exercise_cells[ids[0]], check_cells[ids[0]] = [], []
            exercise_cells[ids[0]].append(cell)
            names = [a or b for a, b in DEFINED.findall(cell.source)]
            functions.update(dict.fromkeys(names, ids[0]))
    other_errors: list[str] = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or EXERCISE_ID.findall(cell.source):
            continue
        exercise = _checked_exercise(cell, functions, set(order))
        error = _error_of(cell)
        if exercise is not None:
            check_cells[exercise].append(cell)
        elif error is not None and error.get("ename") not in NOT_ATTEMPTED_ERRORS:
            other_errors.append(f"cell {index} raised {_one_line(_describe(error), 200)}")

    results = []
    for exercise in order:
        results.append(
            ExerciseResult(
                exercise, *_status(exercise, exercise_cells[exercise], check_cells[exercise])
            )
        )
    return results, other_errors


def _status(exercise: str, cells: list, checks: list) -> tuple[str, str]:
    for cell in cells:
        error = _error_of(cell)
        if error is None:
            continue
        if error.get("ename") in NOT_ATTEMPTED_ERRORS:
            return NOT_ATTEMPTED, NOT_ATTEMPTED_FEEDBACK
        return FAILED, _one_line(_describe(error))
    if not checks:
        return ERROR, "no check cell checks this exercise"
    for cell in checks:
        error = _error_of(cell)
        if error is not None:
            ename, evalue = error.get("ename", ""), error.get("evalue", "")
            if ename in NOT_ATTEMPTED_ERRORS:
                return NOT_ATTEMPTED, NOT_ATTEMPTED_FEEDBACK
            if ename in FEEDBACK_ERRORS:
                return FAILED, _one_line(evalue)
            if ename == "KeyboardInterrupt":
                return ERROR, "the check cell timed out"
            return ERROR, _one_line(f"the check could not run: {_describe(error)}")
        if cell.get("execution_count") is None:
            return ERROR, "the check cell was not executed"
        if f"Exercise {exercise} passed" not in _stdout_of(cell):
            return ERROR, "the check cell ran but printed no 'passed' line"
    return PASSED, ""


def grade_notebook(path: Path, timeout: int = 900) -> NotebookResult:
    result = NotebookResult(str(path))
    try:
        nb = load_notebook(path)
    except GradeInputError as exc:
        result.problem = str(exc)
        return result
    problem = execute(nb, path.resolve().parent, timeout)
    result.exercises, result.other_errors = assess(nb)
    if problem:
        result.problem = problem
    elif not result.exercises:
        result.problem = "no exercises found (no cell with an '# Exercise N.M' comment)"
    return result


def collect(paths: list[Path]) -> list[Path]:
    """Expand folders to the notebooks inside them (checkpoints skipped); keep files as given."""
    found = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p for p in sorted(path.rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts
            )
        else:
            found.append(path)
    return found


def format_report(results: list[NotebookResult]) -> str:
    lines = []
    for res in results:
        lines.append(res.path)
        if res.exercises:
            width = max(len("exercise"), *(len(e.exercise) for e in res.exercises))
            lines.append(f"  {'exercise':<{width}}  {'status':<13}  feedback")
            for e in res.exercises:
                lines.append(f"  {e.exercise:<{width}}  {e.status:<13}  {e.feedback}".rstrip())
        for err in res.other_errors:
            lines.append(f"  note: {err}")
        if res.problem:
            lines.append(f"  error: {res.problem}")
        n_passed, total = res.score
        lines.append(f"  score: {n_passed}/{total}")
        lines.append("")
    n_passed = sum(r.score[0] for r in results)
    total = sum(r.score[1] for r in results)
    lines.append(f"Total: {n_passed}/{total} exercises passed in {len(results)} notebook(s).")
    return "\n".join(lines)


def write_csv(results: list[NotebookResult], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["notebook", "exercise", "status", "feedback"])
        for res in results:
            for e in res.exercises:
                writer.writerow([res.path, e.exercise, e.status, e.feedback])
            for err in res.other_errors:
                writer.writerow([res.path, "-", ERROR, err])
            if res.problem:
                writer.writerow([res.path, "-", ERROR, res.problem])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course_utils.grade",
        description="Run exercise notebooks and grade each exercise.",
    )
    parser.add_argument("paths", nargs="+", type=Path, help="notebooks or folders of notebooks")
    parser.add_argument(
        "--csv", type=Path, metavar="FILE", help="also write one row per notebook and exercise"
    )
    parser.add_argument(
        "--timeout", type=int, default=900, help="seconds allowed per cell (default 900)"
    )
    args = parser.parse_args(argv)

    notebooks = collect(args.paths)
    if not notebooks:
        print("error: no notebooks found in " + ", ".join(map(str, args.paths)), file=sys.stderr)
        return 2
    results = []
    for path in notebooks:
        print(f"grading {path} ...", file=sys.stderr, flush=True)
        results.append(grade_notebook(path, args.timeout))
    print(format_report(results))
    if args.csv:
        write_csv(results, args.csv)
        print(f"wrote {args.csv}")
    return 0 if all(r.all_passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
