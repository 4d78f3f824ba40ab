"""Executing a solution notebook twice gives identical text outputs (see docs/determinism.md).

For the fast chapters, each notebook runs twice in fresh kernels of the current environment;
every text output (stdout/stderr streams and ``text/plain`` results) must be the same in both
runs, except in cells marked ``# NBVAL_IGNORE_OUTPUT`` (device and version prints) and on
lines that report elapsed time or speed (progress bars).
"""

from __future__ import annotations

import copy
import difflib
import re
from pathlib import Path

import nbformat
import pytest

from course_utils.build import run_notebook

ROOT = Path(__file__).resolve().parent.parent
FAST_CHAPTERS = ["00", "01", "02", "04", "05", "08"]  # 5 to 20 s each on one CPU thread
IGNORE_MARK = "NBVAL_IGNORE_OUTPUT"
# Elapsed times and speeds (tqdm's "[00:01<00:00, 52.3it/s]", "took 1.2 s") are not results.
TIMING = re.compile(
    r"\d\d:\d\d[<,\]]"  # tqdm's [00:01<00:00]
    r"|\d+(\.\d+)?\s*(it/s|s/it)\b"  # speeds
    r"|\b(took|elapsed|in)\s+\d+(\.\d+)?\s*(s|ms|sec|seconds)\b"  # "took 1.2 s"
)


def _notebook(chapter: str) -> Path:
    (path,) = sorted((ROOT / "solutions").glob(f"{chapter}_*.ipynb"))
    return path


def text_outputs(nb) -> dict[int, str]:
    """Cell index -> its text outputs (stdout, stderr, text/plain), timing lines removed.

    A stream may arrive in a different number of chunks from run to run, so the chunks of each
    stream are joined before comparing.
    """
    texts = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or IGNORE_MARK in cell.source:
            continue
        sections = {"stdout": [], "stderr": [], "text/plain": [], "error": []}
        for output in cell.get("outputs", []):
            kind = output.get("output_type")
            if kind == "stream":
                sections.setdefault(output.get("name", "stdout"), []).append(output.get("text", ""))
            elif kind in ("execute_result", "display_data"):
                sections["text/plain"].append(output.get("data", {}).get("text/plain", "") + "\n")
            elif kind == "error":
                sections["error"].append(f"{output.get('ename')}: {output.get('evalue')}\n")
        lines = []
        for name, chunks in sections.items():
            if chunks:
                lines.append(f"[{name}]")
                lines.extend(
                    line for line in "".join(chunks).splitlines() if not TIMING.search(line)
                )
        texts[index] = "\n".join(lines)
    return texts


def first_difference(first: dict[int, str], second: dict[int, str]) -> str | None:
    """A description of the first cell whose text outputs differ, or None."""
    for index in sorted(set(first) | set(second)):
        a, b = first.get(index, ""), second.get(index, "")
        if a != b:
            diff = difflib.unified_diff(
                a.splitlines(), b.splitlines(), "run 1", "run 2", lineterm="", n=1
            )
            shown = "\n".join(list(diff)[:20])
            return f"cell {index} differs between two runs:\n{shown}"
    return None


def test_first_difference_reports_the_cell_and_a_diff():
    assert first_difference({1: "a", 2: "x\ny"}, {1: "a", 2: "x\nz"}).startswith("cell 2 differs")
    assert "-y" in first_difference({2: "x\ny"}, {2: "x\nz"})
    assert first_difference({1: "a"}, {1: "a"}) is None


def test_timing_lines_are_ignored():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x")])
    nb.cells[0].outputs = [
        nbformat.v4.new_output(
            "stream", name="stderr", text="100%|#####| 50/50 [00:01<00:00, 41.2it/s]\nloss 0.25\n"
        )
    ]
    assert text_outputs(nb) == {0: "[stderr]\nloss 0.25"}


def test_stream_chunks_are_joined():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x")])
    nb.cells[0].outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=t) for t in ("a b", "\nc\n")
    ]
    assert text_outputs(nb) == {0: "[stdout]\na b\nc"}


@pytest.mark.parametrize("chapter", FAST_CHAPTERS, ids=lambda c: f"ch{c}")
def test_two_runs_give_identical_text_outputs(chapter):
    path = _notebook(chapter)
    source = nbformat.read(path, as_version=4)
    runs = []
    for _ in range(2):
        nb = copy.deepcopy(source)
        run_notebook(nb, path.parent, timeout=600)
        runs.append(text_outputs(nb))
    difference = first_difference(*runs)
    assert difference is None, f"{path.name}: {difference}"
    checked = sum(1 for text in runs[0].values() if text)  # cells whose text output was compared
    print(f"{path.name}: {checked} cells with text output, identical in two runs")
