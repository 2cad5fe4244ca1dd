"""The ``doctor`` self-tests: small computations on the selected device checked against float64.

GEMM and batched GEMM per precision (plus a RAFT-sized all-pairs correlation at 720p on a
GPU), SDPA backends, convolution, ``grid_sample``, ``deform_conv2d``, cuDNN's fused
convolution + ReLU (GPU) and a tiny end-to-end run of the three networks with random
weights. Every test reports ``pass``, ``fail`` (with the error text) or ``skipped`` (with
the reason).
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..runtime.device import primitive_cases, relative_error, run_case, tf32_disabled
from ..runtime.precision import PrecisionPolicy, cuda_bf16_native, resolve_precision

NO_CUDA = "skipped: no CUDA device"
CPU_SELECTED = "skipped: CPU selected (--device cpu)"

# relative error accepted per dtype (max |got - ref| / max |ref|, reference float64 on the CPU)
TOLERANCE = {"fp32": 1e-4, "tf32": 1e-2, "fp16": 1e-2, "bf16": 3e-2}
DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class SkipTest(Exception):
    """Raised by a self-test that does not apply here; the message is the reason."""


class CheckFailed(Exception):
    """Raised by a self-test whose result is wrong; the message says how."""


@dataclass(frozen=True)
class SelfTest:
    """One self-test: ``fn(device)`` returns a short detail on success and raises otherwise."""

    name: str
    fn: Callable[[torch.device], str]
    gpu_only: bool = False


# ---------------------------------------------------------------------------
# self-tests
# ---------------------------------------------------------------------------
def _precision_context(tag: str) -> contextlib.AbstractContextManager:
    """TF32 on for ``tf32``, off for everything else."""
    return PrecisionPolicy(tag, allow_tf32=True).tf32_context() if tag == "tf32" else tf32_disabled()


def _gemm_test(op: str, tag: str) -> Callable[[torch.device], str]:
    """GEMM (``op='gemm'``, 512x384 @ 384x256) or batched GEMM (8x128x96 @ 8x96x128) in ``tag``."""

    def run(device: torch.device) -> str:
        if tag == "bf16" and device.type == "cuda" and not cuda_bf16_native(device):
            raise SkipTest("skipped: no native bf16 on this GPU")
        g = torch.Generator().manual_seed(1)
        shapes = ((512, 384), (384, 256)) if op == "gemm" else ((8, 128, 96), (8, 96, 128))
        a, b = (torch.randn(*s, generator=g) for s in shapes)
        fn = torch.matmul if op == "gemm" else torch.bmm
        with _precision_context(tag):
            failure = run_case((f"{op} {tag}", fn, (a, b)), device, DTYPES[tag], TOLERANCE[tag])
        if failure is not None:
            raise CheckFailed(failure)
        return f"{'x'.join(map(str, shapes[0]))} @ {'x'.join(map(str, shapes[1]))} within {TOLERANCE[tag]:g}"

    return run


def _allpairs_test(tag: str) -> Callable[[torch.device], str]:
    """RAFT's all-pairs correlation at 720p (1/8 scale: 90x160 = 14400 positions, 256 channels)."""

    def run(device: torch.device) -> str:
        if tag == "bf16" and not cuda_bf16_native(device):
            raise SkipTest("skipped: no native bf16 on this GPU")
        n, c = 14400, 256
        g = torch.Generator().manual_seed(2)
        fmap1, fmap2 = torch.randn(1, n, c, generator=g), torch.randn(1, c, n, generator=g)
        rows = torch.tensor([0, 1, 4095, 8191, 12345, n - 2, n - 1])
        with _precision_context(tag):
            out = torch.bmm(fmap1.to(device, DTYPES[tag]), fmap2.to(device, DTYPES[tag]))  # (1, 14400, 14400)
            torch.cuda.synchronize(device)
        if not bool(torch.isfinite(out).all()):
            raise CheckFailed("non-finite values in the result")
        ref = fmap1[0, rows].double() @ fmap2[0].double()  # (7, 14400)
        err = relative_error(out[0, rows.to(device)], ref)
        del out
        if not err <= TOLERANCE[tag]:
            raise CheckFailed(f"relative error {err:.3g} > {TOLERANCE[tag]:g} on sampled rows")
        return f"(1,{n},{c}) @ (1,{c},{n}) sampled rows within {TOLERANCE[tag]:g}"

    return run


