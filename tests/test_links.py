"""Launch links: every Colab and Binder link comes from the one setting in course_utils.links,
and the Colab setup cell installs course_utils only on Colab."""

import re
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

from course_utils import build, links

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _generated(monkeypatch, repository: str, revision: str) -> dict[str, str]:
    monkeypatch.setattr(links, "REPOSITORY", repository)
    monkeypatch.setattr(links, "REVISION", revision)
    texts = {"README.md": build.readme_text(build.README.read_text(encoding="utf-8"))}
    for path in build.solution_paths():
        texts[path.name] = build.exercise_text(path)
    return texts


def test_every_launch_link_comes_from_the_one_setting(monkeypatch):
    texts = _generated(monkeypatch, "https://github.com/someone/rl-course", "v2.1")
    for name, text in texts.items():
        stale = re.findall(r"https?://\S*OWNER/REPO\S*", text)
        assert not stale, f"{name} has a link not made from course_utils.links: {stale[0]}"
        assert "someone/rl-course" in text, name
    readme = texts["README.md"]
    for path in NOTEBOOKS:
        chapter = f"notebooks/{path.name}"
        assert links.colab_url(chapter) in readme and links.binder_url(chapter) in readme
        first = nbformat.reads(texts[path.name], as_version=4).cells[0].source
        assert links.launch_line(chapter) in first
        assert "github/someone/rl-course/blob/v2.1/" + chapter in first


def test_the_committed_files_are_what_the_committed_setting_generates():
    assert build.stale_notebooks() == []  # README.md included


def test_the_setting_must_be_a_github_url(monkeypatch):
    monkeypatch.setattr(links, "REPOSITORY", "https://gitlab.com/someone/rl-course")
    with pytest.raises(ValueError, match="must be a GitHub URL"):
        links.colab_url("notebooks/00_start_here.ipynb")


@pytest.mark.parametrize("on_colab", [True, False], ids=["colab", "elsewhere"])
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_setup_cell_installs_course_utils_only_on_colab(path, on_colab, monkeypatch):
    cell = nbformat.read(path, as_version=4).cells[1]
    assert cell.cell_type == "code" and cell.source.startswith(links.SETUP_MARKER)
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: calls.append(args[0]))
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(cell.source, path.name, "exec"), {})
    if on_colab:
        assert calls == [[sys.executable, "-m", "pip", "install", "-q", links.install_spec()]]
        assert links.install_spec().endswith(f"@{links.REVISION}")
    else:
        assert calls == []
