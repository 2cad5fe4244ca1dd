"""Review outputs for a supervisor: ``review.mp4`` (input with the mask outlined | result) and
``review.png`` (a contact sheet with close-ups of the fill).

Frames are shown on a display: integer frames are taken as display-referred already;
float frames are taken as scene-linear and go through an OpenColorIO display transform
(``$OCIO`` or the built-in ``ocio://default`` config; a linear value of 0.18 shows as 89 of 255,
the default ACES SDR view, instead of 46, about two stops dark). OpenColorIO is imported lazily.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError

OUTLINE_RGB = (255, 64, 32)
# Float frames default to the config's scene_linear role (ACEScg in ocio://default).
DEFAULT_LINEAR_SPACE = "scene_linear"
SHEET_FRAMES = 4
# A close-up shows the mask's bounding box enlarged this much, at least CROP_MIN px across.
CROP_GROW = 2.0
CROP_MIN = 48


def display_transform(frame: np.ndarray, colorspace: str | None = None, display: str | None = None,
                      view: str | None = None) -> np.ndarray:
    """(H, W, 3) float scene-linear frame -> (H, W, 3) uint8 display image through OpenColorIO.

    Args:
        frame: float RGB (extra channels dropped), values as they are (> 1 allowed).
        colorspace: the frame's colour space name or role (default ``scene_linear``).
        display, view: the OCIO display and view (default: the config's defaults).
    Raises:
        InputError: OpenColorIO missing or the colour space unknown to the config.
    """
    try:
        import PyOpenColorIO as ocio
    except ImportError:
        raise InputError("showing float (scene-linear) frames needs OpenColorIO: pip install opencolorio") from None
    try:
        config = ocio.GetCurrentConfig() if os.environ.get("OCIO") else ocio.Config.CreateFromFile("ocio://default")
        display = display or config.getDefaultDisplay()
        view = view or config.getDefaultView(display)
        transform = ocio.DisplayViewTransform(src=colorspace or DEFAULT_LINEAR_SPACE, display=display, view=view)
        cpu = config.getProcessor(transform).getDefaultCPUProcessor()
    except ocio.Exception as exc:
        raise InputError(f"OpenColorIO: {exc}") from exc
    rgb = np.array(frame[..., :3], dtype=np.float32, order="C", copy=True)  # applyRGB works in place
    cpu.applyRGB(rgb)
    return np.clip(np.rint(np.nan_to_num(rgb) * 255.0), 0, 255).astype(np.uint8)


def to_display(frame: np.ndarray, colorspace: str | None = None) -> np.ndarray:
    """Any (H, W, C) frame as (H, W, 3) uint8 for viewing (see the module's note on float frames)."""
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=2)
    if frame.dtype == np.uint8:
        return np.ascontiguousarray(frame[..., :3])
    if frame.dtype == np.uint16:
        return (frame[..., :3] >> 8).astype(np.uint8)
    return display_transform(frame, colorspace)


def outline(image: np.ndarray, mask: np.ndarray, color=OUTLINE_RGB, thickness: int = 2) -> np.ndarray:
    """``image`` (H, W, 3) uint8 with the mask's (H, W) boundary drawn, a copy."""
    import cv2

    out = image.copy()
    contours, _ = cv2.findContours((np.asarray(mask) != 0).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, color, thickness)
    return out


def burn_label(image: np.ndarray, text: str) -> np.ndarray:
    """Write ``text`` at the top left, white on a dark box, scaled to the image height; in place."""
    import cv2

    scale = max(image.shape[0] / 720.0, 0.35)
    thick = max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    cv2.rectangle(image, (0, 0), (tw + 8, th + base + 8), (0, 0, 0), -1)
    cv2.putText(image, text, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return image


def side_by_side(frame_in: np.ndarray, frame_out: np.ndarray, mask: np.ndarray, number: int,
                 colorspace: str | None = None) -> np.ndarray:
    """(H, 2W, 3) uint8: the input with the mask outlined | the result, frame number burnt in."""
    left = burn_label(outline(to_display(frame_in, colorspace), mask), f"{number}  input")
    right = burn_label(to_display(frame_out, colorspace).copy(), f"{number}  result")
    return np.concatenate([left, right], axis=1)


def _crop_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return None
    h, w = mask.shape
    cy, cx = (rows.min() + rows.max()) / 2, (cols.min() + cols.max()) / 2
    half_h = max((rows.max() - rows.min() + 1) * CROP_GROW, CROP_MIN) / 2
    half_w = max((cols.max() - cols.min() + 1) * CROP_GROW, CROP_MIN) / 2
    y0, y1 = int(max(cy - half_h, 0)), int(min(cy + half_h, h))
    x0, x1 = int(max(cx - half_w, 0)), int(min(cx + half_w, w))
    return y0, y1, x0, x1


def contact_sheet(frames_in: Sequence[np.ndarray], frames_out: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                  frame_numbers: Sequence[int], count: int = SHEET_FRAMES, colorspace: str | None = None,
                  row_height: int = 240) -> np.ndarray:
    """(rows * row_height, width, 3) uint8: per chosen frame, input | result | close-ups (input, result).

    ``count`` frames are chosen evenly among those with a mask; a close-up is the mask's
    bounding box enlarged ``CROP_GROW`` times, scaled to the row height (nearest pixel, so
    grain stays visible).
    """
    import cv2

    masked = [i for i, m in enumerate(masks) if np.any(m)] or list(range(len(frames_in)))
    picks = sorted({masked[round(k * (len(masked) - 1) / max(count - 1, 1))] for k in range(min(count, len(masked)))})
    rows = []
    for i in picks:
        pair = side_by_side(frames_in[i], frames_out[i], masks[i], frame_numbers[i], colorspace)
        scale = row_height / pair.shape[0]
        tiles = [cv2.resize(pair, (max(1, round(pair.shape[1] * scale)), row_height), interpolation=cv2.INTER_AREA)]
        box = _crop_box(np.asarray(masks[i]) != 0)
        if box is not None:
            y0, y1, x0, x1 = box
            zoom = row_height / (y1 - y0)
            for image, label in ((outline(to_display(frames_in[i], colorspace), masks[i], thickness=1), "input"),
                                 (to_display(frames_out[i], colorspace), "fill")):
                crop = cv2.resize(np.ascontiguousarray(image[y0:y1, x0:x1]),
                                  (max(1, round((x1 - x0) * zoom)), row_height), interpolation=cv2.INTER_NEAREST)
                tiles.append(burn_label(crop, f"{frame_numbers[i]} {label} x{zoom:.1f}"))
        rows.append(np.concatenate(tiles, axis=1))
    width = max(r.shape[1] for r in rows)
    return np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows], axis=0)


