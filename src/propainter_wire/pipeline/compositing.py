"""Processing size and full-resolution compositing.

The engines work at a *processing size* (the input size unless the user scales
down). Compositing brings their result back to the input's resolution, bit depth and
colour encoding: every pixel outside the dilated mask is the input's own, bit for bit;
inside, the upscaled fill, blended with a narrow feather that stays inside the mask (or
mixed by a soft matte's own values). Float frames are never clipped.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..config import InpaintConfig
from ..samples import from_unit, to_unit


def processing_size(height: int, width: int, config: InpaintConfig) -> tuple[int, int]:
    """(height, width) the engine works at, never larger than the input.

    ``--max-side`` scales the longer side down to at most N; ``--width/--height`` set it;
    ``--resize-ratio`` scales both sides. Sizes are rounded to whole pixels, at least 8
    (or the input's own size when that is smaller).
    """
    if config.width is not None and config.height is not None:
        return min(height, config.height), min(width, config.width)
    scale = 1.0
    if config.max_side is not None and max(height, width) > config.max_side:
        scale = config.max_side / max(height, width)
    elif config.resize_ratio is not None:
        scale = config.resize_ratio
    if scale >= 1.0:
        return height, width
    return min(height, max(8, round(height * scale))), min(width, max(8, round(width * scale)))


def resize_frame(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize (H, W, C) float32; area averaging when shrinking, bicubic when growing."""
    if frame.shape[:2] == (height, width):
        return frame
    shrinking = height * width < frame.shape[0] * frame.shape[1]
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return cv2.resize(frame, (width, height), interpolation=interp)


def resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a mask (bool, or soft weights: non-zero is masked) to bool, conservatively: a pixel
    is masked if any of its area was."""
    if mask.shape == (height, width):
        return mask if mask.dtype == bool else mask != 0
    area = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    return area > 1e-6


def composite_region(raw_full: np.ndarray, dilated_proc: np.ndarray) -> np.ndarray:
    """The full-resolution region taken from the engine: bool (H, W).

    The processing-size dilated mask brought to full size, united with the user's
    own full-resolution mask (so nothing the user masked is ever left untouched).
    """
    h, w = raw_full.shape
    if dilated_proc.shape == (h, w):
        return dilated_proc | raw_full
    up = cv2.resize(dilated_proc.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
    return up | raw_full


def feather_alpha(region: np.ndarray, core: np.ndarray, width: float) -> np.ndarray:
    """Blend weight of the fill, float32 (H, W) in [0, 1].

    1 on ``core`` (the user's mask) and deeper than ``width`` pixels inside ``region``,
    ramping down to a small positive value at the region's edge, 0 outside.
    The ramp lives entirely inside the region.
    """
    if width <= 0:
        return region.astype(np.float32)
    dist = cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, 3)
    alpha = np.clip(dist / float(width + 1), 0.0, 1.0).astype(np.float32)
    alpha[core] = 1.0
    alpha[~region] = 0.0
    return alpha


def composite_frame(original: np.ndarray, filled_proc: np.ndarray, raw_full: np.ndarray,
                    dilated_proc: np.ndarray, config: InpaintConfig) -> np.ndarray:
    """Put the engine's fill into the original frame at full resolution.

    Args:
        original: (H, W, 3) input frame, native dtype (uint8, uint16, float32 or float16).
        filled_proc: (h, w, 3) float32 in [0, 1] or uint8 in [0, 255], the engine's result at
            processing size, in the clip's engine encoding (:func:`~propainter_wire.io.colour.engine_encoding`).
        raw_full: (H, W) bool, the user's mask at full resolution; or float32 weights in [0, 1] (a
            soft matte: its values mix the fill over the original, and the ring the dilation added
            keeps the original).
        dilated_proc: (h, w) bool, the dilated mask at processing size.
    Returns:
        (H, W, 3) in the original's dtype; bit-identical to ``original`` outside the region. Float
        frames are never clipped: a scene-linear fill comes back at its level.
    """
    from ..io.colour import engine_encoding

    weight = None
    if raw_full.dtype != bool:
        weight = raw_full if ((raw_full > 0) & (raw_full < 1)).any() else None
        raw_full = raw_full > 0
    encoding = engine_encoding(config.colorspace, original.dtype)
    h, w = original.shape[:2]
    region = composite_region(raw_full, dilated_proc)
    out = original.copy()
    if not region.any():
        return out
    same_size = filled_proc.shape[:2] == (h, w)
    if weight is None and encoding.identity and original.dtype != np.float16:
        return _composite_unit(out, original, filled_proc, raw_full, region, same_size, config)
    fill = to_unit(filled_proc) if filled_proc.dtype == np.uint8 else filled_proc
    if same_size:
        alpha = region.astype(np.float32)
    else:
        fill = cv2.resize(fill, (w, h), interpolation=cv2.INTER_CUBIC)
        scale = h / filled_proc.shape[0]
        alpha = feather_alpha(region, raw_full, min(max(1.0, config.mask_dilation * scale), max(1.0, 2.0 * scale)))
    if weight is not None:  # a soft matte is its own edge
        alpha = np.where(region, weight, np.float32(0.0))
    value = encoding.decode(np.clip(fill[region], 0.0, 1.0))  # (N, 3): linear values, or unit ones
    is_float = np.dtype(original.dtype).kind == "f"
    base = original[region].astype(np.float32) if is_float else to_unit(original[region])
    blended = base + (value - base) * alpha[region][:, None]
    out[region] = blended.astype(original.dtype) if is_float else from_unit(blended, original.dtype)
    return out


def _composite_unit(out, original, filled_proc, raw_full, region, same_size, config) -> np.ndarray:
    """A hard mask on display-referred samples: the fill as it is (8-bit into 8-bit copied), feathered
    only when it was upscaled."""
    h, w = original.shape[:2]
    if filled_proc.dtype == np.uint8:
        if same_size and original.dtype == np.uint8:  # 8-bit fill into an 8-bit frame: no conversion
            out[region] = filled_proc[region]
            return out
        filled_proc = to_unit(filled_proc)
    fill = filled_proc if same_size else cv2.resize(filled_proc, (w, h), interpolation=cv2.INTER_CUBIC)
    if same_size:
        out[region] = from_unit(fill, original.dtype)[region]
        return out
    scale = h / filled_proc.shape[0]
    ring = max(1.0, config.mask_dilation * scale)
    alpha = feather_alpha(region, raw_full, min(ring, max(1.0, 2.0 * scale)))
    base = to_unit(original)
    blended = base + (np.clip(fill, 0.0, 1.0) - base) * alpha[..., None]
    out[region] = from_unit(blended, original.dtype)[region]
    return out
