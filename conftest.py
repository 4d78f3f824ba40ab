"""Repository-wide pytest setup (applies to tests/ and to the nbval run over solutions/)."""

import os

# Several pytest-xdist workers share the machine: one torch thread each is fastest.
# Notebook kernels started by nbval inherit this through the environment.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("COURSE_THREADS", "1")


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
