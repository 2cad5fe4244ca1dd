"""Masks: every form (folder, image, video), grey conversion, threshold, size fitting, dilation."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
import scipy.ndimage

from conftest import DATA, require
from propainter_wire.errors import InputError
from propainter_wire.io import VideoWriter, binarize, dilate, mask_to_grey, open_masks, write_image

RNG = np.random.default_rng(1)
H, W = 24, 32


def _blob_masks(t: int, h: int = H, w: int = W) -> np.ndarray:
    """(T, H, W) bool: a rectangle that moves one pixel a frame."""
    masks = np.zeros((t, h, w), dtype=bool)
    for i in range(t):
        masks[i, 5:15, 3 + i : 13 + i] = True
    return masks


def _as_grey_png(mask: np.ndarray) -> np.ndarray:
    return mask.astype(np.uint8) * 255


def _pil_grey(rgb: np.ndarray) -> np.ndarray:
    image = pytest.importorskip("PIL.Image")
    return np.asarray(image.fromarray(rgb).convert("L"))


# ---------------------------------------------------------------------------
# forms
# ---------------------------------------------------------------------------
def test_folder_of_masks_matched_in_natural_order(tmp_path):
    masks = _blob_masks(11)
    for i, m in enumerate(masks):
        write_image(tmp_path / f"m{i}.png", np.repeat(_as_grey_png(m)[:, :, None], 3, axis=2))
    (tmp_path / ".hidden.png").write_bytes(b"junk")
    source = open_masks(tmp_path, 11, H, W)
    assert (source.kind, source.static, len(source)) == ("folder", False, 11)
    for i in (0, 2, 10, 1):  # m10 is the last one, not the third
        np.testing.assert_array_equal(source[i], masks[i])
    np.testing.assert_array_equal(source.read_all(), masks)


def test_single_image_is_static(tmp_path):
    mask = _blob_masks(1)[0]
    cv2.imwrite(str(tmp_path / "mask.png"), _as_grey_png(mask))
    source = open_masks(tmp_path / "mask.png", 5, H, W)
    assert (source.kind, source.static, len(source)) == ("image", True, 5)
    all_masks = source.read_all()
    assert all_masks.shape == (5, H, W) and all_masks.dtype == bool
    for m in all_masks:
        np.testing.assert_array_equal(m, mask)
    source[0][:] = False  # callers get copies
    np.testing.assert_array_equal(source[1], mask)


def test_folder_with_one_mask_is_static(tmp_path):
    mask = _blob_masks(1)[0]
    cv2.imwrite(str(tmp_path / "only.png"), _as_grey_png(mask))
    source = open_masks(tmp_path, 7, H, W)
    assert source.static and len(source) == 7
    np.testing.assert_array_equal(source[6], mask)


def test_mask_video(tmp_path):
    masks = np.zeros((8, 48, 64), dtype=bool)
    for i in range(8):
        masks[i, 8:40, 4 + 4 * i : 28 + 4 * i] = True
    path = tmp_path / "masks.mp4"
    with VideoWriter(path, fps=10, width=64, height=48) as video:
        for m in masks:
            video.write(np.repeat(_as_grey_png(m)[:, :, None], 3, axis=2))
    source = open_masks(path, 8, 48, 64, threshold=127)  # lossy video: threshold half-way
    assert (source.kind, source.static) == ("video", False)
    got = source.read_all()
    assert (got != masks).mean() < 0.01
    np.testing.assert_array_equal(source[2], got[2])  # going back re-decodes the same frame
    source.close()


def test_mask_video_count_checked(tmp_path):
    path = tmp_path / "masks.mp4"
    with VideoWriter(path, fps=10, width=16, height=16) as video:
        for _ in range(3):
            video.write(np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(InputError, match="3 masks for 5 frames") as info:
        open_masks(path, 5, 16, 16)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------------------
# grey conversion and threshold
# ---------------------------------------------------------------------------
def test_rgb_luma_matches_pil_convert_l():
    rgb = RNG.integers(0, 256, size=(40, 50, 3), dtype=np.uint8)
    rgb[0, :4] = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 0, 2)]  # faint colours: PIL rounds some to 0
    np.testing.assert_array_equal(mask_to_grey(rgb), _pil_grey(rgb))


def test_palette_mask_uses_palette_colours(tmp_path):
    image = pytest.importorskip("PIL.Image")
    index = np.zeros((H, W), dtype=np.uint8)
    index[2:8, 2:8] = 1  # red: masked
    index[10:14, 10:20] = 2  # (0, 0, 1): luma rounds to 0, not masked, although the index is non-zero
    index[16:20, 4:9] = 3  # grey 200
    palette = [0, 0, 0, 255, 0, 0, 0, 0, 1, 200, 200, 200] + [0] * (256 * 3 - 12)
    pil = image.fromarray(index).convert("P")
    pil.putpalette(palette)
    pil.save(tmp_path / "pal.png")
    expected = np.asarray(image.open(tmp_path / "pal.png").convert("L")) > 0
    got = open_masks(tmp_path / "pal.png", 1, H, W)[0]
    np.testing.assert_array_equal(got, expected)
    assert got[3, 3] and not got[11, 12] and got[17, 5]


def test_rgba_masks(tmp_path):
    alpha = np.zeros((H, W), dtype=np.uint8)
    alpha[4:12, 6:20] = 255
    # stroke on a transparent layer, colour black everywhere: the alpha is the mask
    black = np.dstack([np.zeros((H, W, 3), np.uint8), alpha])
    write_image(tmp_path / "black.png", black)
    np.testing.assert_array_equal(open_masks(tmp_path / "black.png", 1, H, W)[0], alpha > 0)
    # white everywhere, transparent outside the stroke: again the alpha
    white = np.dstack([np.full((H, W, 3), 255, np.uint8), alpha])
    write_image(tmp_path / "white.png", white)
    np.testing.assert_array_equal(open_masks(tmp_path / "white.png", 1, H, W)[0], alpha > 0)
    # the colour varies: the colour decides, like PIL's convert('L') (alpha ignored)
    painted = np.zeros((H, W, 4), np.uint8)
    painted[..., 3] = 255
    painted[2:6, 2:6, :3] = 255
    write_image(tmp_path / "painted.png", painted)
    expected = np.zeros((H, W), bool)
    expected[2:6, 2:6] = True
    np.testing.assert_array_equal(open_masks(tmp_path / "painted.png", 1, H, W)[0], expected)


def test_anti_aliased_mask_with_threshold(tmp_path):
    ramp = np.tile(np.arange(256, dtype=np.uint8)[None, :], (4, 1))  # 4 x 256 grey ramp
    cv2.imwrite(str(tmp_path / "ramp.png"), ramp)
    zero = open_masks(tmp_path / "ramp.png", 1, 4, 256, threshold=0)[0]
    half = open_masks(tmp_path / "ramp.png", 1, 4, 256, threshold=127)[0]
    np.testing.assert_array_equal(zero[0], np.arange(256) > 0)
    np.testing.assert_array_equal(half[0], np.arange(256) > 127)


def test_grey_and_16bit_masks(tmp_path):
    grey16 = np.zeros((H, W), np.uint16)
    grey16[3:9, 3:9] = 65535
    grey16[12:14, 12:14] = 200  # faint: masked at threshold 0, not at threshold 1 (=257 at 16 bits)
    cv2.imwrite(str(tmp_path / "m16.png"), grey16)
    assert open_masks(tmp_path / "m16.png", 1, H, W)[0].sum() == 36 + 4
    assert open_masks(tmp_path / "m16.png", 1, H, W, threshold=1)[0].sum() == 36
    floats = np.array([[0.0, 0.001, 0.6]], np.float32)
    np.testing.assert_array_equal(binarize(floats, 0), [[False, True, True]])
    np.testing.assert_array_equal(binarize(floats, 127), [[False, False, True]])


# ---------------------------------------------------------------------------
# count and size
# ---------------------------------------------------------------------------
def test_mask_count_mismatch(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.zeros((H, W), np.uint8))
    with pytest.raises(InputError) as info:
        open_masks(tmp_path, 5, H, W)
    text = str(info.value)
    assert str(tmp_path) in text and "3" in text and "5" in text


def test_mask_same_aspect_is_resized_with_warning(tmp_path, caplog):
    small = np.zeros((H // 2, W // 2), np.uint8)
    small[2:6, 3:9] = 255
    cv2.imwrite(str(tmp_path / "half.png"), small)
    with caplog.at_level(logging.WARNING, logger="propainter_wire"):
        source = open_masks(tmp_path / "half.png", 2, H, W)
        got = source[1]
    assert got.shape == (H, W)
    expected = np.zeros((H, W), bool)
    expected[4:12, 6:18] = True  # nearest: each pixel becomes a 2x2 block
    np.testing.assert_array_equal(got, expected)
    assert any("resizing" in r.getMessage() and "half.png" in r.getMessage() for r in caplog.records)


def test_mask_other_aspect_is_refused(tmp_path):
    cv2.imwrite(str(tmp_path / "wide.png"), np.zeros((10, 40), np.uint8))
    with pytest.raises(InputError) as info:
        open_masks(tmp_path / "wide.png", 3, H, W)
    text = str(info.value)
    assert str(tmp_path / "wide.png") in text and "40x10" in text and f"{W}x{H}" in text


def test_mask_input_errors(tmp_path):
    for path, match in ((tmp_path / "missing", "no such"), (tmp_path / "mask.gif", "unsupported")):
        if path.suffix:
            path.write_bytes(b"GIF89a")
        with pytest.raises(InputError, match=match) as info:
            open_masks(path, 3, H, W)
        assert str(path) in str(info.value)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(InputError) as info:
        open_masks(tmp_path / "broken.png", 3, H, W)
    assert str(tmp_path / "broken.png") in str(info.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="empty"):
        open_masks(empty, 3, H, W)


# ---------------------------------------------------------------------------
# dilation
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("iterations", [1, 2, 4, 7])
def test_dilate_matches_scipy(iterations):
    for density in (0.002, 0.02, 0.2):
        mask = RNG.random((37, 53)) < density
        mask[0, 5] = mask[-1, -1] = mask[20, 0] = True  # on the border: nothing grows in from outside
        expected = scipy.ndimage.binary_dilation(mask, iterations=iterations)
        np.testing.assert_array_equal(dilate(mask, iterations), expected)


def test_dilate_edge_cases():
    mask = np.zeros((9, 9), np.uint8)
    np.testing.assert_array_equal(dilate(mask, 3), np.zeros((9, 9), bool))
    mask[4, 4] = 255
    np.testing.assert_array_equal(dilate(mask, 0), mask > 0)
    assert dilate(mask, 1).sum() == 5  # the cross
    assert dilate(mask, 2).sum() == 13  # city-block radius 2
    with pytest.raises(ValueError):
        dilate(mask, -1)


def test_dilate_parity_with_reference(parity):
    raw = parity["masks"] > 0
    dilated = np.stack([dilate(m, 4) for m in raw])
    np.testing.assert_array_equal(dilated, parity["masks_dilated"] > 0)
    np.testing.assert_array_equal(dilated, parity["flow_masks"] > 0)


def test_real_masks_bmx_trees():
    folder = require(DATA / "bmx-trees" / "masks")
    first = cv2.imread(str(sorted(folder.iterdir())[0]), cv2.IMREAD_UNCHANGED)
    count = len([p for p in folder.iterdir() if not p.name.startswith(".")])
    source = open_masks(folder, count, first.shape[0], first.shape[1])
    assert not source.static and source[0].any() and source[count - 1].shape == first.shape[:2]


@pytest.mark.parametrize("flow_dilation", [None, 4, 1, 0])
def test_engine_input_masks_grow_by_their_own_dilations(flow_dilation):
    """The fill mask and the flow mask are each the user's mask grown by its own setting (one dilation
    computed when both are equal), and are independent arrays."""
    from propainter_wire.config import InpaintConfig
    from propainter_wire.runner.inputs import prepare_engine_input

    frames = [np.zeros((24, 32, 3), np.uint8) for _ in range(3)]
    raw = [np.zeros((24, 32), bool) for _ in range(3)]
    for i, m in enumerate(raw):
        m[10, 5 + 8 * i] = True
    config = InpaintConfig(mask_dilation=4, flow_mask_dilation=flow_dilation)
    inp = prepare_engine_input(frames, raw, config)
    expected_flow = 4 if flow_dilation is None else flow_dilation
    for i in range(3):
        np.testing.assert_array_equal(inp.masks[i], dilate(raw[i], 4))
        np.testing.assert_array_equal(inp.flow_masks[i], dilate(raw[i], expected_flow))
    assert not np.shares_memory(inp.masks, inp.flow_masks)
