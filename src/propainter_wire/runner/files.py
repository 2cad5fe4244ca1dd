"""The file run behind ``inpaint``: read a clip and its masks, fill, write frames, manifest and report.

Order of work: inputs (every frame and mask decoded, or decoding while the engine starts),
output folder, checkpoints and engine (loaded on a thread while the frames decode), then
frames. Whatever fails before the first frame is written leaves the output folder as it
was (a folder this run created is removed).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from ..config import InpaintConfig
from ..delivery.options import DeliveryOptions
from ..errors import InputError
from ..io.output import FRAMES_DIR, REPORT_NAME, prepare_output_dir, write_json
from ..io.sequence import parse_frame_range
from ..io.stream import FrameStream
from ..pipeline.compositing import processing_size
from ..pipeline.stages import Stages
from ..tuning import Tuning
from .delivery import Delivery, remove_empty_folder, wants_every_frame
from .engines import EngineLoader, ReadyEngine
from .inputs import fill, prepare_engine_input
from .manifest import fingerprint, finish_manifest, start_manifest
from .output import EarlyWriter, OutputRun, remove_stale_temp_files, write_frames
from .plates import WarningLog, check_mattes, default_colorspace, mask_coverage, matte_options
from .report import build_report
from .threads import batched_map, pool_mapper, serial_map

log = logging.getLogger("propainter_wire")


def inpaint_files(video: str | Path, mask: str | Path, output: str | Path, config: InpaintConfig,
                  tuning: Tuning, start: float | None = None, startup: float | None = None,
                  command_line: list[str] | None = None, engine=None) -> dict:
    """Inpaint a frame folder or video with its masks into ``output``; returns the report.

    ``config`` is validated already; ``start`` is the run's ``time.perf_counter()`` start
    (default: now); ``startup`` the seconds the process ran before it (interpreter start and
    the command line's imports; None from the Python API); ``command_line`` the arguments, for the report;
    ``engine`` an engine already loaded (a warm batch worker's; default: one loaded for this run). See
    :func:`propainter_wire.api.inpaint` for what is written and raised.
    """
    start = time.perf_counter() if start is None else start
    stages = Stages(quiet=config.quiet)
    video, mask = Path(video).expanduser(), Path(mask).expanduser()
    out_path = Path(output).expanduser().resolve()
    if config.overwrite and config.resume:
        raise InputError("choose one of --overwrite and --resume", out_path)
    if config.engine == "propainter":
        from ..weights import require_weights_dir

        # a missing file fails before any decoding
        require_weights_dir(config.weights_dir, env_dir=tuning.weights_dir)
    run = OutputRun(out_path)
    try:
        with WarningLog(command_line) as warned:
            return _read_then_fill(video, mask, run, config, tuning, stages, start, startup, warned, engine)
    except BaseException:
        run.discard_if_empty()
        raise


def _read_then_fill(video: Path, mask: Path, run: OutputRun, config: InpaintConfig, tuning: Tuning,
                    stages: Stages, start: float, startup: float | None, warned: WarningLog | None = None,
                    engine=None) -> dict:
    from ..io import open_frames, open_masks

    threads = tuning.threads()
    parallel = pool_mapper(threads)
    inputs = [video, mask]
    out_dir = None
    with contextlib.ExitStack() as cleanup:  # the scratch directory, if any, goes when the run ends
        with stages("read"):
            source = open_frames(video, parse_frame_range(config.frames), config.start_number)
            try:
                config = default_colorspace(config, source)
                source.validate()
                mask_source = open_masks(mask, len(source), source.height, source.width, config.mask_threshold,
                                         **matte_options(config, source))
                if not config.overwrite:  # nothing is deleted: check the folder before the long part
                    out_dir = prepare_output_dir(run.path, inputs, overwrite=False, resume=config.resume)
                scratch = _open_scratch(config, source)
                if scratch is not None:
                    cleanup.enter_context(scratch)
                # the inputs look sound: import torch, resolve the device and load the engine while they decode
                loader = EngineLoader(config, config.device, tuning) if engine is None else ReadyEngine(engine)
                cleanup.callback(loader.settle)  # however the run ends, no loading thread outlives it
                try:
                    # folders (frames, then masks) decode in parallel; a video decodes in order
                    read = parallel if source.kind == "folder" else serial_map
                    read_masks = parallel if mask_source.kind != "video" else serial_map
                    if _streamable(source, config, scratch):  # the engine starts on the first frames
                        frames = FrameStream(source.__getitem__, len(source), (source.height, source.width, 3),
                                             source.dtype, threads)
                        cleanup.callback(frames.close)
                        raw_masks = read_masks(mask_source.__getitem__, range(len(source)))
                    elif scratch is None:
                        frames = read(source.__getitem__, range(len(source)))
                        raw_masks = read_masks(mask_source.__getitem__, range(len(source)))
                    else:  # read in batches straight to the scratch files
                        size = (source.height, source.width)
                        frames = scratch.array("input", len(source), (*size, 3), source.dtype)
                        raw_masks = scratch.array("raw_masks", len(source), size, mask_source.dtype)
                        for i, frame in batched_map(source.__getitem__, range(len(source)), threads, read):
                            frames[i] = frame
                        for i, frame_mask in batched_map(mask_source.__getitem__, range(len(source)), threads,
                                                         read_masks):
                            raw_masks[i] = frame_mask
                finally:
                    mask_source.close()
            finally:
                source.close()
        if source.has_alpha:
            log.info("%s: alpha channel kept as it is (the fill changes colour only)", video)
        return fill_and_write(video, mask, run, config, tuning, stages, (start, startup), source, frames, raw_masks,
                              out_dir, scratch, loader, warned)


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
    from ..io.scratch import Scratch

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


def fill_and_write(video: Path, mask: Path, run: OutputRun, config: InpaintConfig, tuning: Tuning, stages: Stages,
                   clock: tuple[float, float | None], source, frames, raw_masks, out_dir, scratch,
                   loader: EngineLoader, warned: WarningLog | None = None) -> dict:
    """Everything after the inputs are read: output folder, manifest, engine, frames, report.

    ``clock``: the run's ``perf_counter`` start and the process's seconds before it (see ``inpaint_files``).
    """
    inputs = [video, mask]
    threads = tuning.threads()
    coverage = mask_coverage(raw_masks)
    check_mattes(video, mask, coverage, source.stems)
    if out_dir is None:  # --overwrite deletes earlier results: only once the inputs are known good
        out_dir = prepare_output_dir(run.path, inputs, overwrite=True, resume=False)

    frames_dir = out_dir / FRAMES_DIR
    targets = [frames_dir / name for name in source.output_names()]
    fprint = fingerprint(config, video, mask, source)
    run.fresh_manifest = start_manifest(out_dir, fprint, len(targets), config.resume)
    todo = [i for i, t in enumerate(targets) if not (config.resume and t.exists())]
    if config.resume:
        remove_stale_temp_files(frames_dir)
        log.info("resuming: %d of %d frames already written", len(targets) - len(todo), len(targets))
    delivery = Delivery(DeliveryOptions.from_config(config), config, out_dir, video, source, frames, raw_masks)
    if config.video_only:  # the master alone: no frame files
        todo = []

    engine = None
    written: set[int] = set()
    needed = list(range(len(targets))) if config.save_video or wants_every_frame(config) else todo
    if needed:
        with stages("prepare"):
            inp = prepare_engine_input(frames, raw_masks, config, scratch=scratch, tuning=tuning)
        early = EarlyWriter(frames, raw_masks, inp.masks, targets, todo, config, threads, save=source.write_frame,
                            compose=delivery.compose)
        try:
            filled, engine = fill(inp, config, stages, engine=loader, on_final=early, tuning=tuning)
            with stages("finish_writes"):  # frames handed over early and still being written
                written = early.close()
        finally:
            early.abort()
        with delivery.writing() as sink:  # master and review: renamed into place only when complete
            write_frames(frames, filled, raw_masks, inp.masks, targets, todo, needed, out_dir, source.fps, config,
                         stages, copy_through=engine is None, threads=threads, written=written,
                         save=source.write_frame, compose=delivery.compose, video=sink)
    finish_manifest(out_dir, fprint, len(targets))
    if config.video_only:
        remove_empty_folder(frames_dir)

    loader.settle()  # (every mask empty: the engine was never waited for)
    report = build_report(video, mask, out_dir, config, stages, clock, source, engine, loader,
                          needed=bool(needed), written=len(todo))
    report["delivery"] = delivery.summary()
    report.update(command_line=warned.command_line if warned is not None else None, frame_numbers=source.numbers,
                  mask_coverage=dict(zip(source.stems, coverage, strict=True)),
                  warnings=list(warned.messages) if warned is not None else [])
    write_json(out_dir / REPORT_NAME, report)
    log.debug("report: %s", json.dumps(report["seconds"]))
    return report
