"""Shared test fixtures: where the shared data and the parity kit live.

``PROPAINTER_WIRE_SHARED`` overrides the default ``../shared`` (next to the
checkout). Tests that need a file from there skip with the reason when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PROPAINTER_WIRE_SHARED", ROOT.parent / "shared"))
DATA = SHARED / "data"
REFERENCE = SHARED / "reference"
PARITY_NPZ = REFERENCE / "parity_bmx12.npz"


def manifest_section(file_name: str) -> dict[str, tuple[tuple[int, ...], str]]:
    """key -> (shape, dtype) of one checkpoint's section of the parity kit's manifest.

    ``file_name`` is the checkpoint's name (``raft-things.pth``, ...); RAFT keys are
    listed without their ``module.`` prefix. Skips the test when the kit is absent.
    """
    rows: dict[str, tuple[tuple[int, ...], str]] = {}
    inside = False
    for line in require(REFERENCE / "state_dict_manifest.tsv").read_text().splitlines():
        if line.startswith("## "):
            inside = line[3:].startswith(file_name)
            continue
        if inside and line.strip():
            key, shape, dtype = line.split("\t")
            rows[key] = (tuple(int(n) for n in shape.strip("()").split(",") if n.strip()), dtype)
    assert rows, f"no {file_name} section in the manifest"
    return rows


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module: on a busy 2-core machine torch's threads mostly
    spin-wait (measured: 2x slower at the parity size, 60x on small ops)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def in_order_io(monkeypatch):
    """One thread for frame I/O, so frames are written in order (for tests that count or interrupt writes)."""
    monkeypatch.setenv("PROPAINTER_WIRE_IO_THREADS", "1")


def require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (shared data not available here)")
    return path


@pytest.fixture(scope="session")
def parity():
    """The golden arrays of the reference run (dict of numpy arrays)."""
    with np.load(require(PARITY_NPZ)) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="session")
def det_weights_dir(tmp_path_factory):
    """The three checkpoint files filled with the parity kit's deterministic weights."""
    from propainter_wire.testing import write_deterministic_checkpoints

    return write_deterministic_checkpoints(tmp_path_factory.mktemp("det_weights"))


@pytest.fixture(scope="session")
def data_dir():
    return require(DATA)
