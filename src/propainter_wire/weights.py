"""Checkpoint files: where they are looked for, how they are checked and loaded.

Three files make the ProPainter engine (release v0.1.0 of the official project,
S-Lab License 1.0, non-commercial):

- ``raft-things.pth``: RAFT optical flow; keys carry a ``module.`` prefix.
- ``recurrent_flow_completion.pth``: the recurrent flow completion network.
- ``ProPainter.pth``: the inpainting generator.

This module also makes *deterministic stand-in weights* (``det_fill``): a pure
function of a tensor's key and shape, exact on every platform. Tests, benchmarks
and demos use them where the official files cannot be had.

Where the files are looked for (``search_dirs``), in order: ``--weights-dir``,
``$PROPAINTER_WIRE_WEIGHTS``, ``./weights``, ``~/.cache/propainter-wire``. An
explicit ``--weights-dir`` is never silently replaced by another folder.

``verify_file`` statuses (``FileCheck.status``):

- ``ok``: loads into its network and has the official md5.
- ``unofficial``: loads into its network (same keys and shapes) but its md5 is not
  the official one and its size differs from the official size (e.g. the
  deterministic stand-in weights). Usable: ``ok`` is True, ``weights verify``
  exits 0 and says so on the file's line.
- ``bad-hash``: the official size but another md5 (a damaged download).
- ``truncated``: cannot be read and smaller than the official file.
- ``wrong-size``: cannot be read and larger than the official file.
- ``foreign``: a readable state dict whose keys or shapes are not the network's.
- ``unreadable``: cannot be read (size unknown, or md5 not checked).
- ``missing``: no such file.
"""

from __future__ import annotations

import hashlib
import http.client
import math
import os
import sys
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

import torch

RAFT_FILE = "raft-things.pth"
FLOW_COMPLETION_FILE = "recurrent_flow_completion.pth"
INPAINTER_FILE = "ProPainter.pth"
CHECKPOINT_FILES = (RAFT_FILE, FLOW_COMPLETION_FILE, INPAINTER_FILE)

ENV_VAR = "PROPAINTER_WIRE_WEIGHTS"
OFFICIAL_URL = "https://github.com/sczhou/ProPainter/releases/download/v0.1.0/"
# file name -> (size in bytes or None when unknown, md5 hex digest) of the official release
OFFICIAL_FILES: dict[str, tuple[int | None, str]] = {
    INPAINTER_FILE: (157_780_510, "83e3941395917f6c1943dcf2f7655454"),
    FLOW_COMPLETION_FILE: (20_348_681, "2879dbdd08fa50c656ff3ff1659dd660"),
    RAFT_FILE: (None, "55b58de5d9022eb37893916d246e14a3"),
}


# ---------------------------------------------------------------------------
# deterministic stand-in weights
# ---------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------
def read_state_dict(path: str | Path, file: BinaryIO | None = None) -> dict[str, torch.Tensor]:
    """Read a checkpoint's state dict on the CPU, refusing anything but tensors.

    ``file``: the checkpoint already opened (binary), read instead of ``path``, which then
    only names it in errors (see :func:`open_checkpoint`).

    Raises:
        WeightsError: missing, unreadable, truncated or not a state dict.
    """
    from .errors import WeightsError

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
    from .errors import WeightsError

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
        net = self.module.to_empty(device=device)
        net.load_state_dict(self.state, strict=True)
        self.state = {}
        return net.eval()


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
    from .errors import WeightsError

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
    from .flow.raft import RAFT

    return RAFT()


def _flow_completion():
    from .models.flow_completion import RecurrentFlowCompleteNet

    return RecurrentFlowCompleteNet()


def _inpainter():
    from .models.inpainter import InpaintGenerator

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


# ---------------------------------------------------------------------------
# where the files are
# ---------------------------------------------------------------------------
def default_cache_dir() -> Path:
    """``~/.cache/propainter-wire``: where ``weights download`` puts the files by default."""
    return Path.home() / ".cache" / "propainter-wire"


def _labelled_dirs(explicit: Path | None) -> list[tuple[str, Path]]:
    dirs: list[tuple[str, Path]] = []
    if explicit is not None:
        dirs.append(("--weights-dir", Path(explicit).expanduser()))
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        dirs.append((f"${ENV_VAR}", Path(env).expanduser()))
    dirs.append(("./weights", Path.cwd() / "weights"))
    dirs.append(("cache", default_cache_dir()))
    unique: list[tuple[str, Path]] = []
    seen: set[Path] = set()
    for label, d in dirs:
        key = d.resolve() if d.exists() else d.absolute()
        if key not in seen:
            seen.add(key)
            unique.append((label, d))
    return unique


