"""The solutions -> exercises generator: markers, indentation, markdown, stability, errors."""

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from course_utils import build
from course_utils.build import (
    EXERCISE_ID,
    ROOT,
    MarkerError,
    make_exercise,
    render,
    stale_notebooks,
)

SOLUTION_CELL = """# Exercise 3.2: a function with a nested region
def f(x):
    y = 2 * x
    if y > 0:
        ### BEGIN SOLUTION
        return y + 1
        ### END SOLUTION
    return y"""


def _notebook(*cells):
    return new_notebook(
        cells=list(cells),
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )


def test_code_region_becomes_stub_at_marker_indentation():
    cell = new_code_cell(
        SOLUTION_CELL, execution_count=3, outputs=[new_output("stream", text="hi\n")]
    )
    out = make_exercise(_notebook(cell)).cells[0]
    assert out.source.splitlines() == [
        "# Exercise 3.2: a function with a nested region",
        "def f(x):",
        "    y = 2 * x",
        "    if y > 0:",
        "        # YOUR CODE HERE",
        '        raise NotImplementedError("Exercise 3.2: replace this line with your code")',
        "    return y",
    ]
    assert out.outputs == [] and out.execution_count is None


def test_generated_stub_is_valid_python_that_raises():
    source = make_exercise(_notebook(new_code_cell(SOLUTION_CELL))).cells[0].source
    namespace = {}
    exec(compile(source, "<cell>", "exec"), namespace)
    with pytest.raises(NotImplementedError, match=r"Exercise 3\.2"):
        namespace["f"](1)


def test_several_regions_and_untouched_cells():
    source = (
        "# Exercise 1.1\na = 1\n### BEGIN SOLUTION\nb = 2\n### END SOLUTION\nc = 3\n"
        "### BEGIN SOLUTION\nd = 4\n### END SOLUTION"
    )
    plain = new_code_cell(
        "print('no exercise here')", outputs=[new_output("stream", text="x\n")], execution_count=1
    )
    nb = make_exercise(_notebook(new_code_cell(source), plain))
    assert nb.cells[0].source.count("raise NotImplementedError") == 2
    assert "b = 2" not in nb.cells[0].source and "c = 3" in nb.cells[0].source
    assert nb.cells[1].source == plain.source and nb.cells[1].outputs == []


def test_markdown_region_becomes_your_answer_here():
    cell = new_markdown_cell(
        "Why?\n\n<!-- BEGIN SOLUTION -->\nBecause the KL is non-negative.\n<!-- END SOLUTION -->\n\nNext."
    )
    out = make_exercise(_notebook(cell)).cells[0]
    assert out.source == "Why?\n\nYour answer here.\n\nNext."


def test_input_notebook_is_not_modified_and_widget_state_dropped():
    nb = _notebook(new_code_cell(SOLUTION_CELL, outputs=[new_output("stream", text="x\n")]))
    nb.metadata["widgets"] = {"state": {}}
    before = render(nb)
    out = make_exercise(nb)
    assert render(nb) == before
    assert "widgets" not in out.metadata


def test_regeneration_is_byte_stable(tmp_path):
    solutions, notebooks = tmp_path / "solutions", tmp_path / "notebooks"
    solutions.mkdir()
    nbformat.write(_notebook(new_code_cell(SOLUTION_CELL)), solutions / "03_x.ipynb")
    assert [p.name for p in build.build(solutions, notebooks)] == ["03_x.ipynb"]
    first = (notebooks / "03_x.ipynb").read_bytes()
    assert build.build(solutions, notebooks) == []  # nothing changed the second time
    assert (notebooks / "03_x.ipynb").read_bytes() == first
    assert stale_notebooks(solutions, notebooks) == []


def test_build_can_regenerate_only_some_chapters(tmp_path):
    solutions, notebooks = tmp_path / "solutions", tmp_path / "notebooks"
    solutions.mkdir()
    for name in ("03_x.ipynb", "04_y.ipynb"):
        nbformat.write(_notebook(new_code_cell(SOLUTION_CELL)), solutions / name)
    assert [p.name for p in build.build(solutions, notebooks, only=["04_y.ipynb"])] == [
        "04_y.ipynb"
    ]
    assert not (notebooks / "03_x.ipynb").exists()


def test_stale_missing_and_extra_notebooks_are_reported(tmp_path):
    solutions, notebooks = tmp_path / "solutions", tmp_path / "notebooks"
    solutions.mkdir()
    nbformat.write(_notebook(new_code_cell(SOLUTION_CELL)), solutions / "03_x.ipynb")
    build.build(solutions, notebooks)
    (notebooks / "03_x.ipynb").write_text(
        (notebooks / "03_x.ipynb").read_text().replace("return y", "return -y")
    )
    nbformat.write(_notebook(), notebooks / "99_orphan.ipynb")
    nbformat.write(_notebook(new_code_cell("x = 1")), solutions / "04_y.ipynb")
    problems = stale_notebooks(solutions, notebooks)
    assert problems == [
        "03_x.ipynb: differs from what solutions/03_x.ipynb generates",
        "04_y.ipynb: missing",
        "99_orphan.ipynb: has no solution notebook in solutions/",
    ]


