"""Where the checkpoint files are looked for.

The folders searched (:func:`search_dirs`), in order: ``--weights-dir``, the weights folder
switch (``env_dir``: ``Tuning.weights_dir``, docs/tuning.md), ``./weights``,
``~/.cache/propainter-wire``. Nothing here reads the environment: the caller hands the
switch's folder in. An explicit ``--weights-dir`` is never silently replaced by another folder.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import WeightsError
from .names import CHECKPOINT_FILES

# the label `weights list` prints for the folder of the weights folder switch
SWITCH_LABEL = "weights switch (tuning)"


def default_cache_dir() -> Path:
    """``~/.cache/propainter-wire``: where ``weights download`` puts the files by default."""
    return Path.home() / ".cache" / "propainter-wire"


def labelled_dirs(explicit: Path | None, env_dir: Path | None = None) -> list[tuple[str, Path]]:
    """``(label, folder)`` for every folder searched, first wins, duplicates removed (see :func:`search_dirs`)."""
    dirs: list[tuple[str, Path]] = []
    if explicit is not None:
        dirs.append(("--weights-dir", Path(explicit).expanduser()))
    if env_dir is not None and str(env_dir).strip():
        dirs.append((SWITCH_LABEL, Path(env_dir).expanduser()))
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


def search_dirs(explicit: Path | None, *, env_dir: Path | None = None) -> list[Path]:
    """Folders searched for the checkpoints, first wins (duplicates removed).

    Order: ``explicit`` (``--weights-dir``), ``env_dir`` (the weights folder switch,
    docs/tuning.md), ``./weights`` (of the current directory), ``~/.cache/propainter-wire``.
    """
    return [d for _, d in labelled_dirs(explicit, env_dir)]


def holds_all(folder: Path) -> bool:
    """Whether ``folder`` holds all three checkpoint files (presence only)."""
    return all((folder / name).is_file() for name in CHECKPOINT_FILES)


def find_weights_dir(explicit: Path | None, *, env_dir: Path | None = None) -> Path | None:
    """The first folder holding all three checkpoint files, or None.

    With ``explicit`` given only that folder is considered: a ``--weights-dir``
    lacking a file gives None (``require_weights_dir`` then names the file).
    ``env_dir``: the weights folder switch (docs/tuning.md), searched after ``explicit``.
    Only presence is checked here, not content (see ``verify_file``).
    """
    if explicit is not None:
        folder = Path(explicit).expanduser()
        return folder if holds_all(folder) else None
    for folder in search_dirs(None, env_dir=env_dir):
        if holds_all(folder):
            return folder
    return None


def require_weights_dir(explicit: Path | None, *, env_dir: Path | None = None) -> Path:
    """``find_weights_dir`` or a ``WeightsError`` saying what is missing where.

    Raises:
        WeightsError: naming the first missing file of ``explicit``, or listing the
        folders searched when none was given.
    """
    found = find_weights_dir(explicit, env_dir=env_dir)
    if found is not None:
        return found
    if explicit is not None:
        folder = Path(explicit).expanduser()
        if not folder.is_dir():
            raise WeightsError("weights folder does not exist", folder)
        missing = [name for name in CHECKPOINT_FILES if not (folder / name).is_file()]
        also = f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""
        raise WeightsError(f"checkpoint file is missing from --weights-dir{also}", folder / missing[0])
    looked = ", ".join(str(d) for d in search_dirs(None, env_dir=env_dir))
    raise WeightsError(f"no folder holds all of {', '.join(CHECKPOINT_FILES)} (looked in {looked}); "
                       "run `propainter-wire weights download` or pass --weights-dir, or use --engine classic")
