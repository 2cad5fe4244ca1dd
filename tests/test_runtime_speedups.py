"""Runtime speed-ups change no result: cuDNN autotuning set and restored, precast weights under autocast,
the CUDA graph cache (inert without a GPU; recording on the second call; eager fallback)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from propainter_wire.runtime.cuda_graph import GraphCache
from propainter_wire.runtime.precision import precast_for_autocast

pytestmark = pytest.mark.usefixtures("one_thread")


def test_cudnn_autotune_sets_and_restores(monkeypatch):
    from propainter_wire.runtime.precision import cudnn_autotune

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    with cudnn_autotune(True):
        assert torch.backends.cudnn.benchmark is True
        with cudnn_autotune(False):
            assert torch.backends.cudnn.benchmark is False
        assert torch.backends.cudnn.benchmark is True
    assert torch.backends.cudnn.benchmark is False

    with pytest.raises(RuntimeError, match="inside"):
        with cudnn_autotune(True):
            raise RuntimeError("inside")
    assert torch.backends.cudnn.benchmark is False

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    with pytest.raises(KeyError):
        with cudnn_autotune(False):
            assert torch.backends.cudnn.benchmark is False
            raise KeyError("x")
    assert torch.backends.cudnn.benchmark is True


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

