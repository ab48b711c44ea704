"""A drawing made MNIST's way: the stroke's bounding box fitted into 20×20 (aspect kept), centred by its centre of
mass in a 28×28 field. numpy only: area-average resampling, integer shifts."""
from __future__ import annotations

import numpy as np

SIZE, BOX = 28, 20   # MNIST: the digit fits a 20×20 box inside the 28×28 image


def area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """R (n_out×n_in): output cell i is the mean of the input over [i·s, (i+1)·s), s = n_in/n_out, each input
    cell weighted by how much of it lies inside; so R @ v resamples v by area averaging (rows sum to 1)."""
    s = n_in / n_out
    edges = np.arange(n_out + 1) * s                       # output cell i covers [edges[i], edges[i+1])
    lo, hi = edges[:-1, None], edges[1:, None]
    j = np.arange(n_in)[None, :]                           # input cell j covers [j, j+1)
    overlap = np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0, None)
    return overlap / s


def resample(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """image (h×w) resampled to shape by area averaging: Rₕ · image · R_wᵀ."""
    return area_matrix(image.shape[0], shape[0]) @ image @ area_matrix(image.shape[1], shape[1]).T


def mnist_style(alpha: np.ndarray) -> np.ndarray:
    """A drawing (h×w ink coverage in [0, 1]) as a 28×28 image in [0, 1], made as MNIST's digits were.

    The bounding box of the ink is scaled so its longer side is 20 pixels (the shorter side keeps the aspect
    ratio, at least 1 pixel) by area averaging, then placed in the 28×28 field so that its centre of mass falls
    on the field's centre (13.5, 13.5), shifted by whole pixels and kept inside the field. No ink (or ink too
    faint to survive the resampling): all zeros.
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    out = np.zeros((SIZE, SIZE))
    rows, cols = np.nonzero(alpha > 0)
    if rows.size == 0:
        return out
    crop = alpha[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    scale = BOX / max(crop.shape)
    h, w = (max(1, round(n * scale)) for n in crop.shape)
    digit = resample(crop, (h, w))
    mass = digit.sum()
    if not mass > 0:   # NOTE: ink so faint (5e-324) that resampling leaves none: no ink, not a 0/0 centre
        return out
    com = [(np.arange(n) * digit.sum(axis=1 - ax)).sum() / mass for ax, n in enumerate(digit.shape)]
    top, left = (int(np.clip(round((SIZE - 1) / 2 - c), 0, SIZE - n)) for c, n in zip(com, digit.shape))
    out[top:top + h, left:left + w] = digit
    return np.clip(out, 0.0, 1.0)
