"""Where a run's time goes: a cold and a warm ``propainter_wire.inpaint`` run, the warm one profiled.

    PYTHONPATH=src python benchmarks/profile_engine.py --device cuda --precision fp16 \\
        --width 1280 --height 720 --frames 24 --source .devcarry/data/bmx-trees [--rows 40]

Both runs use one clip and stand-in weights (unless ``--weights-dir``) in one process: the
first pays CUDA module loading and cuDNN plans (what a fresh process pays), the second runs
under ``torch.profiler``. Prints a JSON line per run (seconds, stages) and the profiler's
table of the costliest ops and kernels (``--sort`` keys, comma-separated). For the start of
a fresh process (imports, CUDA context) use ``suite.sh coldstart`` instead.
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
    from torch.profiler import ProfilerActivity, profile

    import propainter_wire
    from bench import _stand_in_weights, write_clip

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--source", type=Path, default=None, help="folder with frames/ and masks/ (default: generated)")
    p.add_argument("--engine", default="propainter", choices=("propainter", "classic"))
    p.add_argument("--device", default="cuda")
    p.add_argument("--precision", default="fp16")
    p.add_argument("--weights-dir", type=Path, default=None)
    p.add_argument("--sort", default="cuda_time_total", help="profiler table orders, comma-separated")
    p.add_argument("--rows", type=int, default=40, help="rows per profiler table")
    p.add_argument("--copies", action="store_true",
                   help="also: the copies and casts (aten::copy_) grouped by the package's calling lines")
    p.add_argument("--gaps", action="store_true", help="also: where the GPU idles between kernels (warm run)")
    args = p.parse_args()
    gpu = torch.cuda.is_available() and args.device != "cpu"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
    with tempfile.TemporaryDirectory(prefix="pw-prof-") as tmp:
        tmp = Path(tmp)
        fdir, mdir = write_clip(tmp / "clip", args.frames, args.height, args.width, args.source)
        weights = args.weights_dir
        if args.engine == "propainter" and weights is None:
            weights = _stand_in_weights(tmp / "weights")

        def run(name: str) -> dict:
            start = time.perf_counter()
            report = propainter_wire.inpaint(fdir, mdir, tmp / name, engine=args.engine, weights_dir=weights,
                                             device=args.device, precision=args.precision, quiet=True)
            return {"run": name, "seconds": round(time.perf_counter() - start, 3), "stages": report["seconds"]}

        print(json.dumps(run("cold")))
        stacks = {}
        if args.copies:  # Python stacks are recorded only with the verbose experimental config
            from torch._C._profiler import _ExperimentalConfig

            stacks = {"with_stack": True, "experimental_config": _ExperimentalConfig(verbose=True)}
        with profile(activities=activities, **stacks) as prof:
            print(json.dumps(run("warm")))
    averages = prof.key_averages()
    for key in args.sort.split(","):
        key = key if gpu or not key.startswith("cuda") else "cpu_time_total"
        print(averages.table(sort_by=key, row_limit=args.rows, max_name_column_width=70))
    if args.copies:
        print_copies(prof, args.rows)
    if args.gaps and gpu:
        print_gaps(prof, args.rows)
    return 0


def _device_us(event) -> float:
    return getattr(event, "device_time_total", 0.0)


def print_copies(prof, rows: int) -> None:
    """``aten::copy_`` (every ``.to``, cast and layout change) by the calling lines of this package
    (device time where there is a device, else CPU time)."""
    from collections import defaultdict

    table = defaultdict(lambda: [0.0, 0])
    for event in prof.events():
        if event.name != "aten::copy_":
            continue
        ours = [frame.split("propainter_wire/")[-1] for frame in event.stack if "propainter_wire/" in frame][:3]
        entry = table[" < ".join(ours) or "(outside the package)"]
        entry[0] += _device_us(event) or event.cpu_time_total
        entry[1] += 1
    ranked = sorted(((us, count, where) for where, (us, count) in table.items()), reverse=True)
    print(f"-- aten::copy_ by caller: {sum(r[0] for r in ranked) / 1e3:.1f} ms")
    for us, count, where in ranked[:rows]:
        print(f"{us / 1e3:9.2f} ms {count:6d} x  {where}")


def print_gaps(prof, rows: int) -> None:
    """GPU idle time between kernels and copies of the warm run: the total and the longest gaps."""
    from torch.autograd import DeviceType

    spans = sorted((e.time_range.start, e.time_range.end, e.name) for e in prof.events()
                   if e.device_type == DeviceType.CUDA)
    if not spans:
        return
    gaps, end, before = [], spans[0][1], spans[0][2]
    for start, stop, name in spans[1:]:
        if start > end:
            gaps.append((start - end, (end - spans[0][0]) / 1e6, before, name))
        if stop > end:
            end, before = stop, name
    idle = sum(g[0] for g in gaps)
    span = (end - spans[0][0]) / 1e6
    long = [g[0] for g in gaps if g[0] >= 1000]
    print(f"-- GPU idle: {idle / 1e6:.3f} s of {span:.3f} s from the first kernel to the last "
          f"({len(long)} gaps of 1 ms or more, {sum(long) / 1e6:.3f} s)")
    for us, at, before, after in sorted(gaps, reverse=True)[:rows]:
        print(f"{us / 1e3:8.2f} ms at {at:7.3f} s  after {before[:60]}  before {after[:60]}")


if __name__ == "__main__":
    sys.exit(main())
