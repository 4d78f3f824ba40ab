"""Shared figures: gridworld heatmaps, policy arrows, learning curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patheffects
from matplotlib.patches import Rectangle

from .mdp import ACTIONS, TabularMDP

__all__ = ["UNREACHABLE", "plot_grid_values", "plot_learning_curves", "plot_policy_arrows"]

UNREACHABLE = "////"  # the hatch of states with value -inf (unreachable), for figure legends


def plot_grid_values(
    mdp: TabularMDP,
    values: np.ndarray,
    ax: plt.Axes | None = None,
    *,
    title: str = "",
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    annotate: bool = False,
    colorbar: bool = True,
    fmt: str = "{:.2f}",
) -> plt.Axes:
    """Draw per-state ``values`` (S,) of a gridworld as a heatmap; walls are grey.

    States whose value is -inf (e.g. the log of a probability 0: a state that cannot be reached)
    are drawn white with grey hatching, so that they are not mistaken for walls. Cells of special
    types (goals ``G``, traps ``T``, ...) are labelled with their letter, outlined so that it
    stays readable on every colour.
    """
    ax = ax or plt.gca()
    values = np.asarray(values, dtype=np.float64)
    grid = mdp.to_grid(values)
    cmap_obj = plt.get_cmap(cmap).with_extremes(bad="0.6")  # walls (NaN) are grey
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap_obj, vmin=vmin, vmax=vmax)
    for r, c in mdp.cells[np.isneginf(values)]:  # unreachable: hatched, not grey
        ax.add_patch(
            Rectangle(
                (c - 0.5, r - 0.5), 1, 1, facecolor="white", edgecolor="0.55", hatch=UNREACHABLE
            )
        )
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    for (r, c), value in zip(mdp.cells, values, strict=True):
        kind = mdp.layout[r][c] if mdp.layout else "."
        label = kind if kind not in ".S" else ""
        if annotate:
            label = (label + " " if label else "") + fmt.format(value)
        if label:
            if np.isfinite(value):
                red, green, blue, _ = cmap_obj(image.norm(value))
            else:  # a wall-grey NaN, or a white unreachable cell
                red = green = blue = 1.0 if np.isneginf(value) else 0.6
            dark = 0.299 * red + 0.587 * green + 0.114 * blue > 0.55
            readable, outline = ("black", "white") if dark else ("white", "black")
            ax.text(
                c,
                r,
                label,
                ha="center",
                va="center",
                color=readable,
                fontsize=8,
                fontweight="bold" if kind not in ".S" else "normal",
                path_effects=[patheffects.withStroke(linewidth=2, foreground=outline)],
                zorder=4,
            )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    return ax


def plot_policy_arrows(
    mdp: TabularMDP,
    pi: np.ndarray,
    ax: plt.Axes | None = None,
    *,
    color: str = "white",
    scale: float = 0.4,
) -> plt.Axes:
    """Overlay a stationary policy pi (S, A): one arrow per move, length = its probability.

    The probability of "stay" is drawn as a dot whose size grows with it.
    """
    ax = ax or plt.gca()
    pi = np.asarray(pi, dtype=np.float64)
    if pi.shape != (mdp.n_states, mdp.n_actions):
        raise ValueError(f"pi must have shape {(mdp.n_states, mdp.n_actions)}, got {pi.shape}")
    rows, cols = mdp.cells[:, 0], mdp.cells[:, 1]
    for a, (name, (dr, dc)) in enumerate(ACTIONS[: mdp.n_actions]):
        if name == "stay":
            ax.scatter(cols, rows, s=60 * pi[:, a], color=color, zorder=3)
            continue
        ax.quiver(
            cols,
            rows,
            dc * pi[:, a] * scale,
            -dr * pi[:, a] * scale,
            color=color,
            angles="xy",
            scale_units="xy",
            scale=1,
            width=0.006,
            zorder=3,
        )
    return ax


def plot_learning_curves(
    curves: Mapping[str, Sequence[np.ndarray]] | Mapping[str, np.ndarray],
    x: np.ndarray | None = None,
    ax: plt.Axes | None = None,
    *,
    xlabel: str = "step",
    ylabel: str = "return",
    title: str = "",
) -> plt.Axes:
    """Plot one line per label; a 2-D array (runs, points) is drawn as mean ± one std."""
    ax = ax or plt.gca()
    for label, ys in curves.items():
        ys = np.asarray(ys, dtype=np.float64)
        ys = ys[None, :] if ys.ndim == 1 else ys
        xs = np.arange(ys.shape[1]) if x is None else np.asarray(x)
        mean = ys.mean(axis=0)
        (line,) = ax.plot(xs, mean, label=label)
        if ys.shape[0] > 1:
            std = ys.std(axis=0)
            ax.fill_between(xs, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend()
    return ax
