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
    add_clip_arguments(p, frames=24)
    p.add_argument("--profile", action="store_true", help="torch.profiler table of the second run")
    p.add_argument("--raft-chunk", type=int, default=None, help="frames handed to RAFT at once")
    p.add_argument("--sort", default="cuda_time_total", help="profiler table orders, comma-separated")
    p.add_argument("--rows", type=int, default=40, help="rows per profiler table")
    p.add_argument("--stage-kernels", type=int, default=0,
                   help="per stage: GPU busy time and its N costliest kernels (from the profiled run)")
    p.add_argument("--deform", choices=("auto", "sampled"), default="auto",
                   help="sampled: the grid_sample deformable convolution on every device (A/B on a GPU)")
    p.add_argument("--cold-diff", type=int, default=0,
                   help="profile the cold and the warm run: the N ops whose CPU time the cold run adds most, "
                        "and the distinct input shapes each convolution op saw")
    args = p.parse_args()
    if args.cold_diff:
        return cold_diff(args)
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
        if args.stage_kernels:
            print(stage_kernel_report(prof.events(), args.stage_kernels))
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


def cold_diff(args) -> int:
    """What a fresh process pays that a warm one does not: both runs profiled (CPU ops, shapes),
    then per op the self CPU time of the cold run against the warm one, and per convolution op
    the number of distinct input shapes (each new shape costs cuDNN a plan)."""
    from torch.profiler import ProfilerActivity, profile

    engine, inp, config = engine_and_input(args, args.device)
    tables = {}
    for name in ("cold", "warm"):
        stages = _profiled_stages()
        start = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            engine.run(inp, config, stages)
            _sync()
        tables[name] = prof
        print(json.dumps({name: round(time.perf_counter() - start, 3),
                          "stages": {k: round(v, 3) for k, v in stages.seconds.items()}}))
    cold = {row.key: row for row in tables["cold"].key_averages()}
    warm = {row.key: row for row in tables["warm"].key_averages()}
    added = sorted(((row.self_cpu_time_total - (warm[key].self_cpu_time_total if key in warm else 0.0), key,
                     row.count) for key, row in cold.items()), reverse=True)
    print("ms added (self CPU, cold - warm)   calls  op")
    for extra, key, count in added[:args.cold_diff]:
        print(f"{extra / 1e3:10.1f} {count:8d}  {key[:90]}")
    by_shape = tables["cold"].key_averages(group_by_input_shape=True)
    shapes: dict[str, int] = {}
    for row in by_shape:
        if "conv" in row.key or "deform" in row.key or "scaled_dot" in row.key:
            shapes[row.key] = shapes.get(row.key, 0) + 1
    print("distinct input shapes in the cold run:", json.dumps(dict(sorted(shapes.items(), key=lambda kv: -kv[1]))))
    return 0


def add_clip_arguments(p: argparse.ArgumentParser, frames: int) -> None:
    """The options :func:`engine_and_input` reads: device, precision, clip size, length and source."""
    p.add_argument("--device", default="cuda")
    p.add_argument("--precision", default="fp16")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--frames", type=int, default=frames)
    p.add_argument("--source", type=Path, default=None)


def engine_and_input(args, device: str):
    """The engine (deterministic weights, ``args.precision``) and the prepared clip of ``args``
    (``source``, ``frames``, ``height``, ``width``: bmx-trees scaled, or a generated texture)."""
    from bench import _source_clip, _texture_clip, _wire_masks
    from propainter_wire.api import prepare_engine_input
    from propainter_wire.config import InpaintConfig
    from propainter_wire.engines.propainter import ProPainterEngine
    from propainter_wire.testing import write_deterministic_checkpoints

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


def stage_kernel_report(events, top: int) -> str:
    """Per ``stage:<name>`` range: wall, GPU busy (union of kernel intervals that start inside it),
    the busy share, and the ``top`` kernels by summed duration (ms, count, name)."""
    import torch

    cuda = torch.autograd.DeviceType.CUDA
    stages = sorted((e for e in events if e.name.startswith("stage:") and e.device_type != cuda),
                    key=lambda e: e.time_range.start)
    kernels = sorted((e for e in events if e.device_type == cuda and not e.name.startswith("stage:")),
                     key=lambda e: e.time_range.start)
    lines = []
    for stage in stages:
        start, end = stage.time_range.start, stage.time_range.end
        inside = [k for k in kernels if start <= k.time_range.start < end]
        busy, reach = 0.0, start
        for k in inside:  # union of intervals, in start order
            s0, e0 = max(k.time_range.start, reach), k.time_range.end
            if e0 > s0:
                busy += e0 - s0
            reach = max(reach, e0)
        wall = end - start
        lines.append(f"== {stage.name[6:]}: wall {wall / 1e3:.1f} ms, GPU busy {busy / 1e3:.1f} ms "
                     f"({busy / max(wall, 1.0):.2f}), {len(inside)} kernels")
        totals: dict[str, list[float]] = {}
        for k in inside:
            entry = totals.setdefault(k.name, [0.0, 0])
            entry[0] += k.time_range.end - k.time_range.start
            entry[1] += 1
        for name, (dur, count) in sorted(totals.items(), key=lambda kv: -kv[1][0])[:top]:
            lines.append(f"   {dur / 1e3:9.2f} ms {count:6d}  {name[:110]}")
    return "\n".join(lines)


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
