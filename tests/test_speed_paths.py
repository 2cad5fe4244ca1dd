"""The speed paths give the numbers of the straightforward code they replace (CPU).

- ``models/patches.py``: ``unfold_patches``/``fold_patches`` against ``F.unfold``/``F.fold``
  (float64, half precision accumulated in float32), and the transformer's
  ``FusionFeedForward``/``SoftSplit``/``SoftComp`` against F.fold/F.unfold re-implementations.
- ``flow/corr.py``: the one-``addcmul`` sampling grid of ``AllPairsCorr`` against a lookup that
  normalises every window position after the sum (as RAFT's CorrBlock does).
- uint8 pass-through: engine input, ``unit_frames``, ``composite_frame`` and the ProPainter
  engine give the same frames for 8-bit input as for the same frames in float.
- ``cudnn_autotune`` and the engine's ``autotune_stages``.
"""

from __future__ import annotations

import math
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from propainter_wire.config import InpaintConfig
from propainter_wire.pipeline.stages import Stages

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------
# patches
# ---------------------------------------------------------------------------
def _ref_unfold(x, kernel, stride, padding):
    return F.unfold(x, kernel, padding=padding, stride=stride).transpose(1, 2)


def _ref_fold(rows, size, kernel, stride, padding):
    return F.fold(rows.transpose(1, 2), size, kernel, padding=padding, stride=stride)


def _falls_back(size, kernel, stride, padding) -> bool:
    """Whether ``fold_patches``'s block canvas is too small for the map (it then calls F.fold)."""
    from propainter_wire.models.patches import patch_grid

    grid = patch_grid(size, kernel, stride, padding)
    return any((g + math.ceil(k / s) - 1) * s < p + n
               for g, k, s, p, n in zip(grid, kernel, stride, padding, size, strict=True))


class _CountingFunctional(types.SimpleNamespace):
    """Stands in for ``torch.nn.functional`` inside ``patches``: counts ``F.fold`` calls."""

    def __init__(self):
        super().__init__(folds=0)

    def __getattr__(self, name):
        return getattr(F, name)

    def fold(self, *args, **kwargs):
        self.folds += 1
        return F.fold(*args, **kwargs)


@pytest.fixture()
def fold_spy(monkeypatch):
    import propainter_wire.models.patches as patches

    spy = _CountingFunctional()
    monkeypatch.setattr(patches, "F", spy)
    return spy


# (size, kernel, stride, padding, expected to take the F.fold fallback)
GEOMETRIES = [
    pytest.param((20, 31), (7, 7), (3, 3), (3, 3), False, id="transformer-20x31"),
    pytest.param((61, 107), (7, 7), (3, 3), (3, 3), False, id="transformer-61x107"),
    # padding 1 < stride - 1, yet a 7x7 kernel at stride 3 spans 3 whole blocks: still the block path
    pytest.param((20, 31), (7, 7), (3, 3), (1, 1), False, id="k7s3p1"),
    pytest.param((22, 29), (7, 7), (3, 3), (0, 0), False, id="k7s3p0"),
    pytest.param((12, 16), (4, 4), (4, 4), (0, 0), False, id="stride=kernel-exact"),
    pytest.param((13, 18), (4, 4), (4, 4), (0, 0), True, id="stride=kernel-remainder"),
    pytest.param((17, 23), (9, 9), (5, 5), (0, 0), True, id="k9s5p0-fallback"),
    pytest.param((17, 23), (7, 5), (3, 2), (3, 2), False, id="asymmetric"),
]


