"""Datasets of the course. Nothing is downloaded: the digits ship with scikit-learn.

:func:`load_binarized_digits` gives the data of chapter 03 (the VAE): the 1797 handwritten
digits of ``sklearn.datasets.load_digits``, 8x8 images with integer intensities 0..16,
binarized by a fixed threshold (a pixel is 1 when its intensity is at least 8 of 16, i.e.
at least half of the maximum) and split once into a training and a test set, stratified by
class, with a seed. Binary pixels make the decoder's likelihood a product of Bernoullis,
``p_theta(x|z) = prod_j Bernoulli(x_j; sigmoid(logits_theta(z)_j))``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "DIGITS_IMAGE_SHAPE",
    "DIGITS_MAX_INTENSITY",
    "DIGITS_THRESHOLD",
    "DigitsSplit",
    "as_image_grid",
    "binarize",
    "load_binarized_digits",
]

DIGITS_IMAGE_SHAPE = (8, 8)
DIGITS_MAX_INTENSITY = 16
DIGITS_THRESHOLD = 8  # pixel -> 1 when intensity >= 8 (of 16)


class DigitsSplit(NamedTuple):
    """Binarized digits split into train and test; unpacks as ``x_train, y_train, x_test, y_test``.

    x_train: (N_train, 64) and x_test: (N_test, 64), entries exactly 0.0 or 1.0 (row-major 8x8);
    y_train: (N_train,) and y_test: (N_test,), int64 class labels 0..9.
    """

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor


def binarize(images: np.ndarray, threshold: int = DIGITS_THRESHOLD) -> np.ndarray:
    """1.0 where ``images >= threshold``, else 0.0 (same shape, float64)."""
    if not 0 < threshold <= DIGITS_MAX_INTENSITY:
        raise ValueError(f"threshold must be in 1..{DIGITS_MAX_INTENSITY}, got {threshold}")
    return (np.asarray(images) >= threshold).astype(np.float64)


def load_binarized_digits(
    seed: int = 0,
    test_fraction: float = 0.2,
    *,
    threshold: int = DIGITS_THRESHOLD,
    dtype: torch.dtype = torch.float32,
) -> DigitsSplit:
    """The 1797 digits of scikit-learn, binarized and split into train and test.

    The split is stratified by class: each class contributes ``round(test_fraction * n_c)``
    images to the test set, chosen by a permutation seeded with ``seed``; the same seed
    always gives the same split (with the default 0.2: 1438 train and 359 test images).
    Images keep scikit-learn's order within each part. Returns a :class:`DigitsSplit` of
    CPU tensors (images in ``dtype``, labels int64).
    """
    from sklearn.datasets import load_digits

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    digits = load_digits()
    images = binarize(digits.data, threshold)
    labels = digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        n_test = round(test_fraction * len(members))
        is_test[rng.permutation(members)[:n_test]] = True

    def part(mask: np.ndarray) -> tuple[Tensor, Tensor]:
        return torch.as_tensor(images[mask], dtype=dtype), torch.as_tensor(labels[mask])

    x_train, y_train = part(~is_test)
    x_test, y_test = part(is_test)
    return DigitsSplit(x_train, y_train, x_test, y_test)


def as_image_grid(images, n_cols: int, *, pad: int = 1) -> np.ndarray:
    """Tile flat 8x8 images (n, 64) (tensor or array) into one 2-D array for ``plt.imshow``.

    Images fill rows of ``n_cols``; ``pad`` pixels of NaN separate them (and fill an incomplete
    last row), so that a colormap with ``set_bad`` draws the gaps in a colour of its own.
    """
    if hasattr(images, "detach"):
        images = images.detach().cpu().numpy()
    images = np.asarray(images, dtype=np.float64).reshape(-1, *DIGITS_IMAGE_SHAPE)
    height, width = DIGITS_IMAGE_SHAPE
    n_rows = max(1, -(-len(images) // n_cols))
    grid = np.full((n_rows * (height + pad) - pad, n_cols * (width + pad) - pad), np.nan)
    for index, image in enumerate(images):
        row, col = divmod(index, n_cols)
        top, left = row * (height + pad), col * (width + pad)
        grid[top : top + height, left : left + width] = image
    return grid
