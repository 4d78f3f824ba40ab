"""The course website (`python -m course_utils.site`): page preparation, the build, and the
built site in headless Chromium.

Fast tests check the exercise view, the alt text and the chapter data on small inputs. The
build runs twice into tmp dirs (the files must be identical); its time and size are printed (the
limits, 60 s and 30 MB, are measured by benchmarks/site_build.py). The browser tests serve the
site from a local http.server thread, crawl every page with every request outside that server
blocked and recorded, and check each chapter page's figures, check lines, exercises, solutions
and math. Screenshots go to the test's tmp dir. Skipped, with the reason, without Chromium.
"""

from __future__ import annotations

import base64
import functools
import http.server
import re
import subprocess
import sys
import threading
import time
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from course_utils import build, site

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
CHAPTERS = site.chapter_paths()
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
        "0000000d4944415478da63f8ffff3f0005fe02fea7d6a4730000000049454e44ae426082"
    )
).decode()

needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"no Chromium at {CHROMIUM} (install it with `apt-get install chromium`)",
)


# --- fast tests: page preparation ------------------------------------------------------------


def _tiny_notebook() -> nbformat.NotebookNode:
    code, md = nbformat.v4.new_code_cell, nbformat.v4.new_markdown_cell
    cells = [
        md("# 99 · Tiny\n\nAn introduction.\n\n**Slides:** the *Tiny* part, all of it."),
        md("Write `double(x)`."),
        code(
            "# Exercise 9.1: double it\ndef double(x):\n    ### BEGIN SOLUTION\n"
            "    return 2 * x\n    ### END SOLUTION\n\n\nplot(double)",
            outputs=[
                nbformat.v4.new_output(
                    "display_data", data={"image/png": PNG, "text/plain": "<Figure>"}
                )
            ],
        ),
        md("**What to notice.** The line through $\\alpha_{t}$ is straight. More text follows."),
        code(
            "# NBVAL_CHECK_OUTPUT\ncheck_double(double)",
            outputs=[
                nbformat.v4.new_output(
                    "stream", name="stdout", text="Exercise 9.1 passed: 5 cases.\n"
                )
            ],
        ),
        code(
            "show = interactive(draw)",
            outputs=[
                nbformat.v4.new_output(
                    "display_data",
                    data={
                        site.WIDGET_MIME: {"model_id": "abc", "version_major": 2},
                        "text/plain": "interactive(children=(FloatSlider(value=0.0)))",
                    },
                ),
                nbformat.v4.new_output(
                    "display_data",
                    data={site.WIDGET_MIME: {"model_id": "def"}, "text/plain": "run:  0%|   | 0/9"},
                ),
            ],
        ),
        md(
            "**Question.** Why?\n\n<!-- BEGIN SOLUTION -->\nBecause $2x$ is linear.\n"
            "<!-- END SOLUTION -->\n\nThe end."
        ),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    for index, cell in enumerate(nb.cells):
        cell.id = f"cell-{index}"
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return nb


def _tiny_page():
    nb = _tiny_notebook()
    chapter = site.chapter_info(nb, "99_tiny", {})
    return nb, chapter, site.site_notebook(nb, chapter)


def test_exercise_cell_shows_the_student_version_then_the_solution_then_the_outputs():
    nb, _, page = _tiny_page()
    sources = [cell.source for cell in page.cells]
    student = next(c for c in page.cells if c.source.startswith("# Exercise 9.1"))
    at = page.cells.index(student)
    assert "# YOUR CODE HERE" in student.source and "NotImplementedError" in student.source
    assert "return 2 * x" not in student.source and student.outputs == []
    answer, outputs = page.cells[at + 1], page.cells[at + 2]
    assert answer.cell_type == "markdown" and "{solution}" in answer.source
    assert "return 2 * x" in answer.source and "BEGIN SOLUTION" not in answer.source
    assert ":emphasize-lines: 3\n" in answer.source  # line 3 of the shown solution is the answer
    assert "remove-input" in outputs.metadata["tags"]
    assert outputs.outputs[0]["data"]["image/png"] == PNG
    assert nb.cells[2].source.count("BEGIN SOLUTION") == 1  # the input notebook is unchanged
    check = next(s for s in sources if "check_double" in s)
    assert "NBVAL" not in check  # grading markers are not shown on the site


def test_markdown_answers_are_collapsed_in_place():
    _, _, page = _tiny_page()
    text = page.cells[-1].source
    assert text.index("**Question.**") < text.index("Your answer here.") < text.index("{solution}")
    assert text.index("{solution}") < text.index("Because $2x$ is linear.") < text.index("The end.")
    assert "BEGIN SOLUTION" not in text


def test_widget_outputs_and_state_are_dropped_and_interactive_ones_get_a_note():
    _, _, page = _tiny_page()
    assert "widgets" not in page.metadata
    for cell in page.cells:
        for output in cell.get("outputs", []):
            assert site.WIDGET_MIME not in output.get("data", {})
    notes = [c for c in page.cells if c.source == site.WIDGET_NOTE]
    assert len(notes) == 1  # for the slider; the progress bar goes silently


def test_figures_get_alt_text_from_what_to_notice():
    _, _, page = _tiny_page()
    outputs = next(c for c in page.cells if "remove-input" in c.metadata.get("tags", []))
    alt = outputs.metadata["mystnb"]["image"]["alt"]
    assert alt == "Figure. The line through alpha_t is straight. More text follows."


def test_alt_text_falls_back_to_the_markdown_before_the_figure():
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    cells = [md("## Plot\n\nThe histogram of $\\mathcal{L}$ over [seeds](x.md)."), code("plot()")]
    assert site.alt_text(cells, 1) == "Figure. The histogram of L over seeds."
    assert site.alt_text([code("# the loss curve\nplot()")], 0) == "Figure. the loss curve"


def test_plain_text_reads_math_lists_and_tables():
    text = (
        "| a | b |\n|---|---|\n- The ELBO, $p = \\tfrac12$ for $s \\in\\mathcal S$, "
        "$\\alpha_t \\log\\pi(a\\mid s)$ and **$\\nabla_\\psi\\mathcal L$**."
    )
    assert (
        site.plain_text(text)
        == "The ELBO, p = 1/2 for s in S, alpha_t log pi (a| s) and nabla_psi L."
    )


def test_chapter_header_has_slides_launch_links_and_download():
    _, chapter, page = _tiny_page()
    assert chapter.slides == "the *Tiny* part, all of it."  # from the notebook: not in the README
    header = page.cells[0].source
    assert header.startswith("# 99 · Tiny\n")
    assert "**Slide sections:** the *Tiny* part, all of it." in header
    from course_utils import links

    assert links.colab_url("notebooks/99_tiny.ipynb") in header
    assert links.binder_url("notebooks/99_tiny.ipynb") in header
    assert 'href="notebooks/99_tiny.ipynb" download' in header


def test_every_chapter_is_in_the_readme_map_with_its_slide_sections():
    table = site.readme_chapter_map((ROOT / "README.md").read_text(encoding="utf-8"))
    assert CHAPTERS, "no solutions/NN_*.ipynb"
    for path in CHAPTERS:
        chapter = site.chapter_info(nbformat.read(path, as_version=4), path.stem, table)
        assert chapter.slides and chapter.slides != "-", path.name
        assert chapter.title.startswith(path.stem[:2]), chapter.title


def test_a_new_chapter_is_picked_up_by_its_file_name(tmp_path):
    for name in ("00_a.ipynb", "11_beyond.ipynb", "notes.ipynb", "1_bad.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in site.chapter_paths(tmp_path)] == ["00_a.ipynb", "11_beyond.ipynb"]


def test_bad_input_gives_a_one_line_error(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("no title here")])
    with pytest.raises(site.SiteError, match="first cell must be a markdown '# ' title"):
        site.chapter_info(nb, "99_x", {})
    solutions, notebooks = tmp_path / "solutions", tmp_path / "notebooks"
    solutions.mkdir()
    notebooks.mkdir()
    with pytest.raises(site.SiteError, match="no chapter notebooks"):
        site.stage(tmp_path / "src", solutions, notebooks)
    nbformat.write(_tiny_notebook(), solutions / "99_tiny.ipynb")
    with pytest.raises(
        site.SiteError,
        match=re.escape("99_tiny.ipynb: missing; run `python -m course_utils.build`"),
    ):
        site.stage(tmp_path / "src2", solutions, notebooks)
    with pytest.raises(site.SiteError, match="refusing to replace"):
        site.build_site(ROOT)
    with pytest.raises(site.SiteError, match="not empty and not a site built by this command"):
        site.build_site(solutions)  # holds a notebook: never wiped
    assert (solutions / "99_tiny.ipynb").is_file()


def test_a_one_chapter_site_shows_exercise_solution_outputs_in_that_order(tmp_path):
    """The whole pipeline on the tiny notebook, in this process (the only in-process build)."""
    solutions, notebooks = tmp_path / "solutions", tmp_path / "notebooks"
    solutions.mkdir()
    notebooks.mkdir()
    nb = _tiny_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, solutions / "99_tiny.ipynb")
    exercise = build.exercise_text(solutions / "99_tiny.ipynb")
    (notebooks / "99_tiny.ipynb").write_text(exercise, encoding="utf-8")
    site.build_site(tmp_path / "out", solutions, notebooks)
    html = (tmp_path / "out" / "99_tiny.html").read_text(encoding="utf-8")
    student = html.index("Exercise 9.1: replace this line with your code")
    solution = html.index('<details class="solution">', student)
    figure = html.index('alt="Figure. The line through alpha_t is straight.', solution)
    assert '<span class="hll">' in html[solution:figure]  # the student's line, highlighted
    assert html.index("</details>", solution) < figure
    assert html.index("Exercise 9.1 passed: 5 cases.") > figure
    assert "the <em>Tiny</em> part, all of it." in html  # slide sections from the notebook
    assert "model_id" not in html and "vnd.jupyter.widget" not in html
    assert (tmp_path / "out" / "notebooks" / "99_tiny.ipynb").read_text() == exercise


