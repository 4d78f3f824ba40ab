"""Grader robustness: injected mistakes must be caught, and correct alternatives must pass.

Every chapter NN with exercises has two data modules. ``tests/mistakes/chNN.py``::

    NOTEBOOK = "solutions/00_start_here.ipynb"
    MISTAKES = [dict(exercise="0.1", name="...", old="<text of the solution region>",
                     new="<the wrong text>", feedback="<substring of the check's feedback>"), ...]

and ``tests/alternatives/chNN.py``, correct answers written differently from the solution
(other idioms and libraries, float32, loops, published variants)::

    ALTERNATIVES = [dict(exercise="0.1", name="...", code="<a whole solution region>"), ...]

An alternative's ``code`` replaces the exercise's solution region (it is dedented and then
indented like the region's BEGIN marker); an optional ``rename={"old": "new"}`` renames
parameters in the cell's ``def`` line. The grader must report that exercise as passed.

For one notebook, ONE kernel runs the solution cells in order. On reaching an exercise cell
that has mistakes, it first runs, for each mistake, the mutated exercise cell and the cells up
to the exercise's last check cell (stopping early at the first check cell that fails: that
fixes the grader's verdict), puts their outputs into a copy of the notebook, and classifies
that copy with the grader's own logic (``course_utils.grade.assess``). The mistake
counts as caught when that exercise is ``failed`` with feedback containing the expected
substring (case-insensitive), every earlier exercise is ``passed`` and no other cell failed; an
alternative counts as accepted when that exercise and every earlier one are ``passed``.
The random generators of ``random``, numpy and torch are restored after the mistakes, and then
the original cells run as usual, so the rest of the notebook sees exactly what nbval sees.
Cells after the last check cell are not run (they cannot change any verdict). Where the
grader's fast mode (``grade.select_cells`` on the notebook with the mistake) would skip some of
the cells between the exercise and its last check, the trial runs again with only the selected
cells, and the verdict must be the same (status and feedback) for the mistake to count.

Later exercises that build on a wrong function (0.2 calls 0.1's ``logsumexp``) would also fail
in a full run with the mistake; that cascade is intended and not what is tested here.
"""

from __future__ import annotations

import copy
import csv
import os
import re
import runpy
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from course_utils import grade
from course_utils.build import EXERCISE_ID

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
MISTAKES_DIR = Path(__file__).resolve().parent / "mistakes"
ALTERNATIVES_DIR = Path(__file__).resolve().parent / "alternatives"
PLANNED_CHAPTERS = [f"{n:02d}" for n in range(12)]  # the course plan: chapters 00 to 11
MIN_MISTAKES_PER_EXERCISE = 2
MIN_ALTERNATIVES_PER_EXERCISE = 2
CELL_TIMEOUT = 600
KEYS = {"exercise", "name", "old", "new", "feedback"}
# Feedback substrings that would match almost any failure, so prove nothing.
GENERIC_FEEDBACK = {
    "failed",
    "fail",
    "error",
    "exercise",
    "wrong",
    "passed",
    "does not match",
    "the reference",
    "does not match the reference",
    "input",
    "result",
    "raised",
    "check",
}
BEGIN = re.compile(r"^[ \t]*### BEGIN SOLUTION[ \t]*$", re.MULTILINE)
END = re.compile(r"^[ \t]*### END SOLUTION[ \t]*$", re.MULTILINE)


# --------------------------------------------------------------------------- data and validation


@dataclass
class Mistake:
    """A change of one exercise cell and the verdict expected for it.

    ``feedback`` is the expected substring of a ``failed`` verdict; empty for an alternative,
    which must pass.
    """

    exercise: str
    name: str
    old: str
    new: str
    feedback: str

    @property
    def alternative(self) -> bool:
        return not self.feedback


@dataclass
class Outcome:
    mistake: Mistake
    caught: bool
    detail: str  # why it was not caught, or the grader's feedback when it was
    feedback: str = ""
    seconds: float = 0.0  # running the mutated cell and its check cells


def chapter_of(path: Path) -> str:
    return path.name[:2]


def mistake_file(chapter: str) -> Path:
    return MISTAKES_DIR / f"ch{chapter}.py"


