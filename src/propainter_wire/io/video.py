"""Reading video files frame by frame.

Decoding goes through PyAV (``av``, imported on first use); where PyAV is not
installed, OpenCV's ``VideoCapture`` is used instead. Frames are decoded in
order with a small cache of recent frames; going backwards re-opens the file and
decodes from the start, so memory stays flat whatever the clip's length.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import InputError
from .channels import pick_channels
from .source import FrameSource, one_line

# Recently decoded frames kept for repeated or slightly backward access.
CACHE_FRAMES = 4


def load_av():
    """The PyAV module, or ``None`` when it is not installed."""
    try:
        import av
    except ImportError:
        return None
    return av


class _PyAVDecoder:
    """Sequential RGB frames of the first video stream, through PyAV."""

    backend = "pyav"

    def __init__(self, av, path: Path):
        self.av = av
        self.path = path
        container = self._open()
        try:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            self.fps = float(rate) if rate else None
            self.count = int(stream.frames or 0)
        finally:
            container.close()
        if self.count <= 0:  # container without a frame count (mkv, webm): count packets
            self.count = self._count_packets()

    def _open(self):
        try:
            container = self.av.open(str(self.path))
        except (self.av.FFmpegError, OSError) as exc:
            raise InputError(f"cannot open video: {one_line(exc)}", self.path) from exc
        if not container.streams.video:
            container.close()
            raise InputError("file has no video stream", self.path)
        return container

    def _count_packets(self) -> int:
        container = self._open()
        try:
            return sum(1 for p in container.demux(container.streams.video[0]) if p.size)
        except self.av.FFmpegError as exc:
            raise InputError(f"cannot read video: {one_line(exc)}", self.path) from exc
        finally:
            container.close()

    def frames(self) -> Iterator[np.ndarray]:
        """``(H, W, 3)`` RGB frames: ``uint8``, or ``uint16`` for streams above 8 bits per sample.

        A packet the decoder rejects (a cut-off last packet, a damaged one) is skipped, so a
        truncated file yields the frames before the damage; the caller compares the count.
        """
        av = self.av
        container = self._open()
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for packet in container.demux(stream):
                try:
                    decoded = packet.decode()
                except av.InvalidDataError:
                    continue
                for frame in decoded:
                    deep = max((c.bits for c in frame.format.components), default=8) > 8
                    yield frame.to_ndarray(format="rgb48le" if deep else "rgb24")
        except av.FFmpegError as exc:
            raise InputError(f"cannot decode video: {one_line(exc)}", self.path) from exc
        finally:
            container.close()


class _OpenCVDecoder:
    """Sequential RGB ``uint8`` frames through ``cv2.VideoCapture`` (when PyAV is absent)."""

    backend = "opencv"

    def __init__(self, path: Path):
        import cv2

        self.path = path
        capture = self._open()
        try:
            fps = capture.get(cv2.CAP_PROP_FPS)
            self.fps = float(fps) if fps and fps > 0 else None
            self.count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        finally:
            capture.release()
        if self.count <= 0:
            self.count = sum(1 for _ in self.frames())

    def _open(self):
        import cv2

        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            capture.release()
            raise InputError("cannot open video (corrupt file or unsupported codec)", self.path)
        return capture

    def frames(self) -> Iterator[np.ndarray]:
        capture = self._open()
        try:
            while True:
                ok, bgr = capture.read()
                if not ok:
                    return
                yield pick_channels(bgr, (2, 1, 0))
        finally:
            capture.release()


class VideoFrames(FrameSource):
    """A video file's frames, decoded in order on access.

    ``stems`` are ``00000, 00001, ...`` (from ``start_number``); ``fps`` is the stream's average rate.
    Raises ``InputError`` when the file cannot be opened, holds no decodable frame,
    or ends before the frame count its container states.
    """

    kind = "video"

    def __init__(self, path: str | Path, start_number: int = 0):
        path = Path(path)
        if not path.is_file():
            raise InputError("no such file", path)
        self.path = path
        av = load_av()
        self._decoder = _PyAVDecoder(av, path) if av is not None else _OpenCVDecoder(path)
        self._stream: Iterator[np.ndarray] | None = None
        self._next = 0  # index of the frame the open stream yields next
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        count = self._decoder.count
        if count <= 0:
            raise InputError("video holds no frame", path)
        first = self._decode_up_to(0, count)
        super().__init__(path, [f"{start_number + i:05d}" for i in range(count)], self._decoder.fps,
                         first.shape[0], first.shape[1], first.dtype, False)

    @property
    def backend(self) -> str:
        """``'pyav'`` or ``'opencv'``."""
        return self._decoder.backend

    def _read(self, index: int) -> np.ndarray:
        frame = self._decode_up_to(index, len(self))
        if frame.shape[:2] != self.size or frame.dtype != self.dtype:
            raise InputError(f"frame {index} is {frame.shape[1]}x{frame.shape[0]} {frame.dtype}, the first is "
                             f"{self.width}x{self.height} {self.dtype} (size changes within the video)", self.path)
        return frame.copy()

    def _decode_up_to(self, index: int, count: int) -> np.ndarray:
        cached = self._cache.get(index)
        if cached is not None:
            self._cache.move_to_end(index)
            return cached
        if self._stream is None or index < self._next:  # going backwards: decode again from the start
            self._restart()
        while self._next <= index:
            frame = next(self._stream, None)
            if frame is None:
                decoded = self._next
                self.close()
                if decoded == 0:
                    raise InputError("video holds no decodable frame (corrupt or truncated file)", self.path)
                raise InputError(f"video ends after {decoded} decodable frames but its container states {count} "
                                 "(truncated or corrupt file)", self.path)
            self._cache[self._next] = frame
            if len(self._cache) > CACHE_FRAMES:
                self._cache.popitem(last=False)
            self._next += 1
        return self._cache[index]

    def _restart(self) -> None:
        self.close()
        self._stream = self._decoder.frames()
        self._next = 0

    def validate(self, full: bool = False) -> None:
        """``full``: decode the whole video once, checking it holds as many frames as its container states.

        Without ``full`` nothing more is done than at opening (the first frame decoded): a
        truncated file still fails clearly when its missing frames are read, so a caller
        that reads every frame anyway need not pay for a second decoding pass.
        """
        if full:
            for i in range(len(self)):
                self._read(i)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        self._next = 0
