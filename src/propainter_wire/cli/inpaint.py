"""``propainter-wire inpaint``: every setting of :class:`InpaintConfig` as a flag."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import ENGINES, INPAINT_WIRE_GROW, PRECISIONS, SCRATCH_MODES, InpaintConfig
from ..delivery.options import add_delivery_arguments


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _non_negative(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


EXAMPLES = """\
examples:
  propainter-wire inpaint -i shot/plate.####.exr -m shot/roto.####.png -o out --engine classic
  propainter-wire inpaint -i plate.mov -m wire.png -o out --video-only --video-codec prores --review
  propainter-wire inpaint -i plate.mov -m masks -o out --resume --regrain off --quiet
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EXAMPLES
    p.add_argument("-i", "--video", required=True, type=Path,
                   help="frame folder, sequence (shot/plate.####.exr, plate.%%04d.exr, plate.@@@@.exr) or video file")
    masks = p.add_mutually_exclusive_group(required=True)
    masks.add_argument("-m", "--mask", type=Path, help="mask folder or sequence, single mask image or mask video")
    masks.add_argument("--wires", type=Path, default=None,
                       help="make the masks from a wires file first (see `mask wire`); they are kept in "
                            "OUTPUT/wire_masks")
    p.add_argument("--wire-grow", type=_non_negative, default=INPAINT_WIRE_GROW,
                   help="with --wires: pixels of margin beyond each wire's soft edge in the masks inpainted "
                        f"(default {INPAINT_WIRE_GROW}; `mask wire` draws 1: see docs/wires.md)")
    p.add_argument("-o", "--output", required=True, type=Path, help="output folder")
    p.add_argument("--engine", choices=ENGINES, default="auto",
                   help="auto: propainter when its checkpoints are found, else classic")
    p.add_argument("--weights-dir", type=Path, default=None, help="folder holding the three checkpoints")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="network arithmetic on the GPU: auto (bf16/fp16 where safe), fp32, tf32, fp16 or bf16")
    p.add_argument("--mask-dilation", type=_int, default=4, help="dilation of the fill region (pixels)")
    p.add_argument("--flow-mask-dilation", type=_int, default=None,
                   help="dilation of the untrusted-flow region (default: --mask-dilation)")
    p.add_argument("--mask-threshold", type=_float, default=0,
                   help="matte value above which a pixel counts, 0..1 whatever the bit depth (0: any non-zero; "
                        "1..254: the 8-bit scale)")
    p.add_argument("--mask-channel", default=None,
                   help="the matte's channel: R, G, B, A, Y or a channel name such as mask or roto.A "
                        "(default: alpha when the colour is constant, else luminance)")
    p.add_argument("--invert-mask", action="store_true", help="fill where the matte is 0 (a holdout matte)")
    p.add_argument("--hard-matte", action="store_true",
                   help="no soft blend: a soft matte's pixels above the threshold are replaced entirely")
    p.add_argument("--frames", default=None, help="inclusive range of frame numbers of a sequence, e.g. 1001-1100")
    p.add_argument("--start-number", type=_int, default=0, help="number of a video input's first output frame")
    p.add_argument("--colorspace", default=None,
                   help="the input's colour space, an OpenColorIO name ($OCIO, else the built-in ACES config); "
                        "default: scene-linear ACEScg for float files, display-referred for integer files")
    p.add_argument("--neighbor-length", type=_int, default=10,
                   help="propainter: frames the transformer fills together (default: 10)")
    p.add_argument("--ref-stride", type=_int, default=10,
                   help="propainter: every Nth frame of the clip is a reference (default: 10)")
    p.add_argument("--subvideo-length", type=_int, default=80,
                   help="propainter: frames per window of flow and propagation; less uses less memory (default: 80)")
    p.add_argument("--raft-iters", type=_int, default=20, help="propainter: optical-flow refinements (default: 20)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--max-side", type=_int, default=None, help="scale so the longer side is at most N")
    size.add_argument("--resize-ratio", type=float, default=None, help="scale both sides by R (0 < R <= 1)")
    p.add_argument("--width", type=_int, default=None, help="processing width (with --height)")
    p.add_argument("--height", type=_int, default=None, help="processing height (with --width)")
    p.add_argument("--classic-flow", choices=("dis", "farneback"), default="dis",
                   help="classic engine: OpenCV optical flow, dis (default) or farneback")
    p.add_argument("--scratch", choices=SCRATCH_MODES, default="auto",
                   help="where whole-clip arrays live: memory, disk (host memory flat with clip length), "
                        "auto (disk when the clip would need over half the RAM)")
    p.add_argument("--scratch-dir", type=Path, default=None, help="parent folder of the scratch files (disk)")
    p.add_argument("--save-video", action="store_true", help="also write inpainted.mp4")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--resume", action="store_true", help="finish an interrupted run into the same output")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_delivery_arguments(p)


