"""Masters: probe the source, then write the result with its timecode, rate, colour tags and audio.

``probe_source`` reads what a master must keep from the input video (demuxing only, no
decoding: about 1 s per 10 000 frames). ``MasterWriter`` encodes the result frames in
order and copies the source's audio packets unchanged (no re-encode: bit-identical
audio, same sync), interleaved with the video as it is written.

Timestamps: with a source, every frame keeps the source's presentation timestamp, so
audio stays in sync and a variable-frame-rate source keeps its timing (or is refused,
``vfr="refuse"``). Without one (image sequences), frames are spaced evenly at the rate.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import InputError
from .codecs import VideoCodec, check_encoder, encoder_frame, even_size, get_codec, pad_frame
from .timing import advance_timecode, snap_rate

log = logging.getLogger("propainter_wire")

TEMP_PREFIX = ".pw-tmp-"
# Two consecutive frame intervals differing by more than this fraction of the median (and by
# more than one tick of the time base, which absorbs rounding: 23.976 in 1/1000 s ticks is
# 41 or 42) mark a variable-frame-rate source. Phone footage varies by 5-30 %.
_VFR_TOLERANCE = 0.02
# Audio is muxed up to this far ahead of the last video frame written (seconds).
_AUDIO_LEAD_S = 0.5


@dataclasses.dataclass(frozen=True)
class AudioInfo:
    """One audio stream of the source: its index in the file, codec, sample rate (Hz), channels."""

    index: int
    codec: str
    sample_rate: int
    channels: int


@dataclasses.dataclass(frozen=True)
class SourceInfo:
    """What a master keeps from the input video.

    Attributes:
        path: the input file.
        width, height: frame size in pixels.
        rate: frame rate, exact (24000/1001 for 23.976); the average rate when variable.
        time_base: the video stream's tick, seconds.
        pts: presentation timestamps of the frames in display order, in ``time_base`` ticks.
        variable_rate: frame intervals differ (see ``_VFR_TOLERANCE``).
        timecode: start timecode ("HH:MM:SS:FF", ';' for drop-frame) or None.
        color_primaries, color_trc, colorspace, color_range: FFmpeg's AVCOL_* numbers of the
            video stream, None where unspecified.
        pix_fmt: the stream's pixel format; ``alpha`` says whether it has an alpha plane.
        audio: the audio streams, in file order.
    """

    path: Path
    width: int
    height: int
    rate: Fraction
    time_base: Fraction
    pts: tuple[int, ...]
    variable_rate: bool
    timecode: str | None
    color_primaries: int | None
    color_trc: int | None
    colorspace: int | None
    color_range: int | None
    pix_fmt: str | None
    alpha: bool
    audio: tuple[AudioInfo, ...]

    @property
    def frame_count(self) -> int:
        return len(self.pts)

    def rate_range(self) -> tuple[float, float]:
        """Lowest and highest instantaneous frame rate (frames per second)."""
        if len(self.pts) < 2:
            return float(self.rate), float(self.rate)
        steps = np.diff(np.asarray(self.pts, np.int64)) * float(self.time_base)
        steps = steps[steps > 0]
        return float(1 / steps.max()), float(1 / steps.min())


def _tag(value, unspecified: int = 2) -> int | None:
    """An AVCOL_* number; None when absent or 'unspecified' (2 for primaries/trc/matrix, 0 for range)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return None if number == unspecified else number


def _has_alpha(av, pix_fmt: str | None) -> bool:
    try:
        return any(c.is_alpha for c in av.VideoFormat(pix_fmt).components)
    except (TypeError, ValueError):
        return False


def _is_variable(pts: np.ndarray) -> bool:
    if len(pts) < 3:
        return False
    steps = np.diff(pts)
    median = float(np.median(steps))
    return float(steps.max() - steps.min()) > max(1.0, _VFR_TOLERANCE * median)


def probe_source(path: str | Path) -> SourceInfo:
    """Read rate, timestamps, timecode, colour tags, alpha and audio streams of a video.

    Raises:
        InputError: the file cannot be opened or has no video stream.
    """
    import av

    path = Path(path)
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise InputError(f"cannot open video: {exc}", path) from exc
    with container:
        if not container.streams.video:
            raise InputError("no video stream", path)
        video = container.streams.video[0]
        ctx = video.codec_context
        timecode = video.metadata.get("timecode") or container.metadata.get("timecode")
        for stream in container.streams:
            timecode = timecode or stream.metadata.get("timecode")
        audio = tuple(AudioInfo(s.index, s.codec_context.name, int(s.codec_context.sample_rate or 0),
                                int(getattr(s.codec_context, "channels", 0) or len(s.layout.channels)))
                      for s in container.streams.audio)
        pts = sorted(p.pts for p in container.demux(video)
                     if p.pts is not None and p.size and not getattr(p, "is_discard", False))
        pix_fmt = getattr(ctx, "pix_fmt", None) or (ctx.format.name if ctx.format else None)
        guessed = video.guessed_rate or video.average_rate or video.base_rate
        pts_arr = np.asarray(pts, np.int64)
        variable = _is_variable(pts_arr)
        if variable and len(pts) > 1:
            span = (pts_arr[-1] - pts_arr[0]) * Fraction(video.time_base)
            rate = snap_rate(Fraction(len(pts) - 1) / span) if span > 0 else snap_rate(guessed)
        else:
            rate = snap_rate(Fraction(guessed)) if guessed else Fraction(24)
        return SourceInfo(
            path=path, width=ctx.width, height=ctx.height, rate=rate, time_base=Fraction(video.time_base),
            pts=tuple(int(p) for p in pts), variable_rate=variable, timecode=timecode,
            color_primaries=_tag(getattr(ctx, "color_primaries", None)),
            color_trc=_tag(getattr(ctx, "color_trc", None)), colorspace=_tag(getattr(ctx, "colorspace", None)),
            color_range=_tag(getattr(ctx, "color_range", None), unspecified=0), pix_fmt=pix_fmt,
            alpha=_has_alpha(av, pix_fmt),
            audio=audio)