def search_dirs(explicit: Path | None) -> list[Path]:
    """Folders searched for the checkpoints, first wins (duplicates removed).

    Order: ``explicit`` (``--weights-dir``), ``$PROPAINTER_WIRE_WEIGHTS``,
    ``./weights`` (of the current directory), ``~/.cache/propainter-wire``.
    """
    return [d for _, d in _labelled_dirs(explicit)]


def _holds_all(folder: Path) -> bool:
    return all((folder / name).is_file() for name in CHECKPOINT_FILES)


def find_weights_dir(explicit: Path | None) -> Path | None:
    """The first folder holding all three checkpoint files, or None.

    With ``explicit`` given only that folder is considered: a ``--weights-dir``
    lacking a file gives None (``require_weights_dir`` then names the file).
    Only presence is checked here, not content (see ``verify_file``).
    """
    if explicit is not None:
        folder = Path(explicit).expanduser()
        return folder if _holds_all(folder) else None
    for folder in search_dirs(None):
        if _holds_all(folder):
            return folder
    return None


def require_weights_dir(explicit: Path | None) -> Path:
    """``find_weights_dir`` or a ``WeightsError`` saying what is missing where.

    Raises:
        WeightsError: naming the first missing file of ``explicit``, or listing the
        folders searched when none was given.
    """
    from .errors import WeightsError

    found = find_weights_dir(explicit)
    if found is not None:
        return found
    if explicit is not None:
        folder = Path(explicit).expanduser()
        if not folder.is_dir():
            raise WeightsError("weights folder does not exist", folder)
        missing = [name for name in CHECKPOINT_FILES if not (folder / name).is_file()]
        also = f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""
        raise WeightsError(f"checkpoint file is missing from --weights-dir{also}", folder / missing[0])
    looked = ", ".join(str(d) for d in search_dirs(None))
    raise WeightsError(f"no folder holds all of {', '.join(CHECKPOINT_FILES)} (looked in {looked}); "
                       "run `propainter-wire weights download` or pass --weights-dir, or use --engine classic")


# ---------------------------------------------------------------------------
# checking a file
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class FileCheck:
    """The outcome of ``verify_file`` for one checkpoint.

    Attributes:
        name: the checkpoint's file name (e.g. ``ProPainter.pth``).
        path: the file checked.
        ok: True when the file can be used (``ok`` and ``unofficial``).
        status: ok / unofficial / missing / truncated / wrong-size / bad-hash / foreign / unreadable.
        detail: one short human-readable sentence.
    """

    name: str
    path: Path
    ok: bool
    status: str
    detail: str

    def line(self) -> str:
        """One line naming the file: ``'[ OK ] ProPainter.pth: ok (...)'``."""
        tag = "[ OK ]" if self.ok else "[FAIL]"
        return f"{tag} {self.name}: {self.status} ({self.detail}) {self.path}"


