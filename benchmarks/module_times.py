"""GPU time per network module and per hot function over one engine run (CUDA events).

    PYTHONPATH=src python benchmarks/module_times.py --width 1280 --height 720 --frames 40 --source DIR

A benchmark aid for finding where a stage's time goes: a warm-up run, then a second
run with a CUDA event recorded before and after every module forward (to ``--depth``
levels of module names) and around a few functional hot spots (fold/unfold, grid
sampling, attention, the correlation lookup, the deformable convolution). Times are
GPU time between the two events, summed per name; nested names overlap. CUDA graphs
are off in this run (events cannot be recorded inside a replayed graph), so RAFT's
figures are eager ones. Prints a table per network plus the stage wall times.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))


class EventLog:
    """Start/stop CUDA event pairs per name; ``totals()`` syncs once and sums milliseconds."""

    def __init__(self) -> None:
        import torch

        self.torch = torch
        self.pairs: list[tuple[str, object, object]] = []
        self.open: dict[str, list] = collections.defaultdict(list)

    def start(self, name: str) -> None:
        event = self.torch.cuda.Event(enable_timing=True)
        event.record()
        self.open[name].append(event)

    def stop(self, name: str) -> None:
        event = self.torch.cuda.Event(enable_timing=True)
        event.record()
        self.pairs.append((name, self.open[name].pop(), event))

    def totals(self) -> dict[str, tuple[int, float]]:
        self.torch.cuda.synchronize()
        out: dict[str, list] = collections.defaultdict(lambda: [0, 0.0])
        for name, a, b in self.pairs:
            out[name][0] += 1
            out[name][1] += a.elapsed_time(b)
        return {k: (v[0], v[1]) for k, v in out.items()}


def attach_modules(log: EventLog, net, prefix: str, depth: int) -> None:
    for name, module in net.named_modules():
        if not name or name.count(".") >= depth:
            continue
        full = f"{prefix}.{name}"
        module.register_forward_pre_hook(lambda m, a, full=full: log.start(full))
        module.register_forward_hook(lambda m, a, o, full=full: log.stop(full))


def wrap_function(log: EventLog, owner, attr: str, name: str) -> None:
    original = getattr(owner, attr)

    def timed(*args, **kwargs):
        log.start(name)
        try:
            return original(*args, **kwargs)
        finally:
            log.stop(name)

    setattr(owner, attr, timed)


def main() -> int:
    import os

    os.environ["PROPAINTER_WIRE_CUDA_GRAPHS"] = "0"
    import torch
    import torch.nn.functional as F

    from profile_engine import engine_and_input
    from propainter_wire.flow import corr as corr_mod
    from propainter_wire.models import deform as deform_mod
    from propainter_wire.pipeline.stages import Stages

    p = argparse.ArgumentParser()
    p.add_argument("--precision", default="fp16")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--source", type=Path, default=None)
    p.add_argument("--depth", type=int, default=3, help="module name levels timed (dots + 1)")
    p.add_argument("--min-ms", type=float, default=5.0, help="rows below this total are left out")
    args = p.parse_args()

    engine, inp, config = engine_and_input(args, "cuda")
    engine.run(inp, config, Stages())  # warm-up
    torch.cuda.synchronize()
    plain = Stages()
    start = time.perf_counter()
    engine.run(inp, config, plain)
    torch.cuda.synchronize()
    plain_seconds = time.perf_counter() - start

    log = EventLog()
    for prefix, net in (("raft", engine.models.raft), ("fc", engine.models.flow_completion),
                        ("inp", engine.models.inpainter)):
        attach_modules(log, net, prefix, args.depth)
    for attr in ("fold", "unfold", "grid_sample", "scaled_dot_product_attention", "interpolate", "layer_norm"):
        wrap_function(log, F, attr, f"F.{attr}")
    wrap_function(log, corr_mod.AllPairsCorr, "__call__", "corr.lookup")
    wrap_function(log, corr_mod.AllPairsCorr, "from_pairs", "corr.build_pairs")
    wrap_function(log, corr_mod.AllPairsCorr, "from_features", "corr.build_one")
    wrap_function(log, corr_mod.LocalCorr, "__call__", "corr.local_lookup")
    from propainter_wire.models import flow_completion as fc_mod
    from propainter_wire.models import inpainter as inp_mod

    for owner in (deform_mod, fc_mod, inp_mod):
        wrap_function(log, owner, "modulated_deform_conv2d", "deform_conv")
    timed = Stages()
    start = time.perf_counter()
    engine.run(inp, config, timed)
    torch.cuda.synchronize()
    timed_seconds = time.perf_counter() - start
    totals = log.totals()

    print(json.dumps({"plain_seconds": round(plain_seconds, 3),
                      "plain_stages": {k: round(v, 3) for k, v in plain.seconds.items()},
                      "timed_seconds": round(timed_seconds, 3),
                      "timed_stages": {k: round(v, 3) for k, v in timed.seconds.items()}}))
    print(f"{'name':<58} {'calls':>7} {'total_ms':>10} {'ms/call':>9}")
    for name, (calls, ms) in sorted(totals.items(), key=lambda kv: kv[0]):
        if ms >= args.min_ms:
            print(f"{name:<58} {calls:>7} {ms:>10.1f} {ms / calls:>9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main() or 0)
