"""The ProPainter engine: RAFT flow -> flow completion -> image propagation -> transformer.

Same semantics as the reference inference script at equal settings:

1. RAFT forward/backward flows between consecutive frames (fp32 unless asked).
2. Recurrent flow completion in sub-videos of ``subvideo_length`` flows (5 flows of
   context each side), then known flow kept outside the flow mask.
3. Non-learned image propagation in sub-videos of ``min(100, subvideo_length)``
   frames (10 frames of context each side).
4. Feature propagation + sparse transformer over sliding windows of local frames
   plus reference frames; overlapping outputs averaged in uint8 like the reference.

The clip stays on the host; only the frames, flows and masks of the chunk being
processed go to the device, so device memory is bounded by the window sizes,
not by the clip length.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..config import InpaintConfig
from ..pipeline.propagation import propagate_images
from ..pipeline.stages import Stages
from ..pipeline.windows import flow_completion_spans, propagation_spans, transformer_windows
from .base import EngineInput

log = logging.getLogger("propainter_wire")

PAD_MULTIPLE = 8  # the networks downsample by 8 at most


@dataclass
class ProPainterModels:
    """The three networks, on their device, in eval mode."""

    raft: torch.nn.Module
    flow_completion: torch.nn.Module
    inpainter: torch.nn.Module

    @classmethod
    def load(cls, weights_dir: Path, device: torch.device) -> ProPainterModels:
        from ..weights import (
            FLOW_COMPLETION_FILE,
            INPAINTER_FILE,
            RAFT_FILE,
            load_flow_completion,
            load_inpainter,
            load_raft,
        )

        weights_dir = Path(weights_dir)
        models = cls(
            raft=load_raft(weights_dir / RAFT_FILE),
            flow_completion=load_flow_completion(weights_dir / FLOW_COMPLETION_FILE),
            inpainter=load_inpainter(weights_dir / INPAINTER_FILE),
        )
        for m in (models.raft, models.flow_completion, models.inpainter):
            m.to(device).eval().requires_grad_(False)
        return models


class ProPainterEngine:
    """Inpainting with the ProPainter networks (needs the three checkpoints)."""

    name = "propainter"
    feature_cache_bytes = 2 * 2**30  # encoder features kept on the device across windows
    # frames, masks and flows of the whole clip stay on the device below this size, else on the host
    resident_bytes = 12 * 2**30
    raft_chunk_frames: int | None = None  # frames handed to RAFT at once; None: by frame size

    def __init__(self, weights_dir: Path, device: torch.device | str = "cpu", precision: str = "fp32",
                 models: ProPainterModels | None = None):
        from ..runtime.precision import resolve_precision

        self.device = torch.device(device)
        self.store = torch.device("cpu")  # where whole-clip tensors live; chosen per clip in run()
        self.policy = resolve_precision(precision, self.device)
        self.models = models if models is not None else ProPainterModels.load(weights_dir, self.device)

    def _keep(self, x: torch.Tensor) -> torch.Tensor:
        """A stage's result, float32, where whole-clip tensors live (``self.store``)."""
        return x.detach().float().to(self.store)

    def _store_for(self, shape: torch.Size) -> torch.device:
        """The device when the clip's tensors fit ``resident_bytes`` there, else the host."""
        if self.device.type != "cuda":
            return self.device
        if _clip_bytes(shape) <= self.resident_bytes:
            return self.device
        log.debug("clip tensors (%.1f GiB) stay on the host", _clip_bytes(shape) / 2**30)
        return torch.device("cpu")

    # -- stage 1 ------------------------------------------------------------------
    def compute_flows(self, frames: torch.Tensor, iters: int, stages: Stages) -> tuple[torch.Tensor, torch.Tensor]:
        """RAFT flows of a clip.

        Args:
            frames: (T, 3, H, W) in [-1, 1].
        Returns:
            flows_f, flows_b: (T-1, 2, H, W) pixels on ``self.store``; ``flows_f[t]`` maps
            frame t to t+1, ``flows_b[t]`` frame t+1 to t.
        """
        from ..flow.raft import bidirectional_flows

        t, _, h, w = frames.shape
        chunk = max(2, self.raft_chunk_frames or _raft_chunk_frames(h, w))
        budget = _raft_budget_bytes(self.device)
        starts = list(range(0, t - 1, chunk - 1))
        out_f, out_b = [], []
        # out of memory (or a library refusing a size): retry the chunk with fewer pairs at once,
        # then with on-demand correlation, then one pair at a time
        fallbacks = [{}, {"pairs_per_chunk": 2}, {"corr": "local", "pairs_per_chunk": 2},
                     {"corr": "local", "pairs_per_chunk": 1}]
        with stages("flow", total=len(starts)) as bar, self.policy.autocast(self.device, "raft"):
            for s in starts:
                e = min(t, s + chunk)
                for attempt, options in enumerate(fallbacks):
                    try:
                        f, b = bidirectional_flows(self.models.raft, frames[s:e].to(self.device), iters=iters,
                                                   budget_bytes=budget, **options)
                        break
                    except RuntimeError as exc:
                        if not _is_resource_error(exc) or attempt == len(fallbacks) - 1:
                            raise
                        _release_memory()
                        log.warning("RAFT: %s; retrying with %s", _first_line(exc), fallbacks[attempt + 1])
                out_f.append(self._keep(f))
                out_b.append(self._keep(b))
                bar.update()
        return torch.cat(out_f), torch.cat(out_b)

    # -- stage 2 ------------------------------------------------------------------
    def complete_flows(self, flows_f: torch.Tensor, flows_b: torch.Tensor, flow_masks: torch.Tensor,
                       subvideo_length: int, stages: Stages) -> tuple[torch.Tensor, torch.Tensor]:
        """Complete the flows inside the flow masks.

        Args:
            flows_f, flows_b: (T-1, 2, H, W) pixels.
            flow_masks: (T, 1, H, W) float {0, 1}.
        Returns:
            completed (T-1, 2, H, W) forward and backward flows on ``self.store``.
        """
        length = subvideo_length
        with stages("complete") as bar:
            while True:
                try:
                    return self._complete_spans(flows_f, flows_b, flow_masks, length, bar)
                except RuntimeError as exc:
                    if not _is_resource_error(exc) or length <= 10:
                        raise
                    _release_memory()
                    length = max(10, min(length, flows_f.shape[0]) // 2)
                    log.warning("flow completion: %s; retrying in sub-videos of %d flows (results differ slightly "
                                "from one %d-flow sub-video)", _first_line(exc), length, subvideo_length)

    def _complete_spans(self, flows_f: torch.Tensor, flows_b: torch.Tensor, flow_masks: torch.Tensor,
                        subvideo_length: int, bar) -> tuple[torch.Tensor, torch.Tensor]:
        """Flow completion over padded sub-videos of ``subvideo_length`` flows (see ``complete_flows``).

        In a half precision on a GPU the network's weights and inputs are converted to that
        dtype, as the reference does with ``--fp16`` (autocast would keep fp32 copies of
        many activations: more memory for the same arithmetic).
        """
        net = self.models.flow_completion
        dev = self.device
        half = self.policy.stage_dtype("flow_completion") if dev.type == "cuda" else None
        if half is not None and next(net.parameters()).dtype != half:
            net.to(half)
        out_f, out_b = [], []
        for span in flow_completion_spans(flows_f.shape[0], subvideo_length):
            ff = flows_f[span.start:span.stop].unsqueeze(0).to(dev, half)
            fb = flows_b[span.start:span.stop].unsqueeze(0).to(dev, half)
            mm = flow_masks[span.start:span.stop + 1].unsqueeze(0).to(dev, half)
            with contextlib.nullcontext() if half is not None else self.policy.autocast(dev, "flow_completion"):
                pred_f, pred_b = net.forward_bidirect_flow(ff, fb, mm)
                comb_f, comb_b = net.combine_flow(ff, fb, pred_f, pred_b, mm)
            out_f.append(self._keep(comb_f[0, span.local_keep]))
            out_b.append(self._keep(comb_b[0, span.local_keep]))
            bar.update()
        return torch.cat(out_f), torch.cat(out_b)

    # -- stage 3 ------------------------------------------------------------------
    def propagate(self, frames: torch.Tensor, masks: torch.Tensor, flows_f: torch.Tensor, flows_b: torch.Tensor,
                  subvideo_length: int, stages: Stages) -> tuple[torch.Tensor, torch.Tensor]:
        """Flow-guided propagation of known pixels into the masks.

        Args:
            frames: (T, 3, H, W) in [-1, 1]; masks: (T, 1, H, W) float {0, 1}.
        Returns:
            updated frames (T, 3, H, W) in [-1, 1] and the still-unfilled masks (T, 1, H, W).
        """
        spans = propagation_spans(frames.shape[0], subvideo_length)
        out_frames, out_masks = [], []
        with stages("propagate", total=len(spans)) as bar:
            for span in spans:
                dev = self.device
                fr = frames[span.start:span.stop].to(dev)
                mk = masks[span.start:span.stop].to(dev)
                ff = flows_f[span.start:span.stop - 1].to(dev)
                fb = flows_b[span.start:span.stop - 1].to(dev)
                prop, updated = propagate_images(fr * (1 - mk), ff, fb, mk, interpolation="nearest")
                merged = fr * (1 - mk) + prop * mk
                out_frames.append(self._keep(merged[span.local_keep]))
                out_masks.append(self._keep(updated[span.local_keep]))
                bar.update()
        return torch.cat(out_frames), torch.cat(out_masks)

    # -- stage 4 ------------------------------------------------------------------
    def synthesize(self, updated: torch.Tensor, masks: torch.Tensor, updated_masks: torch.Tensor,
                   flows_f: torch.Tensor, flows_b: torch.Tensor, original_u8: torch.Tensor,
                   config: InpaintConfig, stages: Stages, on_final=None) -> np.ndarray:
        """Transformer windows and the reference's uint8 averaging of overlapping windows.

        Compositing and averaging run on the device with the reference's exact
        arithmetic (float32 scaling, truncation to uint8); a frame goes to the host
        as soon as no later window touches it.

        Args:
            updated: (T, 3, H, W) in [-1, 1], frames after image propagation.
            masks: (T, 1, H, W) float {0, 1}, the dilated masks.
            updated_masks: (T, 1, H, W) float {0, 1}, masks after propagation.
            flows_f, flows_b: (T-1, 2, H, W) completed flows, pixels.
            original_u8: (T, H, W, 3) uint8, the frames at processing size.
            on_final: called as ``on_final(index, uint8 frame)`` as soon as a frame is final.
        Returns:
            (T, H, W, 3) uint8 composited frames.
        """
        length = updated.shape[0]
        windows = transformer_windows(length, config.neighbor_length, config.ref_stride, config.subvideo_length)
        last_window = {idx: k for k, window in enumerate(windows) for idx in window.local}
        has_mask = (masks.flatten(1).amax(1) > 0).tolist()
        result: dict[int, torch.Tensor] = {}
        out = np.empty(tuple(original_u8.shape), np.uint8)
        net = self.models.inpainter
        dev = self.device
        h, w = updated.shape[-2:]
        # encoder features are per frame: computed once, shared by overlapping windows and reference frames
        cache = _FeatureCache(max_bytes=self.feature_cache_bytes, bytes_per_frame=128 * (h // 4) * (w // 4) * 4)

        def encode(missing: list[int]) -> torch.Tensor:
            return net.encode(updated[missing].unsqueeze(0).to(dev), masks[missing].unsqueeze(0).to(dev),
                              updated_masks[missing].unsqueeze(0).to(dev))[0]

        with stages("transformer", total=len(windows)) as bar:
            for k, window in enumerate(windows):
                local = list(window.local)
                original = original_u8[local].to(dev)  # (L, H, W, 3) uint8
                if not any(has_mask[i] for i in local):
                    composited = original  # nothing to fill: compositing returns the originals
                else:
                    ids = list(window.frames)

                    def infer(ids=ids, local=local):
                        with self.policy.autocast(dev, "inpainter"):
                            feats = cache.get(ids, encode)
                            return net.forward_features(
                                feats.unsqueeze(0),
                                flows_f[local[:-1]].unsqueeze(0).to(dev),
                                flows_b[local[:-1]].unsqueeze(0).to(dev),
                                masks[ids].unsqueeze(0).to(dev),
                                updated_masks[ids].unsqueeze(0).to(dev),
                                len(local),
                            )

                    try:
                        pred = infer()
                    except RuntimeError as exc:  # out of memory: drop the feature cache once and retry
                        if not _is_resource_error(exc) or not cache.store:
                            raise
                        log.warning("transformer: %s; retrying without the feature cache", _first_line(exc))
                        cache.store.clear()
                        cache.capacity = 1
                        _release_memory()
                        pred = infer()
                    # (1, L, 3, H, W) in [-1, 1] -> (L, H, W, 3) in [0, 255] float32, truncated like the reference
                    pred_u8 = (((pred[0].float() + 1) / 2).permute(0, 2, 3, 1) * 255).to(torch.uint8)
                    m = masks[local].to(dev).permute(0, 2, 3, 1).to(torch.uint8)  # (L, H, W, 1) 0/1
                    composited = pred_u8 * m + original * (1 - m)
                for i, idx in enumerate(local):
                    result[idx] = _average(result.get(idx), composited[i])
                    if last_window[idx] == k:
                        out[idx] = result.pop(idx).cpu().numpy()
                        if on_final is not None:
                            on_final(idx, out[idx])
                bar.update()
        return out

    # -- the whole engine ------------------------------------------------------------
    def run(self, inp: EngineInput, config: InpaintConfig, stages: Stages, on_final=None) -> np.ndarray:
        """Inpaint a clip; see ``Engine``. Returns (T, H, W, 3) float32 in [0, 1].

        ``on_final(index, frame)`` receives each frame as soon as no later window changes it.
        """
        frames_u8 = np.clip(np.rint(inp.frames * 255.0), 0, 255).astype(np.uint8)
        single = inp.length == 1
        masks_np, flow_masks_np = inp.masks, inp.flow_masks
        if single:
            # one frame: a still two-frame clip, so the networks fill it spatially
            frames_u8 = np.concatenate([frames_u8, frames_u8])
            masks_np = np.concatenate([masks_np, masks_np])
            flow_masks_np = np.concatenate([flow_masks_np, flow_masks_np])
        h, w = frames_u8.shape[1:3]
        ph, pw = (-h) % PAD_MULTIPLE, (-w) % PAD_MULTIPLE

        with torch.inference_mode(), self.policy.tf32_context():
            frames = torch.from_numpy(frames_u8).permute(0, 3, 1, 2).float() / 255.0 * 2 - 1  # (T,3,H,W) [-1,1]
            masks = torch.from_numpy(masks_np.astype(np.float32)).unsqueeze(1)  # (T,1,H,W)
            flow_masks = torch.from_numpy(flow_masks_np.astype(np.float32)).unsqueeze(1)
            original = frames_u8
            if ph or pw:
                frames = _pad(frames, ph, pw)
                masks = _pad(masks, ph, pw)
                flow_masks = _pad(flow_masks, ph, pw)
                original = np.pad(frames_u8, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="reflect")
            self.store = self._store_for(frames.shape)
            frames, masks, flow_masks = frames.to(self.store), masks.to(self.store), flow_masks.to(self.store)
            original = torch.from_numpy(original).to(self.store)

            flows_f, flows_b = self.compute_flows(frames, config.raft_iters, stages)
            flows_f, flows_b = self.complete_flows(flows_f, flows_b, flow_masks, config.subvideo_length, stages)
            updated, updated_masks = self.propagate(frames, masks, flows_f, flows_b, config.subvideo_length, stages)
            emit = None
            if on_final is not None and not single:
                def emit(idx: int, frame_u8: np.ndarray) -> None:
                    on_final(idx, frame_u8[:h, :w].astype(np.float32) / 255.0)

            out = self.synthesize(updated, masks, updated_masks, flows_f, flows_b, original, config, stages,
                                  on_final=emit)

        out = out[:, :h, :w]
        if single:
            out = out[:1]
        return out.astype(np.float32) / 255.0


def _is_resource_error(exc: BaseException) -> bool:
    """Out of device memory, or a library refusing a problem this size (cuDNN/cuBLAS)."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return "out of memory" in text or "CUDNN_STATUS_NOT_SUPPORTED" in text or "CUBLAS_STATUS" in text


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def _release_memory() -> None:
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _clip_bytes(shape: torch.Size) -> int:
    """Bytes of the whole-clip tensors of a (T, 3, H, W) clip: frames, masks, 4 flows, updated frames."""
    t, _, h, w = shape
    per_pixel = 4 * (3 + 1 + 1 + 4 * 2 + 3 + 1) + 3  # float32 planes, plus the uint8 originals
    return int(t * h * w * per_pixel)


class _FeatureCache:
    """Per-frame encoder features on the device, least recently used evicted past a byte budget."""

    def __init__(self, max_bytes: int, bytes_per_frame: int):
        self.capacity = max(1, max_bytes // max(1, bytes_per_frame))
        self.store: dict[int, torch.Tensor] = {}

    def get(self, ids: list[int], encode) -> torch.Tensor:
        """Features of frames ``ids`` (T, C, h, w); ``encode(missing_ids)`` computes the absent ones."""
        missing = [i for i in ids if i not in self.store]
        if missing:
            for i, feat in zip(missing, encode(missing), strict=True):
                self.store[i] = feat
        feats = torch.stack([self.store[i] for i in ids])
        for i in ids:  # most recently used last
            self.store[i] = self.store.pop(i)
        while len(self.store) > max(self.capacity, len(ids)):
            self.store.pop(next(iter(self.store)))
        return feats


def _average(previous: torch.Tensor | None, new: torch.Tensor) -> torch.Tensor:
    """The reference's running average of overlapping windows, in uint8 with truncation."""
    if previous is None:
        return new
    return (previous.float() * 0.5 + new.float() * 0.5).to(torch.uint8)


def _pad(x: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
    """Reflect-pad (N, C, H, W) at the bottom and right (replicate where reflection is too short)."""
    mode = "reflect" if ph < x.shape[-2] and pw < x.shape[-1] else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def _raft_chunk_frames(h: int, w: int) -> int:
    """Frames handed to RAFT at once (it splits them further to fit its memory budget)."""
    pixels = h * w
    if pixels <= 1280 * 720:
        return 9
    if pixels <= 1920 * 1080:
        return 5
    return 3


def _raft_budget_bytes(device: torch.device) -> int:
    """Device memory RAFT may use for correlation volumes: 15 % of the card, 4 to 24 GiB.

    More pairs per batch keep a large GPU busy (RAFT's 20 refinement steps are many
    small kernels); a small card stays at 4 GiB and RAFT batches fewer pairs.
    """
    if device.type != "cuda":
        return 4 * 2**30
    total = torch.cuda.get_device_properties(device).total_memory
    return int(min(24 * 2**30, max(4 * 2**30, 0.15 * total)))