def config_from_args(args: argparse.Namespace) -> InpaintConfig:
    """The settings the flags give (validated later, by ``inpaint``)."""
    return InpaintConfig(
        engine=args.engine, weights_dir=args.weights_dir, device=args.device, precision=args.precision,
        mask_dilation=args.mask_dilation, flow_mask_dilation=args.flow_mask_dilation,
        mask_threshold=args.mask_threshold, neighbor_length=args.neighbor_length, ref_stride=args.ref_stride,
        subvideo_length=args.subvideo_length, raft_iters=args.raft_iters, max_side=args.max_side,
        width=args.width, height=args.height, resize_ratio=args.resize_ratio, classic_flow=args.classic_flow,
        scratch=args.scratch, scratch_dir=args.scratch_dir, save_video=args.save_video, overwrite=args.overwrite,
        resume=args.resume, quiet=args.quiet, mask_channel=args.mask_channel, invert_mask=args.invert_mask,
        soft_matte=not args.hard_matte, frames=args.frames, start_number=args.start_number,
        colorspace=args.colorspace, video_codec=args.video_codec,
        fps=str(args.fps) if args.fps is not None else None, video_only=args.video_only, review=args.review,
        regrain=args.regrain, debug=args.debug,
    )


def run(args: argparse.Namespace) -> int:
    """Inpaint (the tuning switches read once here); print one summary line on stderr."""
    from ..tuning import Tuning

    start, startup = getattr(args, "clock", (None, None))
    config = config_from_args(args).validate()
    if args.debug:
        import os

        os.environ.setdefault("CUDA_LAUNCH_BLOCKING", "1")  # CUDA errors raised at the failing kernel
    tuning = Tuning.from_env()
    from . import early

    early.start(config.engine, config.device, config.weights_dir, tuning)  # (started by main already, as a rule)
    from ..runner.files import inpaint_files

    if args.wires is not None:
        report = _inpaint_wires(args, config, tuning, start, startup)
    else:
        report = inpaint_files(args.video, args.mask, args.output, config, tuning, start=start, startup=startup,
                               command_line=getattr(args, "argv", None))
    if not args.quiet:  # one summary line on stderr (stdout stays free for pipes)
        secs = report["seconds"]["total"]
        print(f"{report['frames']} frames inpainted with the {report['engine']} engine in {secs:.1f} s "
              f"-> {report['output']}", file=sys.stderr)
    return 0


def _inpaint_wires(args: argparse.Namespace, config: InpaintConfig, tuning, start, startup) -> dict:
    """``inpaint --wires``: wire masks made beside the output folder, the clip inpainted with them, then the
    masks moved into ``OUTPUT/wire_masks`` (a failed run leaves nothing behind)."""
    import shutil
    import tempfile

    from ..io.output import REPORT_NAME, write_json
    from ..runner.files import inpaint_files
    from ..wires import masks_for_inpaint

    output = args.output.expanduser().resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".wire-masks-", dir=output.parent))
    try:
        masks = masks_for_inpaint(args.video, args.wires, work, grow=args.wire_grow, quiet=args.quiet)
        report = inpaint_files(args.video, masks, output, config, tuning, start=start, startup=startup,
                               command_line=getattr(args, "argv", None))
        kept = output / masks.name
        if kept.exists():
            shutil.rmtree(kept)
        masks.rename(kept)
        report["mask"] = str(kept)
        write_json(output / REPORT_NAME, report)
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)
