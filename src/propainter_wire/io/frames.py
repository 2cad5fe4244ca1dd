"""Reading a clip: a folder of still images or a video file, frame by frame.

``open_frames(path)`` returns a ``FrameSource``. Frames are RGB ``(H, W, 3)`` in the
file's own sample type: ``uint8`` (0..255), ``uint16`` (0..65535) or ``float32``
(EXR and float TIFF, scene-linear, unclipped). Grey images are expanded to three
channels; an alpha channel is dropped (``has_alpha`` remembers it was there).

Frames are read on access, so memory does not grow with the clip's length.
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..samples import SAMPLE_TYPES
from .source import IMAGE_EXTS, VIDEO_EXTS, FrameSource, one_line
from .video import VideoFrames

__all__ = ["IMAGE_EXTS", "VIDEO_EXTS", "FolderFrames", "FrameSource", "image_size", "list_images",
           "natural_key", "open_frames", "read_image", "to_rgb"]

# Tail of a JPEG searched for its end-of-image marker (bytes).
_JPEG_TAIL = 1 << 16


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


# ---------------------------------------------------------------------------
# one image
# ---------------------------------------------------------------------------
def read_image(path: str | Path) -> np.ndarray:
    """Decode one image file as stored: no channel expansion, alpha kept.

    Returns:
        ``(H, W)`` grey, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA; ``uint8``, ``uint16``
        or ``float32``. Palette images come back as their palette colours (RGB/RGBA).

    Raises:
        InputError: missing, unreadable, truncated or of an unsupported sample type.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path)
    if path.suffix.lower() == ".exr":
        image = _read_exr(path)
    else:
        image = _read_with_cv2(path)
    return _to_sample_type(image, path)


def _read_with_cv2(path: Path) -> np.ndarray:
    import cv2

    if path.suffix.lower() in (".jpg", ".jpeg"):
        _check_jpeg_complete(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror}", path) from exc
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise InputError("cannot decode image (corrupt, truncated or not an image)", path)
    if image.ndim == 3:
        if image.shape[2] == 3:
            image = image[:, :, ::-1]  # BGR -> RGB
        elif image.shape[2] == 4:
            image = image[:, :, [2, 1, 0, 3]]  # BGRA -> RGBA
    return np.ascontiguousarray(image)


def _check_jpeg_complete(path: Path) -> None:
    """libjpeg decodes a truncated file with grey filler; refuse one without its end marker."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            f.seek(max(0, os.path.getsize(path) - _JPEG_TAIL))
            tail = f.read()
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror}", path) from exc
    if head != b"\xff\xd8":
        raise InputError("not a JPEG file", path)
    if b"\xff\xd9" not in tail:
        raise InputError("truncated JPEG (no end-of-image marker)", path)


def _read_exr(path: Path) -> np.ndarray:
    """EXR through the ``OpenEXR`` package when installed, else OpenCV's OpenEXR codec."""
    try:
        import OpenEXR
    except ImportError:
        OpenEXR = None
    if OpenEXR is not None:
        try:
            with OpenEXR.File(str(path), separate_channels=True) as exr:
                channels = {name: ch.pixels for name, ch in exr.channels().items()}
        except Exception as exc:  # the binding raises RuntimeError/OSError/TypeError
            raise InputError(f"cannot decode EXR: {one_line(exc)}", path) from exc
        return _stack_exr_channels(channels, path)
    import cv2

    try:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        image = None
        reason = one_line(exc)
    else:
        reason = "corrupt file, or this OpenCV build has no OpenEXR codec (pip install OpenEXR)"
    if image is None:
        raise InputError(f"cannot decode EXR: {reason}", path)
    if image.ndim == 3:
        image = image[:, :, [2, 1, 0, 3][: image.shape[2]]] if image.shape[2] in (3, 4) else image
    return np.ascontiguousarray(image)


def _stack_exr_channels(channels: dict[str, np.ndarray], path: Path) -> np.ndarray:
    if all(c in channels for c in "RGB"):
        names = ["R", "G", "B"] + (["A"] if "A" in channels else [])
    elif "Y" in channels:
        names = ["Y"] + (["A"] if "A" in channels else [])
    else:
        raise InputError(f"EXR has no R,G,B or Y channels (found {', '.join(sorted(channels))})", path)
    planes = [np.asarray(channels[n], dtype=np.float32) for n in names]
    if len(planes) == 1:
        return planes[0]
    if names[0] == "Y":  # grey + alpha -> RGBA
        planes = [planes[0], planes[0], planes[0], planes[1]]
    return np.stack(planes, axis=-1)


