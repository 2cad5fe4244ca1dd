"""Still images through OpenImageIO: every format it reads, written back as the input was.

A plate file is more than its colour: EXR holds half or float channels under a compression,
scanline or tiled, an alpha, depth or matte channels, layers and parts, a data window that
may differ from the display window (overscan) and header attributes (comment, fps, timeCode,
custom ones); DPX and TIFF hold 10/12/16-bit samples. :func:`write_plate` writes a result with
the source file's every part, spec and attribute, only its colour channels replaced.

Sample types handed to the rest of the tool (:data:`~propainter_wire.samples.SAMPLE_TYPES`):
``uint8`` (8-bit files), ``uint16`` (10/12/16-bit integer files, scaled to 0..65535 by
OpenImageIO), ``float32`` (half and float files; half values convert exactly both ways).

OpenImageIO is imported on first use, so ``import propainter_wire`` stays light. Where it is not
installed, PNG, JPEG, BMP and TIFF go through OpenCV instead (:mod:`.cv_images`: the same arrays,
pixels only) and every other format is refused with one line naming what it needs.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .channels import pick_channels

__all__ = ["PlateLayout", "header", "image_size", "load_oiio", "opencv_fallback", "read_channels", "read_image",
           "rgb_layout", "write_image", "write_plate"]

# PNG: zlib level 1 with the Sub filter only: 43 ms a 1080p frame, as OpenCV's writer (45 ms); level 1 with
# libpng's adaptive filtering took 84 ms and OpenImageIO's default (level 6) 317 ms, files within 10 %.
PNG_COMPRESSION_LEVEL = 1
PNG_FILTER_SUB = 16
JPEG_QUALITY = 95
# OpenImageIO's "unknown" type reads the file's own sample type.
_NATIVE = "unknown"
# file sample types -> the tool's
_SAMPLE = {"uint8": np.uint8, "uint16": np.uint16, "half": np.float32, "float": np.float32, "double": np.float32}

_IMPORT_LOCK = threading.Lock()  # one thread at a time tries an installed OpenImageIO's import


def load_oiio():
    """The OpenImageIO module (a hard dependency, imported lazily).

    Where it is not installed the ``ImportError`` comes from a search made once per process: a
    failed import searches ``sys.path`` again on every call, and with a clip's frames decoding on
    16 threads those searches held the interpreter lock 20-80 ms a frame while torch imported
    beside them (H100 machine, 720p). An installed module that fails to import (a wheel whose
    library does not load) is imported once, under a lock: a second thread's ``import`` of a module
    still importing returns the half-made module, so that thread took OpenImageIO as loaded and then
    failed with an unexpected ``ImportError``; its error is kept and raised on every later call, so
    every thread falls back to OpenCV. The lock is taken even when the module is in ``sys.modules``:
    it is there, half made, while the first thread imports it. A module hidden through ``sys.modules``
    (tests) fails as an import does; one put there while none is installed is taken as it is.
    """
    hidden = "OpenImageIO" in sys.modules and sys.modules["OpenImageIO"] is None  # (the import below raises)
    if _installed() and not hidden:
        with _IMPORT_LOCK:
            failure = _import_failure()
        if failure is not None:
            raise ImportError(failure, name="OpenImageIO")
    elif "OpenImageIO" not in sys.modules:
        raise ImportError("No module named 'OpenImageIO'", name="OpenImageIO")
    import OpenImageIO

    return OpenImageIO


@functools.cache
def _installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("OpenImageIO") is not None


@functools.cache
def _import_failure() -> str | None:
    """Why the installed OpenImageIO does not import (None: it imports); tried once per process."""
    try:
        import OpenImageIO  # noqa: F401
    except ImportError as exc:
        return f"OpenImageIO is installed but does not import: {exc}"
    return None


def opencv_fallback():
    """The module that reads and writes stills in place of OpenImageIO (:mod:`.cv_images`), or None
    when OpenImageIO imports. The one place the backend is chosen; asked on every call (cheap: see
    :func:`load_oiio`), so a test can hide OpenImageIO with ``sys.modules``."""
    try:
        load_oiio()
    except ImportError:
        from . import cv_images

        return cv_images
    return None


def _temp_path(path: Path) -> Path:
    from .output import _temp_path as temp

    return temp(path)


@dataclass(frozen=True)
class PlateLayout:
    """Which channels of a file are its colour.

    Attributes:
        colour: indices of R, G, B (three), or of a grey channel (one).
        alpha: index of the alpha channel, or None.
        names: every channel's name.
    """

    colour: tuple[int, ...]
    alpha: int | None
    names: tuple[str, ...]


def rgb_layout(names: tuple[str, ...], alpha_index: int = -1) -> PlateLayout | None:
    """The colour channels among ``names``: ``R,G,B``, else one layer's ``x.R,x.G,x.B``, else ``Y``.

    Files whose channels carry no such names (some TIFF/PNG readers name them ``channel0..``) use
    the first three (or the first one).  None when the names hold no colour (an alpha-only matte).
    """
    low = {n: i for i, n in enumerate(names)}
    alpha = alpha_index if alpha_index >= 0 else low.get("A")
    if all(c in low for c in "RGB"):
        return PlateLayout((low["R"], low["G"], low["B"]), alpha, names)
    for n in names:  # first layer with R, G and B
        if n.endswith(".R"):
            layer = n[:-1]
            if all(layer + c in low for c in "GB"):
                return PlateLayout(tuple(low[layer + c] for c in "RGB"), low.get(layer + "A", alpha), names)
    if "Y" in low:
        return PlateLayout((low["Y"],), alpha, names)
    named = set(names) & {"A", "Z", "mask", "matte", "alpha", "depth"}
    if named or any("." in n for n in names):
        return None
    if len(names) >= 3:
        return PlateLayout((0, 1, 2), alpha, names)
    return PlateLayout((0,), alpha, names)


def _open(path: Path):
    oiio = load_oiio()
    if not path.is_file():
        raise InputError("no such file", path)
    config = oiio.ImageSpec()
    config.attribute("oiio:UnassociatedAlpha", 1)  # the samples as stored: no premultiplying on the way in
    inp = oiio.ImageInput.open(str(path), config)
    if inp is None:
        raise InputError(f"cannot decode image: {_oiio_error(oiio.geterror())}", path)
    return inp


def _oiio_error(text: str) -> str:
    text = " ".join((text or "").split())
    return text or "corrupt, truncated or not an image"


def header(path: str | Path):
    """The first part's ``ImageSpec`` of ``path`` (header only: no pixel is decoded).

    Without OpenImageIO: a :class:`~.cv_images.CvSpec` (the same fields the tool reads).
    """
    path = Path(path)
    if (fallback := opencv_fallback()) is not None:
        return fallback.header(path)
    if path.suffix.lower() == ".png" and path.is_file():
        try:
            with open(path, "rb") as f:
                _check_png_header(f.read(33), path)
        except OSError as exc:
            raise InputError(f"cannot read file: {exc.strerror}", path) from exc
    inp = _open(path)
    try:
        return inp.spec()
    finally:
        inp.close()


def image_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` of the data window, in pixels, from the header.

    Raises:
        InputError: unreadable or malformed header.
    """
    if (fallback := opencv_fallback()) is not None:
        return fallback.image_size(path)
    spec = header(path)
    if spec.width <= 0 or spec.height <= 0:
        raise InputError("malformed image header", path)
    return int(spec.height), int(spec.width)