@pytest.mark.parametrize("size, kernel, stride, padding, fallback", GEOMETRIES)
def test_patches_equal_unfold_and_fold_in_float64(size, kernel, stride, padding, fallback, fold_spy):
    from propainter_wire.models.patches import fold_patches, patch_grid, unfold_patches

    assert _falls_back(size, kernel, stride, padding) == fallback
    gen = torch.Generator().manual_seed(sum(size))
    x = torch.randn(2, 3, *size, dtype=torch.float64, generator=gen)
    rows = unfold_patches(x, kernel, stride, padding)
    expected_rows = _ref_unfold(x, kernel, stride, padding)
    grid = patch_grid(size, kernel, stride, padding)
    assert rows.shape == (2, grid[0] * grid[1], 3 * kernel[0] * kernel[1]) == expected_rows.shape
    assert rows.is_contiguous() and rows.dtype == torch.float64
    assert torch.equal(rows, expected_rows)  # a pure copy

    tokens = torch.randn(rows.shape, dtype=torch.float64, generator=gen)
    folded = fold_patches(tokens, size, kernel, stride, padding)
    assert fold_spy.folds == int(fallback)
    expected = _ref_fold(tokens, size, kernel, stride, padding)
    assert folded.shape == (2, 3, *size) and folded.dtype == torch.float64
    torch.testing.assert_close(folded, expected, rtol=0, atol=1e-12)


def test_unfold_of_channels_last_and_sliced_maps():
    """The strided view follows the map's own strides (channels-last, a channel slice)."""
    from propainter_wire.models.patches import unfold_patches

    x = torch.randn(2, 6, 19, 25, dtype=torch.float64)
    geometry = ((7, 7), (3, 3), (3, 3))
    for view in (x.contiguous(memory_format=torch.channels_last), x[:, 1:4], x[..., 2:]):
        rows = unfold_patches(view, *geometry)
        assert rows.is_contiguous()
        assert torch.equal(rows, _ref_unfold(view.contiguous(), *geometry))
    # no padding: the view is taken of the map itself
    sliced, unpadded = x[:, 1:4], ((7, 7), (3, 3), (0, 0))
    assert torch.equal(unfold_patches(sliced, *unpadded), _ref_unfold(sliced, *unpadded))


def test_unfold_of_a_1x1_kernel_is_contiguous():
    """(Its reshape alone would be a view with channel stride h*w.)"""
    from propainter_wire.models.patches import unfold_patches

    x = torch.randn(1, 3, 5, 6)
    rows = unfold_patches(x, (1, 1), (1, 1), (0, 0))
    assert torch.equal(rows, _ref_unfold(x, (1, 1), (1, 1), (0, 0)))
    assert rows.is_contiguous()


def _half_ulp_units(ours: torch.Tensor, expected32: torch.Tensor, dtype: torch.dtype) -> float:
    """Largest |ours - expected32.to(dtype)| in units of ``dtype``'s ulp at the expected value."""
    bits = {torch.bfloat16: 8, torch.float16: 11}[dtype]  # significand bits, the implicit one included
    _, exponent = torch.frexp(expected32.abs().clamp_min(1e-3))  # values in [2**(e-1), 2**e)
    ulp = torch.ldexp(torch.ones_like(expected32), exponent - bits)
    return ((ours.float() - expected32.to(dtype).float()).abs() / ulp).max().item()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("size, kernel, stride, padding", [
    ((20, 31), (7, 7), (3, 3), (3, 3)),
    ((22, 29), (7, 7), (3, 3), (1, 1)),
    ((13, 18), (4, 4), (4, 4), (0, 0)),  # fallback, but no overlaps: nothing is summed
])
def test_half_precision_fold_accumulates_in_float32(dtype, size, kernel, stride, padding):
    """Half rows: the float32 fold rounded once (col2im on CPU adds in the half type: up to 5 ulp
    off for 7x7 at stride 1)."""
    from propainter_wire.models.patches import fold_patches, patch_grid, unfold_patches

    gen = torch.Generator().manual_seed(3)
    grid = patch_grid(size, kernel, stride, padding)
    # positive values: no cancellation, so the ulp of the result bounds the float32 rounding differences
    rows = torch.rand(2, grid[0] * grid[1], 8 * kernel[0] * kernel[1], generator=gen).to(dtype)
    folded = fold_patches(rows, size, kernel, stride, padding)
    assert folded.dtype == dtype and folded.shape == (2, 8, *size)
    assert _half_ulp_units(folded, _ref_fold(rows.float(), size, kernel, stride, padding), dtype) <= 1.0

    x = torch.randn(2, 8, *size, generator=gen).to(dtype)
    unfolded = unfold_patches(x, kernel, stride, padding)
    assert unfolded.dtype == dtype and unfolded.is_contiguous()
    assert torch.equal(unfolded, _ref_unfold(x.float(), kernel, stride, padding).to(dtype))


