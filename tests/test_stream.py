"""Frames decoded while the engine runs (io.stream.FrameStream) and the runs that use it."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from propainter_wire.errors import InputError
from propainter_wire.io.stream import FrameStream


def _frames(n: int = 7) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 5, 6, 3), dtype=np.uint8)


def test_stream_reads_like_the_array():
    clip = _frames()
    stream = FrameStream(lambda i: clip[i], len(clip), clip.shape[1:], clip.dtype, workers=3)
    assert stream.shape == clip.shape and stream.dtype == clip.dtype and len(stream) == 7 and stream.ndim == 4
    assert np.array_equal(stream[2], clip[2]) and np.array_equal(stream[-1], clip[-1])
    assert np.array_equal(stream[1:4], clip[1:4]) and np.array_equal(stream[::2], clip[::2])
    assert np.array_equal(stream[[0, 3]], clip[[0, 3]])
    assert np.array_equal(np.asarray(stream), clip)
    assert np.asarray(stream, dtype=np.float32).dtype == np.float32
    with pytest.raises(IndexError):
        stream[7]


def test_stream_waits_only_for_the_frames_read():
    clip = _frames()
    gate = threading.Event()

    def read(i: int) -> np.ndarray:
        if i >= 4:
            assert gate.wait(10)
        return clip[i]

    stream = FrameStream(read, len(clip), clip.shape[1:], clip.dtype, workers=2)
    assert np.array_equal(stream[0:4], clip[:4])  # frames 4.. are still held back
    gate.set()
    assert np.array_equal(np.asarray(stream), clip)


def test_stream_raises_a_frame_error_where_it_is_read():
    clip = _frames()

    def read(i: int) -> np.ndarray:
        if i == 5:
            raise InputError("cannot decode", "f5.png")
        return clip[i]

    stream = FrameStream(read, len(clip), clip.shape[1:], clip.dtype, workers=2)
    assert np.array_equal(stream[:5], clip[:5])
    with pytest.raises(InputError, match="cannot decode"):
        stream[4:6]
    with pytest.raises(InputError):
        np.asarray(stream)
    stream.close()


def test_folder_run_streams_frames_and_matches_the_unstreamed_run(tmp_path, monkeypatch, det_weights_dir):
    """The default folder run hands the engine a FrameStream; --overwrite reads the whole clip first;
    both give the same frames."""
    import cv2

    from propainter_wire import inpaint
    from propainter_wire.runner import files

    rng = np.random.default_rng(1)
    frames_dir, masks_dir = tmp_path / "frames", tmp_path / "masks"
    frames_dir.mkdir()
    masks_dir.mkdir()
    base = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    for i in range(5):
        cv2.imwrite(str(frames_dir / f"{i:03d}.png"), np.roll(base, 2 * i, axis=1))
        mask = np.zeros((48, 64), np.uint8)
        mask[18:30, 20 + i:34 + i] = 255
        cv2.imwrite(str(masks_dir / f"{i:03d}.png"), mask)
    seen = []
    real = files.prepare_engine_input

    def spy(frames, *args, **kwargs):
        seen.append(isinstance(frames, FrameStream))
        return real(frames, *args, **kwargs)

    monkeypatch.setattr(files, "prepare_engine_input", spy)
    common = dict(engine="propainter", weights_dir=det_weights_dir, device="cpu", quiet=True, raft_iters=2)
    inpaint(frames_dir, masks_dir, tmp_path / "a", **common)
    (tmp_path / "b").mkdir()
    inpaint(frames_dir, masks_dir, tmp_path / "b", overwrite=True, **common)
    assert seen == [True, False]
    for i in range(5):
        a = cv2.imread(str(next((tmp_path / "a").rglob(f"{i:03d}.png"))))
        b = cv2.imread(str(next((tmp_path / "b").rglob(f"{i:03d}.png"))))
        assert np.array_equal(a, b)


def test_folder_run_with_an_undecodable_frame_fails_with_its_path(tmp_path, det_weights_dir, capsys):
    """A frame that only fails when decoded (its header is fine) stops the run with exit code 2, naming it."""
    import cv2

    from propainter_wire.cli import main

    frames_dir, masks_dir = tmp_path / "frames", tmp_path / "masks"
    frames_dir.mkdir()
    masks_dir.mkdir()
    frame = np.full((32, 40, 3), 90, np.uint8)
    mask = np.zeros((32, 40), np.uint8)
    mask[10:20, 10:20] = 255
    for i in range(4):
        cv2.imwrite(str(frames_dir / f"{i:03d}.png"), frame)
        cv2.imwrite(str(masks_dir / f"{i:03d}.png"), mask)
    data = (frames_dir / "002.png").read_bytes()
    (frames_dir / "002.png").write_bytes(data[:60])  # header intact, image data cut
    code = main(["inpaint", "-i", str(frames_dir), "-m", str(masks_dir), "-o", str(tmp_path / "out"),
                 "--engine", "propainter", "--weights-dir", str(det_weights_dir), "--device", "cpu", "--quiet",
                 "--raft-iters", "2"])
    assert code == 2
    assert "002.png" in capsys.readouterr().err
