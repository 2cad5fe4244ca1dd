"""Time one inpainting run: ours or the reference ProPainter script, as a user runs it.

Three timings, one JSON line each on stdout (see benchmarks/README.md):

``--mode process`` (what a user waits for)
    ``python -m propainter_wire inpaint ...`` in a fresh process, timed from the
    start of the process to its exit: interpreter start, imports, weight loading,
    decoding, the engine and PNG writing. The run's ``report.json`` adds the
    in-process stage breakdown and the peak memory.
``--mode reference --ref DIR``
    the unchanged reference ``inference_propainter.py`` (a checkout of
    github.com/sczhou/ProPainter) in a fresh process through ``reference_driver.py``,
    timed the same way (start to exit; ``--fp16 --save_frames`` for fp16, its mp4
    writing skipped). The driver adds its own in-process seconds and peak GPU memory.
``--mode inprocess`` (the default)
    ``propainter_wire.inpaint`` inside this process, timed from the call (imports
    done) to its return: the figures of benchmarks/RESULTS.md's in-process tables.

The clip is a generated panning texture with sagging wires, or a folder's
``frames/`` + ``masks/`` (``--source``) scaled to the size and ping-ponged to the
length; ``--clip DIR`` reuses one written earlier by ``--write-clip DIR``. Without
``--weights-dir`` the propainter engine and the reference use deterministic stand-in
weights (speed does not depend on the weights' values).

    python benchmarks/bench.py --engine classic --frames 24 --width 432 --height 240
    python benchmarks/bench.py --mode process --engine propainter --device cuda --precision fp16 \\
        --source .devcarry/data/bmx-trees --width 1280 --height 720 --frames 80 --name ours_720p
    python benchmarks/bench.py --mode reference --ref .devcarry/ref --precision fp16 --clip /tmp/c720
    python benchmarks/bench.py --write-clip /tmp/c720 --source .devcarry/data/bmx-trees \\
        --width 1280 --height 720 --frames 80
    python benchmarks/bench.py --lengths 24,96 ...   # in-process, one subprocess per length
    python benchmarks/bench.py --mode batch --shots 6 --engine classic --device cpu --frames 24

``--mode batch``: ``--shots`` shots through one ``batch`` process against as many separate ``inpaint``
processes (shots per hour of each, and their ratio); ``--workers 2`` gives the batch two workers on
``--device`` (``cpu,cpu`` or ``cuda:0,cuda:0``), the separate processes still run one at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


# ---------------------------------------------------------------------------
# clips
# ---------------------------------------------------------------------------
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


def _source_clip(source: Path, frames: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames (T, H, W, 3) uint8 and masks (T, H, W) bool of a folder, scaled, ping-ponged to length."""
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
    """Two sagging, swaying wires, (T, H, W) bool."""
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
    """Write ``folder/frames/00000.png...`` and ``folder/masks/00000.png...``; returns both folders."""
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


