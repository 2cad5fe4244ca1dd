"""The transformer's patch speed paths give the numbers of the straightforward code they replace (CPU):
``models/patches.py``'s ``unfold_patches``/``fold_patches`` against ``F.unfold``/``F.fold`` (float64, half
precision accumulated in float32), ``FusionFeedForward``/``SoftSplit``/``SoftComp``, the patch-linear
convolutions and the attention projections that skip the padding."""

from __future__ import annotations

import math
import types

import pytest
import torch
import torch.nn.functional as F

pytestmark = pytest.mark.usefixtures("one_thread")


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

