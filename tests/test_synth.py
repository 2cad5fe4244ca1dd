"""Synthetic clips, wires and masks: determinism, motion and mask correctness."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from propainter_wire.quality import synth


@pytest.fixture(scope="module")
def clip():
    return synth.procedural_clip(8, 72, 96, seed=3)


def test_procedural_clip_is_deterministic_and_textured(clip):
    assert clip.shape == (8, 72, 96, 3) and clip.dtype == np.uint8
    again = synth.procedural_clip(8, 72, 96, seed=3)
    np.testing.assert_array_equal(clip, again)
    other = synth.procedural_clip(8, 72, 96, seed=4)
    assert np.abs(clip.astype(int) - other).mean() > 5
    # real texture: plenty of local detail and colour in every frame
    for frame in clip:
        assert frame.std() > 15
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        assert np.abs(cv2.Laplacian(grey, cv2.CV_32F)).mean() > 1.0
        assert np.abs(frame[..., 0].astype(int) - frame[..., 2]).mean() > 5


def test_procedural_clip_pans(clip):
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32) for f in clip]
    (dx, dy), _ = cv2.phaseCorrelate(grey[0], grey[-1])
    # about 1.3 px per frame to the right -> content moves left by ~9 px over 7 frames
    assert -14 < dx < -5
    assert abs(dy) < 5
    assert not np.array_equal(clip[0], clip[1])


def test_draw_wires_mask_is_exactly_the_changed_pixels(clip):
    drawn, exact = synth.draw_wires(clip, num_wires=2, seed=1, grow=0)
    assert drawn.shape == clip.shape and drawn.dtype == np.uint8
    assert exact.shape == clip.shape[:3] and exact.dtype == bool
    changed = (drawn != clip).any(-1)
    assert not (changed & ~exact).any(), "a pixel changed outside the mask"
    # covered pixels that did not change (coverage too faint to round) are rare
    assert (exact & ~changed).sum() <= 0.02 * exact.sum()
    np.testing.assert_array_equal(drawn[~exact], clip[~exact])
    # the grown mask is the exact one dilated by one pixel
    again, grown = synth.draw_wires(clip, num_wires=2, seed=1)
    np.testing.assert_array_equal(again, drawn)
    assert (grown >= exact).all() and grown.sum() > exact.sum()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    for t in range(len(clip)):
        np.testing.assert_array_equal(grown[t], cv2.dilate(exact[t].astype(np.uint8), kernel).astype(bool))


def test_wires_are_thin_dark_and_sway(clip):
    drawn, masks = synth.draw_wires(clip, num_wires=1, thickness_range=(2, 3), seed=5, grow=0)
    # spans the frame: every column holds wire pixels
    assert masks[0].any(axis=0).all()
    # thin: a few pixels per column
    per_column = masks[0].sum(axis=0)
    assert 1 <= np.median(per_column) <= 6
    # dark: wire pixels got darker
    assert drawn[masks].mean() < clip[masks].mean()
    # sways: the wire moves between frames
    assert not np.array_equal(masks[0], masks[-1])
    _, three = synth.draw_wires(clip, num_wires=3, seed=5)
    assert three.mean() > masks.mean()


def test_masks():
    box = synth.static_box_mask(3, 40, 60, box=(10, 5, 20, 8))
    assert box.shape == (3, 40, 60) and box.sum() == 3 * 20 * 8 and box[0, 5, 10] and not box[0, 4, 10]
    assert (box[0] == box[2]).all()
    auto = synth.static_box_mask(2, 40, 60, seed=1)
    assert 0.02 < auto.mean() < 0.2
    logo = synth.logo_mask(2, 72, 128)
    assert logo.any() and (logo[0] == logo[1]).all()
    assert not logo[0, 36:, :64].any()  # top-right corner by default
    obj = synth.moving_object_mask(10, 72, 128, seed=0)
    assert obj.shape == (10, 72, 128) and obj.all(axis=0).sum() < obj[0].sum()
    centre0 = np.argwhere(obj[0])[:, 1].mean()
    centre9 = np.argwhere(obj[-1])[:, 1].mean()
    assert abs(centre9 - centre0) > 40  # walked across
    np.testing.assert_array_equal(obj, synth.moving_object_mask(10, 72, 128, seed=0))


def test_blank(clip):
    masks = synth.static_box_mask(len(clip), 72, 96, box=(5, 5, 10, 10))
    out = synth.blank(clip, masks)
    assert (out[masks] == 0).all()
    np.testing.assert_array_equal(out[~masks], clip[~masks])
    assert out is not clip and clip[masks].any()
    np.testing.assert_array_equal(synth.blank(clip, masks[0], value=7)[masks], 7)
