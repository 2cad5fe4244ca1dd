"""``mask track``: masks painted on keyframes, carried to every frame by optical flow.

From each keyframe the mask is carried frame by frame in both directions as a soft
(0..1) mask: mask_t(x) = mask_{t-1}(x + flow_{t -> t-1}(x)), bilinear (DIS optical
flow, OpenCV, on the grey frames). A frame between two keys blends the two carried
masks with weights falling linearly with the distance to each key; frames before
the first (after the last) key take the first (last) key's. The blend is cut at
0.5, then grown by ``grow`` px (a disc).

Key masks are matched to frames by name: a mask's stem equals a frame's stem, or
(numbered sequences) its number equals the frame's number.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..flow.classic import FlowEstimator
from ..io import binarize, list_images, mask_to_grey, open_frames, read_image
from ..pipeline.stages import Stages
from .frames import to_grey_u8, to_rgb_u8
from .output import TRACK_REPORT, prepare_mask_dir, write_masks, write_report
from .points import frame_numbers


def _read_mask(path: Path, height: int, width: int) -> np.ndarray:
    mask = binarize(mask_to_grey(read_image(path)), 127)
    if mask.shape != (height, width):
        raise InputError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the frames are {width}x{height}", path)
    return mask


def load_key_masks(keymasks: str | Path, stems: list[str], height: int, width: int, frame: int | None,
                   numbered: bool) -> dict[int, np.ndarray]:
    """Frame index -> (H, W) bool key mask.

    Raises:
        InputError: no key mask, a mask matching no frame, a single image without ``frame``,
            an unknown frame, a size mismatch.
    """
    keymasks = Path(keymasks)
    numbers = frame_numbers(stems) if numbered else None
    if keymasks.is_file():
        if frame is None:
            raise InputError("a single key mask needs --frame N (the frame it was painted on)", keymasks)
        if numbers is not None:
            if frame not in numbers:
                raise InputError(f"unknown frame {frame} (the sequence is numbered {min(numbers)}..{max(numbers)})")
            index = numbers.index(frame)
        elif not 0 <= frame < len(stems):
            raise InputError(f"unknown frame {frame} (the clip has frames 0..{len(stems) - 1})")
        else:
            index = frame
        return {index: _read_mask(keymasks, height, width)}
    if frame is not None:
        raise InputError("--frame is for a single key mask image, not a folder", keymasks)
    by_stem = {s: i for i, s in enumerate(stems)}
    by_number = {n: i for i, n in enumerate(numbers)} if numbers is not None else {}
    keys: dict[int, np.ndarray] = {}
    for path in list_images(keymasks):
        index = by_stem.get(path.stem)
        if index is None:
            mask_numbers = frame_numbers([path.stem])
            index = by_number.get(mask_numbers[0]) if mask_numbers else None
        if index is None:
            raise InputError("key mask matches no frame (name it like its frame)", path)
        keys[index] = _read_mask(path, height, width)
    return keys


def _warp(mask: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Pull a (H, W) float32 mask along a (H, W, 2) flow from the target frame to the mask's frame."""
    h, w = mask.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(mask, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                     borderValue=0.0)


def carry(greys: np.ndarray, keys: dict[int, np.ndarray], progress=None) -> np.ndarray:
    """(T, H, W) uint8 grey frames and key masks -> (T, H, W) float32 blended soft masks."""
    t_len = len(greys)
    flow = FlowEstimator("dis", "medium")
    order = sorted(keys)
    total = np.zeros(greys.shape, np.float32)
    weight = np.zeros(t_len, np.float32)
    for i, k in enumerate(order):
        prev_key = order[i - 1] if i > 0 else None
        next_key = order[i + 1] if i + 1 < len(order) else None
        total[k] += keys[k].astype(np.float32) * 1e3  # a keyframe is its own mask
        weight[k] += 1e3
        for direction, stop in ((1, next_key if next_key is not None else t_len),
                                (-1, prev_key if prev_key is not None else -1)):
            other = next_key if direction == 1 else prev_key
            soft = keys[k].astype(np.float32)
            for t in range(k + direction, stop, direction):
                soft = _warp(soft, flow(greys[t], greys[t - direction]))
                w = 1.0 if other is None else 1.0 - abs(t - k) / abs(other - k)
                total[t] += w * soft
                weight[t] += w
                if progress:
                    progress()
    return total / np.maximum(weight, 1e-6)[:, None, None]


def grow_mask(mask: np.ndarray, grow: int) -> np.ndarray:
    """(H, W) bool grown by ``grow`` px (a disc)."""
    if grow <= 0:
        return mask
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    return cv2.dilate(mask.astype(np.uint8), disc).astype(bool)


def track_key_masks(video: str | Path, keymasks: str | Path, output: str | Path, frame: int | None = None,
                    grow: int = 2, quiet: bool = True, preview: bool = False, overwrite: bool = False) -> dict:
    """See ``api.track_masks``."""
    if grow < 0:
        raise InputError(f"--grow must be >= 0, got {grow}")
    began = time.perf_counter()
    stages = Stages(quiet=quiet)
    source = open_frames(video)
    try:
        h, w, t_len = source.height, source.width, len(source)
        keys = load_key_masks(keymasks, source.stems, h, w, frame, source.kind == "folder")
        out = prepare_mask_dir(output, source.stems, overwrite, (Path(video), Path(keymasks)))
        with stages("read", total=t_len) as bar:
            greys = np.empty((t_len, h, w), np.uint8)
            for t in range(t_len):
                greys[t] = to_grey_u8(source[t])
                bar.update()
        with stages("track", total=max(t_len - 1, 1) * 2) as bar:
            soft = carry(greys, keys, bar.update)
        write_masks(out, source.stems, lambda t: grow_mask(soft[t] >= 0.5, grow), lambda t: to_rgb_u8(source[t]),
                    stages, source.fps, preview)
    finally:
        source.close()
    seconds = time.perf_counter() - began
    report = {"clip": str(video), "frames": t_len, "keys": sorted(keys), "grow": grow,
              "seconds": {k: round(v, 3) for k, v in stages.seconds.items()},
              "seconds_per_frame": round(seconds / max(t_len, 1), 4), "preview": bool(preview)}
    write_report(out / TRACK_REPORT, report)
    return report
