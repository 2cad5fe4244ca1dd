"""Non-learned flow-guided propagation: parity with the reference and the point-tracking variant."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from propainter_wire.pipeline.propagation import propagate_images
from propainter_wire.pipeline.tracks import propagate_tracks, sample_points

TOL = 1e-3


def _masked_input(parity):
    frames = torch.from_numpy(parity["frames"]).permute(0, 3, 1, 2).float() / 255.0 * 2.0 - 1.0  # (T, 3, H, W)
    masks = torch.from_numpy(parity["masks_dilated"] > 0).float()[:, None]  # (T, 1, H, W)
    return frames * (1 - masks), masks


@pytest.mark.parametrize("flows, image, mask", [
    (("synth_flow_f", "synth_flow_b"), "synth_prop_img", "synth_prop_mask"),
    (("completed_flow_f", "completed_flow_b"), "prop_img", "prop_mask"),
])
def test_reference_parity(parity, flows, image, mask):
    masked, masks = _masked_input(parity)
    flows_f, flows_b = (torch.from_numpy(parity[k]) for k in flows)
    out, out_masks = propagate_images(masked, flows_f, flows_b, masks, interpolation="nearest")
    assert out.shape == masked.shape and out_masks.shape == masks.shape
    assert (out - torch.from_numpy(parity[image])).abs().max().item() <= TOL
    np.testing.assert_array_equal(out_masks.numpy().astype(np.uint8), parity[mask])


def _shift_clip(t_len=5, h=12, w=16, dx=1):
    rng = np.random.default_rng(0)
    canvas = rng.random((h, w + dx * t_len)).astype(np.float32)
    frames = np.stack([canvas[:, t * dx:t * dx + w] for t in range(t_len)])  # content moves left by dx
    return frames


def test_integer_translation_fills_exactly():
    frames = torch.from_numpy(_shift_clip())[:, None]  # (T, 1, H, W)
    t_len, _, h, w = frames.shape
    masks = torch.zeros(t_len, 1, h, w)
    masks[2, :, 4:8, 6:9] = 1  # hole in the middle frame only
    flows_f = torch.zeros(t_len - 1, 2, h, w)
    flows_f[:, 0] = -1.0  # frame t shows canvas[x + t]: pixel x of frame t sits at x - 1 in frame t+1
    flows_b = -flows_f
    out, out_masks = propagate_images(frames * (1 - masks), flows_f, flows_b, masks)
    assert torch.equal(out[2, :, 4:8, 6:9], frames[2, :, 4:8, 6:9])
    assert out_masks.sum() == 0
    assert torch.equal(out * (1 - masks), frames * (1 - masks))


def test_batched_matches_single_and_t1():
    g = torch.Generator().manual_seed(1)
    frames = torch.rand(2, 4, 3, 10, 12, generator=g)
    masks = (torch.rand(2, 4, 1, 10, 12, generator=g) > 0.7).float()
    flows_f = torch.randn(2, 3, 2, 10, 12, generator=g)
    flows_b = torch.randn(2, 3, 2, 10, 12, generator=g)
    out, out_m = propagate_images(frames, flows_f, flows_b, masks)
    for b in range(2):
        o, m = propagate_images(frames[b], flows_f[b], flows_b[b], masks[b])
        assert torch.equal(out[b], o) and torch.equal(out_m[b], m)
    single, single_m = propagate_images(frames[0, :1], flows_f[0, :0], flows_b[0, :0], masks[0, :1])
    assert torch.equal(single, frames[0, :1]) and torch.equal(single_m, masks[0, :1])
    with pytest.raises(ValueError):
        propagate_images(frames[0], flows_f[0, :2], flows_b[0], masks[0])


def test_sample_points_bilinear():
    img = np.arange(12, dtype=np.float32).reshape(1, 3, 4, 1)  # value = 4y + x
    got = sample_points(img, np.zeros(3, int), np.array([0.5, 3.0, 9.0]), np.array([1.25, 2.0, -3.0]))
    np.testing.assert_allclose(got[:, 0], [5.5, 11.0, 3.0], atol=1e-6)


def test_tracks_follow_subpixel_translation():
    # a linear ramp moves 0.5 px right per frame; bilinear sampling of a ramp is exact
    t_len, h, w = 6, 10, 20
    xs = np.arange(w, dtype=np.float32)
    frames = np.stack([np.broadcast_to(0.05 * (xs - 0.5 * t), (h, w)) for t in range(t_len)])[..., None]
    frames = np.repeat(frames, 3, -1).copy()
    unknown = np.zeros((t_len, h, w), bool)
    unknown[2, 3:7, 8:12] = True
    unknown[3, 3:7, 9:13] = True
    flows_f = np.zeros((t_len - 1, h, w, 2), np.float32)
    flows_f[..., 0] = 0.5
    flows_b = -flows_f
    res = propagate_tracks(frames, unknown, flows_f, flows_b)
    assert res.seen[unknown].all() and not res.seen[~unknown].any()
    np.testing.assert_allclose(res.colours[unknown], frames[unknown], atol=1e-5)
    assert res.hops[2, 5, 10] == 1


def test_propagate_tracks_spread_and_hop_power():
    # 3 frames, a pixel hidden in the middle frame; the previous frame shows 0.2 and the next one 0.8
    frames = np.zeros((3, 4, 4, 1), np.float32)
    frames[0], frames[2] = 0.2, 0.8
    unknown = np.zeros((3, 4, 4), bool)
    unknown[1, 1:3, 1:3] = True
    flows = np.zeros((2, 4, 4, 2), np.float32)
    got = propagate_tracks(frames, unknown, flows, flows, max_hops=2, alpha2=1.0)
    np.testing.assert_allclose(got.colours[1, 1:3, 1:3, 0], 0.5, atol=1e-6)  # equal distances: plain mean
    np.testing.assert_allclose(got.spread[1, 1:3, 1:3], 0.6, atol=1e-6)
    assert got.spread[unknown == 0].max() == 0
    unknown[2, 1:3, 1:3] = True  # now the forward source is 2 hops away: weights 1 vs 1/4 with hop_power 2
    frames = np.concatenate([frames, np.full((1, 4, 4, 1), 0.8, np.float32)])
    unknown = np.concatenate([unknown, np.zeros((1, 4, 4), bool)])
    flows = np.zeros((3, 4, 4, 2), np.float32)
    got = propagate_tracks(frames, unknown, flows, flows, max_hops=3, alpha2=1.0, hop_power=2.0)
    np.testing.assert_allclose(got.colours[1, 1:3, 1:3, 0], (0.2 + 0.8 / 4) / 1.25, atol=1e-6)
