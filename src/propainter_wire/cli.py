"""Command line: ``propainter-wire inpaint|demo|evaluate|weights|doctor``.

Bad input is one line on stderr and exit code 2 (a traceback only with ``--debug``);
see ``main`` for every exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from .config import ENGINES, PRECISIONS, SCRATCH_MODES, InpaintConfig
from .errors import InputError, StageError

log = logging.getLogger("propainter_wire")
PROG = "propainter-wire"


def _positive_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _add_inpaint_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--video", required=True, type=Path, help="frame folder or video file")
    p.add_argument("-m", "--mask", required=True, type=Path, help="mask folder, single mask image or mask video")
    p.add_argument("-o", "--output", required=True, type=Path, help="output folder")
    p.add_argument("--engine", choices=ENGINES, default="auto",
                   help="auto: propainter when its checkpoints are found, else classic")
    p.add_argument("--weights-dir", type=Path, default=None, help="folder holding the three checkpoints")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", choices=PRECISIONS, default="auto")
    p.add_argument("--mask-dilation", type=_positive_int, default=4, help="dilation of the fill region (pixels)")
    p.add_argument("--flow-mask-dilation", type=_positive_int, default=None,
                   help="dilation of the untrusted-flow region (default: --mask-dilation)")
    p.add_argument("--mask-threshold", type=_positive_int, default=0,
                   help="grey value above which a mask pixel counts (0: any non-zero)")
    p.add_argument("--neighbor-length", type=_positive_int, default=10)
    p.add_argument("--ref-stride", type=_positive_int, default=10)
    p.add_argument("--subvideo-length", type=_positive_int, default=80)
    p.add_argument("--raft-iters", type=_positive_int, default=20)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--max-side", type=_positive_int, default=None, help="scale so the longer side is at most N")
    size.add_argument("--resize-ratio", type=float, default=None, help="scale both sides by R (0 < R <= 1)")
    p.add_argument("--width", type=_positive_int, default=None, help="processing width (with --height)")
    p.add_argument("--height", type=_positive_int, default=None, help="processing height (with --width)")
    p.add_argument("--classic-flow", choices=("dis", "farneback"), default="dis")
    p.add_argument("--scratch", choices=SCRATCH_MODES, default="auto",
                   help="where whole-clip arrays live: memory, disk (host memory flat with clip length), "
                        "auto (disk when the clip would need over half the RAM)")
    p.add_argument("--scratch-dir", type=Path, default=None, help="parent folder of the scratch files (disk)")
    p.add_argument("--save-video", action="store_true", help="also write inpainted.mp4")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--resume", action="store_true", help="finish an interrupted run into the same output")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def _add_optional_arguments(p: argparse.ArgumentParser, module: str, function: str) -> None:
    """Arguments of a command living in its own module; a module that fails to import only
    disables that command (``inpaint`` never depends on it)."""
    import importlib

    try:
        add = getattr(importlib.import_module(f".{module}", __package__), function)
    except Exception as exc:  # ImportError, or any error raised while importing it
        p.set_defaults(unavailable=f"the {module.rpartition('.')[2]} command is unavailable: {_one_line(exc)}")
        p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        return
    add(p)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Remove wires, rigs and objects from video.")
    parser.add_argument("--debug", action="store_true", help="log every stage; show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("inpaint", help="inpaint a clip")
    _add_inpaint_arguments(p)
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)

    p = sub.add_parser("demo", help="inpaint a generated clip with ground truth")
    _add_optional_arguments(p, "quality.demo", "add_demo_arguments")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)

    p = sub.add_parser("evaluate", help="measure quality on ground-truth cases")
    _add_optional_arguments(p, "quality.evaluate", "add_evaluate_arguments")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)

    p = sub.add_parser("weights", help="list, verify or download the checkpoints")
    p.add_argument("action", choices=("list", "verify", "download"))
    p.add_argument("--weights-dir", type=Path, default=None)
    p.add_argument("--url", default=None, help="download from this base URL instead of the official release")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)

    p = sub.add_parser("doctor", help="check the GPU and CPU paths")
    p.add_argument("--json", action="store_true", help="print JSON only")
    p.add_argument("--device", default="auto")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
    return parser


def _config_from_args(args: argparse.Namespace) -> InpaintConfig:
    return InpaintConfig(
        engine=args.engine, weights_dir=args.weights_dir, device=args.device, precision=args.precision,
        mask_dilation=args.mask_dilation, flow_mask_dilation=args.flow_mask_dilation,
        mask_threshold=args.mask_threshold, neighbor_length=args.neighbor_length, ref_stride=args.ref_stride,
        subvideo_length=args.subvideo_length, raft_iters=args.raft_iters, max_side=args.max_side,
        width=args.width, height=args.height, resize_ratio=args.resize_ratio, classic_flow=args.classic_flow,
        scratch=args.scratch, scratch_dir=args.scratch_dir, save_video=args.save_video, overwrite=args.overwrite,
        resume=args.resume, quiet=args.quiet,
        debug=args.debug,
    )


def _setup_logging(debug: bool, quiet: bool) -> None:
    level = logging.DEBUG if debug else (logging.WARNING if quiet else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s: %(message)s" if debug else
                                           f"{PROG}: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False
    if not debug:  # OpenCV's own log lines (e.g. a broken PNG's header) would precede our one-line error
        _silence_opencv()


def _silence_opencv() -> None:
    """No log lines from OpenCV itself: its decoders' complaints become our own one-line errors."""
    import os

    if "cv2" in sys.modules:  # already imported (the parser may have): set its level directly
        cv2 = sys.modules["cv2"]
        with contextlib.suppress(AttributeError):
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    else:
        os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")  # read when cv2 is first imported


