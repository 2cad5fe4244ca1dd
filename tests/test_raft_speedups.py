"""RAFT's speed-ups change no result: graph replays, prescaled correlation, fused convolution + ReLU epilogues."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from propainter_wire.runtime.cuda_graph import GraphCache

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
pytestmark = pytest.mark.usefixtures("one_thread")


@needs_cuda
@pytest.mark.parametrize("budget", [None, "one direction"])
def test_raft_graph_replays_equal_eager(budget):
    from propainter_wire.flow import corr as corr_mod
    from propainter_wire.flow.raft import RAFT, bidirectional_flows
    from propainter_wire.testing import det_state_dict

    raft = RAFT()
    raft.load_state_dict(det_state_dict(raft))
    raft = raft.cuda().eval()
    gen = torch.Generator().manual_seed(3)
    frames = (torch.rand(5, 3, 128, 128, generator=gen) * 2 - 1).cuda()  # no padding: 16 x 16 features
    budget_bytes = None if budget is None else int(1.5 * corr_mod.all_pairs_bytes(16, 16))
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16):
        eager = bidirectional_flows(raft, frames, iters=6, pairs_per_chunk=1, budget_bytes=budget_bytes)
        cache = GraphCache()
        graphed = bidirectional_flows(raft, frames, iters=6, pairs_per_chunk=1, budget_bytes=budget_bytes,
                                      graphs=cache)
    assert cache.replays == 3  # 4 chunks of one pair: the first eager, then one recording replayed
    for a, b in zip(eager, graphed, strict=True):
        torch.testing.assert_close(b, a, atol=1e-3, rtol=0)
    cache.close()


def test_correlation_volume_prescaled_equals_divided():
    """1/sqrt(256) applied to the queries before the product is exact (a power of two)."""
    from propainter_wire.flow.corr import all_pairs_volume

    torch.manual_seed(3)
    f1, f2 = torch.randn(2, 256, 6, 7), torch.randn(2, 256, 6, 7)
    expected = torch.matmul(f1.flatten(2).transpose(1, 2), f2.flatten(2)) / 16
    assert torch.equal(all_pairs_volume(f1, f2), expected)
    odd1, odd2 = f1[:, :255], f2[:, :255]  # sqrt(255) is no power of two: divided afterwards
    expected = torch.matmul(odd1.flatten(2).transpose(1, 2), odd2.flatten(2)) / 255 ** 0.5
    torch.testing.assert_close(all_pairs_volume(odd1, odd2), expected, rtol=1e-6, atol=1e-6)


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_correlation_of_half_features_on_tf32_is_exact(dtype):
    """Half features' products are exact on TF32 tensor cores: the volume matches float64 to fp32
    summation error, and the global TF32 switch is left as it was."""
    from propainter_wire.flow.corr import all_pairs_volume

    torch.manual_seed(4)
    f1 = torch.randn(2, 256, 30, 40, device="cuda").to(dtype)
    f2 = torch.randn(2, 256, 30, 40, device="cuda").to(dtype)
    before = torch.backends.cuda.matmul.allow_tf32
    volume = all_pairs_volume(f1, f2)
    assert torch.backends.cuda.matmul.allow_tf32 == before
    exact = torch.matmul(f1.double().flatten(2).transpose(1, 2), f2.double().flatten(2)) / 16
    assert volume.dtype == torch.float32
    assert (volume.double() - exact).abs().max().item() < 1e-4  # |values| ~ 1; fp32 sums of 256 products


def _update_block_inputs(dtype: torch.dtype, device: str = "cpu"):
    from propainter_wire.flow.raft_update import BasicUpdateBlock
    from propainter_wire.testing import det_state_dict

    block = BasicUpdateBlock()
    block.load_state_dict(det_state_dict(block))
    block = block.to(device, dtype).eval()
    gen = torch.Generator().manual_seed(3)
    hidden, context, corr = (torch.randn(2, c, 6, 10, generator=gen).to(device, dtype) for c in (128, 128, 324))
    flow = torch.randn(2, 2, 6, 10, generator=gen).to(device, dtype) * 3
    return block, torch.tanh(hidden), torch.relu(context), corr, flow


def _force_fused(monkeypatch, allowed, fused_conv_relu) -> None:
    """Take the fused path off the GPU: ``allowed(x, conv)`` decides, ``fused_conv_relu`` stands in for cuDNN's."""
    from propainter_wire.flow import fused_conv, raft_encoder, raft_update

    for module in (fused_conv, raft_encoder, raft_update):
        monkeypatch.setattr(module, "fuses_epilogue", allowed)
    monkeypatch.setattr(torch, "cudnn_convolution_relu", fused_conv_relu, raising=False)


