"""``report.json``: what a file run did, how long each stage took, its peak memory and the versions."""

from __future__ import annotations

import importlib.metadata
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

from ..config import InpaintConfig
from ..pipeline.compositing import processing_size
from ..pipeline.stages import Stages


def versions() -> dict:
    """Versions of this package, Python and the libraries that shape results (CUDA: None without it)."""
    import cv2
    import torch
    import torchvision

    from .. import __version__

    found = {"propainter_wire": __version__, "python": platform.python_version(), "torch": torch.__version__,
             "torchvision": torchvision.__version__, "numpy": np.__version__, "opencv": cv2.__version__}
    try:  # the package's metadata: importing PyAV only for its version took 35 ms
        found["av"] = importlib.metadata.version("av")
    except importlib.metadata.PackageNotFoundError:
        found["av"] = None
    found["cuda"] = torch.version.cuda
    return found


def peak_rss_bytes() -> int:
    """This process's peak resident memory in bytes (``ru_maxrss`` is in KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def build_report(video: Path, mask: Path, out_dir: Path, config: InpaintConfig, stages: Stages, start: float,
                 source, engine, device, needed: bool, written: int) -> dict:
    """The run's report.

    Args:
        source: the opened clip (size, sample type, frame rate).
        engine: the engine that ran, or None (every mask empty, or nothing to compute).
        needed: whether any frame had to be computed (False: a resumed run that was complete).
        written: frames written by this run.
        start: ``time.perf_counter()`` at the run's start.
    """
    return {
        "input": str(video), "mask": str(mask), "output": str(out_dir),
        "engine": engine.name if engine is not None else ("copy" if needed else "none"),
        "device": str(getattr(engine, "device", device)),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in config.__dict__.items()},
        "frames": len(source), "frames_written": written, "width": source.width, "height": source.height,
        "processing_size": list(processing_size(source.height, source.width, config))[::-1],
        "dtype": str(source.dtype), "fps": source.fps,
        "seconds": {**{k: round(v, 4) for k, v in stages.seconds.items()},
                    "total": round(time.perf_counter() - start, 4)},
        "peak_host_rss_bytes": peak_rss_bytes(),
        "peak_gpu_bytes": max(stages.gpu_peak_bytes.values()) if stages.gpu_peak_bytes else None,
        "peak_gpu_bytes_per_stage": dict(stages.gpu_peak_bytes),
        "versions": versions(),
    }
