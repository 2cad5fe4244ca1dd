"""What is alive on the GPU at a run's peak: allocations grouped by the code that made them.

    PYTHONPATH=src python benchmarks/memory_peak.py --width 1280 --height 720 --frames 240 \
        --source .devcarry/data/bmx-trees --precision fp16

Records the CUDA caching allocator's history over one ``propainter_wire.inpaint`` run
(stand-in weights unless ``--weights-dir``), replays it to find the moment of the largest
allocated total, and prints the live blocks at that moment grouped by the innermost frame
of this package in their allocation stack (MiB, count, file:line function), with the run's
per-stage peaks from its report. GPU only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _origin(frames: list[dict]) -> str:
    """The innermost frame of propainter_wire in an allocation stack (else the innermost Python frame)."""
    for frame in frames:
        name = frame.get("filename", "")
        if "propainter_wire" in name:
            return f"{name.split('propainter_wire/')[-1]}:{frame.get('line')} {frame.get('name')}"
    for frame in frames:
        if frame.get("filename", "").endswith(".py"):
            return f"{Path(frame['filename']).name}:{frame.get('line')} {frame.get('name')}"
    return "?"


def peak_report(trace: list[dict], top: int) -> dict:
    """Replay allocator events: the peak total and the live blocks then, grouped by origin."""
    live: dict[int, dict] = {}
    total = peak = 0
    at_peak: list[dict] = []
    for event in trace:
        action = event["action"]
        if action == "alloc":
            live[event["addr"]] = event
            total += event["size"]
            if total > peak:
                peak = total
                at_peak = list(live.values())
        elif action in ("free_requested",) and event["addr"] in live:
            total -= live.pop(event["addr"])["size"]
    groups: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for block in at_peak:
        key = _origin(block.get("frames", []))
        groups[key][0] += block["size"] / 2**20
        groups[key][1] += 1
    rows = sorted(groups.items(), key=lambda kv: -kv[1][0])[:top]
    return {"peak_gib": round(peak / 2**30, 3),
            "top": [{"mib": round(mib, 1), "count": count, "where": where} for where, (mib, count) in rows]}


def main() -> int:
    import tempfile

    import torch

    import propainter_wire
    from bench import _stand_in_weights, write_clip

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--frames", type=int, default=80)
    p.add_argument("--source", type=Path, default=None, help="folder with frames/ and masks/ (default: generated)")
    p.add_argument("--precision", default="fp16")
    p.add_argument("--device", default="cuda")
    p.add_argument("--weights-dir", type=Path, default=None)
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="pw-mem-") as tmp:
        tmp = Path(tmp)
        fdir, mdir = write_clip(tmp / "clip", args.frames, args.height, args.width, args.source)
        weights = args.weights_dir or _stand_in_weights(tmp / "weights")
        torch.cuda.memory._record_memory_history(max_entries=3_000_000, stacks="python")
        run = propainter_wire.inpaint(fdir, mdir, tmp / "out", engine="propainter", weights_dir=weights,
                                      device=args.device, precision=args.precision, quiet=True)
        torch.cuda.synchronize()
        snapshot = torch.cuda.memory._snapshot()
        torch.cuda.memory._record_memory_history(enabled=None)
    report = peak_report(snapshot["device_traces"][0], args.top)
    report.update(frames=args.frames, size=[args.width, args.height], precision=args.precision,
                  max_allocated_gib=round(torch.cuda.max_memory_allocated() / 2**30, 3),
                  peak_gib_per_stage={k: round(v / 2**30, 2)
                                      for k, v in run.get("peak_gpu_bytes_per_stage", {}).items()})
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main() or 0)
