import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from course_utils.mdp import gridworld
from course_utils.plotting import plot_grid_values, plot_learning_curves, plot_policy_arrows


def test_grid_heatmap_masks_walls_and_labels_special_cells():
    mdp = gridworld(["S.#", "..G"])
    fig, ax = plt.subplots()
    plot_grid_values(mdp, np.arange(5.0), ax, annotate=True)
    image = ax.images[0].get_array()
    assert image.mask[0, 2] and not image.mask[1, 2] and image[1, 2] == 4.0
    labels = {t.get_text(): t.get_color() for t in ax.texts}
    assert labels["G 4.00"] == "black"  # the top of viridis is yellow: dark text stays readable
    assert labels["0.00"] == "white"
    plot_policy_arrows(mdp, np.full((5, 5), 0.2), ax)
    with pytest.raises(ValueError, match=r"pi must have shape \(5, 5\)"):
        plot_policy_arrows(mdp, np.full((4, 5), 0.2), ax)
    plt.close(fig)


def test_learning_curves_draw_mean_and_band():
    fig, ax = plt.subplots()
    plot_learning_curves({"runs": np.ones((3, 10)), "single": np.arange(10.0)}, ax=ax)
    assert [line.get_label() for line in ax.lines] == ["runs", "single"]
    assert len(ax.collections) == 1  # a band only for the curve with several runs
    plt.close(fig)
