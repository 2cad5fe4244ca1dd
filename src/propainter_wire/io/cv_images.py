"""Still images through OpenCV, for a machine without OpenImageIO: PNG, JPEG, BMP and TIFF, pixels only.

:mod:`.oiio` hands its calls here when ``import OpenImageIO`` fails. The arrays are the ones the
OpenImageIO path gives for the same file: RGB/RGBA channel order (OpenCV's BGR/BGRA reordered),
grey as one channel, a grey + alpha PNG as two (read as a matte; refused as a plate, whose result
OpenCV could not write back with two channels), samples ``uint8``, ``uint16`` or ``float32``.

Each file's header is read first (no pixel decoded), and a layout OpenCV would decode differently
from OpenImageIO is refused with one line saying it needs OpenImageIO: a planar, grey + alpha,
min-is-white or 10/12/32-bit integer TIFF, a 16/32-bit BMP (OpenCV drops a BMP's alpha), a CMYK or
12-bit JPEG. Every other format (EXR, DPX, TGA, ...) is refused the same way.

Only pixels travel: no header attribute, ICC profile, resolution or compression setting is read or
written, and the data window is the whole image at (0, 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from ..errors import InputError
from .channels import pick_channels
from .oiio import (
    JPEG_QUALITY,
    PNG_COMPRESSION_LEVEL,
    _as_sample_type,
    _check_jpeg_complete,
    _check_png_data,
    _check_png_header,
    _grey,
    _read_file,
    rgb_layout,
)

__all__ = ["CV_EXTS", "CvSpec", "header", "image_size", "read_channels", "write_image", "write_plate"]

# extension -> the sample types OpenCV writes to it without loss
_WRITABLE = {".png": (np.uint8, np.uint16), ".jpg": (np.uint8,), ".jpeg": (np.uint8,), ".bmp": (np.uint8,),
             ".tif": (np.uint8, np.uint16, np.float32), ".tiff": (np.uint8, np.uint16, np.float32)}
CV_EXTS = tuple(_WRITABLE)
# channel names as OpenImageIO gives them for these formats
_NAMES = {1: ("Y",), 2: ("Y", "A"), 3: ("R", "G", "B"), 4: ("R", "G", "B", "A")}
_HINT = "needs OpenImageIO (pip install OpenImageIO)"
_GREY_ALPHA_PLATE = "grey + alpha frames (OpenCV writes no two-channel file)"


@dataclass(frozen=True)
class CvSpec:
    """The ``ImageSpec`` fields the tool reads, for a file decoded by OpenCV.

    Attributes:
        width, height: pixels; the data window is the display window, at (0, 0).
        channelnames: ``Y``, ``Y,A``, ``R,G,B`` or ``R,G,B,A``.
    """

    width: int
    height: int
    channelnames: tuple[str, ...]
    x: int = 0
    y: int = 0

    @property
    def full_width(self) -> int:
        return self.width

    @property
    def full_height(self) -> int:
        return self.height

    @property
    def nchannels(self) -> int:
        return len(self.channelnames)

    @property
    def alpha_channel(self) -> int:
        """Index of ``A``, or -1."""
        return self.channelnames.index("A") if "A" in self.channelnames else -1


@dataclass(frozen=True)
class _Probe:
    """What a file's header promises: size, channels (None: 1 or 3, a palette BMP's) and sample type;
    ``grey_key`` is a grey PNG's transparent value on the decoded scale (OpenCV ignores it)."""

    width: int
    height: int
    channels: int | None
    dtype: type
    grey_key: int | None = None


def _needs_oiio(what: str, path: Path) -> InputError:
    return InputError(f"{what} {_HINT}", path)


def _be(data: bytes) -> int:
    return int.from_bytes(data, "big")


