"""Stills without OpenImageIO: PNG, JPEG, BMP and TIFF through OpenCV, the same arrays as OpenImageIO gives.

``import OpenImageIO`` is made to fail (``sys.modules['OpenImageIO'] = None``), as on a machine that
has only torch, numpy and OpenCV. Where OpenImageIO is installed, each result is compared with the
OpenImageIO path's for the same file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from propainter_wire.cli import main
from propainter_wire.errors import InputError
from propainter_wire.io import cv_images
from propainter_wire.io import oiio as oiio_module
from propainter_wire.io.oiio import header, image_size, read_channels, read_image, write_image, write_plate

SRC = Path(__file__).resolve().parents[1] / "src"
FAST = ["--engine", "classic", "--device", "cpu", "--quiet"]
RNG = np.random.default_rng(3)
H, W = 12, 17


@contextlib.contextmanager
def without_oiio():
    """Inside, ``import OpenImageIO`` fails and every still goes through OpenCV."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "OpenImageIO", None)
        assert oiio_module.opencv_fallback() is cv_images
        yield


def both(function, *args):
    """``function(*args)`` through OpenImageIO, then through OpenCV."""
    pytest.importorskip("OpenImageIO")
    assert oiio_module.opencv_fallback() is None
    reference = function(*args)
    with without_oiio():
        return reference, function(*args)


def assert_same(reference: np.ndarray, got: np.ndarray) -> None:
    assert got.dtype == reference.dtype and got.shape == reference.shape
    np.testing.assert_array_equal(got, reference)


def random_image(dtype, channels: int, h: int = H, w: int = W) -> np.ndarray:
    shape = (h, w) if channels == 1 else (h, w, channels)
    if dtype == np.float32:
        return RNG.random(shape, dtype=np.float32) * 2 - 0.5  # unclipped, negative values too
    return RNG.integers(0, np.iinfo(dtype).max + 1, shape).astype(dtype)


def one_line(error: InputError, path: Path) -> str:
    text = str(error)
    assert "\n" not in text and str(path) in text
    return text


# ---------------------------------------------------------------------------
# reading and writing
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(("dtype", "channels"), [(np.uint8, 3), (np.uint16, 3), (np.uint8, 4), (np.uint16, 4),
                                                 (np.uint8, 1), (np.uint16, 1)])
def test_png_round_trip_equals_openimageio(tmp_path, dtype, channels):
    image = random_image(dtype, channels)
    with without_oiio():
        write_image(tmp_path / "cv.png", image)
        assert_same(image, read_image(tmp_path / "cv.png"))
    assert [p.name for p in tmp_path.iterdir()] == ["cv.png"]  # no temporary file left
    pytest.importorskip("OpenImageIO")
    write_image(tmp_path / "oiio.png", image)
    for name in ("cv.png", "oiio.png"):  # each backend reads the other's file as its own
        reference, got = both(read_image, tmp_path / name)
        assert_same(reference, got)
        assert_same(image, got)


@pytest.mark.parametrize(("ext", "dtype", "channels"), [
    (".tif", np.uint8, 3), (".tif", np.uint16, 4), (".tiff", np.uint16, 1), (".tif", np.float32, 3),
    (".tif", np.float32, 1), (".bmp", np.uint8, 3), (".bmp", np.uint8, 1)])
def test_tiff_and_bmp_round_trip_equals_openimageio(tmp_path, ext, dtype, channels):
    image = random_image(dtype, channels)
    path = tmp_path / f"a{ext}"
    with without_oiio():
        write_image(path, image)
        assert_same(image, read_image(path))
    reference, got = both(read_image, path)
    assert_same(reference, got)


def test_header_channels_and_size_equal_openimageio(tmp_path):
    pytest.importorskip("OpenImageIO")
    path = tmp_path / "rgba.png"
    write_image(path, random_image(np.uint16, 4))
    reference, got = both(header, path)
    for field in ("width", "height", "x", "y", "full_width", "full_height", "nchannels", "alpha_channel"):
        assert getattr(got, field) == getattr(reference, field), field
    assert tuple(got.channelnames) == tuple(reference.channelnames)
    assert both(image_size, path)[1] == both(image_size, path)[0] == (H, W)
    (pixels_ref, names_ref, _), (pixels, names, _) = both(read_channels, path)
    assert names == names_ref
    assert_same(pixels_ref, pixels)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(path: Path, depth: int, colour_type: int, rows: list[bytes], *chunks: bytes) -> Path:
    """A PNG written byte by byte: layouts neither writer of the tool produces."""
    header_data = struct.pack(">IIBBBBB", 4, len(rows), depth, colour_type, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + row for row in rows))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header_data) + b"".join(chunks)
                     + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b""))
    return path


