"""The engine's input: frames and masks at processing size, and running an engine on them."""

from __future__ import annotations

import logging

import numpy as np

from ..config import InpaintConfig
from ..engines.base import EngineInput
from ..errors import InputError
from ..io.stream import FrameStream
from ..pipeline.compositing import composite_frame, processing_size, resize_frame, resize_mask
from ..pipeline.stages import Stages
from ..tuning import Tuning
from .engines import EngineLoader, select_engine
from .threads import batched_map, parallel_map

log = logging.getLogger("propainter_wire")


def prepare_engine_input(frames, raw_masks, config: InpaintConfig, scratch=None,
                         tuning: Tuning | None = None) -> EngineInput:
    """Frames and user masks at full size -> the engine's input at processing size.

    Frames become float32 in [0, 1] in the clip's engine encoding (scene-linear floats through a log
    encoding, :mod:`propainter_wire.io.colour`), except display-referred uint8 frames that need no
    resizing, which stay uint8.

    Args:
        frames: a sequence (list, disk array or :class:`FrameStream`) of (H, W, 3) frames,
            uint8, uint16 or float32.
        raw_masks: a sequence of (H, W) bool masks, the user's own.
        config: the processing size and the two mask dilations are read.
        scratch: with one, the processing-size arrays are written there in batches (host memory
            independent of the clip's length), else stacked in memory.
        tuning: its ``threads()`` resize and dilate in parallel (default: ``Tuning()``).
    """
    from ..io.colour import engine_encoding
    from ..io.masks import dilate

    threads = (Tuning() if tuning is None else tuning).threads()
    h, w = frames[0].shape[:2]
    ph, pw = processing_size(h, w, config)
    # 8-bit frames processed at their own size go to the engine as they are (no float round trip)
    encoding = engine_encoding(config.colorspace, np.asarray(frames[0]).dtype)
    as_is = (ph, pw) == (h, w) and np.asarray(frames[0]).dtype == np.uint8 and encoding.identity
    frame_dtype = np.uint8 if as_is else np.float32

    def masks_of(i: int):
        raw = resize_mask(raw_masks[i], ph, pw)
        grown = dilate(raw, config.mask_dilation)
        # the flow mask is usually grown as far (both 4 by default): the same array (they are stacked apart)
        same = config.effective_flow_mask_dilation == config.mask_dilation
        return raw, grown, grown if same else dilate(raw, config.effective_flow_mask_dilation)

    n = len(frames)
    mask_layout = [((ph, pw), bool)] * 3
    if as_is and scratch is None and isinstance(frames, FrameStream):  # still decoding: handed on as it is
        proc_raw, masks, flow_masks = _filled(n, masks_of, mask_layout, threads)
        return EngineInput(frames=frames, masks=masks, flow_masks=flow_masks, raw_masks=proc_raw)

    def one(i: int):
        frame = np.asarray(frames[i]) if as_is else resize_frame(encoding.encode(frames[i]), ph, pw).astype(np.float32)
        return (frame, *masks_of(i))

    if scratch is None:
        proc_frames, proc_raw, masks, flow_masks = _filled(n, one, [((ph, pw, 3), frame_dtype), *mask_layout],
                                                           threads)
        return EngineInput(frames=proc_frames, masks=masks, flow_masks=flow_masks, raw_masks=proc_raw)
    arrays = (scratch.array("proc_frames", n, (ph, pw, 3), frame_dtype), scratch.array("proc_raw", n, (ph, pw), bool),
              scratch.array("masks", n, (ph, pw), bool), scratch.array("flow_masks", n, (ph, pw), bool))
    for i, parts in batched_map(one, range(n), threads):
        for arr, part in zip(arrays, parts, strict=True):
            arr[i] = part
    proc_frames, proc_raw, masks, flow_masks = arrays
    return EngineInput(frames=proc_frames, masks=masks, flow_masks=flow_masks, raw_masks=proc_raw, scratch=scratch)


def _filled(n: int, parts_of, layout, threads: int) -> tuple[np.ndarray, ...]:
    """Arrays ``(n, *shape)`` of ``layout`` (``[(shape, dtype), ...]``) whose item ``i`` is ``parts_of(i)``.

    Each thread writes its frame's parts into place, so the arrays' pages are first touched on
    every thread at once: stacking per-frame parts afterwards copied 400 MB of 4K masks on one
    thread (0.6 s of a 4K×16 run's 1.4-1.7 s ``prepare`` on a 2-core VM).
    """
    arrays = tuple(np.empty((n, *shape), dtype) for shape, dtype in layout)

    def put(i: int) -> None:
        for array, part in zip(arrays, parts_of(i), strict=True):
            array[i] = part

    parallel_map(put, range(n), threads)
    return arrays


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
         on_final=None, tuning: Tuning | None = None) -> tuple[np.ndarray, object | None]:
    """Run an engine on a prepared clip.

    Args:
        inp: the clip at processing size (:func:`prepare_engine_input`).
        engine: an engine, an :class:`EngineLoader` (waited for under the ``load`` stage), or
            None to select one for ``device`` (default: ``config.device`` resolved) and ``tuning``.
        on_final: handed to the engine (frames it reports final early).
    Returns:
        the (T, h, w, 3) frames at processing size (float32 in [0, 1], or uint8 where the engine or
        the unchanged input gives 8-bit frames), and the engine. Every mask empty: the frames come
        back unchanged and no engine is made (None).
    Raises:
        InputError: no pixel of the clip is known (checked before any engine is loaded).
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
                    from ..runtime.device import resolve_device

                    device = resolve_device(config.device)
                engine = select_engine(config, device, tuning)
    with stages.failures(getattr(engine, "name", "engine")):  # a failure between the engine's own stages
        return engine.run(inp, config, stages, on_final=on_final), engine


def run_engine(frames: list[np.ndarray], raw_masks: list[np.ndarray], config: InpaintConfig,
               stages: Stages, engine=None, tuning: Tuning | None = None) -> list[np.ndarray]:
    """Inpaint in memory: frames (H, W, 3) native dtype, masks (H, W) bool -> composited frames
    (H, W, 3) in the frames' dtype."""
    with stages("prepare"):
        inp = prepare_engine_input(frames, raw_masks, config, tuning=tuning)
    filled, engine = fill(inp, config, stages, engine, tuning=tuning)
    if engine is None:
        return [f.copy() for f in frames]
    with stages("composite", total=len(frames)) as bar:
        out = []
        for i, frame in enumerate(frames):
            out.append(composite_frame(frame, filled[i], raw_masks[i], inp.masks[i], config))
            bar.update()
    return out
