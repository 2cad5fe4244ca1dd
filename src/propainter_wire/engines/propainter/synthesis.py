"""Step 4: feature propagation and the sparse transformer over sliding windows, and the reference's
uint8 averaging of overlapping windows.

Windows run in runs of batches (``pipeline.windows.window_runs``); each run's rows travel to the
device while the previous run computes (``runtime.transfer.Prefetcher``); encoder features are
per frame, computed once and shared by overlapping windows (:class:`_FeatureCache`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import torch

from ...config import InpaintConfig
from ...io.scratch import DiskArray
from ...models.inpainter import chunk_sizes_for_budget
from ...pipeline.stages import Stages
from ...pipeline.windows import transformer_windows, window_runs
from ...runtime.memory import retry_on_resource_error
from ...runtime.precision import PrecisionPolicy, cudnn_autotune
from ...runtime.transfer import HostReturns, Prefetcher
from .policy import MemoryPolicy
from .store import INPUT_CHUNK, ClipStore


def synthesize(net: torch.nn.Module, updated: torch.Tensor, masks: torch.Tensor, updated_masks: torch.Tensor,
               flows_f: torch.Tensor, flows_b: torch.Tensor, original_u8: torch.Tensor, config: InpaintConfig,
               stages: Stages, *, store: ClipStore, memory: MemoryPolicy, precision: PrecisionPolicy,
               on_final: Callable[[int, np.ndarray], None] | None = None) -> np.ndarray | DiskArray:
    """Transformer windows and the reference's uint8 averaging of overlapping windows.

    Compositing and averaging run on the device with the reference's exact
    arithmetic (float32 scaling, truncation to uint8); a frame goes to the host
    as soon as no later window touches it.

    Args:
        net: the inpainter (``models.inpainter.InpaintGenerator``).
        updated: (T, 3, H, W) in [-1, 1], frames after image propagation.
        masks: (T, 1, H, W) bool, the dilated masks.
        updated_masks: (T, 1, H, W) bool, masks after propagation.
        flows_f, flows_b: (T-1, 2, H, W) completed flows, pixels.
        original_u8: (T, H, W, 3) uint8, the frames at processing size.
        on_final: called as ``on_final(index, uint8 frame)`` as soon as a frame is final.
    Returns:
        (T, H, W, 3) uint8 composited frames, in memory or in the store's scratch.
    """
    length = updated.shape[0]
    windows = transformer_windows(length, config.neighbor_length, config.ref_stride, config.subvideo_length)
    last_window = {idx: k for k, window in enumerate(windows) for idx in window.local}
    has_mask = [flag for i in range(0, length, INPUT_CHUNK)
                for flag in masks[i:i + INPUT_CHUNK].flatten(1).any(1).tolist()]
    result: dict[int, torch.Tensor] = {}
    out = store.output(tuple(original_u8.shape))
    dev = store.device
    h, w = updated.shape[-2:]
    # encoder features are per frame: computed once, shared by overlapping windows and reference frames
    cache = _FeatureCache(max_bytes=memory.feature_cache_bytes, bytes_per_frame=128 * (h // 4) * (w // 4) * 4)

    masked = [any(has_mask[i] for i in window.local) for window in windows]
    # small frames on a GPU: windows of one shape run as one batch (see MemoryPolicy.window_group_size)
    runs = window_runs(windows, masked, memory.window_group_size(h, w))

    def requests(run: list[list[int]], cached: set[int]) -> dict:
        """Host rows a run of windows needs, window after window in batch order, given the frames
        whose features will be cached by then."""
        order = [k for batch in run for k in batch]
        wanted = {"original": (original_u8, [i for k in order for i in windows[k].local])}
        if masked[order[0]]:  # (a run of several windows is masked throughout)
            ids = [i for k in order for i in windows[k].frames]
            pairs = [i for k in order for i in windows[k].local[:-1]]
            wanted.update(flows_f=(flows_f, pairs), flows_b=(flows_b, pairs), masks=(masks, ids),
                          updated_masks=(updated_masks, ids),
                          frames=(updated, [i for i in dict.fromkeys(ids) if i not in cached]))
        return wanted

    feeder = Prefetcher(dev, numpy_gather=memory.numpy_gather)  # window inputs, one run ahead

    def deliver(idx: int, frame: torch.Tensor) -> None:  # a final frame, back on the host
        frame = frame.numpy()
        out[idx] = frame
        if on_final is not None:
            on_final(idx, frame)

    returns = HostReturns(deliver)
    try:
        with stages("transformer", total=len(windows)) as bar, attention_backends(dev), \
                cudnn_autotune("transformer" in memory.autotune_stages):
            wanted = requests(runs[0], set())
            ticket = feeder.submit(wanted)
            for r, run in enumerate(runs):
                order = [k for batch in run for k in batch]
                fetched_ids = list(wanted["frames"][1]) if "frames" in wanted else []
                inputs = feeder.take(ticket)  # this run's rows on the device
                if r + 1 < len(runs):  # the next run's rows travel while this one computes
                    # (one cache lookup per batch, its windows' frames together)
                    lookups = [[i for k in batch for i in windows[k].frames] for batch in run]
                    wanted = requests(runs[r + 1], cache.keys_after(lookups))
                    ticket = feeder.submit(wanted)
                returns.deliver()  # finished frames of earlier windows go to the host side
                rows = _RunRows([windows[k] for k in order])
                preds = {}  # window -> (L, 3, H, W) in [-1, 1]
                if "masks" in inputs:
                    first = 0
                    for batch in run:
                        pred = _infer_windows(net, cache, inputs, rows, first, first + len(batch), fetched_ids,
                                              updated, store=store, memory=memory, precision=precision)
                        preds.update(zip(batch, pred, strict=True))
                        first += len(batch)
                for k in sorted(order):  # in window order: the reference's averaging
                    j = order.index(k)
                    original = inputs["original"][rows.local(j)]  # (L, H, W, 3) uint8
                    if k not in preds:
                        composited = original  # nothing to fill: compositing returns the originals
                    else:
                        # (L, 3, H, W) in [-1, 1] -> (L, H, W, 3) in [0, 255] float32, truncated like the reference
                        pred_u8 = (((preds.pop(k).float() + 1) / 2).permute(0, 2, 3, 1) * 255).to(torch.uint8)
                        m = inputs["masks"][rows.local_frames(j)].permute(0, 2, 3, 1).to(torch.uint8)  # 0/1
                        composited = pred_u8 * m + original * (1 - m)
                    for i, idx in enumerate(windows[k].local):
                        result[idx] = _average(result.get(idx), composited[i])
                        if last_window[idx] == k:
                            returns.put(idx, result.pop(idx))
                    bar.update()
            returns.deliver(wait=True)
    finally:
        feeder.close()
    return out


def _infer_windows(net: torch.nn.Module, cache: _FeatureCache, inputs: dict[str, torch.Tensor], rows: _RunRows,
                   first: int, stop: int, fetched_ids: list[int], updated, *, store: ClipStore,
                   memory: MemoryPolicy, precision: PrecisionPolicy) -> torch.Tensor:
    """The generator on windows ``first .. stop-1`` of a run, all of one shape:
    (stop - first, L, 3, H, W) in [-1, 1].

    ``inputs`` holds the run's rows on the device, window after window (``rows`` finds
    them): ``masks`` and ``updated_masks`` (T rows a window), ``flows_f`` and ``flows_b``
    (L-1 rows); its ``frames`` are the propagated frames of ``fetched_ids``. The windows
    share one encoding of each frame (the feature cache). Out of memory, the feature cache
    is dropped and the windows are retried one at a time.
    """
    dev = store.device
    h, w = updated.shape[-2:]
    element = 2 if precision.stage_dtype("inpainter") is not None else 4
    n_frames, num_local = len(rows.windows[first].frames), len(rows.windows[first].local)
    if store.bounded:  # per-frame layers and attention windows in chunks
        net.set_chunking(*chunk_sizes_for_budget(memory.transformer_budget_bytes, (h, w), n_frames, element))
    else:
        net.set_chunking()

    def encode(missing: list[int]) -> torch.Tensor:
        at = {idx: p for p, idx in enumerate(fetched_ids)}
        if all(i in at for i in missing):
            frames = inputs["frames"][[at[i] for i in missing]]
        else:  # the cache lost frames after the prefetch (an out-of-memory retry): fetch them now
            frames = updated[missing].to(dev)
        if precision.stage_dtype("inpainter") is None:  # no autocast to take a half copy to its dtype
            frames = frames.float()
        where = [rows.position[i] for i in missing]
        return net.encode(frames.unsqueeze(0), inputs["masks"][where].unsqueeze(0),
                          inputs["updated_masks"][where].unsqueeze(0))[0]

    def infer(a: int, b: int) -> torch.Tensor:  # windows a .. b-1 of the run
        g = b - a

        def batched(name: str, part: slice) -> torch.Tensor:
            x = inputs[name][part]
            return x.view(g, -1, *x.shape[1:])

        with precision.autocast(dev, "inpainter"):
            feats = cache.get([list(rows.windows[j].frames) for j in range(a, b)], encode)  # (g*T, C, h/4, w/4)
            return net.forward_features(
                feats.view(g, n_frames, *feats.shape[1:]),
                batched("flows_f", rows.pairs(a, b)).float(),  # stored half or float32
                batched("flows_b", rows.pairs(a, b)).float(),
                batched("masks", rows.frames(a, b)),
                batched("updated_masks", rows.frames(a, b)),
                num_local,
            )

    count = stop - first

    def ways():  # together; then (a resource error) one at a time, the feature cache dropped
        yield False
        if cache.store or count > 1:
            yield True

    def drop_cache(apart: bool) -> None:
        cache.store.clear()
        cache.capacity = 1

    return retry_on_resource_error(
        lambda apart: torch.cat([infer(j, j + 1) for j in range(first, stop)]) if apart else infer(first, stop),
        ways(), stage="transformer", before_retry=drop_cache,
        describe=lambda apart: "retrying " + ("without the feature cache" if count == 1
                                              else f"the {count} windows one at a time"))


class _RunRows:
    """Where each window of a run finds its rows in the run's inputs (see ``synthesize``), which hold
    the windows' rows one window after another: local frames (``original``), frames (``masks``,
    ``updated_masks``) and flow pairs (``flows_f``, ``flows_b``)."""

    def __init__(self, windows: list) -> None:
        self.windows = windows
        self._local = np.cumsum([0] + [len(w.local) for w in windows]).tolist()
        self._frames = np.cumsum([0] + [len(w.frames) for w in windows]).tolist()
        self._pairs = np.cumsum([0] + [len(w.local) - 1 for w in windows]).tolist()
        self.position: dict[int, int] = {}  # a frame's first row in ``masks``
        for row, idx in enumerate(i for w in windows for i in w.frames):
            self.position.setdefault(idx, row)

    def local(self, j: int) -> slice:
        """Window j's local frames in ``original``."""
        return slice(self._local[j], self._local[j + 1])

    def local_frames(self, j: int) -> slice:
        """Window j's local frames in ``masks`` (its first frames)."""
        return slice(self._frames[j], self._frames[j] + len(self.windows[j].local))

    def frames(self, a: int, b: int) -> slice:
        """Windows a .. b-1's frames in ``masks`` and ``updated_masks``."""
        return slice(self._frames[a], self._frames[b])

    def pairs(self, a: int, b: int) -> slice:
        """Windows a .. b-1's flow pairs in ``flows_f`` and ``flows_b``."""
        return slice(self._pairs[a], self._pairs[b])


