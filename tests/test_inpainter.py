"""InpaintGenerator: checkpoint layout, parity with the reference window, robustness."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import manifest_section
from propainter_wire.models.inpainter import InpaintGenerator
from propainter_wire.models.transformer import SparseWindowAttention
from propainter_wire.testing import det_state_dict
from propainter_wire.weights import load_inpainter


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    """Run this file single-threaded (see ``conftest.one_thread``)."""


@pytest.fixture(scope="module")
def generator(tmp_path_factory) -> InpaintGenerator:
    """The generator loaded through the public loader with the parity kit's weights."""
    path = tmp_path_factory.mktemp("inpainter") / "ProPainter.pth"
    torch.save(det_state_dict(InpaintGenerator()), path)
    return load_inpainter(path)


def _window_inputs(b: int, t: int, n_local: int, height: int, width: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(b, t, 3, height, width, generator=g) * 2 - 1
    masks = torch.zeros(b, t, 1, height, width)
    masks[..., height // 3: height // 2, width // 4: width // 2] = 1.0
    updated = masks.clone()
    updated[:, 0] = 0.0  # as if image propagation filled frame 0
    flow_f = torch.randn(b, n_local - 1, 2, height, width, generator=g) * 2
    flow_b = -flow_f
    return frames * (1 - masks), flow_f, flow_b, masks, updated


def test_state_dict_matches_manifest():
    expected = manifest_section("ProPainter.pth")
    got = {k: (tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in InpaintGenerator().state_dict().items()}
    assert sorted(set(expected) - set(got)) == []
    assert sorted(set(got) - set(expected)) == []
    assert got == expected


def test_rolled_index_buffer_default():
    """A fresh module holds the reference's 148 rolled-key indices (a checkpoint may overwrite them)."""
    ind = SparseWindowAttention(512, 4, (5, 9)).valid_ind_rolled
    assert ind.shape == (148,) and ind.dtype == torch.int64
    keep = torch.zeros(4 * 45, dtype=torch.bool)
    keep[ind] = True
    # the quadrant of each rolled copy that overlaps the window itself is left out: 2x4 per copy
    assert int((~keep).sum()) == 32 and not keep[0] and keep[4]


def _naive_window_attention(attn: SparseWindowAttention, x: torch.Tensor, mask: torch.Tensor,
                            frames: slice) -> torch.Tensor:
    """Window by window with an explicit softmax: the reference semantics spelled out slowly."""
    b, t, h, w, c = x.shape
    wh, ww = attn.window_size
    eh, ew = attn.expand_size
    rows, cols = math.ceil(h / wh), math.ceil(w / ww)
    x = F.pad(x, (0, 0, 0, cols * ww - w, 0, rows * wh - h))
    mask = F.pad(mask, (0, 0, 0, cols * ww - w, 0, rows * wh - h))
    q, k, v = attn.query(x), attn.key(x), attn.value(x)
    shifts = ((-eh, -ew), (-eh, ew), (eh, -ew), (eh, ew))
    k_rolls = [torch.roll(k, s, dims=(2, 3)) for s in shifts]
    v_rolls = [torch.roll(v, s, dims=(2, 3)) for s in shifts]
    pooled = attn.pool_layer(x.reshape(b * t, rows * wh, cols * ww, c).permute(0, 3, 1, 2))
    pooled = pooled.flatten(2).transpose(1, 2).reshape(b, t, -1, c)
    k_pool, v_pool = attn.key(pooled), attn.value(pooled)
    heads = attn.n_head
    ch = c // heads

    def split(a: torch.Tensor) -> torch.Tensor:  # (t, n, c) -> (heads, t, n, ch)
        return a.reshape(a.shape[0], a.shape[1], heads, ch).permute(2, 0, 1, 3)

    out = torch.zeros_like(q)
    for bi in range(b):
        for wi in range(rows):
            for wj in range(cols):
                ys, xs = slice(wi * wh, (wi + 1) * wh), slice(wj * ww, (wj + 1) * ww)
                qw, kw, vw = (split(a[bi, :, ys, xs].reshape(t, wh * ww, c)) for a in (q, k, v))
                if mask[bi, :, ys, xs].sum() > 0:
                    ind = attn.valid_ind_rolled
                    kr = torch.cat([split(a[bi, :, ys, xs].reshape(t, -1, c)) for a in k_rolls], 2)[:, :, ind]
                    vr = torch.cat([split(a[bi, :, ys, xs].reshape(t, -1, c)) for a in v_rolls], 2)[:, :, ind]
                    keys = torch.cat([kw, kr, split(k_pool[bi])], 2)[:, frames].reshape(heads, -1, ch)
                    vals = torch.cat([vw, vr, split(v_pool[bi])], 2)[:, frames].reshape(heads, -1, ch)
                    weights = torch.softmax(qw.reshape(heads, -1, ch) @ keys.transpose(1, 2) / math.sqrt(ch), -1)
                    res = weights @ vals  # (heads, t*n, ch)
                else:  # frame by frame, own window
                    res = torch.softmax(qw @ kw.transpose(2, 3) / math.sqrt(ch), -1) @ vw  # (heads, t, n, ch)
                res = res.reshape(heads, t, wh, ww, ch).permute(1, 2, 3, 0, 4).reshape(t, wh, ww, c)
                out[bi, :, ys, xs] = res
    return attn.proj(out[:, :, :h, :w])


def test_window_attention_matches_naive():
    """Covers the real rolled-key indices (the parity weights zero that int64 buffer), padding and batches."""
    torch.manual_seed(0)
    attn = SparseWindowAttention(32, 4, (5, 9)).double()
    with torch.no_grad():
        attn.pool_layer.weight.normal_()
        attn.pool_layer.bias.normal_()
        x = torch.randn(2, 3, 7, 12, 32, dtype=torch.float64)  # padded to 10x18: 2x2 windows
        mask = torch.zeros(2, 2, 7, 12, 1, dtype=torch.float64)
        mask[0, 1, 3, 3] = 1.0  # one masked window in item 0
        mask[1, 0, 6, 10:] = 1.0  # a masked window that is mostly padding in item 1
        for frames in (slice(0, None, 2), slice(1, None, 2)):
            got = attn(x, mask, frames)
            want = _naive_window_attention(attn, x, mask, frames)
            assert got.shape == x.shape
            assert (got - want).abs().max().item() < 1e-10


def test_first_window_parity(parity, generator):
    def batch(key: str) -> torch.Tensor:
        return torch.from_numpy(parity[key]).float()[None]

    for key in ("window_masks_in", "window_masks_updated"):
        assert set(np.unique(parity[key]).tolist()) <= {0, 1}, f"{key} is not 0/1"
    n_local = int(parity["window_num_local"])
    assert n_local == 6
    with torch.no_grad():
        out = generator(batch("window_frames"), batch("window_flow_f"), batch("window_flow_b"),
                        batch("window_masks_in"), batch("window_masks_updated"), n_local)
    ref = torch.from_numpy(parity["window_out"])
    assert out.shape == (1, *ref.shape)
    diff = (out[0] - ref).abs()
    print(f"window parity: max |d| = {diff.max().item():.3e}, mean |d| = {diff.mean().item():.3e}")
    assert diff.max().item() <= 1e-3


def test_size_not_divisible_by_window(generator):
    """136x240 frames: a 34x60 feature map, a 12x20 token grid (padded to 15x27 for 5x9 windows)."""
    inputs = _window_inputs(1, 3, 2, 136, 240)
    with torch.no_grad():
        out = generator(*inputs, num_local_frames=2)
    assert out.shape == (1, 2, 3, 136, 240)
    assert torch.isfinite(out).all()
    assert out.abs().max() <= 1.0


def test_encode_then_forward_features_equals_forward(generator):
    frames, flow_f, flow_b, masks, updated = _window_inputs(1, 3, 2, 48, 64, seed=1)
    with torch.no_grad():
        whole = generator(frames, flow_f, flow_b, masks, updated, 2)
        feats = generator.encode(frames, masks, updated)
        split = generator.forward_features(feats, flow_f, flow_b, masks, updated, 2)
    assert feats.shape == (1, 3, 128, 12, 16)
    assert torch.equal(whole, split)


def test_batch_items_are_independent(generator):
    """Two clips in one batch give what each gives alone (window selection is per item)."""
    a = _window_inputs(1, 3, 2, 32, 48, seed=2)
    b = _window_inputs(1, 3, 2, 32, 48, seed=3)
    b[3].zero_()  # no mask at all in the second clip: only unmasked windows
    both = [torch.cat([x, y]) for x, y in zip(a, b, strict=True)]
    with torch.no_grad():
        joint = generator(*both, num_local_frames=2)
        alone = torch.cat([generator(*a, num_local_frames=2), generator(*b, num_local_frames=2)])
    assert (joint - alone).abs().max().item() <= 1e-5


def test_nonfinite_flow_does_not_crash(generator):
    frames, flow_f, flow_b, masks, updated = _window_inputs(1, 3, 3, 48, 64, seed=4)
    flow_f[0, 0, :, 10:20, 10:30] = float("nan")
    flow_b[0, 1, 0, :5] = float("inf")
    flow_b[0, 1, 1, 5:9] = float("-inf")
    with torch.no_grad():
        out = generator(frames, flow_f, flow_b, masks, updated, 3)
    assert out.shape == (1, 3, 3, 48, 64)
    assert torch.isfinite(out).all()


def test_rejects_bad_shapes(generator):
    frames, flow_f, flow_b, masks, updated = _window_inputs(1, 3, 2, 48, 64)
    with pytest.raises(ValueError):
        generator(frames, flow_f[:, :0], flow_b, masks, updated, 2)
    odd = _window_inputs(1, 2, 2, 50, 64)
    with pytest.raises(ValueError):
        generator(*odd, num_local_frames=2)