_SDPA = {"flash": "FLASH_ATTENTION", "mem-efficient": "EFFICIENT_ATTENTION", "math": "MATH"}


def _sdpa_test(backend: str) -> Callable[[torch.device], str]:
    """``scaled_dot_product_attention`` forced onto one backend, against float64 attention."""

    def run(device: torch.device) -> str:
        try:
            from torch.nn.attention import SDPBackend, sdpa_kernel
        except ImportError as exc:
            raise SkipTest(f"skipped: torch.nn.attention unavailable ({exc})") from None
        if device.type != "cuda" and backend == "mem-efficient":
            raise SkipTest("skipped: no memory-efficient SDPA kernel on the CPU")
        tag = "fp16" if device.type == "cuda" and backend != "math" else "fp32"
        g = torch.Generator().manual_seed(3)
        q, k, v = (torch.randn(2, 4, 128, 64, generator=g) for _ in range(3))
        weights = torch.softmax(q.double() @ k.double().transpose(-2, -1) / math.sqrt(64), dim=-1)
        ref = weights @ v.double()
        try:
            with warnings.catch_warnings(), sdpa_kernel([getattr(SDPBackend, _SDPA[backend])]), tf32_disabled():
                warnings.simplefilter("ignore")
                out = F.scaled_dot_product_attention(*(t.to(device, DTYPES[tag]) for t in (q, k, v)))
        except RuntimeError as exc:
            if "No available kernel" in str(exc) or "No viable backend" in str(exc):
                raise SkipTest(f"skipped: backend not available here for {tag}") from None
            raise
        err = relative_error(out, ref)
        if not err <= TOLERANCE[tag]:
            raise CheckFailed(f"relative error {err:.3g} > {TOLERANCE[tag]:g}")
        return f"{tag} (2,4,128,64) within {TOLERANCE[tag]:g}"

    return run


def _primitive_test(name: str) -> Callable[[torch.device], str]:
    """One of ``device.primitive_cases`` in fp32 (TF32 off) against float64."""

    def run(device: torch.device) -> str:
        case = next(c for c in primitive_cases() if c[0] == name)
        with tf32_disabled():
            failure = run_case(case, device)
        if failure is not None:
            raise CheckFailed(failure)
        return "fp32 within 1e-4"

    return run


def _fused_conv_test(tag: str) -> Callable[[torch.device], str]:
    """cuDNN's fused convolution + bias + ReLU, which RAFT uses in half precision on a GPU."""

    def run(device: torch.device) -> str:
        from ..flow.fused_conv import fused_conv_relu_check

        dtype = torch.float16 if tag == "fp16" else torch.bfloat16
        problem = fused_conv_relu_check(device, dtype)
        if problem is not None:
            raise CheckFailed(f"{problem} (RAFT falls back to separate layers)")
        return f"{tag} within rounding of float64"

    return run


