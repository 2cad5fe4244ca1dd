"""Picking and reordering an image's channels into a new interleaved array.

numpy's advanced indexing on the last axis (``pixels[:, :, [2, 1, 0]]``) returns a *planar*
array (the indexed axis outermost in memory), and making it interleaved again is a second,
strided copy: at 3840x2160 RGB uint8, 7.5 ms + 47.6 ms, against 1.6 ms for the same swap by
``cv2.cvtColor`` (a plain copy with the channels exchanged, bit for bit, for every sample
type it takes). A 4K frame read through OpenCV took 172 ms instead of imread's 108 ms.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_SWAPS = {(2, 1, 0): "COLOR_BGR2RGB", (2, 1, 0, 3): "COLOR_BGRA2RGBA"}  # each is its own inverse
_SWAP_DTYPES = (np.uint8, np.uint16, np.float32)


def pick_channels(pixels: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """``pixels[:, :, order]`` as a C-contiguous (interleaved) array.

    Args:
        pixels: ``(H, W, C)``, any sample type.
        order: indices into the last axis (repeats allowed).
    Returns:
        ``(H, W, len(order))``; ``pixels`` itself when it is contiguous and ``order`` is ``0..C-1``.
    """
    order = tuple(int(i) for i in order)
    if pixels.ndim != 3:
        raise ValueError(f"expected (H, W, C) pixels, got shape {pixels.shape}")
    if order == tuple(range(pixels.shape[2])):
        return np.ascontiguousarray(pixels)
    swap = _SWAPS.get(order)
    if swap is not None and pixels.shape[2] == len(order) and pixels.dtype in _SWAP_DTYPES:
        import cv2

        return cv2.cvtColor(np.ascontiguousarray(pixels), getattr(cv2, swap))
    out = np.empty((*pixels.shape[:2], len(order)), pixels.dtype)
    for j, k in enumerate(order):
        out[:, :, j] = pixels[:, :, k]
    return out
