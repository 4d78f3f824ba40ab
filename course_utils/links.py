"""Where the course lives: the one setting every launch link is generated from.

``python -m course_utils.build`` writes, from ``REPOSITORY`` and ``REVISION`` alone, the Binder
badge and the per-chapter "open in" links of the README's chapter map, the links in the first
cell of every exercise notebook, and the Colab setup cell that installs ``course_utils`` from
the same revision. When you publish or fork the course, change these two lines and rebuild.
"""

from __future__ import annotations

REPOSITORY = "https://github.com/OWNER/REPO"  # this repository's public GitHub URL
REVISION = "main"  # the branch or tag that the links open and that Colab installs from

GITHUB = "https://github.com/"
SETUP_MARKER = "# Colab only: install the course's helper package"


def _github_path() -> str:
    if not REPOSITORY.startswith(GITHUB):
        raise ValueError(
            f"REPOSITORY must be a GitHub URL ({GITHUB}OWNER/NAME), got {REPOSITORY!r}"
        )
    return REPOSITORY.removeprefix(GITHUB).strip("/")


def colab_url(notebook: str) -> str:
    """Open ``notebook`` (a path in the repository, e.g. notebooks/03_vae.ipynb) in Colab."""
    return f"https://colab.research.google.com/github/{_github_path()}/blob/{REVISION}/{notebook}"


def binder_url(notebook: str) -> str:
    """Open ``notebook`` in JupyterLab on Binder (the environment of binder/)."""
    return f"https://mybinder.org/v2/gh/{_github_path()}/{REVISION}?urlpath=lab/tree/{notebook}"


def install_spec() -> str:
    """What pip installs on Colab: course_utils (and gymnasium) at the notebook's revision."""
    return f"course_utils[colab] @ git+{REPOSITORY}@{REVISION}"


def launch_line(notebook: str) -> str:
    """The markdown line with the chapter's Colab and Binder links."""
    return f"Open this chapter in [Colab]({colab_url(notebook)}) · [Binder]({binder_url(notebook)})"


def colab_setup_source() -> str:
    """The first code cell of every exercise notebook: on Colab it installs course_utils from
    this revision; anywhere else it does nothing."""
    return "\n".join(
        [
            f"{SETUP_MARKER} (elsewhere this cell does nothing)",
            "import sys",
            "",
            'if "google.colab" in sys.modules:',
            "    import subprocess",
            "",
            f'    COURSE = "{install_spec()}"',
            '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", COURSE], check=True)',
        ]
    )
