"""The grading CLI on real submissions of chapter 00: passed, failed, not attempted, syntax error."""

import csv
import shutil
from pathlib import Path

import nbformat
import pytest

from course_utils import grade

ROOT = Path(__file__).resolve().parent.parent
EXERCISE = ROOT / "notebooks" / "00_start_here.ipynb"
SOLUTION = ROOT / "solutions" / "00_start_here.ipynb"

NAIVE_LOGSUMEXP = """# Exercise 0.1: a numerically stable log-sum-exp
def logsumexp(x, axis=-1, keepdims=False):
    return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))
"""
BROKEN_LOGSUMEXP = """# Exercise 0.1: a numerically stable log-sum-exp
def logsumexp(x, axis=-1, keepdims=False:
    return 0
"""


def _submission(path: Path, exercise_source: str | None) -> Path:
    """A copy of the exercise notebook with exercise 0.1's cell replaced (None: unmodified)."""
    nb = nbformat.read(EXERCISE, as_version=4)
    if exercise_source is not None:
        cell = next(
            c for c in nb.cells if c.cell_type == "code" and c.source.startswith("# Exercise 0.1")
        )
        cell.source = exercise_source
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    shutil.copy(SOLUTION, folder / "alice.ipynb")  # everything right
    _submission(folder / "bob.ipynb", NAIVE_LOGSUMEXP)  # a wrong answer
    _submission(folder / "carol.ipynb", None)  # nothing attempted
    _submission(folder / "dave.ipynb", BROKEN_LOGSUMEXP)  # a syntax error
    (folder / ".ipynb_checkpoints").mkdir()
    shutil.copy(EXERCISE, folder / ".ipynb_checkpoints" / "carol-checkpoint.ipynb")  # ignored
    before = {p.name: p.read_bytes() for p in folder.glob("*.ipynb")}
    report = folder / "grades.csv"
    code = grade.main([str(folder), "--csv", str(report)])
    with report.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    after = {p.name: p.read_bytes() for p in folder.glob("*.ipynb")}
    return code, rows, before, after


def _status(rows, who, exercise):
    (row,) = [
        r for r in rows if r["notebook"].endswith(who + ".ipynb") and r["exercise"] == exercise
    ]
    return row["status"], row["feedback"]


def test_folder_grading_exit_code_and_csv_rows(graded):
    code, rows, _, _ = graded
    assert code == 1  # not everyone passed
    assert {Path(r["notebook"]).name for r in rows} == {
        "alice.ipynb",
        "bob.ipynb",
        "carol.ipynb",
        "dave.ipynb",
    }
    assert len([r for r in rows if r["exercise"] != "-"]) == 8  # four notebooks, two exercises each
    # dave's broken cell leaves `logsumexp` undefined: the demo cells that use it are listed too
    others = [r for r in rows if r["exercise"] == "-"]
    assert others and all(
        r["notebook"].endswith("dave.ipynb") and "NameError" in r["feedback"] for r in others
    )


def test_correct_submission_passes(graded):
    _, rows, _, _ = graded
    assert _status(rows, "alice", "0.1") == ("passed", "")
    assert _status(rows, "alice", "0.2") == ("passed", "")


def test_wrong_answer_fails_with_the_checks_feedback(graded):
    _, rows, _, _ = graded
    status, feedback = _status(rows, "bob", "0.1")
    assert status == "failed" and "overflow or underflow" in feedback


def test_unmodified_notebook_is_not_attempted(graded):
    _, rows, _, _ = graded
    for exercise in ("0.1", "0.2"):
        status, feedback = _status(rows, "carol", exercise)
        assert status == "not attempted" and feedback == "still raises NotImplementedError"


def test_syntax_error_is_that_exercise_failing(graded):
    _, rows, _, _ = graded
    status, feedback = _status(rows, "dave", "0.1")
    assert (
        status == "failed"
        and feedback == "your cell has a SyntaxError: invalid syntax (line 2 of the cell)"
    )
    assert _status(rows, "dave", "0.2")[0] == "not attempted"  # untouched, still the stub


def test_submissions_are_not_modified(graded):
    _, _, before, after = graded
    assert before == after


