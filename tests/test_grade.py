"""The grading CLI on real submissions of chapter 00: passed, failed, not attempted, syntax error."""

import csv
import sys
import uuid
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


@pytest.fixture(scope="module", params=["fast", "full"])
def graded(request, tmp_path_factory):
    """A class of four graded in fast mode (the default) and with --full: same verdicts."""
    folder = tmp_path_factory.mktemp("submissions")
    shutil.copy(SOLUTION, folder / "alice.ipynb")  # everything right
    _submission(folder / "bob.ipynb", NAIVE_LOGSUMEXP)  # a wrong answer
    _submission(folder / "carol.ipynb", None)  # nothing attempted
    _submission(folder / "dave.ipynb", BROKEN_LOGSUMEXP)  # a syntax error
    (folder / ".ipynb_checkpoints").mkdir()
    shutil.copy(EXERCISE, folder / ".ipynb_checkpoints" / "carol-checkpoint.ipynb")  # ignored
    before = {p.name: p.read_bytes() for p in folder.glob("*.ipynb")}
    report = folder / "grades.csv"
    mode = ["--full"] if request.param == "full" else []
    code = grade.main([str(folder), "--csv", str(report), "--jobs", "2", *mode])
    with report.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    after = {p.name: p.read_bytes() for p in folder.glob("*.ipynb")}
    return code, rows, before, after, request.param


def _status(rows, who, exercise):
    (row,) = [
        r for r in rows if r["notebook"].endswith(who + ".ipynb") and r["exercise"] == exercise
    ]
    return row["status"], row["feedback"]


def test_folder_grading_exit_code_and_csv_rows(graded):
    code, rows, _, _, mode = graded
    assert code == 1  # not everyone passed
    assert {Path(r["notebook"]).name for r in rows} == {
        "alice.ipynb",
        "bob.ipynb",
        "carol.ipynb",
        "dave.ipynb",
    }
    assert len([r for r in rows if r["exercise"] != "-"]) == 8  # four notebooks, two exercises each
    # dave's broken cell leaves `logsumexp` undefined: the demo cells that use it are listed too
    # when they run (--full); fast mode does not run demo cells that no check needs
    others = [r for r in rows if r["exercise"] == "-"]
    assert (others or mode == "fast") and all(
        r["notebook"].endswith("dave.ipynb") and "NameError" in r["feedback"] for r in others
    )


def test_correct_submission_passes(graded):
    _, rows, _, _, _ = graded
    assert _status(rows, "alice", "0.1") == ("passed", "")
    assert _status(rows, "alice", "0.2") == ("passed", "")


def test_wrong_answer_fails_with_the_checks_feedback(graded):
    _, rows, _, _, _ = graded
    status, feedback = _status(rows, "bob", "0.1")
    assert status == "failed" and "overflow or underflow" in feedback


def test_unmodified_notebook_is_not_attempted(graded):
    _, rows, _, _, _ = graded
    for exercise in ("0.1", "0.2"):
        status, feedback = _status(rows, "carol", exercise)
        assert status == "not attempted" and feedback == "still raises NotImplementedError"


def test_syntax_error_is_that_exercise_failing(graded):
    _, rows, _, _, _ = graded
    status, feedback = _status(rows, "dave", "0.1")
    assert (
        status == "failed"
        and feedback == "your cell has a SyntaxError: invalid syntax (line 2 of the cell)"
    )
    assert _status(rows, "dave", "0.2")[0] == "not attempted"  # untouched, still the stub


def test_submissions_are_not_modified(graded):
    _, _, before, after, _ = graded
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


# ------------------------------------------------------------------ fast mode: which cells run


