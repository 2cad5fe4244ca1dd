"""Independent work batched on small frames changes no result: transformer windows of one shape run
as one batch, flow completion's two directions as one batch (``benchmarks/batch_probe.py`` measures
why: at 432x240 on an H100 both are bound by kernel launches).

The CPU runs one window and one direction at a time by default (it is bound by arithmetic); the
benchmark switches force the batched forms here so that their arithmetic is checked on the CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from propainter_wire.engines.propainter import MemoryPolicy, ProPainterEngine
from propainter_wire.engines.propainter.synthesis import _FeatureCache
from propainter_wire.models.flow_completion import RecurrentFlowCompleteNet
from propainter_wire.runtime.precision import resolve_precision
from propainter_wire.testing import det_state_dict
from propainter_wire.tuning import Tuning, TuningError


def test_feature_cache_lookups_of_several_windows():
    """A batch's lookup encodes each missing frame once and returns the windows' features in turn;
    the look-ahead predicts what a sequence of such lookups leaves cached."""
    rng = np.random.default_rng(3)
    cache = _FeatureCache(max_bytes=6, bytes_per_frame=1)
    encoded: list[int] = []

    def encode(missing):
        encoded.extend(missing)
        return torch.tensor(missing, dtype=torch.float32)[:, None]

    feats = cache.get([[1, 2, 3], [3, 4, 1]], encode)
    assert feats[:, 0].tolist() == [1, 2, 3, 3, 4, 1]
    assert encoded == [1, 2, 3, 4]
    for _ in range(40):
        def window():
            return [int(i) for i in rng.choice(12, size=int(rng.integers(1, 5)), replace=False)]

        lookups = [[window() for _ in range(int(rng.integers(1, 3)))] for _ in range(int(rng.integers(1, 3)))]
        predicted = cache.keys_after([[i for one in batch for i in one] for batch in lookups])
        for batch in lookups:
            got = cache.get(batch, encode)
            assert got[:, 0].tolist() == [float(i) for one in batch for i in one]
        assert set(cache.store) == predicted


@pytest.mark.parametrize("chunk", [None, 2, 64])
def test_flow_completion_both_directions_equal_one_at_a_time(chunk):
    torch.manual_seed(0)
    net = RecurrentFlowCompleteNet().eval()
    net.load_state_dict(det_state_dict(net))
    net.frames_per_chunk = chunk
    flows_f = torch.randn(1, 6, 2, 32, 48) * 3
    flows_b = torch.randn(1, 6, 2, 32, 48) * 3
    masks = torch.zeros(1, 7, 1, 32, 48)
    masks[..., 8:20, 10:30] = 1
    with torch.inference_mode():
        f = net.complete_direction(flows_f, masks[:, :-1])
        b = net.complete_direction(flows_b, masks[:, 1:], backward=True)
        both_f, both_b = net.complete_both(flows_f, masks[:, :-1], flows_b, masks[:, 1:])
    torch.testing.assert_close(both_f, f, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(both_b, b, atol=1e-4, rtol=1e-4)
    assert torch.equal(both_f[masks[:, :-1].expand_as(f) == 0], flows_f[masks[:, :-1].expand_as(f) == 0])


def test_batching_is_chosen_by_frame_size_on_a_gpu(det_weights_dir):
    engine = ProPainterEngine(det_weights_dir, device="cpu", precision="fp32")
    assert engine.memory.window_group_size(240, 432) == 1 and not engine.memory.both_directions_at_once(240, 432)
    cuda = torch.device("cuda")  # (the choice only; nothing runs)
    gpu = MemoryPolicy.choose(Tuning(), cuda, resolve_precision("fp32", cuda))
    assert [gpu.window_group_size(h, w) for h, w in ((240, 432), (360, 640), (480, 864), (720, 1280))] \
        == [2, 2, 1, 1]
    assert [gpu.both_directions_at_once(h, w) for h, w in ((240, 432), (360, 640), (480, 864), (720, 1280))] \
        == [True, True, False, False]
    with pytest.raises(TuningError, match="PROPAINTER_WIRE_WINDOW_BATCH"):
        Tuning.from_env({"PROPAINTER_WIRE_WINDOW_BATCH": "0"})
    forced = ProPainterEngine(det_weights_dir, device="cpu", precision="fp32",
                              tuning=Tuning.from_env({"PROPAINTER_WIRE_WINDOW_BATCH": "3",
                                                      "PROPAINTER_WIRE_BATCH_DIRECTIONS": "1"}))
    assert forced.memory.window_group_size(1080, 1920) == 3 and forced.memory.both_directions_at_once(1080, 1920)
    with pytest.raises(TuningError, match="PROPAINTER_WIRE_BATCH_DIRECTIONS"):
        Tuning.from_env({"PROPAINTER_WIRE_BATCH_DIRECTIONS": "yes"})


def test_engine_results_equal_with_batched_windows_and_directions(det_weights_dir, monkeypatch):
    """CPU, fp32: windows three at a time and both directions at once give the frames of one at a time."""
    from propainter_wire.config import InpaintConfig
    from propainter_wire.pipeline.stages import Stages
    from propainter_wire.runner.inputs import prepare_engine_input

    rng = np.random.default_rng(1)
    frames, height, width = 31, 48, 64
    base = rng.random((height + 16, width + 2 * frames, 3)).astype(np.float32)
    clip = np.stack([base[8:8 + height, 2 * t:2 * t + width] for t in range(frames)])
    masks = np.zeros((frames, height, width), bool)
    masks[:, 16:30, 20:40] = True
    masks[12:17] = False  # windows with nothing to fill among the batched ones
    config = InpaintConfig(precision="fp32", raft_iters=4)
    outs, batches = {}, {}
    for name, windows, directions in (("batched", 3, True), ("plain", 1, False)):
        engine = ProPainterEngine(det_weights_dir, device="cpu", precision="fp32",
                                  tuning=Tuning(window_batch=windows, batch_directions=directions))
        net = engine.models.inpainter
        seen = batches.setdefault(name, [])
        original = net.forward_features

        def spy(feats, *args, original=original, seen=seen, **kwargs):
            seen.append(feats.shape[0])
            return original(feats, *args, **kwargs)

        net.forward_features = spy
        outs[name] = engine.run(prepare_engine_input(list(clip), list(masks), config), config, Stages())
    assert max(batches["batched"]) > 1 and set(batches["plain"]) == {1}
    assert sum(batches["batched"]) == sum(batches["plain"])  # every masked window once
    np.testing.assert_allclose(outs["batched"], outs["plain"], atol=1.5 / 255)
    assert np.abs(outs["batched"] - outs["plain"]).mean() < 1e-4


def test_raft_chunks_all_have_one_shape(det_weights_dir, monkeypatch):
    """The last RAFT chunk reaches back to a full chunk (one CUDA graph and one set of cuDNN plans for
    every chunk); each pair is written once, and the flows equal those of one chunk holding the clip."""
    from propainter_wire.flow import raft as raft_module
    from propainter_wire.pipeline.stages import Stages

    engine = ProPainterEngine(det_weights_dir, device="cpu", precision="fp32")
    gen = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (11, 32, 48, 3), dtype=torch.uint8, generator=gen)
    real = raft_module.bidirectional_flows
    sizes = []

    def spy(raft, chunk, **options):
        sizes.append(chunk.shape[0])
        return real(raft, chunk, **options)

    monkeypatch.setattr(raft_module, "bidirectional_flows", spy)
    engine.memory = engine.memory.replace(raft_chunk_frames=4)
    engine.compute_flows(frames, 3, Stages())
    assert sizes == [4, 4, 4, 2]  # the CPU's default: extra pairs would only cost time there
    sizes.clear()
    engine.memory = engine.memory.replace(raft_equal_chunks=True)  # a GPU's default
    ff, fb = engine.compute_flows(frames, 3, Stages())
    assert sizes == [4, 4, 4, 4]  # starts 0, 3, 6 and 7 (not 9: a 2-frame remainder)
    sizes.clear()
    engine.memory = engine.memory.replace(raft_chunk_frames=11)
    whole_f, whole_b = engine.compute_flows(frames, 3, Stages())
    assert sizes == [11]
    torch.testing.assert_close(ff, whole_f, atol=1e-3, rtol=0)
    torch.testing.assert_close(fb, whole_b, atol=1e-3, rtol=0)


def test_batch_out_of_memory_retries_windows_one_at_a_time(det_weights_dir, monkeypatch, caplog):
    """A batch of windows that runs out of memory is retried one window at a time (feature cache
    dropped), with the frames of one window at a time."""
    from propainter_wire.config import InpaintConfig
    from propainter_wire.pipeline.stages import Stages
    from propainter_wire.runner.inputs import prepare_engine_input

    rng = np.random.default_rng(2)
    frames, height, width = 22, 32, 48
    clip = rng.random((frames, height, width, 3)).astype(np.float32)
    masks = np.zeros((frames, height, width), bool)
    masks[:, 8:20, 12:30] = True
    config = InpaintConfig(precision="fp32", raft_iters=2)
    outs = {}
    for name, windows in (("retried", 2), ("plain", 1)):
        engine = ProPainterEngine(det_weights_dir, device="cpu", precision="fp32",
                                  tuning=Tuning(window_batch=windows))
        net = engine.models.inpainter
        original = net.forward_features

        def refuse_batches(feats, *args, original=original, **kwargs):
            if feats.shape[0] > 1:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return original(feats, *args, **kwargs)

        net.forward_features = refuse_batches
        with caplog.at_level("WARNING", logger="propainter_wire"):
            outs[name] = engine.run(prepare_engine_input(list(clip), list(masks), config), config, Stages())
    assert "one at a time" in caplog.text
    np.testing.assert_allclose(outs["retried"], outs["plain"], atol=1.5 / 255)
