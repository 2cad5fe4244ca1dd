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
    from propainter_wire.weights import write_deterministic_checkpoints

    return write_deterministic_checkpoints(tmp_path_factory.mktemp("det_weights"))


@pytest.fixture(scope="session")
def data_dir():
    return require(DATA)
