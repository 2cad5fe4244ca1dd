"""RecurrentFlowCompleteNet: checkpoint layout, parity with the reference run, robustness."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from torchvision.ops import deform_conv2d

from conftest import manifest_section
from propainter_wire.models.flow_completion import RecurrentFlowCompleteNet
from propainter_wire.models.flow_completion_blocks import ModulatedDeformConv2d
from propainter_wire.testing import det_state_dict
from propainter_wire.weights import load_flow_completion


def _random_inputs(b: int, n_flows: int, h: int, w: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    flows_f = 4 * torch.randn(b, n_flows, 2, h, w, generator=gen)
    flows_b = 4 * torch.randn(b, n_flows, 2, h, w, generator=gen)
    masks = (torch.rand(b, n_flows + 1, 1, h, w, generator=gen) > 0.6).float()
    return flows_f, flows_b, masks


@pytest.fixture(scope="module")
def det_net(tmp_path_factory) -> RecurrentFlowCompleteNet:
    """The network with the parity kit's deterministic weights, loaded through the checkpoint path."""
    path = tmp_path_factory.mktemp("flowcomp") / "recurrent_flow_completion.pth"
    torch.save(det_state_dict(RecurrentFlowCompleteNet()), path)
    return load_flow_completion(path)


def test_state_dict_matches_manifest():
    expected = manifest_section("recurrent_flow_completion.pth")
    state = RecurrentFlowCompleteNet().state_dict()
    assert list(state) == list(expected)  # same keys, in the checkpoint's order
    for key, (shape, dtype) in expected.items():
        assert tuple(state[key].shape) == shape, key
        assert str(state[key].dtype).removeprefix("torch.") == dtype, key
    assert len(state) == 74
    assert sum(v.numel() for v in state.values()) == 5079555


def test_parity_with_reference(parity, det_net):
    flows_f = torch.from_numpy(parity["raft_flow_f"])[None]  # (1, T-1, 2, H, W) pixels
    flows_b = torch.from_numpy(parity["raft_flow_b"])[None]
    raw = parity["flow_masks"]  # (T, H, W) uint8, already dilated
    assert set(raw.flatten().tolist()) <= {0, 1}
    masks = torch.from_numpy(raw).float()[None, :, None]  # (1, T, 1, H, W) {0, 1}

    with torch.no_grad():
        pred_f, pred_b = det_net.forward_bidirect_flow(flows_f, flows_b, masks)
        comp_f, comp_b = det_net.combine_flow(flows_f, flows_b, pred_f, pred_b, masks)

    report = {}
    for name, ours in (("flowcomp_pred_f", pred_f), ("flowcomp_pred_b", pred_b),
                       ("completed_flow_f", comp_f), ("completed_flow_b", comp_b)):
        ref = torch.from_numpy(parity[name])
        assert ours.shape == (1, *ref.shape), name
        err = (ours[0] - ref).abs().max().item()
        report[name] = err
        assert err <= 1e-3, f"{name}: max |diff| {err:.3g}"
        # the predictions are small with stand-in weights: also bound the error relative to their scale
        assert err <= 1e-3 * ref.abs().max().item(), f"{name}: max |diff| {err:.3g} vs scale"
    print("flow completion parity max |diff|:", report)


def test_short_clip_single_flow(det_net):
    flows_f, flows_b, masks = _random_inputs(1, 1, 16, 24)
    with torch.no_grad():
        pred_f, pred_b = det_net.forward_bidirect_flow(flows_f, flows_b, masks)
        comp_f, comp_b = det_net.combine_flow(flows_f, flows_b, pred_f, pred_b, masks)
    for t in (pred_f, pred_b, comp_f, comp_b):
        assert t.shape == (1, 1, 2, 16, 24)
        assert torch.isfinite(t).all()
    keep_f = masks[:, :-1].expand_as(flows_f) == 0
    keep_b = masks[:, 1:].expand_as(flows_b) == 0
    assert torch.equal(comp_f[keep_f], flows_f[keep_f])
    assert torch.equal(comp_b[keep_b], flows_b[keep_b])


