"""Interrupted runs: the output folder stays consistent and ``--resume`` finishes the run
with a result byte-identical to an uninterrupted one.

(a) in-process: the frame writer raises ``KeyboardInterrupt`` after N frames (Ctrl-C);
(b) a subprocess killed with SIGKILL mid-way, resumed in a second subprocess stopped
with SIGTERM, then finished in-process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from propainter_wire.cli import main
from propainter_wire.io.frames import FolderFrames

N, H, W = 8, 48, 64
FAST = ["--engine", "classic", "--device", "cpu", "--quiet"]


# these tests count and interrupt frame writes: one I/O thread keeps the writes in order
pytestmark = pytest.mark.usefixtures("in_order_io")


def make_clip(root: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(11)
    base = cv2.GaussianBlur(rng.integers(0, 256, (H, W + 2 * N, 3), dtype=np.uint8), (7, 7), 0)
    frames, masks = root / "frames", root / "masks"
    frames.mkdir(parents=True)
    masks.mkdir()
    for t in range(N):
        cv2.imwrite(str(frames / f"f{t + 1}.png"), np.ascontiguousarray(base[:, 2 * t:2 * t + W]))
        mask = np.zeros((H, W), np.uint8)
        mask[14:26, 20 + t:32 + t] = 255
        cv2.imwrite(str(masks / f"m{t + 1}.png"), mask)
    return frames, masks


def frame_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "frames").iterdir())}


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The clip and the output of an uninterrupted run."""
    root = tmp_path_factory.mktemp("resume")
    frames, masks = make_clip(root)
    out = root / "uninterrupted"
    assert main(["inpaint", "-i", str(frames), "-m", str(masks), "-o", str(out), *FAST]) == 0
    result = frame_bytes(out)
    assert len(result) == N
    return frames, masks, result


def assert_consistent_partial(out: Path, minimum: int = 1) -> list[str]:
    """Finished frames plus an incomplete manifest; no report, no half-written file under a final name."""
    assert manifest(out)["complete"] is False
    assert not (out / "report.json").exists()
    names = sorted(p.name for p in (out / "frames").iterdir() if not p.name.startswith("."))
    assert minimum <= len(names) < N
    for name in names:
        assert cv2.imread(str(out / "frames" / name), cv2.IMREAD_UNCHANGED).shape == (H, W, 3)
    return names


# ---------------------------------------------------------------------------
# (a) Ctrl-C in-process
# ---------------------------------------------------------------------------
def _interrupt_after(monkeypatch, count: int) -> list[Path]:
    written: list[Path] = []
    real = FolderFrames.write_frame  # every frame of a folder clip is written through it

    def write_frame(self, index, path, image):
        if len(written) == count:
            raise KeyboardInterrupt
        real(self, index, path, image)
        written.append(Path(path))

    monkeypatch.setattr(FolderFrames, "write_frame", write_frame)
    return written


def test_ctrl_c_then_resume_is_byte_identical(reference, tmp_path, monkeypatch, capsys):
    frames, masks, expected = reference
    out = tmp_path / "out"
    argv = ["inpaint", "-i", str(frames), "-m", str(masks), "-o", str(out), *FAST]
    with monkeypatch.context() as patch:
        written = _interrupt_after(patch, 3)
        assert main(argv) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "--resume" in err and "Traceback" not in err
    names = assert_consistent_partial(out, 3)
    assert names == sorted(p.name for p in written) == ["f1.png", "f2.png", "f3.png"]

    assert main([*argv, "--resume"]) == 0
    assert frame_bytes(out) == expected
    assert manifest(out)["complete"] is True
    report = json.loads((out / "report.json").read_text())
    assert report["frames_written"] == N - 3


def test_interrupted_twice_then_resumed(reference, tmp_path, monkeypatch):
    frames, masks, expected = reference
    out = tmp_path / "out"
    argv = ["inpaint", "-i", str(frames), "-m", str(masks), "-o", str(out), *FAST]
    with monkeypatch.context() as patch:
        _interrupt_after(patch, 2)
        assert main(argv) == 130
    with monkeypatch.context() as patch:
        _interrupt_after(patch, 3)
        assert main([*argv, "--resume"]) == 130
    assert len(assert_consistent_partial(out, 5)) == 5
    assert main([*argv, "--resume"]) == 0
    assert frame_bytes(out) == expected


def test_interrupt_before_any_frame_leaves_nothing(reference, tmp_path, monkeypatch):
    from propainter_wire.engines.classic import ClassicEngine

    frames, masks, expected = reference
    out = tmp_path / "out"
    argv = ["inpaint", "-i", str(frames), "-m", str(masks), "-o", str(out), *FAST]

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(ClassicEngine, "run", stop)
        assert main(argv) == 130
    assert not out.exists()
    assert main([*argv, "--resume"]) == 0  # --resume on nothing is a fresh run
    assert frame_bytes(out) == expected


def test_resume_of_a_finished_run_does_not_run_the_engine(reference, tmp_path, monkeypatch):
    from propainter_wire.engines.classic import ClassicEngine

    frames, masks, expected = reference
    out = tmp_path / "out"
    argv = ["inpaint", "-i", str(frames), "-m", str(masks), "-o", str(out), *FAST]
    assert main(argv) == 0
    monkeypatch.setattr(ClassicEngine, "run", lambda *a, **k: pytest.fail("engine ran"))
    assert main([*argv, "--resume"]) == 0
    assert frame_bytes(out) == expected
    report = json.loads((out / "report.json").read_text())
    assert report["engine"] == "none" and report["frames_written"] == 0


