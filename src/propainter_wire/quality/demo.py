"""A self-contained demo: remove two swaying wires from a generated clip with ground truth.

``propainter-wire demo -o demo_out`` writes::

    demo_out/input/frames/00000.png ...   the clip with wires (what the engine sees)
    demo_out/input/masks/00000.png ...    the wire masks (255 = remove)
    demo_out/input/truth/00000.png ...    the clip without wires
    demo_out/result/                      the pipeline's output (frames/, report.json, inpainted.mp4)
    demo_out/before_after.mp4             input | result, side by side
    demo_out/demo_report.json             PSNR/SSIM inside the wire mask, engine vs per-frame Telea

With the default 24 frames of 320x192 the CPU classic engine takes seconds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from ..config import ENGINES
from . import metrics, synth

DEMO_FPS = 24.0
TELEA_RADIUS = 3  # pixels, the per-frame baseline's neighbourhood


def make_demo_clip(num_frames: int = 24, height: int = 192, width: int = 320,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A panning procedural landscape with two thin swaying wires.

    Returns:
        truth: (T, H, W, 3) uint8 RGB without wires.
        inputs: (T, H, W, 3) uint8 RGB with the wires drawn.
        masks: (T, H, W) bool, the wire pixels (grown by 1 px).
    """
    truth = synth.procedural_clip(num_frames, height, width, seed=seed)
    inputs, masks = synth.draw_wires(truth, num_wires=2, thickness_range=(2.0, 4.0), seed=seed + 1)
    return truth, inputs, masks


def _write_sequence(folder: Path, images: np.ndarray) -> None:
    from ..io import write_image

    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        write_image(folder / f"{i:05d}.png", image)


def write_side_by_side(path: Path, left: np.ndarray, right: np.ndarray, fps: float = DEMO_FPS) -> None:
    """An mp4 of ``left | right`` (both (T, H, W, 3) uint8 RGB) with a 4-pixel white gap."""
    from ..io import VideoWriter

    t_len, h, w = left.shape[:3]
    gap = np.full((h, 4, 3), 255, np.uint8)
    with VideoWriter(path, fps, 2 * w + gap.shape[1], h) as video:
        for t in range(t_len):
            video.write(np.concatenate([left[t], gap, right[t]], axis=1))


def run_demo(out_dir: str | Path, engine: str = "auto", quiet: bool = False, weights_dir: str | Path | None = None,
             num_frames: int = 24, height: int = 192, width: int = 320, seed: int = 0) -> dict:
    """Generate the demo clip, inpaint it through the file API and score it.

    Args:
        out_dir: created (and its ``result/`` replaced) as laid out in the module docstring.
        engine: 'auto', 'classic' or 'propainter'.
        quiet: no progress bars and no printed summary.
        weights_dir: the ProPainter checkpoints folder (for 'auto'/'propainter').
    Returns:
        the contents of ``demo_report.json``: the engine used, PSNR (dB) and SSIM inside the
        wire mask for the engine and for per-frame Telea, whole-frame PSNR, timings and paths.
    """
    from ..api import inpaint
    from ..io import open_frames

    out_dir = Path(out_dir)
    truth, inputs, masks = make_demo_clip(num_frames, height, width, seed)
    frames_dir, masks_dir = out_dir / "input" / "frames", out_dir / "input" / "masks"
    _write_sequence(frames_dir, inputs)
    _write_sequence(masks_dir, masks.astype(np.uint8) * 255)
    _write_sequence(out_dir / "input" / "truth", truth)

    start = time.perf_counter()
    report = inpaint(frames_dir, masks_dir, out_dir / "result", engine=engine, weights_dir=weights_dir,
                     save_video=True, quiet=quiet, overwrite=True)
    seconds = time.perf_counter() - start
    source = open_frames(out_dir / "result" / "frames")
    try:
        result = np.stack([source[i] for i in range(len(source))])
    finally:
        source.close()

    telea = np.stack([cv2.inpaint(f, m.astype(np.uint8), TELEA_RADIUS, cv2.INPAINT_TELEA)
                      for f, m in zip(inputs, masks, strict=True)])
    write_side_by_side(out_dir / "before_after.mp4", inputs, result)

    summary = {
        "engine": report.get("engine", engine),
        "frames": int(num_frames), "width": int(width), "height": int(height), "seed": int(seed),
        "mask_fraction": round(float(masks.mean()), 5),
        "psnr_mask": metrics.psnr(result, truth, masks),
        "ssim_mask": metrics.ssim(result, truth, masks),
        "psnr_full": metrics.psnr(result, truth),
        "telea_psnr_mask": metrics.psnr(telea, truth, masks),
        "telea_ssim_mask": metrics.ssim(telea, truth, masks),
        "input_psnr_mask": metrics.psnr(inputs, truth, masks),
        "seconds": round(seconds, 3),
        "outputs": {"result": str(out_dir / "result"), "before_after": str(out_dir / "before_after.mp4")},
    }
    (out_dir / "demo_report.json").write_text(json.dumps(summary, indent=2))
    if not quiet:
        print(f"demo: {num_frames} frames {width}x{height}, two wires ({100 * summary['mask_fraction']:.1f}% "
              f"of the pixels), engine {summary['engine']}, {seconds:.1f} s")
        print(f"  PSNR inside the wire mask: {summary['engine']} {summary['psnr_mask']:.2f} dB, "
              f"per-frame Telea {summary['telea_psnr_mask']:.2f} dB (with the wires: "
              f"{summary['input_psnr_mask']:.2f} dB)")
        print(f"  wrote {out_dir / 'before_after.mp4'} and {out_dir / 'demo_report.json'}")
    return summary


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``demo`` sub-command's options."""
    parser.add_argument("-o", "--output", type=Path, default=Path("demo_out"), help="output folder")
    parser.add_argument("--engine", choices=ENGINES, default="auto",
                        help="auto: propainter when its checkpoints are found, else classic")
    parser.add_argument("--weights-dir", type=Path, default=None, help="folder holding the three checkpoints")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or summary")


def demo_command(args: argparse.Namespace) -> int:
    """Run the demo from parsed arguments; returns the exit code (0)."""
    run_demo(args.output, engine=args.engine, quiet=args.quiet, weights_dir=getattr(args, "weights_dir", None))
    return 0
