"""Deterministic stand-in checkpoints for tests, benchmarks and demos.

``det_fill`` makes every state-dict tensor a pure function of its key and shape, exact on
every platform, so the three networks can run (and be compared with the parity kit, which
computes the same values independently) where the official files cannot be had. The files
``write_deterministic_checkpoints`` writes verify as ``unofficial`` (``weights verify``).
"""

from __future__ import annotations

import math
import os
import zlib
from pathlib import Path

import torch

from .weights import FLOW_COMPLETION_FILE, INPAINTER_FILE, RAFT_FILE


def _hash_uniform(key: str, count: int, salt: str) -> torch.Tensor:
    """``count`` values in [-0.5, 0.5) from an integer hash of ``salt + key`` (float64).

    Every intermediate stays below 2**60, so int64 is exact; ``& 0xFFFFFFFF`` is
    ``% 2**32`` for these non-negative values (in place, to keep 40M-element
    tensors cheap).
    """
    state = torch.arange(count, dtype=torch.int64)
    state.mul_(2654435761).add_(zlib.crc32((salt + key).encode())).bitwise_and_(0xFFFFFFFF)
    for _ in range(2):
        state.bitwise_xor_(state >> 16)
        state.mul_(0x45D9F3B).bitwise_and_(0xFFFFFFFF)
    state.bitwise_xor_(state >> 16)
    return state.to(torch.float64).div_(2**32).sub_(0.5)


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
        values = u.mul_(math.sqrt(12.0 * gain / math.prod(shape[1:])))
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
