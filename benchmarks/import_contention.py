"""How long ``import torch`` takes while other threads of the same process work beside it.

    python benchmarks/import_contention.py --clip CLIP [CASE ...]

Each CASE is ``MODE,THREADS,SWITCH_INTERVAL`` and runs in a fresh interpreter: ``THREADS`` threads
loop over ``MODE`` while the main thread imports torch at ``sys.setswitchinterval(SWITCH_INTERVAL)``.
Modes: ``none`` (the import alone), ``imread`` (``cv2.imread`` of the clip's PNG frames, as the
decoding threads of a run do), ``alloc`` (2.7 MB arrays allocated and filled: page faults),
``python`` (a pure-Python loop: a thread that holds the interpreter lock until asked for it).
One line per case: the mode, threads, switch interval, the import's seconds and the loop's count.
The figures of benchmarks/RESULTS.md came from ``--rounds 1`` with the default cases.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

DEFAULT_CASES = ("none,0,0.005", "imread,16,0.005", "imread,4,0.005", "alloc,16,0.005",
                 "python,1,0.005", "python,1,0.0005")

_CASE = r'''
import glob, sys, threading, time
mode, n, interval, clip = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
import cv2
import numpy as np
files = sorted(glob.glob(clip + "/frames/*.png"))
state = {"stop": False, "count": 0}

def loop():
    i = 0
    while not state["stop"]:
        if mode == "imread":
            cv2.imread(files[i % len(files)], cv2.IMREAD_UNCHANGED)
        elif mode == "alloc":
            np.empty((720, 1280, 3), np.uint8).fill(1)
        elif mode == "python":
            total = 0
            for k in range(20000):
                total += k
        i += 1
        state["count"] += 1

workers = [threading.Thread(target=loop, daemon=True) for _ in range(0 if mode == "none" else n)]
for w in workers:
    w.start()
sys.setswitchinterval(interval)
t = time.perf_counter()
import torch  # noqa: F401
seconds = time.perf_counter() - t
state["stop"] = True
print(f"{mode} {n} si {interval} import_torch {seconds:.3f} items {state['count']}")
'''


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clip", required=True, help="a folder with frames/*.png (bench.py --write-clip)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("cases", nargs="*", default=list(DEFAULT_CASES))
    args = p.parse_args()
    for _ in range(args.rounds):
        for case in args.cases:
            mode, threads, interval = case.split(",")
            done = subprocess.run([sys.executable, "-c", _CASE, mode, threads, interval, args.clip],
                                  capture_output=True, text=True)
            print(done.stdout.strip() or f"{case}: failed: {done.stderr.strip()[-300:]}", flush=True)


if __name__ == "__main__":
    main()
