"""A bytecode cache for environments that have none.

Python compiles every module it imports unless a ``.pyc`` beside it (or under
``sys.pycache_prefix``) is current. Some environments have no bytecode for their libraries and
forbid writing it (``PYTHONDONTWRITEBYTECODE=1``, common in container images, or a read-only
site-packages): there every run compiles torch again. Measured on an H100 machine set up that
way (torch 2.11, 2,141 modules, no ``.pyc``): ``import torch`` took 5.9-8.4 s a process, the
larger part of the 8.4 s a 432x240x80 run took end to end.

When torch's own bytecode is missing, the command line points ``sys.pycache_prefix`` at
``<user cache>/pycache`` (and lets Python write there, never beside the sources), so the first
run compiles once and later runs load the compiled modules. Environments that have their
bytecode are left alone (a prefix would make Python ignore it). ``PROPAINTER_WIRE_BYTECODE_CACHE``
turns it on (1) or off (0) regardless; an interpreter started with its own prefix
(``PYTHONPYCACHEPREFIX``, ``-X pycache_prefix``) is always left alone.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

ENV_PREFIX = "PYTHONPYCACHEPREFIX"


def missing_bytecode(module: str = "torch") -> bool:
    """True when ``module`` (default torch; not imported) is installed but has no compiled
    bytecode where this interpreter looks for it. False when it is not installed."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return False
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return False
    try:
        cached = importlib.util.cache_from_source(spec.origin)
    except NotImplementedError:  # an interpreter without a cache tag
        return False
    return not os.path.exists(cached)


def wanted(setting: bool | None, prefix_set: bool, bytecode_missing: bool) -> bool:
    """Whether to use the cache: never over the interpreter's own prefix; else ``setting``
    (``PROPAINTER_WIRE_BYTECODE_CACHE``), and when unset only where the bytecode is missing."""
    if prefix_set:
        return False
    return bytecode_missing if setting is None else setting


def use_bytecode_cache(folder: Path) -> Path:
    """Compile to and load from ``folder`` from now on, in this process and the Python processes
    it starts (batch workers). Returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    sys.pycache_prefix = str(folder)
    sys.dont_write_bytecode = False  # writes go to ``folder``, never beside the sources
    os.environ[ENV_PREFIX] = str(folder)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # the same for the processes it starts
    return folder


def apply(setting: bool | None, cache_dir: Path) -> Path | None:
    """The command line's start-up step: the cache folder now in use, or None."""
    if not wanted(setting, sys.pycache_prefix is not None, setting is None and missing_bytecode()):
        return None
    try:
        return use_bytecode_cache(cache_dir / "pycache")
    except OSError:  # an unwritable cache folder: run as before
        return None
