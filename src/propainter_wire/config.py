"""Run settings as one frozen dataclass: the CLI and the Python API both build it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError

ENGINES = ("auto", "propainter", "classic")
PRECISIONS = ("auto", "fp32", "tf32", "fp16", "bf16")
SCRATCH_MODES = ("auto", "memory", "disk")
# px of margin past each wire's soft edge in the masks `inpaint --wires` fills (`mask wire` draws 1): every
# extra pixel of hole is filled from frames further away; on the wire harness grow 0 against 1 gains
# 0.6-2.6 dB inside the wire with the classic engine (the tinted pixels a tighter mask leaves cost less)
INPAINT_WIRE_GROW = 0


@dataclass(frozen=True)
class InpaintConfig:
    """Every setting of one inpainting run.

    Sizes are in pixels of the input unless stated. Defaults follow the reference
    ProPainter inference script.
    """

    engine: str = "auto"
    weights_dir: Path | None = None
    device: str = "auto"
    precision: str = "auto"
    # masks
    mask_dilation: int = 4
    flow_mask_dilation: int | None = None  # None: same as mask_dilation
    mask_threshold: float = 0  # matte value above which a pixel is masked: 0..1 (1..254: the 8-bit scale)
    mask_channel: str | None = None  # R, G, B, A, Y or a channel name (None: alpha or luminance, see io/mattes.py)
    invert_mask: bool = False
    soft_matte: bool = True  # a soft matte's values are the composite's blend weight (False: hard masks)
    # plates
    frames: str | None = None  # inclusive range of frame numbers, "1001-1100" (None: every frame)
    start_number: int = 0  # number of a video's first output frame
    colorspace: str | None = None  # the input's colour space (None: see io/colour.py for the defaults)
    # propainter windows
    neighbor_length: int = 10
    ref_stride: int = 10
    subvideo_length: int = 80
    raft_iters: int = 20
    # processing size (at most one way of choosing it)
    max_side: int | None = None
    width: int | None = None
    height: int | None = None
    resize_ratio: float | None = None
    # classic engine
    classic_flow: str = "dis"  # "dis" or "farneback"
    # where the clip's whole-length arrays live: "memory", "disk" (a scratch directory: host memory
    # flat with clip length), or "auto" (disk when the clip would need more than half the RAM)
    scratch: str = "auto"
    scratch_dir: Path | None = None  # parent of the scratch directory (None: the system's temp dir)
    # output
    save_video: bool = False
    # delivery (docs/delivery.md): master codec, image-sequence rate, master without frame files,
    # review files, grain added to the fill
    video_codec: str = "h264"  # a key of delivery.codecs.CODECS
    fps: str | float | None = None  # "24", "23.976", "24000/1001" (None: the video's own; 24 for sequences)
    video_only: bool = False
    review: bool = False
    regrain: str = "off"  # "auto" (grain when the plate has measurable grain) or "off" (the reference's fill)
    overwrite: bool = False
    resume: bool = False
    quiet: bool = False
    debug: bool = False

    @property
    def effective_flow_mask_dilation(self) -> int:
        return self.mask_dilation if self.flow_mask_dilation is None else self.flow_mask_dilation

    def replace(self, **changes) -> InpaintConfig:
        return dataclasses.replace(self, **changes)

    def validate(self) -> InpaintConfig:
        """Raise ``InputError`` on an impossible value; return self."""
        if self.engine not in ENGINES:
            raise InputError(f"unknown engine '{self.engine}' (choose from {', '.join(ENGINES)})")
        if self.precision not in PRECISIONS:
            raise InputError(f"unknown precision '{self.precision}' (choose from {', '.join(PRECISIONS)})")
        _check_device_name(self.device)
        if self.mask_dilation < 0:
            raise InputError(f"--mask-dilation must be >= 0, got {self.mask_dilation}")
        if self.flow_mask_dilation is not None and self.flow_mask_dilation < 0:
            raise InputError(f"--flow-mask-dilation must be >= 0, got {self.flow_mask_dilation}")
        if not 0 <= self.mask_threshold < 255:
            raise InputError(f"--mask-threshold must be in 0..1 (or 1..254 on the 8-bit scale), got "
                             f"{self.mask_threshold}")
        if self.frames is not None:
            from .io.sequence import parse_frame_range

            parse_frame_range(self.frames)
        if self.start_number < 0:
            raise InputError(f"--start-number must be >= 0, got {self.start_number}")
        if self.neighbor_length < 2:
            raise InputError(f"--neighbor-length must be >= 2, got {self.neighbor_length}")
        if self.ref_stride < 1:
            raise InputError(f"--ref-stride must be >= 1, got {self.ref_stride}")
        if self.subvideo_length < 1:
            raise InputError(f"--subvideo-length must be >= 1, got {self.subvideo_length}")
        if self.raft_iters < 1:
            raise InputError(f"--raft-iters must be >= 1, got {self.raft_iters}")
        if self.classic_flow not in ("dis", "farneback"):
            raise InputError(f"unknown classic flow '{self.classic_flow}' (dis or farneback)")
        if self.scratch not in SCRATCH_MODES:
            raise InputError(f"unknown scratch mode '{self.scratch}' (choose from {', '.join(SCRATCH_MODES)})")
        _check_delivery(self)
        ways = [self.max_side is not None, self.width is not None or self.height is not None,
                self.resize_ratio is not None]
        if sum(ways) > 1:
            raise InputError("choose one of --max-side, --width/--height, --resize-ratio")
        if self.max_side is not None and self.max_side < 8:
            raise InputError(f"--max-side must be >= 8, got {self.max_side}")
        if (self.width is None) != (self.height is None):
            raise InputError("--width and --height go together")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise InputError(f"--{name} must be positive, got {value}")
        if self.resize_ratio is not None and not 0 < self.resize_ratio <= 1:
            raise InputError(f"--resize-ratio must be in (0, 1], got {self.resize_ratio}")
        return self


def _check_delivery(config: InpaintConfig) -> None:
    from .delivery.codecs import CODECS
    from .delivery.options import REGRAIN_CHOICES
    from .delivery.timing import parse_rate

    if config.video_codec not in CODECS:
        raise InputError(f"unknown video codec '{config.video_codec}' (choose from {', '.join(CODECS)})")
    if config.regrain not in REGRAIN_CHOICES:
        raise InputError(f"unknown regrain mode '{config.regrain}' (choose from {', '.join(REGRAIN_CHOICES)})")
    if config.fps is not None:
        parse_rate(str(config.fps))


def _check_device_name(name: str) -> None:
    if name in ("auto", "cpu", "cuda"):
        return
    if name.startswith("cuda:") and name[5:].isdigit():
        return
    raise InputError(f"unknown device '{name}' (auto, cpu, cuda or cuda:N)")
