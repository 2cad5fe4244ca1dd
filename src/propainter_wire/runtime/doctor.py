"""``propainter-wire doctor``: what is installed, what the GPU can do, what to fix.

``collect_report`` gathers library versions, the CUDA stack (runtime, cuDNN,
cuBLAS, driver), the GPUs, and runs self-tests on the selected device: GEMM and
batched GEMM per precision (plus a RAFT-sized all-pairs correlation at 720p on a
GPU), SDPA backends, convolution, ``grid_sample``, ``deform_conv2d``, cuDNN's fused
convolution + ReLU (GPU) and a tiny
end-to-end run of the three networks with random weights. Every test reports
``pass``, ``fail`` (with the error text) or ``skipped`` (with the reason).

Exit code (``doctor_command``): 0 when every test of the selected path (the GPU
when one is visible, else the CPU) passes or is skipped, 1 when one fails.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import re
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
import torch.nn.functional as F

from .device import primitive_cases, relative_error, resolve_device, run_case, tf32_disabled
from .precision import PrecisionPolicy, cuda_bf16_native, resolve_precision

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
        from ..flow.raft import fused_conv_relu_check

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


def _one_line(exc: BaseException) -> str:
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
            entry["status"], entry["detail"] = "fail", _one_line(exc)
        finally:
            if device.type == "cuda":
                with contextlib.suppress(Exception):
                    torch.cuda.empty_cache()
        entry["seconds"] = round(time.perf_counter() - start, 3)
        results.append(entry)
    return results


# ---------------------------------------------------------------------------
# environment
# ---------------------------------------------------------------------------
def _module_version(module: str, attr: str = "__version__") -> str:
    try:
        return str(getattr(importlib.import_module(module), attr))
    except Exception as exc:
        return f"not available ({type(exc).__name__}: {exc})"


def _dist_version(*names: str) -> str | None:
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return importlib.metadata.version(name)
    return None


def _versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "propainter_wire": _dist_version("propainter-wire") or "unknown",
        "torch": torch.__version__,
        "torchvision": _module_version("torchvision"),
        "numpy": np.__version__,
        "opencv": _module_version("cv2"),
        "pyav": _module_version("av"),
        "tqdm": _module_version("tqdm"),
    }


def _cudnn_version() -> str | None:
    try:
        v = torch.backends.cudnn.version()
    except Exception:
        return None
    if not v:
        return None
    if v >= 90000:  # cuDNN 9: major*10000 + minor*100 + patch
        return f"{v // 10000}.{v % 10000 // 100}.{v % 100}"
    return f"{v // 1000}.{v % 1000 // 100}.{v % 100}"


def _loaded_libs(pattern: str) -> list[str]:
    """Paths of loaded shared libraries whose file name contains ``pattern`` (Linux only)."""
    try:
        text = Path("/proc/self/maps").read_text()
    except OSError:
        return []
    paths = {line.split(None, 5)[5] for line in text.splitlines() if len(line.split(None, 5)) == 6}
    return sorted(p for p in paths if pattern in Path(p).name)


def _cublas_version(path: str) -> str | None:
    """Version reported by a loaded libcublas (``cublasGetProperty``), None when unknown."""
    try:
        lib = ctypes.CDLL(path)
        parts = []
        for prop in range(3):  # MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL
            value = ctypes.c_int()
            if lib.cublasGetProperty(prop, ctypes.byref(value)) != 0:
                return None
            parts.append(str(value.value))
        return ".".join(parts)
    except Exception:
        return None


def _bundled_lib_dirs() -> list[str]:
    """Folders where torch's own CUDA libraries live (torch/lib, the pip nvidia/* wheels)."""
    dirs = [str(Path(torch.__file__).parent / "lib")]
    spec = importlib.util.find_spec("nvidia")
    for base in (spec.submodule_search_locations or []) if spec else []:
        dirs.append(str(Path(base)))
    return dirs


def _driver() -> dict[str, str | None]:
    """The NVIDIA kernel driver version and the highest CUDA version it supports."""
    info: dict[str, str | None] = {"driver": None, "driver_cuda": None}
    with contextlib.suppress(OSError):
        text = Path("/proc/driver/nvidia/version").read_text()
        found = re.search(r"Kernel Module(?: for [\w-]+)?\s+([\d.]+)", text)
        found = found or re.search(r"\b(\d{3,}\.\d+(?:\.\d+)?)\b", text)
        info["driver"] = found.group(1) if found else None
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        value = ctypes.c_int()
        with contextlib.suppress(Exception):
            if lib.cuDriverGetVersion(ctypes.byref(value)) == 0 and value.value:
                info["driver_cuda"] = f"{value.value // 1000}.{value.value % 1000 // 10}"
        break
    return info


