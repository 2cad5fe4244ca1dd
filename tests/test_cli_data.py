"""The CLI end to end on the shared real clips (skipped when ../shared/data is absent)."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np

from conftest import require
from propainter_wire.cli import main
from propainter_wire.io import dilate, open_frames, open_masks


def _outside_mask_identical(frames_dir, masks_path, out_frames, dilation=4):
    source = open_frames(frames_dir)
    masks = open_masks(masks_path, len(source), source.height, source.width)
    for i, stem in enumerate(source.stems):
        ours = cv2.cvtColor(cv2.imread(str(out_frames / f"{stem}.png")), cv2.COLOR_BGR2RGB)
        region = dilate(masks[i], dilation)
        assert np.array_equal(ours[~region], source[i][~region]), stem
        assert not np.array_equal(ours[region], source[i][region]), f"{stem}: nothing was filled"


def test_classic_cli_on_bmx_trees(data_dir, tmp_path):
    """20 frames of bmx-trees through the CLI: every frame written, outside the mask untouched."""
    require(data_dir / "bmx-trees" / "frames")
    frames, masks = tmp_path / "frames", tmp_path / "masks"
    frames.mkdir()
    masks.mkdir()
    for name in sorted((data_dir / "bmx-trees" / "frames").iterdir())[:20]:
        shutil.copy(name, frames / name.name)
    for name in sorted((data_dir / "bmx-trees" / "masks").iterdir())[:20]:
        shutil.copy(name, masks / name.name)
    out = tmp_path / "out"
    assert main(["inpaint", "-i", str(frames), "-m", str(masks), "-o", str(out), "--engine", "classic",
                 "--quiet"]) == 0
    assert len(list((out / "frames").glob("*.png"))) == 20
    report = json.loads((out / "report.json").read_text())
    assert report["engine"] == "classic" and report["frames"] == 20 and report["width"] == 432
    _outside_mask_identical(frames, masks, out / "frames")


def test_classic_cli_on_running_car_video(data_dir, tmp_path):
    """The 292-frame video with its static square mask, processed at a reduced size, composited at full size."""
    video = require(data_dir / "running_car" / "running_car.mp4")
    mask = require(data_dir / "running_car" / "mask_square.png")
    out = tmp_path / "out"
    assert main(["inpaint", "-i", str(video), "-m", str(mask), "-o", str(out), "--engine", "classic",
                 "--max-side", "256", "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["frames"] == 292 and (report["width"], report["height"]) == (972, 540)
    assert report["processing_size"] == [256, 142]
    written = sorted((out / "frames").glob("*.png"))
    assert len(written) == 292
    first = cv2.imread(str(written[0]))
    assert first.shape == (540, 972, 3)
