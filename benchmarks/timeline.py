"""Where a whole run's wall time goes, stages and the glue between them.

    PYTHONPATH=src python benchmarks/timeline.py --clip DIR --precision fp16

A benchmark aid: bench.py's ``seconds`` exceeds the sum of its stage times (0.2 s at
432x240, 0.4 s at 720p on an H100). This runs ``propainter_wire.inpaint`` once on a clip
written by ``bench.py --write-clip`` (deterministic weights) and prints, in order, when each
stage and each wrapped function started and ended, in seconds from the run's start, and the
time not covered by any of them. Functions are wrapped for this process only.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# (module, attribute path) of the functions timed besides the stages
WRAPPED = (
    ("propainter_wire.api", "prepare_output_dir"),
    ("propainter_wire.api", "prepare_engine_input"),
    ("propainter_wire.api", "_EarlyWriter.close"),
    ("propainter_wire.api", "_write_frames"),
    ("propainter_wire.api", "_finish_manifest"),
    ("propainter_wire.api", "_fill_and_write"),
    ("propainter_wire.api", "_versions"),
    ("propainter_wire.api", "write_json"),
    ("propainter_wire.io.stream", "FrameStream.close"),
    ("propainter_wire.engines.propainter", "ProPainterEngine.run"),
    ("propainter_wire.engines.propainter", "ProPainterEngine.compute_flows"),
    ("propainter_wire.engines.propainter", "ProPainterEngine.complete_flows"),
    ("propainter_wire.engines.propainter", "ProPainterEngine.propagate"),
    ("propainter_wire.engines.propainter", "ProPainterEngine.synthesize"),
    ("propainter_wire.engines.propainter", "_FrameFiller.until"),
)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--clip", type=Path, required=True, help="folder with frames/ and masks/")
    p.add_argument("--precision", default="fp16")
    p.add_argument("--device", default="auto")
    args = p.parse_args()

    import propainter_wire
    from propainter_wire.pipeline.stages import Stages
    from propainter_wire.testing import write_deterministic_checkpoints

    events: list[tuple[str, float, float]] = []
    origin = [0.0]

    def timed(name: str, fn):
        @functools.wraps(fn)
        def wrapper(*a, **k):
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                events.append((name, start - origin[0], time.perf_counter() - origin[0]))
        return wrapper

    for module_name, path in WRAPPED:
        owner = importlib.import_module(module_name)
        *parents, attr = path.split(".")
        for part in parents:
            owner = getattr(owner, part)
        setattr(owner, attr, timed(path, getattr(owner, attr)))

    plain_call = Stages.__call__

    @contextlib.contextmanager
    def stage_call(self, name, total=None):
        start = time.perf_counter()
        with plain_call(self, name, total) as bar:
            yield bar
        events.append((f"stage:{name}", start - origin[0], time.perf_counter() - origin[0]))

    Stages.__call__ = stage_call
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        weights = write_deterministic_checkpoints(Path(tmp) / "weights")
        if torch.cuda.is_available():  # CUDA starts before the clock, as in bench.py and reference_driver.py
            torch.cuda.reset_peak_memory_stats()
        origin[0] = time.perf_counter()
        propainter_wire.inpaint(args.clip / "frames", args.clip / "masks", Path(tmp) / "out", engine="propainter",
                                weights_dir=weights, device=args.device, precision=args.precision, quiet=True)
        total = time.perf_counter() - origin[0]
    print(f"{'event':<42} {'start':>7} {'end':>7} {'secs':>7}")
    for name, start, end in sorted(events, key=lambda e: (e[1], -e[2])):
        print(f"{name:<42} {start:7.3f} {end:7.3f} {end - start:7.3f}")
    stage_spans = sorted((s, e) for n, s, e in events if n.startswith("stage:"))
    covered, reach = 0.0, 0.0
    for s, e in stage_spans:  # union of the stage intervals (stages may nest)
        s = max(s, reach)
        if e > s:
            covered += e - s
            reach = e
    print(f"total {total:.3f} s, inside stages {covered:.3f} s, outside {total - covered:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
