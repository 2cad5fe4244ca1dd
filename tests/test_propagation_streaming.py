"""Bounded-memory image propagation: bit-identical to the all-pairs-up-front algorithm.

``_reference_propagation`` restates the original implementation (every consistency
map computed first in chunks of 16 pairs, then two full sweeps materialised as
separate tensors); ``propagate_images`` now checks one flow pair per sweep step
and streams slices to the compute device, and must give exactly the same bits.

There is a single per-step code path: ``device=None`` means "the inputs' device",
so ``device=None`` and ``device="cpu"`` with host inputs run the same streaming
loop (slice fetch, per-pair check, write-back into the output buffers), the
``.to`` moves being no-ops on CPU. Only the CUDA test exercises a real upload.
"""

from __future__ import annotations

import pytest
import torch

from propainter_wire.flow.warp import fb_consistency, flow_warp
from propainter_wire.pipeline.propagation import propagate_images


def _on(x: torch.Tensor) -> torch.Tensor:
    return (x > 0.1).to(x.dtype)


def _reference_sweep(frames, masks, flows, valid, order, offset, interpolation):
    new_frames, new_masks = torch.empty_like(frames), torch.empty_like(masks)
    last_frame = last_mask = None
    for i, t in enumerate(order):
        here_frame, here_mask = frames[:, t], masks[:, t]
        if i == 0:
            last_frame, last_mask = here_frame, here_mask
        else:
            flow, trust = flows[:, t + offset], valid[:, t + offset]
            pulled = flow_warp(last_frame, flow, interpolation)
            usable = trust * (1 - _on(flow_warp(last_mask, flow)))
            last_frame = torch.where(_on(here_mask * usable) > 0, pulled, here_frame)
            last_mask = _on(here_mask * (1 - usable))
        new_frames[:, t], new_masks[:, t] = last_frame, last_mask
    return new_frames, new_masks


def _reference_propagation(frames, flows_f, flows_b, masks, interpolation="nearest"):
    """The algorithm as it was before streaming (5-D input only)."""
    b, t, _, h, w = frames.shape
    masks, flows_f, flows_b = (x.to(frames.dtype) for x in (masks, flows_f, flows_b))

    def check(fa, fb):
        flat_a, flat_b = fa.reshape(-1, 2, h, w), fb.reshape(-1, 2, h, w)
        parts = [fb_consistency(flat_a[s:s + 16], flat_b[s:s + 16]) for s in range(0, flat_a.shape[0], 16)]
        return torch.cat(parts).view(b, t - 1, 1, h, w)

    if t > 1:
        ok_f, ok_b = check(flows_f, flows_b), check(flows_b, flows_f)
    else:
        ok_f = ok_b = flows_f.new_zeros(b, 0, 1, h, w)
    swept, swept_m = _reference_sweep(frames, masks, flows_f, ok_f, range(t - 1, -1, -1), 0, interpolation)
    return _reference_sweep(swept, swept_m, flows_b, ok_b, range(t), -1, interpolation)


def _clip(b, t, c=3, h=11, w=13, seed=0, scale=1.5, hole=0.6):
    """Random frames in [-1, 1], {0, 1} masks with holes, flows of which a good share fail the check."""
    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(b, t, c, h, w, generator=g) * 2 - 1
    masks = (torch.rand(b, t, 1, h, w, generator=g) < hole).float()
    masks[..., 3:8, 4:9] = 1.0  # a solid hole as well
    flows_f = torch.randn(b, max(t - 1, 0), 2, h, w, generator=g) * scale
    # the reverse flow is consistent for a smooth part, noise elsewhere
    flows_b = -flows_f + torch.randn(flows_f.shape, generator=g) * (torch.rand(flows_f.shape, generator=g) > 0.5)
    flows_f[..., :2, :] = torch.round(flows_f[..., :2, :])  # integer flows: exact hits and nearest-rounding ties
    flows_b[..., :2, :] = -flows_f[..., :2, :] + 0.5
    return frames, flows_f, flows_b, masks


def _assert_same(got, want):
    assert got[0].dtype == want[0].dtype and got[1].dtype == want[1].dtype
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


@pytest.mark.parametrize("device", [None, "cpu", torch.device("cpu")])
@pytest.mark.parametrize("b, t", [(1, 1), (1, 2), (1, 3), (2, 5), (3, 18)])
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_bit_identical_to_reference(b, t, interpolation, device):
    frames, flows_f, flows_b, masks = _clip(b, t, seed=b * 100 + t)
    want = _reference_propagation(frames, flows_f, flows_b, masks, interpolation)
    got = propagate_images(frames, flows_f, flows_b, masks, interpolation=interpolation, device=device)
    _assert_same(got, want)
    # some pixels were filled, some stayed unknown: the check was really exercised
    if t > 1:
        assert 0 < got[1].sum() < masks.sum()


@pytest.mark.parametrize("device", [None, "cpu"])
def test_unbatched_matches_batched_reference(device):
    frames, flows_f, flows_b, masks = _clip(1, 6, seed=7)
    want = _reference_propagation(frames, flows_f, flows_b, masks)
    got = propagate_images(frames[0], flows_f[0], flows_b[0], masks[0], device=device)
    assert got[0].shape == frames[0].shape and got[1].shape == masks[0].shape
    _assert_same(got, (want[0][0], want[1][0]))


def test_mixed_dtypes_soft_masks_and_views():
    """Bool/float64 inputs, non-binary masks and non-contiguous views convert per slice exactly as before."""
    frames, flows_f, flows_b, masks = _clip(2, 4, seed=3)
    soft = masks * torch.linspace(0.05, 1.0, masks.shape[-1])  # raw values survive in the first swept frame
    f64_f, f64_b = flows_f.double(), flows_b.double()
    for m in (masks.bool(), soft):
        want = _reference_propagation(frames, f64_f, f64_b, m)
        for device in (None, "cpu"):
            _assert_same(propagate_images(frames, f64_f, f64_b, m, device=device), want)
    wide = torch.stack((frames, torch.zeros_like(frames)), -1)[..., 0]  # strided view with the values of ``frames``
    assert not wide.is_contiguous()
    _assert_same(propagate_images(wide, flows_f, flows_b, masks, device="cpu"),
                 _reference_propagation(frames, flows_f, flows_b, masks))


def test_inputs_untouched_and_outputs_on_input_device():
    frames, flows_f, flows_b, masks = _clip(1, 5, seed=11)
    before = [x.clone() for x in (frames, flows_f, flows_b, masks)]
    out, out_m = propagate_images(frames, flows_f, flows_b, masks, device="cpu")
    for x, y in zip(before, (frames, flows_f, flows_b, masks), strict=True):
        assert torch.equal(x, y)
    assert out.device == frames.device and out_m.device == frames.device
    assert out.data_ptr() != frames.data_ptr()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA to stream host inputs to a GPU")
def test_cuda_streaming_from_host_matches_cuda_resident():
    frames, flows_f, flows_b, masks = _clip(2, 6, seed=5)
    got = propagate_images(frames, flows_f, flows_b, masks, device="cuda")
    assert got[0].device.type == "cpu"
    resident = propagate_images(*(x.cuda() for x in (frames, flows_f, flows_b, masks)))
    _assert_same(got, tuple(x.cpu() for x in resident))
