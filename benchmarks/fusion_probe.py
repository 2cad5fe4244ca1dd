"""Convolution + bias (+ ReLU) on a GPU: PyTorch's separate bias pass against cuDNN's fused kernel.

PyTorch's cuDNN convolution adds the bias in a second, broadcasting pass over the output
(and a ReLU is a third). ``torch.cudnn_convolution_relu`` asks cuDNN for one kernel. For
each layer shape this prints the first call (plan + kernel loading, ms), the warm time per
call and the difference from float32:

    python benchmarks/fusion_probe.py --shapes raft1080 --dtype fp16
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

# name: (N, C_in, H, W, C_out, kernel (kh, kw), stride)
SHAPES = {
    "raft1080": {
        "convc1 1x1": (1, 324, 136, 240, 256, (1, 1), 1),
        "convc2 3x3": (1, 256, 136, 240, 192, (3, 3), 1),
        "convf1 7x7": (1, 2, 136, 240, 128, (7, 7), 1),
        "convf2 3x3": (1, 128, 136, 240, 64, (3, 3), 1),
        "motion 3x3": (1, 256, 136, 240, 126, (3, 3), 1),
        "gru zr 1x5": (1, 256, 136, 240, 256, (1, 5), 1),
        "gru q 5x1": (1, 256, 136, 240, 128, (5, 1), 1),
        "head 3x3": (1, 128, 136, 240, 256, (3, 3), 1),
        "enc 1/2 3x3": (1, 64, 544, 960, 64, (3, 3), 1),
        "enc 1/4 3x3": (1, 96, 272, 480, 96, (3, 3), 1),
        "enc stem 7x7/2": (1, 3, 1088, 1920, 64, (7, 7), 2),
    },
    "raft720": {
        "convc2 3x3": (2, 256, 90, 160, 192, (3, 3), 1),
        "gru zr 1x5": (2, 256, 90, 160, 256, (1, 5), 1),
        "head 3x3": (2, 128, 90, 160, 256, (3, 3), 1),
        "convc1 1x1": (2, 324, 90, 160, 256, (1, 1), 1),
    },
}


def _time(fn, reps: int) -> tuple[float, float]:
    torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    first = time.perf_counter() - start
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    torch.cuda.synchronize()
    return first * 1e3, (time.perf_counter() - start) / reps * 1e3


def probe_layer(name: str, spec: tuple, dtype: torch.dtype, reps: int, gen: torch.Generator) -> dict:
    """One layer shape: each variant's first and warm call times (ms), and its error against float64."""
    n, cin, h, w, cout, kernel, stride = spec
    dev = torch.device("cuda")
    pad = (kernel[0] // 2, kernel[1] // 2)
    x = torch.randn(n, cin, h, w, device=dev, generator=gen).to(dtype).contiguous(memory_format=torch.channels_last)
    weight = (torch.randn(cout, cin, *kernel, device=dev, generator=gen) / (cin * kernel[0] * kernel[1]) ** 0.5)
    weight = weight.to(dtype).contiguous(memory_format=torch.channels_last)
    bias = torch.randn(cout, device=dev, generator=gen).to(dtype)
    exact = F.relu(F.conv2d(x.double(), weight.double(), bias.double(), stride, pad))
    row = {"layer": name, "shape": [n, cin, h, w, cout, list(kernel), stride]}

    def separate():
        return F.relu(F.conv2d(x, weight, bias, stride, pad), inplace=True)

    def no_bias():
        return F.conv2d(x, weight, None, stride, pad)

    def fused():
        return torch.cudnn_convolution_relu(x, weight, bias, (stride, stride), pad, (1, 1), 1)

    def gemm():  # a 1x1 convolution as one cuBLASLt GEMM with a bias + ReLU epilogue
        rows = x.permute(0, 2, 3, 1).reshape(-1, cin)
        out = torch._addmm_activation(bias, rows, weight.reshape(cout, cin).t())
        return out.view(n, h, w, cout).permute(0, 3, 1, 2)

    variants = [("separate", separate), ("conv_only", no_bias), ("fused", fused)]
    if kernel == (1, 1) and stride == 1:
        variants.append(("gemm", gemm))
    for label, fn in variants:
        try:
            first, warm = _time(fn, reps)
            out = fn()
            row[label] = {"first_ms": round(first, 2), "ms": round(warm, 4)}
            if label != "conv_only":
                row[label]["max_err"] = float((out.double() - exact).abs().max())
        except RuntimeError as exc:  # a shape cuDNN's fused engines refuse
            row[label] = {"error": str(exc).splitlines()[0][:160]}
    return row


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--shapes", default="raft1080", choices=sorted(SHAPES))
    p.add_argument("--dtype", default="fp16", choices=("fp16", "bf16"))
    p.add_argument("--reps", type=int, default=50)
    p.add_argument("--benchmark", action="store_true", help="torch.backends.cudnn.benchmark on")
    args = p.parse_args()
    torch.backends.cudnn.benchmark = args.benchmark
    dtype = torch.float16 if args.dtype == "fp16" else torch.bfloat16
    gen = torch.Generator(device="cuda").manual_seed(0)
    for name, spec in SHAPES[args.shapes].items():
        print(json.dumps(probe_layer(name, spec, dtype, args.reps, gen)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
