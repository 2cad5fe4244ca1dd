"""The speed-ups change no result: precast weights, CUDA graphs, half storage, uint8 conversion,
masked transformer windows found once, channels-last CPU convolutions, the engine loading on a thread.

The CPU tests check the arithmetic claims (a precast module under autocast computes
exactly what autocast computes; the graph cache is inert without a GPU).
The CUDA tests run on the device machine (``benchmarks/gpu_session.sh env``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from propainter_wire.runtime.cuda_graph import GraphCache
from propainter_wire.runtime.precision import precast_for_autocast

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class _OwnWeight(nn.Module):
    """A layer reading its own weight in fp32 (like the deformable alignment)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(8, 8, 3, 3) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(x.float(), self.weight.float(), padding=1)


def _mixed_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), _OwnWeight(),
                         nn.InstanceNorm2d(8, affine=True), nn.Flatten(2), nn.Linear(64, 16)).eval()


def test_precast_under_autocast_is_exact():
    net = _mixed_net()
    x = torch.randn(2, 3, 8, 8)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        before = net(x)
        assert precast_for_autocast(net, torch.bfloat16) == 2  # the conv and the linear layer
        after = net(x)
    assert after.dtype == before.dtype == torch.bfloat16
    assert torch.equal(after, before)
    assert net[0].weight.dtype == torch.bfloat16 and net[6].weight.dtype == torch.bfloat16
    assert net[1].weight.dtype == torch.float32  # norms stay fp32, as autocast leaves them
    assert net[3].weight.dtype == torch.float32  # custom layers keep their own weights


def test_graph_cache_runs_eagerly_on_cpu():
    cache = GraphCache()
    calls = []

    def fn(x):
        calls.append(1)
        return x * 2

    for _ in range(3):
        assert torch.equal(cache.run("k", fn, torch.ones(3)), torch.full((3,), 2.0))
    assert len(calls) == 3 and cache.replays == 0 and not cache.graphs


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


def _clip(frames: int = 10, height: int = 64, width: int = 96):
    rng = np.random.default_rng(1)
    base = rng.random((height + 16, width + 40, 3)).astype(np.float32)
    clip = np.stack([base[8:8 + height, 2 * t:2 * t + width] for t in range(frames)])
    masks = np.zeros((frames, height, width), bool)
    masks[:, 20:40, 30:60] = True
    return clip, masks


@needs_cuda
def test_engine_switches_keep_results(det_weights_dir, monkeypatch):
    """Graphs on or off: the same fp16 frames; fp16 (half storage) stays close to fp32 in the mask."""
    from propainter_wire.config import InpaintConfig
    from propainter_wire.engines.propainter import ProPainterEngine
    from propainter_wire.pipeline.stages import Stages
    from propainter_wire.runner.inputs import prepare_engine_input

    clip, masks = _clip()
    outs = {}
    for name, graphs in (("fast", "1"), ("plain", "0")):
        monkeypatch.setenv("PROPAINTER_WIRE_CUDA_GRAPHS", graphs)
        config = InpaintConfig(precision="fp16")
        engine = ProPainterEngine(det_weights_dir, device="cuda", precision="fp16")
        engine.resident_bytes = 0  # whole-clip tensors on the host, as on a long clip
        outs[name] = engine.run(prepare_engine_input(list(clip), list(masks), config), config, Stages())
    np.testing.assert_allclose(outs["fast"], outs["plain"], atol=1.5 / 255)
    config = InpaintConfig(precision="fp32")
    ref = ProPainterEngine(det_weights_dir, device="cuda", precision="fp32").run(
        prepare_engine_input(list(clip), list(masks), config), config, Stages())
    err = ((outs["fast"] - ref)[masks] ** 2).mean()
    assert 10 * np.log10(1 / max(err, 1e-12)) >= 40


