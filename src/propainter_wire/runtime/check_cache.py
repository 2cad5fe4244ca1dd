"""Passed GPU checks, remembered per machine and software stack.

``--device auto`` checks the GPU before trusting it (see :mod:`.device`). The check's
outcome depends only on the GPU, its driver and the libraries that run it, so a pass
is recorded in the user's cache folder under a key of exactly those versions; a later
run with the same key skips the check. Any change (a driver update, another torch or
GPU) makes a new key and the check runs again. Failures are never recorded: a GPU that
failed is checked again on every run. Two checks use it: the device self-check
(``--device auto``) and the fused convolution + ReLU check before RAFT takes cuDNN's fused
kernels; each has its own name in the key.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

CACHE_FILE = "gpu-self-check.json"


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/propainter-wire``, or ``~/.cache/propainter-wire``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "propainter-wire"


def stack_key(device) -> str:
    """A digest of what decides the check's outcome on ``device`` (a CUDA ``torch.device``): the
    GPU (name, capability, memory, UUID), the driver, torch with its CUDA and cuDNN, torchvision
    (the deformable-convolution kernel) and this package."""
    import importlib.metadata

    import torch

    from .. import __version__

    props = torch.cuda.get_device_properties(device)
    parts = {
        "gpu": props.name, "capability": f"{props.major}.{props.minor}", "memory": props.total_memory,
        "uuid": str(getattr(props, "uuid", "")), "driver": _driver_version(), "torch": torch.__version__,
        "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(), "package": __version__,
    }
    try:
        parts["torchvision"] = importlib.metadata.version("torchvision")
    except importlib.metadata.PackageNotFoundError:
        parts["torchvision"] = None
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def _driver_version() -> str | None:
    """The NVIDIA kernel driver's version line (Linux), else None."""
    try:
        return Path("/proc/driver/nvidia/version").read_text().splitlines()[0].strip()
    except (OSError, IndexError):
        return None


def passed_before(key: str, folder: Path | None = None) -> bool:
    """Whether a self-check with this ``key`` passed before (an unreadable cache counts as no)."""
    try:
        passed = json.loads(((folder or user_cache_dir()) / CACHE_FILE).read_text()).get("passed", [])
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(passed, list) and key in passed


def record_pass(key: str, folder: Path | None = None, keep: int = 16) -> None:
    """Remember that the check passed for ``key`` (the newest ``keep`` keys are kept). Written
    atomically; a cache folder that cannot be written is ignored (the check then runs each time)."""
    folder = folder or user_cache_dir()
    path = folder / CACHE_FILE
    try:
        previous = json.loads(path.read_text()).get("passed", [])
        previous = [k for k in previous if isinstance(k, str) and k != key] if isinstance(previous, list) else []
    except (OSError, ValueError, AttributeError):
        previous = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
        with os.fdopen(fd, "w") as handle:
            json.dump({"passed": (previous + [key])[-keep:]}, handle)
        os.replace(tmp, path)
    except OSError:
        pass


def remembered(name: str, device, check: Callable[[], str | None], folder: Path | None = None) -> str | None:
    """``check()`` (None when it passes, else the problem in one line), skipped when the check
    called ``name`` passed before on ``device``'s GPU and software stack (:func:`stack_key`)."""
    try:
        key = f"{name}:{stack_key(device)}"
    except Exception:  # a property torch cannot read: check every time
        key = None
    if key is not None and passed_before(key, folder):
        return None
    problem = check()
    if problem is None and key is not None:
        record_pass(key, folder)
    return problem
