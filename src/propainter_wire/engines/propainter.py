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
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ..config import InpaintConfig
from ..io.scratch import DiskArray
from ..models.inpainter import chunk_sizes_for_budget
from ..pipeline.propagation import propagate_images
from ..pipeline.stages import Stages
from ..pipeline.windows import flow_completion_spans, propagation_spans, transformer_windows
from ..runtime.cuda_graph import GraphCache
from ..runtime.precision import cudnn_autotune, precast_for_autocast, resolve_precision
from ..runtime.transfer import HostReturns, Prefetcher
from .base import EngineInput

log = logging.getLogger("propainter_wire")

PAD_MULTIPLE = 8  # the networks downsample by 8 at most


class ProPainterModels:
    """The three networks, on their device, in eval mode, without gradients.

    :meth:`load` can defer the flow-completion and inpainting networks: their checkpoints
    (nine tenths of the bytes) are read on a thread while RAFT, which only needs its own,
    computes the flows; each is placed on the device the first time it is asked for, on
    the asking thread (so nothing else touches the GPU while RAFT records its CUDA graphs).
    A checkpoint error surfaces there, as the ``WeightsError`` a direct load raises.
    """

    def __init__(self, raft: torch.nn.Module, flow_completion: torch.nn.Module | None = None,
                 inpainter: torch.nn.Module | None = None, pending: Future | None = None,
                 place: Callable[[str, object], torch.nn.Module] | None = None) -> None:
        self.raft = raft
        self._nets = {"flow_completion": flow_completion, "inpainter": inpainter}
        self._pending = pending  # -> {name: weights.PendingNetwork}
        self._place = place
        self._placing = threading.Lock()  # a network may be asked for on two threads (see ProPainterEngine)

    @property
    def flow_completion(self) -> torch.nn.Module:
        return self._get("flow_completion")

    @property
    def inpainter(self) -> torch.nn.Module:
        return self._get("inpainter")

    def _get(self, name: str) -> torch.nn.Module:
        with self._placing:
            if self._nets[name] is None:
                self._nets[name] = self._place(name, self._pending.result()[name])
            return self._nets[name]

    @classmethod
    def load(cls, weights_dir: Path, device: torch.device,
             prepare: Callable[[str, torch.nn.Module], None] = lambda name, net: None,
             defer: bool = False) -> ProPainterModels:
        """Load the checkpoints of ``weights_dir`` onto ``device``; ``prepare(name, net)`` runs on each
        network once placed (``name``: 'raft', 'flow_completion' or 'inpainter'). ``defer``: see above."""
        from ..weights import FLOW_COMPLETION_FILE, INPAINTER_FILE, RAFT_FILE, open_checkpoint, read_network

        weights_dir = Path(weights_dir)
        files = {"flow_completion": weights_dir / FLOW_COMPLETION_FILE, "inpainter": weights_dir / INPAINTER_FILE}

        def place(name: str, pending) -> torch.nn.Module:
            net = pending.place(device).requires_grad_(False)
            prepare(name, net)
            return net

        if not defer:
            raft = place("raft", read_network(RAFT_FILE, weights_dir / RAFT_FILE))
            rest = {name: read_network(path.name, path) for name, path in files.items()}
            return cls(raft, place("flow_completion", rest["flow_completion"]), place("inpainter", rest["inpainter"]))

        # opened here: a missing file is reported at once, and the thread reads these files
        # even if the folder goes away before it gets to them
        handles: dict[str, object] = {}
        try:
            for name, path in files.items():
                handles[name] = open_checkpoint(path)
            raft = place("raft", read_network(RAFT_FILE, weights_dir / RAFT_FILE))
        except BaseException:
            for handle in handles.values():
                handle.close()
            raise

        def read_rest() -> dict:
            try:
                return {name: read_network(path.name, path, handles[name]) for name, path in files.items()}
            finally:
                for handle in handles.values():
                    handle.close()

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoints")
        pending = pool.submit(read_rest)
        pool.shutdown(wait=False)
        return cls(raft, pending=pending, place=place)