def test_unit_to_u8_matches_numpy_rounding():
    from propainter_wire.engines.propainter import _unit_to_u8

    rng = np.random.default_rng(0)
    x = rng.random((3, 8, 8, 3), dtype=np.float32)
    x[0, 0, 0] = [0.5 / 255, 1.5 / 255, 254.5 / 255]  # halves round to even, as np.rint
    x[0, 0, 1] = [-0.1, 1.0, 1.2]  # out of range clips
    want = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    assert np.array_equal(_unit_to_u8(x), want)


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


def test_cpu_engine_uses_channels_last_convolutions(det_weights_dir, monkeypatch):
    """oneDNN runs NHWC convolutions faster (measured), so CPU engines store conv weights channels-last;
    the switch turns it off (GPU engines default to RAFT's update block only: slower elsewhere there)."""
    from propainter_wire.engines.propainter import ProPainterEngine

    def layouts(engine):
        return {m.weight.is_contiguous(memory_format=torch.channels_last) and not m.weight.is_contiguous()
                for m in engine.models.inpainter.modules()
                if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1) and m.weight.shape[1] > 1}  # layouts differ

    monkeypatch.delenv("PROPAINTER_WIRE_CHANNELS_LAST", raising=False)
    assert layouts(ProPainterEngine(det_weights_dir, device="cpu", precision="fp32")) == {True}
    monkeypatch.setenv("PROPAINTER_WIRE_CHANNELS_LAST", "0")
    assert layouts(ProPainterEngine(det_weights_dir, device="cpu", precision="fp32")) == {False}


def test_engine_loader_returns_the_engine_or_raises_its_error(tmp_path):
    """The engine loads on a thread while frames decode; its errors surface at result()."""
    from propainter_wire.config import InpaintConfig
    from propainter_wire.errors import WeightsError
    from propainter_wire.runner.engines import EngineLoader

    ok = EngineLoader(InpaintConfig(engine="classic"), torch.device("cpu"))
    assert ok.result().name == "classic" and ok.device == torch.device("cpu")
    missing = EngineLoader(InpaintConfig(engine="propainter", weights_dir=tmp_path / "none"), torch.device("cpu"))
    with pytest.raises(WeightsError):
        missing.result()


def test_a_failed_run_waits_for_the_engine_loader(tmp_path, monkeypatch):
    """A run that fails while the engine still loads waits for the loader thread before raising: a
    thread inside torch at interpreter exit aborts the process (exit 134 instead of the run's own)."""
    import threading
    import time

    import cv2

    import propainter_wire
    from propainter_wire.errors import InputError
    from propainter_wire.runner import engines, files

    frames, masks = tmp_path / "frames", tmp_path / "masks"
    frames.mkdir()
    masks.mkdir()
    for t in range(6):
        cv2.imwrite(str(frames / f"{t:03d}.png"), np.full((32, 48, 3), 40 * t, np.uint8))
        cv2.imwrite(str(masks / f"{t:03d}.png"), np.full((32, 48), 255, np.uint8))
    finished = threading.Event()
    real = engines.select_engine

    def slow(config, device, tuning=None):
        time.sleep(0.5)  # still loading when the run fails
        engine = real(config, device, tuning)
        finished.set()
        return engine

    def failing(*args, **kwargs):  # a failure after the frames are read (a bad output folder, say)
        raise InputError("cannot write here", tmp_path / "out")

    monkeypatch.setattr(engines, "select_engine", slow)
    monkeypatch.setattr(files, "fill_and_write", failing)
    with pytest.raises(InputError, match="cannot write here"):
        propainter_wire.inpaint(frames, masks, tmp_path / "out", engine="classic", device="cpu", quiet=True)
    assert finished.is_set()
    assert not any(t.name == "engine-loader" for t in threading.enumerate())


