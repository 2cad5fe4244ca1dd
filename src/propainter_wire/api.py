"""The Python API: what the CLI calls.

    import propainter_wire as pw
    report = pw.inpaint("shot/frames", "shot/masks", "out", engine="classic", max_side=960)
    frames_out = pw.inpaint_arrays(frames, masks, engine="classic")
"""

from __future__ import annotations

import json
import logging
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

from .config import InpaintConfig
from .engines.base import EngineInput
from .errors import InputError
from .pipeline.compositing import composite_frame, processing_size, resize_frame, resize_mask, to_unit_float
from .pipeline.stages import Stages

log = logging.getLogger("propainter_wire")

# settings that change what is computed: a resumed run must have the same ones
_RESULT_SETTINGS = ("engine", "weights_dir", "device", "precision", "mask_dilation", "flow_mask_dilation",
                    "mask_threshold", "neighbor_length", "ref_stride", "subvideo_length", "raft_iters",
                    "max_side", "width", "height", "resize_ratio", "classic_flow")


def _build_config(config: InpaintConfig | None, overrides: dict) -> InpaintConfig:
    config = config or InpaintConfig()
    if overrides:
        unknown = set(overrides) - set(InpaintConfig.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        if overrides.get("weights_dir") is not None:
            overrides = {**overrides, "weights_dir": Path(overrides["weights_dir"])}
        config = config.replace(**overrides)
    return config.validate()


def select_engine(config: InpaintConfig, device):
    """The engine the settings ask for: ``auto`` takes propainter when its weights are found."""
    from .weights import find_weights_dir, require_weights_dir

    name = config.engine
    weights_dir = None
    if name in ("auto", "propainter"):
        weights_dir = require_weights_dir(config.weights_dir) if name == "propainter" else \
            find_weights_dir(config.weights_dir)
        if weights_dir is None:
            log.warning("ProPainter checkpoints not found (see `propainter-wire weights list`); "
                        "using the classic engine")
            name = "classic"
        else:
            name = "propainter"
    if name == "propainter":
        from .engines.propainter import ProPainterEngine

        return ProPainterEngine(weights_dir, device=device, precision=config.precision)
    from .engines.classic import ClassicEngine

    return ClassicEngine()


def prepare_engine_input(frames: list[np.ndarray], raw_masks: list[np.ndarray],
                         config: InpaintConfig) -> EngineInput:
    """Frames and user masks at full size -> the engine's input at processing size."""
    from .io.masks import dilate

    h, w = frames[0].shape[:2]
    ph, pw = processing_size(h, w, config)
    proc_frames = np.stack([resize_frame(to_unit_float(f), ph, pw) for f in frames]).astype(np.float32)
    proc_raw = np.stack([resize_mask(m, ph, pw) for m in raw_masks])
    masks = np.stack([dilate(m, config.mask_dilation) for m in proc_raw])
    flow_masks = np.stack([dilate(m, config.effective_flow_mask_dilation) for m in proc_raw])
    return EngineInput(frames=proc_frames, masks=masks, flow_masks=flow_masks, raw_masks=proc_raw)


def run_engine(frames: list[np.ndarray], raw_masks: list[np.ndarray], config: InpaintConfig,
               stages: Stages, engine=None) -> list[np.ndarray]:
    """Inpaint in memory: frames (H, W, 3) native dtype, masks (H, W) bool -> composited frames."""
    with stages("prepare"):
        inp = prepare_engine_input(frames, raw_masks, config)
    if not inp.masks.any():
        log.info("every mask is empty: frames pass through unchanged")
        return [f.copy() for f in frames]
    if engine is None:
        from .runtime.device import resolve_device

        engine = select_engine(config, resolve_device(config.device))
    filled = engine.run(inp, config, stages)
    with stages("composite", total=len(frames)) as bar:
        out = []
        for i, frame in enumerate(frames):
            out.append(composite_frame(frame, filled[i], raw_masks[i], inp.masks[i], config))
            bar.update()
    return out


def inpaint_arrays(frames: np.ndarray, masks: np.ndarray, config: InpaintConfig | None = None,
                   **overrides) -> np.ndarray:
    """Inpaint a clip held in memory.

    Args:
        frames: (T, H, W, 3) RGB, uint8, uint16 or float32 in [0, 1].
        masks: (T, H, W) or (H, W) (static); non-zero = to remove.
        config / overrides: settings, as for ``inpaint``.
    Returns:
        (T, H, W, 3) in the frames' dtype; bit-identical to the input outside the dilated mask.
    """
    config = _build_config(config, overrides)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise InputError(f"frames must be (T, H, W, 3), got {frames.shape}")
    masks = np.asarray(masks)
    if masks.ndim == 2:
        masks = np.broadcast_to(masks, frames.shape[:3])
    if masks.shape != frames.shape[:3]:
        raise InputError(f"masks {masks.shape} do not match frames {frames.shape[:3]}")
    masks = masks > (config.mask_threshold if masks.dtype == np.uint8 else 0)
    out = run_engine(list(frames), list(masks), config, Stages(quiet=True))
    return np.stack(out)


def _versions() -> dict:
    import cv2
    import torch
    import torchvision

    from . import __version__

    versions = {"propainter_wire": __version__, "python": platform.python_version(), "torch": torch.__version__,
                "torchvision": torchvision.__version__, "numpy": np.__version__, "opencv": cv2.__version__}
    try:
        import av

        versions["av"] = av.__version__
    except ImportError:
        versions["av"] = None
    versions["cuda"] = torch.version.cuda
    return versions


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def inpaint(video: str | Path, mask: str | Path, output: str | Path, config: InpaintConfig | None = None,
            **overrides) -> dict:
    """Inpaint a frame folder or video with its masks; write the frames and a report.

    Writes ``OUTPUT/frames/<input frame stem>.png`` (16-bit in -> 16-bit out, EXR in
    -> EXR out), ``OUTPUT/report.json``, and ``OUTPUT/inpainted.mp4`` with ``save_video``.
    Every file lands atomically. Returns the report.

    Raises:
        InputError: a bad path, file or value (the message names it).
    """
    from .io import open_frames, open_masks, prepare_output_dir, write_image, write_json
    from .io.output import FRAMES_DIR, REPORT_NAME, VIDEO_NAME

    start = time.perf_counter()
    config = _build_config(config, overrides)
    stages = Stages(quiet=config.quiet)
    video, mask, output = Path(video), Path(mask), Path(output)

    with stages("read"):
        source = open_frames(video)
        source.validate()
        mask_source = open_masks(mask, len(source), source.height, source.width, config.mask_threshold)
        out_dir = prepare_output_dir(output, [video, mask], overwrite=config.overwrite, resume=config.resume)
        frames = [source[i] for i in range(len(source))]
        raw_masks = [mask_source[i] for i in range(len(source))]

    frames_dir = out_dir / FRAMES_DIR
    targets = [frames_dir / f"{stem}{source.ext}" for stem in source.stems]
    fingerprint = _fingerprint(config, video, mask, source)
    _start_manifest(out_dir, fingerprint, len(targets), config.resume)
    todo = [i for i, t in enumerate(targets) if not (config.resume and t.exists())]
    if config.resume:
        log.info("resuming: %d of %d frames already written", len(targets) - len(todo), len(targets))

    from .runtime.device import resolve_device

    device = resolve_device(config.device)
    engine = None
    results: list[np.ndarray] | None = None
    if todo or config.save_video:
        if any(m.any() for m in raw_masks):
            engine = select_engine(config, device)
        results = run_engine(frames, raw_masks, config, stages, engine=engine)
    frames_dir.mkdir(parents=True, exist_ok=True)
    with stages("write", total=len(todo)) as bar:
        for i in todo:
            write_image(targets[i], results[i])
            bar.update()
        if config.save_video:
            _write_video(out_dir / VIDEO_NAME, results, source.fps or 24.0)
    _finish_manifest(out_dir, fingerprint, len(targets))

    report = {
        "input": str(video), "mask": str(mask), "output": str(out_dir),
        "engine": getattr(engine, "name", "copy"),
        "device": str(getattr(engine, "device", device)),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in config.__dict__.items()},
        "frames": len(targets), "width": source.width, "height": source.height,
        "processing_size": list(processing_size(source.height, source.width, config))[::-1],
        "dtype": str(source.dtype), "fps": source.fps,
        "seconds": {**{k: round(v, 4) for k, v in stages.seconds.items()},
                    "total": round(time.perf_counter() - start, 4)},
        "peak_host_rss_bytes": _peak_rss_bytes(),
        "peak_gpu_bytes": _peak_gpu_bytes(device),
        "versions": _versions(),
    }
    write_json(out_dir / REPORT_NAME, report)
    log.debug("report: %s", json.dumps(report["seconds"]))
    return report


