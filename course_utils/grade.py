"""Grade exercise notebooks: run them and report each exercise as passed, failed or not attempted.

Usage::

    python -m course_utils.grade notebooks/00_start_here.ipynb
    python -m course_utils.grade submissions/ --csv grades.csv --jobs 2   # default: one per core
    python -m course_utils.grade submissions/ --full        # run every cell of every notebook

Each notebook is graded in its own worker process, in a throw-away copy of its folder (the
submission is never modified), in the current Python environment, with errors allowed so that
one broken exercise does not hide the others, within a wall-clock limit per notebook
(``--time-limit``) and a memory limit per process (``--memory-limit``). By default only the
cells the exercises need run (fast mode, :func:`select_cells`); ``--full`` runs them all.
An exercise is the cell that carries an ``# Exercise N.M`` comment; a check cell
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
import ast
import builtins
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import symtable
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
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
    mode: str = "fast"  # "fast", "full", or "full (fast mode could not ...: reason)"

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


def execute(
    nb: nbformat.NotebookNode, cwd: Path, timeout: int, cells: list[int] | None = None
) -> str:
    """Run the code cells (all of them, or those indexed by ``cells``), errors allowed.

    Every output is cleared first, so a cell that is not run shows none. Returns a problem
    description, or "" when the run went through.
    """
    from nbclient.exceptions import DeadKernelError

    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    run = nb if cells is None else nbformat.from_dict({**nb, "cells": [nb.cells[i] for i in cells]})
    try:
        run_notebook(run, cwd, timeout=timeout, allow_errors=True)
    except DeadKernelError as exc:
        return f"the kernel died ({_one_line(str(exc), 120)})"
    finally:
        if cells is not None:  # from_dict copied the cells: bring their outputs back
            for index, cell in zip(cells, run.cells, strict=True):
                nb.cells[index].outputs = cell.outputs
                nb.cells[index].execution_count = cell.get("execution_count")
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


# --- Fast mode: run only the cells the exercises need --------------------------------------
#
# Each code cell is read with `ast` and `symtable`: the names it defines (assignments, defs,
# imports), the global names it reads (also inside the functions it defines: they are read when
# the function is called), and the names it may change in place (`x.append(...)`, `x[i] = ...`,
# `x.attr = ...`, or `x` passed to a function that is not a known pure one). The cells kept are
# the exercise cells, their check cells, the setup cells before the first exercise (imports,
# seeding), cells with a star import, and, transitively,
# for every name a kept cell reads: the last cell before it that defines the name and every
# cell in between that may change it. A cell the analysis cannot read (a syntax error outside
# an exercise, cell magics, `exec`, `%run`, `globals()`) makes the notebook fall back to full
# execution, and the report says so.

SEED_CALLS = {"seed_everything", "configure_threads", "manual_seed", "seed", "set_num_threads"}
# Calls that never change their arguments (plots and printing read them; so do conversions).
PURE_CALLS = {
    "print",
    "display",
    "len",
    "float",
    "int",
    "str",
    "repr",
    "round",
    "sum",
    "min",
    "max",
    "abs",
    "list",
    "tuple",
    "dict",
    "set",
    "sorted",
    "enumerate",
    "zip",
    "range",
    "isinstance",
    "type",
    "format",
    "any",
    "all",
    "describe_environment",
}
PURE_OWNERS = {"np", "plt", "ax", "axes", "fig", "math", "F", "widgets"}
DYNAMIC = re.compile(r"\b(exec|eval|globals|locals|vars|get_ipython|__import__)\s*\(")
BUILTINS = set(dir(builtins)) | {"display", "get_ipython", "In", "Out", "exit", "quit"}


@dataclass
class CellNames:
    defines: set[str]
    reads: set[str]
    changes: set[str]
    setup: bool  # imports or seeds the generators: run when before the first exercise
    imports: set[str] = field(default_factory=set)
    deferred: set[str] = field(default_factory=set)  # read inside the functions it defines


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _module_level_nodes(tree: ast.AST):
    """Every node of the cell outside function and class bodies (those run when called)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                todo.append(child)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                todo.extend([*child.decorator_list, *child.args.defaults, *child.args.kw_defaults])


def _without_magics(source: str) -> str | None:
    """The cell as Python: line magics and shell lines become `pass`; None for cell magics."""
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("%%"):
            return None
        if stripped.startswith(("%", "!")):
            if stripped.startswith("%run"):
                return None
            line = line[: len(line) - len(stripped)] + "pass"
        lines.append(line)
    return "\n".join(lines)


