"""Command line: ``propainter-wire inpaint|batch|mask|demo|evaluate|weights|doctor``.

One module per command, each with ``add_arguments(parser)`` and ``run(args) -> exit code``.
Bad input is one line on stderr and exit code 2 (a traceback only with ``--debug``);
see ``main`` for every exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from typing import NoReturn

from ..errors import InputError, StageError
from ..tuning import TuningError

log = logging.getLogger("propainter_wire")
PROG = "propainter-wire"

# command -> (help, whether a failure to import its module only disables it)
COMMANDS = {
    "inpaint": ("inpaint a clip", False),
    "batch": ("inpaint many shots in warm workers, on this machine or a Ray cluster", False),
    "mask": ("make masks: find wires from a few clicks, or carry key masks by optical flow", False),
    "demo": ("inpaint a generated clip with ground truth", True),
    "evaluate": ("measure quality on ground-truth cases", True),
    "weights": ("list, verify or download the checkpoints", False),
    "doctor": ("check the GPU and CPU paths", False),
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def _command(name: str):
    return importlib.import_module(f"{__name__}.{name}")


def _add_optional_arguments(p: argparse.ArgumentParser, name: str) -> None:
    """Arguments of a command whose code lives in an optional part of the package: a module
    that fails to import only disables that command (``inpaint`` never depends on it)."""
    try:
        _command(name).add_arguments(p)
    except Exception as exc:  # ImportError, or any error raised while importing it
        p.set_defaults(unavailable=f"the {name} command is unavailable: {_one_line(exc)}")
        p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command and flag; with ``only``, the arguments of that command alone.

    Each command's arguments live in its module: building them all imports every command's
    code (0.11-0.13 s more than one command's on a 2-core CPU), which a run of one command does not need.
    """
    parser = _Parser(prog=PROG, description="Remove wires, rigs and objects from video.")
    parser.add_argument("--debug", action="store_true", help="log every stage; show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, optional) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if only is not None and name != only:
            continue  # never parsed: the command line names another command
        if optional:
            _add_optional_arguments(p, name)
        else:
            _command(name).add_arguments(p)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="log every stage; show tracebacks")
    return parser


def command_of(argv: list[str]) -> str | None:
    """The command a command line names (its first word that is one), or None."""
    return next((word for word in argv if word in COMMANDS), None)


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
    return _command(args.command).run(args)


def _bytecode_cache() -> None:
    """Compiled modules kept in the user cache where the environment keeps none (see
    :mod:`propainter_wire.runtime.bytecode`)."""
    from ..runtime import bytecode
    from ..runtime.check_cache import user_cache_dir
    from ..tuning import Tuning

    try:
        setting = Tuning.from_env().bytecode_cache
    except TuningError:
        return  # the command itself refuses the variable, in one line
    bytecode.apply(setting, user_cache_dir())


def _start_early(words: list[str]) -> None:
    """``inpaint``'s torch import and GPU context started before its parser is built (see :mod:`.early`)."""
    from ..tuning import Tuning

    try:
        tuning = Tuning.from_env()
    except TuningError:
        return  # the command itself refuses the variable, in one line
    from .early import start_from_words

    start_from_words(words, tuning)


def entry() -> NoReturn:
    """``propainter-wire`` as its own process (the console script, ``python -m propainter_wire``):
    :func:`main`, then :func:`leave` with its exit code."""
    leave(main(), command_of(sys.argv[1:]))


def leave(code: int, command: str | None) -> NoReturn:
    """End the process with ``code``, skipping the interpreter's teardown where that is safe.

    With torch loaded, tearing the interpreter down (freeing every module, torch's exit
    handlers, the CUDA context) took 0.36-0.58 s on a 2-core CPU; the operating system frees
    all of it at once. By now every output is written and closed (atomic renames), worker
    threads are joined and temporary folders removed; stdio and logging are flushed here. The
    teardown still runs for ``batch`` (its workers and a Ray connection shut down at exit),
    under a profiler, tracer or coverage tool (they write their results at exit) and with
    ``PROPAINTER_WIRE_FAST_EXIT=0``.
    """
    import os

    if command in FAST_EXIT_COMMANDS and not _observed() and _fast_exit_enabled():
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)
    from ..runtime.early_import import join_early_imports

    join_early_imports()  # a thread inside an import at teardown would abort the process
    sys.exit(code)


FAST_EXIT_COMMANDS = frozenset({"inpaint", "mask", "weights", "doctor"})


def _observed() -> bool:
    """Whether a profiler, tracer or coverage tool watches this interpreter."""
    if sys.getprofile() is not None or sys.gettrace() is not None:
        return True
    monitoring = getattr(sys, "monitoring", None)  # Python >= 3.12: cProfile and coverage use it
    return monitoring is not None and any(monitoring.get_tool(i) is not None for i in range(6))


def _fast_exit_enabled() -> bool:
    from ..tuning import Tuning

    try:
        return Tuning.from_env().fast_exit
    except TuningError:
        return False


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    0: done. 2: bad input, bad value (a flag, or a tuning switch of docs/tuning.md) or a
    file that cannot be written (one line on stderr). 3: an engine stage failed (CUDA
    error, out of memory; the line names the stage). 1: an unexpected error (one line;
    ``--debug`` shows the traceback). 130: interrupted (Ctrl-C or SIGTERM); finished
    frames are kept for ``--resume``.
    """
    import time

    from ..runtime.process import seconds_since_start

    # a run's clock starts here; a process started for this command also reports what came before
    clock = (time.perf_counter(), seconds_since_start() if argv is None else None)
    if argv is None:  # a process started for this command: before anything imports torch
        _bytecode_cache()
        _start_early(sys.argv[1:])
    words = sys.argv[1:] if argv is None else argv
    parser = build_parser(only=command_of(words) if not {"-h", "--help"} & set(words[:1]) else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a usage error (one line already printed), --help or --version
        return exc.code if isinstance(exc.code, int) else 2
    args.clock = clock
    args.argv = [PROG, *words]
    _setup_logging(args.debug, getattr(args, "quiet", False))
    with _sigterm_as_interrupt(), _joined_imports(in_process=argv is not None):
        try:
            return _dispatch(args)
        except (InputError, TuningError) as exc:
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
def _joined_imports(in_process: bool) -> Iterator[None]:
    """Called in-process (``main(argv)``), return only once torch's early import has ended, as
    the interpreter may end right after; a process of its own waits in :func:`leave`, if at all."""
    try:
        yield
    finally:
        if in_process:
            from ..runtime.early_import import join_early_imports

            join_early_imports()


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


__all__ = ["PROG", "build_parser", "entry", "leave", "main"]
