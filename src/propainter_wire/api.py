"""The Python API: what the CLI calls.

    import propainter_wire as pw
    report = pw.inpaint("shot/frames", "shot/masks", "out", engine="classic", max_side=960)
    frames_out = pw.inpaint_arrays(frames, masks, engine="classic")

A file run is safe to interrupt: every frame lands atomically as soon as it is
composited, and ``manifest.json`` (written before the first frame) records the
inputs and settings, so ``resume=True`` finishes the run with the same result as
an uninterrupted one. A run that fails before writing any frame leaves no trace
in the output folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

from .config import InpaintConfig
from .engines.base import EngineInput
from .errors import InputError
from .io.output import (
    FRAMES_DIR,
    MANIFEST_NAME,
    REPORT_NAME,
    TEMP_PREFIX,
    VIDEO_NAME,
    prepare_output_dir,
    write_image,
    write_json,
)
from .io.stream import FrameStream
from .pipeline.compositing import composite_frame, processing_size, resize_frame, resize_mask, to_unit_float
from .pipeline.stages import Stages

log = logging.getLogger("propainter_wire")

# settings that change what is computed: a resumed run must have the same ones
_RESULT_SETTINGS = ("engine", "weights_dir", "device", "precision", "mask_dilation", "flow_mask_dilation",
                    "mask_threshold", "neighbor_length", "ref_stride", "subvideo_length", "raft_iters",
                    "max_side", "width", "height", "resize_ratio", "classic_flow")
_SAMPLE_TYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))


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
    """The engine the settings ask for: ``auto`` takes propainter when its weights are found.

    Raises:
        WeightsError: ``propainter`` asked for and a checkpoint is missing, truncated or foreign.
    """
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


def prepare_engine_input(frames, raw_masks, config: InpaintConfig, scratch=None) -> EngineInput:
    """Frames and user masks at full size -> the engine's input at processing size.

    Frames become float32 in [0, 1], except uint8 frames that need no resizing, which stay uint8.

    ``frames``/``raw_masks`` are sequences (lists or disk arrays) of (H, W, 3) frames and
    (H, W) bool masks. With a ``scratch`` the processing-size arrays are written there
    in batches (host memory independent of the clip's length), else stacked in memory.
    """
    from .io.masks import dilate

    h, w = frames[0].shape[:2]
    ph, pw = processing_size(h, w, config)
    # 8-bit frames processed at their own size go to the engine as they are (no float round trip)
    as_is = (ph, pw) == (h, w) and np.asarray(frames[0]).dtype == np.uint8
    frame_dtype = np.uint8 if as_is else np.float32

    def masks_of(i: int):
        raw = resize_mask(raw_masks[i], ph, pw)
        grown = dilate(raw, config.mask_dilation)
        # the flow mask is usually grown as far (both 4 by default): the same array (they are stacked apart)
        same = config.effective_flow_mask_dilation == config.mask_dilation
        return raw, grown, grown if same else dilate(raw, config.effective_flow_mask_dilation)

    if as_is and scratch is None and isinstance(frames, FrameStream):  # still decoding: handed on as it is
        proc_raw, masks, flow_masks = (np.stack(p) for p in zip(*parallel_map(masks_of, range(len(frames))),
                                                                 strict=True))
        return EngineInput(frames=frames, masks=masks, flow_masks=flow_masks, raw_masks=proc_raw)

    def one(i: int):
        frame = np.asarray(frames[i]) if as_is else resize_frame(to_unit_float(frames[i]), ph, pw).astype(np.float32)
        return (frame, *masks_of(i))

    if scratch is None:
        parts = parallel_map(one, range(len(frames)))
        proc_frames, proc_raw, masks, flow_masks = (np.stack(p) for p in zip(*parts, strict=True))
        return EngineInput(frames=proc_frames, masks=masks, flow_masks=flow_masks, raw_masks=proc_raw)
    n = len(frames)
    arrays = (scratch.array("proc_frames", n, (ph, pw, 3), frame_dtype), scratch.array("proc_raw", n, (ph, pw), bool),
              scratch.array("masks", n, (ph, pw), bool), scratch.array("flow_masks", n, (ph, pw), bool))
    for i, parts in batched_map(one, range(n)):
        for arr, part in zip(arrays, parts, strict=True):
            arr[i] = part
    proc_frames, proc_raw, masks, flow_masks = arrays
    return EngineInput(frames=proc_frames, masks=masks, flow_masks=flow_masks, raw_masks=proc_raw, scratch=scratch)


def io_threads() -> int:
    """Threads for decoding, resizing, compositing and encoding frames."""
    value = os.environ.get("PROPAINTER_WIRE_IO_THREADS", "")
    if value.strip().isdigit() and int(value) > 0:
        return int(value)
    return min(16, os.cpu_count() or 1)


def batched_map(fn, indices, mapper=None):
    """Yield ``(i, fn(i))`` for each of ``indices`` in order, mapped in batches of ``4 * io_threads()``
    by ``mapper`` (default ``parallel_map``), so only one batch of results is held at a time."""
    mapper = parallel_map if mapper is None else mapper
    indices = list(indices)
    batch = 4 * io_threads()
    for lo in range(0, len(indices), batch):
        ids = indices[lo:lo + batch]
        yield from zip(ids, mapper(fn, ids), strict=True)


def parallel_map(fn, items, workers: int | None = None) -> list:
    """``[fn(x) for x in items]`` on a thread pool (OpenCV and PNG codecs release the GIL), in order.

    ``PROPAINTER_WIRE_IO_THREADS`` caps the threads (default: one per core, up to 16); 1 keeps everything in order.
    """
    items = list(items)
    workers = workers or io_threads()
    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def serial_map(fn, items) -> list:
    """``[fn(x) for x in items]``, in order on this thread (the stand-in for ``parallel_map`` where
    order matters, e.g. decoding a video)."""
    return [fn(x) for x in items]


def check_fillable(inp: EngineInput, config: InpaintConfig) -> None:
    """Refuse a clip in which no pixel is known: there is nothing to fill from.

    A frame masked entirely is fine (propagation fills it from the other frames);
    a mask covering every pixel of every frame (after dilation) is not.

    Raises:
        InputError: every pixel of every frame is masked.
    """
    if inp.masks.size and inp.masks.all():
        grown = f" after --mask-dilation {config.mask_dilation}" if not inp.raw_masks.all() else ""
        raise InputError(f"the mask covers every pixel of every frame{grown}: there is nothing to propagate "
                         "from (leave some pixels unmasked, or lower --mask-dilation)")


def fill(inp: EngineInput, config: InpaintConfig, stages: Stages, engine=None, device=None,
         on_final=None) -> tuple[np.ndarray, object | None]:
    """Run an engine on a prepared clip: its (T, h, w, 3) frames at processing size (float32 in [0, 1],
    or uint8 where the engine or the unchanged input gives 8-bit frames), and the engine.

    Every mask empty: the frames come back unchanged and no engine is made (None).
    A clip with no known pixel is refused before any engine is loaded.
    """
    if not inp.masks.any():
        log.info("every mask is empty: frames are copied through unchanged")
        return inp.frames, None
    check_fillable(inp, config)
    if engine is None or isinstance(engine, EngineLoader):
        with stages("load"):  # (with a loader: the wait for it, its errors raised here)
            if engine is not None:
                engine = engine.result()
            else:
                if device is None:
                    from .runtime.device import resolve_device

                    device = resolve_device(config.device)
                engine = select_engine(config, device)
    with stages.failures(getattr(engine, "name", "engine")):  # a failure between the engine's own stages
        return engine.run(inp, config, stages, on_final=on_final), engine


class EngineLoader:
    """Loads the engine for ``device`` (already resolved) on a thread, while the frames are read.

    Loading the networks (checkpoints, CUDA start-up) takes as long as decoding a
    short clip; the two overlap. ``result()`` waits and returns the engine, or raises
    what loading raised (so errors surface where a synchronous load would raise them).
    A run that fails before ``result()`` calls ``settle()``: a thread still inside torch
    when the interpreter exits aborts the process (``terminate called without an active
    exception``, exit code 134 instead of the run's own).
    """

    def __init__(self, config: InpaintConfig, device) -> None:
        import threading

        self.device = device
        self._engine = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._load, args=(config,), name="engine-loader", daemon=True)
        self._thread.start()

    def _load(self, config: InpaintConfig) -> None:
        try:
            self._engine = select_engine(config, self.device)
        except BaseException as exc:  # re-raised by result() on the caller's thread
            self._error = exc

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._engine

    def settle(self) -> None:
        """Wait for the loading to end, whatever its outcome (its error, if any, is dropped)."""
        self._thread.join()


def run_engine(frames: list[np.ndarray], raw_masks: list[np.ndarray], config: InpaintConfig,
               stages: Stages, engine=None) -> list[np.ndarray]:
    """Inpaint in memory: frames (H, W, 3) native dtype, masks (H, W) bool -> composited frames."""
    with stages("prepare"):
        inp = prepare_engine_input(frames, raw_masks, config)
    filled, engine = fill(inp, config, stages, engine)
    if engine is None:
        return [f.copy() for f in frames]
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
    Raises:
        InputError: shapes or sample type not as above; every pixel of every frame masked.
    """
    config = _build_config(config, overrides)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or 0 in frames.shape:
        raise InputError(f"frames must be (T, H, W, 3) with T, H, W >= 1, got {frames.shape}")
    if frames.dtype not in _SAMPLE_TYPES:
        raise InputError(f"frames must be uint8, uint16 or float32, got {frames.dtype}")
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
    try:  # the package's metadata: importing PyAV only for its version took 35 ms
        versions["av"] = importlib.metadata.version("av")
    except importlib.metadata.PackageNotFoundError:
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
    -> EXR out), ``OUTPUT/manifest.json``, ``OUTPUT/report.json``, and
    ``OUTPUT/inpainted.mp4`` with ``save_video``. Every file lands atomically; each
    frame is written as soon as it is composited. Returns the report.

    Order of work: settings, inputs (every frame and mask decoded), output folder,
    checkpoints, engine, then frames. Whatever fails before the first frame is
    written leaves the output folder as it was (a folder this run created is removed).

    Raises:
        InputError: a bad path, file or value (the message names it); a write failure
            (disk full, read-only folder) naming the file; frames written so far are kept.
        StageError: an engine stage failed (CUDA error, out of memory); names the stage.
        KeyboardInterrupt: frames written so far are kept; ``resume=True`` finishes the run.
    """
    start = time.perf_counter()
    config = _build_config(config, overrides)
    stages = Stages(quiet=config.quiet)
    video, mask = Path(video).expanduser(), Path(mask).expanduser()
    out_path = Path(output).expanduser().resolve()
    if config.overwrite and config.resume:
        raise InputError("choose one of --overwrite and --resume", out_path)
    if config.engine == "propainter":
        from .weights import require_weights_dir

        require_weights_dir(config.weights_dir)  # a missing file fails before any decoding
    run = _OutputRun(out_path)
    try:
        return _inpaint_files(video, mask, run, config, stages, start)
    except BaseException:
        run.discard_if_empty()
        raise


class _OutputRun:
    """The output folder of one run, and how to undo it while no frame is written."""

    def __init__(self, path: Path):
        self.path = path
        self.existed = path.exists()
        self.fresh_manifest = False  # this run wrote manifest.json from scratch

    @property
    def frames_dir(self) -> Path:
        return self.path / FRAMES_DIR

    def has_frames(self) -> bool:
        try:
            return any(not n.startswith(TEMP_PREFIX) for n in os.listdir(self.frames_dir))
        except OSError:
            return False

    def discard_if_empty(self) -> None:
        """After a failure: remove what this run made when no frame is in the folder."""
        if not self.fresh_manifest and self.existed:
            return
        if self.has_frames():
            return
        for folder in (self.frames_dir, self.path):
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            for name in names:
                if name.startswith(TEMP_PREFIX) or (folder == self.path and name in (MANIFEST_NAME, REPORT_NAME)):
                    _unlink_quietly(folder / name)
        for folder in (self.frames_dir, None if self.existed else self.path):
            if folder is not None:
                try:
                    folder.rmdir()  # only when empty
                except OSError:
                    pass


def _remove_stale_temp_files(folder: Path) -> None:
    """Half-written files of a killed run (their final names were never made)."""
    try:
        names = [n for n in os.listdir(folder) if n.startswith(TEMP_PREFIX)]
    except OSError:
        return
    for name in names:
        _unlink_quietly(folder / name)


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _inpaint_files(video: Path, mask: Path, run: _OutputRun, config: InpaintConfig, stages: Stages,
                   start: float) -> dict:
    from .io import open_frames, open_masks

    inputs = [video, mask]
    out_dir = None
    with contextlib.ExitStack() as cleanup:  # the scratch directory, if any, goes when the run ends
        with stages("read"):
            source = open_frames(video)
            try:
                source.validate()
                mask_source = open_masks(mask, len(source), source.height, source.width, config.mask_threshold)
                if not config.overwrite:  # nothing is deleted: check the folder before the long part
                    out_dir = prepare_output_dir(run.path, inputs, overwrite=False, resume=config.resume)
                scratch = _open_scratch(config, source)
                if scratch is not None:
                    cleanup.enter_context(scratch)
                from .runtime.device import resolve_device

                # the inputs look sound: load the engine while they decode
                loader = EngineLoader(config, resolve_device(config.device))
                cleanup.callback(loader.settle)  # however the run ends, no loading thread outlives it
                try:
                    # folders (frames, then masks) decode in parallel; a video decodes in order
                    read = parallel_map if source.kind == "folder" else serial_map
                    read_masks = parallel_map if mask_source.kind != "video" else serial_map
                    if _streamable(source, config, scratch):  # the engine starts on the first frames
                        frames = FrameStream(source.__getitem__, len(source), (source.height, source.width, 3),
                                             source.dtype, io_threads())
                        cleanup.callback(frames.close)
                        raw_masks = read_masks(mask_source.__getitem__, range(len(source)))
                    elif scratch is None:
                        frames = read(source.__getitem__, range(len(source)))
                        raw_masks = read_masks(mask_source.__getitem__, range(len(source)))
                    else:  # read in batches straight to the scratch files
                        size = (source.height, source.width)
                        frames = scratch.array("input", len(source), (*size, 3), source.dtype)
                        raw_masks = scratch.array("raw_masks", len(source), size, bool)
                        for i, frame in batched_map(source.__getitem__, range(len(source)), read):
                            frames[i] = frame
                        for i, frame_mask in batched_map(mask_source.__getitem__, range(len(source)), read_masks):
                            raw_masks[i] = frame_mask
                finally:
                    mask_source.close()
            finally:
                source.close()
        if source.has_alpha:
            log.info("%s: alpha channel ignored (output frames are RGB)", video)
        return _fill_and_write(video, mask, run, config, stages, start, source, frames, raw_masks, out_dir, scratch,
                               loader)


def _streamable(source, config: InpaintConfig, scratch) -> bool:
    """Whether the frames may decode while the engine runs (a :class:`FrameStream`).

    Only 8-bit frames of a folder processed at their own size (they reach the engine as
    they are), in memory, and only where nothing waits on the whole clip first: with
    ``--overwrite`` earlier results are deleted once every frame has decoded, and
    ``--resume`` reads the output folder against the clip.
    """
    return (scratch is None and source.kind == "folder" and source.dtype == np.uint8
            and processing_size(source.height, source.width, config) == (source.height, source.width)
            and not config.overwrite and not config.resume)


def _open_scratch(config: InpaintConfig, source):
    """A scratch directory for this clip, or None to keep it in memory (``config.scratch``)."""
    from .io.scratch import Scratch

    if config.scratch == "memory":
        return None
    if config.scratch == "auto":
        h, w = source.height, source.width
        ph, pw = processing_size(h, w, config)
        itemsize = source.dtype.itemsize
        # full-size frame and mask; processing-size float32 frame and masks; engine arrays (~60 B per pixel)
        per_frame = h * w * (3 * itemsize + 1) + ph * pw * (12 + 3 + 60)
        if len(source) * per_frame <= _physical_memory_bytes() // 2:
            return None
    scratch = Scratch(config.scratch_dir)
    log.info("whole-clip arrays go to the scratch directory %s", scratch.path)
    return scratch


def _physical_memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 16 * 2**30


def _fill_and_write(video: Path, mask: Path, run: _OutputRun, config: InpaintConfig, stages: Stages, start: float,
                    source, frames, raw_masks, out_dir, scratch, loader: EngineLoader) -> dict:
    inputs = [video, mask]
    if out_dir is None:  # --overwrite deletes earlier results: only once the inputs are known good
        out_dir = prepare_output_dir(run.path, inputs, overwrite=True, resume=False)

    frames_dir = out_dir / FRAMES_DIR
    targets = [frames_dir / f"{stem}{source.ext}" for stem in source.stems]
    fingerprint = _fingerprint(config, video, mask, source)
    run.fresh_manifest = _start_manifest(out_dir, fingerprint, len(targets), config.resume)
    todo = [i for i, t in enumerate(targets) if not (config.resume and t.exists())]
    if config.resume:
        _remove_stale_temp_files(frames_dir)
        log.info("resuming: %d of %d frames already written", len(targets) - len(todo), len(targets))

    device = loader.device
    engine = None
    written: set[int] = set()
    needed = list(range(len(targets))) if config.save_video else todo
    if needed:
        with stages("prepare"):
            inp = prepare_engine_input(frames, raw_masks, config, scratch=scratch)
        early = _EarlyWriter(frames, raw_masks, inp.masks, targets, todo, config)
        try:
            filled, engine = fill(inp, config, stages, engine=loader, on_final=early)
            written = early.close()
        finally:
            early.abort()
        _write_frames(frames, filled, raw_masks, inp.masks, targets, todo, needed, out_dir, source.fps, config,
                      stages, copy_through=engine is None, written=written)
    _finish_manifest(out_dir, fingerprint, len(targets))

    report = {
        "input": str(video), "mask": str(mask), "output": str(out_dir),
        "engine": engine.name if engine is not None else ("copy" if needed else "none"),
        "device": str(getattr(engine, "device", device)),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in config.__dict__.items()},
        "frames": len(targets), "frames_written": len(todo), "width": source.width, "height": source.height,
        "processing_size": list(processing_size(source.height, source.width, config))[::-1],
        "dtype": str(source.dtype), "fps": source.fps,
        "seconds": {**{k: round(v, 4) for k, v in stages.seconds.items()},
                    "total": round(time.perf_counter() - start, 4)},
        "peak_host_rss_bytes": _peak_rss_bytes(),
        "peak_gpu_bytes": max(stages.gpu_peak_bytes.values()) if stages.gpu_peak_bytes else None,
        "peak_gpu_bytes_per_stage": dict(stages.gpu_peak_bytes),
        "versions": _versions(),
    }
    write_json(out_dir / REPORT_NAME, report)
    log.debug("report: %s", json.dumps(report["seconds"]))
    return report


class _EarlyWriter:
    """Composites and writes the frames an engine reports final, on a thread pool, while it works on.

    Called as ``on_final(index, filled)``; ``close`` waits for the writes and returns the
    indices written (a failed write is raised there, or at the next call).
    """

    def __init__(self, frames: list[np.ndarray], raw_masks: list[np.ndarray], masks: np.ndarray,
                 targets: list[Path], todo: list[int], config: InpaintConfig):
        self.frames, self.raw_masks, self.masks, self.targets, self.config = frames, raw_masks, masks, targets, config
        self.todo = set(todo)
        self.pending: dict[int, object] = {}
        self.pool = None

    def __call__(self, index: int, filled: np.ndarray) -> None:
        if index not in self.todo or index in self.pending:
            return
        self._raise_failures()
        if self.pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(max_workers=io_threads())
        self.pending[index] = self.pool.submit(self._finish, index, np.array(filled, copy=True))

    def _finish(self, i: int, filled: np.ndarray) -> None:
        frame = composite_frame(self.frames[i], filled, self.raw_masks[i], self.masks[i], self.config)
        write_image(self.targets[i], frame)

    def _raise_failures(self) -> None:
        for future in self.pending.values():
            if future.done() and future.exception() is not None:
                raise future.exception()

    def close(self) -> set[int]:
        for index in sorted(self.pending):
            self.pending[index].result()
        return set(self.pending)

    def abort(self) -> None:
        """Let the writes already handed over finish (an interrupted run keeps every finished frame)."""
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None


def _write_frames(frames: list[np.ndarray], filled: np.ndarray, raw_masks: list[np.ndarray], masks: np.ndarray,
                  targets: list[Path], todo: list[int], needed: list[int], out_dir: Path, fps: float | None,
                  config: InpaintConfig, stages: Stages, copy_through: bool, written: set[int] = frozenset()) -> None:
    """Composite each needed frame at full resolution and write it (``todo`` only, less ``written``)."""
    writer = None
    if config.save_video:
        from .io import VideoWriter

        h, w = frames[0].shape[:2]
        writer = VideoWriter(out_dir / VIDEO_NAME, fps or 24.0, w, h)
    todo_set = set(todo) - set(written)
    if writer is None:
        needed = [i for i in needed if i in todo_set]

    def finish(i: int) -> np.ndarray:
        frame = frames[i] if copy_through else composite_frame(frames[i], filled[i], raw_masks[i], masks[i], config)
        if i in todo_set:
            write_image(targets[i], frame)
        return frame

    try:
        with stages("write", total=len(needed)) as bar:
            # frames are composited and encoded in parallel batches; the video takes them in order
            for _, frame in batched_map(finish, needed):
                if writer is not None:
                    writer.write(_video_frame(frame))
                bar.update()
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.__exit__(*sys.exc_info())
        raise


def _video_frame(frame: np.ndarray) -> np.ndarray:
    if frame.dtype == np.uint16:
        return (frame // 257).astype(np.uint8)
    if frame.dtype != np.uint8:
        return np.clip(np.rint(frame * 255), 0, 255).astype(np.uint8)
    return frame


def _content_signature(path: Path) -> str:
    """A cheap digest of a file or folder's entries (names, sizes, modification times): no decoding."""
    digest = hashlib.sha1()
    try:
        if path.is_dir():
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
            for entry in entries:
                if entry.is_file():
                    st = entry.stat()
                    digest.update(f"{entry.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        else:
            st = path.stat()
            digest.update(f"{st.st_size}\0{st.st_mtime_ns}".encode())
    except OSError:
        return "unreadable"
    return digest.hexdigest()[:16]


def _fingerprint(config: InpaintConfig, video: Path, mask: Path, source) -> dict:
    """What a resumed run must share with the interrupted one."""
    from . import __version__

    settings = {k: getattr(config, k) for k in _RESULT_SETTINGS}
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in settings.items()}
    return {"input": str(video.resolve()), "mask": str(mask.resolve()), "frames": len(source),
            "size": [source.width, source.height], "dtype": str(source.dtype), "stems_head": source.stems[:3],
            "input_signature": _content_signature(video), "mask_signature": _content_signature(mask),
            "version": __version__, "settings": settings}


def _describe_change(previous: dict, current: dict) -> str:
    """The first differences between two fingerprints, for the resume error."""
    changed = []
    for key in sorted(set(previous) | set(current)):
        if key == "settings":
            continue
        if previous.get(key) != current.get(key):
            changed.append({"input_signature": "input files", "mask_signature": "mask files"}.get(key, key))
    old, new = previous.get("settings") or {}, current["settings"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            changed.append(f"{key} {old.get(key)!r} -> {new.get(key)!r}")
    return ", ".join(changed[:4]) + (", ..." if len(changed) > 4 else "")


def _start_manifest(out_dir: Path, fingerprint: dict, total: int, resume: bool) -> bool:
    """Record the run before any frame is written; on resume, check it is the same run.

    Returns:
        whether a new manifest was written (False: resuming with the existing one).
    """
    path = out_dir / MANIFEST_NAME
    if resume and path.exists():
        try:
            previous = json.loads(path.read_text())
        except (OSError, ValueError):
            raise InputError("manifest is unreadable: cannot resume (use --overwrite)", path) from None
        if not isinstance(previous, dict) or previous.get("fingerprint") != fingerprint:
            fp = previous.get("fingerprint") if isinstance(previous, dict) else None
            what = _describe_change(fp, fingerprint) if isinstance(fp, dict) else "unknown manifest"
            raise InputError(f"the interrupted run had other inputs or settings ({what}): cannot resume "
                             "(use the same ones, or --overwrite)", path)
        return False
    if resume and (out_dir / FRAMES_DIR).exists() and any((out_dir / FRAMES_DIR).iterdir()):
        raise InputError("frames but no manifest: cannot resume (use --overwrite)", out_dir)
    write_json(path, {"fingerprint": fingerprint, "frames": total, "complete": False})
    return True


def _finish_manifest(out_dir: Path, fingerprint: dict, total: int) -> None:
    write_json(out_dir / MANIFEST_NAME, {"fingerprint": fingerprint, "frames": total, "complete": True})
