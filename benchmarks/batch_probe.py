"""Batching independent work on small frames: transformer windows, and both flow-completion directions.

    PYTHONPATH=src python benchmarks/batch_probe.py --width 432 --height 240

A benchmark aid for launch-bound clips. At 432x240 every stage but RAFT waits on kernel
launches (GPU busy a quarter of the wall time), so running several independent pieces of
work as one batch should cost about the time of one. This measures it, warm, on
deterministic weights:

- the inpainter's ``forward_features`` on ``G`` windows (``--frames`` frames, the first
  ``--local`` local, a wire-like mask) one after another against one batch of ``G``;
- the flow-completion network's two directions over ``--flows`` flows, one call each
  against one batch of two (chunked in time as the engine does, within 2 GiB).

Wall milliseconds (synchronised, median of ``--repeats``) per window / per pair of
directions, and the largest difference between the batched and the separate results.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def _timed(fn, repeats: int, sync) -> float:
    """Median wall milliseconds of ``fn()`` (synchronised before and after)."""
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> int:
    import torch

    from propainter_wire.engines.propainter import _convs_channels_last
    from propainter_wire.models.flow_completion import RecurrentFlowCompleteNet
    from propainter_wire.models.inpainter import InpaintGenerator
    from propainter_wire.runtime.precision import precast_for_autocast
    from propainter_wire.testing import det_state_dict

    p = argparse.ArgumentParser()
    p.add_argument("--width", type=int, default=432)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--frames", type=int, default=18)
    p.add_argument("--local", type=int, default=11)
    p.add_argument("--groups", default="1,2,4,8", help="windows per batch to try")
    p.add_argument("--flows", type=int, default=79)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cuda")
    args = p.parse_args()
    dev = torch.device(args.device)
    half = torch.float16 if dev.type == "cuda" else torch.bfloat16
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    height, width = args.height, args.width
    gen = torch.Generator(device=dev).manual_seed(0)
    report: dict = {"size": [width, height], "device": str(dev), "dtype": str(half)}

    net = InpaintGenerator()
    net.load_state_dict(det_state_dict(net))
    net = net.to(dev).eval()
    precast_for_autocast(net, half)
    t, n_local = args.frames, args.local

    def window_inputs(batch: int):
        feats = torch.randn(batch, t, 128, height // 4, width // 4, device=dev, generator=gen).to(half)
        flows = torch.randn(batch, n_local - 1, 2, height, width, device=dev, generator=gen)
        masks = torch.zeros(batch, t, 1, height, width, device=dev)
        masks[..., height // 3:height // 3 + 8, :] = 1  # a horizontal wire
        masks[..., :, (2 * width) // 3:(2 * width) // 3 + 8] = 1  # a vertical one
        return feats, flows, -flows, masks, masks.clone()

    windows = {}
    with torch.inference_mode(), torch.autocast(dev.type, dtype=half):
        biggest = max(int(g) for g in args.groups.split(","))
        feats, ff, fb, m_in, m_upd = window_inputs(biggest)
        singles = [net.forward_features(feats[i:i + 1], ff[i:i + 1], fb[i:i + 1], m_in[i:i + 1], m_upd[i:i + 1],
                                        n_local) for i in range(biggest)]
        for group in (int(g) for g in args.groups.split(",")):
            def separate(g=group):
                for i in range(g):
                    net.forward_features(feats[i:i + 1], ff[i:i + 1], fb[i:i + 1], m_in[i:i + 1], m_upd[i:i + 1],
                                         n_local)

            def batched(g=group):
                return net.forward_features(feats[:g], ff[:g], fb[:g], m_in[:g], m_upd[:g], n_local)

            batched()  # new shapes: plans and kernels before timing
            out = batched()
            diff = max((out[i].float() - singles[i][0].float()).abs().max().item() for i in range(group))
            windows[group] = {"separate_ms_per_window": round(_timed(separate, args.repeats, sync) / group, 2),
                              "batched_ms_per_window": round(_timed(batched, args.repeats, sync) / group, 2),
                              "max_abs_diff": diff}
            print(f"windows x{group}: {windows[group]}", flush=True)
    report["windows"] = windows

    fc = RecurrentFlowCompleteNet()
    fc.load_state_dict(det_state_dict(fc))
    fc = fc.to(dev, half).eval()
    # chunked like the engine (its 2 GiB stage budget): unchunked 720p x 79 flows overflows an upsampling kernel
    fc.frames_per_chunk = max(4, fc.frames_for_budget(height, width, 2 * 2**30, half))
    if dev.type == "cuda":
        _convs_channels_last(fc)  # as the engine does in half precision on a GPU
    flows_f = torch.randn(1, args.flows, 2, height, width, device=dev, generator=gen).to(half)
    flows_b = torch.randn(1, args.flows, 2, height, width, device=dev, generator=gen).to(half)
    masks = torch.zeros(1, args.flows + 1, 1, height, width, device=dev, dtype=half)
    masks[..., height // 3:height // 2, width // 3:width // 2] = 1
    with torch.inference_mode():
        def apart():
            return (fc.complete_direction(flows_f, masks[:, :-1]),
                    fc.complete_direction(flows_b, masks[:, 1:], backward=True))

        def together():
            return fc.complete_both(flows_f, masks[:, :-1], flows_b, masks[:, 1:])

        a, b = apart()
        together()
        c, d = together()
        diff = max((a - c).abs().max().item(), (b - d).abs().max().item())
        report["flow_completion"] = {"flows": args.flows,
                                     "separate_ms": round(_timed(apart, args.repeats, sync), 2),
                                     "batched_ms": round(_timed(together, args.repeats, sync), 2),
                                     "max_abs_diff_px": diff}
        print(f"flow completion: {report['flow_completion']}", flush=True)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