PALETTE = _chunk(b"PLTE", bytes([255, 0, 0, 0, 255, 0, 0, 0, 255]))


@pytest.mark.parametrize("layout", ["grey_alpha8", "grey_alpha16", "grey_key", "grey_key16", "grey2bit_key",
                                    "palette", "palette_alpha", "rgb_key"])
def test_png_layouts_equal_openimageio(tmp_path, layout):
    """Grey + alpha (OpenCV: BGRA), a grey key colour (OpenCV ignores it), palettes, low bit depths."""
    path = tmp_path / f"{layout}.png"
    if layout == "grey_alpha8":
        _png(path, 8, 4, [bytes(range(r, r + 8)) for r in range(3)])
    elif layout == "grey_alpha16":
        _png(path, 16, 4, [bytes(range(r, r + 16)) for r in range(3)])
    elif layout == "grey_key":
        _png(path, 8, 0, [bytes([5, 6, 7, 5])] * 2, _chunk(b"tRNS", struct.pack(">H", 5)))
    elif layout == "grey_key16":
        _png(path, 16, 0, [struct.pack(">4H", 900, 901, 900, 65535)] * 2, _chunk(b"tRNS", struct.pack(">H", 900)))
    elif layout == "grey2bit_key":
        _png(path, 2, 0, [bytes([0b00011011])] * 2, _chunk(b"tRNS", struct.pack(">H", 1)))
    elif layout == "palette":
        _png(path, 4, 3, [bytes([0x01, 0x20])] * 2, PALETTE)
    elif layout == "palette_alpha":
        _png(path, 8, 3, [bytes([0, 1, 2, 0])] * 2, PALETTE, _chunk(b"tRNS", bytes([10, 200])))
    else:
        _png(path, 8, 2, [bytes([1, 2, 3, 4, 5, 6] * 2)] * 2, _chunk(b"tRNS", struct.pack(">HHH", 1, 2, 3)))
    (pixels_ref, names_ref, spec_ref), (pixels, names, spec) = both(read_channels, path)
    assert names == tuple(names_ref) and spec.alpha_channel == spec_ref.alpha_channel
    assert_same(pixels_ref, pixels)
    reference, got = both(read_image, path)
    assert_same(reference, got)


def test_jpeg_read_equals_openimageio(tmp_path):
    colour = cv2.GaussianBlur(random_image(np.uint8, 3, 64, 96), (7, 7), 0)
    cv2.imwrite(str(tmp_path / "baseline.jpg"), colour, [cv2.IMWRITE_JPEG_QUALITY, 90])
    cv2.imwrite(str(tmp_path / "progressive.jpeg"), colour, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    cv2.imwrite(str(tmp_path / "grey.jpg"), colour[:, :, 1])
    with without_oiio():
        write_image(tmp_path / "written.jpg", colour)
        assert image_size(tmp_path / "baseline.jpg") == (64, 96)
    for name in ("baseline.jpg", "progressive.jpeg", "grey.jpg", "written.jpg"):
        reference, got = both(read_image, tmp_path / name)
        assert_same(reference, got)


@pytest.mark.parametrize("source_kind", ["rgba8", "rgba16", "rgb16", "grey16", "jpeg"])
def test_write_plate_keeps_the_source_layout(tmp_path, source_kind):
    """Colour replaced, alpha and sample type kept: the same pixels as OpenImageIO's write_plate."""
    dtype = np.uint16 if source_kind.endswith("16") else np.uint8
    channels = {"rgba8": 4, "rgba16": 4, "rgb16": 3, "grey16": 1, "jpeg": 3}[source_kind]
    source = tmp_path / ("in.jpg" if source_kind == "jpeg" else "in.png")
    image = random_image(dtype, channels)
    with without_oiio():
        write_image(source, image)
        stored = read_image(source)
    colour = random_image(dtype, 3)
    with without_oiio():
        write_plate(source, tmp_path / "cv.png", colour)
        got = read_image(tmp_path / "cv.png")
    assert got.dtype == dtype and got.shape == stored.shape
    if channels == 4:
        np.testing.assert_array_equal(got[:, :, :3], colour)
        np.testing.assert_array_equal(got[:, :, 3], image[:, :, 3])
    pytest.importorskip("OpenImageIO")
    write_plate(source, tmp_path / "oiio.png", colour)
    assert_same(read_image(tmp_path / "oiio.png"), got)


def test_grey_alpha_frames_are_refused_but_read_as_mattes(tmp_path):
    """OpenCV writes no two-channel file: a grey + alpha plate is refused before any work (its header),
    and by ``write_plate``; as a matte it is read as usual (masks are never written back)."""
    source = _png(tmp_path / "in.png", 8, 4, [bytes(range(r, r + 8)) for r in range(3)])
    colour = random_image(np.uint8, 3, 3, 4)
    with without_oiio():
        stored = read_image(source)
        with pytest.raises(InputError, match="grey \\+ alpha frames .*needs OpenImageIO") as refused:
            header(source)
        assert refused.value.path == source
        with pytest.raises(InputError, match="needs OpenImageIO"):
            write_plate(source, tmp_path / "out.png", colour)
    assert stored.shape == (3, 4, 2)
    assert not (tmp_path / "out.png").exists()


# ---------------------------------------------------------------------------
# refused: formats and layouts OpenCV does not read as OpenImageIO does, damaged files
# ---------------------------------------------------------------------------
def _refused_file(tmp_path: Path, kind: str) -> Path:
    if kind == "bmp32":  # OpenCV writes the alpha but reads it back without
        path = tmp_path / "alpha.bmp"
        cv2.imwrite(str(path), random_image(np.uint8, 4))
        return path
    oiio = pytest.importorskip("OpenImageIO")
    ext, fmt, channels, attrs = {"exr": (".exr", "half", 3, {}), "dpx": (".dpx", "uint16", 3, {}),
                                 "grey_alpha_tiff": (".tif", "uint16", 2, {}),
                                 "planar_tiff": (".tif", "uint8", 3, {"tiff:planarconfig": "separate"})}[kind]
    path = tmp_path / f"plate{ext}"
    spec = oiio.ImageSpec(W, H, channels, fmt)
    for key, value in attrs.items():
        spec.attribute(key, value)
    pixels = RNG.random((H, W, channels), dtype=np.float32)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec) and out.write_image(pixels) and out.close(), oiio.geterror()
    return path


