"""Quality-harness cases: clips with a known ground truth and the mask of what was drawn over them.

Cases are built from real footage (``../shared/data`` by default) by drawing
synthetic wires over it or by blanking a mask, so no method ever sees the truth:

==================  ==========================================================
case                what is removed
==================  ==========================================================
running_car-wires   2 synthetic wires over ``running_car/running_car.mp4``
running_car-box     the static ``mask_square.png`` (video completion), blanked
bmx-trees-wires     2 wires over the ``bmx-trees`` frames
tennis-wires        2 wires over the ``tennis`` frames
sample0-wires       3 wires over ``footage/test-sample0.mp4``
sample0-object      a walking-person-shaped blob over the same clip, blanked
sample1-wires       3 wires over ``footage/test-sample1.mp4``
synthetic-wires     2 wires over a procedural clip (needs no data)
==================  ==========================================================
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import synth

DEFAULT_DATA = Path("../shared/data")
DEFAULT_SIZE = (640, 360)  # (width, height) a frame is scaled down to fit in
DATA_CASES = ("running_car-wires", "running_car-box", "bmx-trees-wires", "tennis-wires",
              "sample0-wires", "sample0-object", "sample1-wires")
SYNTHETIC_CASES = ("synthetic-wires",)
ALL_CASES = DATA_CASES + SYNTHETIC_CASES


@dataclass
class Case:
    """One ground-truth test.

    Attributes:
        name: unique case name.
        truth: (T, H, W, 3) uint8 RGB, the clean clip.
        inputs: (T, H, W, 3) uint8 RGB, what the methods see (wires drawn or pixels blanked).
        masks: (T, H, W) bool, the user's mask; ``inputs == truth`` outside it.
        kind: 'wires', 'box' or 'object'.
        source: where the footage came from.
    """

    name: str
    truth: np.ndarray
    inputs: np.ndarray
    masks: np.ndarray
    kind: str
    source: str

    def describe(self) -> dict:
        t, h, w = self.masks.shape
        return {"case": self.name, "kind": self.kind, "source": self.source, "frames": int(t), "width": int(w),
                "height": int(h), "mask_fraction": round(float(self.masks.mean()), 5)}



def fit_size(height: int, width: int, size: int | tuple[int, int] | None) -> tuple[int, int]:
    """(height, width) after scaling down to fit ``size`` (never up), aspect kept.

    Args:
        size: None for 640x360, an int for the longer side, or (width, height) of the box.
    """
    if size is None:
        box_w, box_h = DEFAULT_SIZE if width >= height else DEFAULT_SIZE[::-1]
    elif isinstance(size, int):
        box_w = box_h = size
    else:
        box_w, box_h = size
    scale = min(1.0, box_w / width, box_h / height)
    return max(8, int(round(height * scale))), max(8, int(round(width * scale)))


def to_uint8(frame: np.ndarray) -> np.ndarray:
    """A frame as uint8: uint16 divided by 257, float in [0, 1] scaled by 255 and rounded."""
    if frame.dtype == np.uint8:
        return frame
    if frame.dtype == np.uint16:
        return (frame // 257).astype(np.uint8)
    return np.clip(np.rint(frame * 255.0), 0, 255).astype(np.uint8)


def load_clip(path: Path, max_frames: int | None, size: int | tuple[int, int] | None) -> np.ndarray:
    """A video file or frame folder as (T, H, W, 3) uint8 RGB, at most ``max_frames`` frames, scaled to fit."""
    from ..io import open_frames

    source = open_frames(path)
    try:
        count = len(source) if max_frames is None else min(len(source), max_frames)
        first = source[0]
        h, w = fit_size(first.shape[0], first.shape[1], size)
        out = np.empty((count, h, w, 3), np.uint8)
        for i in range(count):
            frame = to_uint8(source[i])
            out[i] = frame if frame.shape[:2] == (h, w) else cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
    finally:
        source.close()
    return out


def _load_static_mask(path: Path, height: int, width: int) -> np.ndarray:
    grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if grey is None:
        raise FileNotFoundError(path)
    return cv2.resize(grey, (width, height), interpolation=cv2.INTER_NEAREST) > 127


def _seed(name: str) -> int:
    return zlib.crc32(name.encode())


def _wire_case(name: str, truth: np.ndarray, num_wires: int, source: str) -> Case:
    inputs, masks = synth.draw_wires(truth, num_wires=num_wires, seed=_seed(name))
    return Case(name, truth, inputs, masks, "wires", source)


def _blank_case(name: str, truth: np.ndarray, masks: np.ndarray, kind: str, source: str) -> Case:
    return Case(name, truth, synth.blank(truth, masks), masks, kind, source)


def build_case(name: str, data_dir: Path, max_frames: int | None = None,
               size: int | tuple[int, int] | None = None) -> Case:
    """Build one named case (see the module docstring).

    Raises:
        FileNotFoundError: the footage it needs is not in ``data_dir``.
        ValueError: an unknown case name.
    """
    data_dir = Path(data_dir)
    footage = {
        "running_car": data_dir / "running_car" / "running_car.mp4",
        "bmx-trees": data_dir / "bmx-trees" / "frames",
        "tennis": data_dir / "tennis" / "frames",
        "sample0": data_dir / "footage" / "test-sample0.mp4",
        "sample1": data_dir / "footage" / "test-sample1.mp4",
    }
    if name == "synthetic-wires":
        t_len = 24 if max_frames is None else max_frames
        h, w = fit_size(DEFAULT_SIZE[1], DEFAULT_SIZE[0], size)
        return _wire_case(name, synth.procedural_clip(t_len, h, w, seed=_seed(name)), 2, "procedural")
    base, _, variant = name.rpartition("-")
    if base not in footage or name not in DATA_CASES:
        raise ValueError(f"unknown case '{name}' (choose from {', '.join(ALL_CASES)})")
    path = footage[base]
    if not path.exists():
        raise FileNotFoundError(path)
    truth = load_clip(path, max_frames, size)
    t_len, h, w = truth.shape[:3]
    source = str(path)
    if variant == "wires":
        return _wire_case(name, truth, 3 if base.startswith("sample") else 2, source)
    if variant == "box":
        mask = _load_static_mask(data_dir / "running_car" / "mask_square.png", h, w)
        return _blank_case(name, truth, np.broadcast_to(mask, (t_len, h, w)).copy(), "box", source)
    masks = synth.moving_object_mask(t_len, h, w, seed=_seed(name))
    return _blank_case(name, truth, masks, "object", source)
