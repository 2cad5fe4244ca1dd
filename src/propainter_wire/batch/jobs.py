"""The jobs file of ``propainter-wire batch``: a CSV, JSON or YAML list of shots.

Each shot names ``input`` (or ``video``), ``mask`` and ``output``, an optional ``name``, and
any setting of ``inpaint`` spelled like its flag (``max-side``) or its field (``max_side``);
settings a shot leaves out come from the command line. Relative paths are resolved against
the jobs file's folder, so a jobs file travels with its shots. Every problem is one
:class:`InputError` naming the file, the row (1 = the first shot) and the column.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from ..config import InpaintConfig
from ..errors import InputError

PATH_COLUMNS = ("input", "mask", "output")
ALIASES = {"video": "input", "i": "input", "m": "mask", "o": "output"}
# settings the batch runner owns: placement (--devices), resuming (--resume) and its own output
NOT_PER_SHOT = ("device", "resume", "quiet", "debug")
OPTIONS = {f.name: f.type for f in dataclasses.fields(InpaintConfig) if f.name not in NOT_PER_SHOT}
TRUE, FALSE = ("1", "true", "yes", "on", "y"), ("0", "false", "no", "off", "n", "")


@dataclass(frozen=True)
class Shot:
    """One shot of a batch: its inputs, output folder and settings (validated).

    ``row`` is the shot's place in the jobs file (1-based); ``name`` defaults to the output
    folder's name.
    """

    row: int
    name: str
    input: Path
    mask: Path
    output: Path
    config: InpaintConfig


def option_name(column: str) -> str:
    """``max-side`` / ``--max-side`` / ``max_side`` -> ``max_side``."""
    return column.strip().lstrip("-").replace("-", "_").lower()


def parse_option(name: str, value, where: str) -> object:
    """A setting's value from a jobs file (text, or a JSON/YAML scalar) in the type of its field.

    ``where`` names the file, row and column for the error; ``none`` (a setting that may be
    unset) gives None.
    """
    kind = OPTIONS[name]
    text = value.strip() if isinstance(value, str) else value
    if "None" in kind and str(text).lower() in ("none", "null"):
        return None
    try:
        if "bool" in kind:
            if isinstance(text, bool):
                return text
            low = str(text).lower()
            if low not in TRUE + FALSE:
                raise ValueError
            return low in TRUE
        if "int" in kind:
            if isinstance(text, bool) or (isinstance(text, float) and not text.is_integer()):
                raise ValueError
            return int(text)
        if "float" in kind:
            return float(text)
        if "Path" in kind:
            return Path(str(text)).expanduser()
        return str(text)
    except (TypeError, ValueError):
        raise InputError(f"{where}: bad value {value!r} (expected {kind.replace(' | None', '')})") from None


def read_rows(path: Path) -> list[dict]:
    """The raw rows of a jobs file (one dict per shot), by its extension: .csv, .json, .yaml/.yml.

    JSON and YAML hold a list of objects, or an object with a ``shots`` list.
    """
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read the jobs file ({exc.strerror or exc})", path) from None
    if suffix == ".csv":
        reader = csv.DictReader(line for line in text.splitlines() if line.strip() and not line.startswith("#"))
        rows = []
        for row in reader:
            if None in row:
                raise InputError(f"row {len(rows) + 1}: more cells than columns", path)
            rows.append(row)
        return rows
    if suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InputError(f"not valid JSON ({exc})", path) from None
    elif suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise InputError("a YAML jobs file needs PyYAML (pip install pyyaml); or use CSV or JSON", path) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InputError(f"not valid YAML ({' '.join(str(exc).split())})", path) from None
    else:
        raise InputError("unknown jobs file type (use .csv, .json, .yaml or .yml)", path)
    if isinstance(data, dict) and "shots" in data:
        data = data["shots"]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise InputError("expected a list of shots (objects with input, mask and output)", path)
    return data


def load_jobs(path: str | Path, defaults: InpaintConfig | None = None) -> list[Shot]:
    """The shots of a jobs file, each with its settings on top of ``defaults``, validated.

    Raises:
        InputError: unreadable file, unknown column, bad value, missing path, two shots with one
            output folder, or no shot at all; the message names the file, row and column.
    """
    path = Path(path).expanduser().resolve()
    defaults = defaults or InpaintConfig()
    shots: list[Shot] = []
    for row_no, raw in enumerate(read_rows(path), start=1):
        shots.append(_shot(path, row_no, raw, defaults))
    if not shots:
        raise InputError("no shots in the jobs file", path)
    seen: dict[Path, int] = {}
    for shot in shots:
        if shot.output in seen:
            raise InputError(f"{path}: row {shot.row}: output {shot.output} is also row {seen[shot.output]}'s")
        seen[shot.output] = shot.row
    return shots


def _shot(path: Path, row_no: int, raw: dict, defaults: InpaintConfig) -> Shot:
    base = path.parent
    paths: dict[str, Path] = {}
    settings: dict[str, object] = {}
    name = None
    for column, value in raw.items():
        key = option_name(str(column))
        key = ALIASES.get(key, key)
        where = f"{path}: row {row_no}, column '{column}'"
        if key in PATH_COLUMNS:
            if value is None or not str(value).strip():
                continue
            p = Path(str(value).strip()).expanduser()
            paths[key] = p if p.is_absolute() else base / p
        elif key == "name":
            name = str(value).strip() if value is not None else None
        elif key in OPTIONS:
            if value is None or (isinstance(value, str) and not value.strip()):
                continue  # an empty cell: the command line's value
            parsed = parse_option(key, value, where)
            if isinstance(parsed, Path) and not parsed.is_absolute():
                parsed = base / parsed
            settings[key] = parsed
        elif key in NOT_PER_SHOT:
            raise InputError(f"{where}: '{column}' is set for the whole batch (--devices, --resume), not per shot")
        else:
            raise InputError(f"{where}: unknown column (input, mask, output, name, or an inpaint option "
                             "such as engine or max-side)")
    for needed in PATH_COLUMNS:
        if needed not in paths:
            raise InputError(f"{path}: row {row_no}: no '{needed}' given")
    try:
        config = defaults.replace(**settings).validate()
    except InputError as exc:
        raise InputError(f"{path}: row {row_no}: {exc}") from None
    output = paths["output"].resolve()
    return Shot(row=row_no, name=name or output.name, input=paths["input"], mask=paths["mask"], output=output,
                config=config)
