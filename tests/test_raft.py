"""RAFT: checkpoint layout, parity with the reference run, correlation variants, odd sizes."""

from __future__ import annotations

import os

import pytest
import torch

from conftest import manifest_section
from propainter_wire.flow import corr as corr_mod
from propainter_wire.flow.raft import RAFT, _Padding, bidirectional_flows
from propainter_wire.testing import det_state_dict
from propainter_wire.weights import load_raft

RUN_SLOW = os.environ.get("PROPAINTER_WIRE_SLOW") == "1"


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    """These tensors are small: one intra-op thread is as fast (see ``conftest.one_thread``)."""


@pytest.fixture(scope="module")
def raft(tmp_path_factory) -> RAFT:
    """RAFT with the parity kit's deterministic weights, loaded through the checkpoint path."""
    path = tmp_path_factory.mktemp("raft") / "raft-things.pth"
    torch.save({"module." + k: v for k, v in det_state_dict(RAFT()).items()}, path)
    return load_raft(path)


def _frames(parity, count: int | None = None) -> torch.Tensor:
    frames = parity["frames"][:count]  # (T, H, W, 3) uint8
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255 * 2 - 1


def _smooth_frames(count: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Textured frames in [-1, 1] moving by a couple of pixels per frame."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.nn.functional.interpolate(torch.rand(1, 3, height // 4 + 4, width // 4 + 4, generator=gen),
                                           size=(height + 16, width + 16), mode="bilinear", align_corners=False)
    frames = [base[0, :, 2 * t:2 * t + height, t:t + width] for t in range(count)]
    return torch.stack(frames) * 2 - 1


def test_state_dict_matches_manifest():
    expected = [(k, shape) for k, (shape, _dtype) in manifest_section("raft-things.pth").items()]
    assert len(expected) == 179
    mine = [(k, tuple(v.shape)) for k, v in RAFT().state_dict().items()]
    assert mine == expected


def _check_parity(raft, parity, count, pairs_per_chunk):
    frames = _frames(parity, count)
    flows_f, flows_b = bidirectional_flows(raft, frames, iters=20, pairs_per_chunk=pairs_per_chunk)
    pairs = frames.shape[0] - 1
    report = {}
    for name, mine, golden in (("f", flows_f, parity["raft_flow_f"][:pairs]),
                               ("b", flows_b, parity["raft_flow_b"][:pairs])):
        assert mine.shape == golden.shape
        err = (mine - torch.from_numpy(golden)).abs()
        report[name] = (err.max().item(), err.mean().item())
        assert err.max().item() <= 1e-2, report
        assert err.mean().item() <= 1e-4, report
    print("RAFT parity (max, mean) px:", report)


def test_parity_first_pairs(raft, parity):
    # 2 pairs in chunks of 1: exercises the encoding carried from one chunk to the next
    _check_parity(raft, parity, count=3, pairs_per_chunk=1)


@pytest.mark.slow
@pytest.mark.skipif(not RUN_SLOW, reason="full 12-frame parity takes ~15 s of CPU; set PROPAINTER_WIRE_SLOW=1")
def test_parity_all_frames(raft, parity):
    _check_parity(raft, parity, count=None, pairs_per_chunk=None)


def test_forward_equals_bidirectional(raft):
    frames = _smooth_frames(3, 128, 128)
    flows_f, flows_b = bidirectional_flows(raft, frames, iters=3, pairs_per_chunk=1)
    with torch.no_grad():
        fwd = raft(frames[1:2], frames[2:3], iters=3)
        bwd = raft(frames[2:3], frames[1:2], iters=3)
    assert fwd.shape == (1, 2, 128, 128)
    torch.testing.assert_close(fwd[0], flows_f[1], atol=1e-4, rtol=0)
    torch.testing.assert_close(bwd[0], flows_b[1], atol=1e-4, rtol=0)


def test_local_matches_all_pairs(raft):
    # the backward flows of 'local' use their own lookups, those of 'all_pairs' the transposed volume
    frames = _smooth_frames(2, 128, 128, seed=1)
    dense = bidirectional_flows(raft, frames, iters=5, corr="all_pairs")
    local = bidirectional_flows(raft, frames, iters=5, corr="local")
    for a, b in zip(dense, local, strict=True):
        assert a.abs().max().item() > 0.5  # the flows are not trivial
        assert (a - b).abs().max().item() <= 1e-4


