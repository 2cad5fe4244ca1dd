"""One sparse-transformer block of the inpainter at a frame size: GPU time of its parts and top kernels.

    PYTHONPATH=src python benchmarks/block_probe.py --width 1280 --height 720 --frames 18 --local 11

A benchmark aid for the transformer stage (about 70 ms of GPU time per 720p window, eight
blocks of 9 ms). Deterministic weights, fp16 autocast with precast weights, one window's
tokens (``--frames`` frames, the first ``--local`` of them local) and a wire-like mask
(two thin bands, about a fifth of the attention windows masked). Prints per-part
milliseconds (CUDA events, median of ``--repeats``) and the profiler's top kernels.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> int:
    import torch

    from propainter_wire.models.inpainter import InpaintGenerator
    from propainter_wire.models.patches import (
        fold_linear,
        fold_patches,
        linear_on_patches,
        patch_coverage,
        patch_grid,
        unfold_patches,
    )
    from propainter_wire.runtime.precision import precast_for_autocast
    from propainter_wire.testing import det_state_dict

    p = argparse.ArgumentParser()
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--frames", type=int, default=18)
    p.add_argument("--local", type=int, default=11)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--rows", type=int, default=25)
    p.add_argument("--device", default="cuda", help="cpu: wall time instead of CUDA events")
    p.add_argument("--fp32", action="store_true", help="float32, no autocast (default: fp16 on a GPU, bf16 on the CPU)")
    args = p.parse_args()
    dev = torch.device(args.device)
    half = torch.float32 if args.fp32 else torch.float16 if dev.type == "cuda" else torch.bfloat16
    net = InpaintGenerator()
    net.load_state_dict(det_state_dict(net))
    net = net.to(dev).eval()
    if not args.fp32:
        precast_for_autocast(net, half)
    block = net.transformers.transformer[0]
    h, w = args.height // 4, args.width // 4
    gh, gw = patch_grid((h, w), (7, 7), (3, 3), (3, 3))  # InpaintGenerator.patch
    gen = torch.Generator(device=dev).manual_seed(0)
    x = torch.randn(1, args.frames, gh, gw, 512, device=dev, generator=gen, dtype=half)
    mask = torch.zeros(1, args.local, gh, gw, 1, device=dev, dtype=half)
    mask[:, :, gh // 3:gh // 3 + 2] = 1  # a horizontal wire
    mask[:, :, :, (2 * gw) // 3:(2 * gw) // 3 + 2] = 1  # a vertical one
    frames = slice(0, None, 2)

    def timed(fn, repeats: int) -> float:
        if dev.type == "cpu":
            import time

            start = time.perf_counter()
            for _ in range(repeats):
                fn()
            return (time.perf_counter() - start) * 1e3 / repeats
        times = []
        for _ in range(repeats):
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            times.append(start.elapsed_time(stop))
        return sorted(times)[len(times) // 2]

    with torch.inference_mode(), torch.autocast(dev.type, dtype=half, enabled=not args.fp32):
        windows = block.attention.masked_windows(mask)
        n_windows = windows[0].numel() + windows[1].numel()
        normed = block.norm1(x)
        b, t = x.shape[:2]
        flat = x.reshape(b, t * gh * gw, 512)
        geometry = {"kernel": (7, 7), "stride": (3, 3), "padding": (3, 3)}
        per_frame = flat.view(b * t, gh * gw, 512)

        def mlp_rows():  # the feed-forward as token rows (fc1, fold, unfold, fc2): the earlier form, for A/B
            hidden = block.mlp.fc1(per_frame)
            coverage = fold_patches(hidden.new_ones(1, gh * gw, 49), (h, w), **geometry)
            merged = fold_patches(hidden, (h, w), **geometry) / coverage
            return block.mlp.fc2(unfold_patches(merged, **geometry))

        def mlp_conv(channels_last: bool):  # fc2 as a convolution too (the CPU's form), optionally NHWC throughout
            fc1, fc2 = block.mlp.fc1[0], block.mlp.fc2[1]
            merged = fold_linear(per_frame, (gh, gw), fc1.weight, fc1.bias, (h, w), **geometry)
            mixed = torch.nn.functional.gelu(merged / patch_coverage((h, w), **geometry, device=dev, dtype=half))
            if not channels_last:
                return linear_on_patches(mixed, fc2.weight, fc2.bias, **geometry)
            mixed = mixed.contiguous(memory_format=torch.channels_last)
            weight = fc2.weight.view(512, -1, 7, 7).contiguous(memory_format=torch.channels_last)
            out = torch.nn.functional.conv2d(mixed, weight, fc2.bias, stride=3, padding=3)
            return out.permute(0, 2, 3, 1).reshape(b * t, -1, 512)

        feats = torch.randn(b * t, 128, h, w, device=dev, generator=gen, dtype=half)
        ss, sc = net.ss, net.sc
        parts = {
            "block": lambda: block(x, (h, w), mask, frames, windows=windows),
            "norm1": lambda: block.norm1(x),
            "attention": lambda: block.attention(normed, mask, frames, windows=windows),
            "mlp": lambda: block.mlp(flat, (h, w)),
            "mlp_rows": mlp_rows,
            "mlp_conv": lambda: mlp_conv(False),
            "mlp_conv_cl": lambda: mlp_conv(True),
            "ss": lambda: ss(feats, b, (h, w)),
            "ss_rows": lambda: ss.embedding(unfold_patches(feats, **geometry)),
            "sc": lambda: sc(x, (h, w)),
            "sc_rows": lambda: sc.bias_conv(fold_patches(sc.embedding(x.view(b * t, gh * gw, 512)), (h, w),
                                                         **geometry)),
        }
        for fn in parts.values():  # warm-up
            fn()
        result = {name: round(timed(fn, args.repeats), 3) for name, fn in parts.items()}
        print(json.dumps({"size": [args.width, args.height], "tokens": [args.frames, gh, gw],
                          "masked_windows": int(windows[0].numel()), "windows": n_windows, "ms": result}))
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CUDA if dev.type == "cuda" else ProfilerActivity.CPU]) as prof:
            for _ in range(3):
                block(x, (h, w), mask, frames, windows=windows)
            if dev.type == "cuda":
                torch.cuda.synchronize()
    order = "self_device_time_total" if dev.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=order, row_limit=args.rows,
                                    max_name_column_width=90))
    return 0


if __name__ == "__main__":
    sys.exit(main())
