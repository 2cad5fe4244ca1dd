"""Edge clips that must work end to end through the CLI.

Short clips, odd and portrait sizes, masks touching the borders or covering whole
frames, every kind of mask image, grey/RGBA/16-bit frames, scaled processing, and
the copy-through of a clip whose masks are all empty. Everything runs in-process
with the classic engine (and a few with the ProPainter engine on the deterministic
stand-in weights); outside the composited region the output must equal the input
bit for bit.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import ndimage

from propainter_wire.cli import main

FAST = ["--engine", "classic", "--device", "cpu", "--quiet"]


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def texture(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """(n, h, w, 3) uint8: a smooth random texture panning right 2 px per frame."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.integers(0, 256, (h, w + 2 * n, 3), dtype=np.uint8), (7, 7), 0)
    return np.stack([base[:, 2 * t:2 * t + w] for t in range(n)])


def box_masks(n: int, h: int, w: int) -> np.ndarray:
    """(n, h, w) bool: a box near the middle, moving with the frame index."""
    masks = np.zeros((n, h, w), bool)
    for t in range(n):
        y, x = h // 3, w // 3 + t
        masks[t, y:y + max(3, h // 6), x:x + max(3, w // 6)] = True
    return masks


def write_seq(folder: Path, images, ext: str = ".png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for t, image in enumerate(images):
        assert cv2.imwrite(str(folder / f"{t:04d}{ext}"), image)
    return folder


def read_seq(folder: Path) -> list[np.ndarray]:
    return [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted(folder.iterdir())]


def run_ok(capsys, *args) -> tuple[dict, str]:
    capsys.readouterr()
    code = main(["inpaint", *map(str, args)])
    err = capsys.readouterr().err
    assert code == 0, err
    out = Path(args[list(args).index("-o") + 1])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is True
    return json.loads((out / "report.json").read_text()), err


def assert_outside_exact(inputs, outputs, masks, grow: int) -> None:
    """Every pixel farther than ``grow`` px (city block) from the mask is the input's own."""
    assert len(inputs) == len(outputs)
    for src, got, mask in zip(inputs, outputs, masks, strict=True):
        assert got.shape == src.shape and got.dtype == src.dtype
        keep = ~ndimage.binary_dilation(mask, iterations=grow) if grow else ~mask
        np.testing.assert_array_equal(got[keep], src[keep])


def assert_filled(inputs, outputs, masks) -> None:
    """Something was written inside the mask, and nothing is NaN or out of range."""
    changed = sum(int((o[m] != i[m]).any()) for i, o, m in zip(inputs, outputs, masks, strict=True) if m.any())
    assert changed >= 1


def clip_case(tmp_path, n, h, w, seed=0):
    """A textured clip with a magenta object painted where the masks are (what a user removes)."""
    frames = texture(n, h, w, seed)
    masks = box_masks(n, h, w)
    frames[masks] = (255, 0, 255)
    fdir = write_seq(tmp_path / "frames", frames)
    mdir = write_seq(tmp_path / "masks", masks.astype(np.uint8) * 255)
    return frames, masks, fdir, mdir, tmp_path / "out"


# ---------------------------------------------------------------------------
# short clips and sizes
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2])
def test_short_clips(capsys, tmp_path, n):
    frames, masks, fdir, mdir, out = clip_case(tmp_path, n, 48, 64)
    report, _ = run_ok(capsys, "-i", fdir, "-m", mdir, "-o", out, *FAST)
    assert report["frames"] == n and report["engine"] == "classic"
    got = read_seq(out / "frames")
    assert_outside_exact(frames, got, masks, 4)
    assert_filled(frames, got, masks)


@pytest.mark.parametrize("n, h, w", [(5, 61, 83), (2, 479, 853), (4, 80, 36)], ids=["83x61", "853x479", "portrait"])
def test_odd_and_portrait_sizes(capsys, tmp_path, n, h, w):
    frames, masks, fdir, mdir, out = clip_case(tmp_path, n, h, w)
    run_ok(capsys, "-i", fdir, "-m", mdir, "-o", out, *FAST)
    got = read_seq(out / "frames")
    assert got[0].shape == (h, w, 3)
    assert_outside_exact(frames, got, masks, 4)
    assert_filled(frames, got, masks)


def test_mask_touching_every_border(capsys, tmp_path):
    frames = texture(5, 48, 64)
    masks = np.zeros((5, 48, 64), bool)
    masks[:, :4, :] = True  # top
    masks[:, -3:, 10:30] = True  # bottom
    masks[:, 20:30, :2] = True  # left
    masks[:, 5:15, -5:] = True  # right
    masks[:, -6:, -6:] = True  # corner
    fdir = write_seq(tmp_path / "frames", frames)
    mdir = write_seq(tmp_path / "masks", masks.astype(np.uint8) * 255)
    run_ok(capsys, "-i", fdir, "-m", mdir, "-o", tmp_path / "out", *FAST)
    got = read_seq(tmp_path / "out" / "frames")
    assert_outside_exact(frames, got, masks, 4)
    assert_filled(frames, got, masks)


# ---------------------------------------------------------------------------
# empty and full masks
# ---------------------------------------------------------------------------
def test_every_mask_empty_is_a_bit_exact_copy_without_the_engine(capsys, tmp_path, monkeypatch):
    from propainter_wire.engines.classic import ClassicEngine

    def must_not_run(*args, **kwargs):
        raise AssertionError("the engine ran although every mask is empty")

    monkeypatch.setattr(ClassicEngine, "run", must_not_run)
    frames = texture(6, 48, 64)
    fdir = write_seq(tmp_path / "frames", frames)
    mdir = write_seq(tmp_path / "masks", np.zeros((6, 48, 64), np.uint8))
    report, _ = run_ok(capsys, "-i", fdir, "-m", mdir, "-o", tmp_path / "out", *FAST)
    assert report["engine"] == "copy"
    for src, got in zip(frames, read_seq(tmp_path / "out" / "frames"), strict=True):
        np.testing.assert_array_equal(got, src)


def test_a_frame_masked_entirely_is_filled_from_the_others(capsys, tmp_path):
    rng = np.random.default_rng(0)
    smooth = cv2.GaussianBlur(rng.integers(0, 256, (48, 64 + 12, 3), dtype=np.uint8), (0, 0), 4)
    smooth = cv2.normalize(smooth, None, 0, 255, cv2.NORM_MINMAX)
    frames = np.stack([smooth[:, 2 * t:2 * t + 64] for t in range(6)])  # pans 2 px per frame
    masks = np.zeros((6, 48, 64), bool)
    masks[2] = True
    masks[4, 10:20, 10:20] = True
    fdir = write_seq(tmp_path / "frames", frames)
    mdir = write_seq(tmp_path / "masks", masks.astype(np.uint8) * 255)
    run_ok(capsys, "-i", fdir, "-m", mdir, "-o", tmp_path / "out", *FAST)
    got = read_seq(tmp_path / "out" / "frames")
    assert_outside_exact(frames, got, masks, 4)
    # frame 2 is rebuilt from the other frames: far closer to the truth than any constant fill
    truth = frames[2].astype(np.int32)
    err = np.abs(got[2].astype(np.int32) - truth).mean()
    flat = np.abs(truth - truth.mean()).mean()
    assert err < 0.5 * flat, (err, flat)
    np.testing.assert_allclose(got[2].mean(axis=(0, 1)), truth.mean(axis=(0, 1)), atol=6)


def test_every_pixel_of_every_frame_masked_is_refused(capsys, tmp_path):
    frames = texture(3, 32, 40)
    fdir = write_seq(tmp_path / "frames", frames)
    mask = tmp_path / "full.png"
    cv2.imwrite(str(mask), np.full((32, 40), 255, np.uint8))
    out = tmp_path / "out"
    code = main(["inpaint", "-i", str(fdir), "-m", str(mask), "-o", str(out), *FAST])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "nothing to propagate from" in err
    assert not out.exists()


def test_mask_covering_everything_after_dilation_is_refused(capsys, tmp_path):
    frames = texture(2, 16, 16)
    masks = np.zeros((2, 16, 16), np.uint8)
    masks[:, 4:12, 4:12] = 255
    fdir = write_seq(tmp_path / "frames", frames)
    mdir = write_seq(tmp_path / "masks", masks)
    code = main(["inpaint", "-i", str(fdir), "-m", str(mdir), "-o", str(tmp_path / "out"), *FAST,
                 "--mask-dilation", "12"])
    err = capsys.readouterr().err
    assert code == 2 and "--mask-dilation 12" in err and len(err.strip().splitlines()) == 1
    code = main(["inpaint", "-i", str(fdir), "-m", str(mdir), "-o", str(tmp_path / "out"), *FAST,
                 "--mask-dilation", "2"])
    assert code == 0, capsys.readouterr().err


# ---------------------------------------------------------------------------
# kinds of mask image
# ---------------------------------------------------------------------------
def test_rgba_and_palette_masks(capsys, tmp_path):
    from PIL import Image

    frames = texture(4, 48, 64)
    masks = box_masks(4, 48, 64)
    fdir = write_seq(tmp_path / "frames", frames)
    mdir = tmp_path / "masks"
    mdir.mkdir()
    for t, m in enumerate(masks):
        if t % 2 == 0:  # a white stroke on a transparent layer
            rgba = np.zeros((48, 64, 4), np.uint8)
            rgba[..., :3] = 255
            rgba[..., 3] = m * 255
            Image.fromarray(rgba, "RGBA").save(mdir / f"{t:04d}.png")
        else:  # palette: index 1 is red
            pal = Image.fromarray(m.astype(np.uint8), "L").convert("P")
            pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 750)
            pal.save(mdir / f"{t:04d}.png")
    assert Image.open(mdir / "0001.png").mode == "P"
    run_ok(capsys, "-i", fdir, "-m", mdir, "-o", tmp_path / "out", *FAST)
    got = read_seq(tmp_path / "out" / "frames")
    assert_outside_exact(frames, got, masks, 4)
    assert_filled(frames, got, masks)


