"""End-to-end parity of the propainter engine with the reference (CPU, fp32, deterministic weights).

Each stage goes through the engine's own chunking, and the final frames go
through the CLI exactly as a user's run does.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from propainter_wire.config import InpaintConfig
from propainter_wire.pipeline.stages import Stages


@pytest.fixture(scope="module")
def engine(det_weights_dir):
    from propainter_wire.engines.propainter import ProPainterEngine

    return ProPainterEngine(det_weights_dir, device="cpu", precision="fp32")


def _frames(parity):
    return torch.from_numpy(parity["frames"]).permute(0, 3, 1, 2).float() / 255.0 * 2 - 1


def _mask(a):
    return torch.from_numpy((np.asarray(a) > 0).astype(np.float32)).reshape(a.shape[0], 1, *a.shape[-2:])


def test_engine_flows_match_reference(engine, parity):
    ff, fb = engine.compute_flows(torch.from_numpy(parity["frames"]), 20, Stages())  # (T, H, W, 3) uint8
    for ours, ref in ((ff, parity["raft_flow_f"]), (fb, parity["raft_flow_b"])):
        diff = (ours.numpy() - ref).__abs__()
        assert diff.max() <= 1e-2 and diff.mean() <= 1e-4, (diff.max(), diff.mean())


def test_engine_completion_and_propagation_match_reference(engine, parity):
    ff = torch.from_numpy(parity["raft_flow_f"])
    fb = torch.from_numpy(parity["raft_flow_b"])
    cf, cb = engine.complete_flows(ff, fb, _mask(parity["flow_masks"]), 80, Stages())
    assert np.abs(cf.numpy() - parity["completed_flow_f"]).max() <= 1e-3
    assert np.abs(cb.numpy() - parity["completed_flow_b"]).max() <= 1e-3

    frames = _frames(parity)
    masks = _mask(parity["masks_dilated"])
    cf = torch.from_numpy(parity["completed_flow_f"])
    cb = torch.from_numpy(parity["completed_flow_b"])
    # a sub-video shorter than the clip exercises the padded spans; 12 frames fit one span at 80
    updated, updated_masks = engine.propagate(torch.from_numpy(parity["frames"]), masks.bool(), cf, cb, 80, Stages())
    prop_ref = torch.from_numpy(parity["prop_img"])
    expected = frames * (1 - masks) + prop_ref * masks
    assert (updated - expected).abs().max() <= 1e-3
    assert np.array_equal(updated_masks.numpy().astype(np.uint8), parity["prop_mask"])


@pytest.mark.parametrize("precision", ["fp32", None])  # None: the default (auto: bf16 on a CPU with native bf16)
def test_cli_final_frames_match_reference(parity, det_weights_dir, tmp_path, precision):
    import cv2

    from propainter_wire.cli import main

    frames_dir, masks_dir = tmp_path / "frames", tmp_path / "masks"
    frames_dir.mkdir()
    masks_dir.mkdir()
    for i, (frame, mask) in enumerate(zip(parity["frames"], parity["masks"], strict=True)):
        cv2.imwrite(str(frames_dir / f"{i:05d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(masks_dir / f"{i:05d}.png"), mask)
    out = tmp_path / "out"
    code = main(["inpaint", "-i", str(frames_dir), "-m", str(masks_dir), "-o", str(out), "--engine", "propainter",
                 "--weights-dir", str(det_weights_dir), "--device", "cpu", "--quiet",
                 *(["--precision", precision] if precision else [])])
    assert code == 0
    ours = np.stack([cv2.cvtColor(cv2.imread(str(out / "frames" / f"{i:05d}.png")), cv2.COLOR_BGR2RGB)
                     for i in range(len(parity["frames"]))])
    ref = parity["comp_frames"]
    inside = parity["masks_dilated"] > 0
    assert np.array_equal(ours[~inside], ref[~inside])
    diff = np.abs(ours.astype(int) - ref.astype(int))[inside]
    assert diff.mean() <= 1.0 and diff.max() <= 4, (diff.mean(), diff.max())


def _panning_clip(seed: int, t: int, h: int, w: int, step: int, margin: int,
                  box: tuple[slice, slice]) -> tuple[np.ndarray, np.ndarray]:
    """(t, h, w, 3) float32 crops panning ``step`` px per frame over noise, and the same box masked in each."""
    rng = np.random.default_rng(seed)
    base = rng.random((h + margin, w + margin, 3)).astype(np.float32)
    frames = np.stack([base[i:i + h, step * i:step * i + w] for i in range(t)])
    masks = np.zeros((t, h, w), bool)
    masks[(slice(None), *box)] = True
    return frames, masks


def test_window_settings_are_honoured(engine):
    """A clip longer than the sub-video length runs through padded spans and reference windows."""
    frames, masks = _panning_clip(0, 9, 64, 96, step=2, margin=40, box=np.s_[20:40, 30:50])
    from propainter_wire.engines.base import EngineInput

    inp = EngineInput(frames=frames, masks=masks, flow_masks=masks, raw_masks=masks)
    cfg = InpaintConfig(neighbor_length=4, ref_stride=3, subvideo_length=4, raft_iters=2)
    out = engine.run(inp, cfg, Stages())
    assert out.shape == frames.shape and np.isfinite(out).all()
    q = np.rint(frames * 255) / 255
    assert np.allclose(out[~masks], q[~masks])


def test_tiny_stage_budget_gives_the_same_frames(engine, monkeypatch, tmp_path):
    """Every stage's bounded-memory path (propagation streamed frame by frame, chunked networks,
    arrays on disk) changes nothing beyond float summation order."""
    from propainter_wire.engines.base import EngineInput
    from propainter_wire.io.scratch import Scratch

    frames, masks = _panning_clip(2, 7, 48, 64, step=3, margin=30, box=np.s_[10:30, 20:40])
    cfg = InpaintConfig(neighbor_length=4, ref_stride=3, subvideo_length=4, raft_iters=2)
    expected = engine.run(EngineInput(frames=frames, masks=masks, flow_masks=masks, raw_masks=masks), cfg, Stages())
    budgets = ("stage_budget_bytes", "propagation_budget_bytes", "transformer_budget_bytes", "raft_budget_bytes")
    monkeypatch.setattr(engine, "memory", engine.memory.replace(**dict.fromkeys(budgets, 1)))
    chunks = []
    real = engine.models.inpainter.set_chunking
    monkeypatch.setattr(engine.models.inpainter, "set_chunking",
                        lambda *a, **k: (chunks.append((a, k)), real(*a, **k))[1])
    with Scratch(tmp_path) as scratch:
        inp = EngineInput(frames=frames, masks=masks, flow_masks=masks, raw_masks=masks, scratch=scratch)
        out = engine.run(inp, cfg, Stages())
        bounded = np.stack([out[i] for i in range(len(frames))])
        assert engine.models.flow_completion.frames_per_chunk == 4
        assert chunks and all(a == (1, 1) for a, _ in chunks)
    engine.run(EngineInput(frames=frames, masks=masks, flow_masks=masks, raw_masks=masks), cfg, Stages())
    assert engine.models.flow_completion.frames_per_chunk is None  # back to whole sub-videos without a scratch
    assert np.abs(bounded - expected).max() <= 2 / 255


def test_out_of_memory_retries_with_smaller_chunks(engine, monkeypatch, caplog):
    """A stage that runs out of device memory retries with smaller pieces before giving up."""
    import propainter_wire.flow.raft as raft_module

    frames = torch.randint(0, 256, (3, 64, 64, 3), dtype=torch.uint8)
    real = raft_module.bidirectional_flows
    calls = []

    def flaky(raft, chunk, iters, **options):
        options = {k: v for k, v in options.items() if k not in ("budget_bytes", "corr_dtype", "graphs")}
        calls.append(options)
        if not options:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real(raft, chunk, iters=iters, **options)

    monkeypatch.setattr(raft_module, "bidirectional_flows", flaky)
    ff, fb = engine.compute_flows(frames, 2, Stages())
    assert ff.shape == (2, 2, 64, 64) and calls[1] == {"pairs_per_chunk": 2}
    assert "retrying" in caplog.text

    net = engine.models.flow_completion
    real_complete = net.complete_direction
    lengths = []

    def picky(f, m, backward=False):
        lengths.append(f.shape[1])
        if f.shape[1] > 21:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return real_complete(f, m, backward=backward)

    monkeypatch.setattr(net, "complete_direction", picky)
    flows = torch.zeros(30, 2, 64, 64)
    masks = torch.zeros(31, 1, 64, 64)
    cf, cb = engine.complete_flows(flows, flows, masks, 80, Stages())
    assert cf.shape == flows.shape and lengths[0] == 30 and max(lengths[1:]) <= 21


def test_transformer_out_of_memory_drops_the_feature_cache(engine, monkeypatch, caplog):
    """A window that runs out of memory is retried once with the encoder-feature cache emptied."""
    rng = np.random.default_rng(1)
    t, h, w = 8, 32, 48
    frames = rng.random((t, h, w, 3)).astype(np.float32)
    masks = np.zeros((t, h, w), bool)
    masks[:, 8:20, 10:30] = True
    from propainter_wire.engines.base import EngineInput

    inp = EngineInput(frames=frames, masks=masks, flow_masks=masks, raw_masks=masks)
    cfg = InpaintConfig(neighbor_length=4, raft_iters=1)
    expected = engine.run(inp, cfg, Stages())

    net = engine.models.inpainter
    real = net.forward_features
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(*args, **kwargs)

    monkeypatch.setattr(net, "forward_features", flaky)
    out = engine.run(inp, cfg, Stages())
    assert "without the feature cache" in caplog.text
    assert np.array_equal(out, expected)
