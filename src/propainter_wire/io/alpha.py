"""The input's alpha, read again frame by frame for a master that carries one (ProRes 4444).

Clip sources hand the engines RGB only (:func:`~propainter_wire.io.frames.to_rgb` drops the
alpha). The fill changes colour, not coverage, so an alpha master takes the input's own matte,
unchanged. It is read lazily, one frame at a time as the master is written, so nothing is kept
for the whole clip: an image sequence re-reads frame ``i``'s file, a video decodes once more in
order (only a video whose pixel format has an alpha plane; ordinary videos are not reopened).

Alpha planes come out as ``(H, W)`` ``uint16`` (0..65535), the samples the master's encoder
frames are built from (:func:`~propainter_wire.delivery.codecs.to_rgb16`): 8-bit ``a`` becomes
``a * 257``, float is clipped to [0, 1] and rounded, as the colour is.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import InputError
from .source import FrameSource, one_line

__all__ = ["SequenceAlpha", "VideoAlpha", "alpha16", "frame_alpha16", "open_alpha", "video_has_alpha"]


def alpha16(alpha: np.ndarray) -> np.ndarray:
    """An alpha plane of any supported sample type as ``uint16``: uint8 ``a * 257``, uint16 as it
    is, float ``rint(clip(a, 0, 1) * 65535)`` (NaN as 0)."""
    alpha = np.asarray(alpha)
    if alpha.dtype == np.uint8:
        return alpha.astype(np.uint16) * 257
    if alpha.dtype == np.uint16:
        return alpha
    return np.rint(np.clip(np.nan_to_num(alpha, nan=0.0), 0.0, 1.0) * 65535.0).astype(np.uint16)


def frame_alpha16(frame) -> np.ndarray:
    """A decoded ``av.VideoFrame``'s alpha as ``(H, W)`` uint16, its top level 65535.

    Planar formats (``yuva444p12le`` from ProRes 4444, ``gbrap*``, ``yuva420p``) give their
    alpha plane as stored, scaled by ``65535 / (2**bits - 1)`` and rounded: 3 ms a 1080p frame,
    where swscale's ``rgba64le`` conversion takes 32 ms and shifts instead of scaling (an 8-bit
    255 becomes 65280, a 10-bit 1023 65472: opaque would no longer be opaque). Packed formats
    (``argb``, ``rgba``, ``rgba64``, ``ya8``) go through ``rgba`` or ``rgba64le``, which keep the top level.
    """
    fmt = frame.format
    alpha = next(c for c in fmt.components if c.is_alpha)
    if fmt.is_planar and not fmt.name.endswith("be"):
        plane = frame.planes[alpha.plane]
        levels = np.frombuffer(plane, "<u2" if alpha.bits > 8 else np.uint8)
        levels = levels.reshape(plane.height, -1)[:, : frame.width].astype(np.uint32)
        peak = (1 << alpha.bits) - 1
        return ((levels * 65535 + peak // 2) // peak).astype(np.uint16)
    if alpha.bits <= 8:
        return alpha16(frame.to_ndarray(format="rgba")[:, :, 3])
    return frame.to_ndarray(format="rgba64le")[:, :, 3]


class SequenceAlpha:
    """The alpha channel of each file of an image sequence (EXR ``A``, RGBA/grey-alpha PNG, TIFF).

    A file without alpha gives an opaque plane (a sequence may mix them).
    """

    def __init__(self, files: list[Path], size: tuple[int, int]):
        self.files, self.size = list(files), tuple(size)

    def __call__(self, index: int) -> np.ndarray:
        """Frame ``index``'s alpha: ``(H, W)`` uint16."""
        from .oiio import read_image

        image = read_image(self.files[index])
        if image.ndim != 3 or image.shape[2] not in (2, 4):
            return np.full(self.size, 65535, np.uint16)
        return _checked(alpha16(image[:, :, -1]), self.size, self.files[index])

    def close(self) -> None:
        """Nothing to release (each file is opened and closed per frame)."""


def video_has_alpha(path: str | Path) -> bool:
    """Whether the first video stream's pixel format has an alpha plane (header only, no decoding);
    False without PyAV (OpenCV decodes no alpha) or for an unreadable file."""
    try:
        import av
    except ImportError:
        return False
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return False
            fmt = container.streams.video[0].codec_context.format
            return fmt is not None and any(c.is_alpha for c in fmt.components)
    except (av.FFmpegError, OSError):
        return False


class VideoAlpha:
    """The alpha plane of each frame of a video, decoded in order by PyAV (:func:`frame_alpha16`).

    Frames are asked for in order (the master's order); asking for an earlier one decodes again
    from the start. Packets the decoder rejects are skipped, as :class:`~.video.VideoFrames` does,
    so frame ``i`` here is frame ``i`` there.
    """

    def __init__(self, path: str | Path, size: tuple[int, int]):
        self.path, self.size = Path(path), tuple(size)
        self._frames: Iterator[np.ndarray] | None = None
        self._next = 0

    def __call__(self, index: int) -> np.ndarray:
        """Frame ``index``'s alpha: ``(H, W)`` uint16."""
        if self._frames is None or index < self._next:
            self.close()
            self._frames = self._decode()
        while True:
            alpha = next(self._frames, None)
            if alpha is None:
                self.close()
                raise InputError(f"video ends before frame {index} while reading its alpha", self.path)
            self._next += 1
            if self._next > index:
                return _checked(alpha, self.size, self.path)

    def _decode(self) -> Iterator[np.ndarray]:
        import av

        self._next = 0
        try:
            container = av.open(str(self.path))
        except (av.FFmpegError, OSError) as exc:
            raise InputError(f"cannot open video: {one_line(exc)}", self.path) from exc
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for packet in container.demux(stream):
                try:
                    decoded = packet.decode()
                except av.InvalidDataError:
                    continue
                for frame in decoded:
                    yield frame_alpha16(frame)
        except av.FFmpegError as exc:
            raise InputError(f"cannot decode video: {one_line(exc)}", self.path) from exc
        finally:
            container.close()

    def close(self) -> None:
        """Close the open decoder, if any."""
        if self._frames is not None:
            self._frames.close()
            self._frames = None
        self._next = 0


def open_alpha(source: FrameSource) -> SequenceAlpha | VideoAlpha | None:
    """A per-frame reader of ``source``'s alpha, or None when the input has none (the master is
    then opaque, as before).

    Image sequences: when the first file has an alpha channel (``source.has_alpha``). Videos: when
    the stream's pixel format has an alpha plane (ProRes 4444 ``yuva444p*``, QuickTime Animation
    ``argb``, PNG ``rgba``...).
    """
    size = (source.height, source.width)
    files = getattr(source, "files", None)
    if source.kind == "folder" and files is not None:
        return SequenceAlpha(files, size) if source.has_alpha else None
    if source.kind == "video" and video_has_alpha(source.path):
        return VideoAlpha(source.path, size)
    return None


def _checked(alpha: np.ndarray, size: tuple[int, int], path: Path) -> np.ndarray:
    if alpha.shape != size:
        raise InputError(f"alpha is {alpha.shape[1]}x{alpha.shape[0]}, the frames {size[1]}x{size[0]}", path)
    return np.ascontiguousarray(alpha)