class ProPainterEngine:
    """Inpainting with the ProPainter networks (needs the three checkpoints)."""

    name = "propainter"
    feature_cache_bytes = 1 * 2**30  # encoder features kept on the device across windows
    # frames, masks and flows of the whole clip stay on the device below this size, else on the host
    resident_bytes = 1 * 2**30
    raft_chunk_frames: int | None = None  # frames handed to RAFT at once; None: by frame size
    raft_budget_bytes: int | None = None  # RAFT's correlation + activation budget; None: by frame size
    raft_equal_chunks: bool | None = None  # the last RAFT chunk as long as the others; None: on a GPU only
    # half-precision storage of RAFT's all-pairs pyramids when RAFT runs in fp16 (halves their memory;
    # lookups read rounded correlations, so off unless asked)
    raft_half_pyramid = False
    # activations of one chunk of flow completion or the transformer (GPU)
    stage_budget_bytes = 2 * 2**30
    # transformer windows per batch; None: by frame size (several for small frames on a GPU, else one)
    window_batch: int | None = None
    transformer_budget_bytes = 1 * 2**30  # 1.5 GiB measured 0.4 GiB higher peak at 720p, no faster
    # a propagation span moves to the device whole below this size; above it, only its frames and
    # masks do, and the flows come over one frame at a time
    propagation_budget_bytes = 5 * 2**30

    def __init__(self, weights_dir: Path, device: torch.device | str = "cpu", precision: str = "fp32",
                 models: ProPainterModels | None = None):
        self.device = torch.device(device)
        self.store = torch.device("cpu")  # where whole-clip tensors live; chosen per clip in run()
        self.scratch = None  # a Scratch directory: whole-clip arrays on disk instead (set per clip in run())
        self.policy = resolve_precision(precision, self.device)
        self._channels_last = self._channels_last_choice()
        self._preloads: dict[str, Future] = {}  # see _start_preload
        if models is None:
            # on a GPU the flow-completion and inpainting checkpoints are read while RAFT runs
            models = ProPainterModels.load(weights_dir, self.device, prepare=self._prepare,
                                           defer=self.device.type == "cuda")
        else:  # models handed in may be shared with other precisions: only their memory format is set
            for name in ("raft", "flow_completion", "inpainter"):
                self._set_channels_last(name, getattr(models, name))
        self.models = models
        # stages whose convolutions cuDNN autotunes: none by default. Measured on an H100 (720p x 80 fp16):
        # tuning RAFT made its stage 0.9 s slower (its 7x7 flow convolution 5x slower once "tuned"), tuning
        # every stage 6.9 s slower (each new window shape is timed again). A benchmark switch only:
        # PROPAINTER_WIRE_CUDNN_BENCHMARK=flow,complete,transformer (GPU)
        tuned = os.environ.get("PROPAINTER_WIRE_CUDNN_BENCHMARK", "") if self.device.type == "cuda" else ""
        self.autotune_stages = frozenset(name.strip() for name in tuned.split(",")) - {"none", ""}
        # benchmark switches (environment, read once here): RAFT and transformer budgets in GiB, half
        # pyramids, channels-last convolutions (PROPAINTER_WIRE_CUDA_GRAPHS is read per clip in compute_flows)
        budget_gib = os.environ.get("PROPAINTER_WIRE_RAFT_BUDGET_GIB")
        if budget_gib:
            self.raft_budget_bytes = int(float(budget_gib) * 2**30)
        self.raft_half_pyramid = os.environ.get("PROPAINTER_WIRE_RAFT_HALF_PYRAMID", "0") == "1"
        self.numpy_gather = os.environ.get("PROPAINTER_WIRE_PREFETCH_GATHER", "numpy") != "torch"
        budget_gib = os.environ.get("PROPAINTER_WIRE_TRANSFORMER_BUDGET_GIB")
        if budget_gib:
            self.transformer_budget_bytes = int(float(budget_gib) * 2**30)
        # small frames batch independent work (see _window_group_size, _both_directions_at_once):
        # PROPAINTER_WIRE_WINDOW_BATCH=N runs N transformer windows per batch on any device (1: one at a
        # time), PROPAINTER_WIRE_BATCH_DIRECTIONS=0|1 the two flow-completion directions apart / together
        if os.environ.get("PROPAINTER_WIRE_WINDOW_BATCH"):
            self.window_batch = _int_env("PROPAINTER_WIRE_WINDOW_BATCH", 1)
        directions = os.environ.get("PROPAINTER_WIRE_BATCH_DIRECTIONS", "")
        if directions not in ("", "0", "1"):
            raise ValueError(f"PROPAINTER_WIRE_BATCH_DIRECTIONS: expected 0 or 1, got {directions!r}")
        self.batch_directions = {"0": False, "1": True}.get(directions)  # None: by frame size
        # RAFT's convolution + bias (+ batch norm) + ReLU as single cuDNN kernels on a GPU in half precision
        # (flow.raft.conv_relu); PROPAINTER_WIRE_FUSED_EPILOGUES=0: the library layers, =update: the update
        # block's only
        fused = os.environ.get("PROPAINTER_WIRE_FUSED_EPILOGUES", "1")
        use_fused = getattr(self.models.raft, "use_fused_epilogues", None)  # (absent from stand-in networks)
        if use_fused is not None:
            raft_dtype = self.policy.stage_dtype("raft")
            if fused != "0" and raft_dtype is not None and self.device.type == "cuda" and torch.cuda.is_available():
                from ..flow.raft import fused_conv_relu_check

                problem = fused_conv_relu_check(self.device, raft_dtype)
                if problem is not None:  # a cuDNN without the fused engines, or a wrong result: the library layers
                    log.warning("cuDNN's fused convolution + ReLU failed its check (%s); RAFT uses the separate "
                                "layers", problem)
                    fused = "0"
            use_fused(fused)

    def _channels_last_choice(self) -> dict[str, list[str]]:
        """The parts (per network) whose convolutions run channels-last.

        On the CPU every network (oneDNN; 2-core EPYC: fp32 -6 %, bf16 -7 to -15 %); on the GPU
        RAFT's update block when RAFT runs in half precision, whose 20 steps then run NHWC end to
        end (H100 fp16: 33.4 against 36.3 ms a pair at 720p, 92 against 105 at 1080p), and the
        flow-completion network when it runs in half precision (H100 fp16, 1080p x 50: its stage
        1.51-1.54 against 1.68 s, clfc7), and the inpainter's decoder when the inpainter runs in half
        precision: the same time, without cuDNN's layout conversions of its full-size maps, which set
        the transformer stage's peak (H100 fp16, final12: 720p peak 4.89 against 5.07 GiB, 1080p 6.26
        against 7.07); elsewhere, and in fp32, the GPU gained nothing (cl4; the inpainter's other parts
        in cl7) and fp32 NHWC convolutions took cuDNN algorithms with 8 GiB more workspace (720p flow
        stage peak 10.9 against 3.0 GiB, final5).
        ``PROPAINTER_WIRE_CHANNELS_LAST`` (benchmark switch): 1 = every network, 0 = none, or a
        comma list of the parts in ``_CHANNELS_LAST_PARTS``.
        """
        halves = (torch.float16, torch.bfloat16)
        if self.device.type == "cpu":
            default = "1"
        else:
            parts = [part for part, stage in (("raft_update", "raft"), ("flow_completion", "flow_completion"),
                                              ("inpainter_decoder", "inpainter"))
                     if self.policy.stage_dtype(stage) in halves]
            default = ",".join(parts) or "0"
        value = os.environ.get("PROPAINTER_WIRE_CHANNELS_LAST", default)
        chosen = [name for name in (p.strip() for p in value.split(",")) if name not in ("0", "")]
        if chosen == ["1"]:
            return {net: [""] for net in ("raft", "flow_completion", "inpainter")}
        out: dict[str, list[str]] = {}
        for name in chosen:
            if name not in _CHANNELS_LAST_PARTS:
                raise ValueError(f"PROPAINTER_WIRE_CHANNELS_LAST: unknown part {name!r} "
                                 f"(1, 0 or {', '.join(_CHANNELS_LAST_PARTS)})")
            net, attrs = _CHANNELS_LAST_PARTS[name]
            out.setdefault(net, []).extend(attrs)
        return out

    def _set_channels_last(self, name: str, net: torch.nn.Module) -> None:
        for attr in self._channels_last.get(name, []):
            _convs_channels_last(getattr(net, attr) if attr else net)

    def _prepare(self, name: str, net: torch.nn.Module) -> None:
        """A freshly loaded network: conv/linear weights stored in the autocast dtype of its stage (same
        values, no per-call casts), then the memory format of its convolutions."""
        # (flow completion converts itself to its half dtype when it first runs: see _complete_spans)
        if name in ("raft", "inpainter") and self.policy.stage_dtype(name) is not None:
            precast_for_autocast(net, self.policy.stage_dtype(name))
        self._set_channels_last(name, net)

    def _alloc(self, name: str, shape: tuple[int, ...], dtype: torch.dtype):
        """A whole-clip array: a tensor on ``self.store``, or a disk array in ``self.scratch``.

        (Page-locking the host tensors was measured slower on an H100: registering them cost
        more than the faster copies saved.)
        """
        if self.scratch is None:
            return torch.empty(shape, dtype=dtype, device=self.store)
        if dtype not in _NUMPY_DTYPES:  # bfloat16 has no numpy dtype: disk arrays keep it as float32
            dtype = torch.float32
        return DiskTensor(self.scratch.array(name, shape[0], shape[1:], _NUMPY_DTYPES[dtype]))

    def _stored_dtype(self, stage: str) -> torch.dtype:
        """dtype of the whole-clip float arrays that ``stage`` reads (flows for ``flow_completion``,
        propagated frames for ``inpainter``).

        On a GPU in a half precision that stage converts them to its half dtype before any
        arithmetic (the flow-completion network runs in it, the inpainter's encoder casts its
        input to it, and the flows it also reads come out of flow completion in it), so they
        are kept in that dtype: half the host memory and copies for the same values (the
        reference keeps them in fp16 too with ``--fp16``). Otherwise float32.
        """
        dtype = self.policy.stage_dtype(stage) if self.device.type == "cuda" else None
        return dtype or torch.float32

    @property
    def _bounded(self) -> bool:
        """Whether the networks run in chunks within the stage budgets: on a GPU, or with a scratch
        (host memory bounded); otherwise whole sub-videos and windows, as the reference."""
        return self.device.type == "cuda" or self.scratch is not None

    def _keep(self, x: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """A stage's result in ``dtype``, where whole-clip tensors live (``self.store``)."""
        return x.detach().to(dtype).to(self.store)

    def _store_for(self, shape: torch.Size) -> torch.device:
        """The device when the tensors of a (T, H, W, 3) clip fit ``resident_bytes`` there, else the host."""
        if self.device.type != "cuda":
            return self.device
        if _clip_bytes(shape) <= self.resident_bytes:
            return self.device
        log.debug("clip tensors (%.1f GiB) stay on the host", _clip_bytes(shape) / 2**30)
        return torch.device("cpu")

    # -- stage 1 ------------------------------------------------------------------
    def compute_flows(self, frames: torch.Tensor, iters: int, stages: Stages,
                      ready: Callable[[int], None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """RAFT flows of a clip.

        Args:
            frames: (T, H, W, 3) uint8.
            ready: ``ready(e)`` is called before frames ``0 .. e-1`` are first read (it fills them in).
        Returns:
            flows_f, flows_b: (T-1, 2, H, W) pixels on ``self.store``; ``flows_f[t]`` maps
            frame t to t+1, ``flows_b[t]`` frame t+1 to t.
        """
        from ..flow.raft import bidirectional_flows

        t, h, w, _ = frames.shape
        chunk = max(2, self.raft_chunk_frames or _raft_chunk_frames(h, w))
        budget = self.raft_budget_bytes or _raft_budget_bytes(self.device, h, w)
        raft_dtype = self.policy.stage_dtype("raft")
        corr_dtype = torch.float16 if self.raft_half_pyramid and raft_dtype == torch.float16 else torch.float32
        starts = list(range(0, t - 1, chunk - 1))
        equal = self.device.type == "cuda" if self.raft_equal_chunks is None else self.raft_equal_chunks
        if equal and len(starts) > 1 and t - starts[-1] < chunk:
            # the last chunk reaches back to a full chunk (its first pairs computed twice, written once): every
            # chunk then has one shape, so one CUDA graph and one set of cuDNN plans serve them all, instead of
            # an eager remainder with plans of its own (on the CPU the extra pairs would only cost time)
            starts[-1] = t - chunk
        keep = self._stored_dtype("flow_completion")  # flow completion's input dtype
        out_f = self._alloc("raft_f", (t - 1, 2, h, w), keep)
        out_b = self._alloc("raft_b", (t - 1, 2, h, w), keep)
        # out of memory (or a library refusing a size): retry the chunk with fewer pairs at once,
        # then with on-demand correlation, then one pair at a time
        fallbacks = [{}, {"pairs_per_chunk": 2}, {"corr": "local", "pairs_per_chunk": 2},
                     {"corr": "local", "pairs_per_chunk": 1}]
        # the refinement of equal-sized chunks replays one CUDA graph (PROPAINTER_WIRE_CUDA_GRAPHS=0: eager)
        graphs = GraphCache(enabled=os.environ.get("PROPAINTER_WIRE_CUDA_GRAPHS", "1") != "0")
        writer = _StoreWriter(self)
        try:
            with stages("flow", total=len(starts)) as bar, self.policy.autocast(self.device, "raft"), \
                    cudnn_autotune("flow" in self.autotune_stages):
                for k, s in enumerate(starts):
                    if k == 2 or (k == 1 and not graphs.enabled):  # RAFT's graph recorded (by chunk 1)
                        self._start_preload(h, w, t)
                    e = min(t, s + chunk)
                    if ready is not None:
                        ready(e)
                    for attempt, options in enumerate(fallbacks):
                        try:
                            f, b = bidirectional_flows(self.models.raft, _signed(frames[s:e].to(self.device)),
                                                       iters=iters, budget_bytes=budget, corr_dtype=corr_dtype,
                                                       graphs=graphs, **options)
                            break
                        except RuntimeError as exc:
                            if not _is_resource_error(exc) or attempt == len(fallbacks) - 1:
                                raise
                            graphs.close()  # their pools hold memory: eager from here on
                            graphs.enabled = False
                            _release_memory()
                            log.warning("RAFT: %s; retrying with %s", _first_line(exc), fallbacks[attempt + 1])
                    done = starts[k - 1] + chunk - 1 if k else 0  # pairs before this one are written already
                    writer.write(out_f, slice(done, e - 1), f[done - s:], keep)
                    writer.write(out_b, slice(done, e - 1), b[done - s:], keep)
                    bar.update()
                writer.finish()
                self._start_preload(h, w, t)  # (a short clip: now)
        finally:
            if graphs.graphs:
                graphs.close()
                _release_memory()
        return out_f, out_b

    # -- the later stages' kernels, loaded while RAFT runs --------------------------------
    def _start_preload(self, h: int, w: int, length: int) -> None:
        """Place the flow-completion and inpainting networks and run each once on small stand-in
        inputs of the clip's (h, w), on a thread and a side stream, while RAFT computes (GPU only).

        CUDA loads a kernel's module the first time the kernel runs, about 20 ms each (a fresh
        process on an H100: a new 3x3 convolution configuration 25 ms, against 2.5 ms with eager
        module loading; ``benchmarks/cold_probe.py``); the later stages use dozens of kernels.
        Module loading is per process, so these runs load them for the main thread; their
        results are discarded and nothing of the networks' state changes, so the clip's results
        are unaffected. Started once RAFT's CUDA graph is recorded (a capture must not see
        other threads' CUDA calls).

        Only for frames of 3/4 of 720p's pixels or more: there RAFT keeps the GPU busy and the
        thread's work hides behind it. H100, fp16, interleaved A/B (pre6): 720p x 80
        8.34/8.52 s against 8.76/9.06 s; 1080p x 50 11.72/11.94 against 11.88 s; at 432x240
        RAFT is bound by its kernel launches and the thread slowed it: 3.09/3.42 against
        2.92/2.99 s. ``PROPAINTER_WIRE_PRELOAD`` (benchmark switch): 0 = never, 1 = at every size.
        """
        switch = os.environ.get("PROPAINTER_WIRE_PRELOAD", "")
        large = h * w >= _PRELOAD_MIN_PIXELS
        if self.device.type != "cuda" or self._preloads or switch == "0" or (switch != "1" and not large):
            return
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="preload")
        stream = torch.cuda.Stream(self.device)
        self._preloads = {name: pool.submit(self._preload, name, stream, h, w, length)
                          for name in ("flow_completion", "inpainter")}
        pool.shutdown(wait=False)

    def _preload(self, name: str, stream, h: int, w: int, length: int) -> None:
        """One network's part of :meth:`_start_preload` (on the preload thread)."""
        dev = self.device
        try:
            with torch.cuda.stream(stream), torch.inference_mode():  # networks placed here, on the side stream
                frames = min(3, length)
                gen = torch.Generator(device=dev).manual_seed(0)
                if name == "flow_completion":
                    net, half = self._flow_completion_net()
                    dtype = half or torch.float32
                    flows = torch.randn(1, frames - 1, 2, h, w, device=dev, generator=gen).to(dtype)
                    masks = torch.zeros(1, frames - 1, 1, h, w, device=dev, dtype=dtype)
                    masks[..., h // 3:h // 2, w // 3:w // 2] = 1
                    with contextlib.nullcontext() if half is not None else self.policy.autocast(dev, name):
                        net.complete_direction(flows, masks)
                else:
                    net = self.models.inpainter
                    images = torch.rand(1, frames, 3, h, w, device=dev, generator=gen) * 2 - 1
                    masks = torch.zeros(1, frames, 1, h, w, device=dev, dtype=torch.bool)
                    masks[..., h // 3:h // 2, w // 3:w // 2] = True
                    flows = torch.zeros(1, frames - 2, 2, h, w, device=dev)
                    with self.policy.autocast(dev, name), _attention_backends(dev):
                        feats = net.encode(images, masks, masks)
                        net.forward_features(feats, flows, flows, masks, masks, frames - 1)
            stream.synchronize()  # the placed weights are ready for the main stream
        except Exception as exc:  # a failed preload only costs the time it would have saved
            log.debug("preloading %s: %s", name, _first_line(exc))
            with contextlib.suppress(Exception):  # (the main thread meets a lasting CUDA error itself)
                stream.synchronize()

    def _window_group_size(self, h: int, w: int) -> int:
        """Transformer windows per batch for frames of (h, w) pixels (``window_batch`` when set): two
        where the windows are bound by kernel launches (frames up to 640x360 on a GPU), one on the CPU
        (bound by arithmetic; there a batch would only change the summation order) and for larger
        frames. (432x240 x 80, H100: 2.57-2.61 s with 4, 2.66-2.73 s with 2, 2.92-2.95 s with 1 a
        batch, but peaks of 4.17, 2.47 and 1.44 GiB: final11. 864x480 x 80, windows and directions
        batched: 5.71/4.72 s against 4.99/5.03 s apart, peak 4.30 against 3.43 GiB: mid8.)"""
        if self.window_batch is not None:
            return self.window_batch
        if self.device.type != "cuda":
            return 1
        return max(1, min(2, _WINDOW_BATCH_PIXELS // (h * w)))

    def _both_directions_at_once(self, h: int, w: int) -> bool:
        """Whether flow completion runs its two directions as one batch (twice the activations,
        half the launches): on a GPU, for frames up to 640x360 (see ``_window_group_size``)."""
        if self.batch_directions is not None:
            return self.batch_directions
        return self.device.type == "cuda" and h * w <= _BOTH_DIRECTIONS_PIXELS

    def _flow_completion_net(self) -> tuple[torch.nn.Module, torch.dtype | None]:
        """The flow-completion network and its half dtype (None: float32 under the stage's autocast).

        In a half precision on a GPU its weights are converted to that dtype on first use, as the
        reference does with ``--fp16`` (autocast would keep fp32 copies of many activations).
        """
        net = self.models.flow_completion
        half = self.policy.stage_dtype("flow_completion") if self.device.type == "cuda" else None
        if half is not None and next(net.parameters()).dtype != half:
            net.to(half)
        return net, half

    def _await_preload(self, name: str) -> None:
        """Wait for ``name``'s part of the preloading, if it was started."""
        future = self._preloads.pop(name, None)
        if future is not None:
            future.result()

    # -- stage 2 ------------------------------------------------------------------
    def complete_flows(self, flows_f: torch.Tensor, flows_b: torch.Tensor, flow_masks: torch.Tensor,
                       subvideo_length: int, stages: Stages) -> tuple[torch.Tensor, torch.Tensor]:
        """Complete the flows inside the flow masks.

        Args:
            flows_f, flows_b: (T-1, 2, H, W) pixels.
            flow_masks: (T, 1, H, W) bool.
        Returns:
            completed (T-1, 2, H, W) forward and backward flows on ``self.store``.
        """
        length = subvideo_length
        with stages("complete") as bar, cudnn_autotune("complete" in self.autotune_stages):
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
        self._await_preload("flow_completion")
        net, half = self._flow_completion_net()
        dev = self.device
        if self._bounded:  # per-frame layers in chunks of frames
            h, w = flows_f.shape[-2:]
            # (the sequence-wide tensors, ~24 values per pixel and flow, come on top: ~4 GiB at 720p x 90)
            # at least 4 frames per chunk: each chunk re-encodes 8 frames of context on either side
            net.frames_per_chunk = max(4, net.frames_for_budget(h, w, self.stage_budget_bytes, half or torch.float32))
        else:
            net.frames_per_chunk = None
        keep = self._stored_dtype("flow_completion")  # = the network's output dtype: kept exactly
        out_f = self._alloc("completed_f", tuple(flows_f.shape), keep)
        out_b = self._alloc("completed_b", tuple(flows_f.shape), keep)
        writer = _StoreWriter(self)
        both = self._both_directions_at_once(*flows_f.shape[-2:])
        dtype = half or torch.float32  # the network's

        def known(flows: torch.Tensor, masks: torch.Tensor, span, backward: bool) -> tuple[torch.Tensor, torch.Tensor]:
            """A direction's flows (1, L, 2, H, W) and masks (1, L, 1, H, W) of ``span`` on the device in the
            net's dtype, from the span's masks (1, L+1, 1, H, W): forward flow i uses frame i's mask,
            backward flow i frame i+1's."""
            return (flows[span.start:span.stop].unsqueeze(0).to(dev, dtype),
                    (masks[:, 1:] if backward else masks[:, :-1]).to(dtype))

        for span in flow_completion_spans(flows_f.shape[0], subvideo_length):
            mm = flow_masks[span.start:span.stop + 1].unsqueeze(0).to(dev)  # (1, L+1, 1, H, W) bool
            with contextlib.nullcontext() if half is not None else self.policy.autocast(dev, "flow_completion"):
                if both:  # small frames: the directions as one batch (half the kernel launches)
                    done = zip((out_f, out_b), net.complete_both(*known(flows_f, mm, span, False),
                                                                  *known(flows_b, mm, span, True)), strict=True)
                else:  # one direction at a time: forward_bidirect_flow + combine_flow's arithmetic, half the tensors
                    done = ((out, net.complete_direction(*known(flows, mm, span, backward), backward=backward))
                            for flows, out, backward in ((flows_f, out_f, False), (flows_b, out_b, True)))
                for out, completed in done:
                    writer.write(out, slice(span.keep_start, span.keep_stop), completed[0, span.local_keep], keep)
                    del completed
            bar.update()
        writer.finish()
        return out_f, out_b

    # -- stage 3 ------------------------------------------------------------------
    def propagate(self, frames: torch.Tensor, masks: torch.Tensor, flows_f: torch.Tensor, flows_b: torch.Tensor,
                  subvideo_length: int, stages: Stages) -> tuple[torch.Tensor, torch.Tensor]:
        """Flow-guided propagation of known pixels into the masks.

        Args:
            frames: (T, H, W, 3) uint8; masks: (T, 1, H, W) bool.
        Returns:
            updated frames (T, 3, H, W) in [-1, 1] (in the inpainter's input dtype, see
            ``_stored_dtype``) and the still-unfilled masks (T, 1, H, W) bool.
        """
        spans = propagation_spans(frames.shape[0], subvideo_length)
        t, h, w = frames.shape[:3]
        keep = self._stored_dtype("inpainter")
        out_frames = self._alloc("updated", (t, 3, h, w), keep)
        out_masks = self._alloc("updated_masks", (t, 1, h, w), torch.bool)
        writer = _StoreWriter(self)
        with stages("propagate", total=len(spans)) as bar:
            for span in spans:
                dev = self.device
                # a span over the budget leaves its flows where they are; the sweeps move them a frame at a time
                span_bytes = _propagation_bytes_per_pixel(flows_f.dtype) * (span.stop - span.start) * h * w
                flows_at = dev if span_bytes <= self.propagation_budget_bytes else self.store
                fr = _signed(frames[span.start:span.stop].to(dev))
                mk = masks[span.start:span.stop].to(dev).float()
                ff = flows_f[span.start:span.stop - 1].to(flows_at)  # converted to float32 step by step
                fb = flows_b[span.start:span.stop - 1].to(flows_at)
                masked = fr.mul_(1 - mk)  # in place: one frame-sized buffer less on the device
                prop, updated = propagate_images(masked, ff, fb, mk, interpolation="nearest", device=dev)
                merged = prop.mul_(mk).add_(masked)  # = masked + prop * mk (addition commutes exactly)
                kept = slice(span.keep_start, span.keep_stop)
                writer.write(out_frames, kept, merged[span.local_keep], keep)
                writer.write(out_masks, kept, updated[span.local_keep] > 0.5, torch.bool)
                bar.update()
            writer.finish()
        return out_frames, out_masks

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
            masks: (T, 1, H, W) bool, the dilated masks.
            updated_masks: (T, 1, H, W) bool, masks after propagation.
            flows_f, flows_b: (T-1, 2, H, W) completed flows, pixels.
            original_u8: (T, H, W, 3) uint8, the frames at processing size.
            on_final: called as ``on_final(index, uint8 frame)`` as soon as a frame is final.
        Returns:
            (T, H, W, 3) uint8 composited frames.
        """
        length = updated.shape[0]
        windows = transformer_windows(length, config.neighbor_length, config.ref_stride, config.subvideo_length)
        last_window = {idx: k for k, window in enumerate(windows) for idx in window.local}
        has_mask = [flag for i in range(0, length, _INPUT_CHUNK)
                    for flag in masks[i:i + _INPUT_CHUNK].flatten(1).any(1).tolist()]
        result: dict[int, torch.Tensor] = {}
        self._await_preload("inpainter")
        out = np.empty(tuple(original_u8.shape), np.uint8) if self.scratch is None else \
            self.scratch.array("output", length, tuple(original_u8.shape)[1:], np.uint8)
        net = self.models.inpainter
        dev = self.device
        h, w = updated.shape[-2:]
        # encoder features are per frame: computed once, shared by overlapping windows and reference frames
        cache = _FeatureCache(max_bytes=self.feature_cache_bytes, bytes_per_frame=128 * (h // 4) * (w // 4) * 4)
        element = 2 if self.policy.stage_dtype("inpainter") is not None else 4

        masked = [any(has_mask[i] for i in window.local) for window in windows]
        # small frames on a GPU: windows of one shape run as one batch (see _window_group_size, window_runs)
        runs = window_runs(windows, masked, self._window_group_size(h, w))

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

        feeder = Prefetcher(dev, numpy_gather=self.numpy_gather)  # window inputs, one run ahead

        def deliver(idx: int, frame: torch.Tensor) -> None:  # a final frame, back on the host
            frame = frame.numpy()
            out[idx] = frame
            if on_final is not None:
                on_final(idx, frame)

        returns = HostReturns(deliver)
        try:
            with stages("transformer", total=len(windows)) as bar, _attention_backends(dev), \
                    cudnn_autotune("transformer" in self.autotune_stages):
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
                            pred = self._infer_windows(net, cache, inputs, rows, first, first + len(batch),
                                                       fetched_ids, updated, h, w, element)
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

    def _infer_windows(self, net, cache: _FeatureCache, inputs: dict[str, torch.Tensor], rows: _RunRows,
                       first: int, stop: int, fetched_ids: list[int], updated, h: int, w: int,
                       element: int) -> torch.Tensor:
        """The generator on windows ``first .. stop-1`` of a run, all of one shape:
        (stop - first, L, 3, H, W) in [-1, 1].

        ``inputs`` holds the run's rows on the device, window after window (``rows`` finds
        them): ``masks`` and ``updated_masks`` (T rows a window), ``flows_f`` and ``flows_b``
        (L-1 rows); its ``frames`` are the propagated frames of ``fetched_ids``. The windows
        share one encoding of each frame (the feature cache). Out of memory, the feature cache
        is dropped and the windows are retried one at a time.
        """
        dev = self.device
        n_frames, num_local = len(rows.windows[first].frames), len(rows.windows[first].local)
        if self._bounded:  # per-frame layers and attention windows in chunks
            net.set_chunking(*chunk_sizes_for_budget(self.transformer_budget_bytes, (h, w), n_frames, element))
        else:
            net.set_chunking()

        def encode(missing: list[int]) -> torch.Tensor:
            at = {idx: p for p, idx in enumerate(fetched_ids)}
            if all(i in at for i in missing):
                frames = inputs["frames"][[at[i] for i in missing]]
            else:  # the cache lost frames after the prefetch (an out-of-memory retry): fetch them now
                frames = updated[missing].to(dev)
            if self.policy.stage_dtype("inpainter") is None:  # no autocast to take a half copy to its dtype
                frames = frames.float()
            where = [rows.position[i] for i in missing]
            return net.encode(frames.unsqueeze(0), inputs["masks"][where].unsqueeze(0),
                              inputs["updated_masks"][where].unsqueeze(0))[0]

        def infer(a: int, b: int) -> torch.Tensor:  # windows a .. b-1 of the run
            g = b - a

            def batched(name: str, part: slice) -> torch.Tensor:
                x = inputs[name][part]
                return x.view(g, -1, *x.shape[1:])

            with self.policy.autocast(dev, "inpainter"):
                feats = cache.get([list(rows.windows[j].frames) for j in range(a, b)], encode)  # (g*T, C, h/4, w/4)
                return net.forward_features(
                    feats.view(g, n_frames, *feats.shape[1:]),
                    batched("flows_f", rows.pairs(a, b)).float(),  # stored half or float32
                    batched("flows_b", rows.pairs(a, b)).float(),
                    batched("masks", rows.frames(a, b)),
                    batched("updated_masks", rows.frames(a, b)),
                    num_local,
                )

        try:
            return infer(first, stop)
        except RuntimeError as exc:  # out of memory: drop the feature cache, then one window at a time
            count = stop - first
            if not _is_resource_error(exc) or (not cache.store and count == 1):
                raise
            log.warning("transformer: %s; retrying %s", _first_line(exc),
                        "without the feature cache" if count == 1 else f"the {count} windows one at a time")
            cache.store.clear()
            cache.capacity = 1
            _release_memory()
            return torch.cat([infer(j, j + 1) for j in range(first, stop)])

    # -- the whole engine ------------------------------------------------------------
    def run(self, inp: EngineInput, config: InpaintConfig, stages: Stages, on_final=None) -> np.ndarray:
        """Inpaint a clip; see ``Engine``. Returns (T, H, W, 3) float32 in [0, 1].

        ``on_final(index, frame)`` receives each frame as soon as no later window changes it.
        """
        for name in list(self._preloads):  # left by a run that failed before it needed them
            self._await_preload(name)
        single = inp.length == 1  # one frame: a still two-frame clip, so the networks fill it spatially
        t = 2 if single else inp.length
        h, w = inp.size
        ph, pw = (-h) % PAD_MULTIPLE, (-w) % PAD_MULTIPLE
        self.scratch = None if single else inp.scratch
        try:
            with torch.inference_mode(), self.policy.tf32_context():
                # compact: uint8 frames, bool masks (on disk with a scratch); converted per chunk where used
                shape = (t, h + ph, w + pw)
                self.store = self._store_for((*shape, 3))
                original = self._alloc("frames", (*shape, 3), torch.uint8)
                masks = self._alloc("masks", (t, 1, *shape[1:]), torch.bool)
                flow_masks = self._alloc("flow_masks", (t, 1, *shape[1:]), torch.bool)
                for a in range(0, inp.length, _INPUT_CHUNK):
                    b = min(inp.length, a + _INPUT_CHUNK)
                    for dst, src in ((masks, inp.masks), (flow_masks, inp.flow_masks)):
                        padded = _pad_bottom_right(np.asarray(src[a:b], dtype=bool), ph, pw)
                        dst[a:b] = torch.from_numpy(padded)[:, None]
                # the frames as RAFT reaches them (they may still be decoding: see io.stream)
                fill_frames = _FrameFiller(inp.frames, original, ph, pw)
                if single:
                    fill_frames.until(1)
                    original[1], masks[1], flow_masks[1] = original[0], masks[0], flow_masks[0]

                flows_f, flows_b = self.compute_flows(original, config.raft_iters, stages, ready=fill_frames.until)
                fill_frames.until(inp.length)
                flows_f, flows_b = self.complete_flows(flows_f, flows_b, flow_masks, config.subvideo_length, stages)
                updated, updated_masks = self.propagate(original, masks, flows_f, flows_b, config.subvideo_length,
                                                        stages)
                emit = None
                if on_final is not None and not single:
                    def emit(idx: int, frame_u8: np.ndarray) -> None:  # 8-bit results go out as they are
                        on_final(idx, frame_u8[:h, :w])

                out = self.synthesize(updated, masks, updated_masks, flows_f, flows_b, original, config, stages,
                                      on_final=emit)
        finally:
            self.scratch = None
        if isinstance(out, DiskArray) or (on_final is not None and not single):
            # every frame went to on_final already: converted only where read again
            return UnitFrames(out, h, w)
        out = out[:1 if single else t, :h, :w]
        return out.astype(np.float32) / 255.0


_INPUT_CHUNK = 16  # frames converted (or scanned) at once when filling or reading the whole-clip arrays


class _FrameFiller:
    """Fills the engine's (T, H+ph, W+pw, 3) uint8 frame array from the input frames on demand, in order.

    ``until(end)`` converts (float input), pads and stores the frames up to ``end`` not yet
    stored, ``_INPUT_CHUNK`` at a time; reading them waits for frames still decoding.
    """

    def __init__(self, source, target, ph: int, pw: int) -> None:
        self.source, self.target, self.ph, self.pw = source, target, ph, pw
        self.filled = 0

    def until(self, end: int) -> None:
        end = min(end, len(self.source))
        while self.filled < end:
            a = self.filled
            b = min(len(self.source), a + _INPUT_CHUNK)
            frames_u8 = _unit_to_u8(np.asarray(self.source[a:b]))
            self.target[a:b] = torch.from_numpy(_pad_bottom_right(frames_u8, self.ph, self.pw))
            self.filled = b

_NUMPY_DTYPES = {torch.uint8: np.uint8, torch.bool: np.bool_, torch.float16: np.float16, torch.float32: np.float32}


class DiskTensor:
    """A :class:`DiskArray` indexed like a CPU tensor: reads return tensors, assignments take tensors."""

    def __init__(self, array: DiskArray) -> None:
        self.array = array

    @property
    def shape(self) -> torch.Size:
        return torch.Size(self.array.shape)

    def __len__(self) -> int:
        return len(self.array)

    @property
    def dtype(self) -> torch.dtype:
        return torch.from_numpy(np.empty(0, self.array.dtype)).dtype

    def __getitem__(self, index) -> torch.Tensor:
        return torch.from_numpy(self.array[index])

    def __setitem__(self, index, value) -> None:
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            # bfloat16 has no numpy dtype: such arrays are float32 on disk (see ``_alloc``)
            value = (value.float() if value.dtype == torch.bfloat16 else value).numpy()
        self.array[index] = value


class UnitFrames:
    """The engine's padded uint8 output (on disk or in memory), read as (H, W, 3) float32 frames in
    [0, 1], cropped to (h, w), one frame at a time."""

    def __init__(self, out: DiskArray | np.ndarray, height: int, width: int) -> None:
        self.out, self.height, self.width = out, height, width

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.out), self.height, self.width, 3)

    def __len__(self) -> int:
        return len(self.out)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.out[i][:self.height, :self.width].astype(np.float32) / 255.0


def _attention_backends(device: torch.device):
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


# PROPAINTER_WIRE_CHANNELS_LAST parts: name -> (network, its sub-modules; "" = the whole network)
_CHANNELS_LAST_PARTS = {
    "raft_encoders": ("raft", ["fnet", "cnet"]), "raft_update": ("raft", ["update_block"]),
    "flow_completion": ("flow_completion", [""]), "inpainter_encoder": ("inpainter", ["encoder"]),
    "inpainter_decoder": ("inpainter", ["decoder"]), "feat_prop": ("inpainter", ["feat_prop_module"]),
    "transformer": ("inpainter", ["ss", "sc", "transformers"]),
}


def _convs_channels_last(net: torch.nn.Module) -> None:
    """Store the 2-D convolution weights channels-last, in place.

    cuDNN or oneDNN then run those convolutions in NHWC and return NHWC results,
    instead of reordering every input and output; values are the same up to the
    convolution algorithm's summation order.
    """
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.weight.data = module.weight.data.contiguous(memory_format=torch.channels_last)


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
    """Bytes of the whole-clip tensors of a (T, H, W, 3) clip: uint8 frames, bool masks,
    4 float32 flows, float32 updated frames and masks."""
    t, h, w, _ = shape
    per_pixel = 3 + 1 + 1 + 4 * (4 * 2 + 3 + 1)
    return int(t * h * w * per_pixel)


class _StoreWriter:
    """Writes a stage's results into whole-clip arrays (``ProPainterEngine._alloc``).

    From a GPU to host arrays in memory the copies go back asynchronously (the GPU goes on
    with the next piece meanwhile, see ``runtime.transfer.HostReturns``); otherwise they are
    written at once. With a disk scratch they are written at once too: the page-locked
    staging memory (~1 GiB at 720p, kept by PyTorch's host cache) would undo the point of
    the scratch, a small host footprint. Call :meth:`finish` before the arrays are read.
    """

    def __init__(self, engine: ProPainterEngine) -> None:
        self.engine = engine
        host_bound = engine.device.type == "cuda" and engine.store.type == "cpu" and engine.scratch is None
        self.returns = HostReturns(lambda where, x: where[0].__setitem__(where[1], x)) if host_bound else None

    def write(self, dst, index, x: torch.Tensor, dtype: torch.dtype) -> None:
        """``dst[index] = x`` in ``dtype``."""
        if self.returns is None:
            dst[index] = self.engine._keep(x, dtype)
            return
        self.returns.put((dst, index), x.detach().to(dtype))
        self.returns.deliver()  # whatever has arrived

    def finish(self) -> None:
        if self.returns is not None:
            self.returns.deliver(wait=True)


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


def _pad_bottom_right(x: np.ndarray, ph: int, pw: int) -> np.ndarray:
    """Reflect-pad a (T, H, W[, C]) stack at the bottom and right (edge where reflection is too short)."""
    if not (ph or pw):
        return x
    mode = "reflect" if ph < x.shape[1] and pw < x.shape[2] else "edge"
    return np.pad(x, ((0, 0), (0, ph), (0, pw)) + ((0, 0),) * (x.ndim - 3), mode=mode)


def _unit_to_u8(frames: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) float in [0, 1] -> uint8: ``clip(rint(x * 255), 0, 255)`` in float32, on torch's
    threads (the single-threaded numpy form took about a second for 80 frames of 720p). uint8
    frames pass through."""
    if frames.dtype == np.uint8:
        return frames
    x = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))
    return x.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).numpy()


# frames (pixels, at processing size) from which the later stages' kernels are preloaded while RAFT runs
_PRELOAD_MIN_PIXELS = 1280 * 720 * 3 // 4


# Batching independent work pays where kernel launches, not arithmetic, bound the time (H100, fp16, warm,
# benchmarks/batch_probe.py, batch8): at 432x240 a transformer window took 53 ms alone, 29 / 20 / 17 ms
# in batches of 2 / 4 / 8, and flow completion's two directions 192 ms apart, 96 ms together; at 864x480
# 84 against 65 ms (batches of 4) and 259 against 210 ms; at 720p a window 159 against 153 ms (2).
# End to end, a fresh process pays new cuDNN plans for the batches' shapes: at 864x480 x 80 (mid8) the
# batched forms were no faster than one at a time and peaked 0.9 GiB higher, so they stop below that.
_WINDOW_BATCH_PIXELS = 640 * 360 * 2  # windows per batch: this many pixels' worth, at most 2
_BOTH_DIRECTIONS_PIXELS = 640 * 360  # flow completion's directions together up to this frame size


def _int_env(name: str, default: int) -> int:
    """A positive integer benchmark switch from the environment (``default`` when unset)."""
    value = os.environ.get(name, "")
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return number


def window_runs(windows: list, masked: list[bool], most: int) -> list[list[list[int]]]:
    """Transformer windows in runs of batches: each run a list of batches of window indices.

    A run is up to ``2 * most`` consecutive windows (one when ``most`` is 1), all with something
    to fill (``masked[k]``), split into batches of up to ``most`` windows of one shape (numbers
    of local and reference frames; up to 80 frames the shapes alternate from one window to the
    next). A window with nothing to fill is a run of its own (it is only copied through). Every
    window appears once; the runs are in window order, so a run's windows can be composited in
    order once its batches are done.
    """
    runs: list[list[int]] = []
    for k in range(len(windows)):
        if runs and masked[k] and masked[runs[-1][0]] and len(runs[-1]) < (2 * most if most > 1 else 1):
            runs[-1].append(k)
        else:
            runs.append([k])
    out = []
    for run in runs:
        by_shape: dict[tuple[int, int], list[int]] = {}
        for k in run:
            by_shape.setdefault((len(windows[k].local), len(windows[k].frames)), []).append(k)
        out.append([same[i:i + most] for same in by_shape.values() for i in range(0, len(same), most)])
    return out


def _signed(frames_u8: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [-1, 1], the reference's arithmetic."""
    return frames_u8.permute(0, 3, 1, 2).float().div_(255.0).mul_(2).sub_(1)  # in place: no temporaries


def _propagation_bytes_per_pixel(flow_dtype: torch.dtype) -> int:
    """Device bytes per pixel and frame of a propagation span moved whole: masked frames and masks
    (float32, 16), the outputs (16), two 2-channel flows as stored (8 in a half precision, 16 in
    float32; converted one frame at a time), and slack for the per-step temporaries (8). (Measured
    on an H200 before the in-place arithmetic of ``propagate``: ~135 bytes per pixel and frame.)"""
    return 16 + 16 + 4 * torch.empty((), dtype=flow_dtype).element_size() + 8


def _raft_chunk_frames(h: int, w: int) -> int:
    """Frames handed to RAFT at once (it splits them further to fit its memory budget)."""
    pixels = h * w
    if pixels <= 1280 * 720:
        return 9
    if pixels <= 1920 * 1080:
        return 5
    return 3


def _raft_budget_bytes(device: torch.device, height: int, width: int) -> int:
    """Device memory RAFT may use for correlation pyramids and activations.

    Enough for one pair's two fp32 pyramids at up to 720p (3 GiB), or for one
    direction's pyramid with room for activations above that (about 7 GiB at 1080p),
    at most 30 % of the card; larger frames use the on-demand local correlation.
    More memory would batch more pairs (a little faster on a large GPU) at the cost of
    the bounded footprint.
    """
    if device.type != "cuda":
        return 4 * 2**30
    from ..flow.corr import all_pairs_bytes

    feat_h, feat_w = -(-height // 8), -(-width // 8)
    one_direction = all_pairs_bytes(feat_h, feat_w)
    activations = 2 * 4 * 4096 * feat_h * feat_w  # both directions of a pair, fp32 floats per pixel
    wanted = max(3 * 2**30, one_direction + activations + 2**29)
    total = torch.cuda.get_device_properties(device).total_memory
    return int(min(wanted, 0.3 * total))
