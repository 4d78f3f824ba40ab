"""Repository-wide pytest setup (applies to tests/ and to the nbval run over solutions/)."""

import os

# Several pytest-xdist workers share the machine: one torch thread each is fastest.
# Notebook kernels started by nbval and the grader inherit this through the environment (their
# first cell calls seed_everything); the worker itself, where the unit tests and the checks
# compute, is set here: left at torch's default of one thread per core, the small tensors of
# the checks ran 3-10x slower beside the other worker (test_ch01.py: 102 s in the suite, 14 s alone).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("COURSE_THREADS", "1")
    from course_utils.runtime import configure_threads

    configure_threads()


def pytest_terminal_summary(terminalreporter):
    """Print the per-chapter lines of tests/test_mistakes.py, and the totals."""
    lines, caught, tried, accepted, alternatives = [], 0, 0, 0, 0
    for status in ("passed", "failed"):
        for report in terminalreporter.getreports(status):
            props = dict(getattr(report, "user_properties", []))
            if report.when == "call" and "mistakes_summary" in props:
                lines.append(props["mistakes_summary"])
                caught += props["mistakes_caught"]
                tried += props["mistakes_tried"]
                accepted += props["alternatives_accepted"]
                alternatives += props["alternatives_tried"]
    if lines:
        terminalreporter.section("grader robustness: injected mistakes and correct alternatives")
        for line in sorted(lines):
            terminalreporter.line(line)
        terminalreporter.line(
            f"total: caught {caught} / tried {tried} mistakes, "
            f"accepted {accepted} / tried {alternatives} alternatives"
        )


# ------------------------------------------------------------------ scheduling on xdist workers
# `pytest` runs with `--dist loadfile --no-loadscope-reorder` (pyproject.toml): a test file is one
# unit of work (nbval runs a notebook's cells in order in one kernel; module fixtures are built
# once), handed to the workers in the order below. Left to itself, xdist would start the files
# with the most tests first, and the two files that execute every notebook again (a few dozen
# tests, but about half of the whole run) would start last and leave one worker idle at the end.
# So the longest units go first: those two files, then the solution notebooks, then the rest.
NOTEBOOK_RUNS = ("tests/test_notebooks.py", "tests/test_mistakes.py")


def _cost_class(path: str) -> int:
    if path in NOTEBOOK_RUNS:
        return 0
    return 1 if path.endswith(".ipynb") else 2


def pytest_collection_modifyitems(config, items):
    def relative(item) -> str:
        try:
            return item.path.relative_to(config.rootpath).as_posix()
        except ValueError:  # a notebook outside the repository (a student's copy)
            return item.path.as_posix()

    paths = [relative(item) for item in items]
    order = sorted(range(len(items)), key=lambda i: (_cost_class(paths[i]), i))
    items[:] = [items[i] for i in order]
