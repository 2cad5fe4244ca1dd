"""Where the engine's start-up goes in a fresh process: ``select_engine`` under cProfile.

    PYTHONPATH=src python benchmarks/load_probe.py --device cuda --rows 30

A benchmark aid: a run's ``load`` stage is the wait for the engine loader thread (imports,
networks, checkpoints, placing them on the device, the fused-convolution check), which runs
while the frames decode. Imports of torch and the package happen before the profile, as in a
timed run; CUDA is initialised first too (the benchmark tools do, to reset peak statistics).
cProfile sees the calling thread only: the flow-completion and inpainting checkpoints are
read on a thread of their own (on a GPU), so they show where they are placed.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> int:
    import torch

    import propainter_wire  # noqa: F401  (imported before the timer, as in a run)
    from propainter_wire.api import select_engine
    from propainter_wire.config import InpaintConfig
    from propainter_wire.runtime.device import resolve_device
    from propainter_wire.testing import write_deterministic_checkpoints

    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda")
    p.add_argument("--precision", default="fp16")
    p.add_argument("--rows", type=int, default=30)
    args = p.parse_args()
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()  # CUDA started, as bench.py does before its timer
    with tempfile.TemporaryDirectory() as tmp:
        weights = write_deterministic_checkpoints(tmp)
        config = InpaintConfig(engine="propainter", weights_dir=weights, device=args.device, precision=args.precision)
        device = resolve_device(config.device)
        profile = cProfile.Profile()
        start = time.perf_counter()
        profile.enable()
        select_engine(config, device)  # (the deferred checkpoints go on reading on their own thread)
        if args.device == "cuda":
            torch.cuda.synchronize()
        profile.disable()
        print(f"select_engine: {time.perf_counter() - start:.3f} s")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(args.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
