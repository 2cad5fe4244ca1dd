"""Bad input through the CLI: exit code 2, one line on stderr naming the problem, nothing written.

Every case runs ``propainter_wire.cli.main`` in-process on a small synthetic clip and checks:
the exit code, that stderr is exactly one line (no traceback), that the line names the
offending file or value, that the inputs are byte-for-byte untouched and that the output
folder holds no frame (a folder the run created is removed again).
"""

from __future__ import annotations

import errno
import hashlib
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from propainter_wire.cli import main
from propainter_wire.errors import InputError

FAST = ["--engine", "classic", "--device", "cpu", "--quiet"]


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def make_clip(root: Path, n: int = 6, h: int = 48, w: int = 64) -> tuple[Path, Path]:
    """``root/frames/000.png..`` (smooth texture moving right) and ``root/masks/`` (a box)."""
    frames, masks = root / "frames", root / "masks"
    frames.mkdir(parents=True)
    masks.mkdir()
    rng = np.random.default_rng(7)
    base = cv2.GaussianBlur(rng.integers(0, 256, (h, w + 2 * n, 3), dtype=np.uint8), (7, 7), 0)
    for t in range(n):
        cv2.imwrite(str(frames / f"{t:03d}.png"), np.ascontiguousarray(base[:, 2 * t:2 * t + w]))
        mask = np.zeros((h, w), np.uint8)
        mask[h // 3:h // 3 + 8, w // 2:w // 2 + 10] = 255
        cv2.imwrite(str(masks / f"{t:03d}.png"), mask)
    return frames, masks


def tree_hash(path: Path) -> str:
    """Digest of every file under ``path`` (relative names and bytes)."""
    digest = hashlib.sha1()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        digest.update(str(f.relative_to(path.parent)).encode())
        digest.update(f.read_bytes())
    return digest.hexdigest()


def run_cli(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["inpaint", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_refused(capsys, inputs: list[Path], out: Path, args: list, *needles: str) -> str:
    """Run; check exit 2, one stderr line holding every needle, inputs intact, no output."""
    before = {p: tree_hash(p) for p in inputs if p.exists()}
    existed = out.exists()
    code, _, err = run_cli(capsys, *args)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, f"expected one line, got:\n{err}"
    assert "Traceback" not in err
    line = lines[0]
    assert line.startswith("propainter-wire")
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    assert {p: tree_hash(p) for p in before} == before, "an input was modified"
    if not existed:
        assert not out.exists(), f"output folder left behind: {list(out.rglob('*'))}"
    else:
        frames = out / "frames"
        assert not frames.exists() or not any(frames.iterdir())
    return line


@pytest.fixture
def clip(tmp_path):
    frames, masks = make_clip(tmp_path / "in")
    return frames, masks, tmp_path / "out"


# ---------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------
def test_nonexistent_input(capsys, clip, tmp_path):
    _, masks, out = clip
    missing = tmp_path / "nope"
    assert_refused(capsys, [masks], out, ["-i", missing, "-m", masks, "-o", out, *FAST], str(missing), "no such")


def test_nonexistent_mask(capsys, clip, tmp_path):
    frames, _, out = clip
    missing = tmp_path / "nomask"
    assert_refused(capsys, [frames], out, ["-i", frames, "-m", missing, "-o", out, *FAST], str(missing), "no such")


def test_empty_folder(capsys, clip, tmp_path):
    _, masks, out = clip
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_refused(capsys, [masks], out, ["-i", empty, "-m", masks, "-o", out, *FAST], str(empty), "empty")


def test_folder_without_images(capsys, clip, tmp_path):
    _, masks, out = clip
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a frame")
    (folder / "sub").mkdir()
    assert_refused(capsys, [masks, folder], out, ["-i", folder, "-m", masks, "-o", out, *FAST], str(folder),
                   "no image")


@pytest.mark.parametrize("which", [0, 3])
def test_corrupt_image(capsys, clip, which):
    frames, masks, out = clip
    bad = frames / f"{which:03d}.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    assert_refused(capsys, [frames, masks], out, ["-i", frames, "-m", masks, "-o", out, *FAST], str(bad))


def test_corrupt_image_in_a_fresh_process_prints_one_line(clip):
    """The whole stderr of the command (OpenCV logs to the process's stderr, which capsys does not
    see): one line, no log line of OpenCV's decoder before it."""
    import os
    import subprocess
    import sys

    frames, masks, out = clip
    bad = frames / "003.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    env.pop("OPENCV_LOG_LEVEL", None)
    done = subprocess.run([sys.executable, "-m", "propainter_wire", "inpaint", "-i", str(frames), "-m", str(masks),
                           "-o", str(out), *FAST], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(bad) in lines[0], done.stderr


def test_truncated_image(capsys, clip):
    frames, masks, out = clip
    bad = frames / "004.png"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    assert_refused(capsys, [frames, masks], out, ["-i", frames, "-m", masks, "-o", out, *FAST], str(bad))


def test_corrupt_mask_image(capsys, clip):
    frames, masks, out = clip
    bad = masks / "002.png"
    bad.write_bytes(b"not an image at all")
    assert_refused(capsys, [frames, masks], out, ["-i", frames, "-m", masks, "-o", out, *FAST], str(bad))


def test_unreadable_image(capsys, clip, monkeypatch):
    """Permission denied (simulated: this suite may run as root, where chmod 000 still reads)."""
    frames, masks, out = clip
    bad = frames / "002.png"
    real = np.fromfile

    def fromfile(file, *args, **kwargs):
        if Path(file) == bad:
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real(file, *args, **kwargs)

    monkeypatch.setattr(np, "fromfile", fromfile)
    assert_refused(capsys, [frames, masks], out, ["-i", frames, "-m", masks, "-o", out, *FAST], str(bad),
                   "Permission denied")


def _write_video(path: Path, n: int = 8, h: int = 48, w: int = 64) -> None:
    from propainter_wire.io import VideoWriter

    rng = np.random.default_rng(3)
    with VideoWriter(path, 24.0, w, h) as writer:
        for _ in range(n):
            writer.write(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def test_truncated_video(capsys, clip, tmp_path):
    _, masks, out = clip
    video = tmp_path / "clip.mp4"
    _write_video(video)
    data = video.read_bytes()
    video.write_bytes(data[: len(data) * 2 // 3])
    # 8 frames stated; the masks folder has 6: give one static mask so the count is not the problem
    mask = masks / "000.png"
    line = assert_refused(capsys, [video, masks], out, ["-i", video, "-m", mask, "-o", out, *FAST], str(video))
    assert "truncated" in line or "corrupt" in line or "cannot" in line


def test_garbage_video(capsys, clip, tmp_path):
    _, masks, out = clip
    video = tmp_path / "clip.mov"
    video.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    assert_refused(capsys, [video, masks], out, ["-i", video, "-m", masks, "-o", out, *FAST], str(video))


def test_frames_of_different_sizes(capsys, clip):
    frames, masks, out = clip
    cv2.imwrite(str(frames / "003.png"), np.zeros((40, 64, 3), np.uint8))
    line = assert_refused(capsys, [frames, masks], out, ["-i", frames, "-m", masks, "-o", out, *FAST],
                          "003.png", "64x40", "64x48")
    assert "differs" in line


def test_mask_count_neither_one_nor_frame_count(capsys, clip):
    frames, masks, out = clip
    for t in (3, 4, 5):
        (masks / f"{t:03d}.png").unlink()
    assert_refused(capsys, [frames, masks], out, ["-i", frames, "-m", masks, "-o", out, *FAST], str(masks),
                   "3 masks for 6 frames")


def test_mask_of_other_aspect_ratio_names_both_sizes(capsys, clip):
    frames, masks, out = clip
    cv2.imwrite(str(masks / "000.png"), np.zeros((48, 50), np.uint8))
    assert_refused(capsys, [frames, masks], out, ["-i", frames, "-m", masks, "-o", out, *FAST], "000.png",
                   "50x48", "64x48")


def test_later_mask_of_other_aspect_ratio(capsys, clip):
    frames, masks, out = clip
    cv2.imwrite(str(masks / "004.png"), np.zeros((30, 64), np.uint8))
    assert_refused(capsys, [frames, masks], out, ["-i", frames, "-m", masks, "-o", out, *FAST], "004.png",
                   "64x30", "64x48")


def test_mask_of_same_aspect_ratio_is_resized_with_a_warning(capsys, clip):
    frames, masks, out = clip
    for t in range(6):
        small = np.zeros((24, 32), np.uint8)
        small[8:12, 16:21] = 255
        cv2.imwrite(str(masks / f"{t:03d}.png"), small)
    code, _, err = run_cli(capsys, "-i", frames, "-m", masks, "-o", out, *FAST)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.strip()]
    assert len(warnings) == 1 and "32x24" in warnings[0] and "resizing" in warnings[0]
    assert len(list((out / "frames").iterdir())) == 6


# ---------------------------------------------------------------------------
# output folder
# ---------------------------------------------------------------------------
def test_output_equal_to_input(capsys, clip):
    frames, masks, _ = clip
    assert_refused(capsys, [frames, masks], frames, ["-i", frames, "-m", masks, "-o", frames, *FAST],
                   "inside the input folder")


def test_output_inside_input(capsys, clip):
    frames, masks, _ = clip
    out = frames / "result"
    assert_refused(capsys, [masks], out, ["-i", frames, "-m", masks, "-o", out, *FAST], str(out),
                   "inside the input folder")
    assert not out.exists()


def test_output_inside_mask_folder(capsys, clip):
    frames, masks, _ = clip
    out = masks / "result"
    assert_refused(capsys, [frames], out, ["-i", frames, "-m", masks, "-o", out, *FAST], "inside the input folder")


def test_non_empty_output_without_overwrite(capsys, clip):
    frames, masks, out = clip
    out.mkdir()
    (out / "keep.txt").write_text("someone's notes")
    assert_refused(capsys, [frames, masks, out], out, ["-i", frames, "-m", masks, "-o", out, *FAST], str(out),
                   "not empty", "--overwrite")
    assert (out / "keep.txt").read_text() == "someone's notes"


def test_overwrite_and_resume_together(capsys, clip):
    frames, masks, out = clip
    assert_refused(capsys, [frames, masks], out,
                   ["-i", frames, "-m", masks, "-o", out, *FAST, "--overwrite", "--resume"], "--overwrite",
                   "--resume")


def test_failed_run_in_existing_empty_folder_leaves_it_reusable(capsys, clip):
    """A refused run in a folder the user made leaves it empty, so the fixed run needs no --overwrite."""
    frames, masks, out = clip
    out.mkdir()
    (frames / "005.png").write_bytes(b"broken")
    assert_refused(capsys, [frames, masks], out, ["-i", frames, "-m", masks, "-o", out, *FAST], "005.png")
    assert out.is_dir() and not any(out.iterdir())
    shutil.copy(frames / "004.png", frames / "005.png")
    code, _, err = run_cli(capsys, "-i", frames, "-m", masks, "-o", out, *FAST)
    assert code == 0, err


# ---------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------
@pytest.fixture
def weights_copy(det_weights_dir, tmp_path):
    folder = tmp_path / "weights"
    shutil.copytree(det_weights_dir, folder)
    return folder


def _propainter_args(frames, masks, out, weights):
    return ["-i", frames, "-m", masks, "-o", out, "--engine", "propainter", "--weights-dir", weights,
            "--device", "cpu", "--quiet", "--raft-iters", "2"]


def test_missing_weights_folder(capsys, clip, tmp_path):
    frames, masks, out = clip
    folder = tmp_path / "no_weights"
    assert_refused(capsys, [frames, masks], out, _propainter_args(frames, masks, out, folder), str(folder),
                   "does not exist")


def test_missing_checkpoint_file(capsys, clip, weights_copy):
    frames, masks, out = clip
    (weights_copy / "ProPainter.pth").unlink()
    assert_refused(capsys, [frames, masks, weights_copy], out, _propainter_args(frames, masks, out, weights_copy),
                   "ProPainter.pth", "missing")


def test_truncated_checkpoint(capsys, clip, weights_copy):
    frames, masks, out = clip
    target = weights_copy / "recurrent_flow_completion.pth"
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    assert_refused(capsys, [frames, masks, weights_copy], out, _propainter_args(frames, masks, out, weights_copy),
                   str(target))


def test_foreign_checkpoint(capsys, clip, weights_copy):
    frames, masks, out = clip
    target = weights_copy / "raft-things.pth"
    gen = torch.Generator().manual_seed(0)
    torch.save({"encoder.conv.weight": torch.randn(8, 3, 3, 3, generator=gen),
                "head.bias": torch.randn(8, generator=gen)}, target)
    assert_refused(capsys, [frames, masks, weights_copy], out, _propainter_args(frames, masks, out, weights_copy),
                   str(target))


def test_checkpoint_that_is_not_a_state_dict(capsys, clip, weights_copy):
    frames, masks, out = clip
    target = weights_copy / "ProPainter.pth"
    torch.save([1, 2, 3], target)
    assert_refused(capsys, [frames, masks, weights_copy], out, _propainter_args(frames, masks, out, weights_copy),
                   str(target))


# ---------------------------------------------------------------------------
# impossible values
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("args, needles", [
    (["--mask-dilation", "-1"], ["--mask-dilation", "-1"]),
    (["--flow-mask-dilation", "-3"], ["--flow-mask-dilation", "-3"]),
    (["--neighbor-length", "1"], ["--neighbor-length", "1"]),
    (["--ref-stride", "0"], ["--ref-stride", "0"]),
    (["--subvideo-length", "0"], ["--subvideo-length", "0"]),
    (["--raft-iters", "0"], ["--raft-iters", "0"]),
    (["--width", "0", "--height", "32"], ["--width", "0"]),
    (["--width", "32", "--height", "-4"], ["--height", "-4"]),
    (["--width", "32"], ["--width", "--height"]),
    (["--max-side", "4"], ["--max-side", "4"]),
    (["--resize-ratio", "1.5"], ["--resize-ratio", "1.5"]),
    (["--mask-threshold", "300"], ["--mask-threshold", "300"]),
    (["--mask-dilation", "three"], ["--mask-dilation", "three"]),
    (["--device", "tpu"], ["tpu"]),
    (["--device", "cuda:x"], ["cuda:x"]),
])
def test_impossible_values(capsys, clip, args, needles):
    frames, masks, out = clip
    argv = ["-i", frames, "-m", masks, "-o", out, "--engine", "classic", "--quiet"]
    if "--device" not in args:
        argv += ["--device", "cpu"]
    assert_refused(capsys, [frames, masks], out, [*argv, *args], *needles)


@pytest.mark.parametrize("option, value", [("--engine", "magic"), ("--precision", "fp8"),
                                           ("--classic-flow", "lucas")])
def test_unknown_choices(capsys, clip, option, value):
    frames, masks, out = clip
    argv = ["-i", frames, "-m", masks, "-o", out, "--device", "cpu", "--quiet", option, value]
    if option != "--engine":
        argv += ["--engine", "classic"]
    assert_refused(capsys, [frames, masks], out, argv, option, value)


def test_cuda_on_a_machine_without_it(capsys, clip):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    frames, masks, out = clip
    assert_refused(capsys, [frames, masks], out,
                   ["-i", frames, "-m", masks, "-o", out, "--engine", "classic", "--quiet", "--device", "cuda"],
                   "cuda", "not available")


def test_missing_required_argument_is_one_line(capsys, clip):
    frames, _, out = clip
    assert_refused(capsys, [frames], out, ["-i", frames, "-o", out], "-m/--mask")


def test_debug_shows_the_exception(clip, tmp_path):
    _, masks, out = clip
    with pytest.raises(InputError, match="no such file"):
        main(["--debug", "inpaint", "-i", str(tmp_path / "nope"), "-m", str(masks), "-o", str(out), *FAST])
