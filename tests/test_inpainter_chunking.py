"""Chunked generator passes (frames and attention windows) compute what the one-go pass computes."""

from __future__ import annotations

import pytest
import torch

from propainter_wire.models import transformer as transformer_module
from propainter_wire.models.inpainter import InpaintGenerator, chunk_sizes_for_budget
from propainter_wire.models.transformer import (
    FusionFeedForward,
    SoftComp,
    SoftSplit,
    SparseWindowAttention,
    chunked,
)
from propainter_wire.testing import det_state_dict

PATCH = {"kernel_size": (7, 7), "stride": (3, 3), "padding": (3, 3)}
# float64 throughout: chunking may only change the order of float summation
TIGHT = {"rtol": 1e-10, "atol": 1e-10}


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    """Run this file single-threaded (see ``conftest.one_thread``)."""


@pytest.fixture(scope="module")
def generator() -> InpaintGenerator:
    """float64 generator with the parity kit's deterministic weights.

    The real rolled-key indices are kept (the deterministic fill zeroes that int64
    buffer), so the attention gathers distinct neighbours.
    """
    net = InpaintGenerator()
    weights = {k: v for k, v in det_state_dict(net).items() if not k.endswith("valid_ind_rolled")}
    missing, unexpected = net.load_state_dict(weights, strict=False)
    assert unexpected == [] and all(k.endswith("valid_ind_rolled") for k in missing)
    return net.double().eval()


def _inputs(t: int = 5, n_local: int = 3, height: int = 48, width: int = 240, seed: int = 0):
    """Two clips; 48x240 frames give a 12x60 feature map, a 4x20 token grid, 1x3 windows of 5x9 tokens.

    Clip 0 is masked in the left window only, clip 1 (by a thin vertical stripe) in
    the right one: 2 masked and 4 unmasked windows.
    """
    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(2, t, 3, height, width, generator=g, dtype=torch.float64) * 2 - 1
    masks = torch.zeros(2, t, 1, height, width, dtype=torch.float64)
    masks[0, :, :, 8:36, 16:72] = 1.0
    masks[1, 1:, :, 16:44, 220:236] = 1.0  # not in local frame 0
    updated = masks.clone()
    updated[:, 0] = 0.0  # as if image propagation filled frame 0
    flow_f = torch.randn(2, n_local - 1, 2, height, width, generator=g, dtype=torch.float64) * 2
    return frames * (1 - masks), flow_f, -flow_f, masks, updated


@pytest.fixture(scope="module")
def window_inputs():
    return _inputs()


@pytest.fixture(scope="module")
def unchunked(generator, window_inputs):
    """Encoder features and output of the one-go pass."""
    generator.set_chunking(None, None)
    frames, flow_f, flow_b, masks, updated = window_inputs
    with torch.no_grad():
        feats = generator.encode(frames, masks, updated)
        out = generator.forward_features(feats, flow_f, flow_b, masks, updated, 3)
    return feats, out


def test_chunked_helper():
    x, y = torch.randn(7, 3, dtype=torch.float64), torch.randn(7, 3, dtype=torch.float64)

    def fn(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a * b).sum(1, keepdim=True).expand(-1, 2) + 1

    want = fn(x, y)
    for chunk in (None, 1, 3, 7, 50):
        torch.testing.assert_close(chunked(fn, x, y, chunk=chunk), want, rtol=0, atol=0)
    with pytest.raises(ValueError):
        chunked(fn, x, y, chunk=0)


@pytest.mark.parametrize("chunk", [1, 2, 5, 8])
def test_per_frame_modules(chunk):
    """SoftSplit, FusionFeedForward and SoftComp over 5 frames (B=1, T=5) of a 13x20 map."""
    torch.manual_seed(0)
    split = SoftSplit(16, 32, **PATCH).double()
    comp = SoftComp(16, 32, **PATCH).double()
    ffn = FusionFeedForward(32, **PATCH, width=98).double()  # 98 = 2 channels of a 7x7 patch
    feat = torch.randn(5, 16, 13, 20, dtype=torch.float64)
    with torch.no_grad():
        tokens = split(feat, 1, (13, 20))
        assert tokens.shape == (1, 5, 5, 7, 32)
        torch.testing.assert_close(split(feat, 1, (13, 20), frames_per_chunk=chunk), tokens, **TIGHT)
        flat = tokens.reshape(1, -1, 32)
        torch.testing.assert_close(ffn(flat, (13, 20), frames_per_chunk=chunk), ffn(flat, (13, 20)), **TIGHT)
        torch.testing.assert_close(comp(tokens, (13, 20), frames_per_chunk=chunk), comp(tokens, (13, 20)), **TIGHT)


@pytest.mark.parametrize("windows", [1, 2, 5, 100])
def test_window_attention_chunks(windows):
    """Window chunks over 2 clips of 3x3 windows, masked and unmasked ones mixed, both key-frame slices."""
    torch.manual_seed(0)
    attn = SparseWindowAttention(32, 4, (5, 9)).double()
    with torch.no_grad():
        attn.pool_layer.weight.normal_()
        attn.pool_layer.bias.normal_()
        x = torch.randn(2, 4, 13, 25, 32, dtype=torch.float64)  # padded to 15x27: 3x3 windows
        mask = torch.zeros(2, 3, 13, 25, 1, dtype=torch.float64)
        mask[0, 1, 2, 3] = 1.0  # window (0, 0)
        mask[0, 2, 7, 20] = 1.0  # window (1, 2)
        mask[1, 0, 12, 24] = 1.0  # window (2, 2), mostly padding
        for frames in (slice(0, None, 2), slice(1, None, 2), slice(None)):
            torch.testing.assert_close(attn(x, mask, frames, windows_per_chunk=windows), attn(x, mask, frames),
                                       **TIGHT)


