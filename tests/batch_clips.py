"""Tiny shots for the batch tests: 6 frames of 64x48 (a panning texture and a moving box mask)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

N, H, W = 6, 48, 64
# the propainter engine's windows shrunk to the clip (CPU seconds, not minutes)
# fp32: these shots' frames are compared byte for byte between workers with different thread counts; bf16 (the
# CPU's --precision auto where it computes bf16 natively) rounds differently per thread count, up to 1 of 255
PROPAINTER = {"engine": "propainter", "neighbor-length": "4", "ref-stride": "3", "subvideo-length": "4",
              "raft-iters": "1", "precision": "fp32"}


def make_shot(root: Path, seed: int, frames: int = N) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.integers(0, 256, (H, W + 2 * frames, 3), dtype=np.uint8), (7, 7), 0)
    fdir, mdir = root / "frames", root / "masks"
    fdir.mkdir(parents=True)
    mdir.mkdir()
    for t in range(frames):
        cv2.imwrite(str(fdir / f"f{t + 1:03d}.png"), np.ascontiguousarray(base[:, 2 * t:2 * t + W]))
        mask = np.zeros((H, W), np.uint8)
        mask[14:26, 20 + t % 20:32 + t % 20] = 255
        cv2.imwrite(str(mdir / f"m{t + 1:03d}.png"), mask)
    return fdir, mdir


def frame_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "frames").iterdir())}


def write_csv(path: Path, rows: list[dict]) -> Path:
    import csv

    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path