def _pixels(inp, path: Path, subimage: int = 0) -> np.ndarray:
    """Every channel of one part: ``(H, W, C)`` in the file's own sample type (half as float16)."""
    spec = inp.spec(subimage, 0)
    if spec.depth > 1:
        raise InputError("volume images are not supported", path)
    pixels = inp.read_image(subimage, 0, 0, spec.nchannels, _NATIVE)
    if pixels is None or inp.has_error:
        raise InputError(f"cannot decode image: {_oiio_error(inp.geterror())}", path)
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return pixels


def _as_sample_type(pixels: np.ndarray, path: Path) -> np.ndarray:
    if pixels.dtype in (np.float16, np.float64):
        return pixels.astype(np.float32)
    if pixels.dtype in (np.uint8, np.uint16, np.float32):
        return pixels
    if pixels.dtype == np.int8:
        return (pixels.astype(np.int16) + 128).astype(np.uint8)
    if pixels.dtype in (np.int16, np.uint32, np.int32):  # rare: read through float
        return pixels.astype(np.float32) / float(np.iinfo(pixels.dtype).max)
    raise InputError(f"unsupported sample type {pixels.dtype} (use 8/16-bit integer or float)", path)


def read_channels(path: str | Path) -> tuple[np.ndarray, tuple[str, ...], object]:
    """Every channel of the first part: ``(H, W, C)`` (uint8, uint16 or float32), names, ``ImageSpec``
    (without OpenImageIO: :func:`.cv_images.read_channels`, PNG/JPEG/BMP/TIFF only)."""
    path = Path(path)
    if (fallback := opencv_fallback()) is not None:
        return fallback.read_channels(path)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        _check_jpeg_complete(path)
    elif path.suffix.lower() == ".png":
        _check_png_chunks(path)
    inp = _open(path)
    try:
        spec = inp.spec()
        pixels = _as_sample_type(_pixels(inp, path), path)
    finally:
        inp.close()
    return np.ascontiguousarray(pixels), tuple(spec.channelnames), spec