def cell_names(source: str) -> CellNames | None:
    """What one code cell defines, reads and may change; None when it cannot be analysed."""
    code = _without_magics(source)
    if code is None or DYNAMIC.search(code):
        return None
    try:
        tree = ast.parse(code)
        table = symtable.symtable(code, "<cell>", "exec")
    except (SyntaxError, ValueError):
        return None
    defines, reads, imports = set(), set(), set()
    for symbol in table.get_symbols():
        if symbol.is_assigned() or symbol.is_imported():
            defines.add(symbol.get_name())
        if symbol.is_imported():
            imports.add(symbol.get_name())
        if symbol.is_referenced():
            reads.add(symbol.get_name())

    deferred: set[str] = set()  # read by a function body: when it is called, maybe later

    def globals_read(scope: symtable.SymbolTable) -> None:
        for child in scope.get_children():
            deferred.update(
                s.get_name() for s in child.get_symbols() if s.is_global() and s.is_referenced()
            )
            globals_read(child)

    globals_read(table)
    changes, setup = set(), False
    for node in _module_level_nodes(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            setup = True
            if any(alias.name == "*" for alias in node.names):
                defines.add("*")
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for target in targets:
                for element in ast.walk(target):
                    if isinstance(element, (ast.Attribute, ast.Subscript)):
                        changes.add(_root_name(element))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            owner = _root_name(func.value) if isinstance(func, ast.Attribute) else None
            if owner is not None and owner not in PURE_OWNERS:
                changes.add(owner)  # x.method(...) may change x
            if name in PURE_CALLS or owner in PURE_OWNERS or (name or "").startswith("plot"):
                continue
            for argument in [*node.args, *(k.value for k in node.keywords)]:
                changes.add(_root_name(argument))
    for statement in tree.body:  # a statement that seeds the global generators
        call = statement.value if isinstance(statement, ast.Expr) else None
        if isinstance(call, ast.Call):
            func = call.func
            if (
                func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            ) in SEED_CALLS:
                setup = True
    changes.discard(None)
    reads |= changes
    return CellNames(defines, reads - BUILTINS, changes, setup, imports, deferred - BUILTINS)


def select_cells(nb: nbformat.NotebookNode) -> tuple[list[int] | None, str]:
    """Indices of the code cells that grading needs, in order; (None, reason) to run them all."""
    names: dict[int, CellNames] = {}
    wanted: list[int] = []
    seen_exercise = False
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        is_exercise = bool(EXERCISE_ID.findall(cell.source))
        seen_exercise |= is_exercise
        info = cell_names(cell.source)
        if info is None:
            if not is_exercise:  # a broken exercise fails in either mode
                return None, f"cell {index} cannot be analysed (cell magic, exec or a syntax error)"
            info = CellNames(set(), set(), set(), False)
        names[index] = info
        if is_exercise or CHECK_CALL.search(cell.source) or (info.setup and not seen_exercise):
            wanted.append(index)
        elif "*" in info.defines:
            wanted.append(index)  # a star import: no telling which names it brings
    modules = set().union(*(info.imports for info in names.values()))
    for info in names.values():  # calling np.foo(...) or torch.bar(...) changes no variable
        info.changes -= modules
    keep, todo = set(wanted), list(wanted)
    end = max(wanted, default=-1)  # nothing after the last exercise or check runs
    while todo:
        index = todo.pop()
        info, earlier = names[index], [j for j in names if j < index]
        needed = []
        for name in info.reads:
            definers = [j for j in earlier if name in names[j].defines]
            last = definers[-1] if definers else -1
            needed += [last] if definers else []
            needed += [j for j in earlier if j > last and name in names[j].changes]
        for name in info.deferred:  # the function may be called by any later cell: be generous
            needed += [
                j
                for j in names
                if j <= end and j != index and name in names[j].defines | names[j].changes
            ]
        for j in needed:
            if j not in keep:
                keep.add(j)
                todo.append(j)
    return sorted(keep), ""


OUT_OF_MEMORY = re.compile(r"can't allocate memory|not enough memory|out of memory", re.I)


def _out_of_memory(nb: nbformat.NotebookNode) -> str:
    for index, cell in enumerate(nb.cells):
        error = _error_of(cell) if cell.cell_type == "code" else None
        if error and (
            error.get("ename") == "MemoryError" or OUT_OF_MEMORY.search(error.get("evalue", ""))
        ):
            return f"cell {index} ran out of memory"
    return ""


def _throwaway_copy(path: Path, folder: Path) -> Path:
    """Copy the notebook and the plain files beside it (not other notebooks) into ``folder``."""
    for sibling in path.resolve().parent.iterdir():
        if sibling.is_file() and not sibling.is_symlink() and sibling.suffix != ".ipynb":
            shutil.copy2(sibling, folder / sibling.name)
    return folder


def grade_notebook(path: Path, timeout: int = 900, full: bool = False) -> NotebookResult:
    """Grade one notebook in this process, working in a throw-away copy of its folder.

    Fast mode (the default) runs only the cells the exercises need (:func:`select_cells`) and
    falls back to the whole notebook when it cannot tell which those are; ``full`` runs all.
    """
    result = NotebookResult(str(path))
    try:
        nb = load_notebook(path)
    except GradeInputError as exc:
        result.problem = str(exc)
        return result
    cells, why = (None, "") if full else select_cells(nb)
    result.mode = "fast" if cells is not None else "full" if full else f"full ({why})"
    with tempfile.TemporaryDirectory(prefix="course-grade-") as folder:
        problem = execute(nb, _throwaway_copy(path, Path(folder)), timeout, cells)
    result.exercises, result.other_errors = assess(nb)
    problem = problem or _out_of_memory(nb)
    if problem:
        result.problem = problem
    elif not result.exercises:
        result.problem = "no exercises found (no cell with an '# Exercise N.M' comment)"
    return result


@dataclass
class Limits:
    """What one notebook may use when graded in its own process (see INSTRUCTORS.md)."""

    cell_timeout: int = 900  # seconds per cell
    notebook_seconds: int = 1800  # wall-clock seconds for the whole notebook
    memory_gib: float = 8.0  # address space of each process (the grader's worker, the kernel)
    full: bool = False


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc); [] elsewhere."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the worker and everything it started (the kernel runs in its own session)."""
    for pid in [*_descendants(proc.pid), proc.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    proc.wait()


def grade_isolated(path: Path, limits: Limits, threads: int | None = None) -> NotebookResult:
    """Grade one notebook in a worker process with a wall-clock and a memory limit.

    A notebook that exceeds its time is stopped (worker and kernel killed) and reported as an
    error; an allocation beyond the memory limit fails inside the kernel (MemoryError) and is
    reported as an error too. The other notebooks are not affected.
    """
    with tempfile.TemporaryDirectory(prefix="course-grade-worker-") as folder:
        out = Path(folder) / "result.json"
        command = [
            *(
                sys.executable,
                "-m",
                "course_utils.grade",
                "--worker",
                str(out),
                str(path.resolve()),
            ),
            *("--timeout", str(limits.cell_timeout), "--memory-limit", str(limits.memory_gib)),
            *(["--full"] if limits.full else []),
        ]
        env = {**os.environ, "MPLBACKEND": "Agg"}
        if threads is not None:
            env.setdefault("COURSE_THREADS", str(threads))
        proc = subprocess.Popen(
            command,
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            _, stderr = proc.communicate(timeout=limits.notebook_seconds)
        except subprocess.TimeoutExpired:
            _kill_tree(proc)
            return NotebookResult(
                str(path),
                problem=f"stopped after {limits.notebook_seconds} s, the time limit per notebook",
            )
        if not out.exists():
            last = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            return NotebookResult(
                str(path), problem=f"the grader's worker failed ({_one_line(last[0], 160)})"
            )
        raw = json.loads(out.read_text(encoding="utf-8"))
    raw["exercises"] = [ExerciseResult(**e) for e in raw["exercises"]]
    result = NotebookResult(**{**raw, "path": str(path)})
    if result.problem.endswith("ran out of memory"):
        result.problem += f" (the limit is {limits.memory_gib:g} GiB per process)"
    return result


def _worker(out: Path, path: Path, timeout: int, memory_gib: float, full: bool) -> int:
    """Entry point of the process that grade_isolated starts: limit memory, grade, save."""
    if memory_gib > 0:
        import resource

        limit = int(memory_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # the kernel inherits it
    result = grade_notebook(path, timeout, full=full)
    out.write_text(json.dumps(asdict(result)), encoding="utf-8")
    return 0


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
        if res.mode not in ("fast", "full"):
            lines.append(f"  mode: {res.mode}")
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
        "--full",
        action="store_true",
        help="run every cell of every notebook (default: only the cells the exercises need)",
    )
    cores = os.cpu_count() or 1
    parser.add_argument(
        "--jobs",
        type=int,
        default=cores,
        metavar="N",
        help=f"grade N notebooks at a time (default: the number of cores, {cores})",
    )
    parser.add_argument(
        "--timeout", type=int, default=900, help="seconds allowed per cell (default 900)"
    )
    parser.add_argument(
        "--time-limit",
        type=int,
        default=Limits.notebook_seconds,
        metavar="S",
        help=f"seconds allowed per notebook (default {Limits.notebook_seconds})",
    )
    parser.add_argument(
        "--memory-limit",
        type=float,
        default=Limits.memory_gib,
        metavar="GIB",
        help=f"address space per process in GiB, 0 for none (default {Limits.memory_gib:g})",
    )
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        return _worker(args.worker, args.paths[0], args.timeout, args.memory_limit, args.full)
    for name in ("jobs", "timeout", "time_limit"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer")
    if args.memory_limit < 0:
        parser.error("--memory-limit must be >= 0 (0: no limit)")

    notebooks = collect(args.paths)
    if not notebooks:
        print("error: no notebooks found in " + ", ".join(map(str, args.paths)), file=sys.stderr)
        return 2
    limits = Limits(args.timeout, args.time_limit, args.memory_limit, args.full)
    threads = max(1, cores // args.jobs) if args.jobs > 1 else None
    start = time.perf_counter()

    def one(path: Path) -> NotebookResult:
        print(f"grading {path} ...", file=sys.stderr, flush=True)
        return grade_isolated(path, limits, threads)

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(one, notebooks))
    print(format_report(results))
    mode = "full" if args.full else "fast"
    print(f"graded in {time.perf_counter() - start:.0f} s ({mode} mode, {args.jobs} job(s))")
    if args.csv:
        write_csv(results, args.csv)
        print(f"wrote {args.csv}")
    return 0 if all(r.all_passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
