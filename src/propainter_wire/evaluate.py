"""Quality harness: inpaint clips with a known ground truth and score every method.

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

Methods: ``telea`` and ``ns`` are per-frame ``cv2.inpaint`` (Telea's fast marching
and Navier-Stokes) with a 3-pixel radius on the user's mask, no temporal
information; ``classic`` is the classic engine through :func:`propainter_wire.api.inpaint_arrays`
with default settings; the ablations run the classic engine with one part switched
off (see :data:`ABLATIONS`); ``propainter`` runs when a weights folder is given.

Scores per case and method: PSNR (dB) and SSIM inside the user's mask and over the
whole frame, the warping error (temporal consistency, 8-bit grey levels, see
:func:`propainter_wire.metrics.warping_error`) over the whole frame and inside the
mask, and wall seconds per frame. Frames are downscaled to fit 640x360 by default.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import metrics, synth
from .errors import InputError

log = logging.getLogger("propainter_wire")

DEFAULT_DATA = Path("../shared/data")
DEFAULT_SIZE = (640, 360)  # (width, height) a frame is scaled down to fit in
BASELINE_RADIUS = 3  # cv2.inpaint neighbourhood in pixels, Telea's and Navier-Stokes'
DATA_CASES = ("running_car-wires", "running_car-box", "bmx-trees-wires", "tennis-wires",
              "sample0-wires", "sample0-object", "sample1-wires")
SYNTHETIC_CASES = ("synthetic-wires",)
ALL_CASES = DATA_CASES + SYNTHETIC_CASES
# classic-engine variants with one part switched off: name -> (ClassicEngine kwargs, InpaintConfig changes)
ABLATIONS: dict[str, tuple[dict, dict]] = {
    "classic-no-flow-completion": ({"use_flow_completion": False}, {}),  # DIS flow on the pre-fill kept as is
    "classic-one-pass": ({"passes": 1}, {}),  # no second pass on the re-measured flow
    "classic-no-blend": ({"use_blending": False}, {}),  # no blending of the ring residual
    "classic-no-propagation": ({"use_propagation": False}, {}),  # spatial fill only
}
METHODS = ("classic", "telea", "ns", "propainter", *ABLATIONS)
SCORES = ("psnr_mask", "ssim_mask", "psnr_full", "ssim_full", "warp_full", "warp_mask", "sec_per_frame")


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


# ----------------------------------------------------------------------------- loading


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


def _to_uint8(frame: np.ndarray) -> np.ndarray:
    if frame.dtype == np.uint8:
        return frame
    if frame.dtype == np.uint16:
        return (frame // 257).astype(np.uint8)
    return np.clip(np.rint(frame * 255.0), 0, 255).astype(np.uint8)


def load_clip(path: Path, max_frames: int | None, size: int | tuple[int, int] | None) -> np.ndarray:
    """A video file or frame folder as (T, H, W, 3) uint8 RGB, at most ``max_frames`` frames, scaled to fit."""
    from .io import open_frames

    source = open_frames(path)
    try:
        count = len(source) if max_frames is None else min(len(source), max_frames)
        first = source[0]
        h, w = fit_size(first.shape[0], first.shape[1], size)
        out = np.empty((count, h, w, 3), np.uint8)
        for i in range(count):
            frame = _to_uint8(source[i])
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


# ----------------------------------------------------------------------------- methods


def cv2_inpaint_clip(frames: np.ndarray, masks: np.ndarray, method: int, radius: int = BASELINE_RADIUS) -> np.ndarray:
    """Per-frame ``cv2.inpaint`` (no temporal information).

    Args:
        frames: (T, H, W, 3) uint8 RGB.
        masks: (T, H, W) bool.
        method: ``cv2.INPAINT_TELEA`` or ``cv2.INPAINT_NS``.
        radius: neighbourhood in pixels.
    Returns:
        (T, H, W, 3) uint8, equal to ``frames`` outside the masks.
    """
    return np.stack([cv2.inpaint(f, m.astype(np.uint8), radius, method) for f, m in zip(frames, masks, strict=True)])


def _classic_variant(engine_kwargs: dict, config_changes: dict, device: str) -> Callable:
    def run(frames: np.ndarray, masks: np.ndarray) -> np.ndarray:
        from .api import run_engine
        from .config import InpaintConfig
        from .engines.classic import ClassicEngine
        from .pipeline.stages import Stages

        config = InpaintConfig(engine="classic", device=device, quiet=True, **config_changes).validate()
        out = run_engine(list(frames), list(masks), config, Stages(quiet=True), engine=ClassicEngine(**engine_kwargs))
        return np.stack(out)

    return run


def method_runners(methods: Sequence[str], weights_dir: Path | None = None,
                   device: str = "cpu") -> dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """Name -> function (frames (T, H, W, 3) uint8, masks (T, H, W) bool) -> (T, H, W, 3) uint8."""
    from .api import inpaint_arrays

    runners: dict[str, Callable] = {}
    for name in methods:
        if name == "telea":
            runners[name] = lambda f, m: cv2_inpaint_clip(f, m, cv2.INPAINT_TELEA)
        elif name == "ns":
            runners[name] = lambda f, m: cv2_inpaint_clip(f, m, cv2.INPAINT_NS)
        elif name == "classic":
            runners[name] = lambda f, m: inpaint_arrays(f, m, engine="classic", device=device, quiet=True)
        elif name == "propainter":
            if weights_dir is None:
                raise InputError("the propainter method needs weights_dir")
            runners[name] = lambda f, m: inpaint_arrays(f, m, engine="propainter", weights_dir=weights_dir,
                                                        device=device, quiet=True)
        elif name in ABLATIONS:
            runners[name] = _classic_variant(*ABLATIONS[name], device=device)
        else:
            raise InputError(f"unknown method '{name}' (choose from {', '.join(METHODS)}, or 'ablation')")
    return runners


def resolve_methods(engines: Sequence[str], ablation: bool, weights_dir: Path | None) -> list[str]:
    """The method list: ``engines`` ('ablation' expands to every variant), plus ablations and propainter."""
    names: list[str] = []
    for name in engines:
        names.extend(ABLATIONS if name == "ablation" else [name])
    if ablation and "classic" in names:
        names.extend(ABLATIONS)
    if weights_dir is not None:
        names.append("propainter")
    return list(dict.fromkeys(names))  # unique, in order


# ----------------------------------------------------------------------------- scoring


def score(result: np.ndarray, case: Case, flows: metrics.TemporalFlow | None) -> dict:
    """Every quality score of one result against the case's truth (see the module docstring)."""
    row = {
        "psnr_mask": metrics.psnr(result, case.truth, case.masks),
        "ssim_mask": metrics.ssim(result, case.truth, case.masks),
        "psnr_full": metrics.psnr(result, case.truth),
        "ssim_full": metrics.ssim(result, case.truth),
        "warp_full": float("nan"),
        "warp_mask": float("nan"),
    }
    if flows is not None:
        row["warp_full"] = metrics.warping_error(result, flows)
        row["warp_mask"] = metrics.warping_error(result, flows, case.masks)
    return row


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