def clip_size(folder: Path) -> tuple[int, int, int]:
    """(frames, height, width) of a clip written by :func:`write_clip`: its frame count and first frame's size."""
    import cv2

    names = sorted(p for p in (folder / "frames").iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    first = cv2.imread(str(names[0]), cv2.IMREAD_UNCHANGED) if names else None
    if first is None:
        raise SystemExit(f"bench.py: --clip {folder}: no readable frame in {folder / 'frames'}")
    return len(names), first.shape[0], first.shape[1]


def _stand_in_weights(folder: Path) -> Path:
    """Deterministic stand-in checkpoints (the three official file names) written to ``folder``."""
    from propainter_wire.testing import write_deterministic_checkpoints

    return Path(write_deterministic_checkpoints(folder))


def _gib(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value / 2**30, digits)


def _summary(report: dict) -> dict:
    """The report.json fields a benchmark line keeps."""
    return {
        "engine": report["engine"], "device": report["device"],
        "stages": report["seconds"],
        "wall": report.get("wall_seconds"),  # startup, setup, top-level stages, between, loader steps
        "peak_gpu_gib": _gib(report.get("peak_gpu_bytes")),
        "peak_gpu_gib_per_stage": {k: _gib(v, 2) for k, v in report.get("peak_gpu_bytes_per_stage", {}).items()},
        "peak_host_rss_gib": _gib(report.get("peak_host_rss_bytes")),
    }


def _machine() -> dict:
    import torch

    return {"gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None, "torch": torch.__version__}


# ---------------------------------------------------------------------------
# timings
# ---------------------------------------------------------------------------
def _timed_process(cmd: list[str], cwd: Path | None = None, timeout: float | None = None) -> tuple[float, str, int]:
    """Run ``cmd``; wall seconds from start to exit, its stdout and exit code (stderr passes through).

    The checkout's ``src`` leads ``PYTHONPATH``, so the package timed is this checkout's.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if p)
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:  # recorded as exit code 124, like timeout(1)
        return time.perf_counter() - start, exc.stdout or "", 124
    return time.perf_counter() - start, proc.stdout, proc.returncode


def run_process(args: argparse.Namespace, fdir: Path, mdir: Path, tmp: Path) -> dict:
    """``python -m propainter_wire inpaint`` timed from process start to exit."""
    weights = args.weights_dir
    if args.engine == "propainter" and weights is None:
        weights = _stand_in_weights(tmp / "weights")
    out = tmp / "out"
    cmd = [sys.executable, "-m", "propainter_wire", "inpaint", "-i", str(fdir), "-m", str(mdir), "-o", str(out),
           "--engine", args.engine, "--device", args.device, "--precision", args.precision, "--quiet",
           "--neighbor-length", str(args.neighbor_length), "--subvideo-length", str(args.subvideo_length),
           "--raft-iters", str(args.raft_iters), "--scratch", args.scratch]
    if weights is not None:
        cmd += ["--weights-dir", str(weights)]
    if args.overwrite:
        cmd.append("--overwrite")
    wall, _, code = _timed_process(cmd, timeout=args.timeout)
    row = {"program": "ours", "mode": "process", "wall_seconds": round(wall, 3), "exit_code": code}
    if code == 0:
        row.update(_summary(json.loads((out / "report.json").read_text())))
        if args.keep_output is not None:
            shutil.copytree(out / "frames", args.keep_output, dirs_exist_ok=True)
    return row


def run_reference(args: argparse.Namespace, fdir: Path, mdir: Path, tmp: Path) -> dict:
    """The reference script through reference_driver.py, timed from process start to exit."""
    ref = args.ref.resolve()
    if not (ref / "weights" / "ProPainter.pth").exists():
        _stand_in_weights(ref / "weights")
    cmd = [sys.executable, str(ROOT / "benchmarks" / "reference_driver.py"), "--ref", str(ref), "--",
           "-i", str(fdir.resolve()), "-m", str(mdir.resolve()), "-o", str(tmp / "ref_out"), "--save_frames"]
    if args.precision == "fp16":
        cmd.append("--fp16")
    wall, stdout, code = _timed_process(cmd, timeout=args.timeout)
    row = {"program": "reference", "mode": "process", "wall_seconds": round(wall, 3), "exit_code": code}
    lines = stdout.strip().splitlines()
    if lines:
        driver = json.loads(lines[-1])
        row.update(inprocess_seconds=driver["reference_seconds"], peak_gpu_gib=driver["peak_gpu_gib"],
                   error=driver["error"])
    return row


def run_inprocess(args: argparse.Namespace, fdir: Path, mdir: Path, tmp: Path) -> dict:
    """``propainter_wire.inpaint`` in this process, from the call to its return."""
    import torch

    import propainter_wire

    weights = args.weights_dir
    if args.engine == "propainter" and weights is None:
        weights = _stand_in_weights(tmp / "weights")
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
        shutil.copytree(tmp / "out" / "frames", args.keep_output, dirs_exist_ok=True)
    return {"program": "ours", "mode": "inprocess", "seconds": round(seconds, 3),
            "s_per_frame": round(seconds / args.frames, 4), **_summary(report),
            "host_rss_before_run_gib": _gib(rss_before)}


def run_batch(args: argparse.Namespace, fdir: Path, mdir: Path, tmp: Path) -> dict:
    """``--shots`` shots through one ``batch`` process against as many ``inpaint`` processes, back to back.

    Both timed from the first process's start to the last one's exit; the shots are the same clip
    into separate output folders. ``ratio``: batch shots per hour over separate processes'.
    """
    weights = args.weights_dir
    if args.engine == "propainter" and weights is None:
        weights = _stand_in_weights(tmp / "weights")
    settings = ["--engine", args.engine, "--precision", args.precision, "--neighbor-length", str(args.neighbor_length),
                "--subvideo-length", str(args.subvideo_length), "--raft-iters", str(args.raft_iters)]
    if weights is not None:
        settings += ["--weights-dir", str(weights)]
    separate = 0.0
    for i in range(args.shots):
        wall, _, code = _timed_process([sys.executable, "-m", "propainter_wire", "inpaint", "-i", str(fdir), "-m",
                                        str(mdir), "-o", str(tmp / "alone" / str(i)), "--device", args.device,
                                        "--quiet", *settings], timeout=args.timeout)
        if code != 0:
            return {"program": "ours", "mode": "batch", "exit_code": code, "error": f"inpaint shot {i} failed"}
        separate += wall
    jobs = tmp / "shots.csv"
    jobs.write_text("input,mask,output\n" + "".join(f"{fdir},{mdir},{tmp / 'batch' / str(i)}\n"
                                                   for i in range(args.shots)))
    # --workers N: the batch's worker list is the device N times (two workers sharing one GPU); the
    # separate processes above keep --device. --split 1: whole shots, as the separate processes run them
    device = args.device
    if args.workers > 1 and device in ("auto", "cuda"):
        import torch

        device = "cuda:0" if torch.cuda.is_available() else "cpu"
    devices = [] if device == "auto" else ["--devices", ",".join([device] * args.workers)]
    wall, _, code = _timed_process([sys.executable, "-m", "propainter_wire", "batch", str(jobs), "--quiet",
                                    "--split", "1", *devices, *settings], timeout=args.timeout)
    row = {"program": "ours", "mode": "batch", "shots": args.shots, "workers": args.workers,
           "batch_devices": devices[1:], "exit_code": code,
           "separate_seconds": round(separate, 3), "batch_seconds": round(wall, 3),
           "separate_shots_per_hour": round(args.shots * 3600 / separate, 1),
           "batch_shots_per_hour": round(args.shots * 3600 / wall, 1), "ratio": round(separate / wall, 3)}
    if code == 0:
        summary = json.loads((tmp / "shots.summary.json").read_text())
        row["ok"] = summary["ok"]
    return row


def run_once(args: argparse.Namespace) -> dict:
    """One timed run of ``args.mode``; the JSON line's fields."""
    with tempfile.TemporaryDirectory(prefix="pw-bench-") as tmp:
        tmp = Path(tmp)
        if args.clip is not None:  # written earlier with --write-clip: no PNG encoding here
            fdir, mdir = args.clip / "frames", args.clip / "masks"
        else:
            fdir, mdir = write_clip(tmp / "clip", args.frames, args.height, args.width, args.source)
        runner = {"process": run_process, "reference": run_reference, "inprocess": run_inprocess,
                  "batch": run_batch}[args.mode]
        row = runner(args, fdir, mdir, tmp)
    head = {"name": args.name, "precision": args.precision, "scratch": args.scratch, "width": args.width,
            "height": args.height, "frames": args.frames,
            "clip": str(args.clip or args.source or "generated")}
    return {**head, **row, **_machine()}


def _lengths(args: argparse.Namespace, argv: list[str]) -> list[dict]:
    """One subprocess per clip length (peak memory is per process)."""
    rows = []
    for n in [int(x) for x in args.lengths.split(",")]:
        cmd = [sys.executable, __file__, *argv]
        i = cmd.index("--lengths")
        cmd[i:i + 2] = ["--frames", str(n)]
        out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    return rows


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=("inprocess", "process", "reference", "batch"), default="inprocess",
                   help="what is timed (see above)")
    p.add_argument("--name", default=None, help="a label copied into the JSON line")
    p.add_argument("--engine", default="classic", choices=("classic", "propainter"))
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto", help="ours: any --precision; the reference: fp16 or fp32")
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--lengths", default=None, help="comma-separated frame counts, one subprocess each (in-process)")
    p.add_argument("--width", type=int, default=432)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--source", type=Path, default=None, help="folder with frames/ and masks/ to scale")
    p.add_argument("--clip", type=Path, default=None,
                   help="a clip written earlier with --write-clip (its own size and length are reported; "
                        "--width/--height/--frames are ignored)")
    p.add_argument("--write-clip", type=Path, default=None, help="only write the clip (frames/, masks/) here")
    p.add_argument("--ref", type=Path, default=None, help="checkout of the reference ProPainter (--mode reference)")
    p.add_argument("--weights-dir", type=Path, default=None, help="real checkpoints (default: stand-ins)")
    p.add_argument("--neighbor-length", type=int, default=10)
    p.add_argument("--subvideo-length", type=int, default=80)
    p.add_argument("--raft-iters", type=int, default=20)
    p.add_argument("--scratch", default="auto", choices=("auto", "memory", "disk"),
                   help="where whole-clip arrays live (disk: host memory flat with length)")
    p.add_argument("--overwrite", action="store_true",
                   help="run with --overwrite (every frame decoded before the engine starts: an A/B of streaming)")
    p.add_argument("--keep-output", type=Path, default=None, help="copy our output frames here (for compare.py)")
    p.add_argument("--shots", type=int, default=4, help="--mode batch: shots (each the same clip)")
    p.add_argument("--workers", type=int, default=1,
                   help="--mode batch: batch workers, each on --device (cpu,cpu or cuda:0,cuda:0: the overhead of "
                        "sharing one device); the separate processes run one at a time on --device")
    p.add_argument("--timeout", type=float, default=None, help="seconds before a timed process is killed")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.write_clip is not None:
        write_clip(args.write_clip, args.frames, args.height, args.width, args.source)
        return 0
    if args.mode == "reference" and args.ref is None:
        build_parser().error("--mode reference needs --ref")
    if args.lengths:
        print(json.dumps(_lengths(args, argv)))
        return 0
    if args.workers < 1:
        build_parser().error("--workers must be >= 1")
    if args.clip is not None:  # the JSON line reports the clip's real size and length, not the flags'
        args.frames, args.height, args.width = clip_size(args.clip)
    row = run_once(args)
    print(json.dumps(row))
    return 0 if row.get("exit_code", 0) == 0 and not row.get("error") else 1


if __name__ == "__main__":
    sys.exit(main())