def test_single_static_mask_image(capsys, tmp_path):
    frames = texture(4, 48, 64)
    fdir = write_seq(tmp_path / "frames", frames)
    mask = np.zeros((48, 64), np.uint8)
    mask[10:20, 30:40] = 255
    cv2.imwrite(str(tmp_path / "static.jpg"), mask)  # lossy: ringing, hence a threshold
    run_ok(capsys, "-i", fdir, "-m", tmp_path / "static.jpg", "-o", tmp_path / "out", *FAST, "--mask-threshold", "127")
    got = read_seq(tmp_path / "out" / "frames")
    assert_outside_exact(frames, got, [mask > 0] * 4, 6)


# ---------------------------------------------------------------------------
# kinds of frame
# ---------------------------------------------------------------------------
def test_grey_frames(capsys, tmp_path):
    grey = texture(4, 48, 64)[..., 1]
    masks = box_masks(4, 48, 64)
    fdir = write_seq(tmp_path / "frames", grey)
    mdir = write_seq(tmp_path / "masks", masks.astype(np.uint8) * 255)
    run_ok(capsys, "-i", fdir, "-m", mdir, "-o", tmp_path / "out", *FAST)
    got = read_seq(tmp_path / "out" / "frames")
    assert got[0].shape == (48, 64)  # written as the input was: grey
    assert_outside_exact([np.repeat(g[..., None], 3, axis=2) for g in grey],
                         [np.repeat(g[..., None], 3, axis=2) for g in got], masks, 4)