# --- the build -------------------------------------------------------------------------------


class _Refs(HTMLParser):
    """Every (tag, attribute, value) that loads or links something."""

    def __init__(self):
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href", "data") and value:
                self.refs.append((tag, name, value))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The site built twice with the documented command, into two tmp dirs (a fresh process each
    time: Sphinx registers its directives globally). Returns both folders and the first's size."""
    outs, seconds = [], []
    for name in ("site-a", "site-b"):
        out = tmp_path_factory.mktemp(name) / "_site"
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "course_utils.site", "--out", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        seconds.append(time.perf_counter() - start)
        assert result.returncode == 0, result.stdout + result.stderr
        outs.append(out)
    size = site.site_size(outs[0])
    print(
        f"\nsite build (the whole command): {seconds[0]:.1f} s and {seconds[1]:.1f} s (limit 60 s, "
        f"measured by benchmarks/site_build.py); size {size / 1e6:.1f} MB (limit 30 MB); "
        f"in {outs[0]}\n{result.stdout.strip()}"
    )
    return outs[0], outs[1], size


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_two_builds_give_identical_files(built):
    first, second, _ = built
    a, b = _files(first), _files(second)
    assert sorted(a) == sorted(b)
    different = [name for name in a if a[name] != b[name]]
    assert not different, f"files that differ between two builds: {different[:10]}"
    assert ".buildinfo" not in a and not any(name.startswith(".doctrees") for name in a)


