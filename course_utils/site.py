"""Build the course website from the executed solution notebooks, without executing anything.

Usage (from the repository root)::

    python -m course_utils.site                # writes _site/, publishable as it is
    python -m course_utils.site --out DIR      # somewhere else (DIR is replaced)

Sphinx with myst-nb (``nb_execution_mode = "off"``) renders every ``solutions/NN_*.ipynb`` with
its stored outputs, in the sphinx-book-theme (chapter sidebar, full-text search). Each page is
prepared from the notebook first (:func:`site_notebook`):

- an exercise cell shows the exercise version that ``course_utils.build`` generates, followed by
  the solution in a closed ``<details>`` element ("Show solution") and the cell's stored outputs;
  a markdown answer fenced with ``<!-- BEGIN SOLUTION -->`` is treated the same way;
- widget outputs (sliders, progress bars) are dropped, since every widget has a static figure
  beside it, and so is the notebook's saved widget state;
- every figure gets alt text from the "What to notice" that follows it (or the markdown before it);
- under the title: the slide sections, Colab and Binder links (``course_utils.links``) and a
  download link to the exercise notebook, which is copied into the site.

Everything is local: MathJax is served from the site (copied from the ``sphinx-mathjax-offline``
package), nothing is fetched at build or view time, and two builds give identical files.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from . import build, links

try:
    from docutils import nodes
    from sphinx.util.docutils import SphinxDirective
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"the course website needs Sphinx and myst-nb ({exc.name} is missing): "
        "pip install -r requirements.txt"
    ) from exc

ROOT = build.ROOT
SOLUTIONS = build.SOLUTIONS
NOTEBOOKS = build.NOTEBOOKS
DEFAULT_OUT = ROOT / "_site"
CHAPTER_NAME = re.compile(r"^\d\d_\w+\.ipynb$")
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
TITLE = "Reinforcement Learning as Probabilistic Inference"
# MathJax 3, CommonHTML output with every TeX extension built in (no autoloading at view time),
# plus the web fonts it loads relative to its own location.
MATHJAX_FILES = ("tex-chtml-full.js", "output/chtml/fonts/woff-v2")
WIDGET_NOTE = (
    "*An interactive widget appears here when you run the notebook; "
    "the static figure beside it shows the same.*"
)
SITE_CSS = """\
details.solution {
  border: 1px solid var(--pst-color-border, #ccc);
  border-radius: 0.25rem;
  margin: 0.5rem 0 1rem 0;
  padding: 0.25rem 0.75rem;
}
details.solution > summary { cursor: pointer; font-weight: 600; }
details.solution[open] > summary { margin-bottom: 0.5rem; }
div.chapter-info p { margin-bottom: 0.25rem; }
/* The theme's article header has the sidebar toggles; its site header only repeated the search
   box above the page (the sidebar has one). */
#pst-header { display: none; }
"""


FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    '<rect width="32" height="32" rx="6" fill="#1f5f8b"/>'
    '<text x="16" y="22" font-family="sans-serif" font-size="15" font-weight="bold" '
    'text-anchor="middle" fill="#fff">RL</text></svg>\n'
)


class SiteError(ValueError):
    """The site cannot be built from these sources; the message says why."""


# --- the Sphinx extension: ```{solution} ... ``` becomes <details class="solution"> ---------


class solution_node(nodes.General, nodes.Element):  # docutils names its node classes so
    """A collapsed solution: its children are rendered inside <details>."""


def _visit_solution(translator, node: solution_node) -> None:
    translator.body.append('<details class="solution">\n<summary>Show solution</summary>\n')


def _depart_solution(translator, node: solution_node) -> None:
    translator.body.append("</details>\n")


class SolutionDirective(SphinxDirective):
    """The directive body (MyST markdown) is parsed and shown behind "Show solution"."""

    has_content = True

    def run(self) -> list[nodes.Node]:
        node = solution_node()
        self.set_source_info(node)
        self.state.nested_parse(self.content, self.content_offset, node)
        return [node]


def setup(app) -> dict:
    """Sphinx entry point (the site's conf.py lists ``course_utils.site`` as an extension)."""
    app.add_node(solution_node, html=(_visit_solution, _depart_solution))
    app.add_directive("solution", SolutionDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


# --- chapter data ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Chapter:
    """One chapter page: ``stem`` is the notebook name without .ipynb (e.g. 04_control_as_inference)."""

    stem: str
    title: str
    topic: str
    slides: str
    run_time: str


def chapter_paths(solutions: Path = SOLUTIONS) -> list[Path]:
    """Every solutions/NN_*.ipynb, in order (a new chapter is picked up without any setting)."""
    return sorted(p for p in solutions.glob("*.ipynb") if CHAPTER_NAME.match(p.name))


def readme_chapter_map(readme: str) -> dict[str, dict[str, str]]:
    """The README's chapter map as {notebook stem: {column name: cell text}}."""
    rows: dict[str, dict[str, str]] = {}
    header: list[str] | None = None
    for line in readme.split("\n"):
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| #") and "slide sections" in cells:
            header = cells
        elif header is not None and re.match(r"^\| \d\d \|", line):
            notebook = re.search(r"\(notebooks/(\d\d_\w+)\.ipynb\)", line)
            if notebook and len(cells) == len(header):
                rows[notebook.group(1)] = dict(zip(header, cells, strict=True))
        elif header is not None and not line.startswith("|"):
            header = None
    return rows


def _title_and_slides(nb: nbformat.NotebookNode, stem: str) -> tuple[str, str]:
    """The notebook's H1 title and its "**Slides:**" paragraph (empty when it has none)."""
    first = nb.cells[0].source if nb.cells and nb.cells[0].cell_type == "markdown" else ""
    if not first.startswith("# "):
        raise SiteError(f"solutions/{stem}.ipynb: the first cell must be a markdown '# ' title")
    title = first.split("\n", 1)[0][2:].strip()
    slides = re.search(r"\*\*Slides:\*\*(.*?)(?:\n\s*\n|$)", first, re.S)
    return title, " ".join(slides.group(1).split()) if slides else ""


def chapter_info(nb: nbformat.NotebookNode, stem: str, table: dict[str, dict[str, str]]) -> Chapter:
    """A chapter's title, topic, slide sections and run time: from the README's chapter map,
    or from the notebook's own title and "Slides" paragraph for a chapter not in the map yet."""
    title, slides = _title_and_slides(nb, stem)
    row = table.get(stem, {})
    return Chapter(
        stem=stem,
        title=title,
        topic=row.get("topic", title),
        slides=row.get("slide sections", slides) or "-",
        run_time=row.get("CPU run time", ""),
    )


# --- text helpers ----------------------------------------------------------------------------


def _plain_math(tex: str) -> str:
    """Inline TeX as readable text: \\alpha_{t} -> alpha_t, \\tfrac12 -> 1/2, \\mid -> |."""
    tex = re.sub(r"\\(?:mathcal|mathbb|mathrm|mathbf|text|operatorname|boldsymbol)\b", "", tex)
    tex = re.sub(r"\\[dt]?frac\s*(\{[^{}]*\}|\w)\s*(\{[^{}]*\}|\w)", r"\1/\2", tex)
    tex = re.sub(r"\\(?:mid|vert)\b", "|", tex)
    tex = re.sub(r"\\(?:big|Big|bigg|Bigg|left|right|quad|qquad)\b|\\[,;!]", " ", tex)
    tex = re.sub(r"\\([A-Za-z]+)", r"\1 ", tex)  # \\alpha -> alpha
    tex = tex.replace("{", "").replace("}", "").replace("\\", "")
    return re.sub(r"\s+(?=[_^)\],;:.])", "", tex)


def plain_text(markdown: str) -> str:
    """Markdown with math to plain readable text (for alt attributes); tables are left out."""
    text = re.sub(r"<!--.*?-->", " ", markdown, flags=re.S)
    lines = [line for line in text.split("\n") if not line.lstrip().startswith("|")]
    text = "\n".join(re.sub(r"^\s*(?:[-*+]|\d+\.)\s+", "", line) for line in lines)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links: keep the text
    out = []
    for part in re.split(r"(\$\$?[^$]+\$\$?)", text):
        if part.startswith("$"):
            out.append(_plain_math(part.strip("$")))
        else:
            out.append(re.sub(r"[*`#>]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", "", part))
    return " ".join("".join(out).split())


def _sentences(text: str, limit: int = 300) -> str:
    """The first sentences of ``text`` that fit in ``limit`` characters (at least one, cut)."""
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z(])", text)
    out = ""
    for part in parts:
        if out and len(out) + 1 + len(part) > limit:
            break
        out = f"{out} {part}".strip()
    return out if len(out) <= limit else out[: limit - 3].rstrip() + "..."


NOTICE = re.compile(r"^\s*\*\*What to notice\.?\*\*:?", re.I)


def alt_text(cells: list, index: int) -> str:
    """Alt text for the figures of code cell ``index``: the "What to notice" that follows it
    (before the next code cell with outputs), else the last paragraph of the markdown just
    before it, else the cell's first comment line."""
    for cell in cells[index + 1 :]:
        if cell.cell_type == "markdown":
            if NOTICE.match(cell.source):
                return "Figure. " + _sentences(plain_text(NOTICE.sub("", cell.source)))
            break
        if cell.get("outputs"):
            break
    for cell in reversed(cells[:index]):
        if cell.cell_type == "markdown":
            paragraphs = [plain_text(p) for p in re.split(r"\n\s*\n", cell.source)]
            paragraphs = [
                p
                for p, raw in zip(paragraphs, re.split(r"\n\s*\n", cell.source), strict=True)
                if p and not raw.lstrip().startswith("#")
            ]
            if paragraphs:
                return "Figure. " + _sentences(paragraphs[-1])
            break
    comment = re.search(r"^\s*#\s*(.+)$", cells[index].source, re.M)
    return "Figure. " + (comment.group(1).strip() if comment else "Output of the code above.")


def _fence(text: str, char: str = "`") -> str:
    """A fence longer than every run of ``char`` in ``text``."""
    runs = [len(m) for m in re.findall(rf"{re.escape(char)}+", text)]
    return char * max(3, max(runs, default=0) + 1)


NBVAL = re.compile(r"^\s*#\s*NBVAL_\w+\s*$")


def _shown_source(source: str) -> str:
    """Cell source as the site shows it: nbval's grading markers (# NBVAL_...) left out."""
    return "\n".join(line for line in source.split("\n") if not NBVAL.match(line)).strip("\n")


def _is_marker(line: str, markers) -> bool:
    """A solution marker line of ``build`` (or an nbval marker, which the site never shows)."""
    return bool(markers.begin.match(line) or markers.end.match(line) or NBVAL.match(line))


def _solution_lines(solution: str, exercise: str, markers) -> tuple[list[str], list[int]]:
    """The solution's lines without marker lines (and nbval's), and the 1-based numbers of
    those lines that the exercise version replaced (the student's part)."""
    sol = solution.split("\n")
    matcher = difflib.SequenceMatcher(a=exercise.split("\n"), b=sol, autojunk=False)
    changed = set()
    for tag, _, _, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "insert"):
            changed.update(range(j1, j2))
    kept, numbers = [], []
    for j, line in enumerate(sol):
        if _is_marker(line, markers):
            continue
        kept.append(line)
        if j in changed:
            numbers.append(len(kept))
    return kept, numbers


def _line_ranges(numbers: list[int]) -> str:
    ranges, start = [], None
    for i, n in enumerate(numbers):
        start = n if start is None else start
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            ranges.append(f"{start}-{n}" if n != start else f"{n}")
            start = None
    return ",".join(ranges)


def code_solution_markdown(solution: str, exercise: str) -> str:
    """A ``{solution}`` directive holding the solution cell, the student's lines emphasized."""
    lines, changed = _solution_lines(solution, exercise, build._CODE)
    code = "\n".join(lines).rstrip("\n")  # no leading lines removed: the numbers stay right
    changed = [n for n in changed if n <= code.count("\n") + 1]
    inner = _fence(code)
    options = f":emphasize-lines: {_line_ranges(changed)}\n" if changed else ""
    block = f"{inner}{{code-block}} python\n{options}\n{code}\n{inner}"
    outer = "`" * (len(inner) + 1)
    return f"{outer}{{solution}}\n{block}\n{outer}"


def markdown_with_solutions(solution: str, exercise: str) -> str:
    """The exercise version of a markdown cell, each "Your answer here." followed by the
    model answer in a ``{solution}`` directive."""
    ex, sol = exercise.split("\n"), solution.split("\n")
    out: list[str] = []
    matcher = difflib.SequenceMatcher(a=ex, b=sol, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        out.extend(ex[i1:i2])
        if tag in ("replace", "insert", "delete"):
            answer = "\n".join(
                line for line in sol[j1:j2] if not _is_marker(line, build._MARKDOWN)
            ).strip("\n")
            if answer:
                fence = "`" * max(4, len(_fence(answer)) + 1)
                out.extend(["", f"{fence}{{solution}}", answer, fence, ""])
    return "\n".join(out)


# --- one notebook -> one page ----------------------------------------------------------------


def _drop_widgets(outputs: list) -> tuple[list, bool]:
    """Outputs without widget views; the flag says whether an interactive widget was dropped
    (progress bars are dropped silently)."""
    kept, interactive = [], False
    for output in outputs:
        data = output.get("data", {})
        if WIDGET_MIME in data:
            interactive |= not re.search(r"\d+%\|", data.get("text/plain", ""))
            continue
        kept.append(output)
    return kept, interactive


def _cell_id(index: int, suffix: str) -> str:
    """A deterministic id for a cell the site adds after cell ``index``."""
    return f"site-{index}-{suffix}"


def info_markdown(chapter: Chapter, exercise_href: str) -> str:
    """The box under a chapter's title: slide sections, launch links, download link."""
    notebook = f"{NOTEBOOKS.name}/{chapter.stem}.ipynb"
    run = f" · CPU run time {chapter.run_time}" if chapter.run_time else ""
    return "\n".join(
        [
            "```{container} chapter-info",
            f"**Slide sections:** {chapter.slides}",
            "",
            f"**Open the exercises** in [Colab]({links.colab_url(notebook)}) · "
            f"[Binder]({links.binder_url(notebook)}) · "
            f'<a class="reference download" href="{exercise_href}" download>'
            f"download {chapter.stem}.ipynb</a>{run}",
            "```",
        ]
    )


def site_notebook(nb: nbformat.NotebookNode, chapter: Chapter) -> nbformat.NotebookNode:
    """The page version of a solution notebook (``nb`` is not modified)."""
    name = f"solutions/{chapter.stem}.ipynb"
    exercise = build.make_exercise(nb, name)
    if len(exercise.cells) != len(nb.cells):  # pragma: no cover - make_exercise keeps cells
        raise SiteError(f"{name}: the exercise version has a different number of cells")
    new = nbformat.v4.new_notebook(
        metadata={k: v for k, v in nb.metadata.items() if k != "widgets"}
    )
    new.nbformat, new.nbformat_minor = nb.nbformat, nb.nbformat_minor
    for index, (cell, ex_cell) in enumerate(zip(nb.cells, exercise.cells, strict=True)):
        cell = nbformat.from_dict(cell)
        if cell.cell_type == "markdown":
            if cell.source != ex_cell.source:
                cell.source = markdown_with_solutions(cell.source, ex_cell.source)
            if index == 0:
                title, _, rest = cell.source.partition("\n")
                href = f"{NOTEBOOKS.name}/{chapter.stem}.ipynb"
                cell.source = f"{title}\n\n{info_markdown(chapter, href)}\n{rest}"
            new.cells.append(cell)
            continue
        if cell.cell_type != "code":
            new.cells.append(cell)
            continue
        outputs, interactive = _drop_widgets(cell.get("outputs", []))
        cell.outputs = outputs
        if any(
            "image/png" in o.get("data", {}) or "image/svg+xml" in o.get("data", {})
            for o in outputs
        ):
            cell.metadata.setdefault("mystnb", {})["image"] = {"alt": alt_text(nb.cells, index)}
        if cell.source != ex_cell.source:  # an exercise: the student's view, then the solution
            solution_source = cell.source
            student = nbformat.from_dict(cell)
            student.source, student.outputs = _shown_source(ex_cell.source), []
            student.execution_count = None
            new.cells.append(student)
            answer = nbformat.v4.new_markdown_cell(
                code_solution_markdown(solution_source, ex_cell.source)
            )
            answer.id = _cell_id(index, "solution")
            new.cells.append(answer)
            if outputs:  # the outputs of the solved cell, without its source
                shown = nbformat.from_dict(cell)
                shown.id = _cell_id(index, "outputs")
                shown.metadata["tags"] = [*shown.metadata.get("tags", []), "remove-input"]
                new.cells.append(shown)
        else:
            cell.source = _shown_source(cell.source)
            new.cells.append(cell)
        if interactive:
            note = nbformat.v4.new_markdown_cell(WIDGET_NOTE)
            note.id = _cell_id(index, "widget")
            new.cells.append(note)
    return new


# --- the landing page ------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def index_markdown(chapters: list[Chapter], readme: str) -> str:
    """The landing page: the README's first paragraph and the chapter map."""
    match = re.search(r"^# .*?\n(.*?)(?=^## )", readme, re.S | re.M)
    paragraphs = [
        p.strip() for p in re.split(r"\n\s*\n", match.group(1) if match else "") if p.strip()
    ]
    # the README's first paragraph that is text (its badge line is not; later ones point at
    # README sections that the site does not have)
    intro = next((p for p in paragraphs if not p.startswith("[![")), "")
    rows = [
        "| # | chapter | slide sections | exercises | CPU run time |",
        "|---|---|---|---|---|",
    ]
    for c in chapters:
        notebook = f"{NOTEBOOKS.name}/{c.stem}.ipynb"
        rows.append(
            f"| {c.stem[:2]} | [{_cell(c.topic)}]({c.stem}.ipynb) | {_cell(c.slides)} "
            f"| [Colab]({links.colab_url(notebook)}) · [Binder]({links.binder_url(notebook)}) · "
            f'<a class="reference download" href="{notebook}" download>download</a> '
            f"| {_cell(c.run_time) or '-'} |"
        )
    toctree = "\n".join(
        ["```{toctree}", ":hidden:", ":maxdepth: 1", "", *[c.stem for c in chapters], "```"]
    )
    return (
        "\n\n".join(
            [
                f"# {TITLE}",
                intro,
                "## Chapter map",
                "Each chapter page shows the solved notebook with its stored outputs; every exercise is "
                "shown as you get it, with the solution behind **Show solution**. To work on a chapter, "
                "open its exercise notebook in Colab or Binder, or download it and run it in JupyterLab "
                "(see the README's Quickstart).",
                "\n".join(rows),
                toctree,
            ]
        )
        + "\n"
    )


def conf_py(mathjax: str) -> str:
    """The generated Sphinx configuration (everything local, nothing time- or path-dependent)."""
    settings = {
        "project": TITLE,
        "author": "the course authors",
        "copyright": "the course authors; code MIT, text and figures CC BY 4.0",
        "extensions": ["myst_nb", "sphinx.ext.githubpages", "course_utils.site"],
        "exclude_patterns": ["_static", "_extra", "**.ipynb_checkpoints"],
        "html_theme": "sphinx_book_theme",
        "html_title": TITLE,
        "html_static_path": ["_static"],
        "html_extra_path": ["_extra"],
        "html_css_files": ["course-site.css"],
        "html_copy_source": False,
        "html_show_sourcelink": False,
        "html_last_updated_fmt": None,
        "html_context": {"default_mode": "auto"},  # an empty mode makes the theme log an error
        "html_favicon": "favicon.svg",  # else browsers ask for a /favicon.ico that is not there
        "html_theme_options": {
            "repository_url": links.REPOSITORY,
            "repository_branch": links.REVISION,
            "use_repository_button": True,
            "use_download_button": False,
            "use_fullscreen_button": False,
            "home_page_in_toc": True,
            "show_toc_level": 2,
        },
        "mathjax_path": mathjax,
        "nb_execution_mode": "off",
        "nb_ipywidgets_js": {},  # no widget manager from a CDN: widget outputs are dropped
        "nb_merge_streams": True,
        "myst_enable_extensions": ["dollarmath", "amsmath"],
        "myst_heading_anchors": 3,
        "suppress_warnings": ["mystnb.unknown_mime_type"],
    }
    return "".join(f"{key} = {value!r}\n" for key, value in settings.items())


# --- the build -------------------------------------------------------------------------------


def _mathjax_root() -> Path:
    from importlib.util import find_spec

    spec = find_spec("sphinx-mathjax-offline")  # the package's folder name has dashes
    if spec is None or spec.origin is None:
        raise SiteError(
            "MathJax is missing: the site serves it from the sphinx-mathjax-offline package "
            "(pip install -r requirements.txt)"
        )
    return Path(spec.origin).parent / "static" / "mathjax"


def stage(source: Path, solutions: Path = SOLUTIONS, notebooks: Path = NOTEBOOKS) -> list[Chapter]:
    """Write the Sphinx project (conf.py, pages, static files) into ``source``."""
    paths = chapter_paths(solutions)
    if not paths:
        raise SiteError(f"no chapter notebooks (NN_*.ipynb) in {solutions}")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme_chapter_map(readme)
    chapters = []
    extra = source / "_extra" / NOTEBOOKS.name
    extra.mkdir(parents=True)
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        chapter = chapter_info(nb, path.stem, table)
        chapters.append(chapter)
        page = site_notebook(nb, chapter)
        (source / path.name).write_text(build.render(page), encoding="utf-8")
        exercise = notebooks / path.name
        if not exercise.is_file():
            raise SiteError(
                f"{exercise}: missing; run `python -m course_utils.build` to generate it"
            )
        shutil.copyfile(exercise, extra / path.name)
    (source / "index.md").write_text(index_markdown(chapters, readme), encoding="utf-8")
    static = source / "_static"
    mathjax_root = _mathjax_root()
    for relative in MATHJAX_FILES:
        origin, target = mathjax_root / relative, static / "mathjax" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_dir():
            shutil.copytree(origin, target)
        else:
            shutil.copyfile(origin, target)
    (static / "course-site.css").write_text(SITE_CSS, encoding="utf-8")
    (source / "favicon.svg").write_text(FAVICON, encoding="utf-8")
    (source / "conf.py").write_text(conf_py(f"mathjax/{MATHJAX_FILES[0]}"), encoding="utf-8")
    return chapters


def build_site(
    out: Path = DEFAULT_OUT,
    solutions: Path = SOLUTIONS,
    notebooks: Path = NOTEBOOKS,
    *,
    quiet: bool = True,
) -> list[Chapter]:
    """Build the site into ``out`` (replaced as a whole). Raises SiteError on a Sphinx warning."""
    from sphinx.application import Sphinx

    out = Path(out).resolve()
    if ROOT.is_relative_to(out):
        raise SiteError(f"refusing to replace {out}: choose an output folder of its own")
    if out.exists() and any(out.iterdir()) and not (out / ".nojekyll").is_file():
        raise SiteError(
            f"refusing to replace {out}: it is not empty and not a site built by this command"
        )
    with tempfile.TemporaryDirectory(prefix="course-site-") as tmp:
        work = Path(tmp)
        source, html, doctrees = work / "source", work / "build" / "html", work / "doctrees"
        source.mkdir()
        chapters = stage(source, solutions, notebooks)
        warnings = work / "warnings.log"
        with warnings.open("w") as warning_stream:
            app = Sphinx(
                str(source),
                str(source),
                str(html),
                str(doctrees),
                "html",
                status=None if quiet else sys.stdout,
                warning=warning_stream,
                freshenv=True,
                keep_going=True,
            )
            app.build(force_all=True)
        problems = warnings.read_text(encoding="utf-8").strip()
        if app.statuscode or problems:
            raise SiteError(f"Sphinx reported problems:\n{problems}")
        # .buildinfo holds a hash of the configuration (not needed to serve the site); _sources
        # stays empty (html_copy_source is off); source maps only serve the theme's developers.
        for leftover in (".buildinfo", ".buildinfo.bak"):
            (html / leftover).unlink(missing_ok=True)
        shutil.rmtree(html / "_sources", ignore_errors=True)
        for source_map in html.rglob("*.map"):
            source_map.unlink()
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(html, out)
    return chapters


def site_size(folder: Path) -> int:
    """Total bytes of the files under ``folder``."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course_utils.site", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"output folder, replaced as a whole (default: {DEFAULT_OUT.relative_to(ROOT)}/)",
    )
    parser.add_argument("--verbose", action="store_true", help="show Sphinx's progress")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        chapters = build_site(args.out, quiet=not args.verbose)
    except SiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    size = site_size(args.out)
    print(
        f"built {len(chapters)} chapter pages into {os.path.relpath(args.out.resolve())}/ "
        f"in {seconds:.1f} s ({size / 1e6:.1f} MB); open index.html or publish the folder as is"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
