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
        with profile(activities=activities) as prof:
            print(json.dumps(run("warm")))
    averages = prof.key_averages()
    for key in args.sort.split(","):
        key = key if gpu or not key.startswith("cuda") else "cpu_time_total"
        print(averages.table(sort_by=key, row_limit=args.rows, max_name_column_width=70))
    return 0


if __name__ == "__main__":
    sys.exit(main())
