"""Delivery in a file run: regrain of each composited frame, the master video and the review files.

``Delivery.start(...)`` is built once the inputs are read; the frame writers call
``compose`` (composite, then regrain the filled pixels) and the ordered writer hands
every composited frame to ``write``; ``close`` finishes the master (``inpainted.mp4`` /
``.mov``), ``review.mp4`` and ``review.png``. A master with an alpha plane (prores4444) takes the
input's own alpha, read again frame by frame (:mod:`propainter_wire.io.alpha`); opaque without one.

Resume: the master and the review are written whole at the end of a run, from the
composited frames in memory; a resumed run recomputes the frames already on disk for
them (the same values: compositing is deterministic and grain is drawn per frame from
``grain_rng(GRAIN_SEED, index)``). ``--video-only`` writes no frame files, so there is
nothing to resume from: such a run starts over.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..config import InpaintConfig
from ..delivery.codecs import DEFAULT_CODEC, get_codec
from ..delivery.options import DeliveryOptions
from ..errors import InputError
from ..pipeline.compositing import composite_frame, composite_region

log = logging.getLogger("propainter_wire")

MASTER_STEM = "inpainted"
REVIEW_VIDEO = "review.mp4"
REVIEW_SHEET = "review.png"
# Grain is drawn from grain_rng(GRAIN_SEED, frame index): fresh every frame, the same when redone.
GRAIN_SEED = 7
# The --regrain auto decision is taken once per clip from this many evenly spaced frames
# (median of their measures), so it cannot flicker from frame to frame.
AUTO_SAMPLE_FRAMES = 5


def master_name(codec: str) -> str:
    """The master's file name for a ``--video-codec`` choice: inpainted.mp4 or inpainted.mov."""
    return MASTER_STEM + get_codec(codec).suffix


def wants_master(config: InpaintConfig) -> bool:
    """A master is written with ``save_video``, ``video_only`` or a codec other than the default."""
    return config.save_video or config.video_only or config.video_codec != DEFAULT_CODEC


def wants_every_frame(config: InpaintConfig) -> bool:
    """Whether the run must composite every frame in order (master or review), resumed ones included."""
    return wants_master(config) or config.review


class Regrain:
    """``--regrain``: per frame, measure the plate's grain outside the fill and add it to the filled pixels.

    The ``auto`` decision is taken on first use (thread-safe) from ``AUTO_SAMPLE_FRAMES``
    frames: the plate's median residual std and its noise floor (``delivery.grain.has_grain``).
    """

    def __init__(self, mode: str, frames, raw_masks):
        self.mode, self.frames, self.raw_masks = mode, frames, raw_masks
        self._on: bool | None = None if mode == "auto" else False
        self._lock = threading.Lock()
        self.measured: dict = {}

    def enabled(self) -> bool:
        with self._lock:
            if self._on is None:
                self._on = self._decide()
            return self._on

    def _decide(self) -> bool:
        from ..delivery.grain import auto_regrain, estimate_grain, noise_floor

        count = len(self.raw_masks)
        picks = sorted({round(k * (count - 1) / max(AUTO_SAMPLE_FRAMES - 1, 1)) for k in range(AUTO_SAMPLE_FRAMES)})
        strength, floor = [], []
        for i in picks:
            frame, mask = np.asarray(self.frames[i]), np.asarray(self.raw_masks[i]) != 0
            strength.append(estimate_grain(frame, mask).strength)
            floor.append(noise_floor(frame, mask))
        on = auto_regrain(float(np.median(strength)), float(np.median(floor)))
        self.measured = {"strength": round(float(np.median(strength)), 5),
                         "noise_floor": round(float(np.median(floor)), 5), "on": on}
        log.info("regrain %s: plate residual %.4f, noise floor %.4f (unit range)", "on" if on else "off",
                 self.measured["strength"], self.measured["noise_floor"])
        return on

    def __call__(self, index: int, original: np.ndarray, composited: np.ndarray, region: np.ndarray) -> np.ndarray:
        """``composited`` with grain on the pixels of ``region`` the fill changed; the rest untouched."""
        from ..delivery.grain import estimate_grain, grain_rng, regrain

        if not self.enabled():
            return composited
        changed = region & np.any(composited != original, axis=-1)
        if not changed.any():
            return composited
        model = estimate_grain(original, region)
        return regrain(composited, None, changed, model, rng=grain_rng(GRAIN_SEED, index))