def test_graph_cache_records_on_the_second_call_and_falls_back_when_recording_fails(monkeypatch, caplog):
    """First call of a shape eager, second records (here: fails), then eager for good, with a warning."""
    from propainter_wire.runtime import cuda_graph

    class FakeCuda:  # stands in for a CUDA tensor: only ``is_cuda`` is read by the cache
        is_cuda = True

    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: False)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    recorded = []

    def failing_record(fn, inputs):
        recorded.append(inputs)
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(cuda_graph, "GraphedCall", failing_record)
    cache = GraphCache()
    calls = []
    for _ in range(3):
        assert cache.run("k", lambda x: calls.append(x) or 7, FakeCuda()) == 7
    assert len(calls) == 3 and len(recorded) == 1 and not cache.enabled and cache.replays == 0
    assert "CUDA graph recording failed" in caplog.text


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


def _stand_in_inpainter() -> nn.Module:
    """The inpainter's parts an engine's settings touch (its encoder and decoder), as small layers."""
    net = nn.Module()
    net.encoder, net.decoder = nn.Conv2d(2, 2, 3), nn.Sequential(nn.Conv2d(2, 2, 3), nn.Conv2d(2, 2, 3))
    return net


@pytest.mark.parametrize("precision, update_nhwc, completion_nhwc",
                         [("fp16", True, True), ("fp32", False, False), ("auto", False, True)])
def test_gpu_engine_runs_raft_update_channels_last_when_raft_is_half(precision, update_nhwc, completion_nhwc,
                                                                      monkeypatch):
    """On a GPU RAFT's update block, the flow-completion network and the inpainter's decoder go channels-last,
    each only when it runs in half precision (fp32 NHWC convolutions took algorithms with far larger
    workspaces); the rest stays NCHW. Settings only: no GPU is touched."""
    from propainter_wire.engines.propainter import ProPainterEngine, ProPainterModels
    from propainter_wire.flow.raft import RAFT

    monkeypatch.delenv("PROPAINTER_WIRE_CHANNELS_LAST", raising=False)
    models = ProPainterModels(RAFT(), nn.Conv2d(2, 2, 3), _stand_in_inpainter())
    ProPainterEngine(None, device="cuda", precision=precision, models=models)

    def channels_last(net):
        return {m.weight.is_contiguous(memory_format=torch.channels_last) and not m.weight.is_contiguous()
                for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)}

    assert channels_last(models.raft.update_block) == {update_nhwc}
    assert channels_last(models.raft.fnet) == {False}
    assert channels_last(models.flow_completion) == {completion_nhwc}
    assert channels_last(models.inpainter.decoder) == {completion_nhwc}  # (the same autocast dtype)
    assert channels_last(models.inpainter.encoder) == {False}


def test_preloading_is_gpu_only(det_weights_dir):
    """The later stages' kernels are preloaded on a GPU only: nothing starts on the CPU."""
    from propainter_wire.engines.propainter import ProPainterEngine

    engine = ProPainterEngine(det_weights_dir, device="cpu", precision="fp32")
    engine._start_preload(64, 96, 10)
    assert engine._preloads == {}
    engine._await_preload("inpainter")  # nothing to wait for


@needs_cuda
def test_preloading_keeps_results(det_weights_dir, monkeypatch):
    """Placing the later networks and running them on stand-ins on a side thread while RAFT runs changes
    no result (fp16, the same frames as without), and both parts are waited for and consumed."""
    from propainter_wire.config import InpaintConfig
    from propainter_wire.engines.propainter import ProPainterEngine
    from propainter_wire.pipeline.stages import Stages
    from propainter_wire.runner.inputs import prepare_engine_input

    clip, masks = _clip(frames=20)
    outs, started = {}, {}
    for name, flag in (("preloaded", "1"), ("plain", "0")):
        monkeypatch.setenv("PROPAINTER_WIRE_PRELOAD", flag)
        config = InpaintConfig(precision="fp16")
        engine = ProPainterEngine(det_weights_dir, device="cuda", precision="fp16")
        engine.raft_chunk_frames = 4  # several RAFT chunks: the preload starts after the graph is recorded
        start = engine._start_preload
        engine._start_preload = lambda *a, start=start, name=name: (started.setdefault(name, True), start(*a))
        outs[name] = engine.run(prepare_engine_input(list(clip), list(masks), config), config, Stages())
        assert engine._preloads == {}
    assert started == {"preloaded": True, "plain": True}
    np.testing.assert_allclose(outs["preloaded"], outs["plain"], atol=1.5 / 255)  # as graphs on/off above
    assert np.abs(outs["preloaded"] - outs["plain"]).mean() < 1e-4