def read_image(path: str | Path) -> np.ndarray:
    """Decode one image's colour (and alpha) as stored: no channel expansion.

    Returns:
        ``(H, W)`` grey, ``(H, W, 2)`` grey + alpha, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA over
        the data window; ``uint8``, ``uint16`` or ``float32``.  A file with no colour channel (an
        alpha-only matte) comes back as its first channel, grey.

    Raises:
        InputError: missing, unreadable, truncated or of an unsupported sample type.
    """
    pixels, names, spec = read_channels(path)
    layout = rgb_layout(names, spec.alpha_channel)
    if layout is None:
        return pixels[:, :, 0]
    keep = list(layout.colour) + ([layout.alpha] if layout.alpha is not None else [])
    if len(keep) == 1:
        return np.ascontiguousarray(pixels[:, :, keep[0]])
    return pick_channels(pixels, keep)


def _check_jpeg_complete(path: Path) -> None:
    """libjpeg decodes a truncated file with grey filler; refuse one without its end marker."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            f.seek(max(0, os.path.getsize(path) - (1 << 16)))
            tail = f.read()
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror}", path) from exc
    if head != b"\xff\xd8":
        raise InputError("not a JPEG file", path)
    if b"\xff\xd9" not in tail:
        raise InputError("truncated JPEG (no end-of-image marker)", path)


def _grey(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` -> ``(H, W, 1)`` for a grey file: the channel where all three agree (the input's own
    value, bit for bit), their mean where a fill made them differ."""
    grey = rgb[:, :, :1].copy()
    differ = (rgb[:, :, 1] != rgb[:, :, 0]) | (rgb[:, :, 2] != rgb[:, :, 0])
    if differ.any():
        mean = rgb[differ].astype(np.float64).mean(axis=1)
        grey[differ, 0] = np.rint(mean) if rgb.dtype.kind in "ui" else mean
    return grey


def _check_png_header(head: bytes, path: Path) -> None:
    """The signature and the IHDR chunk (33 bytes), checked before libpng reads a header."""
    import zlib

    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR" or len(head) < 33:
        raise InputError("cannot decode image: not a PNG file, or its header is damaged", path)
    if zlib.crc32(head[12:29]) != int.from_bytes(head[29:33], "big"):
        raise InputError("cannot decode image: damaged PNG header (IHDR checksum)", path)