@pytest.mark.parametrize("kind", ["exr", "dpx", "bmp32", "grey_alpha_tiff", "planar_tiff"])
def test_what_opencv_cannot_read_needs_openimageio(tmp_path, kind):
    path = _refused_file(tmp_path, kind)
    with without_oiio():
        for function in (read_image, read_channels, header, image_size):
            with pytest.raises(InputError, match=r"needs OpenImageIO \(pip install OpenImageIO\)") as info:
                function(path)
            one_line(info.value, path)


def test_exr_write_needs_openimageio(tmp_path):
    target = tmp_path / "out.exr"
    with without_oiio(), pytest.raises(InputError, match="writing .exr files needs OpenImageIO") as info:
        write_image(target, random_image(np.float32, 3))
    one_line(info.value, target)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    """Encoded in memory, written under a temporary name, renamed: a full disk leaves nothing behind."""
    from propainter_wire.io import output

    def no_space(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(output.os, "replace", no_space)
    target = tmp_path / "a.png"
    with without_oiio(), pytest.raises(InputError, match=os.strerror(errno.ENOSPC)) as info:
        write_image(target, random_image(np.uint8, 3))
    one_line(info.value, target)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif"])
def test_truncated_file_is_one_line_input_error(tmp_path, ext):
    path = tmp_path / f"cut{ext}"
    cv2.imwrite(str(path), random_image(np.uint8, 3, 64, 64))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with without_oiio(), pytest.raises(InputError) as info:
        read_image(path)
    one_line(info.value, path)


def test_damaged_png_header_is_one_line_input_error(tmp_path):
    path = tmp_path / "bad.png"
    cv2.imwrite(str(path), random_image(np.uint8, 3))
    data = bytearray(path.read_bytes())
    data[17] ^= 0xFF  # the width: the IHDR checksum no longer matches
    path.write_bytes(bytes(data))
    with without_oiio():
        for function in (image_size, read_image):
            with pytest.raises(InputError, match="IHDR checksum") as info:
                function(path)
            one_line(info.value, path)


# ---------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------
def _clip(root: Path, n: int = 5, h: int = 40, w: int = 56) -> tuple[Path, Path]:
    """``root/frames/000.png..`` 16-bit RGBA (a texture panning right) and ``root/masks/`` (a box)."""
    frames, masks = root / "frames", root / "masks"
    frames.mkdir(parents=True)
    masks.mkdir()
    base = cv2.GaussianBlur(random_image(np.uint16, 3, h, w + 2 * n), (7, 7), 0)
    alpha = random_image(np.uint16, 1, h, w)
    for t in range(n):
        cv2.imwrite(str(frames / f"{t:03d}.png"), np.dstack([base[:, 2 * t:2 * t + w], alpha]))
        mask = np.zeros((h, w), np.uint8)
        mask[h // 3:h // 3 + 8, w // 2:w // 2 + 10] = 255
        cv2.imwrite(str(masks / f"{t:03d}.png"), mask)
    return frames, masks


def test_inpaint_without_openimageio_writes_the_same_frames(tmp_path, capsys):
    """The classic engine on a PNG folder: a process where OpenImageIO cannot be imported writes the
    frames the OpenImageIO run writes."""
    pytest.importorskip("OpenImageIO")
    frames, masks = _clip(tmp_path / "in")
    with_oiio, without = tmp_path / "with", tmp_path / "without"
    assert main(["inpaint", "-i", str(frames), "-m", str(masks), "-o", str(with_oiio), *FAST]) == 0, \
        capsys.readouterr().err
    args = ["inpaint", "-i", str(frames), "-m", str(masks), "-o", str(without), *FAST]
    code = (f"import sys; sys.modules['OpenImageIO'] = None\n"
            f"from propainter_wire.cli import main; sys.exit(main({args!r}))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROPAINTER_WIRE_")}
    done = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(SRC)}, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in (with_oiio / "frames").iterdir())
    assert names == sorted(p.name for p in (without / "frames").iterdir()) == [f"{t:03d}.png" for t in range(5)]
    for name in names:
        reference = read_image(with_oiio / "frames" / name)
        assert reference.shape == (40, 56, 4) and reference.dtype == np.uint16
        assert_same(reference, read_image(without / "frames" / name))


