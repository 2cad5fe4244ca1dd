"""The ``inpaint`` command's delivery options: master codec, frame rate, review, regrain.

``add_delivery_arguments(parser)`` adds them (each with a help line) to an argparse
parser; ``DeliveryOptions.from_args(args)`` turns the parsed values into a frozen,
validated record the run uses.
"""

from __future__ import annotations

import argparse
import dataclasses
from fractions import Fraction

from ..errors import InputError
from .codecs import CODECS, DEFAULT_CODEC, get_codec
from .timing import parse_rate

REGRAIN_CHOICES = ("auto", "off")


def _fps_argument(text: str) -> Fraction:
    try:
        return parse_rate(text)
    except InputError as exc:  # argparse reports ArgumentTypeError as a usage error (exit code 2)
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--fps: ")) from None


def add_delivery_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Add ``--video-codec``, ``--fps``, ``--video-only``, ``--review`` and ``--regrain``; return their group."""
    group = parser.add_argument_group("delivery")
    group.add_argument("--video-codec", choices=tuple(CODECS), default=DEFAULT_CODEC, metavar="CODEC",
                       help="codec of the result video (with --save-video or --video-only; a codec other than h264 "
                            "writes it without them): "
                            + "; ".join(f"{c.name} = {c.description}" for c in CODECS.values())
                            + f" (default: {DEFAULT_CODEC})")
    group.add_argument("--fps", type=_fps_argument, default=None, metavar="RATE",
                       help="frame rate of an image-sequence input, e.g. 24, 25 or 23.976 (= 24000/1001); "
                            "a video input keeps its own rate (default: 24 for image sequences)")
    group.add_argument("--video-only", action="store_true",
                       help="write only the result video (the master), not the frame files")
    group.add_argument("--review", action="store_true",
                       help="also write review.mp4 (input with the mask outlined beside the result, frame numbers "
                            "burnt in) and review.png (a contact sheet with close-ups of the fill)")
    group.add_argument("--regrain", choices=REGRAIN_CHOICES, default="off",
                       help="add grain matching the plate to the filled pixels: auto = when the plate has "
                            "measurable grain; off = leave the fill clean, as the reference does (default: off)")
    return group


@dataclasses.dataclass(frozen=True)
class DeliveryOptions:
    """The delivery choices of one run.

    Attributes:
        video_codec: a key of ``codecs.CODECS``.
        fps: the image-sequence frame rate, exact; None = the video's own (24 for sequences).
        video_only: write the master without the frame files.
        review: write review.mp4 and review.png.
        regrain: "auto" or "off".
    """

    video_codec: str = DEFAULT_CODEC
    fps: Fraction | None = None
    video_only: bool = False
    review: bool = False
    regrain: str = "off"

    def __post_init__(self):
        get_codec(self.video_codec)  # InputError for an unknown name
        if self.regrain not in REGRAIN_CHOICES:
            raise ValueError(f"regrain must be one of {REGRAIN_CHOICES}, got {self.regrain!r}")

    @property
    def codec(self):
        """The ``VideoCodec`` chosen."""
        return get_codec(self.video_codec)

    @classmethod
    def from_config(cls, config) -> DeliveryOptions:
        """The options of an ``InpaintConfig``: its video_codec, fps, video_only, review and regrain."""
        fps = parse_rate(str(config.fps)) if config.fps is not None else None
        return cls(video_codec=config.video_codec, fps=fps, video_only=bool(config.video_only),
                   review=bool(config.review), regrain=config.regrain)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> DeliveryOptions:
        """The options from a namespace parsed with ``add_delivery_arguments``."""
        return cls(video_codec=args.video_codec, fps=args.fps, video_only=bool(args.video_only),
                   review=bool(args.review), regrain=args.regrain)
