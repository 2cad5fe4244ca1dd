"""What the quality harness writes: contact sheets (crops around the mask), a Markdown table, bar charts."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .cases import Case
from .methods import BASELINE_RADIUS


def crop_window(masks: np.ndarray, t: int, side: int) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of a ``side``-pixel square around the mask of frame ``t``.

    Centred on the masked pixel nearest to the mask's centroid (so a curved wire's
    crop still shows the wire), clamped to the frame.
    """
    h, w = masks.shape[1:3]
    side_h, side_w = min(side, h), min(side, w)
    pts = np.argwhere(masks[t]) if masks[t].any() else np.argwhere(masks.any(0))
    if len(pts) == 0:
        cy, cx = h // 2, w // 2
    else:
        centroid = pts.mean(0)
        cy, cx = pts[np.argmin(np.square(pts - centroid).sum(1))]
    y0 = int(np.clip(cy - side_h // 2, 0, h - side_h))
    x0 = int(np.clip(cx - side_w // 2, 0, w - side_w))
    return y0, y0 + side_h, x0, x0 + side_w


def _labelled(tile: np.ndarray, label: str, height: int) -> np.ndarray:
    """A tile scaled to ``height`` with a black caption strip on top (RGB uint8)."""
    scale = height / tile.shape[0]
    tile = cv2.resize(tile, (max(1, int(round(tile.shape[1] * scale))), height), interpolation=cv2.INTER_NEAREST)
    strip = np.zeros((18, tile.shape[1], 3), np.uint8)
    cv2.putText(strip, label[:24], (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([strip, tile], axis=0)


def contact_row(case: Case, results: dict[str, np.ndarray], side: int = 128, height: int = 160) -> np.ndarray:
    """input | each method's result | truth, cropped around the mask of the middle frame.

    Returns:
        (height + 18, W, 3) uint8 RGB, tiles separated by 2 white pixels.
    """
    t = case.truth.shape[0] // 2
    y0, y1, x0, x1 = crop_window(case.masks, t, side)
    tiles = [_labelled(case.inputs[t, y0:y1, x0:x1], "input", height)]
    tiles += [_labelled(r[t, y0:y1, x0:x1], name, height) for name, r in results.items()]
    tiles.append(_labelled(case.truth[t, y0:y1, x0:x1], "truth", height))
    gap = np.full((tiles[0].shape[0], 2, 3), 255, np.uint8)
    parts = []
    for tile in tiles:
        parts += [tile, gap]
    return np.concatenate(parts[:-1], axis=1)


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write an RGB uint8 image as PNG; OSError when OpenCV cannot."""
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")


def stack_rows(rows: list[np.ndarray], titles: list[str]) -> np.ndarray:
    """Contact rows one under another, each under a title strip, padded to the widest (RGB uint8)."""
    width = max(r.shape[1] for r in rows)
    out = []
    for row, title in zip(rows, titles, strict=True):
        head = np.zeros((22, width, 3), np.uint8)
        cv2.putText(head, title, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 220, 120), 1, cv2.LINE_AA)
        pad = np.zeros((row.shape[0], width - row.shape[1], 3), np.uint8)
        out += [head, np.concatenate([row, pad], axis=1)]
    return np.concatenate(out, axis=0)



def _fmt(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if isinstance(value, float) and np.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


def results_markdown(rows: list[dict], cases: list[dict], settings: dict) -> str:
    """The results as a Markdown document (one table, one row per case and method)."""
    lines = ["# propainter-wire evaluation", "",
             f"Frames fit {settings['size']}, at most {settings['max_frames'] or 'all'} frames per case; "
             f"per-frame baselines use cv2.inpaint with radius {BASELINE_RADIUS} px.", "",
             "PSNR in dB, SSIM in [-1, 1]; *mask* = inside the user's mask, *full* = whole frame. "
             "Warping error: mean |frame t - frame t+1 warped back by the truth's DIS flow| in 8-bit levels "
             "where that flow is forward-backward consistent (lower is steadier; the truth's own value is "
             "given per case).", "",
             "| case | method | PSNR mask | SSIM mask | PSNR full | SSIM full | warp full | warp mask | s/frame |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r.get("error"):
            lines.append(f"| {r['case']} | {r['method']} | failed: {r['error'][:80]} ||||||| ")
            continue
        lines.append(f"| {r['case']} | {r['method']} | {_fmt(r['psnr_mask'], 2)} | {_fmt(r['ssim_mask'], 4)} | "
                     f"{_fmt(r['psnr_full'], 2)} | {_fmt(r['ssim_full'], 4)} | {_fmt(r['warp_full'], 3)} | "
                     f"{_fmt(r['warp_mask'], 3)} | {_fmt(r['sec_per_frame'], 3)} |")
    lines += ["", "## Cases", "", "| case | kind | frames | size | mask % | truth warp full | truth warp mask |",
              "|---|---|---:|---|---:|---:|---:|"]
    for c in cases:
        lines.append(f"| {c['case']} | {c['kind']} | {c['frames']} | {c['width']}x{c['height']} | "
                     f"{100 * c['mask_fraction']:.2f} | {_fmt(c.get('truth_warp_full'), 3)} | "
                     f"{_fmt(c.get('truth_warp_mask'), 3)} |")
    return "\n".join(lines) + "\n"


def plot_metric(rows: list[dict], key: str, label: str, path: Path) -> None:
    """Grouped bar chart: one group per case, one bar per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(dict.fromkeys(r["case"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    values = {(r["case"], r["method"]): r.get(key) for r in rows}
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(cases) * max(1, len(methods)) / 3), 4.0))
    width = 0.8 / max(1, len(methods))
    xs = np.arange(len(cases))
    for i, method in enumerate(methods):
        ys = [values.get((c, method)) for c in cases]
        ys = [np.nan if v is None or not np.isfinite(v) else v for v in ys]
        ax.bar(xs + (i - (len(methods) - 1) / 2) * width, ys, width, label=method)
    ax.set_xticks(xs)
    ax.set_xticklabels(cases, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(label)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def jsonable(value):
    """``value`` with NaN as None and infinities as "inf" / "-inf" (JSON has neither)."""
    if isinstance(value, float) and not np.isfinite(value):
        return None if np.isnan(value) else ("inf" if value > 0 else "-inf")
    return value