def _gpus() -> list[dict[str, Any]]:
    if not torch.cuda.is_available():
        return []
    gpus = []
    for i in range(torch.cuda.device_count()):
        entry: dict[str, Any] = {"index": i}
        try:
            props = torch.cuda.get_device_properties(i)
            entry.update(name=props.name, compute_capability=f"{props.major}.{props.minor}",
                         memory_gib=round(props.total_memory / 2**30, 2),
                         multiprocessors=props.multi_processor_count)
            free, _ = torch.cuda.mem_get_info(i)
            entry["free_gib"] = round(free / 2**30, 2)
        except Exception as exc:
            entry["error"] = _one_line(exc)
        gpus.append(entry)
    return gpus


def _cuda_section() -> dict[str, Any]:
    section: dict[str, Any] = {
        "torch_cuda": torch.version.cuda,
        "available": torch.cuda.is_available(),
        "device_count": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "cudnn": _cudnn_version(),
        "cublas_bundled": _dist_version("nvidia-cublas", "nvidia-cublas-cu13", "nvidia-cublas-cu12",
                                        "nvidia-cublas-cu11"),
        "cublas_loaded": [],
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
    section.update(_driver())
    return section


def _version_tuple(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    with contextlib.suppress(ValueError):
        return tuple(int(p) for p in text.split(".")[:2])
    return None


def _advice(report: dict[str, Any]) -> list[str]:
    cuda, tests = report["cuda"], report["tests"]
    lines = []
    if cuda["torch_cuda"] is None:
        lines.append("this torch build is CPU-only: install a CUDA build of torch to use an NVIDIA GPU "
                     "(the CPU path works but is slow)")
    elif not cuda["available"]:
        if cuda["driver"] is None and cuda["driver_cuda"] is None:
            lines.append(f"torch is built for CUDA {cuda['torch_cuda']} but no NVIDIA driver was found")
        else:
            lines.append(f"no CUDA device visible (CUDA_VISIBLE_DEVICES={cuda['cuda_visible_devices']!r})")
    built, driver = _version_tuple(cuda["torch_cuda"]), _version_tuple(cuda["driver_cuda"])
    if built and driver and built > driver:
        if built[0] > driver[0]:
            lines.append(f"torch is built for CUDA {cuda['torch_cuda']} but the driver supports CUDA up to "
                         f"{cuda['driver_cuda']}: update the NVIDIA driver or install a torch build for CUDA "
                         f"{driver[0]}.x")
        else:
            lines.append(f"torch is built for CUDA {cuda['torch_cuda']}, newer than the driver's "
                         f"{cuda['driver_cuda']}: minor-version compatibility usually works; if kernels fail, "
                         "update the driver")
    bundled = _bundled_lib_dirs()
    loaded = [entry["path"] for entry in cuda["cublas_loaded"]]
    foreign = [p for p in loaded if not any(p.startswith(d) for d in bundled)]
    if foreign:
        lines.append(f"libcublas loaded from {', '.join(foreign)}, not torch's bundled copy: check LD_LIBRARY_PATH "
                     "/ LD_PRELOAD (a mismatched cuBLAS gives wrong GEMM results or CUBLAS_STATUS errors)")
    if len({Path(p).name for p in loaded}) > 1 or len(loaded) > 2:
        lines.append(f"several libcublas copies are loaded ({', '.join(loaded)})")
    failed = [t["name"] for t in tests if t["status"] == "fail"]
    if failed and report["selected_device"].startswith("cuda"):
        only_low = all(any(tag in n for tag in ("tf32", "fp16", "bf16")) for n in failed)
        hint = ("use --precision fp32" if only_low else
                "`--device auto` falls back to the CPU; check the advice above or reinstall torch")
        lines.append(f"GPU self-tests failed ({', '.join(failed)}): {hint}")
    elif failed:
        lines.append(f"self-tests failed on the CPU ({', '.join(failed)}): the installation looks broken; "
                     "reinstall propainter-wire and torch")
    for gpu in report["gpus"]:
        if gpu.get("memory_gib") is not None and gpu["memory_gib"] < 6:
            lines.append(f"GPU {gpu['index']} has {gpu['memory_gib']} GiB: use --max-side 720 or smaller "
                         "for long clips")
        cap = _version_tuple(gpu.get("compute_capability"))
        if cap and cap[0] < 8:
            lines.append(f"GPU {gpu['index']} has no native bf16: --precision auto uses fp16 there")
    if report["selected_device"] == "cpu" and _cpu_bf16_native():
        lines.append("this CPU computes bf16 natively: --precision bf16 runs the propainter engine about 1.6x "
                     "faster than fp32 (about 58 dB PSNR to fp32 inside the masks; auto stays fp32)")
    return lines


def _cpu_bf16_native() -> bool:
    """Whether oneDNN has native bf16 on this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _select(device_name: str) -> tuple[torch.device, bool]:
    """(device the tests run on, whether a CUDA device is visible)."""
    gpu_present = torch.cuda.is_available() and torch.cuda.device_count() > 0
    if device_name.strip().lower() == "auto":
        return (torch.device("cuda", torch.cuda.current_device()) if gpu_present else torch.device("cpu")), gpu_present
    return resolve_device(device_name), gpu_present


def exit_code(report: dict[str, Any]) -> int:
    """0 when no test of the selected device failed, else 1."""
    return 1 if any(t["status"] == "fail" for t in report["tests"]) else 0


def collect_report(device_name: str = "auto") -> dict[str, Any]:
    """Everything ``doctor`` shows, as a JSON-able dict.

    Keys: ``versions``, ``cuda`` (torch CUDA runtime, cuDNN, cuBLAS bundled/loaded,
    driver and the CUDA version it supports), ``gpus``, ``selected_device``,
    ``precision_auto``, ``tests`` (see ``run_self_tests``), ``advice``, ``usable``, ``exit_code``.

    Raises:
        InputError: an explicit ``device_name`` that cannot be used (see ``resolve_device``).
    """
    device, gpu_present = _select(device_name)
    report: dict[str, Any] = {
        "versions": _versions(),
        "cuda": _cuda_section(),
        "gpus": _gpus(),
        "selected_device": str(device),
        "precision_auto": resolve_precision("auto", device).name,
    }
    report["tests"] = run_self_tests(device, gpu_present)
    # libcublas is loaded lazily by the first GEMM on a GPU: look after the tests
    report["cuda"]["cublas_loaded"] = [{"path": p, "version": _cublas_version(p)}
                                       for p in _loaded_libs("libcublas.") + _loaded_libs("libcublas-")]
    report["advice"] = _advice(report)
    report["exit_code"] = exit_code(report)
    report["usable"] = report["exit_code"] == 0
    return report


# ---------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------
def _rows(report: dict[str, Any]) -> list[tuple[str, list[tuple[str, ...]]]]:
    cuda = report["cuda"]
    loaded = "; ".join(f"{e['path']} ({e['version'] or '?'})" for e in cuda["cublas_loaded"]) or "not loaded"
    cuda_rows = [
        ("torch CUDA runtime", str(cuda["torch_cuda"] or "none (CPU-only build)")),
        ("CUDA available", f"{cuda['available']} ({cuda['device_count']} device(s))"),
        ("cuDNN", str(cuda["cudnn"] or "-")),
        ("cuBLAS bundled", str(cuda["cublas_bundled"] or "-")),
        ("cuBLAS loaded", loaded),
        ("driver", f"{cuda['driver'] or '-'} (CUDA {cuda['driver_cuda'] or '-'})"),
    ]
    gpu_rows = [(f"cuda:{g['index']}", g.get("name", g.get("error", "?")),
                 f"sm {g.get('compute_capability', '?')}",
                 f"{g.get('memory_gib', '?')} GiB ({g.get('free_gib', '?')} free)") for g in report["gpus"]]
    test_rows = [(t["name"], t["device"], t["status"].upper(), f"{t['seconds']:.2f}s", t["detail"])
                 for t in report["tests"]]
    return [
        ("Versions", list(report["versions"].items())),
        ("CUDA", cuda_rows),
        ("GPUs", gpu_rows or [("-", "no CUDA device")]),
        (f"Self-tests on {report['selected_device']}", test_rows),
    ]


def _summary(report: dict[str, Any]) -> str:
    where = report["selected_device"]
    if report["exit_code"] == 0:
        return f"OK: the {where} path is usable (--precision auto = {report['precision_auto']})"
    return f"PROBLEM: self-tests failed on {where}"


def render_text(report: dict[str, Any], stream: TextIO) -> None:
    """The human-readable report: ``rich`` tables when importable, plain text otherwise."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        Console = None  # noqa: N806
    if Console is not None:
        console = Console(file=stream, width=max(100, min(160, _width())), highlight=False)
        for title, rows in _rows(report):
            table = Table(title=title, title_justify="left", show_header=False)
            for _ in range(max(len(r) for r in rows)):
                table.add_column(overflow="fold")
            for row in rows:
                style = {"FAIL": "bold red", "PASS": "green", "SKIPPED": "dim"}.get(row[2] if len(row) > 2 else "")
                table.add_row(*row, style=style)
            console.print(table)
        for line in report["advice"]:
            console.print(f"advice: {line}", markup=False)
        console.print(_summary(report), markup=False, style="bold green" if report["exit_code"] == 0 else "bold red")
        return
    for title, rows in _rows(report):
        print(f"== {title}", file=stream)
        widths = [max(len(r[i]) for r in rows if len(r) > i) for i in range(max(len(r) for r in rows))]
        for row in rows:
            print("  " + "  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=False)) + "  " + row[-1],
                  file=stream)
    for line in report["advice"]:
        print(f"advice: {line}", file=stream)
    print(_summary(report), file=stream)


def _width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 120


def doctor_command(as_json: bool, device: str = "auto", stream: TextIO = sys.stdout) -> int:
    """``propainter-wire doctor [--json] [--device D]``: print the report, return the exit code.

    ``as_json`` prints the report as JSON only (nothing else on ``stream``).
    """
    report = collect_report(device)
    if as_json:
        print(json.dumps(report, indent=2, default=str), file=stream)
    else:
        render_text(report, stream)
    return int(report["exit_code"])