def _peak_gpu_bytes(device) -> int | None:
    import torch

    if getattr(device, "type", None) != "cuda":
        return None
    return int(torch.cuda.max_memory_allocated(device))


def _write_video(path: Path, frames: list[np.ndarray], fps: float) -> None:
    from .io import VideoWriter

    h, w = frames[0].shape[:2]
    with VideoWriter(path, fps, w, h) as writer:
        for frame in frames:
            if frame.dtype == np.uint16:
                frame = (frame // 257).astype(np.uint8)
            elif frame.dtype != np.uint8:
                frame = np.clip(np.rint(frame * 255), 0, 255).astype(np.uint8)
            writer.write(frame)


def _fingerprint(config: InpaintConfig, video: Path, mask: Path, source) -> dict:
    """What a resumed run must share with the interrupted one."""
    settings = {k: getattr(config, k) for k in _RESULT_SETTINGS}
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in settings.items()}
    return {"input": str(video.resolve()), "mask": str(mask.resolve()), "frames": len(source),
            "size": [source.width, source.height], "dtype": str(source.dtype), "stems_head": source.stems[:3],
            "settings": settings}


def _start_manifest(out_dir: Path, fingerprint: dict, total: int, resume: bool) -> None:
    """Record the run before any frame is written; on resume, check it is the same run."""
    from .io import write_json
    from .io.output import FRAMES_DIR, MANIFEST_NAME

    path = out_dir / MANIFEST_NAME
    if resume and path.exists():
        try:
            previous = json.loads(path.read_text())
        except (OSError, ValueError):
            raise InputError("manifest is unreadable: cannot resume (use --overwrite)", path) from None
        if previous.get("fingerprint") != fingerprint:
            raise InputError("the interrupted run had other inputs or settings: cannot resume "
                             "(use the same ones, or --overwrite)", path)
        return
    if resume and (out_dir / FRAMES_DIR).exists() and any((out_dir / FRAMES_DIR).iterdir()):
        raise InputError("frames but no manifest: cannot resume (use --overwrite)", out_dir)
    write_json(path, {"fingerprint": fingerprint, "frames": total, "complete": False})


def _finish_manifest(out_dir: Path, fingerprint: dict, total: int) -> None:
    from .io import write_json
    from .io.output import MANIFEST_NAME

    write_json(out_dir / MANIFEST_NAME, {"fingerprint": fingerprint, "frames": total, "complete": True})