def _to_sample_type(image: np.ndarray, path: Path) -> np.ndarray:
    if image.dtype in (np.float16, np.float64):
        image = image.astype(np.float32)
    if image.dtype not in SAMPLE_TYPES:
        raise InputError(f"unsupported sample type {image.dtype} (use 8/16-bit integer or float)", path)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (2, 3, 4)):
        raise InputError(f"unsupported image layout {image.shape}", path)
    return image


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
# image size from the file header (no decoding)
# ---------------------------------------------------------------------------
def image_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` in pixels from the file header; decodes only when the format needs it.

    Raises:
        InputError: unreadable or malformed header.
    """
    path = Path(path)
    ext = path.suffix.lower()
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror}", path) from exc
    parser = {".png": _png_size, ".jpg": _jpeg_size, ".jpeg": _jpeg_size, ".bmp": _bmp_size, ".exr": _exr_size}.get(ext)
    size = parser(head) if parser is not None else None
    if size is None:  # TIFF, or a header we could not parse: decode it
        image = read_image(path)
        return int(image.shape[0]), int(image.shape[1])
    if size[0] <= 0 or size[1] <= 0:
        raise InputError("malformed image header", path)
    return size


def _png_size(head: bytes) -> tuple[int, int] | None:
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return height, width


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    if head[:2] != b"\xff\xd8":
        return None
    pos = 2
    while pos + 9 < len(head):
        if head[pos] != 0xFF:
            return None
        marker = head[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = struct.unpack(">H", head[pos + 2 : pos + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            height, width = struct.unpack(">HH", head[pos + 5 : pos + 9])
            return height, width
        pos += 2 + length
    return None


def _bmp_size(head: bytes) -> tuple[int, int] | None:
    if head[:2] != b"BM" or len(head) < 26:
        return None
    if struct.unpack("<I", head[14:18])[0] == 12:  # OS/2 core header
        width, height = struct.unpack("<HH", head[18:22])
    else:
        width, height = struct.unpack("<ii", head[18:26])
    return abs(height), width


def _exr_size(head: bytes) -> tuple[int, int] | None:
    if head[:4] != b"\x76\x2f\x31\x01":
        return None
    pos = 8
    while pos < len(head) and head[pos] != 0:
        name_end = head.index(b"\x00", pos)
        type_end = head.index(b"\x00", name_end + 1)
        name = head[pos:name_end]
        (length,) = struct.unpack("<i", head[type_end + 1 : type_end + 5])
        value = head[type_end + 5 : type_end + 5 + length]
        if name == b"dataWindow" and length == 16:
            xmin, ymin, xmax, ymax = struct.unpack("<iiii", value)
            return ymax - ymin + 1, xmax - xmin + 1
        pos = type_end + 5 + length
    return None


# ---------------------------------------------------------------------------
# clip sources
# ---------------------------------------------------------------------------
class FolderFrames(FrameSource):
    """A folder of still images, one per frame, in natural order."""

    kind = "folder"

    def __init__(self, folder: str | Path):
        self.files = list_images(folder)
        first, has_alpha = to_rgb(read_image(self.files[0]))
        super().__init__(Path(folder), [f.stem for f in self.files], None, first.shape[0], first.shape[1],
                         first.dtype, has_alpha)

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


def open_frames(path: str | Path) -> FrameSource:
    """Open a clip: a folder of images or a video file (mp4, mov, avi, mkv, webm).

    Raises:
        InputError: missing path, empty folder, folder without images, unsupported
            extension, unreadable first frame or undecodable video.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError("no such file or folder", path)
    if path.is_dir():
        return FolderFrames(path)
    ext = path.suffix.lower()
    if ext in VIDEO_EXTS:
        return VideoFrames(path)
    if ext in IMAGE_EXTS:
        raise InputError("a single image is not a clip: give a folder of frames or a video file", path)
    raise InputError(f"unsupported extension '{path.suffix}' (folders of {', '.join(IMAGE_EXTS)} "
                     f"or videos {', '.join(VIDEO_EXTS)})", path)