def solution_notebooks() -> dict[str, Path]:
    return {chapter_of(p): p for p in sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))}


def exercise_cells(nb) -> dict[str, int]:
    """Exercise id -> index of its (first) exercise cell."""
    found: dict[str, int] = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            for exercise in EXERCISE_ID.findall(cell.source)[:1]:
                found.setdefault(exercise, index)
    return found


def solution_spans(source: str) -> list[tuple[int, int]]:
    """Character ranges of the text between ### BEGIN SOLUTION and ### END SOLUTION lines."""
    spans = []
    for begin in BEGIN.finditer(source):
        end = END.search(source, begin.end())
        if end is not None:
            spans.append((begin.end(), end.start()))
    return spans


def load_mistakes(chapter: str) -> tuple[Path, list[Mistake]]:
    """Read ``tests/mistakes/chNN.py`` (data only) and return its notebook path and mistakes."""
    path = mistake_file(chapter)
    data = runpy.run_path(str(path))
    where = path.relative_to(ROOT)
    assert isinstance(data.get("NOTEBOOK"), str), f"{where}: NOTEBOOK must be a string path"
    assert isinstance(data.get("MISTAKES"), list) and data["MISTAKES"], (
        f"{where}: MISTAKES must be a non-empty list"
    )
    mistakes = []
    for number, entry in enumerate(data["MISTAKES"]):
        assert isinstance(entry, dict) and set(entry) == KEYS, (
            f"{where}: MISTAKES[{number}] must be a dict with exactly the keys {sorted(KEYS)}"
        )
        assert all(isinstance(entry[key], str) and (entry[key] or key == "new") for key in KEYS), (
            f"{where}: MISTAKES[{number}] ({entry.get('name')!r}): every value must be a string, "
            "non-empty except `new` (an empty `new` deletes `old`)"
        )
        mistakes.append(Mistake(**entry))
    return ROOT / data["NOTEBOOK"], mistakes


def load_alternatives(chapter: str, nb) -> tuple[list[Mistake], list[str]]:
    """Read ``tests/alternatives/chNN.py`` as changes of ``nb``'s solution regions, and problems."""
    path = ALTERNATIVES_DIR / f"ch{chapter}.py"
    if not path.exists():
        return [], [f"tests/alternatives/ch{chapter}.py is missing"]
    data = runpy.run_path(str(path))
    cells, found, problems = exercise_cells(nb), [], []
    for number, entry in enumerate(data.get("ALTERNATIVES") or []):
        label = f"tests/alternatives/ch{chapter}.py ALTERNATIVES[{number}] ({entry.get('name')!r})"
        if not isinstance(entry, dict) or not {"exercise", "name", "code"} <= set(entry) <= {
            "exercise",
            "name",
            "code",
            "rename",
        }:
            problems.append(
                f"{label}: must be a dict with the keys exercise, name, code (and rename)"
            )
            continue
        if entry["exercise"] not in cells:
            problems.append(f"{label}: {chapter} has no exercise {entry['exercise']}")
            continue
        source = nb.cells[cells[entry["exercise"]]].source
        (start, end), *_ = solution_spans(source)
        indent = source[source.rfind("\n", 0, start - 1) + 1 : start].split("###")[0]
        code = textwrap.indent(textwrap.dedent(entry["code"]).strip("\n"), indent) + "\n"
        changed = source[:start] + "\n" + code + source[end:]
        for old_name, new_name in entry.get("rename", {}).items():  # in the `def` line only
            changed = re.sub(
                r"^(\s*def .*)$",
                lambda m, o=old_name, n=new_name: re.sub(rf"\b{o}\b", n, m.group(1)),
                changed,
                count=1,
                flags=re.MULTILINE,
            )
        found.append(Mistake(entry["exercise"], entry["name"], source, changed, ""))
    for exercise in cells:
        count = sum(a.exercise == exercise for a in found)
        if count < MIN_ALTERNATIVES_PER_EXERCISE:
            problems.append(
                f"ch{chapter}: Exercise {exercise} has {count} alternative(s), at least "
                f"{MIN_ALTERNATIVES_PER_EXERCISE} are required"
            )
    return found, problems


