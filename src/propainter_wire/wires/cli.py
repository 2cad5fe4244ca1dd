"""The ``mask`` command: ``mask wire`` (wires from a few clicks) and ``mask track`` (key masks by flow).

``propainter_wire.cli.mask`` gives the command's parser its sub-commands with
:func:`add_mask_arguments` and runs :func:`mask_command`, which returns 0; an
``InputError`` propagates to the command line, which prints its one line and exits 2
like every other command.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

WIRE_GROW = 1  # = api.WIRE_GROW (this module stays import-light); see wires/render.py
TRACK_GROW = 2


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _common(p: argparse.ArgumentParser, grow: int, grow_help: str) -> None:
    p.add_argument("-i", "--video", required=True, type=Path, help="the clip: a frame folder or a video file")
    p.add_argument("-o", "--output", required=True, type=Path,
                   help="mask folder: one 8-bit PNG per frame named like the frame (what `inpaint -m` reads)")
    p.add_argument("--grow", type=_non_negative, default=grow, help=f"{grow_help} (default {grow})")
    p.add_argument("--preview", action="store_true", help="also write preview.mp4: the masks tinted over the plate")
    p.add_argument("--overwrite", action="store_true", help="replace earlier masks in the output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_mask_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give the ``mask`` command's parser its ``wire`` and ``track`` sub-commands."""
    p.description = "Make masks for `inpaint -m`."
    sub = p.add_subparsers(dest="mask_command", metavar="{wire,track}")
    sub.required = True
    wire = sub.add_parser("wire", help="find wires marked roughly on keyframes in every frame",
                          description="Find each wire of WIRES.json in every frame and write its mask.")
    _common(wire, WIRE_GROW, "pixels of margin beyond each wire's soft edge")
    wire.add_argument("--points", required=True, type=Path,
                      help='wires file: {"wires": [{"keys": [{"frame": 0, "points": [[x, y], ...]}]}]} '
                           "(see docs/wires.md)")
    track = sub.add_parser("track", help="carry masks painted on keyframes to every frame by optical flow",
                           description="Carry key masks to every frame by optical flow, both ways, blended.")
    _common(track, TRACK_GROW, "pixels added around the carried mask")
    track.add_argument("-k", "--keymasks", required=True, type=Path,
                       help="a folder of masks named like their frames, or one mask image (with --frame)")
    track.add_argument("--frame", type=int, default=None,
                       help="the frame a single key mask image was painted on (index, or number for numbered "
                            "sequences)")
    return p


def mask_command(args: argparse.Namespace) -> int:
    """Run ``mask wire`` or ``mask track``; prints a one-line summary (JSON report path) unless quiet."""
    from .api import make_wire_masks, track_masks
    from .output import REPORT, TRACK_REPORT

    if args.mask_command == "wire":
        report = make_wire_masks(args.video, args.points, args.output, grow=args.grow, quiet=args.quiet,
                                 preview=args.preview, overwrite=args.overwrite)
        low = {w["name"]: len(w["low_confidence_frames"]) for w in report["wires"]}
        shared = {w["name"]: len(w["shared_line_frames"]) for w in report["wires"] if w["shared_line_frames"]}
        summary = (f"{report['frames']} masks in {args.output} ({report['seconds_per_frame']:.3f} s/frame); "
                   f"low-confidence frames per wire: {json.dumps(low)}; "
                   + (f"of them on another wire's line: {json.dumps(shared)}; " if shared else "")
                   + f"report {args.output / REPORT}")
    else:
        report = track_masks(args.video, args.keymasks, args.output, frame=args.frame, grow=args.grow,
                             quiet=args.quiet, preview=args.preview, overwrite=args.overwrite)
        summary = (f"{report['frames']} masks in {args.output} from keys {report['keys']} "
                   f"({report['seconds_per_frame']:.3f} s/frame); report {args.output / TRACK_REPORT}")
    if not args.quiet:
        print(summary, file=sys.stderr)
    return 0