def write_review(frames_in: Sequence[np.ndarray], frames_out: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                 path_mp4: str | Path | None, path_png: str | Path | None, frame_numbers: Sequence[int] | None = None,
                 colorspace: str | None = None, rate=24) -> None:
    """Write ``review.mp4`` (H.264, side by side, every frame) and ``review.png`` (contact sheet).

    Args:
        frames_in, frames_out: T frames each, (H, W, C), uint8/uint16/float (float = scene-linear).
        masks: T (H, W) masks, non-zero = removed.
        path_mp4, path_png: where to write (atomically); None skips that file.
        frame_numbers: the number burnt into each frame (the source's frame numbers; default 0..T-1).
        colorspace: OCIO colour space of float frames (default ``scene_linear``).
        rate: the review video's frame rate (the source's, a Fraction or number).
    """
    from ..io.output import write_image
    from .master import MasterWriter

    numbers = list(frame_numbers) if frame_numbers is not None else list(range(len(frames_in)))
    if not (len(frames_in) == len(frames_out) == len(masks) == len(numbers)) or not numbers:
        raise ValueError("frames_in, frames_out, masks and frame_numbers must have the same, non-zero length")
    if path_mp4 is not None:
        h, w = np.asarray(frames_in[0]).shape[:2]
        with MasterWriter(path_mp4, "h264", (2 * w, h), rate=rate) as video:
            for i in range(len(numbers)):
                video.write(side_by_side(frames_in[i], frames_out[i], masks[i], numbers[i], colorspace))
    if path_png is not None:
        write_image(path_png, contact_sheet(frames_in, frames_out, masks, numbers, colorspace=colorspace))
