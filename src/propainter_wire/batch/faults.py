"""Fault injection for the batch runners' tests and failover drills: picklable ``before_shot`` hooks."""

from __future__ import annotations

import os
from pathlib import Path


def exit_once(marker: str | Path, shot=None) -> None:
    """End the calling worker process at once (exit code 17, no clean-up) if ``marker`` exists; the marker
    is removed first, so only one worker of a batch dies (``functools.partial(exit_once, path)``)."""
    try:
        Path(marker).unlink()
    except FileNotFoundError:
        return
    os._exit(17)