def test_directions_one_at_a_time_when_only_one_pyramid_fits(raft, monkeypatch):
    """A budget that holds one direction's pyramid but not both: same flows, never two volumes alive."""
    frames = _smooth_frames(3, 128, 128, seed=2)
    together = bidirectional_flows(raft, frames, iters=4, corr="all_pairs", pairs_per_chunk=1)
    one = corr_mod.all_pairs_bytes(16, 16)
    built = []
    real = corr_mod.AllPairsCorr.__init__

    def spy(self, volume, *args, **kwargs):
        built.append(volume.shape[0])
        real(self, volume, *args, **kwargs)

    monkeypatch.setattr(corr_mod.AllPairsCorr, "__init__", spy)
    split = bidirectional_flows(raft, frames, iters=4, budget_bytes=one + one // 2)
    assert built and max(built) == 1  # one pair, one direction per volume
    for a, b in zip(together, split, strict=True):
        assert a.abs().max().item() > 0.5
        torch.testing.assert_close(b, a, atol=1e-4, rtol=0)


def test_half_pyramid_is_close_to_fp32():
    gen = torch.Generator().manual_seed(5)
    fmap1, fmap2 = torch.randn(2, 2, 32, 16, 20, generator=gen)
    coords = torch.rand(2, 2, 16, 20, generator=gen) * torch.tensor([18.0, 14.0]).view(1, 2, 1, 1)
    full = corr_mod.AllPairsCorr.from_features(fmap1, fmap2)(coords)
    half = corr_mod.AllPairsCorr.from_features(fmap1, fmap2, dtype=torch.float16)(coords)
    assert half.dtype == torch.float32 and half.shape == full.shape
    assert corr_mod.all_pairs_bytes(16, 20, dtype=torch.float16) * 2 == corr_mod.all_pairs_bytes(16, 20)
    torch.testing.assert_close(half, full, atol=0.05, rtol=0.02)


def test_corr_lookups_agree_off_grid():
    """Both correlation variants at fractional and out-of-image positions, all levels."""
    gen = torch.Generator().manual_seed(3)
    fmap1, fmap2 = torch.randn(2, 2, 32, 16, 20, generator=gen)
    coords = torch.rand(2, 2, 16, 20, generator=gen) * torch.tensor([30.0, 24.0]).view(1, 2, 1, 1) - 5
    dense = corr_mod.AllPairsCorr.from_features(fmap1, fmap2)(coords)
    local = corr_mod.LocalCorr(fmap1, fmap2)(coords)
    assert dense.shape == (2, 4 * 81, 16, 20)
    torch.testing.assert_close(local, dense, atol=1e-5, rtol=1e-5)


def test_backward_volume_is_transpose():
    gen = torch.Generator().manual_seed(4)
    fmap1, fmap2 = torch.randn(2, 3, 32, 16, 16, generator=gen)
    coords = torch.rand(3, 2, 16, 16, generator=gen) * 15
    both = corr_mod.AllPairsCorr.from_pairs(fmap1, fmap2)(torch.cat((coords, coords)))
    fwd = corr_mod.AllPairsCorr.from_features(fmap1, fmap2)(coords)
    bwd = corr_mod.AllPairsCorr.from_features(fmap2, fmap1)(coords)
    torch.testing.assert_close(both[:3], fwd, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(both[3:], bwd, atol=1e-5, rtol=1e-5)


def test_auto_mode_follows_budget():
    needed = corr_mod.all_pairs_bytes(18, 32)
    assert corr_mod.choose_corr_mode("auto", 18, 32, 2, budget_bytes=2 * needed) == "all_pairs"
    assert corr_mod.choose_corr_mode("auto", 18, 32, 2, budget_bytes=2 * needed - 1) == "local"
    assert corr_mod.choose_corr_mode("local", 18, 32, 2, budget_bytes=10**12) == "local"
    with pytest.raises(ValueError):
        corr_mod.choose_corr_mode("cuda", 18, 32)


def test_chunking_respects_element_limit(raft, monkeypatch):
    frames = _smooth_frames(2, 128, 136, seed=2)  # features 16 x 17: 272 pixels, volume 272 x 272
    with torch.no_grad():
        reference = raft(frames[:1], frames[1:], iters=2, corr="all_pairs")
        local_reference = raft(frames[:1], frames[1:], iters=2, corr="local")
    limit = 70_000  # > C * hw (69632), < hw * hw (73984)
    monkeypatch.setattr(corr_mod, "_ELEMENT_LIMIT", limit)
    largest = []
    real_matmul, real_sample = torch.matmul, torch.nn.functional.grid_sample

    def spy_matmul(a, b, *args, **kwargs):
        out = real_matmul(a, b, *args, **kwargs)
        largest.append(max(a.numel(), b.numel(), out.numel()))
        return out

    def spy_sample(x, grid, *args, **kwargs):
        out = real_sample(x, grid, *args, **kwargs)
        largest.append(max(x.numel(), grid.numel(), out.numel()))
        return out

    monkeypatch.setattr(corr_mod.torch, "matmul", spy_matmul)
    monkeypatch.setattr(corr_mod.F, "grid_sample", spy_sample)
    with torch.no_grad():
        chunked = raft(frames[:1], frames[1:], iters=2, corr="all_pairs")
        flows_f, flows_b = bidirectional_flows(raft, frames, iters=2, corr="all_pairs")
        local_chunked = raft(frames[:1], frames[1:], iters=2, corr="local")
    assert largest and max(largest) < limit
    torch.testing.assert_close(chunked, reference, atol=1e-5, rtol=0)
    torch.testing.assert_close(flows_f[0], reference[0], atol=1e-4, rtol=0)
    torch.testing.assert_close(local_chunked, local_reference, atol=1e-5, rtol=0)


def test_single_pixel_level_gives_nan_without_padding():
    """Why padding exists: a 1-pixel-high coarsest level divides by zero in the lookup."""
    fmap = torch.randn(1, 8, 15, 27)  # 120 x 216 input -> coarsest level 1 x 3
    looked_up = corr_mod.AllPairsCorr.from_features(fmap, fmap)(torch.zeros(1, 2, 15, 27) + 3)
    assert torch.isnan(looked_up).any()


@pytest.mark.parametrize("height, width", [(120, 216), (64, 64), (60, 90), (100, 130)])
def test_small_and_odd_sizes_are_finite(raft, height, width):
    frames = _smooth_frames(2, height, width, seed=5)
    flows_f, flows_b = bidirectional_flows(raft, frames, iters=2)
    assert flows_f.shape == flows_b.shape == (1, 2, height, width)
    assert torch.isfinite(flows_f).all() and torch.isfinite(flows_b).all()


def test_padding_only_when_needed():
    assert not _Padding.for_size(144, 256).needed
    assert not _Padding.for_size(240, 432).needed
    pad = _Padding.for_size(120, 216)
    assert pad.top + pad.bottom == 8 and pad.left + pad.right == 0
    pad = _Padding.for_size(60, 90)
    assert (pad.top + pad.bottom, pad.left + pad.right) == (68, 38)
    flow = torch.arange(2 * 128 * 128, dtype=torch.float32).view(1, 2, 128, 128)
    assert pad.crop(flow).shape == (1, 2, 60, 90)


def test_autocast_bfloat16_runs(raft):
    frames = _smooth_frames(2, 128, 128, seed=6)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        flow = raft(frames[:1], frames[1:], iters=1)
        flows_f, _ = bidirectional_flows(raft, frames, iters=1, corr="local")
    assert flow.dtype == torch.float32 and flows_f.dtype == torch.float32
    assert torch.isfinite(flow).all() and torch.isfinite(flows_f).all()


def test_rejects_bad_input(raft):
    with pytest.raises(ValueError):
        bidirectional_flows(raft, torch.zeros(1, 3, 128, 128))
    with pytest.raises(ValueError):
        bidirectional_flows(raft, torch.zeros(2, 1, 128, 128))


def test_encoders_skip_their_initialisation_on_the_meta_device(monkeypatch):
    """Built on the meta device (as the checkpoint loaders do) RAFT's encoders skip their own weight
    initialisation, which the checkpoint overwrites anyway; built on the CPU they still run it."""
    import torch.nn as nn

    calls = []
    real = nn.init.kaiming_normal_
    monkeypatch.setattr(nn.init, "kaiming_normal_", lambda w, **kw: (calls.append(w.device.type), real(w, **kw))[1])
    with torch.device("meta"):
        RAFT()
    assert calls == []
    RAFT()
    assert calls and set(calls) == {"cpu"}