def test_size_is_within_the_budget_and_the_folder_is_publishable(built):
    out, _, size = built
    assert size <= 30e6, f"the site is {size / 1e6:.1f} MB"
    assert (out / "index.html").is_file() and (out / ".nojekyll").is_file()
    for path in CHAPTERS:
        assert (out / f"{path.stem}.html").is_file()
        assert (out / "notebooks" / path.name).read_bytes() == (
            build.NOTEBOOKS / path.name
        ).read_bytes()


def test_pages_load_nothing_from_outside_the_site(built):
    out, _, _ = built
    for css in out.rglob("*.css"):
        outside = re.findall(r"url\(\s*['\"]?(?:https?:)?//[^)]*\)|@import[^;]*//", css.read_text())
        assert not outside, f"{css.relative_to(out)} loads {outside[:3]}"
    for page in sorted(out.glob("*.html")):
        parser = _Refs()
        parser.feed(page.read_text(encoding="utf-8"))
        for tag, attribute, value in parser.refs:
            if tag == "a":  # links may leave the site (Colab, Binder, papers); loads may not
                continue
            assert not re.match(r"^(https?:)?//", value), (
                f"{page.name}: <{tag} {attribute}={value!r}>"
            )
        text = re.sub(r"<script.*?</script>", "", page.read_text(encoding="utf-8"), flags=re.S)
        assert "$$" not in text, f"{page.name}: raw $$ in the page"


