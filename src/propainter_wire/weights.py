"""Checkpoint files: where they are looked for, how they are checked and loaded.

Three files make the ProPainter engine (release v0.1.0 of the official project,
S-Lab License 1.0, non-commercial):

- ``raft-things.pth``: RAFT optical flow; keys carry a ``module.`` prefix.
- ``recurrent_flow_completion.pth``: the recurrent flow completion network.
- ``ProPainter.pth``: the inpainting generator.

This module also makes *deterministic stand-in weights* (``det_fill``): a pure
function of a tensor's key and shape, exact on every platform. Tests, benchmarks
and demos use them where the official files cannot be had.
"""

from __future__ import annotations

import math
import os
import zlib
from pathlib import Path

import torch

RAFT_FILE = "raft-things.pth"
FLOW_COMPLETION_FILE = "recurrent_flow_completion.pth"
INPAINTER_FILE = "ProPainter.pth"
CHECKPOINT_FILES = (RAFT_FILE, FLOW_COMPLETION_FILE, INPAINTER_FILE)


# ---------------------------------------------------------------------------
# deterministic stand-in weights
# ---------------------------------------------------------------------------
def _hash_uniform(key: str, count: int, salt: str) -> torch.Tensor:
    """``count`` values in [-0.5, 0.5) from an integer hash of ``salt + key`` (float64)."""
    state = (torch.arange(count, dtype=torch.int64) * 2654435761 + zlib.crc32((salt + key).encode())) % 2**32
    for _ in range(2):
        state = state ^ (state >> 16)
        state = (state * 0x45D9F3B) % 2**32
    state = state ^ (state >> 16)
    return state.to(torch.float64) / 2**32 - 0.5


def det_fill(key: str, shape: tuple[int, ...], gain: float = 0.5, salt: str = "") -> torch.Tensor:
    """The deterministic value of one state-dict tensor (the parity kit's rule).

    Running statistics get plausible values, 0/1-dim tensors small offsets around
    0 (or 1 for norm scales), weights a uniform fan-in scaled draw.
    """
    shape = tuple(int(s) for s in shape)
    count = math.prod(shape) if shape else 1
    if key.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    u = _hash_uniform(key, count, salt)
    if key.endswith("running_var"):
        values = 1.0 + 0.2 * u.abs()
    elif key.endswith("running_mean"):
        values = 0.2 * u
    elif len(shape) <= 1:
        parent = key.split(".")[-2] if "." in key else ""
        offset = 1.0 if key.endswith("weight") and "norm" in parent else 0.0
        values = offset + 0.1 * u
    else:
        values = u * math.sqrt(12.0 * gain / math.prod(shape[1:]))
    return values.reshape(shape).float()


def det_state_dict(module: torch.nn.Module, gain: float = 0.5, salt: str = "") -> dict[str, torch.Tensor]:
    """``module``'s state dict with every tensor replaced by ``det_fill`` (dtypes kept)."""
    return {k: det_fill(k, v.shape, gain, salt).to(v.dtype) for k, v in module.state_dict().items()}


def write_deterministic_checkpoints(out_dir: str | Path, gain: float = 0.5, salt: str = "") -> Path:
    """Write the three checkpoint files, in the official layout, filled by ``det_fill``."""
    from .flow.raft import RAFT
    from .models.flow_completion import RecurrentFlowCompleteNet
    from .models.inpainter import InpaintGenerator

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    raft = det_state_dict(RAFT(), gain, salt)
    _atomic_save({"module." + k: v for k, v in raft.items()}, out / RAFT_FILE)
    _atomic_save(det_state_dict(RecurrentFlowCompleteNet(), gain, salt), out / FLOW_COMPLETION_FILE)
    _atomic_save(det_state_dict(InpaintGenerator(), gain, salt), out / INPAINTER_FILE)
    return out


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------
def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint's state dict on the CPU, refusing anything but tensors.

    Raises:
        WeightsError: missing, unreadable, truncated or not a state dict.
    """
    from .errors import WeightsError

    path = Path(path)
    if not path.is_file():
        raise WeightsError("checkpoint file is missing", path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"cannot read checkpoint (truncated or corrupt?): {reason[:200]}", path) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError("not a state dict of tensors", path)
    return state


def load_into(module: torch.nn.Module, path: str | Path, strip_prefix: str = "") -> torch.nn.Module:
    """Load a checkpoint file into ``module`` with strict key and shape checks.

    Args:
        module: the freshly built network.
        path: the ``.pth`` file.
        strip_prefix: removed from every key that has it (``'module.'`` for RAFT).
    Raises:
        WeightsError: one line naming the file and the first problems
        (missing keys, unexpected keys, shape mismatches).
    """
    from .errors import WeightsError

    state = read_state_dict(path)
    if strip_prefix:
        state = {(k[len(strip_prefix):] if k.startswith(strip_prefix) else k): v for k, v in state.items()}
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
                  if k in state and tuple(state[k].shape) != tuple(v.shape)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches (e.g. {'; '.join(mismatched[:2])})")
    if problems:
        raise WeightsError(f"not a {type(module).__name__} checkpoint: " + ", ".join(problems), path)
    module.load_state_dict(state, strict=True)
    return module.eval()


def load_raft(path: str | Path):
    """RAFT ('things') from ``raft-things.pth`` (keys with or without ``module.``)."""
    from .flow.raft import RAFT

    return load_into(RAFT(), path, strip_prefix="module.")


def load_flow_completion(path: str | Path):
    """RecurrentFlowCompleteNet from ``recurrent_flow_completion.pth``."""
    from .models.flow_completion import RecurrentFlowCompleteNet

    return load_into(RecurrentFlowCompleteNet(), path)


def load_inpainter(path: str | Path):
    """InpaintGenerator from ``ProPainter.pth``."""
    from .models.inpainter import InpaintGenerator

    return load_into(InpaintGenerator(), path)
