"""The ProPainter engine's memory and layout policy (``engines/propainter/policy.py``) and network
preparation: cuDNN autotuned stages, channels-last parts, RAFT's fused epilogues. Settings only."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from propainter_wire.tuning import Tuning

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def engine(det_weights_dir):
    from propainter_wire.engines.propainter import ProPainterEngine

    return ProPainterEngine(det_weights_dir, device="cpu", precision="fp32")


def test_autotune_stages_on_cpu_ignore_the_environment(engine, monkeypatch):
    from propainter_wire.engines.propainter import ProPainterEngine

    assert engine.memory.autotune_stages == frozenset()
    for value in ("flow,complete,transformer", "flow", "none"):
        tuning = Tuning.from_env({"PROPAINTER_WIRE_CUDNN_BENCHMARK": value})
        for precision in ("fp32", "bf16"):
            made = ProPainterEngine(None, device="cpu", precision=precision, models=engine.models, tuning=tuning)
            assert made.memory.autotune_stages == frozenset(), (value, precision)


@pytest.mark.parametrize("precision, env, expected", [
    ("fp32", None, frozenset()),
    ("tf32", None, frozenset()),
    ("fp16", "flow", frozenset({"flow"})),
    ("fp32", "flow, complete,transformer", frozenset({"flow", "complete", "transformer"})),
    ("fp16", "none", frozenset()),
    ("fp16", "", frozenset()),
    ("fp16", "complete", frozenset({"complete"})),
])
def test_autotune_stages_on_cuda_follow_precision_and_environment(precision, env, expected, monkeypatch):
    """The variable names the stages on a CUDA device; the exact precisions are never tuned without it.

    (Only settings are read here: fp32/tf32/fp16 on a CUDA device name touch no GPU, and models
    handed in are not moved, channels-last being switched off.)"""
    from propainter_wire.engines.propainter import ProPainterEngine, ProPainterModels

    env = {} if env is None else {"PROPAINTER_WIRE_CUDNN_BENCHMARK": env}
    tuning = Tuning.from_env({"PROPAINTER_WIRE_CHANNELS_LAST": "0", **env})
    models = ProPainterModels(torch.nn.Identity(), torch.nn.Identity(), torch.nn.Identity())
    made = ProPainterEngine(None, device="cuda", precision=precision, models=models, tuning=tuning)
    assert made.memory.autotune_stages == expected


def test_channels_last_switch_names_network_parts(det_weights_dir, monkeypatch):
    """The tuning switch ``channels_last`` (a benchmark switch) takes 1, 0 or a list of network parts."""
    from propainter_wire.engines.propainter import ProPainterEngine

    def layout(conv):
        return "cl" if not conv.weight.is_contiguous() else "nchw"

    def switch(value):
        return Tuning.from_env({"PROPAINTER_WIRE_CHANNELS_LAST": value})

    engine = ProPainterEngine(det_weights_dir, device="cpu", precision="fp32",
                              tuning=switch("raft_encoders, inpainter_decoder"))
    raft, inpainter = engine.models.raft, engine.models.inpainter
    assert layout(raft.fnet.layer1[0].conv1) == layout(raft.cnet.conv1) == layout(inpainter.decoder[2]) == "cl"
    assert layout(raft.update_block.encoder.convc2) == layout(inpainter.encoder.layers[2]) == "nchw"
    assert layout(ProPainterEngine(det_weights_dir, device="cpu", tuning=switch("0")).models.raft.fnet.conv1) \
        == "nchw"
    with pytest.raises(ValueError, match="PROPAINTER_WIRE_CHANNELS_LAST: .*got 'raft_everything'"):
        switch("raft_everything")
    with pytest.raises(ValueError, match="unknown part 'raft_everything'"):
        Tuning(channels_last=("raft_everything",))


def test_cpu_engine_uses_channels_last_convolutions(det_weights_dir, monkeypatch):
    """oneDNN runs NHWC convolutions faster (measured), so CPU engines store conv weights channels-last;
    the switch turns it off (GPU engines default to RAFT's update block only: slower elsewhere there)."""
    from propainter_wire.engines.propainter import ProPainterEngine

    def layouts(engine):
        return {m.weight.is_contiguous(memory_format=torch.channels_last) and not m.weight.is_contiguous()
                for m in engine.models.inpainter.modules()
                if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1) and m.weight.shape[1] > 1}  # layouts differ

    assert layouts(ProPainterEngine(det_weights_dir, device="cpu", precision="fp32")) == {True}
    assert layouts(ProPainterEngine(det_weights_dir, device="cpu", precision="fp32",
                                    tuning=Tuning(channels_last=()))) == {False}