# --- the browser -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(built):
    out, _, _ = built

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=out)
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", out
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is not installed"
    )
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class _Watch:
    """Console errors, page errors, failed requests and requests leaving the site, per page."""

    def __init__(self, page, base: str):
        self.base, self.problems, self.current = base, [], ""
        page.on("console", self._console)
        page.on(
            "pageerror", lambda error: self.problems.append(f"{self.current}: page error {error}")
        )
        page.on("requestfailed", self._failed)
        page.on("response", self._response)
        page.route("**/*", self._route)

    def _console(self, message):
        if message.type == "error":
            self.problems.append(f"{self.current}: console error: {message.text}")

    def _failed(self, request):
        if request.url.startswith(self.base):
            self.problems.append(
                f"{self.current}: request failed {request.url} ({request.failure})"
            )

    def _response(self, response):
        if response.status >= 400:
            self.problems.append(f"{self.current}: HTTP {response.status} for {response.url}")

    def _route(self, route):
        url = route.request.url
        if url.startswith(self.base) or url.startswith("data:") or url == "about:blank":
            route.continue_()
        else:
            self.problems.append(f"{self.current}: request leaving the site: {url}")
            route.abort()


def _wait_for_math(page) -> None:
    page.evaluate(
        "async () => { if (window.MathJax && MathJax.startup && MathJax.startup.promise)"
        " await MathJax.startup.promise; }"
    )


def _expected(path: Path) -> dict:
    """What a chapter page must show, read from its solution notebook."""
    nb = nbformat.read(path, as_version=4)
    exercise = build.make_exercise(nb, path.name)
    images = 0
    check_lines, solutions, ids = [], [], []
    for cell, ex_cell in zip(nb.cells, exercise.cells, strict=True):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if site.WIDGET_MIME not in data and "image/png" in data:
                images += 1
            check_lines += re.findall(
                r"^Exercise \d+\.\d+ passed: .*$", output.get("text", ""), re.M
            )
        if cell.source != ex_cell.source:
            markers = build._CODE if cell.cell_type == "code" else build._MARKDOWN
            lines, changed = site._solution_lines(cell.source, ex_cell.source, markers)
            answer = next(lines[n - 1].strip() for n in changed if lines[n - 1].strip())
            if cell.cell_type == "markdown":  # the text between the math (MathJax renders that)
                answer = max(re.split(r"\$[^$]*\$|[*`]", answer), key=len).strip()
            solutions.append(answer)
            ids += build.EXERCISE_ID.findall(ex_cell.source)[:1] if cell.cell_type == "code" else []
    return {"images": images, "check_lines": check_lines, "solutions": solutions, "ids": ids}