class MasterWriter:
    """Encode result frames into a master file, keeping the source's timing, tags and audio.

    Use as a context manager (or call ``close``/``abort``); frames go to a temporary name
    beside ``path`` that is renamed over ``path`` on a clean close, so an interrupted run
    never leaves a half-written master under the final name.

    Args:
        path: the master file; its extension must be ``codec.suffix`` (.mp4 or .mov).
        codec: a ``VideoCodec`` or its name (``codecs.CODECS``).
        size: (width, height) of the frames given to ``write``; odd sizes are padded by one
            edge row/column where the chroma subsampling needs it.
        rate: frame rate when neither ``fps`` nor ``source_info`` gives one.
        source_info: the input video (``probe_source``): its rate, timestamps, timecode,
            colour tags and audio are kept. None for image sequences.
        fps: the user's ``--fps`` (image sequences); refused when it differs from a video
            source's rate (the copied audio would drift).
        first_frame: index in the source of the first frame written (a partial range):
            picks the timestamps and moves the timecode on by that many frames.
        vfr: "keep" (frames keep the source's timestamps) or "refuse" (``InputError`` for a
            variable-frame-rate source).
    Raises:
        InputError: missing encoder, VFR source refused, conflicting rates, unwritable path.
    """

    def __init__(self, path: str | Path, codec: VideoCodec | str, size: tuple[int, int],
                 rate: Fraction | float | None = None, source_info: SourceInfo | None = None,
                 fps: Fraction | float | None = None, first_frame: int = 0, vfr: str = "keep"):
        import av

        self._av = av
        self.path = Path(path)
        self.codec = get_codec(codec) if isinstance(codec, str) else codec
        if self.path.suffix.lower() != self.codec.suffix:
            raise ValueError(f"{self.codec.name} masters are {self.codec.suffix} files, got {self.path.name}")
        if vfr not in ("keep", "refuse"):
            raise ValueError(f"vfr must be 'keep' or 'refuse', got {vfr!r}")
        check_encoder(self.codec)
        self._vfr = vfr
        self.source = source_info
        self.rate = self._resolve_rate(rate, fps)
        self.first_frame = int(first_frame)
        self.frames_written = 0
        self.width, self.height = int(size[0]), int(size[1])
        self._enc_w, self._enc_h = even_size(self.width, self.height, self.codec)
        self._keep_pts = source_info is not None and len(source_info.pts) > 0
        self._time_base = source_info.time_base if self._keep_pts else 1 / self.rate
        self._temp = self.path.with_name(f"{TEMP_PREFIX}{secrets.token_hex(4)}-{self.path.name}")
        self._src = None
        self._audio_iter = None
        self._audio_pending = None
        self._audio_map: dict[int, object] = {}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._out = av.open(str(self._temp), mode="w", format=self.codec.container)
        except (OSError, av.FFmpegError) as exc:
            raise InputError(f"cannot write: {exc}", self.path) from exc
        try:
            self._open_streams()
        except BaseException:
            self.abort()
            raise
        if source_info is not None and source_info.variable_rate:
            lo, hi = source_info.rate_range()
            log.info("%s: variable frame rate (%.3f-%.3f fps): the master keeps its timestamps",
                     source_info.path.name, lo, hi)

    # -- set-up -----------------------------------------------------------
    def _resolve_rate(self, rate, fps) -> Fraction:
        src = self.source
        if src is not None and src.variable_rate and self._vfr == "refuse":
            lo, hi = src.rate_range()
            raise InputError(f"variable frame rate ({lo:.3f}-{hi:.3f} fps) is refused for masters; convert it "
                             f"to a constant rate first (e.g. ffmpeg -fps_mode cfr -r 24000/1001)", src.path)
        if fps is not None:
            fps = snap_rate(fps)
            if src is not None and src.audio and fps != src.rate:
                raise InputError(f"--fps {fps} differs from the video's {src.rate} fps; the copied audio "
                                 f"would drift (--fps is for image sequences)", src.path)
            return fps
        if src is not None:
            return src.rate
        if rate is None:
            raise ValueError("a frame rate is needed: give rate, fps or source_info")
        return snap_rate(rate)

    def _open_streams(self) -> None:
        codec, src = self.codec, self.source
        stream = self._out.add_stream(codec.encoder, rate=self.rate, options=dict(codec.options))
        stream.width, stream.height = self._enc_w, self._enc_h
        stream.pix_fmt = codec.pix_fmt
        stream.time_base = self._time_base
        ctx = stream.codec_context
        ctx.time_base = self._time_base
        ctx.framerate = self.rate
        if codec.codec_tag:
            ctx.codec_tag = codec.codec_tag
        # Untagged sources are tagged BT.709 limited range, the matrix the frames are converted with.
        tags = {"color_primaries": 1, "color_trc": 1, "colorspace": 1, "color_range": 1}
        if src is not None:
            for key in tags:
                value = getattr(src, key)
                if value is not None:
                    tags[key] = value
        self._colorspace, self._full_range = tags["colorspace"], tags["color_range"] == 2
        for key, value in tags.items():
            try:
                setattr(ctx, key, value)
            except (AttributeError, TypeError, ValueError):  # PyAV < 13 cannot set these tags
                log.debug("cannot set %s on this PyAV", key)
        timecode = src.timecode if src is not None else None
        if timecode:
            timecode = advance_timecode(timecode, self.first_frame, self.rate)
            stream.metadata["timecode"] = timecode
        self.timecode = timecode
        self._video = stream
        if src is not None and src.audio:
            self._open_audio()

    def _open_audio(self) -> None:
        av = self._av
        self._src = av.open(str(self.source.path))
        inputs = [s for s in self._src.streams if s.type == "audio"]
        for stream in inputs:
            if hasattr(self._out, "add_stream_from_template"):
                out = self._out.add_stream_from_template(stream)
            else:  # PyAV < 14
                out = self._out.add_stream(template=stream)
            self._audio_map[stream.index] = out
        self._audio_iter = self._src.demux(*inputs)

    # -- writing ----------------------------------------------------------
    def _pts(self, i: int) -> int:
        if not self._keep_pts:
            return i
        pts = self.source.pts
        k = self.first_frame + i
        if k < len(pts):
            return pts[k]
        step = pts[-1] - pts[-2] if len(pts) > 1 else round(1 / (self.rate * self._time_base))
        return pts[-1] + (k - len(pts) + 1) * step

    def write(self, frame: np.ndarray) -> None:
        """Encode the next frame: (H, W, 3|4) RGB(A), uint8/uint16/float 0-1, (H, W) = ``size``."""
        if frame.shape[:2] != (self.height, self.width):
            raise ValueError(f"frame {frame.shape[1]}x{frame.shape[0]} is not the master's "
                             f"{self.width}x{self.height}")
        frame = pad_frame(frame, self._enc_w, self._enc_h)
        picture = encoder_frame(frame, self.codec, self._colorspace, self._full_range)
        picture.pts = self._pts(self.frames_written)
        picture.time_base = self._time_base
        self._mux(self._video.encode(picture))
        self.frames_written += 1
        self._mux_audio(float(picture.pts * self._time_base) + _AUDIO_LEAD_S)

    def _mux(self, packets) -> None:
        try:
            self._out.mux(packets)
        except (self._av.FFmpegError, ValueError) as exc:
            raise InputError(f"cannot write the master ({exc}); an audio codec the "
                             f"{self.codec.container} container does not take needs --video-codec prores "
                             f"(.mov)", self.path) from exc

    def _mux_audio(self, until_s: float | None) -> None:
        """Copy source audio packets up to ``until_s`` seconds (all remaining when None)."""
        if self._audio_iter is None:
            return
        while True:
            packet = self._audio_pending
            if packet is None:
                packet = next(self._audio_iter, None)
                if packet is None:
                    self._audio_iter = None
                    return
                if packet.dts is None and packet.pts is None:
                    continue  # the demuxer's end-of-stream marker
            if until_s is not None and packet.pts is not None and float(packet.pts * packet.time_base) > until_s:
                self._audio_pending = packet
                return
            self._audio_pending = None
            packet.stream = self._audio_map[packet.stream.index]
            self._mux(packet)

    def close(self) -> Path:
        """Flush the encoder and the remaining audio, and move the master to its final name."""
        try:
            self._mux(self._video.encode(None))
            self._mux_audio(None)
            self._out.close()
            if self._src is not None:
                self._src.close()
            os.replace(self._temp, self.path)
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError):
                raise InputError(f"cannot write: {exc.strerror or exc}", self.path) from exc
            raise
        return self.path

    def abort(self) -> None:
        """Drop the partial master (safe to call more than once)."""
        for handle in (getattr(self, "_out", None), self._src):
            try:
                if handle is not None:
                    handle.close()
            except Exception:  # closing a half-written container may itself fail
                pass
        try:
            self._temp.unlink()
        except OSError:
            pass

    def __enter__(self) -> MasterWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