def _probe_png(f, path: Path) -> _Probe:
    head = f.read(33)
    _check_png_header(head, path)
    depth, colour_type = head[24], head[25]
    channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(colour_type)
    if channels is None:
        raise InputError("cannot decode image: damaged PNG header (colour type)", path)
    transparency = None
    while len(chunk := f.read(8)) == 8 and chunk[4:] != b"IDAT":  # tRNS comes before the pixel data
        if chunk[4:] == b"tRNS":
            transparency = f.read(_be(chunk[:4]))
            f.seek(4, 1)
        else:
            f.seek(_be(chunk[:4]) + 4, 1)
    key = None
    if transparency is not None and colour_type in (0, 2, 3):  # a key colour or palette alpha: one more channel
        channels += 1
        if colour_type == 0:  # libpng scales 1/2/4-bit grey up to 8 bits by bit replication
            key = _be(transparency[:2]) * (255 // ((1 << depth) - 1) if depth < 8 else 1)
    return _Probe(_be(head[16:20]), _be(head[20:24]), channels, np.uint16 if depth == 16 else np.uint8, key)


def _probe_jpeg(f, path: Path) -> _Probe:
    damaged = InputError("cannot decode image: damaged JPEG header", path)
    if f.read(2) != b"\xff\xd8":
        raise InputError("not a JPEG file", path)
    while True:
        if f.read(1) != b"\xff":
            raise damaged
        kind = f.read(1)
        while kind == b"\xff":  # fill bytes
            kind = f.read(1)
        if not kind or kind[0] in (0xD9, 0xDA):  # the end, or a scan before any frame header
            raise damaged
        if 0xD0 <= kind[0] <= 0xD7 or kind[0] == 0x01:  # markers without a length
            continue
        length = _be(f.read(2))
        if length < 2:
            raise damaged
        if 0xC0 <= kind[0] <= 0xCF and kind[0] not in (0xC4, 0xC8, 0xCC):  # a frame header (SOFn)
            sof = f.read(6)
            if len(sof) < 6:
                raise damaged
            if sof[0] != 8 or sof[5] not in (1, 3):
                raise _needs_oiio(f"reading a {sof[0]}-bit JPEG of {sof[5]} components", path)
            return _Probe(_be(sof[3:5]), _be(sof[1:3]), sof[5], np.uint8)
        f.seek(length - 2, 1)


def _probe_bmp(f, path: Path) -> _Probe:
    head = f.read(30)
    if len(head) < 26 or head[:2] != b"BM":
        raise InputError("cannot decode image: not a BMP file", path)
    little = partial(int.from_bytes, byteorder="little", signed=True)
    if little(head[14:18]) == 12:  # the OS/2 header: 16-bit sizes
        width, height, bits = little(head[18:20]), little(head[20:22]), little(head[24:26])
    else:
        width, height, bits = little(head[18:22]), abs(little(head[22:26])), little(head[28:30])
    if bits not in (1, 4, 8, 24):  # OpenCV reads 32-bit BMP without its alpha, 16-bit with other rounding
        raise _needs_oiio(f"reading a {bits}-bit BMP", path)
    return _Probe(width, height, 3 if bits == 24 else None, np.uint8)


# TIFF tags read: ImageWidth, ImageLength, BitsPerSample, PhotometricInterpretation, SamplesPerPixel,
# PlanarConfiguration, SampleFormat
_TIFF_TAGS = {256: "width", 257: "height", 258: "bits", 262: "photometric", 277: "channels", 284: "planar",
              339: "format"}
# (bits, SampleFormat) -> the tool's sample type: OpenCV decodes these as OpenImageIO does
_TIFF_SAMPLES = {(8, 1): np.uint8, (16, 1): np.uint16, (16, 3): np.float32, (32, 3): np.float32,
                 (64, 3): np.float32}


def _probe_tiff(f, path: Path) -> _Probe:
    head = f.read(16)
    order = {b"II": "little", b"MM": "big"}.get(head[:2])
    magic = int.from_bytes(head[2:4], order) if order else 0
    if magic not in (42, 43):  # classic TIFF or BigTIFF
        raise InputError("cannot decode image: not a TIFF file", path)
    big = magic == 43
    number = partial(int.from_bytes, byteorder=order)
    f.seek(number(head[8:16] if big else head[4:8]))
    entry = 20 if big else 12
    count = number(f.read(8 if big else 2))
    table = f.read(count * entry)
    tags = {}
    for start in range(0, len(table) - entry + 1, entry):
        row = table[start:start + entry]
        name, size = _TIFF_TAGS.get(number(row[:2])), {3: 2, 4: 4, 16: 8}.get(number(row[2:4]))
        if name is None or size is None:
            continue
        values, field = number(row[4:12] if big else row[4:8]), row[12:20] if big else row[8:12]
        if values * size > len(field):  # stored elsewhere: the first value is enough (all samples alike)
            f.seek(number(field))
            field = f.read(size)
        tags[name] = number(field[:size])
    if "width" not in tags or "height" not in tags:
        raise InputError("cannot decode image: damaged TIFF header", path)
    channels, bits, form = tags.get("channels", 1), tags.get("bits", 1), tags.get("format", 1)
    photometric, planar = tags.get("photometric"), tags.get("planar", 1)
    dtype = _TIFF_SAMPLES.get((bits, form))
    grey_or_rgb = (photometric == 1 and channels == 1) or (photometric == 2 and channels in (3, 4))
    if dtype is None or not grey_or_rgb or planar != 1:
        kind = {1: "integer", 2: "signed", 3: "float"}.get(form, "other")
        layout = f"{channels}-channel {bits}-bit {kind}{', planar' if planar != 1 else ''}"
        raise _needs_oiio(f"reading a TIFF of this layout ({layout}, photometric {photometric})", path)
    return _Probe(tags["width"], tags["height"], channels, dtype)


_PROBES = {".png": _probe_png, ".jpg": _probe_jpeg, ".jpeg": _probe_jpeg, ".bmp": _probe_bmp,
           ".tif": _probe_tiff, ".tiff": _probe_tiff}


def _probe(path: Path) -> _Probe:
    """The header of ``path``; refuses formats and layouts OpenCV does not decode as OpenImageIO does."""
    ext = path.suffix.lower()
    if ext not in _PROBES:
        raise _needs_oiio(f"reading {ext or 'extension-less'} files", path)
    if not path.is_file():
        raise InputError("no such file", path)
    try:
        with open(path, "rb") as f:
            probe = _PROBES[ext](f, path)
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror}", path) from exc
    if probe.width <= 0 or probe.height <= 0:
        raise InputError("malformed image header", path)
    return probe


