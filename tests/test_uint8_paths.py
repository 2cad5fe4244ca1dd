"""uint8 pass-through: the engine input, ``unit_frames`` and ``composite_frame`` give the same frames for
8-bit input as for the same frames in float."""

from __future__ import annotations

import numpy as np
import pytest

from propainter_wire.config import InpaintConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def _clip(t: int, h: int, w: int, seed: int = 0):
    """(t, h, w, 3) uint8 crops panning 2 px per frame over smoothed noise, and a box mask in each."""
    import cv2

    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.integers(0, 256, (h + 8, w + 2 * t, 3), dtype=np.uint8), (5, 5), 0)
    frames = np.stack([base[i % 8:i % 8 + h, 2 * i:2 * i + w] for i in range(t)])
    masks = np.zeros((t, h, w), bool)
    masks[:, h // 4:h // 4 + h // 3, w // 4:w // 4 + w // 3] = True
    return np.ascontiguousarray(frames), masks


def test_engine_input_keeps_uint8_at_its_own_size(tmp_path):
    from propainter_wire.io.scratch import Scratch
    from propainter_wire.pipeline.compositing import resize_frame
    from propainter_wire.runner.inputs import prepare_engine_input

    frames, masks = _clip(3, 32, 48)
    config = InpaintConfig()
    inp = prepare_engine_input(list(frames), list(masks), config)
    assert inp.frames.dtype == np.uint8 and np.array_equal(inp.frames, frames)
    with Scratch(tmp_path) as scratch:
        on_disk = prepare_engine_input(list(frames), list(masks), config, scratch=scratch)
        stored = np.asarray(on_disk.frames)
        assert stored.dtype == np.uint8 and np.array_equal(stored, frames)
        assert np.array_equal(np.asarray(on_disk.masks), inp.masks)

    as_float = frames.astype(np.float32) / 255
    inp_f = prepare_engine_input(list(as_float), list(masks), config)
    assert inp_f.frames.dtype == np.float32 and np.array_equal(inp_f.frames, as_float)
    assert np.array_equal(inp_f.masks, inp.masks) and np.array_equal(inp_f.flow_masks, inp.flow_masks)

    deep = frames.astype(np.uint16) * 257
    inp_16 = prepare_engine_input(list(deep), list(masks), config)
    assert inp_16.frames.dtype == np.float32 and np.allclose(inp_16.frames, as_float, atol=1e-6)

    smaller = config.replace(max_side=24)  # 32x48 -> 16x24
    inp_small = prepare_engine_input(list(frames), list(masks), smaller)
    assert inp_small.frames.shape == (3, 16, 24, 3) and inp_small.frames.dtype == np.float32
    assert 0 <= inp_small.frames.min() and inp_small.frames.max() <= 1
    assert np.allclose(inp_small.frames[1], resize_frame(as_float[1], 16, 24), atol=1e-6)
    with Scratch(tmp_path) as scratch:
        small_disk = prepare_engine_input(list(frames), list(masks), smaller, scratch=scratch)
        assert np.array_equal(np.asarray(small_disk.frames), inp_small.frames)


def test_unit_frames_converts_uint8_and_keeps_float32():
    from propainter_wire.engines.base import unit_frames

    frames, _ = _clip(2, 8, 12)
    unit = unit_frames(frames)
    assert unit.dtype == np.float32 and np.array_equal(unit, frames.astype(np.float32) / 255)
    assert unit.min() >= 0 and unit.max() <= 1
    as_float = frames.astype(np.float32) / 255
    assert unit_frames(as_float) is as_float  # nothing to convert
    wide = unit_frames(as_float.astype(np.float64)[:, ::2])
    assert wide.dtype == np.float32 and wide.flags.c_contiguous and np.array_equal(wide, as_float[:, ::2])


@pytest.mark.parametrize("case", ["same-size-u8", "same-size-u16", "same-size-f32", "upscaled-u8", "upscaled-u16"])
def test_composite_with_uint8_fill_equals_float_fill(case):
    from propainter_wire.pipeline.compositing import composite_frame

    rng = np.random.default_rng(5)
    h, w = (30, 44) if case.startswith("same") else (60, 88)
    fill_u8 = rng.integers(0, 256, (30, 44, 3), dtype=np.uint8)
    fill_u8[0, 0] = (0, 255, 128)
    original_u8 = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    original = {"u8": original_u8, "u16": original_u8.astype(np.uint16) * 257 + 3,
                "f32": original_u8.astype(np.float32) / 255}[case.rsplit("-", 1)[1]]
    raw = np.zeros((h, w), bool)
    raw[h // 4:h // 2, w // 3:w // 2] = True
    dilated = np.zeros((30, 44), bool)
    dilated[5:18, 10:26] = True
    config = InpaintConfig()
    from_u8 = composite_frame(original, fill_u8, raw, dilated, config)
    from_float = composite_frame(original, fill_u8.astype(np.float32) / 255, raw, dilated, config)
    assert from_u8.dtype == original.dtype and from_u8.shape == original.shape
    assert np.array_equal(from_u8, from_float)
    assert not np.array_equal(from_u8, original)  # something was filled
    if case == "same-size-u8":
        region = dilated | raw
        assert np.array_equal(from_u8[region], fill_u8[region])
        assert np.array_equal(from_u8[~region], original[~region])