def validate(chapter: str, notebook: Path, nb, mistakes: list[Mistake]) -> list[str]:
    """Every way the mistakes of one chapter are malformed (empty when they are fine)."""
    problems = []
    cells = exercise_cells(nb)
    seen = set()
    for m in mistakes:
        label = f"ch{chapter} mistake {m.exercise} {m.name!r}"
        if (m.exercise, m.name) in seen:
            problems.append(f"{label}: duplicate name")
        seen.add((m.exercise, m.name))
        if m.exercise not in cells:
            problems.append(
                f"{label}: {notebook.name} has no exercise {m.exercise} (it has {sorted(cells)})"
            )
            continue
        source = nb.cells[cells[m.exercise]].source
        count = source.count(m.old)
        if count != 1:
            problems.append(
                f"{label}: `old` must occur exactly once in the cell of Exercise {m.exercise}, it occurs "
                f"{count} times (did the solution change?): {m.old!r}"
            )
            continue
        start = source.index(m.old)
        if not any(a <= start and start + len(m.old) <= b for a, b in solution_spans(source)):
            problems.append(
                f"{label}: `old` is not inside a ### BEGIN/END SOLUTION region: {m.old!r}"
            )
        if m.new == m.old:
            problems.append(f"{label}: `new` equals `old`")
        feedback = m.feedback.strip().lower()
        if len(feedback) < 10 or feedback in GENERIC_FEEDBACK:
            problems.append(
                f"{label}: feedback {m.feedback!r} is too generic to prove a specific message"
            )
    for exercise in cells:
        count = sum(m.exercise == exercise for m in mistakes)
        if count < MIN_MISTAKES_PER_EXERCISE:
            problems.append(
                f"ch{chapter}: Exercise {exercise} has {count} mistake(s), at least "
                f"{MIN_MISTAKES_PER_EXERCISE} are required"
            )
    return problems


# --------------------------------------------------------------------------- one kernel per notebook

_SAVE_RNG = """\
import sys as _course_sys, random as _course_random
_course_rng = {"random": _course_random.getstate()}
if "numpy" in _course_sys.modules:
    _course_rng["numpy"] = _course_sys.modules["numpy"].random.get_state()
if "torch" in _course_sys.modules:
    _course_torch = _course_sys.modules["torch"]
    _course_rng["torch"] = _course_torch.get_rng_state()
    if _course_torch.cuda.is_available() and _course_torch.cuda.is_initialized():
        _course_rng["cuda"] = _course_torch.cuda.get_rng_state_all()
"""
_RESTORE_RNG = """\
_course_random.setstate(_course_rng["random"])
if "numpy" in _course_rng:
    _course_sys.modules["numpy"].random.set_state(_course_rng["numpy"])
if "torch" in _course_rng:
    _course_sys.modules["torch"].set_rng_state(_course_rng["torch"])
if "cuda" in _course_rng:
    _course_sys.modules["torch"].cuda.set_rng_state_all(_course_rng["cuda"])
del _course_rng
"""


class Kernel:
    """One kernel of the current environment (IPC transport, like course_utils.build.run_notebook)."""

    def __init__(self, nb, cwd: Path, timeout: int = CELL_TIMEOUT):
        from nbclient import NotebookClient
        from traitlets.config import Config

        self._folder = tempfile.TemporaryDirectory(prefix="course-kernel-")
        config = Config()
        if os.name == "posix":
            config.KernelManager.transport = "ipc"
            config.KernelManager.ip = os.path.join(self._folder.name, "kernel")
        self.client = NotebookClient(
            copy.deepcopy(nb),
            config=config,
            kernel_name="python3",
            timeout=timeout,
            allow_errors=True,
            interrupt_on_timeout=True,
            record_timing=False,
            resources={"metadata": {"path": str(cwd)}},
        )
        self._context = None

    def __enter__(self):
        self.client.reset_execution_trackers()
        self._context = self.client.setup_kernel()
        self._context.__enter__()
        return self

    def __exit__(self, *exc):
        try:
            return self._context.__exit__(*exc)
        finally:
            self._folder.cleanup()

    def run(self, cell, index: int):
        """Execute a copy of ``cell`` (errors allowed); returns the copy with its outputs."""
        cell = copy.deepcopy(cell)
        if cell.cell_type != "code":
            return cell
        cell.outputs, cell.execution_count = [], None
        return self.client.execute_cell(
            cell, index, execution_count=self.client.code_cells_executed + 1
        )

    def run_hidden(self, source: str) -> None:
        cell = nbformat.v4.new_code_cell(source)
        result = self.client.execute_cell(cell, 0, store_history=False)
        error = grade._error_of(result)
        assert error is None, f"the test's hidden cell failed: {grade._describe(error)}"


