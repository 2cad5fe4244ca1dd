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

from .checkpoints import (
    CHECKPOINT_FILES,
    FLOW_COMPLETION_FILE,
    INPAINTER_FILE,
    RAFT_FILE,
    PendingNetwork,
    load_flow_completion,
    load_inpainter,
    load_into,
    load_raft,
    open_checkpoint,
    read_checked,
    read_network,
    read_state_dict,
)
from .download import (
    OFFICIAL_FILES,
    OFFICIAL_URL,
    FileCheck,
    download_file,
    file_md5,
    verify_file,
    weights_command,
)
from .locate import default_cache_dir, find_weights_dir, require_weights_dir, search_dirs

__all__ = [
    "CHECKPOINT_FILES", "FLOW_COMPLETION_FILE", "INPAINTER_FILE", "OFFICIAL_FILES", "OFFICIAL_URL", "RAFT_FILE",
    "FileCheck", "PendingNetwork", "default_cache_dir", "download_file", "file_md5", "find_weights_dir",
    "load_flow_completion", "load_inpainter", "load_into", "load_raft", "open_checkpoint", "read_checked",
    "read_network", "read_state_dict", "require_weights_dir", "search_dirs", "verify_file", "weights_command",
]