def test_half_precision_fallback_fold_accumulates_in_float32():
    """(CPU col2im would add in bf16.)"""
    from propainter_wire.models.patches import fold_patches, patch_grid

    size, kernel, stride, padding = (28, 28), (9, 9), (5, 5), (0, 0)
    assert _falls_back(size, kernel, stride, padding)
    grid = patch_grid(size, kernel, stride, padding)
    rows = torch.rand(2, grid[0] * grid[1], 16 * 81, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    folded = fold_patches(rows, size, kernel, stride, padding)
    assert _half_ulp_units(folded, _ref_fold(rows.float(), size, kernel, stride, padding), torch.bfloat16) <= 1.0


def test_fold_rejects_rows_that_do_not_match_the_geometry():
    from propainter_wire.models.patches import fold_patches

    geometry = ((7, 7), (3, 3), (3, 3))  # 20x31: 7 x 11 patches
    fold_patches(torch.zeros(1, 77, 2 * 49), (20, 31), *geometry)
    with pytest.raises(ValueError, match="do not match"):
        fold_patches(torch.zeros(1, 76, 2 * 49), (20, 31), *geometry)
    with pytest.raises(ValueError, match="do not match"):
        fold_patches(torch.zeros(1, 77, 2 * 49 + 1), (20, 31), *geometry)
    with pytest.raises(ValueError):
        fold_patches(torch.zeros(1, 77, 2 * 49), (23, 31), *geometry)  # 8 x 11 patches there


def _fusion_ffn_reference(ffn, tokens, feat_size, kernel, stride, padding):
    """FusionFeedForward spelt out with F.fold/F.unfold: fc1, overlap average, fc2 (float64)."""
    batch, count, dim = tokens.shape
    grid = [(n + 2 * p - k) // s + 1 for n, k, s, p in zip(feat_size, kernel, stride, padding, strict=True)]
    per_frame = grid[0] * grid[1]
    hidden = ffn.fc1(tokens).reshape(-1, per_frame, ffn.fc1[0].out_features)  # (B*T, L, width)
    fold_args = {"kernel_size": kernel, "stride": stride, "padding": padding}
    cover = F.fold(torch.ones(1, kernel[0] * kernel[1], per_frame, dtype=tokens.dtype), feat_size, **fold_args)
    summed = F.fold(hidden.permute(0, 2, 1), feat_size, **fold_args)  # (B*T, width/49, h, w)
    averaged = F.unfold(summed / cover, **fold_args).permute(0, 2, 1)  # (B*T, L, width)
    return ffn.fc2(averaged.reshape(batch, count, -1))


@pytest.mark.parametrize("feat_size, frames", [((20, 31), 3), ((61, 107), 1)])
def test_fusion_feed_forward_matches_fold_unfold(feat_size, frames):
    from propainter_wire.models.transformer import FusionFeedForward

    torch.manual_seed(0)
    kernel, stride, padding = (7, 7), (3, 3), (3, 3)
    ffn = FusionFeedForward(16, kernel, stride, padding, width=4 * 49).double().eval()
    grid = [(n - 1) // 3 + 1 for n in feat_size]
    tokens = torch.randn(2, frames * grid[0] * grid[1], 16, dtype=torch.float64)
    with torch.no_grad():
        expected = _fusion_ffn_reference(ffn, tokens, feat_size, kernel, stride, padding)
        ours = ffn(tokens, feat_size)
        chunked = ffn(tokens, feat_size, frames_per_chunk=1)
    assert ours.shape == tokens.shape
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(chunked, expected, rtol=0, atol=1e-12)


def test_soft_split_and_soft_comp_match_unfold_and_fold():
    from propainter_wire.models.transformer import SoftComp, SoftSplit

    torch.manual_seed(1)
    geometry = ((7, 7), (3, 3), (3, 3))
    feat_size, batch, frames, channels, hidden = (20, 31), 1, 2, 4, 24
    split = SoftSplit(channels, hidden, *geometry).double()
    comp = SoftComp(channels, hidden, *geometry).double()
    feat = torch.randn(batch * frames, channels, *feat_size, dtype=torch.float64)
    with torch.no_grad():
        tokens = split(feat, batch, feat_size)  # (B, T, 7, 11, hidden)
        expected_tokens = split.embedding(_ref_unfold(feat, *geometry)).view(batch, frames, 7, 11, hidden)
        torch.testing.assert_close(tokens, expected_tokens, rtol=0, atol=1e-12)
        back = comp(tokens, feat_size)
        rows = comp.embedding(tokens.reshape(batch * frames, 77, hidden))
        expected_back = comp.bias_conv(_ref_fold(rows, feat_size, *geometry))
    torch.testing.assert_close(back, expected_back, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------
# all-pairs correlation lookup
# ---------------------------------------------------------------------------
def _corr_lookup_reference(fmap1, fmap2, coords, levels, radius):
    """RAFT's CorrBlock lookup, written out: window positions normalised after the sum.

    Returns (B, levels*(2r+1)**2, h, w), channel ``ix*(2r+1) + iy`` per level.
    """
    batch, dim, height, width = fmap1.shape
    volume = fmap1.flatten(2).transpose(1, 2) @ fmap2.flatten(2) / math.sqrt(dim)  # (B, hw1, hw2)
    level = volume.reshape(batch * height * width, 1, height, width)
    steps = torch.arange(-radius, radius + 1, dtype=torch.float32)
    dx, dy = torch.meshgrid(steps, steps, indexing="ij")  # x offsets along the first window axis
    offsets = torch.stack((dx, dy), dim=-1)  # (2r+1, 2r+1, 2)
    centre = coords.permute(0, 2, 3, 1).reshape(-1, 1, 1, 2)
    found = []
    for i in range(levels):
        if i:
            level = F.avg_pool2d(level, 2, stride=2)
        lvl_h, lvl_w = level.shape[-2:]
        pos = centre / 2**i + offsets
        grid = torch.stack((2 * pos[..., 0] / (lvl_w - 1) - 1, 2 * pos[..., 1] / (lvl_h - 1) - 1), dim=-1)
        sampled = F.grid_sample(level, grid, align_corners=True)  # (B*h*w, 1, 2r+1, 2r+1)
        found.append(sampled.reshape(batch, height, width, -1))
    return torch.cat(found, dim=-1).permute(0, 3, 1, 2), volume


@pytest.fixture(scope="module")
def corr_case():
    from propainter_wire.flow.corr import AllPairsCorr

    gen = torch.Generator().manual_seed(7)
    batch, dim, height, width = 2, 64, 16, 20
    # correlations of std 0.25 (|c| < 1.5): the two normalisations differ by a few float32 ulps of a
    # [-1, 1] grid coordinate, about 1e-6 pixels, so the samples differ by that times the volume's slope
    fmap1 = torch.randn(batch, dim, height, width, generator=gen) * 0.5
    fmap2 = torch.randn(batch, dim, height, width, generator=gen) * 0.5
    # fractional positions, a margin of them outside the image (the windows reach further still)
    coords = torch.stack((torch.rand(batch, height, width, generator=gen) * (width + 12) - 6,
                          torch.rand(batch, height, width, generator=gen) * (height + 12) - 6), dim=1)
    expected, volume = _corr_lookup_reference(fmap1, fmap2, coords, levels=4, radius=4)
    corr = AllPairsCorr.from_features(fmap1, fmap2, levels=4, radius=4)
    return corr, coords, expected, volume


def test_all_pairs_lookup_matches_reference_normalisation(corr_case):
    corr, coords, expected, _ = corr_case
    out = corr(coords)
    assert out.shape == (2, 4 * 81, 16, 20) and out.dtype == torch.float32
    outside = (coords[:, 0] < 0) | (coords[:, 0] > 19) | (coords[:, 1] < 0) | (coords[:, 1] > 15)
    assert outside.float().mean() > 0.2  # the margin is exercised
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_all_pairs_lookup_in_grid_sample_chunks(corr_case, monkeypatch):
    """Query pixels sampled in several grid_sample calls give the same features."""
    import propainter_wire.flow.corr as corr_module

    corr, coords, expected, _ = corr_case
    monkeypatch.setattr(corr_module, "_ELEMENT_LIMIT", 25 * 320)  # 25 rows of level 0 per call
    out = corr(coords)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_all_pairs_channel_order_at_integer_positions(corr_case):
    """Level 0, integer centres: channel ix*(2r+1) + iy is the volume at (x + ix - r, y + iy - r)."""
    corr, _, _, volume = corr_case
    height, width, side = 16, 20, 9
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    shift = torch.stack(((xs + 3) % width, (ys * 2 + 1) % height)).float()  # (2, h, w) x, y
    out = corr(shift.unsqueeze(0).expand(2, -1, -1, -1))
    checked = 0
    for y, x in ((3, 4), (8, 10), (12, 2), (15, 19)):
        cx, cy = int(shift[0, y, x]), int(shift[1, y, x])
        for ix in range(side):
            for iy in range(side):
                px, py = cx + ix - 4, cy + iy - 4
                if 0 <= px < width and 0 <= py < height:
                    got = out[1, ix * side + iy, y, x]
                    torch.testing.assert_close(got, volume[1, y * width + x, py * width + px], rtol=0, atol=1e-5)
                    checked += 1
    assert checked > 150


# ---------------------------------------------------------------------------
# uint8 pass-through
# ---------------------------------------------------------------------------
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


@pytest.fixture(scope="module")
def engine(det_weights_dir):
    from propainter_wire.engines.propainter import ProPainterEngine

    return ProPainterEngine(det_weights_dir, device="cpu", precision="fp32")


@pytest.mark.parametrize("size", [(32, 48), (30, 44)])  # 30x44 is padded to 32x48 inside the engine
def test_propainter_engine_uint8_input_and_callback(engine, size, monkeypatch):
    from propainter_wire.engines import propainter as engine_module
    from propainter_wire.engines.base import EngineInput

    tuned = []
    real_autotune = engine_module.cudnn_autotune
    monkeypatch.setattr(engine_module, "cudnn_autotune", lambda enabled: (tuned.append(enabled),
                                                                            real_autotune(enabled))[1])
    frames, masks = _clip(4, *size, seed=1)
    config = InpaintConfig(neighbor_length=4, raft_iters=1)

    def run(clip, on_final=None):
        return engine.run(EngineInput(frames=clip, masks=masks, flow_masks=masks, raw_masks=masks), config,
                          Stages(quiet=True), on_final=on_final)

    from_u8 = run(frames)
    from_float = run(frames.astype(np.float32) / 255)
    assert isinstance(from_u8, np.ndarray) and from_u8.dtype == np.float32 and from_u8.shape == (4, *size, 3)
    assert np.array_equal(from_u8, from_float)
    assert np.array_equal(from_u8[~masks], frames[~masks].astype(np.float32) / 255)
    assert tuned == [False, False, False] * 2  # flow, complete, transformer: never autotuned on the CPU

    handed = {}

    def on_final(index, frame):
        assert index not in handed
        handed[index] = (frame.dtype, frame.shape, np.array(frame, copy=True))

    streamed = run(frames, on_final)
    assert sorted(handed) == [0, 1, 2, 3]
    assert all(dtype == np.uint8 and shape == (*size, 3) for dtype, shape, _ in handed.values())
    assert len(streamed) == 4 and tuple(streamed.shape) == (4, *size, 3)
    for i in range(4):
        frame = streamed[i]
        assert frame.dtype == np.float32 and frame.shape == (*size, 3)
        assert np.array_equal(frame, handed[i][2].astype(np.float32) / 255)
        assert np.array_equal(frame, from_u8[i])


# ---------------------------------------------------------------------------
# cuDNN autotuning
# ---------------------------------------------------------------------------
def test_cudnn_autotune_sets_and_restores(monkeypatch):
    from propainter_wire.runtime.precision import cudnn_autotune

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    with cudnn_autotune(True):
        assert torch.backends.cudnn.benchmark is True
        with cudnn_autotune(False):
            assert torch.backends.cudnn.benchmark is False
        assert torch.backends.cudnn.benchmark is True
    assert torch.backends.cudnn.benchmark is False

    with pytest.raises(RuntimeError, match="inside"):
        with cudnn_autotune(True):
            raise RuntimeError("inside")
    assert torch.backends.cudnn.benchmark is False

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    with pytest.raises(KeyError):
        with cudnn_autotune(False):
            assert torch.backends.cudnn.benchmark is False
            raise KeyError("x")
    assert torch.backends.cudnn.benchmark is True


def test_autotune_stages_on_cpu_ignore_the_environment(engine, monkeypatch):
    from propainter_wire.engines.propainter import ProPainterEngine

    assert engine.autotune_stages == frozenset()
    for value in ("flow,complete,transformer", "flow", "none"):
        monkeypatch.setenv("PROPAINTER_WIRE_CUDNN_BENCHMARK", value)
        for precision in ("fp32", "bf16"):
            made = ProPainterEngine(None, device="cpu", precision=precision, models=engine.models)
            assert made.autotune_stages == frozenset(), (value, precision)


@pytest.mark.parametrize("precision, env, expected", [
    ("fp32", None, frozenset()),
    ("tf32", None, frozenset()),
    ("fp16", "flow", frozenset({"flow"})),
    ("fp32", "flow, complete,transformer", frozenset({"flow", "complete", "transformer"})),
    ("fp16", "none", frozenset()),
    ("fp16", "", frozenset()),
    ("fp16", "complete", frozenset({"complete"})),
])
def test_autotune_stages_on_cuda_follow_precision_and_environment(precision, env, expected, monkeypatch):
    """The variable names the stages on a CUDA device; the exact precisions are never tuned without it.

    (Only settings are read here: fp32/tf32/fp16 on a CUDA device name touch no GPU, and models
    handed in are not moved, channels-last being switched off.)"""
    from propainter_wire.engines.propainter import ProPainterEngine, ProPainterModels

    monkeypatch.setenv("PROPAINTER_WIRE_CHANNELS_LAST", "0")
    if env is None:
        monkeypatch.delenv("PROPAINTER_WIRE_CUDNN_BENCHMARK", raising=False)
    else:
        monkeypatch.setenv("PROPAINTER_WIRE_CUDNN_BENCHMARK", env)
    models = ProPainterModels(torch.nn.Identity(), torch.nn.Identity(), torch.nn.Identity())
    made = ProPainterEngine(None, device="cuda", precision=precision, models=models)
    assert made.autotune_stages == expected


# ---------------------------------------------------------------------------
# separable 3-D convolutions as 2-D ones; RAFT's instance norm
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("args, options", [
    ((3, 8, (1, 5, 5)), {"stride": (1, 2, 2), "padding": (0, 2, 2), "padding_mode": "replicate"}),
    ((6, 6, (3, 1, 1)), {"padding": (2, 0, 0), "dilation": (2, 1, 1)}),
    ((6, 6, (1, 3, 3)), {"padding": (0, 3, 3), "dilation": (1, 3, 3)}),
    ((4, 6, (1, 3, 3)), {"stride": (1, 2, 2), "padding": (0, 1, 1), "bias": False}),
    ((4, 6, (3, 3, 3)), {"padding": (1, 1, 1)}),  # not separable: the plain 3-D path
])
def test_conv3d_as_2d_equals_conv3d(args, options):
    from propainter_wire.models.flow_completion import Conv3dAs2d

    torch.manual_seed(0)
    ours = Conv3dAs2d(*args, **options).double()
    plain = torch.nn.Conv3d(*args, **options).double()
    plain.load_state_dict(ours.state_dict())
    x = torch.randn(2, args[0], 5, 12, 18, dtype=torch.float64)
    got, want = ours(x), plain(x)
    assert got.shape == want.shape
    assert torch.allclose(got, want, atol=1e-12)
    # a permuted (non-contiguous) input, as a per-frame layer hands to the next one
    y = torch.randn(2, 5, args[0], 12, 18, dtype=torch.float64).transpose(1, 2)
    assert torch.allclose(ours(y), plain(y), atol=1e-12)


def test_flow_completion_builds_its_3d_convolutions_as_2d():
    from propainter_wire.models.flow_completion import Conv3dAs2d, RecurrentFlowCompleteNet

    convs = [m for m in RecurrentFlowCompleteNet().modules() if isinstance(m, torch.nn.Conv3d)]
    assert convs and all(isinstance(m, Conv3dAs2d) for m in convs)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device"))])
def test_raft_instance_norm_matches_the_library(device):
    from propainter_wire.flow.raft import InstanceNorm

    x = (torch.randn(2, 5, 30, 41) * 3 + 1).to(device)
    want = F.instance_norm(x)
    got = InstanceNorm()(x)
    assert got.dtype == torch.float32 and torch.allclose(got, want, atol=1e-5)
    if device == "cuda":
        with torch.autocast("cuda", dtype=torch.float16):
            half = InstanceNorm()(x.half())
        assert half.dtype == torch.float32 and torch.allclose(half, F.instance_norm(x.half().float()), atol=1e-4)


def test_channels_last_switch_names_network_parts(det_weights_dir, monkeypatch):
    """PROPAINTER_WIRE_CHANNELS_LAST (a benchmark switch) takes 1, 0 or a list of network parts."""
    from propainter_wire.engines.propainter import ProPainterEngine

    def layout(conv):
        return "cl" if not conv.weight.is_contiguous() else "nchw"

    monkeypatch.setenv("PROPAINTER_WIRE_CHANNELS_LAST", "raft_encoders, inpainter_decoder")
    engine = ProPainterEngine(det_weights_dir, device="cpu", precision="fp32")
    raft, inpainter = engine.models.raft, engine.models.inpainter
    assert layout(raft.fnet.layer1[0].conv1) == layout(raft.cnet.conv1) == layout(inpainter.decoder[2]) == "cl"
    assert layout(raft.update_block.encoder.convc2) == layout(inpainter.encoder.layers[2]) == "nchw"
    monkeypatch.setenv("PROPAINTER_WIRE_CHANNELS_LAST", "0")
    assert layout(ProPainterEngine(det_weights_dir, device="cpu").models.raft.fnet.conv1) == "nchw"
    monkeypatch.setenv("PROPAINTER_WIRE_CHANNELS_LAST", "raft_everything")
    with pytest.raises(ValueError, match="unknown part 'raft_everything'"):
        ProPainterEngine(det_weights_dir, device="cpu")


@pytest.mark.parametrize("dtype", [torch.bfloat16, pytest.param(torch.float16, marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="float16 gathering is the GPU's (needs a CUDA device)"))])
def test_local_lookup_with_half_gathered_features(dtype):
    """LocalCorr gathering half features: float32 out, within half rounding of the float32 lookup."""
    from propainter_wire.flow.corr import LocalCorr

    device = "cuda" if dtype == torch.float16 else "cpu"
    gen = torch.Generator().manual_seed(4)
    f1, f2 = (0.5 * torch.randn(2, 64, 20, 24, generator=gen)).to(device), (0.5 * torch.randn(
        2, 64, 20, 24, generator=gen)).to(device)
    coords = (torch.rand(2, 2, 20, 24, generator=gen) * torch.tensor([24.0, 20.0]).view(1, 2, 1, 1)).to(device)
    exact = LocalCorr(f1, f2)(coords)
    half = LocalCorr(f1, f2, dtype=dtype)(coords)
    assert half.dtype == torch.float32 and half.shape == exact.shape
    tolerance = 0.01 if dtype == torch.bfloat16 else 0.002
    assert (half - exact).abs().max().item() <= tolerance * max(1.0, exact.abs().max().item())


def test_local_lookup_tiles_agree_with_per_pixel_gathering(monkeypatch):
    """The tiled local lookup (shared regions, one matmul per tile) gives the per-pixel gathering's values;
    tiles whose flow spreads too far fall back to it, in the same call."""
    from propainter_wire.flow import corr as corr_mod

    gen = torch.Generator().manual_seed(5)
    b, c, h, w = 2, 32, 21, 35
    f1 = 0.5 * torch.randn(b, c, h, w, generator=gen)
    f2 = 0.5 * torch.randn(b, c, h, w, generator=gen)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    coords = torch.stack((xs, ys))[None].repeat(b, 1, 1, 1) + 2.5 + 0.6 * torch.randn(b, 2, h, w, generator=gen)
    coords[:, :, 9:14, 20:26] += 40 * torch.rand(b, 2, 5, 6, generator=gen) - 20  # tiles that spread too far
    coords[1, :, :4, :4] += torch.tensor([60.0, -50.0]).view(2, 1, 1)  # some windows leave the image
    per_pixel_calls = []
    real = corr_mod.LocalCorr._level_lookup
    monkeypatch.setattr(corr_mod.LocalCorr, "_level_lookup",
                        lambda self, *a: (per_pixel_calls.append(a[3].shape[0]), real(self, *a))[1])
    tiled = corr_mod.LocalCorr(f1, f2)(coords)
    assert per_pixel_calls and sum(per_pixel_calls) < 4 * b * h * w // 2  # most pixels took the tiled path
    monkeypatch.setattr(corr_mod.LocalCorr, "SPREAD", -1)  # every tile falls back
    per_pixel = corr_mod.LocalCorr(f1, f2)(coords)
    assert torch.allclose(tiled, per_pixel, atol=1e-5)
    assert torch.allclose(tiled, corr_mod.AllPairsCorr.from_features(f1, f2)(coords), atol=1e-5)


@pytest.mark.parametrize("size", [(36, 64), (37, 65), (38, 66), (60, 108), (8, 8)])
def test_patch_linear_convolutions_equal_rows_then_linear(size):
    """A linear layer on unfolded patch rows is one convolution, and folded linear rows one transposed
    convolution (bias folded to a map): equal in float64 to the explicit rows (every remainder of the
    patch grid)."""
    import torch.nn.functional as F

    from propainter_wire.models.patches import (
        fold_linear,
        fold_patches,
        linear_on_patches,
        patch_coverage,
        patch_grid,
        unfold_patches,
    )

    gen = torch.Generator().manual_seed(5)
    kernel, stride, padding = (7, 7), (3, 3), (3, 3)
    x = torch.randn(2, 6, *size, generator=gen, dtype=torch.float64)
    weight, bias = torch.randn(16, 6 * 49, generator=gen, dtype=torch.float64), torch.randn(16, dtype=torch.float64)
    rows = F.linear(unfold_patches(x, kernel, stride, padding), weight, bias)
    got = linear_on_patches(x, weight, bias, kernel, stride, padding)
    assert got.shape == rows.shape and got.is_contiguous()
    torch.testing.assert_close(got, rows, atol=1e-12, rtol=0)

    grid = patch_grid(size, kernel, stride, padding)
    tokens = torch.randn(2, grid[0] * grid[1], 16, generator=gen, dtype=torch.float64)
    weight1, bias1 = torch.randn(6 * 49, 16, generator=gen, dtype=torch.float64), torch.randn(6 * 49,
                                                                                              dtype=torch.float64)
    expected = fold_patches(F.linear(tokens, weight1, bias1), size, kernel, stride, padding)
    torch.testing.assert_close(fold_linear(tokens, grid, weight1, bias1, size, kernel, stride, padding), expected,
                               atol=1e-12, rtol=0)
    ones = torch.ones(1, grid[0] * grid[1], 49, dtype=torch.float64)
    assert torch.equal(patch_coverage(size, kernel, stride, padding, x.device, torch.float64),
                       fold_patches(ones, size, kernel, stride, padding))
    with pytest.raises(ValueError, match="patch grid"):
        fold_linear(tokens[:, 1:], grid, weight1, bias1, size, kernel, stride, padding)


@pytest.mark.parametrize("grid", [(12, 22), (10, 17)])
def test_attention_projections_skip_the_padding_exactly(grid, monkeypatch):
    """Projecting the token grid then filling the padding with the bias equals projecting the zero-padded
    grid (the form taken for little padding)."""
    from propainter_wire.models import transformer

    torch.manual_seed(4)
    attention = transformer.SparseWindowAttention(32, 4, (5, 9)).double().eval()
    x = torch.randn(1, 5, *grid, 32, dtype=torch.float64)
    mask = torch.zeros(1, 3, *grid, 1, dtype=torch.float64)
    mask[:, :, 2:4, 3:9] = 1
    outs = []
    for threshold in (0.0, 100.0):  # always skip the padding / never
        monkeypatch.setattr(transformer, "_UNPADDED_PROJECTION_AREA", threshold)
        with torch.no_grad():
            outs.append(attention(x, mask, slice(0, None, 2)))
    torch.testing.assert_close(outs[0], outs[1], atol=1e-12, rtol=0)
