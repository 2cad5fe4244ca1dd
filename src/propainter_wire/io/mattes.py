"""Mattes as roto delivers them: which channel, which way round, how soft.

A matte file may be an alpha-only EXR, an RGBA render whose alpha is the matte, a grey
image, or an EXR with a named layer channel (``mask``, ``roto.A``). :func:`matte_values`
picks one channel (``--mask-channel``), flips it (``--invert-mask``) and brings it to a
0..1 scale whatever the bit depth. The pixels above ``--mask-threshold`` (also 0..1; a value
of 1 or more is read on the 8-bit scale, 0..254) are filled; a *soft* matte's values are
kept as the blend weight of the final composite (:func:`matte_mask`).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .channels import pick_channels

__all__ = ["CHANNEL_HELP", "choose_channel", "matte_mask", "threshold_unit"]

CHANNEL_HELP = "R, G, B, A, Y or a channel name (default: alpha when the colour is constant, else luminance)"
_PEAK = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def threshold_unit(threshold: float) -> float:
    """``--mask-threshold`` on the 0..1 scale: values below 1 are already; 1..254 are 8-bit levels."""
    return float(threshold) if threshold < 1 else float(threshold) / 255.0


def choose_channel(pixels: np.ndarray, names: tuple[str, ...], channel: str | None, where) -> np.ndarray:
    """One channel of a matte: ``(H, W)`` in the file's sample type.

    Args:
        pixels: ``(H, W, C)`` every channel of the matte (``read_channels``), or ``(H, W)``.
        names: the channels' names.
        channel: ``R``/``G``/``B``/``A``/``Y`` or a channel name (``mask``, ``roto.A``); a name also
            matches a layer's channel (``mask`` finds ``roto.mask``); None: the default rule
            (:func:`propainter_wire.io.masks.mask_to_grey` on the colour and alpha; an alpha-only
            file's alpha).
    Raises:
        InputError: the channel is not in the file (the message lists those that are).
    """
    from .masks import _luma, mask_to_grey
    from .oiio import rgb_layout

    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    index = {n: i for i, n in enumerate(names)}
    if channel is None:
        layout = rgb_layout(names)
        if layout is None:  # no colour: the alpha (or the one channel there is)
            return pixels[:, :, index.get("A", 0)]
        keep = list(layout.colour) + ([layout.alpha] if layout.alpha is not None else [])
        image = pick_channels(pixels, keep)
        return mask_to_grey(image[:, :, 0] if image.shape[2] == 1 else image)
    found = index.get(channel)
    if found is None:
        layered = [i for n, i in index.items() if n.endswith("." + channel)]
        found = layered[0] if len(layered) == 1 else None
    if found is None and channel == "Y" and all(c in index for c in "RGB"):
        return _luma(pick_channels(pixels, [index["R"], index["G"], index["B"]]))
    if found is None and channel == "Y" and len(names) == 1:
        found = 0
    if found is None:
        raise InputError(f"the matte has no channel '{channel}' (it has {', '.join(names)})", where)
    return pixels[:, :, found]


def _unit(grey: np.ndarray) -> np.ndarray:
    peak = _PEAK.get(grey.dtype)
    if peak is not None:
        return grey.astype(np.float32) / np.float32(peak)
    return np.clip(grey.astype(np.float32), 0.0, 1.0)


def matte_mask(grey: np.ndarray, threshold: float, invert: bool = False, soft: bool = True) -> np.ndarray:
    """A matte channel -> the mask: ``(H, W)`` bool, or float32 weights in (0, 1] on the masked pixels.

    Args:
        grey: ``(H, W)`` one channel, ``uint8``, ``uint16`` or float.
        threshold: ``--mask-threshold`` (0..1, or 1..254 on the 8-bit scale): a pixel above it is masked.
        invert: flip the matte first (``1 - value``).
        soft: keep the values of a soft matte (one with values strictly between 0 and 1 on its masked
            pixels) as weights; a hard matte, or ``soft=False``, gives bool.

    The same feathered matte stored at 8 bits, 16 bits or float gives the same mask to within
    its quantisation: the threshold compares values on the 0..1 scale.
    """
    if not invert and threshold >= 1 and grey.dtype != np.float32:  # the 8-bit scale, compared exactly
        from .masks import binarize

        mask = binarize(grey, int(threshold))
        if not soft:
            return mask
        unit = _unit(grey)
    else:
        unit = _unit(grey)
        if invert:
            unit = np.float32(1.0) - unit
        mask = unit > np.float32(threshold_unit(threshold))
    if not soft:
        return mask
    values = unit[mask]
    if values.size == 0 or values.min() >= 1.0:
        return mask
    weights = np.zeros(grey.shape, dtype=np.float32)
    weights[mask] = values
    return weights