def _check_cells_end(nb, index: int) -> int:
    """Index of the last check cell of the exercise at ``index`` (before the next exercise)."""
    last = index
    for j in range(index + 1, len(nb.cells)):
        cell = nb.cells[j]
        if cell.cell_type != "code":
            continue
        if EXERCISE_ID.search(cell.source):
            break
        if grade.CHECK_CALL.search(cell.source):
            last = j
    return last


def _trial(kernel, nb, executed, index: int, mutated, later) -> nbformat.NotebookNode:
    """The notebook as graded with ``mutated`` at ``index`` followed by the cells ``later``."""
    trial = copy.deepcopy(executed)
    trial.cells = [*trial.cells[:index], kernel.run(mutated, index)]
    # The grader's verdict is fixed by the first error, in the exercise cell or in a check
    # cell: stop there (later check cells may be long training runs).
    decided = grade._error_of(trial.cells[-1]) is not None
    for j in later:
        if decided:
            break
        trial.cells.append(kernel.run(nb.cells[j], j))
        failed = grade._error_of(trial.cells[-1]) is not None
        decided = failed and bool(grade.CHECK_CALL.search(nb.cells[j].source))
    return trial


def judge(trial, exercise: str, mistake: Mistake) -> Outcome:
    """Classify a partly executed notebook with the grader and compare with the expectation."""
    results, other_errors = grade.assess(trial)
    by_id = {r.exercise: r for r in results}
    mine = by_id.get(exercise)
    if mine is None:
        return Outcome(mistake, False, "the grader found no such exercise")
    problems = []
    if mistake.alternative:
        if mine.status != grade.PASSED:
            problems.append(f"status is {mine.status!r}, expected 'passed'")
    elif mine.status != grade.FAILED:
        problems.append(f"status is {mine.status!r}, expected 'failed'")
    elif mistake.feedback.lower() not in mine.feedback.lower():
        problems.append(f"feedback lacks {mistake.feedback!r}")
    for r in results:
        if r.exercise != exercise and r.status != grade.PASSED:
            problems.append(f"Exercise {r.exercise} is {r.status!r} ({r.feedback})")
    problems.extend(f"other cell: {e}" for e in other_errors)
    if problems:
        detail = "; ".join(problems) + f"; grader feedback: {mine.feedback!r}"
        return Outcome(mistake, False, detail, mine.feedback)
    return Outcome(mistake, True, mine.feedback, mine.feedback)


@dataclass
class Report:
    outcomes: list[Outcome]
    seconds_total: float
    seconds_plain: float
    solution_errors: list[str]

    @property
    def caught(self) -> int:
        return sum(o.caught for o in self.outcomes if not o.mistake.alternative)

    @property
    def accepted(self) -> int:
        return sum(o.caught for o in self.outcomes if o.mistake.alternative)

    @property
    def tried(self) -> tuple[int, int]:
        alternatives = sum(o.mistake.alternative for o in self.outcomes)
        return len(self.outcomes) - alternatives, alternatives


