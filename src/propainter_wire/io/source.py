"""What every clip source shares: the :class:`FrameSource` base and the file kinds.

:mod:`.frames` (image folders) and :mod:`.video` (video files) both build on this module;
neither imports the other's classes at import time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ..samples import SAMPLE_TYPES

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".exr", ".dpx", ".cin", ".tga", ".sgi", ".hdr",
              ".webp", ".jp2")
# Lossy formats: a result is written as PNG (EXR for float) beside them, never re-encoded lossily.
LOSSY_EXTS = (".jpg", ".jpeg", ".webp", ".jp2")
VIDEO_EXTS = (".mp4", ".mov", ".avi", ".mkv", ".webm")

__all__ = ["IMAGE_EXTS", "LOSSY_EXTS", "SAMPLE_TYPES", "VIDEO_EXTS", "FrameSource", "one_line"]


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (its type's name when it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__


class FrameSource:
    """A clip, read frame by frame.

    Attributes:
        path: the folder or video file.
        kind: ``'folder'`` or ``'video'``.
        stems: one output name per frame (file stems, or ``%05d`` indices for videos).
        fps: frames per second of a video; ``None`` for folders.
        height, width: frame size in pixels.
        dtype: sample type of every frame (``uint8``, ``uint16`` or ``float32``).
        has_alpha: the input had an alpha channel (dropped on reading).
        numbers: the frame number of each frame (sequences and videos), or None (a plain list).
    """

    numbers: list[int] | None = None

    kind: str = ""

    def __init__(self, path: Path, stems: Sequence[str], fps: float | None, height: int, width: int,
                 dtype: np.dtype, has_alpha: bool):
        self.path = Path(path)
        self.stems = list(stems)
        self.fps = fps
        self.height = int(height)
        self.width = int(width)
        self.dtype = np.dtype(dtype)
        self.has_alpha = has_alpha

    @property
    def bit_depth(self) -> int:
        """Bits per sample: 8, 16 or 32 (float)."""
        return {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(self.dtype, 32)

    @property
    def ext(self) -> str:
        """Extension for the output frames: ``.exr`` for float input, else ``.png``."""
        return ".exr" if self.dtype == np.float32 else ".png"

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` in pixels."""
        return self.height, self.width

    def __len__(self) -> int:
        return len(self.stems)

    def output_names(self) -> list[str]:
        """One output file name per frame: the stem and :attr:`ext`."""
        return [f"{stem}{self.ext}" for stem in self.stems]

    def write_frame(self, index: int, target: Path, frame: np.ndarray) -> None:
        """Write the result of frame ``index`` (``(H, W, 3)`` in :attr:`dtype`) to ``target``."""
        from .oiio import write_image

        write_image(target, frame)

    def __getitem__(self, index: int) -> np.ndarray:
        """Frame ``index`` as ``(H, W, 3)`` RGB in ``self.dtype``."""
        return self._read(self._normalize_index(index))

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]

    def read_all(self) -> np.ndarray:
        """Every frame stacked: ``(T, H, W, 3)`` in ``self.dtype`` (memory grows with length)."""
        out = np.empty((len(self), self.height, self.width, 3), dtype=self.dtype)
        for i in range(len(self)):
            out[i] = self[i]
        return out

    def validate(self, full: bool = False) -> None:
        """Check every frame can be read and has the first frame's size; raise ``InputError``."""
        raise NotImplementedError

    def close(self) -> None:
        """Release open files (a no-op for folders)."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _normalize_index(self, index: int) -> int:
        count = len(self)
        if not -count <= index < count:
            raise IndexError(f"frame {index} out of range (clip has {count})")
        return index % count

    def _read(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({str(self.path)!r}, frames={len(self)}, size={self.width}x{self.height}, "
                f"dtype={self.dtype}, fps={self.fps})")
