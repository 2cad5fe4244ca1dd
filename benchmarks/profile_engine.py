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
    import torch

    from bench import _source_clip, _texture_clip, _wire_masks
    from propainter_wire.api import prepare_engine_input
    from propainter_wire.config import InpaintConfig
    from propainter_wire.engines.propainter import ProPainterEngine
    from propainter_wire.pipeline.stages import Stages
    from propainter_wire.weights import write_deterministic_checkpoints

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
    args = p.parse_args()

    if args.source:
        clip, masks = _source_clip(args.source, args.frames, args.height, args.width)
    else:
        clip, masks = _texture_clip(args.frames, args.height, args.width), _wire_masks(args.frames, args.height,
                                                                                        args.width)
    config = InpaintConfig(precision=args.precision)
    inp = prepare_engine_input(list(clip), list(masks), config)
    with tempfile.TemporaryDirectory() as tmp:
        engine = ProPainterEngine(write_deterministic_checkpoints(tmp), device=args.device, precision=args.precision)
    engine.raft_chunk_frames = args.raft_chunk
    cold = Stages()
    start = time.perf_counter()
    engine.run(inp, config, cold)  # warm-up: kernels, allocator, cuDNN choices
    torch.cuda.synchronize()
    print(json.dumps({"cold_seconds": round(time.perf_counter() - start, 3),
                      "cold_stages": {k: round(v, 3) for k, v in cold.seconds.items()}}))
    stages = Stages()
    start = time.perf_counter()
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            engine.run(inp, config, stages)
            torch.cuda.synchronize()
        for key in args.sort.split(","):
            print(prof.key_averages().table(sort_by=key, row_limit=40, max_name_column_width=70))
    else:
        engine.run(inp, config, stages)
        torch.cuda.synchronize()
    print(json.dumps({"seconds": round(time.perf_counter() - start, 3),
                      "stages": {k: round(v, 3) for k, v in stages.seconds.items()},
                      "peak_gib": {k: round(v / 2**30, 2) for k, v in stages.gpu_peak_bytes.items()},
                      "frames": args.frames, "size": [args.width, args.height], "precision": args.precision}))
    return 0


if __name__ == "__main__":
    sys.exit(main() or 0)