@pytest.mark.parametrize(("frames", "windows"), [(1, 1), (4, 3), (10, 12)])
def test_forward_features_chunked_equals_unchunked(generator, window_inputs, unchunked, frames, windows):
    """B=2, T=5 (3 local), 2 masked + 4 unmasked windows: chunks of 1, of a size dividing
    neither B*T = 10, B*Tl = 6 nor the 4 unmasked windows, and of at least everything."""
    feats, want = unchunked
    _, flow_f, flow_b, masks, updated = window_inputs
    assert want.shape == (2, 3, 3, 48, 240)
    assert want.std() > 0.01 and (want.abs() < 0.99).float().mean() > 0.5  # not saturated by tanh
    generator.set_chunking(frames=frames, windows=windows)
    try:
        with torch.no_grad():
            got = generator.forward_features(feats, flow_f, flow_b, masks, updated, 3)
    finally:
        generator.set_chunking(None, None)
    torch.testing.assert_close(got, want, **TIGHT)


def test_forward_applies_the_chunks(generator, window_inputs, unchunked, monkeypatch):
    """``forward`` (encoder included) with chunks: same output, and every stage sees chunks of the set size."""
    seen: dict[str, set[int]] = {}

    def record(name: str, rows: int) -> None:
        seen.setdefault(name, set()).add(rows)

    hooks = [module.register_forward_pre_hook(lambda m, args, name=name: record(name, args[0].size(0)))
             for name, module in [("encoder", generator.encoder), ("decoder", generator.decoder),
                                  ("fuse", generator.feat_prop_module.fuse)]]

    def recorded(name: str, method):  # the per-chunk methods of SoftSplit, SoftComp and the feed-forwards
        def wrapper(x, *args):
            record(name, x.size(0))
            return method(x, *args)
        return wrapper

    monkeypatch.setattr(generator.ss, "_embed", recorded("ss", generator.ss._embed))
    monkeypatch.setattr(generator.sc, "_compose", recorded("sc", generator.sc._compose))
    for i, block in enumerate(generator.transformers.transformer):
        monkeypatch.setattr(block.mlp, "_mix", recorded(f"ffn{i}", block.mlp._mix))
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def counting_sdpa(q, k, v, *args, **kwargs):
        record("windows", q.size(0))
        return sdpa(q, k, v, *args, **kwargs)

    monkeypatch.setattr(transformer_module.F, "scaled_dot_product_attention", counting_sdpa)
    generator.set_chunking(frames=3, windows=2)
    try:
        with torch.no_grad():
            got = generator(*window_inputs, num_local_frames=3)
    finally:
        generator.set_chunking(None, None)
        for hook in hooks:
            hook.remove()
    torch.testing.assert_close(got, unchunked[1], **TIGHT)
    assert seen.pop("windows") == {2}  # 2 masked windows, then 4 unmasked in 2 chunks
    # B*T = 10 frames through encoder, SoftSplit and feed-forwards (3+3+3+1), B*Tl = 6 through the others
    assert {name: max(sizes) for name, sizes in seen.items()} == dict.fromkeys(seen, 3)
    assert seen["encoder"] == seen["ss"] == seen["ffn0"] == {3, 1} and seen["decoder"] == {3}


def test_set_chunking_validates_and_keeps_state_dict():
    net = InpaintGenerator()
    keys = list(net.state_dict())
    assert (net.frames_per_chunk, net.windows_per_chunk) == (None, None)
    assert net.set_chunking(frames=3, windows=7) is net
    assert (net.frames_per_chunk, net.windows_per_chunk) == (3, 7)
    assert list(net.state_dict()) == keys
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError):
            net.set_chunking(frames=bad)
        with pytest.raises(ValueError):
            net.set_chunking(windows=bad)
    net.set_chunking()
    assert (net.frames_per_chunk, net.windows_per_chunk) == (None, None)


def test_chunk_sizes_for_budget():
    gib = 1 << 30
    frames, windows = chunk_sizes_for_budget(gib, (720, 1280), 34)
    # 720p: ~236 MB per frame (decoder), ~125 MB per masked window of 34 frames, at 2 bytes an element
    assert (frames, windows) == (4, 8 + 4)
    assert chunk_sizes_for_budget(2 * gib, (720, 1280), 34) == (9, 24)
    assert chunk_sizes_for_budget(gib, (720, 1280), 34, element_size=4) == (2, 6)
    assert chunk_sizes_for_budget(1, (720, 1280), 34) == (1, 1)
    fewer = chunk_sizes_for_budget(gib, (720, 1280), 18)
    assert fewer[0] == frames and fewer[1] > windows  # a window's keys scale with T, a frame's work does not
    with pytest.raises(ValueError):
        chunk_sizes_for_budget(0, (720, 1280), 34)