def _notebook(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    return nb


def test_fast_mode_keeps_what_the_checks_need_and_skips_the_rest():
    nb = _notebook(
        "import numpy as np\nfrom course_utils.checks.ch00 import check_f",  # 0 setup
        "data = np.arange(3)\nplt_title = 'demo'",  # 1 defines data
        "data.sort()",  # 2 changes data in place
        "heavy = [i**2 for i in range(10**6)]\nprint(len(heavy))",  # 3 a demo nothing needs
        "# Exercise 1.1: f\ndef f(x):\n    return x + offset(data)",  # 4 reads data and offset
        "def offset(v):\n    return v.sum()",  # 5 defined after the exercise, before its check
        "check_f(f)",  # 6 a check
        "import matplotlib.pyplot as plt\nplt.plot(data)",  # 7 a figure after the exercises
        "print(np.mean(data))",  # 8 reads data, changes nothing, needed by nothing
        "torch.manual_seed(0)\nresult = train(data)",  # 9 reseeds for its own demo: not setup
        "check_f(f, result)",  # 10 a check that needs the demo's result (and so data)
    )
    cells, why = grade.select_cells(nb)
    assert why == "" and cells == [0, 1, 2, 4, 5, 6, 9, 10]


@pytest.mark.parametrize(
    "source", ["%%time\nx = 1", "exec('x = 1')", "x = globals()['y']", "def broken(:\n    pass"]
)
def test_fast_mode_falls_back_to_full_when_a_cell_cannot_be_read(source):
    nb = _notebook("import numpy as np", source, "# Exercise 1.1: f\ndef f(x):\n    return x")
    cells, why = grade.select_cells(nb)
    assert cells is None and why.startswith("cell 1 cannot be analysed")


def test_a_broken_exercise_cell_does_not_force_full_mode():
    nb = _notebook("import numpy as np", "# Exercise 1.1: f\ndef f(x:\n    return x", "check_f(f)")
    assert grade.select_cells(nb) == ([0, 1, 2], "")


def test_fast_and_full_mode_agree_on_every_solution_notebook_stored_outputs():
    """Fast mode on each solution notebook keeps every exercise and check cell (the verdicts
    then come from the same cells as in the stored full run, graded in test_notebooks)."""
    for path in SOLUTIONS:
        nb = nbformat.read(path, as_version=4)
        cells, why = grade.select_cells(nb)
        assert cells is not None, f"{path.name}: {why}"
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and (
                grade.EXERCISE_ID.findall(cell.source) or grade.CHECK_CALL.search(cell.source)
            ):
                assert index in cells, (path.name, index)


# ---------------------------------------------------------------- grading untrusted notebooks

HOSTILE = {
    "spinner": "while True:\n    pass",
    "hog": "import numpy as np\nhog = np.ones(30 * 2**30 // 8)  # 30 GB",
    "wiper": (
        "import pathlib\nfor p in pathlib.Path('.').iterdir():\n"
        "    if p.is_file():\n        p.unlink()"
    ),
    "suicide": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
}


def _living_with(marker: str) -> list[int]:
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in environ.read_bytes():
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


@pytest.mark.skipif(sys.platform != "linux", reason="the memory and process checks read /proc")
def test_hostile_notebooks_are_errors_and_harm_nothing(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "class"
    folder.mkdir()
    for name, code in HOSTILE.items():
        _submission(folder / f"{name}.ipynb", "# Exercise 0.1: hostile\n" + code)
    shutil.copy(SOLUTION, folder / "alice.ipynb")
    (folder / "roster.txt").write_text("alice\n")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    marker = f"COURSE_GRADE_TEST_{uuid.uuid4().hex}"
    monkeypatch.setenv(marker, "1")  # every worker and kernel inherits it
    report = tmp_path / "grades.csv"
    code = grade.main([str(folder), "--jobs", "2", "--time-limit", "40", "--csv", str(report)])
    out = capsys.readouterr().out
    assert code == 1
    with report.open(newline="") as handle:
        rows = {(Path(r["notebook"]).stem, r["exercise"]): r for r in csv.DictReader(handle)}
    assert rows[("alice", "0.1")]["status"] == rows[("alice", "0.2")]["status"] == "passed"
    reasons = {
        "spinner": "stopped after 40 s, the time limit per notebook",
        "hog": "ran out of memory (the limit is 8 GiB per process)",
        "suicide": "the kernel died",
    }
    for name, reason in reasons.items():
        assert rows[(name, "-")]["status"] == "error" and reason in rows[(name, "-")]["feedback"]
    assert rows[("wiper", "0.1")]["status"] == "error"  # it defined no logsumexp to check
    assert "NameError" in rows[("wiper", "0.1")]["feedback"]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing touched
    assert "Traceback" not in out
    assert _living_with(marker) == [], "a kernel or worker outlived its notebook"
