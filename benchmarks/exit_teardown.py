"""How long a process that holds a CUDA context takes to end after ``os._exit``, by GPU memory held.

    python benchmarks/exit_teardown.py [--rounds 3] [--sizes 0,8,24]

Each case runs in a fresh interpreter: it makes the context, allocates SIZE GiB in 256-MiB blocks
(0: the context alone), touches them, and then either ends at once (``exit``) or first hands the
blocks back to the driver (``free``: ``torch.cuda.empty_cache()``, timed). The child writes its wall
clock just before ``os._exit``; the parent reads the clock again once ``wait`` returns. The difference
is what the operating system and the driver take to tear the process down, which a command's user
waits for after its last output is written. One JSON line per case.
Set ``PYTHONPYCACHEPREFIX`` where the machine's Python has no bytecode for torch (every case imports it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

_CASE = r'''
import json, os, sys, time
import torch
size_gib, variant = float(sys.argv[1]), sys.argv[2]
block = 256 * 2**20
torch.zeros(1, device="cuda")
held = [torch.empty(block, dtype=torch.uint8, device="cuda") for _ in range(int(size_gib * 2**30 // block))]
for b in held:
    b.fill_(1)
torch.cuda.synchronize()
row = {"reserved_gib": round(torch.cuda.memory_reserved() / 2**30, 3)}
if variant == "free":
    began = time.perf_counter()
    held.clear()
    torch.cuda.empty_cache()
    torch.cuda.synchronize()
    row["free_s"] = round(time.perf_counter() - began, 4)
print(json.dumps(row))
print(repr(time.time()), flush=True)
os._exit(0)
'''


def run_case(size_gib: float, variant: str) -> dict:
    child = subprocess.Popen([sys.executable, "-c", _CASE, str(size_gib), variant], stdout=subprocess.PIPE, text=True)
    out, _ = child.communicate()
    ended = time.time()
    lines = out.strip().splitlines()
    if child.returncode != 0 or len(lines) < 2:
        return {"size_gib": size_gib, "variant": variant, "failed": child.returncode}
    row = json.loads(lines[0])
    row.update(size_gib=size_gib, variant=variant, teardown_s=round(ended - float(lines[1]), 4))
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--sizes", default="0,8,24", help="GiB held, comma-separated")
    args = p.parse_args(argv)
    sizes = [float(x) for x in args.sizes.split(",")]
    for _ in range(args.rounds):
        for size in sizes:
            for variant in ("exit", "free") if size > 0 else ("exit",):
                print(json.dumps(run_case(size, variant)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
