"""Reading clips and writing results: round trips, ordering, every input error."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import DATA, require
from propainter_wire.errors import InputError
from propainter_wire.io import (
    FRAMES_DIR,
    REPORT_NAME,
    VideoWriter,
    image_size,
    natural_key,
    open_frames,
    prepare_output_dir,
    read_image,
    write_image,
    write_json,
)
from propainter_wire.io import oiio as oiio_module
from propainter_wire.io import output as output_module

RNG = np.random.default_rng(0)


def _rgb(h: int = 12, w: int = 16, dtype=np.uint8) -> np.ndarray:
    top = np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else 1.0
    return RNG.integers(0, int(top) + 1, size=(h, w, 3)).astype(dtype)


def _smooth_clip(t: int, h: int, w: int) -> np.ndarray:
    """(T, H, W, 3) uint8 gradients with a moving square: easy for a video codec."""
    yy, xx = np.mgrid[0:h, 0:w]
    clip = np.empty((t, h, w, 3), dtype=np.uint8)
    for i in range(t):
        clip[i, :, :, 0] = (xx * 255 // max(w - 1, 1)).astype(np.uint8)
        clip[i, :, :, 1] = (yy * 255 // max(h - 1, 1)).astype(np.uint8)
        clip[i, :, :, 2] = 60
        clip[i, 8 : 8 + h // 3, 2 * i + 4 : 2 * i + 4 + w // 4] = (230, 40, 120)
    return clip


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _write_video(path: Path, clip: np.ndarray, fps: float = 24.0) -> None:
    with VideoWriter(path, fps=fps, width=clip.shape[2], height=clip.shape[1]) as video:
        for frame in clip:
            video.write(frame)


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.startswith(".pw-tmp-")]


# ---------------------------------------------------------------------------
# image folders
# ---------------------------------------------------------------------------
def test_png8_round_trip_and_channel_order(tmp_path):
    frames = [_rgb() for _ in range(3)]
    for i, frame in enumerate(frames):
        write_image(tmp_path / f"f{i}.png", frame)
    on_disk = cv2.imread(str(tmp_path / "f0.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(on_disk[:, :, ::-1], frames[0])  # the file is correct RGB for other tools
    clip = open_frames(tmp_path)
    assert (clip.kind, len(clip), clip.size, clip.dtype, clip.bit_depth, clip.ext) == (
        "folder", 3, (12, 16), np.uint8, 8, ".png")
    assert clip.fps is None and not clip.has_alpha
    for i in range(3):
        np.testing.assert_array_equal(clip[i], frames[i])
    np.testing.assert_array_equal(clip.read_all(), np.stack(frames))
    np.testing.assert_array_equal(clip[-1], frames[2])


def test_png16_round_trip(tmp_path):
    frame = _rgb(dtype=np.uint16)
    write_image(tmp_path / "a.png", frame)
    clip = open_frames(tmp_path)
    assert clip.dtype == np.uint16 and clip.bit_depth == 16 and clip.ext == ".png"
    np.testing.assert_array_equal(clip[0], frame)


def test_grey_is_expanded_to_rgb(tmp_path):
    grey = RNG.integers(0, 256, size=(10, 14), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    frame = open_frames(tmp_path)[0]
    assert frame.shape == (10, 14, 3)
    for c in range(3):
        np.testing.assert_array_equal(frame[:, :, c], grey)


def test_rgba_alpha_is_dropped_and_flagged(tmp_path):
    rgba = RNG.integers(0, 256, size=(10, 14, 4), dtype=np.uint8)
    write_image(tmp_path / "a.png", rgba)
    clip = open_frames(tmp_path)
    assert clip.has_alpha
    np.testing.assert_array_equal(clip[0], rgba[:, :, :3])


def test_exr_float_round_trip(tmp_path):
    frame = (RNG.random((9, 11, 3), dtype=np.float32) * 4.0).astype(np.float32)  # HDR: values above 1 kept
    try:
        write_image(tmp_path / "f1.exr", frame)
    except InputError as exc:
        pytest.skip(f"no EXR codec here: {exc}")
    clip = open_frames(tmp_path)
    assert clip.dtype == np.float32 and clip.bit_depth == 32 and clip.ext == ".exr"
    np.testing.assert_allclose(clip[0], frame, rtol=0, atol=0)
    assert image_size(tmp_path / "f1.exr") == (9, 11)


def test_jpg_tif_bmp_readable(tmp_path):
    frame = _smooth_clip(1, 32, 48)[0]
    for name in ("a.jpg", "b.tif", "c.bmp", "d.jpeg"):
        cv2.imwrite(str(tmp_path / name), frame[:, :, ::-1])
        assert image_size(tmp_path / name) == (32, 48)
    clip = open_frames(tmp_path)
    assert clip.stems == ["a", "b", "c", "d"]
    assert np.abs(clip[0].astype(int) - frame).mean() < 4  # jpeg is lossy
    np.testing.assert_array_equal(clip[1], frame)
    np.testing.assert_array_equal(clip[2], frame)


def test_natural_sort_skips_hidden_and_non_images(tmp_path):
    for name in ("frame10.png", "frame2.png", "frame1.png", "frame100.png", ".frame0.png"):
        write_image(tmp_path / name, _rgb(4, 4))
    (tmp_path / "notes.txt").write_text("not a frame")
    (tmp_path / "sub.png").mkdir()
    clip = open_frames(tmp_path)
    assert clip.stems == ["frame1", "frame2", "frame10", "frame100"]
    assert sorted(["b1", "a10", "a2", "A3"], key=natural_key) == ["a2", "A3", "a10", "b1"]


# ---------------------------------------------------------------------------
# input errors: each names the offending path
# ---------------------------------------------------------------------------
def _raises_naming(path: Path, fn, *args, match: str | None = None) -> InputError:
    with pytest.raises(InputError, match=match) as info:
        fn(*args)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)
    return info.value


def test_missing_path(tmp_path):
    _raises_naming(tmp_path / "nope", open_frames, tmp_path / "nope", match="no such")


def test_empty_folder(tmp_path):
    _raises_naming(tmp_path, open_frames, tmp_path, match="empty")


def test_folder_without_images(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    (tmp_path / ".hidden.png").write_bytes(b"x")
    _raises_naming(tmp_path, open_frames, tmp_path, match="no image")


def test_corrupt_first_image(tmp_path):
    (tmp_path / "0001.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    _raises_naming(tmp_path / "0001.png", open_frames, tmp_path, match="cannot decode")


def test_corrupt_later_image_raises_on_access(tmp_path):
    write_image(tmp_path / "0001.png", _rgb())
    good = (tmp_path / "0001.png").read_bytes()
    (tmp_path / "0002.png").write_bytes(good[: len(good) // 2])  # truncated
    clip = open_frames(tmp_path)
    _raises_naming(tmp_path / "0002.png", clip.__getitem__, 1)
    _raises_naming(tmp_path / "0002.png", clip.validate, True)


def test_truncated_jpeg(tmp_path):
    cv2.imwrite(str(tmp_path / "a.jpg"), _smooth_clip(1, 64, 64)[0])
    data = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "a.jpg").write_bytes(data[: len(data) * 2 // 3])
    _raises_naming(tmp_path / "a.jpg", read_image, tmp_path / "a.jpg", match="truncated")


def test_validate_names_first_frame_of_another_size(tmp_path):
    write_image(tmp_path / "1.png", _rgb(12, 16))
    write_image(tmp_path / "2.png", _rgb(12, 16))
    write_image(tmp_path / "3.png", _rgb(10, 16))
    write_image(tmp_path / "4.png", _rgb(8, 8))
    clip = open_frames(tmp_path)
    err = _raises_naming(tmp_path / "3.png", clip.validate)
    assert "16x10" in str(err) and "16x12" in str(err)
    _raises_naming(tmp_path / "3.png", clip.__getitem__, 2)


def test_mixed_bit_depth_refused_on_access(tmp_path):
    write_image(tmp_path / "1.png", _rgb())
    write_image(tmp_path / "2.png", _rgb(dtype=np.uint16))
    _raises_naming(tmp_path / "2.png", open_frames(tmp_path).__getitem__, 1, match="sample type")


def test_unsupported_extension_and_single_image(tmp_path):
    (tmp_path / "clip.gif").write_bytes(b"GIF89a")
    _raises_naming(tmp_path / "clip.gif", open_frames, tmp_path / "clip.gif", match="unsupported extension")
    write_image(tmp_path / "one.png", _rgb())
    _raises_naming(tmp_path / "one.png", open_frames, tmp_path / "one.png", match="not a clip")


def test_garbage_video(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(os.urandom(4096))
    _raises_naming(tmp_path / "bad.mp4", open_frames, tmp_path / "bad.mp4")
    (tmp_path / "empty.mov").write_bytes(b"")
    _raises_naming(tmp_path / "empty.mov", open_frames, tmp_path / "empty.mov")


@pytest.mark.parametrize("backend", ["pyav", "opencv"])
def test_truncated_video_fails_clearly(tmp_path, monkeypatch, backend):
    if backend == "opencv":
        monkeypatch.setitem(sys.modules, "av", None)
    else:
        pytest.importorskip("av")
    path = tmp_path / "clip.mp4"
    _write_video(path, _smooth_clip(24, 48, 64))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 9 // 10])  # moov is at the front (faststart): the container still says 24
    if backend == "opencv":  # OpenCV's demuxer may already refuse to open the cut file
        with pytest.raises(InputError, match="ends after|cannot open") as info:
            open_frames(path).validate(full=True)
        assert str(path) in str(info.value)
    else:
        clip = open_frames(path)
        assert len(clip) == 24 and clip[0].shape == (48, 64, 3)
        _raises_naming(path, clip.validate, True, match=r"ends after \d+ decodable frames but its container states 24")
        _raises_naming(path, clip.__getitem__, 23, match="truncated")
    path.write_bytes(data[:1200])  # header and a sliver of the first frame
    with pytest.raises(InputError, match="no decodable frame|cannot") as info:
        open_frames(path)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------------------
# video
# ---------------------------------------------------------------------------
def test_video_round_trip(tmp_path):
    clip = _smooth_clip(12, 48, 64)
    path = tmp_path / "out.mp4"
    _write_video(path, clip, fps=24.0)
    assert path.exists() and _no_temp_files(tmp_path)
    video = open_frames(path)
    assert (video.kind, len(video), video.size, video.fps, video.dtype) == ("video", 12, (48, 64), 24.0, np.uint8)
    assert video.stems[:2] == ["00000", "00001"] and video.ext == ".png"
    frames = video.read_all()
    assert min(_psnr(a, b) for a, b in zip(frames, clip, strict=True)) > 30


def test_video_random_access_matches_sequential(tmp_path):
    path = tmp_path / "out.mp4"
    _write_video(path, _smooth_clip(16, 32, 48))
    video = open_frames(path)
    sequential = video.read_all()
    for i in (10, 2, 2, 15, 0, 7, -1):
        np.testing.assert_array_equal(video[i], sequential[i])
    with pytest.raises(IndexError):
        video[16]
    video.close()


def test_video_odd_size_is_padded(tmp_path):
    clip = _smooth_clip(6, 33, 47)
    path = tmp_path / "odd.mp4"
    _write_video(path, clip)
    video = open_frames(path)
    assert video.size == (34, 48)
    frame = video[3]
    assert _psnr(frame[:33, :47], clip[3]) > 25  # tiny odd frame: 4:2:0 chroma blurs the square's edges
    assert np.abs(frame[33].astype(int) - frame[32]).mean() < 8  # padding repeats the last row


def test_mkv_without_frame_count(tmp_path):
    av = pytest.importorskip("av")
    path = tmp_path / "clip.mkv"
    clip = _smooth_clip(7, 32, 48)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        for frame in clip:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    video = open_frames(path)
    assert len(video) == 7 and video.fps == 10.0
    video.validate(full=True)


def test_opencv_fallback_without_pyav(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` now raises ImportError
    clip = _smooth_clip(10, 48, 64)
    path = tmp_path / "cv.mp4"
    with VideoWriter(path, fps=20.0, width=64, height=48) as writer:
        assert writer.backend == "opencv"
        for frame in clip:
            writer.write(frame)
    video = open_frames(path)
    assert video.backend == "opencv"
    assert (len(video), video.size, video.fps) == (10, (48, 64), 20.0)
    np.testing.assert_array_equal(video[3], video.read_all()[3])
    assert min(_psnr(a, b) for a, b in zip(video.read_all(), clip, strict=True)) > 25  # mp4v is coarser than x264


def test_video_writer_error_inside_block_leaves_nothing(tmp_path):
    path = tmp_path / "x.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(path, fps=10, width=16, height=16) as video:
            video.write(np.zeros((16, 16, 3), np.uint8))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with VideoWriter(path, fps=10, width=16, height=16) as video:
        with pytest.raises(ValueError):
            video.write(np.zeros((8, 16, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []  # no frame written: no file


def test_real_clip_running_car():
    path = require(DATA / "running_car" / "running_car.mp4")
    video = open_frames(path)
    assert (len(video), video.width, video.height, video.fps) == (292, 972, 540, 25.0)
    for i in (0, 1, 150, 3):
        frame = video[i]
        assert frame.shape == (540, 972, 3) and frame.dtype == np.uint8 and frame.std() > 1
    video.close()


# ---------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------
def test_output_inside_input_refused(tmp_path):
    frames = tmp_path / "frames_in"
    frames.mkdir()
    for out in (frames, frames / "out", frames / "a" / "b"):
        _raises_naming(out, prepare_output_dir, out, [frames], match="inside the input")
    # the folder holding an input video is fine
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    assert prepare_output_dir(tmp_path / "result", [video, None]) == (tmp_path / "result").resolve()
    # an input where this tool writes its frames is refused
    _raises_naming(tmp_path, prepare_output_dir, tmp_path, [tmp_path / FRAMES_DIR], match="where the output")


def test_output_dir_non_empty_overwrite_resume(tmp_path):
    out = tmp_path / "out"
    prepare_output_dir(out, [])
    write_image(out / FRAMES_DIR / "00000.png", _rgb())
    write_json(out / REPORT_NAME, {"a": 1})
    _raises_naming(out, prepare_output_dir, out, [], match="not empty")
    _raises_naming(out, prepare_output_dir, out, [], True, True)  # both flags
    # resume keeps results, drops stale temp files
    (out / ".pw-tmp-dead-00001.png").write_bytes(b"x")
    prepare_output_dir(out, [], resume=True)
    assert (out / FRAMES_DIR / "00000.png").exists() and _no_temp_files(out)
    # a file this tool did not write: resume refuses, overwrite keeps it and clears the rest
    (out / "notes.txt").write_text("mine")
    _raises_naming(out, prepare_output_dir, out, [], False, True, match="did not write")
    prepare_output_dir(out, [], overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    # a file where the folder should be
    (tmp_path / "file").write_text("x")
    _raises_naming(tmp_path / "file", prepare_output_dir, tmp_path / "file", [], match="not a folder")


def test_atomic_writes_leave_no_temp_files(tmp_path):
    write_image(tmp_path / "a.png", _rgb())
    write_image(tmp_path / "a.png", _rgb())  # replace an existing file
    write_json(tmp_path / "r.json", {"x": np.float32(1.5), "n": np.int64(3), "arr": np.arange(3), "p": tmp_path})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "r.json"]
    import json

    assert json.loads((tmp_path / "r.json").read_text()) == {"x": 1.5, "n": 3, "arr": [0, 1, 2], "p": str(tmp_path)}


def test_write_image_dtype_checked(tmp_path):
    with pytest.raises(ValueError):
        write_image(tmp_path / "a.png", np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError):
        write_image(tmp_path / "a.exr", np.zeros((4, 4, 3), np.uint8))


def test_disk_full_on_rename_is_input_error(tmp_path, monkeypatch):
    def no_space(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(output_module.os, "replace", no_space)
    target = tmp_path / "a.png"
    err = _raises_naming(target, write_image, target, _rgb())
    assert os.strerror(errno.ENOSPC) in str(err)
    _raises_naming(tmp_path / "r.json", write_json, tmp_path / "r.json", {"a": 1})
    assert list(tmp_path.iterdir()) == []


class _FailingOutput:
    """An OpenImageIO ImageOutput that writes half a file, then fails as a full disk does."""

    def __init__(self, real, error: str):
        self.real, self.error, self.path = real, error, None

    def open(self, path, *args):
        self.path = path
        return True

    def write_image(self, pixels):
        with open(self.path, "wb") as f:
            f.write(b"\x89PNG partial")
        return False

    def close(self):
        return True

    def geterror(self):
        return self.error


def _failing_oiio(monkeypatch, error: str, create_fails: bool = False):
    OpenImageIO = pytest.importorskip("OpenImageIO")

    class Fake:
        ImageSpec = OpenImageIO.ImageSpec

        class ImageOutput:
            @staticmethod
            def create(path):
                return None if create_fails else _FailingOutput(None, error)

        @staticmethod
        def geterror():
            return error

    monkeypatch.setattr(oiio_module, "load_oiio", lambda: Fake)


def test_disk_full_mid_write_removes_partial_file(tmp_path, monkeypatch):
    _failing_oiio(monkeypatch, os.strerror(errno.ENOSPC))
    err = _raises_naming(tmp_path / "a.png", write_image, tmp_path / "a.png", _rgb())
    assert "No space" in str(err) or os.strerror(errno.ENOSPC) in str(err)
    assert list(tmp_path.iterdir()) == []

    def half_writer(path, mode):  # the JSON files: Python's own writes
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(output_module, "open", half_writer, raising=False)
    _raises_naming(tmp_path / "r.json", write_json, tmp_path / "r.json", {"a": 1})
    assert list(tmp_path.iterdir()) == []


def test_read_only_folder_is_input_error(tmp_path, monkeypatch):
    _failing_oiio(monkeypatch, f"Could not open file: {os.strerror(errno.EROFS)}", create_fails=True)
    _raises_naming(tmp_path / "x" / "a.png", write_image, tmp_path / "x" / "a.png", _rgb(), match="(?i)read-only")


def test_video_writer_unwritable_folder(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    with pytest.raises(InputError) as info:
        VideoWriter(blocker / "v.mp4", fps=10, width=16, height=16)
    assert str(blocker / "v.mp4") in str(info.value)



def test_exr_needs_neither_openexr_nor_opencv(tmp_path, monkeypatch):
    """EXR goes through OpenImageIO alone: half and float both ways, nothing written by OpenCV."""
    pytest.importorskip("OpenImageIO")
    monkeypatch.setitem(sys.modules, "OpenEXR", None)
    monkeypatch.setattr(cv2, "imwrite", None)
    monkeypatch.setattr(cv2, "imread", None)
    frame = RNG.random((5, 6, 3), dtype=np.float32)
    write_image(tmp_path / "a.exr", frame)
    np.testing.assert_array_equal(read_image(tmp_path / "a.exr"), frame)
    half = frame.astype(np.float16)
    write_image(tmp_path / "b.exr", half)
    np.testing.assert_array_equal(read_image(tmp_path / "b.exr"), half.astype(np.float32))
    assert _no_temp_files(tmp_path)