def run_mistakes(notebook: Path, mistakes: list[Mistake], timeout: int = CELL_TIMEOUT) -> Report:
    """Run ``notebook`` once in one kernel, trying every mistake at its exercise (see module doc)."""
    nb = nbformat.read(notebook, as_version=4)
    cells = exercise_cells(nb)
    by_index: dict[int, list[Mistake]] = {}
    for m in mistakes:
        by_index.setdefault(cells[m.exercise], []).append(m)
    last_needed = max(_check_cells_end(nb, index) for index in cells.values())
    executed = copy.deepcopy(nb)
    outcomes: list[Outcome] = []
    solution_errors: list[str] = []
    plain = 0.0
    start = time.perf_counter()
    with Kernel(nb, notebook.resolve().parent, timeout) as kernel:
        for index in range(last_needed + 1):
            cell = nb.cells[index]
            if index in by_index:
                exercise = EXERCISE_ID.findall(cell.source)[0]
                end = _check_cells_end(nb, index)
                kernel.run_hidden(_SAVE_RNG)
                for m in by_index[index]:
                    t0 = time.perf_counter()
                    mutated = copy.deepcopy(cell)
                    mutated.source = cell.source.replace(m.old, m.new, 1)
                    trial = _trial(kernel, nb, executed, index, mutated, range(index + 1, end + 1))
                    outcome = judge(trial, exercise, m)
                    kernel.run_hidden(_RESTORE_RNG)
                    kernel.run_hidden(_SAVE_RNG)
                    # Fast grading mode runs only the cells the checks need: the same verdict?
                    with_mistake = copy.deepcopy(nb)
                    with_mistake.cells[index] = mutated
                    selected, _ = grade.select_cells(with_mistake)
                    # (markdown cells never run: they take no part in the comparison)
                    code = [j for j in range(index + 1, end + 1) if nb.cells[j].cell_type == "code"]
                    fast = [j for j in selected if index < j <= end] if selected else code
                    if fast != code:
                        trial = _trial(kernel, nb, executed, index, mutated, fast)
                        again = judge(trial, exercise, m)
                        if (again.caught, again.feedback) != (outcome.caught, outcome.feedback):
                            outcome.caught = False
                            outcome.detail += f"; fast mode differs: {again.detail}"
                        kernel.run_hidden(_RESTORE_RNG)
                        kernel.run_hidden(_SAVE_RNG)
                    outcomes.append(outcome)
                    outcomes[-1].seconds = time.perf_counter() - t0
                kernel.run_hidden(_RESTORE_RNG)
            t0 = time.perf_counter()
            executed.cells[index] = kernel.run(cell, index)
            plain += time.perf_counter() - t0
            error = grade._error_of(executed.cells[index])
            if error is not None:
                described = grade._one_line(grade._describe(error), 200)
                solution_errors.append(f"solution cell {index} raised {described}")
                break
    return Report(outcomes, time.perf_counter() - start, plain, solution_errors)


def summary(chapter: str, report: Report) -> str:
    mistakes, alternatives = report.tried
    return (
        f"ch{chapter}: caught {report.caught} / tried {mistakes} mistakes, accepted "
        f"{report.accepted} / tried {alternatives} alternatives ({report.seconds_total:.0f} s in "
        f"total, {report.seconds_plain:.0f} s of it the plain solution cells)"
    )


# --------------------------------------------------------------------------- tests


def test_mistake_files_are_well_formed_and_cover_every_exercise():
    """Fast, kernel-free: every mistake file is valid and every exercise has >= 2 mistakes."""
    problems = []
    notebooks = solution_notebooks()
    for chapter, notebook in notebooks.items():
        nb = nbformat.read(notebook, as_version=4)
        if exercise_cells(nb) and not mistake_file(chapter).exists():
            problems.append(
                f"{notebook.relative_to(ROOT)} has exercises but no tests/mistakes/ch{chapter}.py"
            )
    for path in sorted(MISTAKES_DIR.glob("ch[0-9][0-9].py")):
        chapter = path.stem[2:]
        notebook, mistakes = load_mistakes(chapter)
        if not notebook.exists():
            continue  # a chapter being written: the per-chapter test says so
        if chapter_of(notebook) != chapter:
            problems.append(
                f"{path.name}: NOTEBOOK {notebook.name} is not a chapter {chapter} notebook"
            )
        nb = nbformat.read(notebook, as_version=4)
        problems += validate(chapter, notebook, nb, mistakes)
        problems += load_alternatives(chapter, nb)[1]
    assert not problems, "\n".join(problems)