@needs_chromium
def test_crawl_every_page_and_check_each_chapter(server, browser, tmp_path):
    base, out = server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    watch = _Watch(page, base)
    # every page of the folder (search.html and genindex.html are reached by the search form, not
    # by a link), then whatever the links lead to
    queue = ["index.html", *sorted(p.name for p in out.glob("*.html"))]
    seen, anchors, pages_with_math = set(), [], []
    page_ids: dict[str, set[str]] = {}
    try:
        while queue:
            name = queue.pop(0)
            if name in seen:
                continue
            seen.add(name)
            watch.current = name
            page.goto(base + name, wait_until="load")
            _wait_for_math(page)
            hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
            ids = set(page.eval_on_selector_all("[id]", "els => els.map(e => e.id)"))
            broken_images = page.eval_on_selector_all(
                "img", "els => els.filter(e => !e.complete || e.naturalWidth === 0).map(e => e.src)"
            )
            assert not broken_images, f"{name}: images that did not load: {broken_images}"
            for href in hrefs:
                if not href.startswith(base):
                    continue
                target, _, fragment = href[len(base) :].partition("#")
                target = urllib.parse.unquote(target.split("?")[0]) or "index.html"
                assert (out / target).is_file(), f"{name}: broken link to {href}"
                if target.endswith(".html"):
                    queue.append(target)
                    if fragment:
                        anchors.append((name, target, urllib.parse.unquote(fragment)))
            page_ids[name] = ids
            if page.locator("mjx-container").count():
                pages_with_math.append(name)
            assert page.locator("mjx-merror").count() == 0, (
                f"{name}: MathJax could not render some TeX"
            )
            stem = name.removesuffix(".html")
            if (ROOT / "solutions" / f"{stem}.ipynb") in CHAPTERS:
                _check_chapter_page(page, name, _expected(ROOT / "solutions" / f"{stem}.ipynb"))
        page.goto(base + "search.html?q=soft+value+iteration", wait_until="load")
        page.wait_for_function(
            "() => document.querySelectorAll('#search-results li').length > 0", timeout=20_000
        )
    finally:
        page.close()
    missing = [a for a in anchors if a[2] not in page_ids.get(a[1], set())]
    assert not missing, f"links to missing anchors (page, target, anchor): {missing[:5]}"
    assert not watch.problems, "\n".join(watch.problems[:20])
    expected_pages = {
        "index.html",
        "search.html",
        "genindex.html",
        *(f"{p.stem}.html" for p in CHAPTERS),
    }
    assert expected_pages <= seen, f"pages not crawled: {expected_pages - seen}"
    assert set(pages_with_math) >= {f"{p.stem}.html" for p in CHAPTERS}, (
        "a chapter page has no rendered math"
    )
    print(f"\ncrawled {len(seen)} pages; MathJax rendered math on {len(pages_with_math)} of them")


def _check_chapter_page(page, name: str, expected: dict) -> None:
    figures = page.locator("main .cell_output img")
    alts = figures.evaluate_all("els => els.map(e => e.getAttribute('alt') || '')")
    assert len(alts) == expected["images"], (
        f"{name}: {len(alts)} figures, expected {expected['images']}"
    )
    assert all(alt.strip() for alt in alts), f"{name}: a figure without alt text"
    text = page.locator("main").inner_text()
    for line in expected["check_lines"]:
        assert line.strip() in text, f"{name}: check line not shown: {line}"
    for exercise_id in expected["ids"]:
        assert f'NotImplementedError("Exercise {exercise_id}:' in text, (
            f"{name}: exercise {exercise_id}"
        )
    details = page.locator("main details.solution")
    assert details.count() == len(expected["solutions"]), f"{name}: {details.count()} solutions"
    states = details.evaluate_all(
        "els => els.map(e => [e.open, e.querySelector('summary').textContent, e.textContent])"
    )
    for (is_open, summary, content), answer in zip(states, expected["solutions"], strict=True):
        assert not is_open and summary.strip() == "Show solution", (
            f"{name}: a solution is not collapsed"
        )
        assert answer in " ".join(content.split()) or answer in content, (
            f"{name}: {answer!r} not in solution"
        )
    assert "$$" not in text, f"{name}: raw $$ in the page"
    assert page.locator("main mjx-container").count() > 0, f"{name}: no rendered math"


@needs_chromium
def test_screenshots_of_the_landing_page_and_a_chapter(server, browser, tmp_path):
    base, _ = server
    chapter = next((p.stem for p in CHAPTERS if p.stem.startswith("04")), CHAPTERS[-1].stem)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        paths = []
        for name in ("index.html", f"{chapter}.html"):
            page.goto(base + name, wait_until="load")
            _wait_for_math(page)
            path = tmp_path / name.replace(".html", ".png")
            page.screenshot(path=str(path), full_page=False)
            paths.append(path)
        page.goto(base + f"{chapter}.html", wait_until="load")
        _wait_for_math(page)
        first = page.locator("main details.solution").first
        first.scroll_into_view_if_needed()
        first.locator("summary").click()
        assert first.evaluate("e => e.open")
        path = tmp_path / f"{chapter}-solution-open.png"
        page.screenshot(path=str(path), full_page=False)
        paths.append(path)
    finally:
        page.close()
    for path in paths:
        assert path.stat().st_size > 10_000
        print(f"\nscreenshot: {path}")