def test_report_table(capsys):
    results = [
        grade.NotebookResult(
            "a.ipynb",
            [
                grade.ExerciseResult("0.1", "passed"),
                grade.ExerciseResult("0.2", "failed", "wrong sign"),
            ],
        ),
    ]
    text = grade.format_report(results)
    assert "  0.2       failed         wrong sign" in text
    assert "score: 1/2" in text and "Total: 1/2 exercises passed in 1 notebook(s)." in text


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.ipynb", None, "no such file or folder"),
        ("essay.txt", "hello", "not a notebook (expected a .ipynb file)"),
        ("broken.ipynb", "{ not json", "not valid notebook JSON"),
        ("empty.ipynb", "{}", "not a valid Jupyter notebook"),
    ],
)
def test_bad_paths_get_a_one_line_error(tmp_path, capsys, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    assert grade.main([str(path)]) == 1
    out = capsys.readouterr().out
    (line,) = [ln for ln in out.splitlines() if "error:" in ln]
    assert message in line and str(path) in line
    assert "Traceback" not in out


def test_empty_folder_is_a_usage_error(tmp_path, capsys):
    assert grade.main([str(tmp_path)]) == 2
    assert "no notebooks found" in capsys.readouterr().err


# ------------------------------------------------------------ which cell checks which exercise

SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_every_solution_notebook_grades_all_passed(path):
    """The grader's verdict on each solution's stored outputs (nbval proves they reproduce)."""
    result = grade.NotebookResult(str(path))
    result.exercises, result.other_errors = grade.assess(nbformat.read(path, as_version=4))
    assert result.exercises and result.all_passed, grade.format_report([result])  # exit code 0


def _executed(cells):
    """A notebook of (source, stdout, error evalue or None) cells, as if executed."""
    nb = nbformat.v4.new_notebook()
    for source, stdout, error in cells:
        cell = nbformat.v4.new_code_cell(source, execution_count=1)
        if stdout:
            cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text=stdout))
        if error:
            cell.outputs.append(
                nbformat.v4.new_output("error", ename=error[0], evalue=error[1], traceback=[])
            )
        nb.cells.append(cell)
    return nb


def test_result_cells_after_the_last_exercise_are_not_its_checks():
    nb = _executed(
        [
            ("# Exercise 1.1: a\ndef f(x):\n    return x", "", None),
            ("# NBVAL_CHECK_OUTPUT\ncheck_f(f)", "Exercise 1.1 passed: fine.\n", None),
            ("# Exercise 1.2: b\ndef g(x):\n    return x", "", None),
            ("# NBVAL_CHECK_OUTPUT\ncheck_g(g)", "Exercise 1.2 passed: fine.\n", None),
            (
                "# NBVAL_CHECK_OUTPUT\nprint(f'expert return {ret:.1f}')",
                "expert return 500.0\n",
                None,
            ),
        ]
    )
    results, other = grade.assess(nb)
    assert [(r.exercise, r.status) for r in results] == [("1.1", "passed"), ("1.2", "passed")]
    assert other == []


def test_a_check_cell_belongs_to_the_exercise_it_checks_wherever_it_is():
    nb = _executed(
        [
            ("# Exercise 1.1: a\ndef f(x):\n    return x", "", None),
            ("# Exercise 1.2: b\ndef g(x):\n    return x", "", None),
            ("check_g(g)", "", ("ExerciseError", "Exercise 1.2: wrong sign (input: x)")),
            (
                "check_f(f)  # a check cell without the nbval marker",
                "Exercise 1.1 passed: fine.\n",
                None,
            ),
            (
                "# NBVAL_CHECK_OUTPUT\nprint(undefined)",
                "",
                ("NameError", "name 'undefined' is not defined"),
            ),
        ]
    )
    results, other = grade.assess(nb)
    assert [(r.exercise, r.status) for r in results] == [("1.1", "passed"), ("1.2", "failed")]
    assert results[1].feedback == "Exercise 1.2: wrong sign (input: x)"
    assert other == ["cell 4 raised NameError: name 'undefined' is not defined"]


def test_a_check_that_could_not_run_is_matched_by_its_argument_or_its_name():
    nb = _executed(
        [
            ("# Exercise 0.1: a\ndef logsumexp(x):\n    return x", "", None),
            ("# Exercise 0.2: b\ndef boltzmann(q):\n    return q", "", None),
            (
                "check_boltzmann(boltzmann)",
                "",
                ("NameError", "name 'check_boltzmann' is not defined"),
            ),
            (
                "check_logsumexp(my_renamed_function)",
                "",
                ("NameError", "name 'my_renamed_function' is not defined"),
            ),
        ]
    )
    results, _ = grade.assess(nb)
    assert [(r.exercise, r.status) for r in results] == [("0.1", "error"), ("0.2", "error")]
    assert "NameError" in results[0].feedback and "check_boltzmann" in results[1].feedback