class Delivery:
    """The delivery side of one file run (see the module docstring).

    Args:
        options: the run's ``DeliveryOptions``.
        config: the run's settings (compositing; colour space of float frames for the review).
        out_dir: the output folder.
        video: the input path (probed for rate, timecode, colour tags and audio when it is a video).
        source: the opened clip (size, kind, rate, frame numbers).
        frames, raw_masks: the full-size input frames and user masks.
    """

    def __init__(self, options: DeliveryOptions, config: InpaintConfig, out_dir: Path, video: Path, source,
                 frames, raw_masks):
        self.options, self.config, self.out_dir = options, config, out_dir
        self.frames, self.raw_masks = frames, raw_masks
        self.numbers = list(source.numbers) if source.numbers else [int(s) if s.isdigit() else i
                                                                      for i, s in enumerate(source.stems)]
        self.size = (source.width, source.height)
        self.info = _probe(video) if source.kind == "video" else None
        self.rate = self._rate(source)
        self.regrain = Regrain(options.regrain, frames, raw_masks) if options.regrain != "off" else None
        self.source = source
        self.master = None
        self.alpha = None  # the input's alpha, read per frame for an alpha master (io.alpha)
        self.review = None
        self.sheet: dict[int, tuple] = {}
        self.sheet_picks = _sheet_picks(raw_masks) if options.review else set()
        self.paths: list[Path] = []

    def _rate(self, source) -> Fraction:
        from ..delivery.timing import snap_rate

        if self.options.fps is not None:
            return self.options.fps
        if self.info is not None:
            return self.info.rate
        return snap_rate(source.fps) if source.fps else Fraction(24)

    # -- per frame --------------------------------------------------------
    def compose(self, index: int, original: np.ndarray, filled: np.ndarray, raw_mask: np.ndarray,
                mask: np.ndarray, config: InpaintConfig) -> np.ndarray:
        """Composite frame ``index`` at full resolution, then regrain its filled pixels."""
        out = composite_frame(original, filled, raw_mask, mask, config)
        if self.regrain is None:
            return out
        region = composite_region(np.asarray(raw_mask) > 0, mask)
        return self.regrain(index, original, out, region)

    def open(self) -> None:
        """Open the master and review writers (before the first ``write``).

        Without PyAV an H.264 master falls back to :class:`~propainter_wire.io.output.VideoWriter`
        (OpenCV's MPEG-4); other codecs and the review need PyAV.
        """
        if wants_master(self.config):
            path = self.out_dir / master_name(self.options.video_codec)
            if self.info is None and self.options.video_codec == DEFAULT_CODEC and not _has_pyav():
                from ..io import VideoWriter

                self.master = _Uint8Video(VideoWriter(path, float(self.rate), *self.size))
            else:
                self.master = self._writer(path, self.options.codec, self.size, source_info=self.info,
                                           fps=self.options.fps)
                if self.options.codec.alpha:
                    from ..io.alpha import open_alpha

                    self.alpha = open_alpha(self.source)
            self.paths.append(path)
        if self.options.review:
            w, h = self.size
            self.review = self._writer(self.out_dir / REVIEW_VIDEO, "h264", (2 * w, h))
            self.paths += [self.out_dir / REVIEW_VIDEO, self.out_dir / REVIEW_SHEET]

    def _writer(self, path: Path, codec, size, **kwargs):
        if not _has_pyav():
            raise InputError(f"writing {path.name} needs PyAV: pip install av", path)
        from ..delivery.master import MasterWriter

        return MasterWriter(path, codec, size, rate=self.rate, **kwargs)

    @contextlib.contextmanager
    def writing(self) -> Iterator[Delivery | None]:
        """Open the writers; yield this object (None when there is no master or review); close them
        on success, drop their partial files on failure."""
        try:
            self.open()
            yield self if (self.master is not None or self.review is not None) else None
        except BaseException:
            self.abort()
            raise
        self.close()

    def write(self, index: int, frame: np.ndarray) -> None:
        """The composited frame ``index`` (frames arrive in order, every one of the clip)."""
        from ..delivery.review import side_by_side

        if self.master is not None:
            self.master.write(frame if self.alpha is None else _with_alpha(frame, self.alpha(index)))
        if self.review is not None:
            number = self.numbers[index]
            self.review.write(side_by_side(self.frames[index], frame, self.raw_masks[index], number,
                                           self._colorspace()))
            if index in self.sheet_picks:
                self.sheet[index] = (np.asarray(self.frames[index]), frame, np.asarray(self.raw_masks[index]), number)

    def close(self) -> list[Path]:
        """Finish the master and review files (each renamed into place when complete); return their paths."""
        from ..delivery.review import contact_sheet
        from ..io.output import write_image

        self._close_alpha()
        for writer in (self.master, self.review):
            if writer is not None:
                writer.close()
        if self.options.review and self.sheet:
            rows = [self.sheet[i] for i in sorted(self.sheet)]
            sheet = contact_sheet([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                                  [r[3] for r in rows], count=len(rows), colorspace=self._colorspace())
            write_image(self.out_dir / REVIEW_SHEET, sheet)
        return self.paths

    def abort(self) -> None:
        """Drop the partial master and review video (safe to call more than once)."""
        self._close_alpha()
        for writer in (self.master, self.review):
            if writer is not None:
                writer.abort()

    def _close_alpha(self) -> None:
        if self.alpha is not None:
            self.alpha.close()

    def _colorspace(self) -> str | None:
        colorspace = self.config.colorspace
        return None if colorspace in (None, "display", "srgb_display") else colorspace

    def summary(self) -> dict:
        """What the report records: the files written, the master's codec, rate and alpha ("input" or
        "opaque", alpha codecs only), the regrain decision."""
        out = {"files": [p.name for p in self.paths], "video_codec": self.options.video_codec,
               "rate": str(self.rate), "video_only": self.options.video_only, "regrain": self.options.regrain}
        if self.master is not None and self.options.codec.alpha:
            out["alpha"] = "input" if self.alpha is not None else "opaque"
        if self.regrain is not None and self.regrain.measured:
            out["regrain_measured"] = self.regrain.measured
        if self.info is not None:
            out.update(timecode=self.info.timecode, audio_streams=len(self.info.audio),
                       variable_rate=self.info.variable_rate)
        return out


def _with_alpha(frame: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB and the input's (H, W) uint16 alpha -> (H, W, 4) uint16 RGBA (the master's samples)."""
    from ..delivery.codecs import to_rgb16

    return np.concatenate([to_rgb16(frame, alpha=False), alpha[:, :, None]], axis=2)


class _Uint8Video:
    """io's H.264 ``VideoWriter`` (PyAV-free fallback) with the master's ``write``/``close``/``abort``."""

    def __init__(self, writer):
        self.writer = writer

    def write(self, frame: np.ndarray) -> None:
        from ..samples import to_uint8

        self.writer.write(to_uint8(frame))

    def close(self) -> None:
        self.writer.close()

    def abort(self) -> None:
        self.writer.__exit__(RuntimeError, RuntimeError("aborted"), None)


def _has_pyav() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def remove_empty_folder(folder: Path) -> None:
    """Remove ``folder`` when it exists and is empty (a ``--video-only`` run's frames folder)."""
    try:
        folder.rmdir()
    except OSError:
        pass


def _probe(video: Path):
    """``probe_source`` of a video input; None when PyAV is missing (the master then needs it anyway)."""
    if not _has_pyav():
        return None
    from ..delivery.master import probe_source

    return probe_source(video)


def _sheet_picks(raw_masks, count: int | None = None) -> set[int]:
    """The frames of the contact sheet: ``SHEET_FRAMES`` evenly among the masked ones (as ``contact_sheet``)."""
    from ..delivery.review import SHEET_FRAMES

    count = count or SHEET_FRAMES
    masked = [i for i, m in enumerate(raw_masks) if np.any(m)] or list(range(len(raw_masks)))
    return {masked[round(k * (len(masked) - 1) / max(count - 1, 1))] for k in range(min(count, len(masked)))}
