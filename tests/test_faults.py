"""Faults while running: a full disk, a read-only output, a GPU failing mid-run.

Each is simulated by monkeypatching (``os.replace``/``open`` of the output writer, an
engine stage): the CLI must answer with one line naming the file or the stage, a
non-zero exit code and no traceback; the inputs stay intact and finished frames stay
on disk, ready for ``--resume``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import propainter_wire.io.output as output_module
from propainter_wire.cli import main
from propainter_wire.errors import StageError

N, H, W = 6, 48, 64
FAST = ["--engine", "classic", "--device", "cpu", "--quiet"]
CUDA_ILLEGAL = ("CUDA error: an illegal memory access was encountered\n"
                "CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace "
                "below might be incorrect.\nFor debugging consider passing CUDA_LAUNCH_BLOCKING=1")


# these tests count and interrupt frame writes: one I/O thread keeps the writes in order
pytestmark = pytest.mark.usefixtures("in_order_io")


def make_clip(root: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(5)
    base = cv2.GaussianBlur(rng.integers(0, 256, (H, W + 2 * N, 3), dtype=np.uint8), (7, 7), 0)
    frames, masks = root / "frames", root / "masks"
    frames.mkdir(parents=True)
    masks.mkdir()
    for t in range(N):
        cv2.imwrite(str(frames / f"{t:03d}.png"), np.ascontiguousarray(base[:, 2 * t:2 * t + W]))
        mask = np.zeros((H, W), np.uint8)
        mask[12:24, 24:36] = 255
        cv2.imwrite(str(masks / f"{t:03d}.png"), mask)
    return frames, masks


def tree_hash(path: Path) -> str:
    digest = hashlib.sha1()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(f.relative_to(path)).encode() + f.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def clip(tmp_path):
    frames, masks = make_clip(tmp_path / "in")
    return frames, masks, tmp_path / "out", tree_hash(tmp_path / "in")


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def frames_on_disk(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "frames").iterdir()) if (out / "frames").exists() else []


# ---------------------------------------------------------------------------
# disk full, read-only output
# ---------------------------------------------------------------------------
def _fail_replace_after(monkeypatch, frames_ok: int, code: int) -> None:
    """``os.replace`` into ``frames/`` fails with ``code`` once ``frames_ok`` frames have landed."""
    real = os.replace
    done = []

    def replace(src, dst, *args, **kwargs):
        if Path(dst).parent.name == "frames":
            if len(done) >= frames_ok:
                raise OSError(code, os.strerror(code))
            done.append(dst)
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


def test_disk_full_mid_run_keeps_finished_frames_and_resumes(clip, capsys, monkeypatch, tmp_path):
    frames, masks, out, before = clip
    argv = ["inpaint", "-i", str(frames), "-m", str(masks), "-o", str(out), *FAST]
    with monkeypatch.context() as patch:
        _fail_replace_after(patch, 3, errno.ENOSPC)
        assert main(argv) == 2
    line = one_error_line(capsys)
    assert "003.png" in line and "No space left on device" in line
    assert tree_hash(frames.parent) == before
    assert frames_on_disk(out) == ["000.png", "001.png", "002.png"]  # and no temporary file
    assert json.loads((out / "manifest.json").read_text())["complete"] is False

    # space freed: --resume finishes, identical to a run that never failed
    assert main([*argv, "--resume"]) == 0
    reference = tmp_path / "reference"
    assert main(["inpaint", "-i", str(frames), "-m", str(masks), "-o", str(reference), *FAST]) == 0
    for name in frames_on_disk(reference):
        assert (out / "frames" / name).read_bytes() == (reference / "frames" / name).read_bytes()


def test_disk_full_on_the_first_frame_leaves_no_output(clip, capsys, monkeypatch):
    frames, masks, out, before = clip
    _fail_replace_after(monkeypatch, 0, errno.ENOSPC)
    assert main(["inpaint", "-i", str(frames), "-m", str(masks), "-o", str(out), *FAST]) == 2
    assert "No space left on device" in one_error_line(capsys)
    assert tree_hash(frames.parent) == before
    assert not out.exists()


def test_read_only_output(clip, capsys, monkeypatch):
    """Every file creation in the output folder fails with EROFS (the manifest is the first)."""
    frames, masks, out, before = clip

    def read_only_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wxa"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(file))
        return open(file, mode, *args, **kwargs)

    monkeypatch.setattr(output_module, "open", read_only_open, raising=False)
    assert main(["inpaint", "-i", str(frames), "-m", str(masks), "-o", str(out), *FAST]) == 2
    line = one_error_line(capsys)
    assert "manifest.json" in line and "Read-only file system" in line
    assert tree_hash(frames.parent) == before
    assert not out.exists()


def test_disk_full_while_writing_the_video(clip, capsys, monkeypatch):
    frames, masks, out, before = clip
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst).suffix == ".mp4":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    assert main(["inpaint", "-i", str(frames), "-m", str(masks), "-o", str(out), *FAST, "--save-video"]) == 2
    line = one_error_line(capsys)
    assert "inpainted.mp4" in line and "No space left on device" in line
    assert len(frames_on_disk(out)) == N  # the frames are all there
    assert not [n for n in os.listdir(out) if n.endswith(".mp4")]  # no half video under any name
    assert tree_hash(frames.parent) == before


# ---------------------------------------------------------------------------
# the device failing mid-run
# ---------------------------------------------------------------------------
def _oom_error() -> type[Exception]:
    return getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError


@pytest.mark.parametrize("target, stage, exc", [
    ("propainter_wire.engines.classic.estimate_flows", "flow", RuntimeError(CUDA_ILLEGAL)),
    ("propainter_wire.engines.classic.complete_flows", "complete", RuntimeError(CUDA_ILLEGAL)),
    ("propainter_wire.engines.classic.fill_unseen", "spatial", MemoryError()),
    ("propainter_wire.engines.classic.propagate_tracks", "propagate",
     _oom_error()("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 7.79 GiB")),
], ids=["flow-illegal-access", "complete-illegal-access", "spatial-host-oom", "propagate-cuda-oom"])
def test_device_failure_names_the_stage(clip, capsys, monkeypatch, target, stage, exc):
    frames, masks, out, before = clip

    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr(target, fail)
    code = main(["inpaint", "-i", str(frames), "-m", str(masks), "-o", str(out), *FAST])
    assert code == StageError.exit_code != 0
    line = one_error_line(capsys)
    assert f"stage '{stage}' failed" in line and "propainter-wire doctor" in line
    if isinstance(exc, MemoryError) or "out of memory" in str(exc):
        assert "--max-side" in line
    else:
        assert "illegal memory access" in line and "CUDA_LAUNCH_BLOCKING" not in line  # first line only
    assert tree_hash(frames.parent) == before
    assert not out.exists()


@pytest.fixture
def fake_propainter(monkeypatch, tmp_path):
    """A ProPainter engine with stand-in networks: only the wiring around them runs."""
    from propainter_wire.engines.propainter import ProPainterModels
    from propainter_wire.weights import CHECKPOINT_FILES

    folder = tmp_path / "weights"
    folder.mkdir()
    for name in CHECKPOINT_FILES:
        (folder / name).write_bytes(b"present")
    stub = torch.nn.Identity()
    monkeypatch.setattr(ProPainterModels, "load", classmethod(lambda cls, d, dev, **options: cls(stub, stub, stub)))
    return folder


def test_propainter_failure_in_raft_names_the_flow_stage(clip, capsys, monkeypatch, fake_propainter):
    frames, masks, out, before = clip

    def fail(*args, **kwargs):
        raise RuntimeError(CUDA_ILLEGAL)

    monkeypatch.setattr("propainter_wire.flow.raft.bidirectional_flows", fail)
    argv = ["inpaint", "-i", str(frames), "-m", str(masks), "-o", str(out), "--engine", "propainter",
            "--weights-dir", str(fake_propainter), "--device", "cpu", "--quiet"]
    assert main(argv) == StageError.exit_code
    line = one_error_line(capsys)
    assert "stage 'flow' failed: CUDA error: an illegal memory access" in line and "doctor" in line
    assert not out.exists()
    # --debug: the real exception chain is shown to the developer
    with pytest.raises(StageError) as info:
        main(["--debug", *argv])
    assert isinstance(info.value.__cause__, RuntimeError) and info.value.stage == "flow"


def test_failure_while_loading_the_networks_names_the_load_stage(clip, capsys, monkeypatch, fake_propainter):
    from propainter_wire.engines.propainter import ProPainterModels

    frames, masks, out, _ = clip

    def fail(cls, weights_dir, device, **options):
        raise _oom_error()("CUDA out of memory. Tried to allocate 150.00 MiB")

    monkeypatch.setattr(ProPainterModels, "load", classmethod(fail))
    argv = ["inpaint", "-i", str(frames), "-m", str(masks), "-o", str(out), "--engine", "propainter",
            "--weights-dir", str(fake_propainter), "--device", "cpu", "--quiet"]
    assert main(argv) == StageError.exit_code
    line = one_error_line(capsys)
    assert "stage 'load' failed: CUDA out of memory" in line and "--max-side" in line


def test_failure_between_engine_stages_names_the_engine(clip, capsys, monkeypatch):
    from propainter_wire.engines.classic import ClassicEngine

    frames, masks, out, _ = clip

    def fail(*args, **kwargs):
        raise RuntimeError("CUDA error: device-side assert triggered")

    monkeypatch.setattr(ClassicEngine, "run", fail)
    assert main(["inpaint", "-i", str(frames), "-m", str(masks), "-o", str(out), *FAST]) == StageError.exit_code
    assert "stage 'classic' failed: CUDA error: device-side assert" in one_error_line(capsys)


def test_unexpected_error_is_one_line_without_debug(clip, capsys, monkeypatch):
    from propainter_wire.engines.classic import ClassicEngine

    frames, masks, out, _ = clip

    def bug(*args, **kwargs):
        raise ValueError("operands could not be broadcast together")

    monkeypatch.setattr(ClassicEngine, "run", bug)
    argv = ["inpaint", "-i", str(frames), "-m", str(masks), "-o", str(out), *FAST]
    assert main(argv) == 1
    line = one_error_line(capsys)
    assert "ValueError" in line and "--debug" in line
    with pytest.raises(ValueError):
        main(["--debug", *argv])
