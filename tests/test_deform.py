"""The CPU deformable convolution (grid_sample + matmul) computes torchvision's deform_conv2d."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import deform_conv2d

from propainter_wire.models import deform as deform_mod
from propainter_wire.models.deform import modulated_deform_conv2d


@pytest.mark.parametrize("n, c, h, w, groups, stride, padding, dilation", [
    (2, 32, 12, 20, 16, 1, 1, 1),   # the networks' case: 3x3, padding 1, 16 offset groups
    (1, 6, 7, 9, 3, 1, 2, 2),       # dilated
    (1, 4, 9, 11, 1, 2, 1, 1),      # strided
    (1, 8, 2, 5, 2, 1, 1, 1),       # two rows
])
def test_matches_torchvision(n, c, h, w, groups, stride, padding, dilation):
    gen = torch.Generator().manual_seed(h * w + c)
    x = torch.randn(n, c, h, w, generator=gen)
    weight = torch.randn(c + 1, c, 3, 3, generator=gen) * 0.1
    bias = torch.randn(c + 1, generator=gen)
    ho = (h + 2 * padding - dilation * 2 - 1) // stride + 1
    wo = (w + 2 * padding - dilation * 2 - 1) // stride + 1
    offset = 4 * torch.randn(n, 2 * groups * 9, ho, wo, generator=gen)  # many samples fall outside
    offset[:, :4] = 40.0  # far outside: zero, as torchvision
    mask = torch.rand(n, groups * 9, ho, wo, generator=gen)
    want = deform_conv2d(x, offset, weight, bias, stride=stride, padding=padding, dilation=dilation, mask=mask)
    got = modulated_deform_conv2d(x, offset, weight, bias, mask, stride=stride, padding=padding, dilation=dilation)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=0, atol=2e-5)
    no_bias = modulated_deform_conv2d(x, offset, weight, None, mask, stride=stride, padding=padding,
                                      dilation=dilation)
    torch.testing.assert_close(no_bias + bias.view(1, -1, 1, 1), want, rtol=0, atol=2e-5)


def test_one_pixel_high_maps_use_torchvision(monkeypatch):
    """grid_sample's normalisation needs two pixels per side: smaller inputs go to torchvision."""
    called = []
    monkeypatch.setattr(deform_mod, "_sampled_deform_conv2d", lambda *a: called.append(1))
    x = torch.randn(1, 4, 1, 6)
    out = modulated_deform_conv2d(x, torch.zeros(1, 18, 1, 6), torch.randn(4, 4, 3, 3), torch.zeros(4),
                                  torch.ones(1, 9, 1, 6), padding=1)
    assert out.shape == (1, 4, 1, 6) and not called


def test_runs_under_bfloat16_autocast():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 16, 10, 12, generator=gen)
    offset, mask = torch.randn(1, 2 * 4 * 9, 10, 12, generator=gen), torch.rand(1, 4 * 9, 10, 12, generator=gen)
    weight, bias = torch.randn(16, 16, 3, 3, generator=gen) * 0.1, torch.zeros(16)
    want = deform_conv2d(x, offset, weight, bias, padding=1, mask=mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = modulated_deform_conv2d(x, offset, weight, bias, mask, padding=1)
    assert (got.float() - want).abs().max().item() <= 0.02 * want.abs().max().item()
