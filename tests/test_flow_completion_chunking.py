"""RecurrentFlowCompleteNet.frames_per_chunk: chunked runs must equal the whole-clip run."""

from __future__ import annotations

import pytest
import torch

from propainter_wire.models.flow_completion import RecurrentFlowCompleteNet
from propainter_wire.testing import det_state_dict

H, W = 16, 24  # smallest sizes the 1/8-scale recurrence accepts comfortably


@pytest.fixture(scope="module")
def net() -> RecurrentFlowCompleteNet:
    model = RecurrentFlowCompleteNet().eval()
    model.load_state_dict(det_state_dict(model))
    return model


def _clip(b: int, n_flows: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    flows_f = 4 * torch.randn(b, n_flows, 2, H, W, generator=gen)  # pixels
    flows_b = 4 * torch.randn(b, n_flows, 2, H, W, generator=gen)
    masks = (torch.rand(b, n_flows + 1, 1, H, W, generator=gen) > 0.6).float()  # 1 = unknown
    return flows_f, flows_b, masks


def _run(net: RecurrentFlowCompleteNet, chunk: int | None, fn, *args):
    """``fn(*args)`` with ``frames_per_chunk = chunk``; also returns the stitched encoder features.

    The features (what the recurrence receives, (B, L, 128, H/8, W/8) per call of
    ``forward``) are checked too: the recurrence and decoders damp a halo error in
    the output to ~1e-6 of its scale with these weights, while the features show it
    at ~5e-4.
    """
    features: list[torch.Tensor] = []
    hook = net.feat_prop_module.register_forward_hook(lambda mod, inputs, out: features.append(inputs[0]))
    net.frames_per_chunk = chunk
    try:
        with torch.no_grad():
            return fn(*args), features
    finally:
        net.frames_per_chunk = None
        hook.remove()


def _assert_same(ours: torch.Tensor, ref: torch.Tensor) -> None:
    # the stand-in weights give small flows: tolerance relative to their scale (diffs are ~1e-6 of it)
    scale = ref.abs().max().item()
    assert scale > 0
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5 * scale)


def test_halo_is_derived_from_the_temporal_convs(net):
    assert net.temporal_halo == 8  # 4 P3D blocks x a (3, 1, 1) conv dilated by 2
    wider = RecurrentFlowCompleteNet()
    temporal = wider.encoder2[0].conv2[0]
    temporal.dilation, temporal.padding = (3, 1, 1), (3, 0, 0)
    assert wider.temporal_halo == 9
    temporal.padding = (1, 0, 0)  # would shrink T: chunking refuses rather than mis-stitch
    with pytest.raises(ValueError, match="frame count"):
        _ = wider.temporal_halo


@pytest.mark.parametrize(("b", "n_flows", "chunk"), [
    (1, 11, 1),
    (1, 11, 4),    # does not divide L
    (1, 11, 11),   # chunk == L
    (1, 11, 50),   # chunk > L
    (1, 5, 2),     # L shorter than the halo
    (2, 7, 3),     # batch of two, chunks cross the batch boundary in the decoder
])
def test_forward_chunked_equals_whole(net, b, n_flows, chunk):
    flows_f, _, masks = _clip(b, n_flows, seed=n_flows + chunk)
    mask_f = masks[:, :-1]
    masked = flows_f * (1 - mask_f)
    ref, ref_feats = _run(net, None, net.forward, masked, mask_f)
    ours, feats = _run(net, chunk, net.forward, masked, mask_f)
    assert ours.shape == (b, n_flows, 2, H, W)
    _assert_same(ours, ref)
    _assert_same(feats[0], ref_feats[0])


@pytest.mark.parametrize(("b", "chunk"), [(1, 1), (1, 3), (2, 4)])
def test_forward_bidirect_flow_chunked_equals_whole(net, b, chunk):
    flows_f, flows_b, masks = _clip(b, 9, seed=10 + chunk)
    ref, ref_feats = _run(net, None, net.forward_bidirect_flow, flows_f, flows_b, masks)
    ours, feats = _run(net, chunk, net.forward_bidirect_flow, flows_f, flows_b, masks)
    for d in range(2):
        _assert_same(ours[d], ref[d])
        _assert_same(feats[d], ref_feats[d])


def test_too_small_halo_is_detected(net, monkeypatch):
    """The feature check is sharp enough to catch a halo one frame short."""
    flows_f, _, masks = _clip(1, 11, seed=3)
    mask_f = masks[:, :-1]
    _, ref_feats = _run(net, None, net.forward, flows_f * (1 - mask_f), mask_f)
    monkeypatch.setattr(RecurrentFlowCompleteNet, "temporal_halo", property(lambda self: 7))
    _, short_feats = _run(net, 4, net.forward, flows_f * (1 - mask_f), mask_f)
    with pytest.raises(AssertionError):
        _assert_same(short_feats[0], ref_feats[0])


@pytest.mark.parametrize("bad", [0, -2, 2.5, True])
def test_rejects_bad_chunk(net, bad):
    flows_f, _, masks = _clip(1, 3, seed=0)
    with pytest.raises(ValueError, match="frames_per_chunk"):
        _run(net, bad, net.forward, flows_f, masks[:, :-1])


def test_frames_for_budget():
    pick = RecurrentFlowCompleteNet.frames_for_budget
    gib = 1 << 30
    at_720p = pick(720, 1280, 2 * gib, torch.float16)
    assert 1 <= at_720p < 90
    assert pick(720, 1280, 8 * gib, torch.float16) > at_720p  # more memory, bigger chunks
    assert pick(720, 1280, 2 * gib, torch.float32) < at_720p  # wider values, smaller chunks
    assert pick(360, 640, 2 * gib, torch.float16) > at_720p
    assert pick(720, 1280, 8 * gib, torch.float16, num_flows=90) < pick(720, 1280, 8 * gib, torch.float16)
    assert pick(720, 1280, 1, torch.float16) == 1  # never below one frame