def test_rgba_frames(capsys, tmp_path):
    rgb = texture(4, 48, 64)
    alpha = np.full((4, 48, 64, 1), 200, np.uint8)
    masks = box_masks(4, 48, 64)
    fdir = write_seq(tmp_path / "frames", np.concatenate([rgb, alpha], axis=-1))
    mdir = write_seq(tmp_path / "masks", masks.astype(np.uint8) * 255)
    run_ok(capsys, "-i", fdir, "-m", mdir, "-o", tmp_path / "out", *FAST)
    got = read_seq(tmp_path / "out" / "frames")
    assert got[0].shape == (48, 64, 4)  # the alpha passes through untouched
    assert all((g[..., 3] == 200).all() for g in got)
    assert_outside_exact(rgb, [g[..., :3] for g in got], masks, 4)


def test_16bit_frames_give_16bit_output(capsys, tmp_path):
    frames = texture(4, 48, 64).astype(np.uint16) * 257 + np.uint16(3)  # odd low bits must survive
    masks = box_masks(4, 48, 64)
    fdir = write_seq(tmp_path / "frames", frames)
    mdir = write_seq(tmp_path / "masks", masks.astype(np.uint8) * 255)
    run_ok(capsys, "-i", fdir, "-m", mdir, "-o", tmp_path / "out", *FAST)
    got = read_seq(tmp_path / "out" / "frames")
    assert got[0].dtype == np.uint16
    assert_outside_exact(frames, got, masks, 4)
    assert_filled(frames, got, masks)