def file_md5(path: str | Path, chunk: int = 1 << 20) -> str:
    """The md5 hex digest of a file, read in ``chunk``-byte pieces."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _bytes(n: int) -> str:
    return f"{n:,} bytes"


def verify_file(path: str | Path, check_md5: bool = True) -> FileCheck:
    """Check one checkpoint file: present, readable, the right network, official or not.

    The network is chosen by the file name (one of ``CHECKPOINT_FILES``); the file
    is loaded into a freshly built network with the strict checks of ``load_into``.
    See the module docstring for the statuses. Never raises for a bad file.
    """
    from .errors import WeightsError

    path = Path(path)
    name = path.name
    size_ref, md5_ref = OFFICIAL_FILES.get(name, (None, None))
    if not path.is_file():
        return FileCheck(name, path, False, "missing", "no such file")
    size = path.stat().st_size
    digest = file_md5(path) if check_md5 and md5_ref else None
    hash_ok = digest is not None and digest == md5_ref
    of_size = f"{_bytes(size)}" if size_ref is None else f"{size:,} of {_bytes(size_ref)}"

    try:
        state = read_state_dict(path)
    except WeightsError as exc:
        reason = str(exc).split(": ", 1)[-1]
        if size_ref is not None and size < size_ref:
            return FileCheck(name, path, False, "truncated", f"{of_size}; {reason}")
        if size_ref is not None and size > size_ref:
            return FileCheck(name, path, False, "wrong-size", f"{of_size}; {reason}")
        if size_ref is not None and digest is not None and not hash_ok:
            return FileCheck(name, path, False, "bad-hash", f"official size but md5 {digest} != {md5_ref}; {reason}")
        return FileCheck(name, path, False, "unreadable", reason)

    try:
        module, prefix = _fresh_module(name)
    except ValueError:
        module, prefix, note = None, "", "structure not checked: not a ProPainter checkpoint name"
    except Exception as exc:  # the network's code itself failed to import or build
        module, prefix, note = None, "", f"structure not checked: {type(exc).__name__}: {exc}"
    if module is not None:
        problems = _structure_problems(module, _strip(state, prefix))
        if problems:
            return FileCheck(name, path, False, "foreign",
                             f"not a {type(module).__name__} checkpoint: {', '.join(problems)}")
        note = f"loads into {type(module).__name__}"

    if digest is None:
        return FileCheck(name, path, True, "ok", f"{note}, {_bytes(size)}, md5 not checked")
    if hash_ok:
        return FileCheck(name, path, True, "ok", f"{note}, {_bytes(size)}, official md5")
    if size_ref is not None and size == size_ref:
        return FileCheck(name, path, False, "bad-hash",
                         f"official size but md5 {digest} != {md5_ref}: damaged download? download it again")
    return FileCheck(name, path, True, "unofficial",
                     f"{note}, but md5 differs from the official release ({of_size}): not the official weights")


# ---------------------------------------------------------------------------
# downloading
# ---------------------------------------------------------------------------
def _total_from_headers(resp, offset: int) -> int | None:
    """Total file size from a 206's Content-Range or a 200's Content-Length (None: unknown)."""
    content_range = resp.headers.get("Content-Range", "")
    if "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        if total.isdigit():
            return int(total)
    length = resp.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


def download_file(url: str, dest: str | Path, size: int | None = None, md5: str | None = None,
                  quiet: bool = False, attempts: int = 3, timeout: float = 60.0, retry_wait: float = 1.0) -> Path:
    """Download ``url`` to ``dest`` through ``<dest>.part``, resuming with HTTP Range.

    An existing ``.part`` is continued (``Range: bytes=<have>-``); a server that
    answers 200 instead of 206 restarts it. Interrupted transfers are retried
    ``attempts`` times, each resuming (waiting ``retry_wait * n`` seconds before
    the n-th retry). Once complete the ``.part`` is checked
    against ``size`` and ``md5`` (when given) and renamed to ``dest`` atomically;
    a failed check deletes it, so no final file is left.

    Raises:
        WeightsError: HTTP error, repeated network failure (the ``.part`` stays,
        to resume), or a size/md5 mismatch.
    """
    from .errors import WeightsError

    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    last_error = "no attempt made"
    for attempt in range(max(1, attempts)):
        if attempt:
            time.sleep(retry_wait * attempt)
        have = part.stat().st_size if part.exists() else 0
        if size is not None and have > size:
            part.unlink()
            have = 0
        if size is not None and have == size:
            break
        headers = {"User-Agent": "propainter-wire"}
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
                resumed = bool(have) and resp.status == 206
                offset = have if resumed else 0
                total = _total_from_headers(resp, offset)
                _copy_body(resp, part, "ab" if resumed else "wb", offset, total or size, dest.name, quiet)
            done = part.stat().st_size
            if total is None or done >= total:
                break
            last_error = f"connection ended at {done:,} of {_bytes(total)}"
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:  # nothing left to send: the .part is complete (checked below)
                break
            if exc.code < 500:
                raise WeightsError(f"download failed: HTTP {exc.code} {exc.reason} for {url}", dest) from None
            last_error = f"HTTP {exc.code} {exc.reason}"
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            last_error = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
    else:
        kept = part.stat().st_size if part.exists() else 0
        hint = (f"{kept:,} bytes kept in {part.name}: run again to resume" if kept
                else "check the network or --url")
        raise WeightsError(f"download failed after {attempts} attempts ({last_error}); {hint}", dest)

    got = part.stat().st_size if part.exists() else 0
    if size is not None and got != size:
        part.unlink(missing_ok=True)
        raise WeightsError(f"downloaded {_bytes(got)}, expected {_bytes(size)}; partial file removed", dest)
    if md5 is not None:
        digest = file_md5(part)
        if digest != md5:
            part.unlink()
            raise WeightsError(f"downloaded file has md5 {digest}, expected {md5}; removed it", dest)
    os.replace(part, dest)
    return dest


def _copy_body(resp, part: Path, mode: str, offset: int, total: int | None, label: str, quiet: bool) -> None:
    """Stream the response body into ``part`` (appending when ``mode == 'ab'``) with a progress bar."""
    bar = None
    if not quiet:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
                   leave=False, dynamic_ncols=True)
    try:
        with open(part, mode) as fh:
            while block := resp.read(1 << 20):
                fh.write(block)
                if bar is not None:
                    bar.update(len(block))
    finally:
        if bar is not None:
            bar.close()


def _official_match(path: Path) -> bool:
    """True when ``path`` exists with the official size (when known) and md5."""
    size_ref, md5_ref = OFFICIAL_FILES.get(path.name, (None, None))
    if not path.is_file() or (size_ref is not None and path.stat().st_size != size_ref):
        return False
    return md5_ref is None or file_md5(path) == md5_ref


# ---------------------------------------------------------------------------
# the `weights` command
# ---------------------------------------------------------------------------
def weights_command(action: str, weights_dir: Path | None, url: str | None = None, quiet: bool = False,
                    stream: TextIO = sys.stdout) -> int:
    """``propainter-wire weights {list,verify,download}``; returns the exit code.

    - ``list``: every searched folder and which checkpoint files it holds; the folder
      a run would use is marked. Exit 0.
    - ``verify``: one line per file of ``weights_dir`` (else the folder a run would
      use, else the first folder holding any of the files). Exit 0 when all three
      are usable (status ``ok`` or ``unofficial``: an md5 mismatch on a file that
      loads into its network is reported but accepted), 1 otherwise.
    - ``download``: fetch the files missing or not official from ``url`` (default
      ``OFFICIAL_URL``) into ``weights_dir`` (default ``~/.cache/propainter-wire``),
      resuming partial downloads; exit 0 when all three are in place, 1 otherwise.
    """
    from .errors import InputError, WeightsError

    if action == "list":
        return _list(weights_dir, stream)
    if action == "verify":
        return _verify(weights_dir, stream)
    if action != "download":
        raise InputError(f"unknown weights action '{action}' (list, verify or download)")

    folder = Path(weights_dir).expanduser() if weights_dir is not None else default_cache_dir()
    base = (url or OFFICIAL_URL).rstrip("/") + "/"
    failures = 0
    for name in CHECKPOINT_FILES:
        dest = folder / name
        size_ref, md5_ref = OFFICIAL_FILES.get(name, (None, None))
        if _official_match(dest):
            print(f"[ OK ] {name}: already present with the official md5 {dest}", file=stream)
            continue
        if dest.exists():
            print(f"[ .. ] {name}: present but not the official file; downloading a replacement", file=stream)
        try:
            download_file(base + name, dest, size_ref, md5_ref, quiet=quiet)
        except WeightsError as exc:
            failures += 1
            print(f"[FAIL] {name}: {exc}", file=stream)
            continue
        print(f"[ OK ] {name}: downloaded {_bytes(dest.stat().st_size)}, md5 ok {dest}", file=stream)
    return 1 if failures else 0


def _list(weights_dir: Path | None, stream: TextIO) -> int:
    used = find_weights_dir(weights_dir)
    print("weights folders, searched in this order:", file=stream)
    for label, folder in _labelled_dirs(weights_dir):
        mark = "  <- used" if used is not None and folder == used else ""
        if not folder.is_dir():
            print(f"  {label:<26} {folder} (absent){mark}", file=stream)
            continue
        present = [f"{n} ({folder.joinpath(n).stat().st_size:,} B)" for n in CHECKPOINT_FILES
                   if folder.joinpath(n).is_file()]
        held = ", ".join(present) if present else "none of the checkpoint files"
        print(f"  {label:<26} {folder}: {held}{mark}", file=stream)
    if used is None:
        print("no folder holds all three files: run `propainter-wire weights download`", file=stream)
    return 0


def _verify(weights_dir: Path | None, stream: TextIO) -> int:
    folder = find_weights_dir(weights_dir)
    if folder is None:
        if weights_dir is not None:
            folder = Path(weights_dir).expanduser()
        else:
            holding = [d for d in search_dirs(None) if any((d / n).is_file() for n in CHECKPOINT_FILES)]
            folder = holding[0] if holding else default_cache_dir()
    print(f"verifying {folder}", file=stream)
    checks = [verify_file(folder / name) for name in CHECKPOINT_FILES]
    for check in checks:
        print(check.line(), file=stream)
    return 0 if all(c.ok for c in checks) else 1
