"""Every widget of every solution notebook, driven without a browser.

Each notebook's code runs in this process (matplotlib's Agg backend); then every
``ipywidgets.interactive`` it left in its namespace has its controls set to several values, and
its callback must run without error and draw a figure that changes with the controls.
(The browser test checks the same widgets render in JupyterLab.)
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets
import matplotlib.pyplot as plt
import nbformat
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
WIDGET_NOTEBOOKS = sorted(
    p
    for p in (ROOT / "solutions").glob("*.ipynb")
    if "widgets.interactive(" in p.read_text(encoding="utf-8")
)


@pytest.fixture(autouse=True)
def _isolated_globals():
    """Each notebook starts from a fresh kernel's global state (one may set float64 as default)."""
    dtype, threads = torch.get_default_dtype(), torch.get_num_threads()
    torch.set_default_dtype(torch.float32)
    with matplotlib.rc_context():
        yield
    torch.set_default_dtype(dtype)
    torch.set_num_threads(threads)


def _run_notebook_code(path: Path) -> dict:
    """Execute the code cells of a notebook in a fresh namespace, from the notebook's folder."""
    nb = nbformat.read(path, as_version=4)
    namespace: dict = {"__name__": "__notebook__"}
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            for index, cell in enumerate(nb.cells):
                if cell.cell_type == "code":
                    exec(compile(cell.source, f"{path.name}, cell {index}", "exec"), namespace)
                    plt.close("all")
    finally:
        os.chdir(cwd)
    return namespace


def _settings(control) -> list:
    """A few values to try for one control: its options, or its range's ends and middle."""
    if hasattr(control, "options") and control.options:
        values = [option[1] if isinstance(option, tuple) else option for option in control.options]
        return values[:3]
    if hasattr(control, "min") and hasattr(control, "max"):
        low, high = control.min, control.max
        middle = (low + high) / 2
        middle = type(low)(middle) if isinstance(low, int) else middle
        return [low, middle, high]
    return [control.value]


def _draw(widget) -> bytes:
    """Call the widget's function with its controls' current values; return the picture it drew."""
    plt.close("all")
    kwargs = {c._kwarg: c.get_interact_value() for c in widget.kwargs_widgets}
    with contextlib.redirect_stdout(io.StringIO()):
        widget.f(**kwargs)
    figures = [plt.figure(n) for n in plt.get_fignums()]
    assert figures, "the widget's function drew no figure"
    buffer = io.BytesIO()
    figures[-1].savefig(buffer, format="png", dpi=40)
    plt.close("all")
    return buffer.getvalue()


@pytest.mark.parametrize("path", WIDGET_NOTEBOOKS, ids=lambda p: p.stem)
def test_widget_callbacks_respond_to_their_controls(path):
    namespace = _run_notebook_code(path)
    found = {name: w for name, w in namespace.items() if isinstance(w, widgets.interactive)}
    assert found, f"{path.name} builds no named widgets.interactive object"
    for name, widget in found.items():
        controls = [c for c in widget.kwargs_widgets if hasattr(c, "value")]
        assert controls, f"{name} has no controls"
        for control in controls:  # _draw calls the function itself, once per setting
            control.unobserve(widget.update, names="value")
        pictures = set()
        for control in controls:
            original = control.value
            for value in _settings(control):
                control.value = value
                pictures.add(_draw(widget))
            control.value = original
        # combinations of the first two controls' ends, when there are two
        if len(controls) >= 2:
            for a, b in itertools.product(_settings(controls[0])[::2], _settings(controls[1])[::2]):
                controls[0].value, controls[1].value = a, b
                pictures.add(_draw(widget))
        assert len(pictures) >= 2, f"{name}: moving its controls never changed the figure"