def test_combine_flow_uses_frame_i_mask_forward_and_frame_i_plus_1_backward():
    net = RecurrentFlowCompleteNet()
    h, w = 8, 8
    flows_f = torch.full((1, 2, 2, h, w), 1.0)
    flows_b = torch.full((1, 2, 2, h, w), 2.0)
    pred_f = torch.full_like(flows_f, -1.0)
    pred_b = torch.full_like(flows_b, -2.0)
    masks = torch.zeros(1, 3, 1, h, w)
    masks[:, 0, :, :4] = 1  # top half of frame 0
    masks[:, 2, :, 4:] = 1  # bottom half of frame 2
    out_f, out_b = net.combine_flow(flows_f, flows_b, pred_f, pred_b, masks)
    assert (out_f[0, 0, :, :4] == -1).all() and (out_f[0, 0, :, 4:] == 1).all()
    assert (out_f[0, 1] == 1).all()  # frame 1's mask is empty
    assert (out_b[0, 0] == 2).all()
    assert (out_b[0, 1, :, 4:] == -2).all() and (out_b[0, 1, :, :4] == 2).all()


def test_input_masking_and_batch_independence(det_net):
    flows_f, flows_b, masks = _random_inputs(2, 3, 16, 16, seed=1)
    with torch.no_grad():
        batched = det_net.forward_bidirect_flow(flows_f, flows_b, masks)
        singles = [det_net.forward_bidirect_flow(flows_f[i:i + 1], flows_b[i:i + 1], masks[i:i + 1])
                   for i in range(2)]
        # flow values under the mask are discarded before the network sees them
        noisy_f = torch.where(masks[:, :-1] > 0, torch.full_like(flows_f, 1e3), flows_f)
        noisy_b = torch.where(masks[:, 1:] > 0, torch.full_like(flows_b, -1e3), flows_b)
        noisy = det_net.forward_bidirect_flow(noisy_f, noisy_b, masks)
    for d in range(2):
        torch.testing.assert_close(batched[d], torch.cat([s[d] for s in singles]), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(noisy[d], batched[d], rtol=0, atol=0)


def test_backward_direction_runs_on_reversed_time(det_net):
    """Completing backward flows equals completing the time-reversed clip's forward flows."""
    flows_f, flows_b, masks = _random_inputs(1, 3, 16, 16, seed=2)
    with torch.no_grad():
        _, pred_b = det_net.forward_bidirect_flow(flows_f, flows_b, masks)
        rev_f, _ = det_net.forward_bidirect_flow(flows_b.flip(1), flows_f.flip(1), masks.flip(1))
    torch.testing.assert_close(pred_b, rev_f.flip(1), rtol=0, atol=0)


def test_nan_and_inf_inputs_do_not_crash():
    """NaN flows must not reach deform_conv2d offsets (the CPU kernel segfaults): run in a subprocess."""
    script = textwrap.dedent("""
        import torch
        from propainter_wire.models.flow_completion import RecurrentFlowCompleteNet
        from propainter_wire.models.flow_completion_blocks import ModulatedDeformConv2d
        torch.manual_seed(0)
        net = RecurrentFlowCompleteNet().eval()
        for p in net.parameters():
            torch.nn.init.normal_(p, std=0.05)
        f = torch.randn(1, 2, 2, 16, 16)
        b = torch.randn(1, 2, 2, 16, 16)
        m = torch.zeros(1, 3, 1, 16, 16)
        f[0, 0, 0, 3, 3] = float("nan")
        b[0, 1, 1, 7, 7] = float("inf")
        with torch.no_grad():
            pf, pb = net.forward_bidirect_flow(f, b, m)
            cf, cb = net.combine_flow(f, b, pf, pb, m)
        assert pf.shape == pb.shape == cf.shape == cb.shape == (1, 2, 2, 16, 16)
        conv = ModulatedDeformConv2d(4, 4, 3, padding=1)
        off = torch.full((1, 18, 8, 8), float("nan"))
        y = conv.deform(torch.randn(1, 4, 8, 8), off, torch.rand(1, 9, 8, 8))
        assert torch.isfinite(y).all()
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"rc={proc.returncode} (crash?) stderr: {proc.stderr[-2000:]}"
    assert proc.stdout.strip().endswith("ok")


def test_nan_to_num_leaves_finite_offsets_alone():
    conv = ModulatedDeformConv2d(4, 4, 3, padding=1)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(1, 4, 8, 8, generator=gen)
    off = 3 * torch.randn(1, 18, 8, 8, generator=gen)
    mask = torch.rand(1, 9, 8, 8, generator=gen)
    expected = deform_conv2d(x, off, conv.weight, conv.bias, padding=1, mask=mask)
    # (on the CPU the sampled implementation runs: equal up to float summation order)
    torch.testing.assert_close(conv.deform(x, off, mask), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_runs_under_cpu_autocast(det_net, dtype):
    flows_f, flows_b, masks = _random_inputs(1, 2, 16, 16, seed=4)
    with torch.no_grad():
        ref = det_net.forward_bidirect_flow(flows_f, flows_b, masks)
        with torch.autocast("cpu", dtype=dtype):
            low = det_net.forward_bidirect_flow(flows_f, flows_b, masks)
            comp = det_net.combine_flow(flows_f, flows_b, *low, masks)
    for d in range(2):
        assert low[d].shape == ref[d].shape and comp[d].shape == ref[d].shape
        assert torch.isfinite(low[d]).all()
        scale = ref[d].abs().max().item()
        assert (low[d].float() - ref[d]).abs().max().item() <= 0.05 * scale + 1e-4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_runs_under_cuda_autocast(det_net, dtype):
    net = RecurrentFlowCompleteNet().cuda().eval()
    net.load_state_dict(det_net.state_dict())
    flows_f, flows_b, masks = (t.cuda() for t in _random_inputs(1, 2, 16, 16, seed=5))
    with torch.no_grad(), torch.autocast("cuda", dtype=dtype):
        pred = net.forward_bidirect_flow(flows_f, flows_b, masks)
        comp = net.combine_flow(flows_f, flows_b, *pred, masks)
    assert all(torch.isfinite(t).all() for t in (*pred, *comp))


def test_rejects_bad_shapes():
    net = RecurrentFlowCompleteNet()
    flows_f, flows_b, masks = _random_inputs(1, 2, 16, 16)
    with pytest.raises(ValueError, match="masks"):
        net.forward_bidirect_flow(flows_f, flows_b, masks[:, :-1])
    with pytest.raises(ValueError, match="divisible by 8"):
        f, b, m = _random_inputs(1, 1, 12, 16)
        net.forward_bidirect_flow(f, b, m)


@pytest.mark.parametrize("chunk", [None, 2])
def test_one_direction_at_a_time_equals_both(det_net, chunk):
    """complete_direction (the engine's memory-halving path) = forward_bidirect_flow + combine_flow."""
    flows_f, flows_b, masks = _random_inputs(1, 5, 16, 24, seed=7)
    det_net.frames_per_chunk = chunk
    try:
        with torch.no_grad():
            pred_f, pred_b = det_net.forward_bidirect_flow(flows_f, flows_b, masks)
            want_f, want_b = det_net.combine_flow(flows_f, flows_b, pred_f, pred_b, masks)
            got_f = det_net.complete_direction(flows_f, masks[:, :-1])
            got_b = det_net.complete_direction(flows_b, masks[:, 1:], backward=True)
    finally:
        det_net.frames_per_chunk = None
    assert torch.equal(got_f, want_f) and torch.equal(got_b, want_b)