def image_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` from the header alone."""
    probe = _probe(Path(path))
    return probe.height, probe.width


def read_channels(path: str | Path) -> tuple[np.ndarray, tuple[str, ...], CvSpec]:
    """Every channel: ``(H, W, C)`` (uint8, uint16 or float32), the channel names and a :class:`CvSpec`.

    Raises:
        InputError: a format or layout that needs OpenImageIO; a missing, damaged or truncated file.
    """
    import cv2

    path = Path(path)
    probe = _probe(path)
    data = _read_file(path)  # read once: checked, then decoded from memory
    if path.suffix.lower() == ".png":
        _check_png_data(data.tobytes(), path)
    elif path.suffix.lower() in (".jpg", ".jpeg"):
        _check_jpeg_complete(path)
    try:
        pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        pixels = None
    if pixels is None:
        raise InputError("cannot decode image: corrupt, truncated or not an image", path)
    pixels = _as_sample_type(pixels if pixels.ndim == 3 else pixels[:, :, None], path)
    if pixels.shape[2] in (3, 4):  # BGR(A) -> RGB(A)
        pixels = pick_channels(pixels, (2, 1, 0, 3)[:pixels.shape[2]])
    if probe.channels == 2 and pixels.shape[2] == 4:  # grey + alpha arrives as BGRA with B = G = R
        pixels = pick_channels(pixels, (0, 3))
    elif probe.channels == 2 and pixels.shape[2] == 1 and probe.grey_key is not None:  # the key is alpha 0
        alpha = np.where(pixels[:, :, 0] == probe.grey_key, 0, np.iinfo(pixels.dtype).max).astype(pixels.dtype)
        pixels = np.dstack([pixels[:, :, 0], alpha])
    if (pixels.shape[:2] != (probe.height, probe.width) or pixels.dtype != probe.dtype
            or (probe.channels or pixels.shape[2]) != pixels.shape[2] or pixels.shape[2] not in _NAMES):
        raise _needs_oiio(f"OpenCV decodes this file as {pixels.shape[2]} channel(s) of {pixels.dtype}: reading it",
                          path)
    names = _NAMES[pixels.shape[2]]
    return np.ascontiguousarray(pixels), names, CvSpec(probe.width, probe.height, names)


def header(path: str | Path) -> CvSpec:
    """The :class:`CvSpec` of a plate's frame ``path`` (the file is decoded: a palette BMP's channels
    show only then).

    Raises:
        InputError: also for a grey + alpha frame, whose result OpenCV could not write back with its
            two channels (a grey + alpha matte is read as usual: masks are never written back).
    """
    spec = read_channels(path)[2]
    if spec.nchannels == 2:
        raise _needs_oiio(_GREY_ALPHA_PLATE, Path(path))
    return spec


def _params(ext: str) -> list[int]:
    import cv2

    if ext == ".png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION_LEVEL]
        if hasattr(cv2, "IMWRITE_PNG_FILTER"):  # OpenCV >= 4.11: the Sub filter, as on the OpenImageIO path
            params += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB]
        return params
    if ext in (".jpg", ".jpeg"):
        return [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    return []


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write ``(H, W)`` grey, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA atomically; the extension picks the format.

    ``.png`` takes ``uint8``/``uint16``, ``.tif`` also ``float32``, ``.jpg``/``.bmp`` ``uint8``.

    Raises:
        ValueError: a shape or sample type the format cannot hold (a caller's bug).
        InputError: a format that needs OpenImageIO (EXR, DPX, ...), or the file cannot be written.
    """
    import cv2

    from .output import _atomic_write_bytes

    path, image = Path(path), np.asarray(image)
    ext = path.suffix.lower()
    if ext not in _WRITABLE:
        raise _needs_oiio(f"writing {ext or 'extension-less'} files", path)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(f"cannot write an image of shape {image.shape}")
    if image.dtype not in _WRITABLE[ext]:
        raise ValueError(f"cannot write {image.dtype} samples to a '{ext}' file")
    if image.ndim == 3:  # RGB(A) -> BGR(A)
        image = pick_channels(image, (2, 1, 0, 3)[:image.shape[2]])
    try:
        ok, data = cv2.imencode(ext, np.ascontiguousarray(image), _params(ext))
    except cv2.error:
        ok = False
    if not ok:
        raise InputError(f"cannot write: OpenCV cannot encode {image.shape} {image.dtype} as {ext}", path)
    # encoded in memory, then a temporary file beside the target renamed over it: atomic, with the OS's reason
    _atomic_write_bytes(path, data.tobytes())


def write_plate(source: str | Path, target: str | Path, colour: np.ndarray) -> None:
    """Write ``colour`` as ``source``'s colour channels into ``target``, in ``source``'s pixel layout.

    The channels and sample type come from ``source``; its alpha is kept, only the colour is
    replaced. OpenCV carries pixels only: header attributes, ICC profile, resolution and the
    compression settings of ``source`` are not copied (the format's default compression is used).

    Args:
        source: the input frame file.
        target: the output file; its extension picks the format.
        colour: ``(H, W, 3)`` (or ``(H, W)`` for a grey plate) in the sample type :func:`read_channels`
            gives for ``source``.

    Raises:
        InputError: ``source`` unreadable or grey + alpha (OpenCV writes no two-channel file), or
            ``target`` cannot be written.
    """
    source, target = Path(source), Path(target)
    if _probe(source).channels == 3 and colour.ndim == 3 and colour.shape[2] == 3:
        write_image(target, colour)  # nothing but colour in the file: no need to decode it again
        return
    pixels, names, spec = read_channels(source)
    if pixels.shape[2] == 2:  # written as RGBA it would come back with other channels than it went in
        raise _needs_oiio(_GREY_ALPHA_PLATE, source)
    layout = rgb_layout(names, spec.alpha_channel)  # never None: every name set here holds colour
    values = colour if colour.ndim == 3 else colour[:, :, None]
    if len(layout.colour) == 1 and values.shape[2] == 3:
        values = _grey(values)
    pixels = pixels.copy()
    for k, c in enumerate(layout.colour):
        pixels[:, :, c] = values[:, :, min(k, values.shape[2] - 1)]
    write_image(target, pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
