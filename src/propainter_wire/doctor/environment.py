"""What ``doctor`` reports about the installation: library versions, the CUDA stack, the GPUs.

Every function here only looks (files under ``/proc``, loaded libraries, package metadata,
torch's queries) and never raises: what cannot be found is ``None`` or "not available".
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import importlib.metadata
import importlib.util
import os
import platform
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .io_stack import io_stack
from .selftests import one_line


def module_version(module: str, attr: str = "__version__") -> str:
    """``module.<attr>`` as text, or "not available (...)" when it cannot be imported."""
    try:
        return str(getattr(importlib.import_module(module), attr))
    except Exception as exc:
        return f"not available ({type(exc).__name__}: {exc})"


def dist_version(*names: str) -> str | None:
    """The installed version of the first distribution of ``names`` found (None: none installed)."""
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return importlib.metadata.version(name)
    return None


def versions() -> dict[str, str]:
    """Python, the platform, this package and the libraries it uses: name -> version text."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "propainter_wire": dist_version("propainter-wire") or "unknown",
        "torch": torch.__version__,
        "torchvision": module_version("torchvision"),
        "numpy": np.__version__,
        "opencv": module_version("cv2"),
        "pyav": module_version("av"),
        "tqdm": module_version("tqdm"),
        **io_stack(),
    }


def cudnn_version() -> str | None:
    """cuDNN's version as ``major.minor.patch`` (None: no cuDNN)."""
    try:
        v = torch.backends.cudnn.version()
    except Exception:
        return None
    if not v:
        return None
    if v >= 90000:  # cuDNN 9: major*10000 + minor*100 + patch
        return f"{v // 10000}.{v % 10000 // 100}.{v % 100}"
    return f"{v // 1000}.{v % 1000 // 100}.{v % 100}"


def loaded_libs(pattern: str) -> list[str]:
    """Paths of loaded shared libraries whose file name contains ``pattern`` (Linux only)."""
    try:
        text = Path("/proc/self/maps").read_text()
    except OSError:
        return []
    paths = {line.split(None, 5)[5] for line in text.splitlines() if len(line.split(None, 5)) == 6}
    return sorted(p for p in paths if pattern in Path(p).name)


def cublas_version(path: str) -> str | None:
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


def bundled_lib_dirs() -> list[str]:
    """Folders where torch's own CUDA libraries live (torch/lib, the pip nvidia/* wheels)."""
    dirs = [str(Path(torch.__file__).parent / "lib")]
    spec = importlib.util.find_spec("nvidia")
    for base in (spec.submodule_search_locations or []) if spec else []:
        dirs.append(str(Path(base)))
    return dirs


def driver() -> dict[str, str | None]:
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


def gpus() -> list[dict[str, Any]]:
    """One dict per visible CUDA device: name, compute capability, memory and free memory (GiB)."""
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
            entry["error"] = one_line(exc)
        gpus.append(entry)
    return gpus


def cuda_section() -> dict[str, Any]:
    """torch's CUDA runtime, cuDNN, the bundled cuBLAS, ``CUDA_VISIBLE_DEVICES`` and the driver.

    ``cublas_loaded`` starts empty: libcublas loads with the first GEMM, after the self-tests.
    """
    section: dict[str, Any] = {
        "torch_cuda": torch.version.cuda,
        "available": torch.cuda.is_available(),
        "device_count": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "cudnn": cudnn_version(),
        "cublas_bundled": dist_version("nvidia-cublas", "nvidia-cublas-cu13", "nvidia-cublas-cu12",
                                       "nvidia-cublas-cu11"),
        "cublas_loaded": [],
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
    section.update(driver())
    return section


def version_tuple(text: str | None) -> tuple[int, ...] | None:
    """``'12.4.1'`` -> ``(12, 4)``; None for no or unparsable text."""
    if not text:
        return None
    with contextlib.suppress(ValueError):
        return tuple(int(p) for p in text.split(".")[:2])
    return None


def cpu_bf16_native() -> bool:
    """Whether oneDNN has native bf16 on this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
