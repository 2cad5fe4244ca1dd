"""What ``inpaint`` starts before its command line is parsed: torch's import and the GPU's context.

``import torch`` (about 1 s on a GPU machine) and the CUDA context lie on the path to the first
kernel; everything the main thread does meanwhile (the command's own imports, parsing, opening
and decoding the inputs) runs beside them. Started from the raw arguments, at the top of
``main``, they begin before the command's modules import (numpy among them, 0.08 s) and before
the parser is built. Only the three settings that decide whether the run uses torch are read,
leniently: a command line the full parser later refuses only started an import, which the
process's exit waits for (:func:`propainter_wire.cli.leave`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

IMPORT_SWITCH_INTERVAL = 0.0005
"""Seconds: the GIL's switch interval while torch imports beside the command (see
:mod:`propainter_wire.runtime.early_import`)."""


def needs_torch(engine: str, device: str, weights_dir: Path | None, env_weights_dir: Path | None) -> bool:
    """Whether an ``inpaint`` run imports torch: the propainter engine (asked for, or ``auto`` with its
    checkpoints found) or a GPU named for either engine (see ``runner.engines.EngineLoader``)."""
    from ..weights import find_weights_dir

    if engine == "propainter" or device not in ("auto", "cpu"):
        return True
    return engine == "auto" and find_weights_dir(weights_dir, env_dir=env_weights_dir) is not None


def start(engine: str, device: str, weights_dir: Path | None, tuning) -> bool:
    """Start torch's import (and, with ``tuning.early_cuda``, the GPU's context) on threads when the
    run needs torch; True when it does. Calling it again starts nothing new."""
    if not needs_torch(engine, device, weights_dir, tuning.weights_dir):
        return False
    from ..runtime.early_import import import_early

    if tuning.early_cuda and "torch" not in sys.modules:  # (torch makes the context itself once imported)
        from ..runtime.early_cuda import start_context

        start_context(device)  # the GPU's context made while torch imports
    import_early("torch", switch_interval=IMPORT_SWITCH_INTERVAL)
    return True


def start_from_words(words: Sequence[str], tuning) -> bool:
    """:func:`start` for a raw ``inpaint`` command line (``words`` without the program name); False
    for any other command, for help and ``--debug``, or where the three settings cannot be read."""
    if not words or words[0] != "inpaint" or {"-h", "--help", "--debug"} & set(words):
        return False  # (--debug sets CUDA_LAUNCH_BLOCKING first, which the context reads when it is made)
    p = _SilentParser(add_help=False, exit_on_error=False)
    p.add_argument("--engine", default="auto")
    p.add_argument("--device", default="auto")
    p.add_argument("--weights-dir", type=Path, default=None)
    try:
        known, _ = p.parse_known_args(list(words[1:]))
    except argparse.ArgumentError:
        return False
    return start(known.engine, known.device, known.weights_dir, tuning)


class _SilentParser(argparse.ArgumentParser):
    """Raises instead of printing: the full parser reports a bad command line, once."""

    def error(self, message: str):
        raise argparse.ArgumentError(None, message)