def _update_block_inputs(dtype: torch.dtype, device: str = "cpu"):
    from propainter_wire.flow.raft import BasicUpdateBlock
    from propainter_wire.testing import det_state_dict

    block = BasicUpdateBlock()
    block.load_state_dict(det_state_dict(block))
    block = block.to(device, dtype).eval()
    gen = torch.Generator().manual_seed(3)
    hidden, context, corr = (torch.randn(2, c, 6, 10, generator=gen).to(device, dtype) for c in (128, 128, 324))
    flow = torch.randn(2, 2, 6, 10, generator=gen).to(device, dtype) * 3
    return block, torch.tanh(hidden), torch.relu(context), corr, flow


def test_fused_epilogues_compute_the_library_layers(monkeypatch):
    """The GPU half path's arithmetic, checked in float64 on the CPU: convolution + bias + ReLU as one call,
    and the GRU's biases folded into its context terms, give the update block's results."""
    from propainter_wire.flow import raft as raft_mod

    block, hidden, context, corr, flow = _update_block_inputs(torch.float64)
    with torch.no_grad():
        expected = block(hidden, block.gru.prepare(context), corr, flow)
        calls = []

        def fused_conv_relu(x, weight, bias, stride, padding, dilation, groups):
            calls.append(weight.shape)
            return torch.relu(nn.functional.conv2d(x, weight, bias, stride, padding, dilation, groups))

        monkeypatch.setattr(raft_mod, "_fused_epilogue", lambda x, conv: conv.out_channels % 8 == 0)
        monkeypatch.setattr(raft_mod.torch, "cudnn_convolution_relu", fused_conv_relu, raising=False)
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
    from propainter_wire.flow.raft import conv_relu

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
    from propainter_wire.flow import raft as raft_mod

    torch.manual_seed(5)
    encoder = raft_mod.BasicEncoder(output_dim=256, norm="batch").double().eval()
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

        monkeypatch.setattr(raft_mod, "_fused_epilogue", lambda x, conv: True)
        monkeypatch.setattr(raft_mod.torch, "cudnn_convolution_relu", fused_conv_relu, raising=False)
        got = encoder(images)
    assert len(calls) == 1 + 12  # the stem and both convolutions of the six residual blocks
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


def test_engine_falls_back_to_library_layers_when_the_fused_check_fails(monkeypatch, caplog):
    """A cuDNN without fused engines (or a wrong fused result) is caught before RAFT runs: the engine warns
    and keeps the separate layers. Settings only: the check is stubbed, no GPU is touched."""
    from propainter_wire.engines.propainter import ProPainterEngine, ProPainterModels
    from propainter_wire.flow import raft as raft_mod
    from propainter_wire.flow.raft import RAFT

    monkeypatch.delenv("PROPAINTER_WIRE_FUSED_EPILOGUES", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for verdict, fused in (("RuntimeError: no valid execution plans", False), (None, True)):
        monkeypatch.setattr(raft_mod, "fused_conv_relu_check", lambda device, dtype, v=verdict: v)
        models = ProPainterModels(RAFT(), nn.Conv2d(2, 2, 3), _stand_in_inpainter())
        with caplog.at_level("WARNING", logger="propainter_wire"):
            ProPainterEngine(None, device="cuda", precision="fp16", models=models)
        assert models.raft.update_block.encoder.fused_epilogues is fused
        assert models.raft.cnet.fused_epilogues is fused
        assert ("failed its check" in caplog.text) is not fused
        caplog.clear()


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_fused_conv_relu_check_passes_on_this_gpu(dtype):
    from propainter_wire.flow.raft import fused_conv_relu_check

    assert fused_conv_relu_check(torch.device("cuda"), dtype) is None


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
