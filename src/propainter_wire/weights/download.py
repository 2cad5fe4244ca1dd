"""Checking checkpoint files against the official release, downloading them, the ``weights`` command.

``verify_file`` statuses (``FileCheck.status``):

- ``ok``: loads into its network and has the official md5.
- ``unofficial``: loads into its network (same keys and shapes) but its md5 is not
  the official one and its size differs from the official size (e.g. the
  deterministic stand-in weights of :mod:`propainter_wire.testing`). Usable: ``ok`` is
  True, ``weights verify`` exits 0 and says so on the file's line.
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
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ..errors import InputError, WeightsError
from .checkpoints import (
    CHECKPOINT_FILES,
    FLOW_COMPLETION_FILE,
    INPAINTER_FILE,
    RAFT_FILE,
    _fresh_module,
    _strip,
    _structure_problems,
    read_state_dict,
)
from .locate import default_cache_dir, find_weights_dir, labelled_dirs, search_dirs

OFFICIAL_URL = "https://github.com/sczhou/ProPainter/releases/download/v0.1.0/"
# file name -> (size in bytes or None when unknown, md5 hex digest) of the official release
OFFICIAL_FILES: dict[str, tuple[int | None, str]] = {
    INPAINTER_FILE: (157_780_510, "83e3941395917f6c1943dcf2f7655454"),
    FLOW_COMPLETION_FILE: (20_348_681, "2879dbdd08fa50c656ff3ff1659dd660"),
    RAFT_FILE: (None, "55b58de5d9022eb37893916d246e14a3"),
}


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
                    stream: TextIO = sys.stdout, *, env_dir: Path | None = None) -> int:
    """``propainter-wire weights {list,verify,download}``; returns the exit code.

    ``env_dir``: the weights folder switch (``Tuning.weights_dir``, docs/tuning.md), searched
    after ``weights_dir`` by ``list`` and ``verify``.

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
    if action == "list":
        return _list(weights_dir, stream, env_dir)
    if action == "verify":
        return _verify(weights_dir, stream, env_dir)
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


def _list(weights_dir: Path | None, stream: TextIO, env_dir: Path | None) -> int:
    used = find_weights_dir(weights_dir, env_dir=env_dir)
    print("weights folders, searched in this order:", file=stream)
    for label, folder in labelled_dirs(weights_dir, env_dir):
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


def _verify(weights_dir: Path | None, stream: TextIO, env_dir: Path | None) -> int:
    folder = find_weights_dir(weights_dir, env_dir=env_dir)
    if folder is None:
        if weights_dir is not None:
            folder = Path(weights_dir).expanduser()
        else:
            holding = [d for d in search_dirs(None, env_dir=env_dir)
                       if any((d / n).is_file() for n in CHECKPOINT_FILES)]
            folder = holding[0] if holding else default_cache_dir()
    print(f"verifying {folder}", file=stream)
    checks = [verify_file(folder / name) for name in CHECKPOINT_FILES]
    for check in checks:
        print(check.line(), file=stream)
    return 0 if all(c.ok for c in checks) else 1