@pytest.mark.parametrize(
    "source, message",
    [
        (
            "# Exercise 1.1\n### BEGIN SOLUTION\nx = 1\n### BEGIN SOLUTION\n### END SOLUTION",
            r"cell 1, line 4: nested '### BEGIN SOLUTION' \(the region opened at line 2 is not closed yet\)",
        ),
        (
            "# Exercise 1.1\nx = 1\n### END SOLUTION",
            r"cell 1, line 3: '### END SOLUTION' without a matching",
        ),
        (
            "# Exercise 1.1\n### BEGIN SOLUTION\nx = 1",
            r"cell 1, line 2: '### BEGIN SOLUTION' is never closed",
        ),
        (
            "# Exercise 1.1\n## BEGIN SOLUTION\nx = 1",
            r"cell 1, line 2: malformed marker '## BEGIN SOLUTION'",
        ),
        (
            "x = 0\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION",
            r"cell 1: a cell with a solution region needs an '# Exercise N.M'",
        ),
    ],
    ids=["nested", "unbalanced-end", "unclosed", "malformed", "no-exercise-id"],
)
def test_malformed_markers_name_notebook_cell_and_line(source, message):
    nb = _notebook(new_markdown_cell("intro"), new_code_cell(source))
    with pytest.raises(MarkerError, match=r"^solutions/bad\.ipynb: " + message):
        make_exercise(nb, "solutions/bad.ipynb")


def test_malformed_markdown_markers():
    nb = _notebook(new_markdown_cell("<!-- BEGIN SOLUTION -->\nanswer"))
    with pytest.raises(
        MarkerError, match=r"x\.ipynb: cell 0, line 1: '<!-- BEGIN SOLUTION -->' is never closed"
    ):
        make_exercise(nb, "x.ipynb")


def test_cli_reports_marker_errors_without_a_traceback(tmp_path, monkeypatch, capsys):
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    nbformat.write(
        _notebook(new_code_cell("# Exercise 1.1\n### BEGIN SOLUTION\n")), solutions / "01_bad.ipynb"
    )
    monkeypatch.setattr(build, "SOLUTIONS", solutions)
    monkeypatch.setattr(build, "NOTEBOOKS", tmp_path / "notebooks")
    monkeypatch.setattr(build, "ROOT", tmp_path)
    assert build.main([]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: solutions/01_bad.ipynb: cell 0, line 2:") and "\n" not in err


def test_repository_notebooks_are_in_sync_with_solutions():
    """notebooks/ must be exactly what `python -m course_utils.build` generates."""
    assert stale_notebooks() == [], "run `python -m course_utils.build`"


def _solution_lines(source: str) -> int:
    """Non-blank, non-comment lines between the ### BEGIN / END SOLUTION markers of a cell."""
    lines, inside = 0, False
    for line in source.splitlines():
        marker = line.strip()
        if marker in ("### BEGIN SOLUTION", "### END SOLUTION"):
            inside = marker == "### BEGIN SOLUTION"
        elif inside and marker and not marker.startswith("#"):
            lines += 1
    return lines


def exercise_sizes() -> dict[str, dict[str, int]]:
    """{chapter: {exercise id: solution lines}} for every solution notebook."""
    sizes = {}
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        sizes[path.name[:2]] = {
            EXERCISE_ID.findall(c.source)[0]: _solution_lines(c.source)
            for c in nb.cells
            if c.cell_type == "code" and EXERCISE_ID.findall(c.source)
        }
    return sizes


def test_exercises_of_chapters_00_to_05_make_the_student_build():
    """Issue 14: a build-it exercise (>= 10 solution lines) in each of 01-05, and at most a
    quarter of the exercises of 00-05 with <= 2 lines (a checked question is one line)."""
    sizes = exercise_sizes()
    print({chapter: sizes[chapter] for chapter in ("00", "01", "02", "03", "04", "05")})
    for chapter in ("01", "02", "03", "04", "05"):
        assert max(sizes[chapter].values()) >= 10, (chapter, sizes[chapter])
    small = [
        n
        for chapter in ("00", "01", "02", "03", "04", "05")
        for n in sizes[chapter].values()
        if n <= 2
    ]
    total = sum(len(sizes[chapter]) for chapter in ("00", "01", "02", "03", "04", "05"))
    assert len(small) <= total / 4, (len(small), total)


def test_exercises_of_chapters_06_to_10_make_the_student_build():
    """Issue 15: the student builds the algorithm of chapters 06, 07, 09 and 10 (the soft DQN
    update, the SAC update, the GCL cost update, the AIRL discriminator step): at least one
    exercise of >= 10 solution lines in each. Chapter 08's MaxEnt IRL loop is kept as it is."""
    sizes = exercise_sizes()
    print({chapter: sizes[chapter] for chapter in ("06", "07", "08", "09", "10")})
    for chapter in ("06", "07", "09", "10"):
        assert max(sizes[chapter].values()) >= 10, (chapter, sizes[chapter])