class _FeatureCache:
    """Per-frame encoder features on the device, least recently used evicted past a byte budget."""

    def __init__(self, max_bytes: int, bytes_per_frame: int):
        self.capacity = max(1, max_bytes // max(1, bytes_per_frame))
        self.store: dict[int, torch.Tensor] = {}

    def get(self, ids: list[int] | list[list[int]], encode) -> torch.Tensor:
        """Features of frames ``ids`` (T, C, h, w); ``encode(missing_ids)`` computes the absent ones.

        ``ids`` may be a list of lists (windows of a batch): their features one list after the
        other, (sum of lengths, C, h, w), each frame encoded once however many lists hold it.
        """
        lists = ids if ids and isinstance(ids[0], list) else [ids]
        touched = list(dict.fromkeys(i for one in lists for i in one))
        missing = [i for i in touched if i not in self.store]
        if missing:
            encoded = encode(missing)  # (M, C, h, w)
            for i, feat in zip(missing, encoded, strict=True):
                # each frame in its own memory: a view would keep the whole batch alive until its last frame
                # is evicted (reference frames, used by every window, pinned ever more batches on long clips)
                self.store[i] = feat.clone() if len(missing) > 1 else feat
        feats = torch.stack([self.store[i] for one in lists for i in one])
        for i in touched:  # most recently used last
            self.store[i] = self.store.pop(i)
        while len(self.store) > max(self.capacity, len(touched)):
            self.store.pop(next(iter(self.store)))
        return feats

    def keys_after(self, ids: list[int] | list[list[int]]) -> set[int]:
        """The frames cached once ``get(ids, ...)`` has run (same eviction order), without running it.

        A list of lists stands for one ``get`` per list, in turn.
        """
        order = list(self.store)
        for one in (ids if ids and isinstance(ids[0], list) else [ids]):
            touched = list(dict.fromkeys(one))
            order = [i for i in order if i not in touched] + touched
            order = order[len(order) - max(self.capacity, len(touched)):]
        return set(order)


def _average(previous: torch.Tensor | None, new: torch.Tensor) -> torch.Tensor:
    """The reference's running average of overlapping windows, in uint8 with truncation."""
    if previous is None:
        return new
    return (previous.float() * 0.5 + new.float() * 0.5).to(torch.uint8)


def attention_backends(device: torch.device):
    """Prefer the flash and memory-efficient attention kernels over cuDNN's on a GPU.

    The sparse windows change shape from one transformer window to the next, and
    cuDNN's attention builds an execution plan for each new shape (seconds over a
    clip); the flash and memory-efficient kernels need no plan. Math stays the last resort.
    """
    if device.type != "cuda":
        return contextlib.nullcontext()
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # torch without the backend selector
        return contextlib.nullcontext()
    order = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
    try:
        return sdpa_kernel(order, set_priority=True)
    except TypeError:  # torch < 2.6: no priority order, the listed backends are allowed
        return sdpa_kernel(order)


