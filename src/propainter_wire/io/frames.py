"""Reading a clip: a folder of still images, a numbered sequence or a video file, frame by frame.

``open_frames(path)`` returns a ``FrameSource``. Frames are RGB ``(H, W, 3)`` in the
file's own sample type: ``uint8`` (0..255), ``uint16`` (0..65535) or ``float32``
(EXR, float TIFF: unclipped). Images are decoded by OpenImageIO (:mod:`.oiio`; by OpenCV
for PNG, JPEG, BMP and TIFF where OpenImageIO is not installed). Grey images are expanded
to three channels; an alpha channel is dropped (``has_alpha`` remembers it was there).

Frames are read on access, so memory does not grow with the clip's length.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..errors import InputError
from .oiio import header, image_size, read_image, write_plate
from .sequence import find_sequence, is_pattern
from .source import IMAGE_EXTS, LOSSY_EXTS, VIDEO_EXTS, FrameSource
from .video import VideoFrames

__all__ = ["IMAGE_EXTS", "VIDEO_EXTS", "FolderFrames", "FrameSource", "image_size", "list_images",
           "natural_key", "open_frames", "read_image", "to_rgb"]

def natural_key(name: str) -> tuple:
    """Sort key that orders digit runs by value: ``frame2`` before ``frame10``.

    Ties (``f01`` vs ``f1``) fall back to the plain name, so the order is total.
    """
    parts = re.split(r"(\d+)", name)
    return tuple(int(p) if p.isdigit() else p.lower() for p in parts), name


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS


def list_images(folder: str | Path) -> list[Path]:
    """Image files of ``folder`` in natural order, hidden and non-image files skipped.

    Raises:
        InputError: the folder is missing, empty or holds no image.
    """
    folder = Path(folder)
    if not folder.exists():
        raise InputError("no such file or folder", folder)
    if not folder.is_dir():
        raise InputError("not a folder", folder)
    try:
        names = [n for n in os.listdir(folder) if not n.startswith(".")]
    except OSError as exc:
        raise InputError(f"cannot list folder: {exc.strerror}", folder) from exc
    if not names:
        raise InputError("folder is empty", folder)
    files = [folder / n for n in names if is_image_file(Path(n)) and (folder / n).is_file()]
    if not files:
        raise InputError(f"folder holds no image ({', '.join(IMAGE_EXTS)})", folder)
    return sorted(files, key=lambda p: natural_key(p.name))


def to_rgb(image: np.ndarray) -> tuple[np.ndarray, bool]:
    """``read_image`` output -> ``(H, W, 3)`` RGB and whether an alpha channel was dropped."""
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2), False
    channels = image.shape[2]
    if channels == 2:  # grey + alpha
        return np.repeat(image[:, :, :1], 3, axis=2), True
    if channels == 4:
        return np.ascontiguousarray(image[:, :, :3]), True
    return image, False


# ---------------------------------------------------------------------------
# clip sources
# ---------------------------------------------------------------------------
class FolderFrames(FrameSource):
    """A folder of still images or a numbered sequence (``name.####.ext``), one file per frame.

    A numbered sequence is in frame-number order (:attr:`numbers`); a plain list of names in
    natural order. Frames are the colour channels of each file's data window.
    """

    kind = "folder"

    def __init__(self, folder: str | Path, frames=None):
        seq = find_sequence(folder, IMAGE_EXTS, lambda name: natural_key(name))
        folder = Path(folder)
        if not len(seq):
            list_images(folder)  # the reason, named: missing, empty, no image
        seq = seq.select(frames, folder)
        self.sequence = seq
        self.files = list(seq.files)
        self.numbers = list(seq.numbers) if seq.numbers is not None else None
        head = header(self.files[0])
        first, has_alpha = to_rgb(read_image(self.files[0]))
        super().__init__(folder, [f.stem for f in self.files], None, first.shape[0], first.shape[1],
                         first.dtype, has_alpha)
        self.origin = (int(head.x), int(head.y))  # the data window's corner in the display window
        self.display = (int(head.full_height), int(head.full_width))

    def output_names(self) -> list[str]:
        """Each input file's own name; lossy inputs (JPEG) get ``.png`` (``.exr`` for float)."""
        return [f.name if f.suffix.lower() not in LOSSY_EXTS else f"{f.stem}{self.ext}" for f in self.files]

    def write_frame(self, index: int, target: Path, frame: np.ndarray) -> None:
        """Write frame ``index``'s result with its input file's parts, channels and header (:func:`write_plate`)."""
        write_plate(self.files[index], target, frame)

    def _read(self, index: int) -> np.ndarray:
        path = self.files[index]
        frame, _ = to_rgb(read_image(path))
        self._check(path, frame.shape[:2], frame.dtype)
        return frame

    def _check(self, path: Path, size: tuple[int, int], dtype: np.dtype | None) -> None:
        if tuple(size) != self.size:
            raise InputError(f"frame size {size[1]}x{size[0]} differs from the first frame's "
                             f"{self.width}x{self.height} ({self.files[0].name})", path)
        if dtype is not None and dtype != self.dtype:
            raise InputError(f"sample type {dtype} differs from the first frame's {self.dtype} "
                             f"({self.files[0].name})", path)

    def validate(self, full: bool = False) -> None:
        """Read each file's header (``full``: decode each file) and compare sizes with the first frame.

        Raises:
            InputError: naming the first offending file, with both sizes.
        """
        for i, path in enumerate(self.files):
            if full:
                self._read(i)
            else:
                self._check(path, image_size(path), None)


def open_frames(path: str | Path, frames=None, start_number: int = 0) -> FrameSource:
    """Open a clip: a folder of images, a numbered sequence or a video file (mp4, mov, avi, mkv, webm).

    Args:
        path: a folder, ``name.####.ext`` / ``name.%04d.ext`` / ``name.@@@@.ext``, or a video.
        frames: a :class:`~.sequence.FrameRange` of frame numbers to keep (sequences only).
        start_number: the first output frame number of a video.

    Raises:
        InputError: missing path, empty folder, folder without images, two sequences in one
            folder, a gap in the numbers, unsupported extension, unreadable first frame or
            undecodable video.
    """
    path = Path(path).expanduser()
    if is_pattern(path):
        return FolderFrames(path, frames)
    if not path.exists():
        raise InputError("no such file or folder", path)
    if path.is_dir():
        return FolderFrames(path, frames)
    ext = path.suffix.lower()
    if ext in VIDEO_EXTS:
        if frames is not None:
            raise InputError("--frames selects frames of an image sequence, not of a video", path)
        return VideoFrames(path, start_number)
    if ext in IMAGE_EXTS:
        raise InputError("a single image is not a clip: give a folder of frames, a name.####.ext sequence "
                         "or a video file", path)
    raise InputError(f"unsupported extension '{path.suffix}' (folders of {', '.join(IMAGE_EXTS)} "
                     f"or videos {', '.join(VIDEO_EXTS)})", path)
