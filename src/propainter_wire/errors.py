"""Errors the user can act on.

Every problem with the user's input or environment is raised as an ``InputError``
(or a subclass). The CLI prints its one-line message and exits with code 2;
nothing else about it (no traceback) is shown unless ``--debug`` is given.
"""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """A problem the user can fix: bad path, bad file, bad value.

    Args:
        message: one line saying what is wrong.
        path: the offending file or folder, named in the message when given.
    """

    exit_code = 2

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        text = f"{self.path}: {message}" if path is not None else message
        super().__init__(text)


class WeightsError(InputError):
    """A checkpoint file is missing, truncated, corrupt or foreign."""


class StageError(RuntimeError):
    """A pipeline stage failed on the device (CUDA error, out of memory).

    The message names the stage and suggests ``propainter-wire doctor``.
    """

    exit_code = 3

    def __init__(self, stage: str, message: str):
        self.stage = stage
        super().__init__(f"stage '{stage}' failed: {message} (run `propainter-wire doctor` to check the GPU path)")
