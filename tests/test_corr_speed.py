"""``flow/corr.py``'s speed paths (CPU): the one-``addcmul`` sampling grid of ``AllPairsCorr`` against a
lookup that normalises every window position after the sum (as RAFT's CorrBlock does), and the local
lookup's tiles and half-precision features."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

pytestmark = pytest.mark.usefixtures("one_thread")


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