def test_resume_with_save_video_covers_every_frame(reference, tmp_path, monkeypatch):
    frames, masks, expected = reference
    out = tmp_path / "out"
    argv = ["inpaint", "-i", str(frames), "-m", str(masks), "-o", str(out), *FAST]
    with monkeypatch.context() as patch:
        _interrupt_after(patch, 4)
        assert main(argv) == 130
    assert main([*argv, "--resume", "--save-video"]) == 0
    assert frame_bytes(out) == expected
    from propainter_wire.io import open_frames

    with open_frames(out / "inpainted.mp4") as video:
        assert len(video) == N


def test_resume_removes_stale_temporary_files(reference, tmp_path, monkeypatch):
    frames, masks, expected = reference
    out = tmp_path / "out"
    argv = ["inpaint", "-i", str(frames), "-m", str(masks), "-o", str(out), *FAST]
    with monkeypatch.context() as patch:
        _interrupt_after(patch, 2)
        assert main(argv) == 130
    (out / "frames" / ".pw-tmp-0badc0de-f3.png").write_bytes(b"half a png")  # killed mid-write
    assert main([*argv, "--resume"]) == 0
    assert frame_bytes(out) == expected


@pytest.mark.parametrize("change, needle", [
    (["--mask-dilation", "2"], "mask_dilation"),
    (["--classic-flow", "farneback"], "classic_flow"),
    (["--max-side", "32"], "max_side"),
])
def test_resume_with_other_settings_is_refused(reference, tmp_path, monkeypatch, capsys, change, needle):
    frames, masks, _ = reference
    out = tmp_path / "out"
    argv = ["inpaint", "-i", str(frames), "-m", str(masks), "-o", str(out), *FAST]
    with monkeypatch.context() as patch:
        _interrupt_after(patch, 2)
        assert main(argv) == 130
    before = frame_bytes(out)
    capsys.readouterr()
    assert main([*argv, "--resume", *change]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot resume" in err[0] and needle in err[0] and "manifest.json" in err[0]
    assert frame_bytes(out) == before  # nothing lost


def test_resume_with_changed_masks_is_refused(reference, tmp_path, monkeypatch, capsys):
    import shutil

    frames, masks, _ = reference
    masks_copy = tmp_path / "masks"
    shutil.copytree(masks, masks_copy)
    out = tmp_path / "out"
    argv = ["inpaint", "-i", str(frames), "-m", str(masks_copy), "-o", str(out), *FAST]
    with monkeypatch.context() as patch:
        _interrupt_after(patch, 2)
        assert main(argv) == 130
    edited = np.zeros((H, W), np.uint8)
    edited[2:9, 2:9] = 255
    cv2.imwrite(str(masks_copy / "m5.png"), edited)
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 2
    err = capsys.readouterr().err
    assert "mask files" in err and "cannot resume" in err


def test_resume_into_a_folder_with_foreign_files_is_refused(reference, tmp_path, capsys):
    frames, masks, _ = reference
    out = tmp_path / "out"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"x")
    assert main(["inpaint", "-i", str(frames), "-m", str(masks), "-o", str(out), *FAST, "--resume"]) == 2
    assert "holiday.jpg" in capsys.readouterr().err
    assert (out / "holiday.jpg").exists()


# ---------------------------------------------------------------------------
# (b) killed processes
# ---------------------------------------------------------------------------
_SLOW_WRITER = textwrap.dedent("""
    import sys, time
    from propainter_wire.io.frames import FolderFrames
    from propainter_wire.cli import main

    real = FolderFrames.write_frame

    def write_frame(self, index, path, image):
        real(self, index, path, image)
        time.sleep(float(sys.argv[1]))  # room for the test to stop us between frames

    FolderFrames.write_frame = write_frame
    sys.exit(main(sys.argv[2:]))
""")


def _start(argv: list[str], delay: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(delay), *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _count(folder: Path) -> int:
    try:
        return sum(1 for n in os.listdir(folder) if not n.startswith("."))
    except OSError:
        return 0


def _wait_for(proc: subprocess.Popen, folder: Path, count: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while _count(folder) < count:
        if proc.poll() is not None:
            pytest.fail(f"process ended early ({proc.returncode}): {proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("no frame appeared in time")
        time.sleep(0.02)


def test_sigkill_then_sigterm_then_resume_is_byte_identical(reference, tmp_path):
    frames, masks, expected = reference
    out = tmp_path / "out"
    argv = ["inpaint", "-i", str(frames), "-m", str(masks), "-o", str(out), *FAST]

    proc = _start(argv, delay=1.0)
    _wait_for(proc, out / "frames", 2)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    first = assert_consistent_partial(out, 2)
    for name in first:  # what is there is final
        assert (out / "frames" / name).read_bytes() == expected[name]

    proc = _start([*argv, "--resume"], delay=1.0)
    _wait_for(proc, out / "frames", len(first) + 1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    second = assert_consistent_partial(out, len(first) + 1)

    assert main([*argv, "--resume"]) == 0
    assert frame_bytes(out) == expected
    assert json.loads((out / "report.json").read_text())["frames_written"] == N - len(second)