def _stand_in_inpainter() -> nn.Module:
    """The inpainter's parts an engine's settings touch (its encoder and decoder), as small layers."""
    net = nn.Module()
    net.encoder, net.decoder = nn.Conv2d(2, 2, 3), nn.Sequential(nn.Conv2d(2, 2, 3), nn.Conv2d(2, 2, 3))
    return net


@pytest.mark.parametrize("precision, update_nhwc, completion_nhwc",
                         [("fp16", True, True), ("fp32", False, False), ("auto", True, True)])
def test_gpu_engine_runs_raft_update_channels_last_when_raft_is_half(precision, update_nhwc, completion_nhwc,
                                                                      monkeypatch):
    """On a GPU RAFT's update block, the flow-completion network and the inpainter's decoder go channels-last,
    each only when it runs in half precision (fp32 NHWC convolutions took algorithms with far larger
    workspaces); the rest stays NCHW. Settings only: no GPU is touched."""
    from propainter_wire.engines.propainter import ProPainterEngine, ProPainterModels
    from propainter_wire.flow.raft import RAFT

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


def test_engine_falls_back_to_library_layers_when_the_fused_check_fails(monkeypatch, caplog):
    """A cuDNN without fused engines (or a wrong fused result) is caught before RAFT runs: the engine warns
    and keeps the separate layers. Settings only: the check is stubbed, no GPU is touched."""
    from propainter_wire.engines.propainter import ProPainterEngine, ProPainterModels
    from propainter_wire.flow import fused_conv as fused_mod
    from propainter_wire.flow.raft import RAFT
    from propainter_wire.runtime import check_cache

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    # on a GPU machine a pass remembered by an earlier run would skip the stubbed check
    monkeypatch.setattr(check_cache, "remembered", lambda key, device, check: check())
    for verdict, fused in (("RuntimeError: no valid execution plans", False), (None, True)):
        monkeypatch.setattr(fused_mod, "fused_conv_relu_check", lambda device, dtype, v=verdict: v)
        models = ProPainterModels(RAFT(), nn.Conv2d(2, 2, 3), _stand_in_inpainter())
        with caplog.at_level("WARNING", logger="propainter_wire"):
            ProPainterEngine(None, device="cuda", precision="fp16", models=models)
        assert models.raft.update_block.encoder.fused_epilogues is fused
        assert models.raft.cnet.fused_epilogues is fused
        assert ("failed its check" in caplog.text) is not fused
        caplog.clear()



def test_resident_budget_is_a_share_of_the_card_unless_set(monkeypatch):
    from types import SimpleNamespace

    from propainter_wire.engines.propainter import policy as policy_mod
    from propainter_wire.engines.propainter.policy import RESIDENT_SHARE, MemoryPolicy
    from propainter_wire.engines.propainter.store import ClipStore, clip_bytes
    from propainter_wire.runtime.precision import PrecisionPolicy

    fp16 = PrecisionPolicy("fp16", raft_dtype=torch.float16, model_autocast_dtype=torch.float16)
    cpu = MemoryPolicy.choose(Tuning(), torch.device("cpu"), PrecisionPolicy("fp32"))
    assert cpu.resident_budget() == 0
    card, free, reserved, allocated = 80 * 2**30, 70 * 2**30, 3 * 2**30, 2**30
    cuda = policy_mod.torch.cuda
    monkeypatch.setattr(cuda, "get_device_properties", lambda dev: SimpleNamespace(total_memory=card))
    monkeypatch.setattr(cuda, "mem_get_info", lambda dev: (free, card))
    monkeypatch.setattr(cuda, "memory_reserved", lambda dev: reserved)
    monkeypatch.setattr(cuda, "memory_allocated", lambda dev: allocated)
    gpu = torch.device("cuda", 0)
    auto = MemoryPolicy.choose(Tuning(), gpu, fp16)
    assert auto.resident_budget() == int(RESIDENT_SHARE * card)
    free = 10 * 2**30  # a card other programs share: half of what is free or cached here
    assert auto.resident_budget() == int(0.5 * (10 + 3 - 1) * 2**30)
    free = 70 * 2**30
    assert MemoryPolicy.choose(Tuning(resident_bytes=2**30), gpu, fp16).resident_budget() == 2**30
    # 720p x 80 stays on an 80 GB card; 720p x 400 (19.6 GiB by the same count) goes to the host
    for frames, place in ((80, "cuda"), (400, "cpu")):
        shape = (frames, 720, 1280, 3)
        store = ClipStore.for_clip(gpu, shape, auto.resident_budget())
        assert store.place.type == place, (frames, clip_bytes(shape) / 2**30)
