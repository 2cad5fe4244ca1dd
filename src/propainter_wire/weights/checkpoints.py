"""Checkpoint files: reading them, checking their keys and shapes, loading them into networks.

Three files make the ProPainter engine (release v0.1.0 of the official project,
S-Lab License 1.0, non-commercial):

- ``raft-things.pth``: RAFT optical flow; keys carry a ``module.`` prefix.
- ``recurrent_flow_completion.pth``: the recurrent flow completion network.
- ``ProPainter.pth``: the inpainting generator.

Everything here reads on the CPU; :class:`PendingNetwork` gives a network device memory
only when it is placed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch

from ..errors import WeightsError
from .names import CHECKPOINT_FILES, FLOW_COMPLETION_FILE, INPAINTER_FILE, RAFT_FILE  # noqa: F401 (re-exported)


def read_state_dict(path: str | Path, file: BinaryIO | None = None) -> dict[str, torch.Tensor]:
    """Read a checkpoint's state dict on the CPU, refusing anything but tensors.

    ``file``: the checkpoint already opened (binary), read instead of ``path``, which then
    only names it in errors (see :func:`open_checkpoint`).

    Raises:
        WeightsError: missing, unreadable, truncated or not a state dict.
    """
    path = Path(path)
    if file is None and not path.is_file():
        raise WeightsError("checkpoint file is missing", path)
    try:
        state = torch.load(path if file is None else file, map_location="cpu", weights_only=True)
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
    module.load_state_dict(read_checked(module, path, strip_prefix), strict=True)
    return module.eval()


def read_checked(module: torch.nn.Module, path: str | Path, strip_prefix: str = "",
                 file: BinaryIO | None = None) -> dict[str, torch.Tensor]:
    """The checkpoint's state dict (CPU tensors), its keys and shapes checked against ``module``
    (which may live on the meta device). Raises ``WeightsError`` as :func:`load_into` does;
    ``file`` as for :func:`read_state_dict`."""
    state = _strip(read_state_dict(path, file), strip_prefix)
    problems = _structure_problems(module, state)
    if problems:
        raise WeightsError(f"not a {type(module).__name__} checkpoint: " + ", ".join(problems), path)
    return state


def _strip(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    if not prefix:
        return state
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state.items()}


def _structure_problems(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Short descriptions of how ``state`` differs from ``module``'s keys and shapes (empty: none)."""
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
    return problems


@dataclass
class PendingNetwork:
    """A network read from its checkpoint but not yet given device memory (see :func:`read_network`).

    ``place(device)`` gives it memory there, copies the checkpoint in and returns it in eval mode.
    """

    module: torch.nn.Module  # built on the meta device
    state: dict[str, torch.Tensor]  # checked against ``module``, CPU tensors

    def place(self, device: torch.device | str) -> torch.nn.Module:
        # The checkpoint's tensors become the parameters (assign) and then move, instead of
        # ``to_empty`` + copy: ``to_empty`` runs ``empty_like`` on meta tensors through torch's
        # Python reference kernels, which import sympy and torch.fx's symbolic shapes (0.4 s here,
        # 3.9 s on a GPU machine without a bytecode cache) for nothing.
        net = self.module
        wanted = {name: t.dtype for name, t in net.state_dict(keep_vars=True).items()}
        state = {name: t if t.dtype == wanted[name] else t.to(wanted[name]) for name, t in self.state.items()}
        net.load_state_dict(state, strict=True, assign=True)
        self.state = {}
        left = [name for name, t in (*net.named_parameters(), *net.named_buffers()) if t.is_meta]
        if left:  # a non-persistent buffer the checkpoint cannot fill
            raise RuntimeError(f"{len(left)} tensors have no value in the checkpoint (e.g. {left[0]})")
        return net.to(device).eval()


def read_network(name: str, path: str | Path, file: BinaryIO | None = None) -> PendingNetwork:
    """Build checkpoint ``name``'s network on the meta device and read ``path`` (or the opened
    ``file``) for it (CPU only: safe on a thread while the GPU works). Raises ``WeightsError``
    like the loaders below."""
    factory, prefix = _NETWORKS[name]
    with torch.device("meta"):  # no random initialisation: the checkpoint fills every tensor
        module = factory()
    return PendingNetwork(module, read_checked(module, path, prefix, file))


def open_checkpoint(path: str | Path) -> BinaryIO:
    """``path`` opened for a later :func:`read_network` on another thread.

    The open file keeps the checkpoint readable as it was, whatever happens to the path
    meanwhile (a temporary weights folder removed, a file replaced).

    Raises:
        WeightsError: the file is missing or cannot be opened.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError("checkpoint file is missing", path)
    try:
        return open(path, "rb")  # noqa: SIM115 - closed by the reader
    except OSError as exc:
        raise WeightsError(f"cannot open checkpoint: {exc.strerror or exc}", path) from None


def load_raft(path: str | Path, device: torch.device | str = "cpu"):
    """RAFT ('things') from ``raft-things.pth`` (keys with or without ``module.``)."""
    return read_network(RAFT_FILE, path).place(device)


def load_flow_completion(path: str | Path, device: torch.device | str = "cpu"):
    """RecurrentFlowCompleteNet from ``recurrent_flow_completion.pth``."""
    return read_network(FLOW_COMPLETION_FILE, path).place(device)


def load_inpainter(path: str | Path, device: torch.device | str = "cpu"):
    """InpaintGenerator from ``ProPainter.pth``."""
    return read_network(INPAINTER_FILE, path).place(device)


def _raft():
    from ..flow.raft import RAFT

    return RAFT()


def _flow_completion():
    from ..models.flow_completion import RecurrentFlowCompleteNet

    return RecurrentFlowCompleteNet()


def _inpainter():
    from ..models.inpainter import InpaintGenerator

    return InpaintGenerator()


# checkpoint file -> (network factory, key prefix to strip)
_NETWORKS = {RAFT_FILE: (_raft, "module."), FLOW_COMPLETION_FILE: (_flow_completion, ""),
             INPAINTER_FILE: (_inpainter, "")}


def _fresh_module(name: str) -> tuple[torch.nn.Module, str]:
    """A newly built (randomly initialised) network for checkpoint ``name`` and its key prefix."""
    if name not in _NETWORKS:
        raise ValueError(f"unknown checkpoint name '{name}' (expected one of {', '.join(CHECKPOINT_FILES)})")
    factory, prefix = _NETWORKS[name]
    return factory(), prefix
