"""RAFT's frame encoders on a GPU: per-module time under cuDNN's heuristics and its autotuning.

    PYTHONPATH=src python benchmarks/encoder_probe.py --width 1280 --height 720

A benchmark aid (module_times.py showed fnet's first strided block taking 0.5 ms in one
run and 3-4 ms in others). Deterministic weights, fp16 autocast with precast weights.
Prints one JSON line per setting: total ms per frame of fnet and cnet and the slowest modules.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> int:
    import torch

    from module_times import EventLog, attach_modules
    from propainter_wire.runtime.precision import cudnn_autotune, precast_for_autocast
    from propainter_wire.testing import write_deterministic_checkpoints
    from propainter_wire.weights import RAFT_FILE, load_raft

    p = argparse.ArgumentParser()
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args()
    dev = torch.device("cuda")
    with tempfile.TemporaryDirectory() as tmp:
        raft = load_raft(write_deterministic_checkpoints(tmp) / RAFT_FILE, dev).eval()
    precast_for_autocast(raft, torch.float16)
    log = EventLog()
    attach_modules(log, raft.fnet, "fnet", 3)
    attach_modules(log, raft.cnet, "cnet", 1)
    for net, label in ((raft.fnet, "fnet"), (raft.cnet, "cnet")):
        net.register_forward_pre_hook(lambda m, a, label=label: log.start(label))
        net.register_forward_hook(lambda m, a, o, label=label: log.stop(label))
    images = torch.rand(2, 3, args.height, args.width, device=dev) * 2 - 1
    for name, tune, batch, pressure in (("heuristic_b1", False, 1, False), ("heuristic_b2", False, 2, False),
                                        ("after_pressure_b1", False, 1, True), ("tuned_b1", True, 1, False)):
        if pressure:  # a fragmented caching allocator, as after the other stages of a run
            blocks = [torch.empty(int(2**20 * (1 + (i % 7) * 13)), device=dev) for i in range(300)]
            del blocks[::2]
        log.pairs.clear()
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16), cudnn_autotune(tune):
            for _ in range(2):  # warm-up (and the autotuning)
                raft.fnet(images[:batch])
                raft.cnet(images[:batch])
            log.pairs.clear()
            for _ in range(args.repeats):
                raft.fnet(images[:batch])
                raft.cnet(images[:batch])
        totals = log.totals()
        per_frame = {k: round(ms / calls / batch, 3) for k, (calls, ms) in totals.items()}
        slowest = dict(sorted(((k, v) for k, v in per_frame.items() if k.count(".") >= 2),
                              key=lambda kv: -kv[1])[:6])
        print(json.dumps({"setting": name, "fnet_ms": per_frame.get("fnet"), "cnet_ms": per_frame.get("cnet"),
                          "slowest": slowest}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main() or 0)
