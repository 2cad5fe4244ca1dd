"""Checkpoint files: where they are looked for, how they are checked, loaded and downloaded.

- :mod:`.checkpoints`: reading a ``.pth`` file on the CPU, checking its keys and shapes
  against the network, loading it (``read_network``, ``load_raft``, ...).
- :mod:`.locate`: the folders searched (``--weights-dir``, the weights folder switch of
  docs/tuning.md handed in as ``env_dir``, ``./weights``, ``~/.cache/propainter-wire``).
- :mod:`.download`: checking files against the official release, downloading them, and
  the ``weights {list,verify,download}`` command.

The deterministic stand-in checkpoints for tests and benchmarks live in
:mod:`propainter_wire.testing`.
"""

import importlib

from .locate import default_cache_dir, find_weights_dir, require_weights_dir, search_dirs
from .names import CHECKPOINT_FILES, FLOW_COMPLETION_FILE, INPAINTER_FILE, RAFT_FILE

# Reading and downloading checkpoints needs torch and the network code; finding them does not. Those
# names load on first use, so a run that only looks for the weights (the classic engine's) imports no
# torch (1.5 s on a 2-core CPU, about 4 s where site-packages has no bytecode cache).
_LAZY = {
    **dict.fromkeys(("PendingNetwork", "load_flow_completion", "load_inpainter", "load_into", "load_raft",
                     "open_checkpoint", "read_checked", "read_network", "read_state_dict"), "checkpoints"),
    **dict.fromkeys(("OFFICIAL_FILES", "OFFICIAL_URL", "FileCheck", "download_file", "file_md5", "verify_file",
                     "weights_command"), "download"),
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "CHECKPOINT_FILES", "FLOW_COMPLETION_FILE", "INPAINTER_FILE", "OFFICIAL_FILES", "OFFICIAL_URL", "RAFT_FILE",
    "FileCheck", "PendingNetwork", "default_cache_dir", "download_file", "file_md5", "find_weights_dir",
    "load_flow_completion", "load_inpainter", "load_into", "load_raft", "open_checkpoint", "read_checked",
    "read_network", "read_state_dict", "require_weights_dir", "search_dirs", "verify_file", "weights_command",
]
