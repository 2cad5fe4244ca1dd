"""Synthetic wires with exact masks, for tests and the quality harness.

A wire hangs between two anchors (which may lie outside the frame) as a catenary
sagging downwards, sways (its middle swings more than its ends), may drift as a
whole (to leave the frame), and may fade. It is drawn anti-aliased: coverage from
a 4x supersampled drawing, blended over the plate. Its true mask is every pixel it
covers at all (coverage > 0), so ``frames == plate`` outside the mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

SUPERSAMPLE = 4
_SHIFT = 4


@dataclass(frozen=True)
class SynthWire:
    """One wire (pixels, frames).

    Attributes:
        p0, p1: anchors (x, y).
        sag: depth below the chord at mid-span.
        thickness: drawn width.
        value: the wire's grey level 0..255 (dark or bright).
        sway: amplitude of the mid-span swing; period in frames; phase in radians.
        drift: (dx, dy) added per frame to the whole wire.
        fade: ((frame, opacity), ...) opacity keypoints, linear between (empty: opaque).
    """

    p0: tuple[float, float]
    p1: tuple[float, float]
    sag: float = 30.0
    thickness: float = 3.0
    value: float = 30.0
    sway: float = 4.0
    period: float = 30.0
    phase: float = 0.0
    drift: tuple[float, float] = (0.0, 0.0)
    fade: tuple[tuple[int, float], ...] = ()

    def points(self, t: int, n: int = 256) -> np.ndarray:
        """(n, 2) points (x, y) along the wire in frame ``t``."""
        s = np.linspace(0.0, 1.0, n)
        k = 1.6
        shape = 1.0 - (np.cosh(k * (2 * s - 1)) - 1.0) / (np.cosh(k) - 1.0)  # 0 at the anchors, 1 mid-span
        depth = self.sag + self.sway * np.sin(2 * np.pi * t / self.period + self.phase)
        p0, p1 = np.asarray(self.p0, np.float64), np.asarray(self.p1, np.float64)
        pts = p0 + s[:, None] * (p1 - p0)
        pts[:, 1] += depth * shape
        return pts + np.asarray(self.drift, np.float64) * t

    def opacity(self, t: int) -> float:
        if not self.fade:
            return 1.0
        frames, values = zip(*self.fade, strict=True)
        return float(np.interp(t, frames, values))


def coverage(height: int, width: int, points: np.ndarray, thickness: float) -> np.ndarray:
    """(H, W) float32 in [0, 1]: the share of each pixel covered by the polyline ``thickness`` px wide."""
    s = SUPERSAMPLE
    big = np.zeros((height * s, width * s), np.uint8)
    pts = np.clip(points * s, -4 * width * s, 5 * width * s)
    # pixel centres are at integers: supersampled centre of pixel x is x*s + (s-1)/2
    pts = np.rint((pts + (s - 1) / 2.0) * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(big, [pts], False, 255, thickness=max(1, int(round(thickness * s))), lineType=cv2.LINE_8,
                  shift=_SHIFT)
    return cv2.resize(big, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def draw_wires(plate: np.ndarray, wires: Sequence[SynthWire]) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``wires`` over a clip.

    Args:
        plate: (T, H, W, 3) uint8 RGB.
    Returns:
        frames (T, H, W, 3) uint8 with the wires; masks (T, H, W) bool, the true wire pixels.
    """
    t_len, h, w = plate.shape[:3]
    frames = plate.astype(np.float32)
    masks = np.zeros((t_len, h, w), bool)
    for t in range(t_len):
        for wire in wires:
            alpha = coverage(h, w, wire.points(t), wire.thickness) * wire.opacity(t)
            frames[t] += alpha[..., None] * (wire.value - frames[t])
            masks[t] |= alpha > 0
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8), masks


def clicks(wire: SynthWire, t: int, height: int, width: int, count: int = 8, noise: float = 2.0,
           seed: int = 0) -> list[list[float]]:
    """``count`` points along the part of the wire inside the frame in frame ``t``, with uniform ±``noise`` px."""
    pts = wire.points(t, 1024)
    inside = (pts[:, 0] >= 2) & (pts[:, 0] <= width - 3) & (pts[:, 1] >= 2) & (pts[:, 1] <= height - 3)
    pts = pts[inside]
    rng = np.random.default_rng(seed)
    chosen = pts[np.linspace(0, len(pts) - 1, count).round().astype(int)]
    chosen = chosen + rng.uniform(-noise, noise, chosen.shape)
    chosen[:, 0] = np.clip(chosen[:, 0], 0, width - 1)
    chosen[:, 1] = np.clip(chosen[:, 1], 0, height - 1)
    return [[round(float(x), 2), round(float(y), 2)] for x, y in chosen]


def textured_plate(num_frames: int, height: int, width: int, seed: int = 0, pan: tuple[float, float] = (1.5, 0.5)
                   ) -> np.ndarray:
    """A busy moving background: multi-scale noise with edges, panning ``pan`` px/frame. (T, H, W, 3) uint8."""
    rng = np.random.default_rng(seed)
    big_h, big_w = height + int(abs(pan[1]) * num_frames) + 8, width + int(abs(pan[0]) * num_frames) + 8
    canvas = np.zeros((big_h, big_w), np.float32)
    for cells, amp in ((6, 60.0), (24, 30.0), (96, 18.0)):
        noise = rng.uniform(-1, 1, (max(2, big_h * cells // big_w), cells)).astype(np.float32)
        canvas += amp * cv2.resize(noise, (big_w, big_h), interpolation=cv2.INTER_CUBIC)
    for _ in range(12):  # hard edges: blocks of other grey
        x, y = rng.integers(0, big_w), rng.integers(0, big_h)
        cv2.rectangle(canvas, (int(x), int(y)), (int(x + rng.integers(8, 60)), int(y + rng.integers(8, 60))),
                      float(rng.uniform(-50, 50)), -1)
    canvas = np.clip(canvas + 128.0, 0, 255)
    out = np.empty((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        m = np.array([[1, 0, 4 + pan[0] * t if pan[0] >= 0 else big_w - width - 4 + pan[0] * t],
                      [0, 1, 4 + pan[1] * t if pan[1] >= 0 else big_h - height - 4 + pan[1] * t]], np.float64)
        grey = cv2.warpAffine(canvas, m, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REFLECT)
        tinted = np.stack([grey * 0.95, grey, grey * 1.05], axis=-1)
        out[t] = np.clip(np.rint(tinted), 0, 255).astype(np.uint8)
    return out
