"""Quality harness: inpaint clips with a known ground truth and score every method.

Cases (:mod:`.cases`, whose docstring lists them) are built from real footage by drawing synthetic
wires over it or by blanking a mask, so no method ever sees the truth.

Methods: ``telea`` and ``ns`` are per-frame ``cv2.inpaint`` (Telea's fast marching
and Navier-Stokes) with a 3-pixel radius on the user's mask, no temporal
information; ``classic`` is the classic engine through :func:`propainter_wire.api.inpaint_arrays`
with default settings; the ablations run the classic engine with one part switched
off (see :data:`.methods.ABLATIONS`); ``propainter`` runs when a weights folder is given.

Scores per case and method: PSNR (dB) and SSIM inside the user's mask and over the
whole frame, the warping error (temporal consistency, 8-bit grey levels, see
:func:`propainter_wire.quality.metrics.warping_error`) over the whole frame and inside the
mask, and wall seconds per frame. Frames are downscaled to fit 640x360 by default.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import metrics
from .cases import ALL_CASES, DEFAULT_DATA, DEFAULT_SIZE, Case, build_case, to_uint8
from .methods import BASELINE_RADIUS, METHODS, method_runners, resolve_methods
from .report import contact_row, jsonable, plot_metric, results_markdown, stack_rows, write_png

log = logging.getLogger("propainter_wire")
SCORES = ("psnr_mask", "ssim_mask", "psnr_full", "ssim_full", "warp_full", "warp_mask", "sec_per_frame")


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
                result = to_uint8(np.asarray(runner(case.inputs, case.masks)))
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
        write_png(out_dir / f"contact_{case.name}.png", sheet)
        sheets.append((case.name, sheet))

    settings = {"data_dir": str(data_dir), "max_frames": max_frames,
                "size": "x".join(map(str, DEFAULT_SIZE)) if size is None else str(size),
                "methods": methods, "baseline_radius": BASELINE_RADIUS, "device": device}
    (out_dir / "results.md").write_text(results_markdown(rows, case_info, settings))
    payload = {"settings": settings, "cases": [{k: jsonable(v) for k, v in c.items()} for c in case_info],
               "results": [{k: jsonable(v) for k, v in r.items()} for r in rows]}
    (out_dir / "results.json").write_text(json.dumps(payload, indent=2))
    if rows:
        for key, label in (("psnr_mask", "PSNR inside mask (dB)"), ("ssim_mask", "SSIM inside mask"),
                           ("warp_mask", "warping error inside mask (8-bit levels)"),
                           ("sec_per_frame", "seconds per frame")):
            plot_metric(rows, key, label, out_dir / f"{key}.png")
    if sheets:
        write_png(out_dir / "contact_sheet.png", stack_rows([s for _, s in sheets], [n for n, _ in sheets]))
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
