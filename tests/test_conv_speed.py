"""Separable 3-D convolutions computed as 2-D ones, and RAFT's instance norm, equal the library layers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("args, options", [
    ((3, 8, (1, 5, 5)), {"stride": (1, 2, 2), "padding": (0, 2, 2), "padding_mode": "replicate"}),
    ((6, 6, (3, 1, 1)), {"padding": (2, 0, 0), "dilation": (2, 1, 1)}),
    ((6, 6, (1, 3, 3)), {"padding": (0, 3, 3), "dilation": (1, 3, 3)}),
    ((4, 6, (1, 3, 3)), {"stride": (1, 2, 2), "padding": (0, 1, 1), "bias": False}),
    ((4, 6, (3, 3, 3)), {"padding": (1, 1, 1)}),  # not separable: the plain 3-D path
])
def test_conv3d_as_2d_equals_conv3d(args, options):
    from propainter_wire.models.flow_completion_blocks import Conv3dAs2d

    torch.manual_seed(0)
    ours = Conv3dAs2d(*args, **options).double()
    plain = torch.nn.Conv3d(*args, **options).double()
    plain.load_state_dict(ours.state_dict())
    x = torch.randn(2, args[0], 5, 12, 18, dtype=torch.float64)
    got, want = ours(x), plain(x)
    assert got.shape == want.shape
    assert torch.allclose(got, want, atol=1e-12)
    # a permuted (non-contiguous) input, as a per-frame layer hands to the next one
    y = torch.randn(2, 5, args[0], 12, 18, dtype=torch.float64).transpose(1, 2)
    assert torch.allclose(ours(y), plain(y), atol=1e-12)


def test_flow_completion_builds_its_3d_convolutions_as_2d():
    from propainter_wire.models.flow_completion import RecurrentFlowCompleteNet
    from propainter_wire.models.flow_completion_blocks import Conv3dAs2d

    convs = [m for m in RecurrentFlowCompleteNet().modules() if isinstance(m, torch.nn.Conv3d)]
    assert convs and all(isinstance(m, Conv3dAs2d) for m in convs)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device"))])
def test_raft_instance_norm_matches_the_library(device):
    from propainter_wire.flow.raft_encoder import InstanceNorm

    x = (torch.randn(2, 5, 30, 41) * 3 + 1).to(device)
    want = F.instance_norm(x)
    got = InstanceNorm()(x)
    assert got.dtype == torch.float32 and torch.allclose(got, want, atol=1e-5)
    if device == "cuda":
        with torch.autocast("cuda", dtype=torch.float16):
            half = InstanceNorm()(x.half())
        assert half.dtype == torch.float32 and torch.allclose(half, F.instance_norm(x.half().float()), atol=1e-4)

