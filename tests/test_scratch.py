"""Disk-backed whole-clip arrays (``--scratch disk``): same results, nothing left behind."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest
import torch

from propainter_wire.config import InpaintConfig
from propainter_wire.errors import InputError
from propainter_wire.io.scratch import DiskArray, Scratch


def test_disk_array_reads_what_was_written(tmp_path):
    with Scratch(tmp_path) as scratch:
        arr = scratch.array("x", 5, (3, 4), np.float32)
        assert arr.shape == (5, 3, 4) and arr.dtype == np.float32 and len(arr) == 5 and arr.size == 60
        assert not arr.any() and not arr.all()
        data = np.arange(60, dtype=np.float32).reshape(5, 3, 4)
        arr[1:4] = data[1:4]
        arr[0] = data[0]
        arr[-1] = data[4]
        np.testing.assert_array_equal(np.asarray(arr), data)
        np.testing.assert_array_equal(arr[2], data[2])
        np.testing.assert_array_equal(arr[[4, 0, 2]], data[[4, 0, 2]])
        np.testing.assert_array_equal(arr[3:], data[3:])
        assert arr[0:0].shape == (0, 3, 4)
        assert arr.any() and not arr.all()  # element 0 is 0
        arr[0] = 1.0  # broadcast
        assert arr.all()
        with pytest.raises(IndexError):
            arr[5]
        with pytest.raises(IndexError):
            arr[::2]
        with pytest.raises(TypeError):
            arr[[0, 1]] = data[:2]
        folder = scratch.path
        assert folder.is_dir() and folder.parent == tmp_path
    assert not folder.exists()  # removed with its files


def test_disk_array_is_safe_across_threads(tmp_path):
    with Scratch(tmp_path) as scratch:
        arr = scratch.array("frames", 64, (17, 23, 3), np.uint8)

        def work(k: int) -> None:
            for i in range(k, 64, 8):
                arr[i] = i
                assert (arr[i] == i).all()

        threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [int(arr[i][0, 0, 0]) for i in range(64)] == list(range(64))


def test_closed_array_refuses_io(tmp_path):
    arr = DiskArray(tmp_path / "a.raw", 2, (2,), np.uint8)
    arr.close()
    with pytest.raises(ValueError):
        arr[0]


def test_unknown_scratch_mode_is_an_input_error():
    with pytest.raises(InputError):
        InpaintConfig(scratch="ssd").validate()


def _clip(tmp_path, count=9):
    rng = np.random.default_rng(0)
    base = (rng.random((120, 160, 3)) * 255).astype(np.uint8)
    frames, masks = tmp_path / "frames", tmp_path / "masks"
    frames.mkdir()
    masks.mkdir()
    for i in range(count):
        cv2.imwrite(str(frames / f"{i:03d}.png"), base[i:i + 64, 2 * i:2 * i + 96])
        m = np.zeros((64, 96), np.uint8)
        m[20:40, 30 + i:60 + i] = 255
        cv2.imwrite(str(masks / f"{i:03d}.png"), m)
    return frames, masks


@pytest.mark.parametrize("engine", ["propainter", "classic"])
def test_disk_scratch_gives_the_same_frames_and_cleans_up(tmp_path, det_weights_dir, engine):
    from propainter_wire.cli import main

    frames, masks = _clip(tmp_path)
    outputs = {}
    for mode in ("memory", "disk"):
        out = tmp_path / f"out_{mode}"
        code = main(["inpaint", "-i", str(frames), "-m", str(masks), "-o", str(out), "--engine", engine,
                     "--weights-dir", str(det_weights_dir), "--device", "cpu", "--precision", "fp32", "--quiet",
                     "--scratch", mode, "--scratch-dir", str(tmp_path / "scratch"), "--subvideo-length", "4",
                     "--neighbor-length", "4", "--ref-stride", "3", "--raft-iters", "2", "--save-video"])
        assert code == 0
        outputs[mode] = np.stack([cv2.imread(str(out / "frames" / f"{i:03d}.png")) for i in range(9)])
        assert (out / "inpainted.mp4").stat().st_size > 0
    # a scratch also bounds the networks' activations (chunked layers: float summation order only)
    assert np.abs(outputs["disk"].astype(int) - outputs["memory"].astype(int)).max() <= 1
    assert list((tmp_path / "scratch").iterdir()) == []  # the scratch directory is gone


def _diagonal_clip(seed: int, count: int, box: tuple[slice, slice]) -> tuple[list, list]:
    """``count`` 48x64 uint8 crops moving diagonally over a noise image, and the same box masked in each."""
    rng = np.random.default_rng(seed)
    base = (rng.random((80, 120, 3)) * 255).astype(np.uint8)
    frames = [base[i:i + 48, i:i + 64] for i in range(count)]
    masks = [np.zeros((48, 64), bool) for _ in frames]
    for m in masks:
        m[box] = True
    return frames, masks


def test_engine_keeps_its_arrays_in_the_scratch(tmp_path, det_weights_dir, monkeypatch):
    """With a scratch, the propainter engine's whole-clip arrays are disk arrays, and the output matches."""
    from propainter_wire.engines.propainter import ProPainterEngine
    from propainter_wire.pipeline.stages import Stages
    from propainter_wire.runner.inputs import prepare_engine_input

    frames, masks = _diagonal_clip(3, 6, np.s_[10:30, 20:40])
    cfg = InpaintConfig(neighbor_length=4, ref_stride=3, subvideo_length=4, raft_iters=2)
    engine = ProPainterEngine(det_weights_dir, device="cpu", precision="fp32")
    expected = engine.run(prepare_engine_input(frames, masks, cfg), cfg, Stages())

    made = []
    real = Scratch.array

    def spy(self, name, *args):
        made.append(name)
        return real(self, name, *args)

    monkeypatch.setattr(Scratch, "array", spy)
    with Scratch(tmp_path) as scratch:
        inp = prepare_engine_input(frames, masks, cfg, scratch=scratch)
        assert isinstance(inp.frames, DiskArray)
        got = engine.run(inp, cfg, Stages())
        assert len(got) == len(frames)
        assert np.abs(np.stack([got[i] for i in range(len(frames))]) - expected).max() <= 1.5 / 255
    assert {"raft_f", "completed_f", "updated", "output"} <= set(made)


@pytest.mark.parametrize("stored", [torch.float16, torch.bfloat16])
def test_half_storage_in_memory_and_on_disk_agree(tmp_path, det_weights_dir, monkeypatch, stored):
    """Whole-clip float arrays kept in a half dtype (a GPU's fp16/bf16 runs): bfloat16 goes to disk as
    float32 (numpy has no bfloat16), float16 as float16; memory and disk give the same frames."""
    from propainter_wire.engines.propainter import ProPainterEngine
    from propainter_wire.pipeline.stages import Stages
    from propainter_wire.runner.inputs import prepare_engine_input

    frames, masks = _diagonal_clip(4, 5, np.s_[12:30, 20:44])
    cfg = InpaintConfig(neighbor_length=4, ref_stride=3, subvideo_length=4, raft_iters=2)
    engine = ProPainterEngine(det_weights_dir, device="cpu", precision="fp32")
    engine.memory = engine.memory.replace(flow_dtype=stored, frame_dtype=stored)
    in_memory = engine.run(prepare_engine_input(frames, masks, cfg), cfg, Stages())
    with Scratch(tmp_path) as scratch:
        got = engine.run(prepare_engine_input(frames, masks, cfg, scratch=scratch), cfg, Stages())
        on_disk = np.stack([got[i] for i in range(len(frames))])
    assert np.abs(on_disk - in_memory).max() <= 1.5 / 255