def _read_file(path: Path) -> np.ndarray:
    """The whole file as ``uint8`` bytes, or an ``InputError`` naming it and the system's reason."""
    try:
        return np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror}", path) from exc


def _check_png_chunks(path: Path) -> None:
    """Refuse a damaged PNG file before libpng sees it (:func:`_check_png_data` on its bytes)."""
    _check_png_data(_read_file(path).tobytes(), path)


def _check_png_data(data: bytes, path: Path) -> None:
    """Refuse a damaged PNG before libpng sees it: libpng prints its own error line to stderr.

    Checks the signature, each chunk's type, length and CRC, and the closing IEND chunk
    (about 1 ms for a 3 MB file).
    """
    import zlib

    _check_png_header(data, path)
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise InputError("cannot decode image: not a PNG file", path)
    pos, view = 8, memoryview(data)
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        end = pos + 12 + length
        if not kind.isalpha() or end > len(data):
            raise InputError("cannot decode image: damaged or truncated PNG", path)
        if zlib.crc32(view[pos + 4:end - 4]) != int.from_bytes(data[end - 4:end], "big"):
            raise InputError(f"cannot decode image: damaged PNG ({kind.decode()} chunk checksum)", path)
        if kind == b"IEND":
            return
        pos = end
    raise InputError("cannot decode image: truncated PNG (no IEND chunk)", path)


# ---------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------
_FORMATS = {".png": (np.uint8, np.uint16), ".tif": (np.uint8, np.uint16, np.float32),
            ".tiff": (np.uint8, np.uint16, np.float32), ".exr": (np.float16, np.float32, np.float64),
            ".dpx": (np.uint8, np.uint16)}


