"""The engine's memory and layout choices, made once from the tuning switches, device and precision.

:class:`MemoryPolicy` holds every choice of *how* the engine lays out its work (never what
it computes): which convolutions run channels-last, how many transformer windows run as
one batch, whether flow completion runs its two directions together, the memory budgets
of each stage, where whole-clip arrays live and in which dtype. :meth:`MemoryPolicy.choose`
derives it from a :class:`~propainter_wire.tuning.Tuning`, the device and the precision policy;
``docs/tuning.md`` documents the switches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from ...runtime.precision import PrecisionPolicy
from ...tuning import CHANNELS_LAST_PARTS, Tuning

GIB = 2**30
NETWORKS = ("raft", "flow_completion", "inpainter")

# Batching independent work pays where kernel launches, not arithmetic, bound the time (H100, fp16, warm,
# benchmarks/batch_probe.py): at 432x240 a transformer window took 53 ms alone, 29 / 20 / 17 ms in batches
# of 2 / 4 / 8, and flow completion's two directions 192 ms apart, 96 ms together; at 864x480 84 against
# 65 ms (batches of 4) and 259 against 210 ms; at 720p a window 159 against 153 ms (2). End to end, a fresh
# process pays new cuDNN plans for the batches' shapes: at 864x480 x 80 (H100) the batched forms were no
# faster than one at a time and peaked 0.9 GiB higher, so they stop below that.
WINDOW_BATCH_PIXELS = 640 * 360 * 2  # windows per batch: this many pixels' worth, at most 2
BOTH_DIRECTIONS_PIXELS = 640 * 360  # flow completion's directions together up to this frame size
# Whole-clip arrays (frames, masks, flows, propagated frames: ``store.clip_bytes``) stay on the GPU up to
# this share of its memory: 720p x 80 (3.9 GiB by that count) and 1080p x 50 (5.5 GiB) on an 80 GB card,
# beside the stages' own budgets (RAFT's at most 30 %). On the host instead every stage's chunks cross PCIe
# and the process ends holding the host copies. H100, process wall, fp16: 720p x 80 9.23/8.82 s against
# 9.41 s on the host, 1080p x 50 11.70/11.81 s against 13.01 s (flow completion 1.07 against 1.44 s,
# propagation 0.18 against 0.64 s, the exit 0.2 against 0.47 s); peak GPU 5.98 / 7.79 GiB against 4.89 /
# 6.26, peak host memory 2.8 / 3.6 GiB against 5.5 / 8.2.
RESIDENT_SHARE = 0.2


@dataclass(frozen=True)
class MemoryPolicy:
    """How the engine lays out its work on ``device``; sizes in bytes, frame sizes in pixels.

    ``None`` in a field means "chosen per clip from the frame size" (see the methods).
    """

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    # network -> its sub-modules whose convolutions run channels-last ("" = the whole network)
    channels_last: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    window_batch: int | None = None  # transformer windows per batch
    batch_directions: bool | None = None  # flow completion's two directions as one batch
    raft_chunk_frames: int | None = None  # frames handed to RAFT at once
    raft_budget_bytes: int | None = None  # RAFT's correlation + activation budget
    raft_equal_chunks: bool | None = None  # the last RAFT chunk as long as the others (None: on a GPU only)
    # half-precision storage of RAFT's all-pairs pyramids when RAFT runs in fp16 (halves their memory;
    # lookups read rounded correlations, so off unless asked)
    raft_half_pyramid: bool = False
    cuda_graphs: bool = True  # RAFT's refinement of equal-sized chunks replays one CUDA graph
    stage_budget_bytes: int = 2 * GIB  # activations of one chunk of flow completion (GPU)
    transformer_budget_bytes: int = 1 * GIB  # 1.5 GiB measured 0.4 GiB higher peak at 720p, no faster
    feature_cache_bytes: int = 1 * GIB  # encoder features kept on the device across windows
    # frames, masks and flows of the whole clip stay on the device below this size, else on the host
    # (None: RESIDENT_SHARE of the card, see :meth:`resident_budget`)
    resident_bytes: int | None = None
    # a propagation span moves to the device whole below this size; above it, only its frames and
    # masks do, and the flows come over one frame at a time
    propagation_budget_bytes: int = 5 * GIB
    flow_dtype: torch.dtype = torch.float32  # whole-clip flows (flow completion's input and output)
    frame_dtype: torch.dtype = torch.float32  # whole-clip propagated frames (the inpainter's input)
    autotune_stages: frozenset[str] = frozenset()  # stages whose convolutions cuDNN autotunes
    numpy_gather: bool = True  # window rows gathered by numpy (else ATen)
    preload: bool | None = None  # later stages' kernels loaded during RAFT (None: by frame size)

    @classmethod
    def choose(cls, tuning: Tuning, device: torch.device, precision: PrecisionPolicy) -> MemoryPolicy:
        """The measured defaults for ``device`` and ``precision``, overridden by ``tuning``'s switches."""
        cuda = device.type == "cuda"
        return cls(
            device=device,
            channels_last=channels_last_parts(tuning.channels_last, device, precision),
            window_batch=tuning.window_batch,
            batch_directions=tuning.batch_directions,
            raft_budget_bytes=tuning.raft_budget_bytes,
            raft_half_pyramid=tuning.raft_half_pyramid,
            cuda_graphs=tuning.cuda_graphs,
            transformer_budget_bytes=tuning.transformer_budget_bytes or cls.transformer_budget_bytes,
            resident_bytes=tuning.resident_bytes,
            flow_dtype=stored_dtype(precision, device, "flow_completion"),
            frame_dtype=stored_dtype(precision, device, "inpainter"),
            # none by default. Measured on an H100 (720p x 80 fp16): tuning RAFT made its stage 0.9 s slower
            # (its 7x7 flow convolution 5x slower once "tuned"), tuning every stage 6.9 s slower (each new
            # window shape is timed again)
            autotune_stages=frozenset(tuning.cudnn_benchmark) if cuda else frozenset(),
            numpy_gather=tuning.numpy_gather,
            preload=tuning.preload,
        )

    def replace(self, **changes) -> MemoryPolicy:
        return dataclasses.replace(self, **changes)

    def window_group_size(self, h: int, w: int) -> int:
        """Transformer windows per batch for frames of (h, w) pixels (``window_batch`` when set): two
        where the windows are bound by kernel launches (frames up to 640x360 on a GPU), one on the CPU
        (bound by arithmetic; there a batch would only change the summation order) and for larger
        frames. (432x240 x 80, H100: 2.57-2.61 s with 4, 2.66-2.73 s with 2, 2.92-2.95 s with 1 a
        batch, but peaks of 4.17, 2.47 and 1.44 GiB. 864x480 x 80, windows and directions batched:
        5.71/4.72 s against 4.99/5.03 s apart, peak 4.30 against 3.43 GiB.)"""
        if self.window_batch is not None:
            return self.window_batch
        if self.device.type != "cuda":
            return 1
        return max(1, min(2, WINDOW_BATCH_PIXELS // (h * w)))

    def both_directions_at_once(self, h: int, w: int) -> bool:
        """Whether flow completion runs its two directions as one batch (twice the activations,
        half the launches): on a GPU, for frames up to 640x360 (see :meth:`window_group_size`)."""
        if self.batch_directions is not None:
            return self.batch_directions
        return self.device.type == "cuda" and h * w <= BOTH_DIRECTIONS_PIXELS

    def raft_chunk(self, h: int, w: int) -> int:
        """Frames handed to RAFT at once (it splits them further to fit its memory budget), >= 2."""
        if self.raft_chunk_frames is not None:
            return max(2, self.raft_chunk_frames)
        pixels = h * w
        if pixels <= 1280 * 720:
            return 9
        if pixels <= 1920 * 1080:
            return 5
        return 3

    def equal_raft_chunks(self) -> bool:
        """Whether the last RAFT chunk reaches back to a full chunk (on a GPU unless set)."""
        return self.device.type == "cuda" if self.raft_equal_chunks is None else self.raft_equal_chunks

    def resident_budget(self) -> int:
        """Bytes of whole-clip arrays kept on the GPU (``resident_bytes`` when set): ``RESIDENT_SHARE``
        of the card, at most half of what is available on it now (free, or cached by this process's
        allocator: a card shared with other programs keeps room for the stages). Above it they live
        in host memory and each stage moves its chunks over."""
        if self.resident_bytes is not None:
            return self.resident_bytes
        if self.device.type != "cuda":
            return 0
        total = torch.cuda.get_device_properties(self.device).total_memory
        free, _ = torch.cuda.mem_get_info(self.device)
        cached = torch.cuda.memory_reserved(self.device) - torch.cuda.memory_allocated(self.device)
        return int(min(RESIDENT_SHARE * total, 0.5 * (free + cached)))

    def raft_budget(self, h: int, w: int) -> int:
        """Device memory RAFT may use for correlation pyramids and activations (``raft_budget_bytes``
        when set, else :func:`raft_budget_bytes`)."""
        return self.raft_budget_bytes or raft_budget_bytes(self.device, h, w)


def raft_budget_bytes(device: torch.device, height: int, width: int) -> int:
    """Device memory RAFT may use for correlation pyramids and activations.

    Enough for one pair's two fp32 pyramids at up to 720p (3 GiB), or for one
    direction's pyramid with room for activations above that (about 7 GiB at 1080p),
    at most 30 % of the card; larger frames use the on-demand local correlation.
    More memory would batch more pairs (a little faster on a large GPU) at the cost of
    the bounded footprint.
    """
    if device.type != "cuda":
        return 4 * GIB
    from ...flow.corr import all_pairs_bytes

    feat_h, feat_w = -(-height // 8), -(-width // 8)
    one_direction = all_pairs_bytes(feat_h, feat_w)
    activations = 2 * 4 * 4096 * feat_h * feat_w  # both directions of a pair, fp32 floats per pixel
    wanted = max(3 * GIB, one_direction + activations + 2**29)
    total = torch.cuda.get_device_properties(device).total_memory
    return int(min(wanted, 0.3 * total))


def stored_dtype(precision: PrecisionPolicy, device: torch.device, stage: str) -> torch.dtype:
    """dtype of the whole-clip float arrays that ``stage`` reads (flows for ``flow_completion``,
    propagated frames for ``inpainter``).

    On a GPU in a half precision that stage converts them to its half dtype before any
    arithmetic (the flow-completion network runs in it, the inpainter's encoder casts its
    input to it, and the flows it also reads come out of flow completion in it), so they
    are kept in that dtype: half the host memory and copies for the same values (the
    reference keeps them in fp16 too with ``--fp16``). Otherwise float32.
    """
    dtype = precision.stage_dtype(stage) if device.type == "cuda" else None
    return dtype or torch.float32


def channels_last_parts(chosen: tuple[str, ...] | None, device: torch.device,
                        precision: PrecisionPolicy) -> dict[str, tuple[str, ...]]:
    """The parts (network -> sub-modules, "" = the whole network) whose convolutions run channels-last.

    ``chosen`` is the tuning switch ``channels_last``: None = the default below, () = none,
    ("all",) = every network, else names of ``tuning.CHANNELS_LAST_PARTS``.

    By default on the CPU every network (oneDNN; 2-core EPYC: fp32 -6 %, bf16 -7 to -15 %); on the
    GPU RAFT's update block when RAFT runs in half precision, whose 20 steps then run NHWC end to
    end (H100 fp16: 33.4 against 36.3 ms a pair at 720p, 92 against 105 at 1080p), and the
    flow-completion network when it runs in half precision (H100 fp16, 1080p x 50: its stage
    1.51-1.54 against 1.68 s), and the inpainter's decoder when the inpainter runs in half
    precision: the same time, without cuDNN's layout conversions of its full-size maps, which set
    the transformer stage's peak (H100 fp16: 720p peak 4.89 against 5.07 GiB, 1080p 6.26 against
    7.07); elsewhere, and in fp32, the GPU gained nothing (H100; the inpainter's other parts
    neither) and fp32 NHWC convolutions took cuDNN algorithms with 8 GiB more workspace (H100,
    720p flow stage peak 10.9 against 3.0 GiB).
    """
    if chosen is None:
        if device.type == "cpu":
            chosen = ("all",)
        else:
            halves = (torch.float16, torch.bfloat16)
            chosen = tuple(part for part, stage in (("raft_update", "raft"), ("flow_completion", "flow_completion"),
                                                    ("inpainter_decoder", "inpainter"))
                           if precision.stage_dtype(stage) in halves)
    if "all" in chosen:
        return {net: ("",) for net in NETWORKS}
    out: dict[str, tuple[str, ...]] = {}
    for name in chosen:
        if name not in CHANNELS_LAST_PARTS:
            raise ValueError(f"channels_last: unknown part {name!r} (1, 0 or {', '.join(CHANNELS_LAST_PARTS)})")
        net, attrs = CHANNELS_LAST_PARTS[name]
        out[net] = out.get(net, ()) + tuple(attrs)
    return out
