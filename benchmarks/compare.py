"""PSNR between two folders of output frames, inside the (dilated) masks and over whole frames.

Used for precision checks: fp16 or ``--precision auto`` output against fp32 output of the same clip.

    python benchmarks/compare.py RUN_A/frames RUN_B/frames CLIP/masks [--dilation 4]
Prints JSON: psnr_in_mask (dB, over all masked pixels of the clip), psnr_frame, max_abs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np


def _dilate(mask: np.ndarray, iterations: int) -> np.ndarray:
    """Binary dilation by the 3x3 cross, ``iterations`` times: the tool's ``--mask-dilation``."""
    if iterations == 0:
        return mask
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    return cv2.dilate(mask.astype(np.uint8), cross, iterations=iterations) > 0


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument("masks", type=Path)
    p.add_argument("--dilation", type=int, default=4)
    args = p.parse_args(argv)
    names = sorted(x.name for x in args.a.iterdir() if x.suffix == ".png")
    mask_files = sorted(args.masks.iterdir())
    inside_a, inside_b, whole_a, whole_b = [], [], [], []
    for name, mask_file in zip(names, mask_files, strict=False):
        a = cv2.imread(str(args.a / name))
        b = cv2.imread(str(args.b / name))
        m = _dilate(cv2.imread(str(mask_file), cv2.IMREAD_GRAYSCALE) > 0, args.dilation)
        inside_a.append(a[m])
        inside_b.append(b[m])
        whole_a.append(a)
        whole_b.append(b)
    ia, ib = np.concatenate(inside_a), np.concatenate(inside_b)
    print(json.dumps({"frames": len(names), "psnr_in_mask": round(_psnr(ia, ib), 2),
                      "psnr_frame": round(_psnr(np.stack(whole_a), np.stack(whole_b)), 2),
                      "max_abs": int(np.abs(ia.astype(int) - ib.astype(int)).max())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