def test_inpaint_exr_without_openimageio_exits_2_with_one_line(tmp_path, capsys):
    oiio = pytest.importorskip("OpenImageIO")
    frames, masks = _clip(tmp_path / "in", n=3)
    for png in sorted(frames.iterdir()):
        buf = oiio.ImageBuf(str(png))
        assert buf.write(str(png.with_suffix(".exr")), "half"), buf.geterror()
        png.unlink()
    out = tmp_path / "out"
    capsys.readouterr()
    with without_oiio():
        code = main(["inpaint", "-i", str(frames), "-m", str(masks), "-o", str(out), *FAST])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert "reading .exr files needs OpenImageIO" in lines[0] and str(frames) in lines[0]
    assert not (out / "frames").exists() or not any((out / "frames").iterdir())


def test_a_missing_openimageio_is_searched_for_once_per_process(monkeypatch):
    import importlib.util

    searched = []
    monkeypatch.delitem(sys.modules, "OpenImageIO", raising=False)  # as on a machine without it
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: searched.append(name))
    oiio_module._installed.cache_clear()
    try:
        for _ in range(3):  # a frame's header, size and pixels
            assert oiio_module.opencv_fallback() is cv_images
        with pytest.raises(ImportError, match="OpenImageIO"):
            oiio_module.load_oiio()
        assert searched == ["OpenImageIO"]
    finally:
        oiio_module._installed.cache_clear()


BROKEN_OIIO = """
import os
with open(os.environ["OIIO_IMPORTS"], "a") as f:
    f.write("import\\n")
raise ImportError("libOpenImageIO.so.3.0: cannot open shared object file")
"""

READ_ON_THREADS = """
import sys
from concurrent.futures import ThreadPoolExecutor
from propainter_wire.io import read_image
paths = sys.argv[1:]
with ThreadPoolExecutor(8) as pool:
    frames = list(pool.map(read_image, paths * 4))
print(len(frames), frames[0].shape)
"""


def test_an_installed_openimageio_that_fails_to_import_falls_back_on_every_thread(tmp_path):
    """A broken install (its library missing) is imported once; frames decoding on 8 threads all take OpenCV."""
    broken = tmp_path / "site"
    broken.mkdir()
    (broken / "OpenImageIO.py").write_text(BROKEN_OIIO)
    rgb = random_image(np.uint8, 3, 64, 96)
    paths = []
    for i in range(8):
        path = tmp_path / f"f{i}.png"
        cv2.imwrite(str(path), rgb[:, :, ::-1])
        paths.append(str(path))
    imports = tmp_path / "imports.txt"
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(broken), str(src)]), "OIIO_IMPORTS": str(imports)}
    proc = subprocess.run([sys.executable, "-c", READ_ON_THREADS, *paths], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["32", "(64,", "96,", "3)"]
    assert imports.read_text().splitlines() == ["import"]
