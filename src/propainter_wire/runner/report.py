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
    """Versions of this package, Python and the libraries that shape results.

    Read from the packages' metadata, never by importing a library for its version: importing
    torchvision ran its models package and through it torch._dynamo (1.2 s on a 2-core CPU, about
    5 s where site-packages has no bytecode cache), and a classic run imports no torch at all.
    ``cuda`` is the CUDA version torch was built with, None when torch was not loaded.
    """
    import cv2

    from .. import __version__

    def dist(name: str) -> str | None:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    torch = sys.modules.get("torch")
    return {"propainter_wire": __version__, "python": platform.python_version(),
            "torch": torch.__version__ if torch is not None else dist("torch"), "torchvision": dist("torchvision"),
            "numpy": np.__version__, "opencv": cv2.__version__, "av": dist("av"),
            "openimageio": dist("OpenImageIO"), "opencolorio": dist("opencolorio"),
            "cuda": torch.version.cuda if torch is not None else None}


def wall_seconds(stages: Stages, start: float, total: float, startup: float | None,
                 loader: dict[str, float]) -> dict:
    """Where the process's time went, adding up to ``process`` (seconds).

    ``startup`` (interpreter start and imports before ``main``; 0 from the Python API),
    ``setup`` (from the run's start to its first stage: parsing the command, importing the
    modules the run needs, checking the settings and the weights' files), the stages that ran
    inside no other stage, and ``between`` (the time between them) add up to ``process``.
    ``loader`` is the engine loader's own steps (importing torch, resolving the device, loading
    the networks), on its thread while the frames decode: the main thread's ``load`` stage is
    only what it waited for them.
    """
    stage_total = sum(stages.top_level.values())
    setup = total if stages.first_start is None else max(0.0, stages.first_start - start)
    out = {"startup": round(startup or 0.0, 4), "setup": round(setup, 4),
           **{k: round(v, 4) for k, v in stages.top_level.items()},
           "between": round(max(0.0, total - setup - stage_total), 4), "process": round((startup or 0.0) + total, 4)}
    out["loader"] = {k: round(v, 4) for k, v in loader.items()}
    return out


def peak_rss_bytes() -> int:
    """This process's peak resident memory in bytes (``ru_maxrss`` is in KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def build_report(video: Path, mask: Path, out_dir: Path, config: InpaintConfig, stages: Stages,
                 clock: tuple[float, float | None], source, engine, loader, needed: bool, written: int) -> dict:
    """The run's report.

    Args:
        clock: ``time.perf_counter()`` at the run's start, and the process's seconds before it (or None).
        source: the opened clip (size, sample type, frame rate).
        engine: the engine that ran, or None (every mask empty, or nothing to compute).
        loader: the run's :class:`~.engines.EngineLoader` (its device and step times).
        needed: whether any frame had to be computed (False: a resumed run that was complete).
        written: frames written by this run.
    """
    start, startup = clock
    total = time.perf_counter() - start
    device = loader.device
    return {
        "input": str(video), "mask": str(mask), "output": str(out_dir),
        "engine": engine.name if engine is not None else ("copy" if needed else "none"),
        "device": str(getattr(engine, "device", device)),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in config.__dict__.items()},
        "frames": len(source), "frames_written": written, "width": source.width, "height": source.height,
        "processing_size": list(processing_size(source.height, source.width, config))[::-1],
        "dtype": str(source.dtype), "fps": source.fps,
        "seconds": {**{k: round(v, 4) for k, v in stages.seconds.items()}, "total": round(total, 4)},
        "wall_seconds": wall_seconds(stages, start, total, startup, loader.seconds),
        "peak_host_rss_bytes": peak_rss_bytes(),
        "peak_gpu_bytes": max(stages.gpu_peak_bytes.values()) if stages.gpu_peak_bytes else None,
        "peak_gpu_bytes_per_stage": dict(stages.gpu_peak_bytes),
        "versions": versions(),
    }
