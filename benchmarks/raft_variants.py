"""A/B of RAFT's bidirectional flows on a GPU: chunking, correlation storage, memory format.

    PYTHONPATH=src python benchmarks/raft_variants.py --width 1280 --height 720 --frames 17 --source DIR

Deterministic weights, fp16 autocast with precast weights (the engine's fp16 mode) unless
``--precision fp32``. Each variant runs three times with its own CUDA-graph cache (the
first call is eager, the second records); the last call is timed. Prints one JSON line
per variant: ms per pair (both directions), peak GPU memory, and the largest and mean
flow difference from the first variant.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

VARIANTS = {
    "base": {},
    "cl": {"channels_last": True},
    "pairs2_half": {"pairs_per_chunk": 2, "corr_dtype": "fp16"},
    "pairs2_half_cl": {"pairs_per_chunk": 2, "corr_dtype": "fp16", "channels_last": True},
    "pairs4_half_cl": {"pairs_per_chunk": 4, "corr_dtype": "fp16", "channels_last": True, "budget_gib": 12},
    "pairs2": {"pairs_per_chunk": 2, "budget_gib": 8},
    "pairs4_cl": {"pairs_per_chunk": 4, "budget_gib": 16, "channels_last": True},
    "local4": {"corr": "local", "pairs_per_chunk": 4},
    "local4_fp32gather": {"corr": "local", "pairs_per_chunk": 4, "local_fp32": True},
    "nographs": {"graphs": False},
    "pairs4": {"pairs_per_chunk": 4},
    "pairs8": {"pairs_per_chunk": 8},
    "pairs16": {"pairs_per_chunk": 16},
    # convolution epilogues in cuDNN (the engine's default: "1"), the update block's only, the library layers
    "cl_fused": {"channels_last": True, "fused": "1"},
    "cl_update": {"channels_last": True, "fused": "update"},
    "cl_lib": {"channels_last": True, "fused": "0"},
}


def main() -> int:
    import torch

    from bench import _source_clip, _texture_clip
    from propainter_wire.engines.propainter import _convs_channels_last, _raft_budget_bytes, _signed
    from propainter_wire.flow import raft as raft_mod
    from propainter_wire.flow.raft import bidirectional_flows
    from propainter_wire.runtime.cuda_graph import GraphCache
    from propainter_wire.runtime.precision import precast_for_autocast
    from propainter_wire.testing import write_deterministic_checkpoints
    from propainter_wire.weights import RAFT_FILE, load_raft

    p = argparse.ArgumentParser()
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--frames", type=int, default=17)
    p.add_argument("--source", type=Path, default=None)
    p.add_argument("--precision", choices=("fp16", "fp32"), default="fp16")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--rounds", type=int, default=1, help="run the variant list this many times (interleaved A/B)")
    p.add_argument("--profile", action="store_true",
                   help="also print each variant's top GPU kernels of one eager call (torch.profiler)")
    args = p.parse_args()

    clip = _source_clip(args.source, args.frames, args.height, args.width)[0] if args.source else \
        _texture_clip(args.frames, args.height, args.width)
    dev = torch.device("cuda")
    frames = _signed(torch.from_numpy(clip).to(dev))
    with tempfile.TemporaryDirectory() as tmp:
        path = write_deterministic_checkpoints(tmp) / RAFT_FILE
        nets = {fmt: load_raft(path).to(dev).eval() for fmt in ("nchw", "cl")}
    half = args.precision == "fp16"
    for net in nets.values():
        if half:
            precast_for_autocast(net, torch.float16)
    _convs_channels_last(nets["cl"].update_block)
    default_budget = _raft_budget_bytes(dev, args.height, args.width)
    real_build_corr = raft_mod.build_corr
    reference = None
    for name in args.variants.split(",") * args.rounds:
        v = VARIANTS[name]
        net = nets["cl" if v.get("channels_last") else "nchw"]
        net.use_fused_epilogues(v.get("fused", "1"))
        kwargs = {"budget_bytes": int(v["budget_gib"] * 2**30) if "budget_gib" in v else default_budget,
                  "corr_dtype": torch.float16 if v.get("corr_dtype") == "fp16" else torch.float32}
        for key in ("pairs_per_chunk", "corr"):
            if key in v:
                kwargs[key] = v[key]
        graphs = GraphCache(enabled=v.get("graphs", True))
        raft_mod.build_corr = real_build_corr
        if v.get("local_fp32"):  # the local lookup gathering float32 features (as before fp16 gathering)
            raft_mod.build_corr = lambda *a, **k: real_build_corr(*a, **{**k, "local_dtype": torch.float32})
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        try:
            with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=half):
                for _ in range(3):
                    torch.cuda.synchronize()
                    start = time.perf_counter()
                    f, b = bidirectional_flows(net, frames, iters=20, graphs=graphs, **kwargs)
                    torch.cuda.synchronize()
                    seconds = time.perf_counter() - start
            flows = torch.cat((f, b)).float()
        except RuntimeError as exc:
            print(json.dumps({"variant": name, "failed": str(exc).splitlines()[0][:200]}), flush=True)
            continue
        finally:
            graphs.close()
        if args.profile:
            _print_kernels(name, functools.partial(bidirectional_flows, net, frames, iters=20, graphs=None, **kwargs),
                           half)
        row = {"variant": name, "ms_per_pair": round(1000 * seconds / (args.frames - 1), 2),
               "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}
        if reference is None:
            reference = flows
        else:
            diff = (flows - reference).abs()
            row.update(max_diff=round(diff.max().item(), 4), mean_epe=round(diff.norm(dim=1).mean().item(), 5))
        print(json.dumps(row), flush=True)
    return 0


def _print_kernels(name: str, call, half: bool, rows: int = 30) -> None:
    """Top GPU kernels (total time, calls) of one eager ``call()``."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=half), \
            profile(activities=[ProfilerActivity.CUDA]) as prof:
        call()
        torch.cuda.synchronize()
    kernels: dict[str, list[float]] = {}
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            entry = kernels.setdefault(event.name[:90], [0.0, 0])
            entry[0] += event.device_time if hasattr(event, "device_time") else event.cuda_time
            entry[1] += 1
    total = sum(v[0] for v in kernels.values())
    print(f"# {name}: GPU kernel time {total / 1e3:.1f} ms in {sum(v[1] for v in kernels.values())} kernels")
    for kname, (us, calls) in sorted(kernels.items(), key=lambda kv: -kv[1][0])[:rows]:
        print(f"#   {us / 1e3:8.2f} ms {calls:6d}  {kname}")


if __name__ == "__main__":
    sys.exit(main() or 0)
