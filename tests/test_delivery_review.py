"""Review outputs (video, contact sheet, display transform) and the delivery CLI options."""

from __future__ import annotations

import argparse
from fractions import Fraction

import numpy as np
import pytest

from propainter_wire.delivery.options import DeliveryOptions, add_delivery_arguments
from propainter_wire.delivery.review import display_transform, outline, to_display, write_review
from propainter_wire.errors import InputError

T, H, W = 5, 72, 96


def _clip(dtype=np.uint8):
    frames_in = np.zeros((T, H, W, 3), np.float32) + np.linspace(0, 1, W, dtype=np.float32)[None, None, :, None]
    masks = np.zeros((T, H, W), bool)
    masks[:, 30:40, 20:70] = True
    frames_out = frames_in.copy()
    frames_out[masks] = 0.5
    if dtype == np.uint8:
        frames_in, frames_out = (np.rint(f * 255).astype(np.uint8) for f in (frames_in, frames_out))
    return frames_in, frames_out, masks


def test_review_files(tmp_path):
    av = pytest.importorskip("av")
    cv2 = pytest.importorskip("cv2")
    frames_in, frames_out, masks = _clip()
    write_review(frames_in, frames_out, masks, tmp_path / "review.mp4", tmp_path / "review.png",
                 frame_numbers=range(1001, 1001 + T), rate=Fraction(24000, 1001))
    with av.open(str(tmp_path / "review.mp4")) as c:
        stream = c.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (2 * W, H)
        assert stream.frames == T and stream.average_rate == Fraction(24000, 1001)
    sheet = cv2.imread(str(tmp_path / "review.png"))
    assert sheet.shape[0] == 4 * 240 and sheet.shape[1] > 2 * W * 240 / H
    assert sorted(p.name for p in tmp_path.iterdir()) == ["review.mp4", "review.png"]


def test_outline_and_labels_only_touch_the_left_half(tmp_path):
    frames_in, frames_out, masks = _clip()
    drawn = outline(frames_in[0], masks[0])
    edge = np.zeros((H, W), bool)
    edge[29:41, 19:71] = True
    edge[32:38, 22:68] = False
    assert np.array_equal(drawn[~edge], frames_in[0][~edge]) and not np.array_equal(drawn, frames_in[0])


def test_float_frames_go_through_the_display_transform():
    pytest.importorskip("PyOpenColorIO")
    grey = np.full((4, 4, 3), 0.18, np.float32)
    shown = display_transform(grey)
    assert shown.dtype == np.uint8 and shown.shape == (4, 4, 3)
    assert 80 < int(shown.mean()) < 140  # ACES SDR view: 89; raw 0.18 would be 46, about two stops dark
    assert to_display(grey).mean() == shown.mean()
    with pytest.raises(InputError, match="OpenColorIO"):
        display_transform(grey, colorspace="no such space")


def test_float_review(tmp_path):
    pytest.importorskip("PyOpenColorIO")
    frames_in, frames_out, masks = _clip(np.float32)
    write_review(frames_in, frames_out, masks, None, tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 0


def test_options_help_and_values():
    parser = argparse.ArgumentParser()
    group = add_delivery_arguments(parser)
    for action in group._group_actions:
        assert action.help and len(action.help) > 20, action.dest
    opts = DeliveryOptions.from_args(parser.parse_args(["--video-codec", "prores", "--fps", "23.976", "--review",
                                                        "--regrain", "off", "--video-only"]))
    assert opts == DeliveryOptions("prores", Fraction(24000, 1001), True, True, "off")
    assert opts.codec.encoder == "prores_ks"
    default = DeliveryOptions.from_args(parser.parse_args([]))
    assert default == DeliveryOptions() and default.regrain == "off" and default.video_codec == "h264"
    help_text = parser.format_help()
    for flag in ("--video-codec", "--fps", "--video-only", "--review", "--regrain"):
        assert flag in help_text
    with pytest.raises(SystemExit):
        parser.parse_args(["--fps", "fast"])
    with pytest.raises(SystemExit):
        parser.parse_args(["--regrain", "on"])
