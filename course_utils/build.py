"""Generate the exercise notebooks in ``notebooks/`` from the solutions in ``solutions/``.

Usage (from the repository root)::

    python -m course_utils.build            # regenerate notebooks/ from solutions/
    python -m course_utils.build --check    # exit 1 when notebooks/ is out of date
    python -m course_utils.build --execute solutions/00_start_here.ipynb   # re-run it, regenerate its twin

Solution regions are fenced in code cells by lines that hold only the markers::

    ### BEGIN SOLUTION
    ...
    ### END SOLUTION

and in markdown cells by ``<!-- BEGIN SOLUTION -->`` ... ``<!-- END SOLUTION -->``.
A code region becomes ``# YOUR CODE HERE`` plus ``raise NotImplementedError("Exercise N.M: ...")``
at the indentation of its BEGIN marker; the exercise id comes from the cell's
``# Exercise N.M`` comment, which every cell with a region must have. A markdown region
becomes "Your answer here.". Exercise notebooks lose their outputs, execution counts and
saved widget state; everything else is copied unchanged, so regeneration is byte-stable.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from . import links

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
NOTEBOOKS = ROOT / "notebooks"

EXERCISE_ID = re.compile(r"^\s*#\s*Exercise\s+(\d+\.\d+)\b", re.MULTILINE)
MARKDOWN_ANSWER = "Your answer here."


class MarkerError(ValueError):
    """A solution marker is malformed; the message names notebook, cell and line."""


@dataclass(frozen=True)
class _Markers:
    begin: re.Pattern
    end: re.Pattern
    begin_text: str
    end_text: str


_CODE = _Markers(
    re.compile(r"^(\s*)### BEGIN SOLUTION\s*$"),
    re.compile(r"^(\s*)### END SOLUTION\s*$"),
    "### BEGIN SOLUTION",
    "### END SOLUTION",
)
_MARKDOWN = _Markers(
    re.compile(r"^(\s*)<!-- BEGIN SOLUTION -->\s*$"),
    re.compile(r"^(\s*)<!-- END SOLUTION -->\s*$"),
    "<!-- BEGIN SOLUTION -->",
    "<!-- END SOLUTION -->",
)


def _replace_regions(source: str, markers: _Markers, replacement, where: str) -> tuple[str, int]:
    """Replace every fenced region of ``source``; ``replacement(indent)`` gives the new lines.

    Returns the new source and the number of regions. ``where`` prefixes error messages.
    """
    out: list[str] = []
    open_line: int | None = None
    indent = ""
    regions = 0
    for number, line in enumerate(source.split("\n"), start=1):
        begin, end = markers.begin.match(line), markers.end.match(line)
        if begin:
            if open_line is not None:
                raise MarkerError(
                    f"{where}, line {number}: nested '{markers.begin_text}' "
                    f"(the region opened at line {open_line} is not closed yet)"
                )
            open_line, indent = number, begin.group(1)
        elif end:
            if open_line is None:
                raise MarkerError(
                    f"{where}, line {number}: '{markers.end_text}' without a matching "
                    f"'{markers.begin_text}'"
                )
            out.extend(replacement(indent))
            open_line = None
            regions += 1
        elif "BEGIN SOLUTION" in line or "END SOLUTION" in line:
            raise MarkerError(
                f"{where}, line {number}: malformed marker {line.strip()!r}; a marker line "
                f"holds only '{markers.begin_text}' or '{markers.end_text}'"
            )
        elif open_line is None:
            out.append(line)
    if open_line is not None:
        raise MarkerError(
            f"{where}, line {open_line}: '{markers.begin_text}' is never closed with "
            f"'{markers.end_text}'"
        )
    return "\n".join(out), regions


def make_exercise(nb: nbformat.NotebookNode, name: str = "<notebook>") -> nbformat.NotebookNode:
    """Return the exercise version of a solution notebook (the input is not modified)."""
    nb = copy.deepcopy(nb)
    for index, cell in enumerate(nb.cells):
        where = f"{name}: cell {index}"
        if cell.cell_type == "code":
            ids = EXERCISE_ID.findall(cell.source)

            def code_stub(indent: str, ids=ids, where=where) -> list[str]:
                if not ids:
                    raise MarkerError(
                        f"{where}: a cell with a solution region needs an '# Exercise N.M' "
                        "comment so that the exercise can be named"
                    )
                return [
                    f"{indent}# YOUR CODE HERE",
                    f'{indent}raise NotImplementedError("Exercise {ids[0]}: replace this line with your code")',
                ]

            cell.source, _ = _replace_regions(cell.source, _CODE, code_stub, where)
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
        elif cell.cell_type == "markdown":
            cell.source, _ = _replace_regions(
                cell.source, _MARKDOWN, lambda indent: [indent + MARKDOWN_ANSWER], where
            )
    nb.metadata.pop("widgets", None)
    return nb


def add_launch_cells(nb: nbformat.NotebookNode, notebook: str) -> nbformat.NotebookNode:
    """Put the chapter's Colab and Binder links under the title of the first cell, and the
    Colab setup cell before the first code cell (both from course_utils.links). A notebook
    that does not open with a markdown title (a chapter always does) is left as it is."""
    first = nb.cells[0] if nb.cells else None
    if first is None or first.cell_type != "markdown" or not first.source.startswith("# "):
        return nb
    title, _, rest = first.source.partition("\n")
    first.source = f"{title}\n\n{links.launch_line(notebook)}\n{rest}".rstrip("\n")
    setup = nbformat.v4.new_code_cell(links.colab_setup_source())
    setup.id = f"colab-setup-{notebook.rsplit('/', 1)[-1][:2]}"
    nb.cells.insert(1, setup)
    return nb


def render(nb: nbformat.NotebookNode) -> str:
    """Serialise a notebook deterministically (the format Jupyter itself writes)."""
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def exercise_text(solution_path: Path) -> str:
    """The exercise notebook text generated from one solution notebook."""
    nb = nbformat.read(solution_path, as_version=4)
    try:
        name = str(solution_path.relative_to(ROOT))
    except ValueError:
        name = str(solution_path)
    exercise = make_exercise(nb, name)
    return render(add_launch_cells(exercise, f"{NOTEBOOKS.name}/{solution_path.name}"))


def solution_paths(solutions: Path = SOLUTIONS) -> list[Path]:
    return sorted(p for p in solutions.glob("*.ipynb") if p.is_file())


README = ROOT / "README.md"
BINDER_BADGE = re.compile(r"^\[!\[Binder\]\(.*$", re.MULTILINE)
OPEN_COLUMN = "open in"


def readme_text(text: str) -> str:
    """The README with its Binder badge and the chapter map's "open in" column regenerated
    from course_utils.links (everything else unchanged)."""
    badge = (
        "[![Binder](https://mybinder.org/badge_logo.svg)]"
        f"({links.binder_url(f'{NOTEBOOKS.name}/00_start_here.ipynb')})"
    )
    text = BINDER_BADGE.sub(lambda _: badge, text, count=1)
    lines, column = text.split("\n"), None
    for number, line in enumerate(lines):
        cells = line.split("|")
        if line.startswith("| #") and f" {OPEN_COLUMN} " in cells:
            column = cells.index(f" {OPEN_COLUMN} ")
        elif column is not None and re.match(r"^\| \d\d \|", line):
            notebook = re.search(r"\((notebooks/\d\d_\w+\.ipynb)\)", line)
            if notebook is None:
                raise MarkerError(f"README.md, line {number + 1}: no link to notebooks/NN_*.ipynb")
            path = notebook.group(1)
            cells[column] = (
                f" [Colab]({links.colab_url(path)}) · [Binder]({links.binder_url(path)}) "
            )
            lines[number] = "|".join(cells)
        elif column is not None and not line.startswith("|"):
            column = None  # the table ended
    return "\n".join(lines)


def stale_notebooks(solutions: Path = SOLUTIONS, notebooks: Path = NOTEBOOKS) -> list[str]:
    """Descriptions of every way ``notebooks/`` differs from what the generator makes."""
    problems = []
    expected_names = set()
    for path in solution_paths(solutions):
        expected_names.add(path.name)
        target = notebooks / path.name
        if not target.exists():
            problems.append(f"{target.name}: missing")
        elif target.read_text(encoding="utf-8") != exercise_text(path):
            problems.append(f"{target.name}: differs from what solutions/{path.name} generates")
    for extra in sorted(notebooks.glob("*.ipynb")):
        if extra.name not in expected_names:
            problems.append(f"{extra.name}: has no solution notebook in solutions/")
    if notebooks == NOTEBOOKS and README.read_text(encoding="utf-8") != readme_text(
        README.read_text(encoding="utf-8")
    ):
        problems.append("README.md: its launch links differ from course_utils/links.py")
    return problems


def build(
    solutions: Path = SOLUTIONS, notebooks: Path = NOTEBOOKS, only: list[str] | None = None
) -> list[Path]:
    """Write the exercise notebooks (all, or those whose file names are in ``only``).

    Returns the paths that changed.
    """
    notebooks.mkdir(exist_ok=True)
    changed = []
    for path in solution_paths(solutions):
        if only is not None and path.name not in only:
            continue
        text = exercise_text(path)
        target = notebooks / path.name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
            changed.append(target)
    if notebooks == NOTEBOOKS:
        old = README.read_text(encoding="utf-8")
        if readme_text(old) != old:
            README.write_text(readme_text(old), encoding="utf-8")
            changed.append(README)
    return changed


def run_notebook(
    nb: nbformat.NotebookNode, cwd: Path, *, timeout: int, allow_errors: bool = False
) -> None:
    """Execute ``nb`` in place in a fresh kernel of the current environment, working in ``cwd``.

    On POSIX systems the kernel talks over IPC sockets in a private temporary folder instead
    of TCP ports, so that kernels started at the same moment (pytest-xdist, a TA grading a
    folder) cannot race for a port. With ``allow_errors`` a cell that times out is interrupted
    and execution goes on; otherwise the first error raises ``CellExecutionError``.
    """
    from nbclient import NotebookClient
    from traitlets.config import Config

    with tempfile.TemporaryDirectory(prefix="course-kernel-") as folder:
        config = Config()
        if os.name == "posix":
            config.KernelManager.transport = "ipc"
            config.KernelManager.ip = os.path.join(folder, "kernel")
        client = NotebookClient(
            nb,
            config=config,
            kernel_name="python3",
            timeout=timeout,
            allow_errors=allow_errors,
            interrupt_on_timeout=allow_errors,
            record_timing=False,
            resources={"metadata": {"path": str(cwd)}},
        )
        client.execute()


def execute_in_place(path: Path, timeout: int = 1800) -> None:
    """Run a solution notebook top to bottom in the current environment and save its outputs."""
    nb = nbformat.read(path, as_version=4)
    run_notebook(nb, path.parent, timeout=timeout)
    path.write_text(render(nb), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course_utils.build", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--check", action="store_true", help="only report whether notebooks/ is up to date"
    )
    parser.add_argument(
        "--execute",
        nargs="+",
        metavar="SOLUTION",
        type=Path,
        help="execute these solution notebooks in place (outputs kept) before building",
    )
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = stale_notebooks(SOLUTIONS, NOTEBOOKS)
            if problems:
                print("notebooks/ is out of date with solutions/:", *problems, sep="\n  ")
                print("Run `python -m course_utils.build` to regenerate it.")
                return 1
            print(f"notebooks/ is up to date ({len(solution_paths(SOLUTIONS))} notebooks).")
            return 0
        for path in args.execute or []:
            if not path.is_file():
                parser.error(f"{path}: no such notebook")
            print(f"executing {path} ...", flush=True)
            execute_in_place(path.resolve())
        # After --execute, regenerate only the executed chapters (others may be mid-edit).
        only = [path.name for path in args.execute] if args.execute else None
        for target in build(SOLUTIONS, NOTEBOOKS, only):
            print(f"wrote {target.relative_to(ROOT)}")
        return 0
    except MarkerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
