"""The inpainter's speed-ups change no result: masked windows found once per stack call; the decoder in
the autocast dtype."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.usefixtures("one_thread")


def test_transformer_stack_finds_masked_windows_once(monkeypatch):
    """Which windows are masked depends on the mask alone: one search (one host sync) per stack call."""
    from propainter_wire.models.transformer import SparseTransformerStack, SparseWindowAttention

    torch.manual_seed(0)
    stack = SparseTransformerStack(dim=32, n_head=4, depths=4).eval()
    h, w = 12, 20  # feature map; tokens 4 x 7 (kernel 7, stride 3, padding 3)
    x = torch.randn(1, 3, 4, 7, 32)
    mask = torch.zeros(1, 2, 4, 7, 1)
    mask[:, :, 1:3, 2:4] = 1
    calls = []
    real = SparseWindowAttention.masked_windows

    def spy(self, m):
        calls.append(1)
        return real(self, m)

    with torch.no_grad():
        want = stack(x, (h, w), mask)
        monkeypatch.setattr(SparseWindowAttention, "masked_windows", spy)
        got = stack(x, (h, w), mask)
    assert len(calls) == 1 and torch.equal(got, want)


def test_decoder_runs_in_the_autocast_dtype():
    """Under autocast the decoder's upsampling gets the half-precision features (as the reference's
    --fp16 decoder): its full-size maps are not float32. Outside autocast everything stays float32."""
    from propainter_wire.models.inpainter import InpaintGenerator
    from propainter_wire.runtime.precision import active_autocast_dtype
    from propainter_wire.testing import det_state_dict

    net = InpaintGenerator().eval()
    net.load_state_dict(det_state_dict(net))
    seen = []
    net.decoder[0].register_forward_pre_hook(lambda module, args: seen.append(args[0].dtype))
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(1, 4, 128, 8, 12, generator=gen)
    flows = torch.randn(1, 2, 2, 32, 48, generator=gen)
    masks = torch.zeros(1, 4, 1, 32, 48)
    masks[..., 8:20, 10:30] = 1
    with torch.inference_mode():
        full = net.forward_features(feats, flows, -flows, masks, masks, 3)
        assert active_autocast_dtype("cpu") is None
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert active_autocast_dtype("cpu") == torch.bfloat16
            half = net.forward_features(feats, flows, -flows, masks, masks, 3)
    assert seen == [torch.float32, torch.bfloat16]
    assert full.dtype == torch.float32
    assert (half.float() - full).abs().max().item() < 0.1

