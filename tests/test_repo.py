"""Repository-level promises: README commands, CI, Binder requirements, chapter map."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _requirements(path: Path) -> dict[str, str]:
    """name -> specifier for every package line (options, comments and `-e .` skipped)."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(.*)$", line)
        assert match, f"unreadable requirement {line!r} in {path}"
        found[match.group(1).lower()] = (match.group(2) or "") + match.group(3).replace(" ", "")
    return found


def test_torch_is_bounded_to_the_cpu_wheel_range():
    # 2.4: Adam(fused=True) on CPU tensors (README, "Versions")
    assert _requirements(ROOT / "requirements.txt")["torch"] == ">=2.4,<2.14"


def test_root_requirements_install_course_utils_itself():
    assert "-e ." in (ROOT / "requirements.txt").read_text().splitlines()


def test_binder_requirements_match_the_root_file():
    root = _requirements(ROOT / "requirements.txt")
    binder = _requirements(ROOT / "binder" / "requirements.txt")
    assert binder == root, "binder/requirements.txt has drifted from requirements.txt"
    text = (ROOT / "binder" / "requirements.txt").read_text()
    assert (
        "--extra-index-url https://download.pytorch.org/whl/cpu" in text
    )  # CPU-only torch on Binder
    assert "pip install" in (ROOT / "binder" / "postBuild").read_text()  # course_utils installed


def _readme_block(label: str) -> str:
    match = re.search(rf"<!-- {label} -->\s*```bash\n(.*?)\n```", README, re.S)
    assert match, f"README has no ```bash block after <!-- {label} -->"
    return match.group(1).strip()


def test_ci_runs_exactly_the_readme_commands():
    ci = (ROOT / ".ci" / "run").read_text()
    install_and_open = _readme_block("install-and-open")
    install_and_test = _readme_block("install-and-test")
    install, test = install_and_test.rsplit(" && ", 1)
    assert install_and_open.startswith(install + " && jupyter lab")
    for command in [*install.split(" && "), test]:
        assert command in ci, f".ci/run does not run the README's `{command}`"


def test_readme_chapter_map_links_every_notebook():
    for solution in sorted((ROOT / "solutions").glob("*.ipynb")):
        assert f"(solutions/{solution.name})" in README, (
            f"README does not link solutions/{solution.name}"
        )
        assert f"(notebooks/{solution.name})" in README, (
            f"README does not link notebooks/{solution.name}"
        )
    for link in re.findall(r"\]\(((?:solutions|notebooks)/[^)]+)\)", README):
        assert (ROOT / link).exists(), f"README links {link}, which does not exist"


def test_binder_requirements_resolve(tmp_path):
    """pip's resolver accepts binder/requirements.txt (torch skipped: its CPU index is not reachable here)."""
    import subprocess
    import sys

    lines = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    kept = [
        ln for ln in lines if not ln.startswith("--extra-index-url") and not ln.startswith("torch")
    ]
    assert len(kept) == len(lines) - 2
    requirements = tmp_path / "binder-requirements.txt"
    requirements.write_text("\n".join(kept) + "\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(requirements),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    errors = [ln for ln in result.stderr.splitlines() if "is ignored" not in ln]
    assert result.returncode == 0, "pip could not resolve binder/requirements.txt:\n" + "\n".join(
        errors[-20:]
    )


def test_ruff_lint_and_format_are_clean():
    """`ruff check` (rules E, F, B, UP, RUF; pyproject.toml) and `ruff format --check` pass on
    every .py file and notebook."""
    import subprocess
    import sys

    for command in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, (
            f"ruff {command[0]}:\n{result.stdout[-4000:]}{result.stderr[-2000:]}"
        )