def _write_png(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")


def _stack_rows(rows: list[np.ndarray], titles: list[str]) -> np.ndarray:
    width = max(r.shape[1] for r in rows)
    out = []
    for row, title in zip(rows, titles, strict=True):
        head = np.zeros((22, width, 3), np.uint8)
        cv2.putText(head, title, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 220, 120), 1, cv2.LINE_AA)
        pad = np.zeros((row.shape[0], width - row.shape[1], 3), np.uint8)
        out += [head, np.concatenate([row, pad], axis=1)]
    return np.concatenate(out, axis=0)


# ----------------------------------------------------------------------------- reports


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


def _jsonable(value):
    if isinstance(value, float) and not np.isfinite(value):
        return None if np.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


# ----------------------------------------------------------------------------- driver


def run_evaluation(out_dir: str | Path, data_dir: str | Path = DEFAULT_DATA,
                   cases: Sequence[str | Case] | None = None,
                   engines: Sequence[str] = ("classic", "telea", "ns"), max_frames: int | None = None,
                   size: int | tuple[int, int] | None = None, quiet: bool = False,
                   weights_dir: str | Path | None = None, ablation: bool = True, device: str = "cpu",
                   temporal: bool = True) -> list[dict]:
    """Score every method on every case; write the reports into ``out_dir``.

    Args:
        out_dir: created if needed; receives ``results.md``, ``results.json``,
            ``psnr_mask.png``, ``ssim_mask.png``, ``warp_mask.png``, ``sec_per_frame.png``,
            ``contact_<case>.png`` and ``contact_sheet.png`` (all cases).
        data_dir: the shared data folder (``running_car/``, ``bmx-trees/`` ...).
        cases: case names or prebuilt :class:`Case` objects; None: every data case
            whose footage exists plus ``synthetic-wires``. Named cases whose footage
            is missing are skipped with a warning.
        engines: methods ('classic', 'telea', 'ns', an ablation name, or 'ablation'
            for all ablations).
        max_frames: at most this many frames per clip (None: all).
        size: frame size to fit (see :func:`fit_size`); None fits 640x360.
        weights_dir: with it, the 'propainter' method runs too.
        ablation: also run the classic-engine ablations when 'classic' is among the engines.
        device: for the engines ('cpu', 'cuda', 'auto').
        temporal: compute the warping errors (DIS flow of every truth clip).
    Returns:
        one dict per (case, method): ``case``, ``method``, the scores of :data:`SCORES`
        (NaN where not computed) and ``error`` (None, or the message of a failed run).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights_dir = None if weights_dir is None else Path(weights_dir)
    methods = resolve_methods(engines, ablation, weights_dir)
    runners = method_runners(methods, weights_dir, device)
    say = (lambda *a: None) if quiet else print

    wanted = list(ALL_CASES) if cases is None else list(cases)
    rows: list[dict] = []
    case_info: list[dict] = []
    sheets: list[tuple[str, np.ndarray]] = []
    for spec in wanted:
        if isinstance(spec, Case):
            case = spec
        else:
            try:
                case = build_case(spec, Path(data_dir), max_frames, size)
            except FileNotFoundError as exc:
                if cases is not None:
                    log.warning("case %s skipped: %s is absent", spec, exc)
                say(f"skip {spec}: {exc} is absent")
                continue
        info = case.describe()
        flows = metrics.temporal_flow(case.truth) if temporal and case.truth.shape[0] >= 2 else None
        if flows is not None:
            info["truth_warp_full"] = metrics.warping_error(case.truth, flows)
            info["truth_warp_mask"] = metrics.warping_error(case.truth, flows, case.masks)
        case_info.append(info)
        say(f"{case.name}: {info['frames']} frames {info['width']}x{info['height']}, "
            f"mask {100 * info['mask_fraction']:.2f}%")
        results: dict[str, np.ndarray] = {}
        for method, runner in runners.items():
            row = {"case": case.name, "method": method, **dict.fromkeys(SCORES, float("nan")), "error": None}
            start = time.perf_counter()
            try:
                result = _to_uint8(np.asarray(runner(case.inputs, case.masks)))
            except Exception as exc:  # a failing method is reported, the others still run
                log.exception("method %s failed on %s", method, case.name)
                row["error"] = f"{type(exc).__name__}: {exc}"
                rows.append(row)
                say(f"  {method:24s} failed: {row['error']}")
                continue
            row["sec_per_frame"] = (time.perf_counter() - start) / case.truth.shape[0]
            row.update(score(result, case, flows))
            rows.append(row)
            results[method] = result
            say(f"  {method:24s} PSNR mask {row['psnr_mask']:6.2f} dB  SSIM mask {row['ssim_mask']:.4f}  "
                f"warp {row['warp_full']:.3f}  {row['sec_per_frame']:.3f} s/frame")
        sheet = contact_row(case, results)
        _write_png(out_dir / f"contact_{case.name}.png", sheet)
        sheets.append((case.name, sheet))

    settings = {"data_dir": str(data_dir), "max_frames": max_frames,
                "size": "x".join(map(str, DEFAULT_SIZE)) if size is None else str(size),
                "methods": methods, "baseline_radius": BASELINE_RADIUS, "device": device}
    (out_dir / "results.md").write_text(results_markdown(rows, case_info, settings))
    payload = {"settings": settings, "cases": [{k: _jsonable(v) for k, v in c.items()} for c in case_info],
               "results": [{k: _jsonable(v) for k, v in r.items()} for r in rows]}
    (out_dir / "results.json").write_text(json.dumps(payload, indent=2))
    if rows:
        for key, label in (("psnr_mask", "PSNR inside mask (dB)"), ("ssim_mask", "SSIM inside mask"),
                           ("warp_mask", "warping error inside mask (8-bit levels)"),
                           ("sec_per_frame", "seconds per frame")):
            plot_metric(rows, key, label, out_dir / f"{key}.png")
    if sheets:
        _write_png(out_dir / "contact_sheet.png", _stack_rows([s for _, s in sheets], [n for n, _ in sheets]))
    say(f"wrote {out_dir / 'results.md'}")
    return rows


# ----------------------------------------------------------------------------- command line


def _size_arg(text: str) -> int | tuple[int, int]:
    try:
        if "x" in text:
            w, h = text.lower().split("x")
            return int(w), int(h)
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or WxH, got {text!r}") from None


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``evaluate`` sub-command's options."""
    parser.add_argument("-o", "--output", type=Path, default=Path("eval_out"), help="report folder")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder")
    parser.add_argument("--cases", nargs="+", default=None, choices=ALL_CASES, metavar="CASE",
                        help=f"cases to run (default: all available): {', '.join(ALL_CASES)}")
    parser.add_argument("--engines", nargs="+", default=["classic", "telea", "ns"], metavar="METHOD",
                        help=f"methods: {', '.join(m for m in METHODS if m != 'propainter')} or 'ablation'")
    parser.add_argument("--no-ablation", action="store_true", help="skip the classic-engine ablations")
    parser.add_argument("--max-frames", type=int, default=None, help="at most N frames per clip")
    parser.add_argument("--size", type=_size_arg, default=None, help="fit frames in N (longer side) or WxH "
                        "(default 640x360)")
    parser.add_argument("--weights-dir", type=Path, default=None, help="also evaluate the propainter engine")
    parser.add_argument("--device", default="cpu", help="device of the engines (cpu, cuda, auto)")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")


def evaluate_command(args: argparse.Namespace) -> int:
    """Run the evaluation from parsed arguments; 0 on success, 1 when a method failed."""
    rows = run_evaluation(args.output, data_dir=args.data, cases=args.cases, engines=args.engines,
                          max_frames=args.max_frames, size=args.size, quiet=args.quiet,
                          weights_dir=args.weights_dir, ablation=not args.no_ablation, device=args.device)
    return 1 if any(r["error"] for r in rows) else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="propainter-wire evaluate", description=__doc__.split("\n")[0])
    add_evaluate_arguments(parser)
    return evaluate_command(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
