"""Benchmark one inpainting run, timed like a user's run.

Writes a clip (generated, or frames of a given folder scaled to the size asked for)
and its masks as PNG files, then times ``propainter_wire.inpaint`` from the start of
the run (after imports) to the last frame written: decoding and PNG writing included.
Prints one JSON object: per-stage seconds, s/frame, peak GPU (allocated) and host memory.

    python benchmarks/bench.py --engine classic --frames 24 --width 432 --height 240
    python benchmarks/bench.py --engine propainter --device cuda --precision bf16 \
        --source ../shared/data/bmx-trees --width 1280 --height 720 --frames 80
    python benchmarks/bench.py --lengths 24,96 ...   # one subprocess per length: memory vs length

Without ``--weights-dir`` the propainter engine uses deterministic stand-in weights
(speed does not depend on the weights' values).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def _texture_clip(frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """A panning multi-scale noise texture, (T, H, W, 3) uint8."""
    import cv2

    rng = np.random.default_rng(seed)
    canvas_h, canvas_w = height + 64, width + 2 * frames + 64
    canvas = np.zeros((canvas_h, canvas_w, 3), np.float32)
    for octave in range(1, 6):
        step = 2 ** octave
        noise = rng.random((canvas_h // step + 2, canvas_w // step + 2, 3)).astype(np.float32)
        canvas += cv2.resize(noise, (canvas_w, canvas_h), interpolation=cv2.INTER_CUBIC) / octave
    canvas = (canvas - canvas.min()) / (canvas.max() - canvas.min())
    return np.stack([(canvas[16:16 + height, 2 * t:2 * t + width] * 255).astype(np.uint8) for t in range(frames)])


def _source_clip(source: Path, frames: int, height: int, width: int):
    """Frames and masks of a folder (``frames/`` + ``masks/``), scaled, ping-ponged to length."""
    import cv2

    names = sorted(p for p in (source / "frames").iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    mask_names = sorted((source / "masks").iterdir())
    order = list(range(len(names))) + list(range(len(names) - 2, 0, -1))
    idx = [order[i % len(order)] for i in range(frames)]
    clip = [cv2.resize(cv2.imread(str(names[i]))[..., ::-1], (width, height), interpolation=cv2.INTER_CUBIC)
            for i in idx]
    masks = [cv2.resize(cv2.imread(str(mask_names[i]), cv2.IMREAD_GRAYSCALE), (width, height),
                        interpolation=cv2.INTER_NEAREST) for i in idx]
    return np.stack(clip), np.stack(masks) > 0


def _wire_masks(frames: int, height: int, width: int) -> np.ndarray:
    import cv2

    masks = np.zeros((frames, height, width), np.uint8)
    xs = np.linspace(0, width - 1, 64)
    for t in range(frames):
        for k, base in enumerate((0.3, 0.6)):
            sag = 0.08 * height * (1 + 0.3 * np.sin(0.2 * t + k))
            ys = base * height + sag * (1 - ((xs - width / 2) / (width / 2)) ** 2)
            pts = np.stack([xs, ys], 1).astype(np.int32)
            cv2.polylines(masks[t], [pts], False, 255, thickness=max(3, height // 120))
    return masks > 0


def write_clip(folder: Path, frames: int, height: int, width: int, source: Path | None) -> tuple[Path, Path]:
    import cv2

    if source is not None:
        clip, masks = _source_clip(source, frames, height, width)
    else:
        clip, masks = _texture_clip(frames, height, width), _wire_masks(frames, height, width)
    fdir, mdir = folder / "frames", folder / "masks"
    fdir.mkdir(parents=True)
    mdir.mkdir(parents=True)
    for i in range(frames):
        cv2.imwrite(str(fdir / f"{i:05d}.png"), clip[i][..., ::-1])
        cv2.imwrite(str(mdir / f"{i:05d}.png"), masks[i].astype(np.uint8) * 255)
    return fdir, mdir


def run_once(args: argparse.Namespace) -> dict:
    import torch

    import propainter_wire
    from propainter_wire.testing import write_deterministic_checkpoints

    with tempfile.TemporaryDirectory(prefix="pw-bench-") as tmp:
        tmp = Path(tmp)
        if args.clip is not None:  # a clip written earlier with --write-clip (same frames, no PNG encoding here)
            fdir, mdir = args.clip / "frames", args.clip / "masks"
        else:
            fdir, mdir = write_clip(tmp / "clip", args.frames, args.height, args.width, args.source)
        weights = args.weights_dir
        if args.engine == "propainter" and weights is None:
            weights = write_deterministic_checkpoints(tmp / "weights")
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        start = time.perf_counter()
        report = propainter_wire.inpaint(
            fdir, mdir, tmp / "out", engine=args.engine, weights_dir=weights, device=args.device,
            precision=args.precision, quiet=True, neighbor_length=args.neighbor_length,
            subvideo_length=args.subvideo_length, raft_iters=args.raft_iters, scratch=args.scratch,
            overwrite=args.overwrite)
        seconds = time.perf_counter() - start
        if args.keep_output is not None:
            import shutil

            shutil.copytree(tmp / "out" / "frames", args.keep_output, dirs_exist_ok=True)
    return {
        "engine": report["engine"], "device": report["device"], "precision": args.precision, "scratch": args.scratch,
        "width": args.width, "height": args.height, "frames": args.frames,
        "source": str(args.source) if args.source else "generated",
        "seconds": round(seconds, 3), "s_per_frame": round(seconds / args.frames, 4),
        "stages": report["seconds"],
        "peak_gpu_gib": None if report["peak_gpu_bytes"] is None else round(report["peak_gpu_bytes"] / 2**30, 3),
        "peak_gpu_gib_per_stage": {k: round(v / 2**30, 2)
                                   for k, v in report.get("peak_gpu_bytes_per_stage", {}).items()},
        "peak_host_rss_gib": round(report["peak_host_rss_bytes"] / 2**30, 3),
        "host_rss_before_run_gib": round(rss_before / 2**30, 3),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "torch": torch.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--engine", default="classic", choices=("classic", "propainter"))
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto")
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--lengths", default=None, help="comma-separated frame counts, one subprocess each")
    p.add_argument("--width", type=int, default=432)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--source", type=Path, default=None, help="folder with frames/ and masks/ to scale")
    p.add_argument("--weights-dir", type=Path, default=None)
    p.add_argument("--neighbor-length", type=int, default=10)
    p.add_argument("--subvideo-length", type=int, default=80)
    p.add_argument("--raft-iters", type=int, default=20)
    p.add_argument("--overwrite", action="store_true",
                   help="run with --overwrite (every frame decoded before the engine starts: an A/B of streaming)")
    p.add_argument("--scratch", default="auto", choices=("auto", "memory", "disk"),
                   help="where whole-clip arrays live (disk: host memory flat with length)")
    p.add_argument("--keep-output", type=Path, default=None, help="copy the output frames here")
    p.add_argument("--write-clip", type=Path, default=None, help="only write the clip (frames/, masks/) here")
    p.add_argument("--clip", type=Path, default=None,
                   help="run on a clip written earlier with --write-clip (its size and length must match the flags)")
    args = p.parse_args(argv)
    if args.write_clip is not None:
        write_clip(args.write_clip, args.frames, args.height, args.width, args.source)
        return 0
    if args.lengths:
        rows = []
        for n in [int(x) for x in args.lengths.split(",")]:
            cmd = [sys.executable, __file__, *[a for a in (argv or sys.argv[1:])]]
            i = cmd.index("--lengths")
            cmd[i:i + 2] = ["--frames", str(n)]
            out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ, check=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
        print(json.dumps(rows))
        return 0
    print(json.dumps(run_once(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