def test_fused_epilogues_compute_the_library_layers(monkeypatch):
    """The GPU half path's arithmetic, checked in float64 on the CPU: convolution + bias + ReLU as one call,
    and the GRU's biases folded into its context terms, give the update block's results."""
    block, hidden, context, corr, flow = _update_block_inputs(torch.float64)
    with torch.no_grad():
        expected = block(hidden, block.gru.prepare(context), corr, flow)
        calls = []

        def fused_conv_relu(x, weight, bias, stride, padding, dilation, groups):
            calls.append(weight.shape)
            return torch.relu(nn.functional.conv2d(x, weight, bias, stride, padding, dilation, groups))

        _force_fused(monkeypatch, lambda x, conv: conv.out_channels % 8 == 0, fused_conv_relu)
        prepared = block.gru.prepare(context)
        assert all(bias is None for _, bias in prepared.gate_weights.values())  # folded
        got = block(hidden, prepared, corr, flow)
    assert len(calls) == 6  # convc1, convc2, convf1, convf2, the flow head's and the mask's first layers
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_update_block_on_the_cpu_keeps_the_library_layers():
    """No fused path off the GPU: the GRU keeps its biases in its convolutions (float32 bit for bit)."""
    block, hidden, context, *_ = _update_block_inputs(torch.float32)
    prepared = block.gru.prepare(context)
    assert all(bias is not None for _, bias in prepared.gate_weights.values())
    assert all(bias is not None for _, bias in prepared.candidate_weights.values())


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_fused_conv_relu_on_the_gpu_is_as_close_as_the_library(dtype):
    from propainter_wire.flow.fused_conv import conv_relu

    torch.manual_seed(0)
    conv = nn.Conv2d(64, 128, 3, padding=1).cuda().to(dtype).to(memory_format=torch.channels_last)
    x = torch.randn(2, 64, 24, 40, device="cuda").to(dtype).contiguous(memory_format=torch.channels_last)
    exact = torch.relu(nn.functional.conv2d(x.double(), conv.weight.double(), conv.bias.double(), padding=1))
    with torch.no_grad():
        fused = conv_relu(conv, x)
        library = torch.relu(conv(x))
    assert fused.dtype == dtype and fused.shape == exact.shape
    scale = exact.abs().max()
    assert (fused.double() - exact).abs().max() <= (library.double() - exact).abs().max() + 1e-3 * scale


@needs_cuda
def test_update_block_fused_in_half_is_close_to_float32():
    """The fused half-precision step against the float32 library step (same weights and inputs)."""
    block, hidden, context, corr, flow = _update_block_inputs(torch.float32, "cuda")
    with torch.no_grad():
        reference = block(hidden, block.gru.prepare(context), corr, flow)
        half = block.half().to(memory_format=torch.channels_last)
        h16, c16 = (x.half().contiguous(memory_format=torch.channels_last) for x in (hidden, context))
        prepared = half.gru.prepare(c16)
        assert all(bias is None for _, bias in prepared.gate_weights.values())  # the fused path ran
        got = half(h16, prepared, corr, flow)
    for a, b in zip(got, reference, strict=True):
        torch.testing.assert_close(a.float(), b, rtol=2e-2, atol=2e-2)


def test_context_encoder_with_folded_batch_norm_computes_the_library_layers(monkeypatch):
    """Batch norm folded into the convolutions of the context encoder (GPU half path), in float64 on the CPU."""
    from propainter_wire.flow.raft_encoder import BasicEncoder

    torch.manual_seed(5)
    encoder = BasicEncoder(output_dim=256, norm="batch").double().eval()
    for module in encoder.modules():  # statistics and affine terms away from the identity
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    images = torch.rand(1, 3, 32, 48, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        expected = encoder(images)
        calls = []

        def fused_conv_relu(x, weight, bias, stride, padding, dilation, groups):
            calls.append(weight.shape)
            return torch.relu(nn.functional.conv2d(x, weight, bias, stride, padding, dilation, groups))

        _force_fused(monkeypatch, lambda x, conv: True, fused_conv_relu)
        got = encoder(images)
    assert len(calls) == 1 + 12  # the stem and both convolutions of the six residual blocks
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_fused_conv_relu_check_passes_on_this_gpu(dtype):
    from propainter_wire.flow.fused_conv import fused_conv_relu_check

    assert fused_conv_relu_check(torch.device("cuda"), dtype) is None



def test_norm_folds_are_kept_until_a_source_changes(monkeypatch):
    """The context encoder folds its batch norms once; a norm written in place is folded again."""
    from propainter_wire.flow import fused_conv
    from propainter_wire.flow.raft_encoder import BasicEncoder

    torch.manual_seed(6)
    encoder = BasicEncoder(output_dim=256, norm="batch").double().eval()
    images = torch.rand(1, 3, 32, 48, dtype=torch.float64) * 2 - 1
    folds = []
    real_fold = fused_conv.fold_norm
    monkeypatch.setattr(fused_conv, "fold_norm", lambda conv, norm: folds.append(conv) or real_fold(conv, norm))
    _force_fused(monkeypatch, lambda x, conv: True, lambda x, w, b, s, p, d, g: torch.relu(
        nn.functional.conv2d(x, w, b, s, p, d, g)))
    with torch.no_grad():
        first = encoder(images)
        assert len(folds) == 15  # the stem, 12 block convolutions, 2 projections
        assert torch.equal(encoder(images), first) and len(folds) == 15  # the second call folds nothing
        norm = encoder.layer2[0].norm1
        norm.running_mean.add_(0.25)  # in place: that pair is folded again
        changed = encoder(images)
    assert len(folds) == 16
    encoder.fused_epilogues = False
    for module in encoder.modules():
        if hasattr(module, "fused_epilogues"):
            module.fused_epilogues = False
    with torch.no_grad():
        torch.testing.assert_close(changed, encoder(images), rtol=1e-10, atol=1e-10)