def _networks_test(device: torch.device) -> str:
    """RAFT -> flow completion -> propagation -> transformer on 3 frames of 64x64, random weights."""
    from ..config import InpaintConfig
    from ..engines.base import EngineInput
    from ..engines.propainter import ProPainterEngine, ProPainterModels
    from ..flow.raft import RAFT
    from ..models.flow_completion import RecurrentFlowCompleteNet
    from ..models.inpainter import InpaintGenerator
    from ..pipeline.stages import Stages

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        models = ProPainterModels(raft=RAFT(), flow_completion=RecurrentFlowCompleteNet(),
                                  inpainter=InpaintGenerator())
    for m in (models.raft, models.flow_completion, models.inpainter):
        m.to(device).eval().requires_grad_(False)
    policy = resolve_precision("auto", device)
    engine = ProPainterEngine(None, device=device, precision="auto", models=models)

    t, h, w = 3, 64, 64  # 64: the smallest size whose 1/8-scale RAFT pyramid has 4 levels
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = np.stack([np.stack([(xs + 3 * i) / (w + 12), ys / h, 0.5 + 0.4 * np.sin((xs + ys + 2 * i) / 7)], -1)
                       for i in range(t)]).astype(np.float32)  # (T, H, W, 3) in [0, 1]
    masks = np.zeros((t, h, w), bool)
    masks[:, 20:44, 24:40] = True
    inp = EngineInput(frames=frames, masks=masks, flow_masks=masks, raw_masks=masks)
    config = InpaintConfig(raft_iters=2, neighbor_length=6, ref_stride=2, subvideo_length=8)  # one window
    out = engine.run(inp, config, Stages(quiet=True))
    if out.shape != frames.shape:
        raise CheckFailed(f"output shape {out.shape} != {frames.shape}")
    if not np.isfinite(out).all() or out.min() < 0 or out.max() > 1:
        raise CheckFailed("output not finite or outside [0, 1]")
    outside = np.abs(out - frames)[~masks].max()
    if outside > 1.0 / 255 + 1e-6:
        raise CheckFailed(f"pixels outside the mask changed by {outside * 255:.1f} grey levels")
    return f"{t}x{h}x{w}, precision {policy.name}"


def self_tests() -> list[SelfTest]:
    """Every self-test, in the order they run and are reported."""
    tests = []
    for op in ("gemm", "bmm"):
        for tag in ("fp32", "tf32", "fp16", "bf16"):
            tests.append(SelfTest(f"{op} {tag}", _gemm_test(op, tag), gpu_only=tag in ("tf32", "fp16")))
    for tag in ("fp32", "tf32", "fp16", "bf16"):
        tests.append(SelfTest(f"bmm 720p all-pairs {tag}", _allpairs_test(tag), gpu_only=True))
    for backend in _SDPA:
        tests.append(SelfTest(f"sdpa {backend}", _sdpa_test(backend)))
    for name in ("conv2d", "grid_sample", "deform_conv2d"):
        tests.append(SelfTest(name, _primitive_test(name)))
    for tag in ("fp16", "bf16"):
        tests.append(SelfTest(f"cudnn fused conv+relu {tag}", _fused_conv_test(tag), gpu_only=True))
    tests.append(SelfTest("networks end-to-end", _networks_test))
    return tests



def one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first[:400]}" if not isinstance(exc, CheckFailed) else first[:400]


def run_self_tests(device: torch.device, gpu_present: bool,
                   tests: list[SelfTest] | None = None) -> list[dict[str, Any]]:
    """Run ``tests`` (default ``self_tests()``) on ``device``; one dict per test.

    Each dict: ``name``, ``device``, ``status`` (pass / fail / skipped), ``detail``, ``seconds``.
    GPU-only tests are skipped on the CPU with the reason.
    """
    results = []
    for test in tests if tests is not None else self_tests():
        entry: dict[str, Any] = {"name": test.name, "device": str(device), "status": "skipped", "detail": "",
                                 "seconds": 0.0}
        if test.gpu_only and device.type != "cuda":
            entry["detail"] = CPU_SELECTED if gpu_present else NO_CUDA
            results.append(entry)
            continue
        start = time.perf_counter()
        try:
            with torch.inference_mode():
                entry["detail"] = test.fn(device)
            entry["status"] = "pass"
        except SkipTest as exc:
            entry["detail"] = str(exc)
        except Exception as exc:  # a failing device stack is what we are looking for
            entry["status"], entry["detail"] = "fail", one_line(exc)
        finally:
            if device.type == "cuda":
                with contextlib.suppress(Exception):
                    torch.cuda.empty_cache()
        entry["seconds"] = round(time.perf_counter() - start, 3)
        results.append(entry)
    return results