def _new_spec(image: np.ndarray, ext: str):
    oiio = load_oiio()
    channels = 1 if image.ndim == 2 else image.shape[2]
    kind = {np.dtype(np.uint8): "uint8", np.dtype(np.uint16): "uint16", np.dtype(np.float16): "half"}.get(
        image.dtype, "float")
    spec = oiio.ImageSpec(image.shape[1], image.shape[0], channels, kind)
    spec.channelnames = {1: ("Y",), 3: ("R", "G", "B"), 4: ("R", "G", "B", "A")}.get(channels, spec.channelnames)
    if channels == 4:
        spec.alpha_channel = 3
        spec.attribute("oiio:UnassociatedAlpha", 1)  # written as given: no un-premultiplying
    if ext == ".exr":
        spec.attribute("compression", "zip")
    elif ext == ".png":
        spec.attribute("png:compressionLevel", PNG_COMPRESSION_LEVEL)
        spec.attribute("png:filter", PNG_FILTER_SUB)
    elif ext in (".jpg", ".jpeg"):
        spec.attribute("CompressionQuality", JPEG_QUALITY)
    return spec


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write one grey, RGB or RGBA image atomically; the extension picks the format.

    Args:
        path: ``.png``/``.tif``/``.dpx`` (``uint8`` or ``uint16``), ``.tif`` also float, ``.exr``
            (float; float32 written as 32-bit float, ZIP), ``.jpg``/``.bmp`` (``uint8``).
        image: ``(H, W)``, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA.

    Raises:
        ValueError: a shape or sample type the format cannot hold (a caller's bug).
        InputError: the file cannot be written (names the path and the reason); without OpenImageIO,
            a format other than PNG, JPEG, BMP or TIFF.
    """
    path = Path(path)
    image = np.asarray(image)
    ext = path.suffix.lower()
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(f"cannot write an image of shape {image.shape}")
    if image.dtype not in _FORMATS.get(ext, (np.uint8,)):
        raise ValueError(f"cannot write {image.dtype} samples to a '{ext}' file")
    if image.dtype == np.float64:
        image = image.astype(np.float32)
    if (fallback := opencv_fallback()) is not None:
        fallback.write_image(path, image)
        return
    pixels = image[:, :, None] if image.ndim == 2 else image  # OpenImageIO reads a 2-D array as one scanline
    _write_parts(path, [_new_spec(image, ext)], [np.ascontiguousarray(pixels)])


def _write_parts(path: Path, specs: list, parts: list[np.ndarray]) -> None:
    """Write the parts atomically (a temporary name beside ``path``, then renamed)."""
    from .output import _os_error, _remove_quietly

    oiio = load_oiio()
    temp = _temp_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _os_error(exc, path) from exc
    out = oiio.ImageOutput.create(str(temp))
    if out is None:
        raise InputError(f"cannot write: {_oiio_error(oiio.geterror())}", path)
    try:
        ok = out.open(str(temp), tuple(specs)) if len(specs) > 1 else out.open(str(temp), specs[0])
        for i, (spec, pixels) in enumerate(zip(specs, parts, strict=True)):
            if ok and i > 0:
                ok = out.open(str(temp), spec, "AppendSubimage")
            ok = ok and out.write_image(pixels)
        ok = out.close() and ok
        if not ok:
            raise OSError(0, _oiio_error(out.geterror() or oiio.geterror()))
        if not temp.is_file():
            raise OSError(0, "the file was not written")
        os.replace(temp, path)
    except OSError as exc:
        _remove_quietly(temp)
        raise _os_error(exc, path) from exc


def write_plate(source: str | Path, target: str | Path, colour: np.ndarray) -> None:
    """Write ``colour`` as ``source``'s colour channels into ``target``: every other part, channel,
    attribute, window, tile size, compression and sample type comes from ``source``.

    Without OpenImageIO only the pixel layout is kept (:func:`.cv_images.write_plate`).

    Args:
        source: the input frame file.
        target: the output file (the same format as ``source``).
        colour: ``(H, W, 3)`` (or ``(H, W)`` for a grey plate) over ``source``'s data window, in the
            sample type :func:`read_image` gives for ``source``.

    Raises:
        InputError: ``source`` unreadable, or ``target`` cannot be written.
    """
    source, target = Path(source), Path(target)
    if (fallback := opencv_fallback()) is not None:
        fallback.write_plate(source, target, colour)  # pixels only: see its docstring
        return
    inp = _open(source)
    try:
        specs, parts = [], []
        index = 0
        while inp.seek_subimage(index, 0):
            spec = inp.spec()
            specs.append(spec)
            parts.append(None if index == 0 else _pixels(inp, source, index))
            index += 1
        first = specs[0]
        layout = rgb_layout(tuple(first.channelnames), first.alpha_channel)
        if layout is None:
            raise InputError("the file holds no colour channels", source)
        if len(layout.colour) == first.nchannels and colour.ndim == 3 and colour.shape[2] == first.nchannels:
            pixels = colour  # nothing else in the first part: no need to decode it again
        else:
            pixels = _as_sample_type(_pixels(inp, source, 0), source).copy()
            values = colour if colour.ndim == 3 else colour[:, :, None]
            if len(layout.colour) == 1 and values.shape[2] == 3:
                values = _grey(values)
            for k, c in enumerate(layout.colour):
                pixels[:, :, c] = values[:, :, min(k, values.shape[2] - 1)]
        parts[0] = np.ascontiguousarray(pixels[:, :, None] if pixels.ndim == 2 else pixels)
        if target.suffix.lower() == ".png":  # lossless whatever the level: write it fast
            specs[0].attribute("png:compressionLevel", PNG_COMPRESSION_LEVEL)
            specs[0].attribute("png:filter", PNG_FILTER_SUB)
    finally:
        inp.close()
    _write_parts(target, specs, parts)