def test_max_side_keeps_full_resolution_bit_exact_outside_the_mask(capsys, tmp_path):
    n, h, w = 4, 90, 160
    frames, masks, fdir, mdir, out = clip_case(tmp_path, n, h, w)
    report, _ = run_ok(capsys, "-i", fdir, "-m", mdir, "-o", out, *FAST, "--max-side", "64")
    assert report["processing_size"] == [64, 36]
    got = read_seq(out / "frames")
    assert got[0].shape == (h, w, 3)
    scale = w / 64
    assert_outside_exact(frames, got, masks, math.ceil((4 + 2) * scale) + 2)
    assert_filled(frames, got, masks)
    # the user's own mask is always replaced, whatever the scale
    for src, o, m in zip(frames, got, masks, strict=True):
        assert (o[m] != src[m]).any()


def test_video_input(capsys, tmp_path):
    from propainter_wire.io import VideoWriter

    frames = texture(5, 48, 64)
    with VideoWriter(tmp_path / "clip.mp4", 25.0, 64, 48) as writer:
        for f in frames:
            writer.write(f)
    mask = np.zeros((48, 64), np.uint8)
    mask[10:20, 20:30] = 255
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    report, _ = run_ok(capsys, "-i", tmp_path / "clip.mp4", "-m", tmp_path / "mask.png", "-o", tmp_path / "out",
                       *FAST, "--save-video")
    assert report["frames"] == 5 and report["fps"] == pytest.approx(25.0)
    assert sorted(p.name for p in (tmp_path / "out" / "frames").iterdir())[0] == "00000.png"
    assert (tmp_path / "out" / "inpainted.mp4").stat().st_size > 0


# ---------------------------------------------------------------------------
# the ProPainter engine on deterministic weights
# ---------------------------------------------------------------------------
def _propainter(det_weights_dir) -> list[str]:
    return ["--engine", "propainter", "--weights-dir", str(det_weights_dir), "--device", "cpu", "--quiet",
            "--raft-iters", "2"]


@pytest.fixture
def shared_models(monkeypatch, det_weights_dir):
    """Load the three networks once for these tests (each CLI run would load them again)."""
    from propainter_wire.engines.propainter import ProPainterModels

    cache = _MODELS_CACHE
    real_load = ProPainterModels.load.__func__

    def load(cls, weights_dir, device, **options):  # (these runs are all CPU fp32: one preparation fits all)
        key = (str(weights_dir), str(device))
        if key not in cache:
            cache[key] = real_load(cls, weights_dir, device, **options)
        return cache[key]

    monkeypatch.setattr(ProPainterModels, "load", classmethod(load))
    return det_weights_dir


_MODELS_CACHE: dict = {}


@pytest.mark.parametrize("n, h, w", [(1, 48, 64), (2, 61, 83)], ids=["1-frame", "2-frames-83x61"])
def test_propainter_edge_clips(capsys, tmp_path, shared_models, n, h, w):
    frames, masks, fdir, mdir, out = clip_case(tmp_path, n, h, w)
    report, _ = run_ok(capsys, "-i", fdir, "-m", mdir, "-o", out, *_propainter(shared_models))
    assert report["engine"] == "propainter"
    got = read_seq(out / "frames")
    assert got[0].shape == (h, w, 3)
    assert_outside_exact(frames, got, masks, 4)
    assert_filled(frames, got, masks)


def test_propainter_empty_masks_copy_through(capsys, tmp_path, det_weights_dir):
    frames = texture(3, 48, 64)
    fdir = write_seq(tmp_path / "frames", frames)
    mdir = write_seq(tmp_path / "masks", np.zeros((3, 48, 64), np.uint8))
    report, _ = run_ok(capsys, "-i", fdir, "-m", mdir, "-o", tmp_path / "out", *_propainter(det_weights_dir))
    assert report["engine"] == "copy"
    for src, got in zip(frames, read_seq(tmp_path / "out" / "frames"), strict=True):
        np.testing.assert_array_equal(got, src)