def _chapters() -> list[str]:
    found = set(PLANNED_CHAPTERS) | set(solution_notebooks())
    found |= {p.stem[2:] for p in MISTAKES_DIR.glob("ch[0-9][0-9].py")}
    return sorted(found)


@pytest.mark.parametrize("chapter", _chapters(), ids=lambda c: f"ch{c}")
def test_mistakes_caught_and_alternatives_accepted(chapter, record_property):
    notebooks = solution_notebooks()
    if not mistake_file(chapter).exists():
        if chapter not in notebooks:
            pytest.skip(
                f"chapter {chapter} has no solution notebook and no tests/mistakes/ch{chapter}.py yet"
            )
        nb = nbformat.read(notebooks[chapter], as_version=4)
        if not exercise_cells(nb):
            pytest.skip(f"{notebooks[chapter].name} has no exercises")
        pytest.fail(
            f"{notebooks[chapter].relative_to(ROOT)} has exercises but no tests/mistakes/ch{chapter}.py"
        )
    notebook, mistakes = load_mistakes(chapter)
    if not notebook.exists():
        pytest.skip(
            f"{notebook.relative_to(ROOT)} (named by tests/mistakes/ch{chapter}.py) does not exist yet"
        )
    nb = nbformat.read(notebook, as_version=4)
    alternatives, problems = load_alternatives(chapter, nb)
    problems += validate(chapter, notebook, nb, mistakes)
    assert not problems, "\n".join(problems)

    report = run_mistakes(notebook, mistakes + alternatives)
    line = summary(chapter, report)
    print(line)
    for o in report.outcomes:
        mark = (
            ("accepted" if o.caught else "REJECTED")
            if o.mistake.alternative
            else ("caught" if o.caught else "MISSED")
        )
        print(f"  {mark}  {o.mistake.exercise}  {o.mistake.name} ({o.seconds:.1f} s): {o.detail}")
    record_property("mistakes_caught", report.caught)
    record_property("mistakes_tried", report.tried[0])
    record_property("alternatives_accepted", report.accepted)
    record_property("alternatives_tried", report.tried[1])
    record_property("mistakes_summary", line)
    assert not report.solution_errors, "the unmodified solution failed: " + "; ".join(
        report.solution_errors
    )
    missed = [o for o in report.outcomes if not o.caught]
    assert not missed, (
        line
        + "\n"
        + "\n".join(
            f"  Exercise {o.mistake.exercise}, {'alternative' if o.mistake.alternative else 'mistake'} "
            f"{o.mistake.name!r}: {o.detail}"
            for o in missed
        )
    )


E2E_CHAPTER, E2E_EXERCISE = (
    "00",
    "0.2",
)  # the last exercise of a fast chapter: no later exercise uses it


def test_grade_cli_agrees_with_the_in_kernel_path(tmp_path):
    """One mistake graded end to end by ``python -m course_utils.grade`` gives the same verdicts."""
    notebook, mistakes = load_mistakes(E2E_CHAPTER)
    mistake = next(m for m in mistakes if m.exercise == E2E_EXERCISE)
    in_kernel = run_mistakes(notebook, [mistake]).outcomes[0]
    assert in_kernel.caught, in_kernel.detail

    nb = nbformat.read(notebook, as_version=4)
    cell = nb.cells[exercise_cells(nb)[E2E_EXERCISE]]
    cell.source = cell.source.replace(mistake.old, mistake.new, 1)
    submission = tmp_path / "submission.ipynb"
    nbformat.write(nb, submission)
    report = tmp_path / "grades.csv"
    done = subprocess.run(
        [sys.executable, "-m", "course_utils.grade", str(submission), "--csv", str(report)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    with report.open(newline="") as handle:
        rows = {row["exercise"]: row for row in csv.DictReader(handle)}
    for exercise in exercise_cells(nb):
        expected = grade.FAILED if exercise == E2E_EXERCISE else grade.PASSED
        assert rows[exercise]["status"] == expected, done.stdout
    assert rows[E2E_EXERCISE]["feedback"] == in_kernel.feedback
    assert mistake.feedback.lower() in rows[E2E_EXERCISE]["feedback"].lower()
