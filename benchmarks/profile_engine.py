"""Profile the propainter engine on a device: per-stage seconds and peak memory, top kernels.

    python benchmarks/profile_engine.py --device cuda --width 1280 --height 720 --frames 24 --precision fp16
Deterministic weights; the clip is bmx-trees scaled (``--source``) or a generated texture.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> int:

    from propainter_wire.pipeline.stages import Stages

    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda")
    p.add_argument("--precision", default="fp16")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--source", type=Path, default=None)
    p.add_argument("--profile", action="store_true", help="torch.profiler table of the second run")
    p.add_argument("--raft-chunk", type=int, default=None, help="frames handed to RAFT at once")
    p.add_argument("--sort", default="cuda_time_total", help="profiler table orders, comma-separated")
    p.add_argument("--rows", type=int, default=40, help="rows per profiler table")
    p.add_argument("--deform", choices=("auto", "sampled"), default="auto",
                   help="sampled: the grid_sample deformable convolution on every device (A/B on a GPU)")
    args = p.parse_args()
    if args.deform == "sampled":
        from propainter_wire.models import deform

        deform.SAMPLED_DEVICE_TYPES = frozenset({"cpu", "cuda"})

    engine, inp, config = engine_and_input(args, args.device)
    engine.raft_chunk_frames = args.raft_chunk
    cold = Stages()
    start = time.perf_counter()
    engine.run(inp, config, cold)  # warm-up: kernels, allocator, cuDNN choices
    _sync()
    print(json.dumps({"cold_seconds": round(time.perf_counter() - start, 3),
                      "cold_stages": {k: round(v, 3) for k, v in cold.seconds.items()}}))
    stages = Stages()
    start = time.perf_counter()
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        stages = _profiled_stages()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            engine.run(inp, config, stages)
            _sync()
        averages = prof.key_averages()
        # per stage: wall (CPU total of the range) against GPU kernel time launched inside it
        print("stage        wall_ms   gpu_ms   gpu/wall")
        for row in averages:
            if row.key.startswith("stage:"):
                gpu = getattr(row, "device_time_total", None) or getattr(row, "cuda_time_total", 0)
                print(f"{row.key[6:]:<12} {row.cpu_time_total / 1e3:8.1f} {gpu / 1e3:8.1f} "
                      f"{gpu / max(1.0, row.cpu_time_total):8.2f}")
        for key in args.sort.split(","):
            print(averages.table(sort_by=key, row_limit=args.rows, max_name_column_width=70))
    else:
        engine.run(inp, config, stages)
        _sync()
    print(json.dumps({"seconds": round(time.perf_counter() - start, 3),
                      "stages": {k: round(v, 3) for k, v in stages.seconds.items()},
                      "peak_gib": {k: round(v / 2**30, 2) for k, v in stages.gpu_peak_bytes.items()},
                      "frames": args.frames, "size": [args.width, args.height], "precision": args.precision}))
    return 0


def engine_and_input(args, device: str):
    """The engine (deterministic weights, ``args.precision``) and the prepared clip of ``args``
    (``source``, ``frames``, ``height``, ``width``: bmx-trees scaled, or a generated texture)."""
    from bench import _source_clip, _texture_clip, _wire_masks
    from propainter_wire.api import prepare_engine_input
    from propainter_wire.config import InpaintConfig
    from propainter_wire.engines.propainter import ProPainterEngine
    from propainter_wire.weights import write_deterministic_checkpoints

    if args.source:
        clip, masks = _source_clip(args.source, args.frames, args.height, args.width)
    else:
        clip, masks = _texture_clip(args.frames, args.height, args.width), _wire_masks(args.frames, args.height,
                                                                                        args.width)
    config = InpaintConfig(precision=args.precision)
    inp = prepare_engine_input(list(clip), list(masks), config)
    with tempfile.TemporaryDirectory() as tmp:
        engine = ProPainterEngine(write_deterministic_checkpoints(tmp), device=device, precision=args.precision)
    return engine, inp, config


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _profiled_stages():
    """A ``Stages`` that also marks each stage as a profiler range (``stage:<name>``)."""
    import contextlib

    import torch

    from propainter_wire.pipeline.stages import Stages

    class ProfiledStages(Stages):
        @contextlib.contextmanager
        def __call__(self, name: str, total: int | None = None):
            with torch.profiler.record_function(f"stage:{name}"), super().__call__(name, total) as bar:
                yield bar

    return ProfiledStages()


if __name__ == "__main__":
    sys.exit(main() or 0)