def _dispatch(args: argparse.Namespace) -> int:
    if getattr(args, "unavailable", None):
        raise InputError(args.unavailable)
    if args.command == "inpaint":
        from .api import inpaint

        config = _config_from_args(args)
        if args.debug:
            import os

            os.environ.setdefault("CUDA_LAUNCH_BLOCKING", "1")
        report = inpaint(args.video, args.mask, args.output, config)
        if not args.quiet:
            secs = report["seconds"]["total"]
            print(f"{report['frames']} frames inpainted with the {report['engine']} engine in {secs:.1f} s "
                  f"-> {report['output']}")
        return 0
    if args.command == "demo":
        from .quality.demo import demo_command

        return demo_command(args)
    if args.command == "evaluate":
        from .quality.evaluate import evaluate_command

        return evaluate_command(args)
    if args.command == "weights":
        from .weights import weights_command

        return weights_command(args.action, args.weights_dir, url=args.url, quiet=args.quiet)
    if args.command == "doctor":
        from .doctor import doctor_command

        return doctor_command(as_json=args.json, device=args.device)
    raise AssertionError(args.command)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    0: done. 2: bad input, bad value or a file that cannot be written (one line on
    stderr). 3: an engine stage failed (CUDA error, out of memory; the line names the
    stage). 1: an unexpected error (one line; ``--debug`` shows the traceback).
    130: interrupted (Ctrl-C or SIGTERM); finished frames are kept for ``--resume``.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a usage error (one line already printed), --help or --version
        return exc.code if isinstance(exc.code, int) else 2
    _setup_logging(args.debug, getattr(args, "quiet", False))
    with _sigterm_as_interrupt():
        try:
            return _dispatch(args)
        except InputError as exc:
            if args.debug:
                raise
            _print_error(_one_line(exc))
            return InputError.exit_code
        except StageError as exc:
            if args.debug:
                raise
            _print_error(_one_line(exc))
            return StageError.exit_code
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted; finished frames are kept (rerun with --resume)", file=sys.stderr)
            return 130
        except Exception as exc:
            if args.debug:
                raise
            _print_error(f"unexpected {type(exc).__name__}: {_one_line(exc)} (rerun with --debug for the traceback)")
            return 1


def _print_error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block a SIGTERM (``kill``) stops the run like Ctrl-C: finished frames are kept."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, _interrupt)
    except (ValueError, OSError):  # no signals here (embedded interpreter)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
