"""``mask track`` carries key masks by flow; ``mask wire`` / ``mask track`` through the CLI hooks."""

import argparse
import json

import numpy as np
import pytest

from propainter_wire.errors import InputError
from propainter_wire.io import list_images, open_masks, read_image, write_image
from propainter_wire.wires.cli import add_mask_arguments, mask_command
from propainter_wire.wires.synthetic import SynthWire, clicks, draw_wires, textured_plate

T, H, W = 12, 96, 160


def _clip_folder(tmp_path, frames):
    folder = tmp_path / "clip"
    for t, f in enumerate(frames):
        write_image(folder / f"shot.{1001 + t}.png", f)
    return folder


def _parse(argv):
    parser = argparse.ArgumentParser()
    add_mask_arguments(parser.add_subparsers(dest="command").add_parser("mask"))
    return parser.parse_args(argv)


def test_track_square_moves_with_background(tmp_path):
    pan = (1.5, 0.5)
    frames = textured_plate(T, H, W, seed=5, pan=pan)
    folder = _clip_folder(tmp_path, frames)
    key = np.zeros((H, W), np.uint8)
    key[40:60, 70:90] = 255
    write_image(tmp_path / "key.png", key)
    out = tmp_path / "masks"
    assert mask_command(_parse(["mask", "track", "-i", str(folder), "-k", str(tmp_path / "key.png"),
                                "--frame", "1001", "-o", str(out), "--grow", "0", "--quiet"])) == 0
    names = [p.name for p in list_images(out)]
    assert names == [f"shot.{1001 + t}.png" for t in range(T)]
    last = read_image(out / names[-1]) > 0
    ys, xs = np.nonzero(last)
    # the plate pans by +pan px/frame, so content moves by -pan: measured within 0.5 px
    assert abs(xs.mean() - (79.5 - pan[0] * (T - 1))) <= 2.0
    assert abs(ys.mean() - (49.5 - pan[1] * (T - 1))) <= 2.0
    assert abs(last.sum() - 400) <= 80


def test_track_needs_frame_for_single_image(tmp_path):
    folder = _clip_folder(tmp_path, textured_plate(3, H, W))
    write_image(tmp_path / "key.png", np.zeros((H, W), np.uint8))
    with pytest.raises(InputError, match="--frame"):
        mask_command(_parse(["mask", "track", "-i", str(folder), "-k", str(tmp_path / "key.png"),
                             "-o", str(tmp_path / "m"), "--quiet"]))


def test_mask_wire_cli_end_to_end(tmp_path):
    plate = textured_plate(T, H, W, seed=2)
    wire = SynthWire((-10, 30), (170, 40), sag=15, thickness=2.0, value=25.0, sway=3, period=15)
    clip, truth = draw_wires(plate, [wire])
    folder = _clip_folder(tmp_path, clip)
    points = tmp_path / "wires.json"
    points.write_text(json.dumps({"wires": [{"keys": [{"frame": 1001, "points": clicks(wire, 0, H, W)}]}]}))
    out = tmp_path / "masks"
    args = _parse(["mask", "wire", "-i", str(folder), "--points", str(points), "-o", str(out), "--preview",
                   "--quiet"])
    assert mask_command(args) == 0
    masks = open_masks(out, T, H, W).read_all()  # the layout inpaint -m reads
    assert (masks & truth).sum() / truth.sum() >= 0.995
    report = json.loads((out / "wires_report.json").read_text())
    assert report["frames"] == T and report["wires"][0]["low_confidence_frames"] == []
    assert (out / "preview.mp4").stat().st_size > 0
    with pytest.raises(InputError, match="--overwrite"):
        mask_command(args)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"wires": [{"keys": [{"frame": 7, "points": [[1, 1], [5, 5]]}]}]}))
    with pytest.raises(InputError, match="unknown frame 7"):
        mask_command(_parse(["mask", "wire", "-i", str(folder), "--points", str(bad), "-o", str(tmp_path / "x"),
                             "--quiet"]))


def test_one_wire_clicked_twice_is_reported_on_one_line(tmp_path, capsys):
    plate = textured_plate(T, H, W, seed=2)
    wire = SynthWire((-10, 30), (170, 40), sag=15, thickness=2.0, value=25.0, sway=3, period=15)
    clip, _ = draw_wires(plate, [wire])
    folder = _clip_folder(tmp_path, clip)
    points = tmp_path / "wires.json"  # the same wire listed twice, clicked a little differently
    points.write_text(json.dumps({"wires": [
        {"name": "a", "keys": [{"frame": 1001, "points": clicks(wire, 0, H, W, seed=1)}]},
        {"name": "b", "keys": [{"frame": 1001, "points": clicks(wire, 0, H, W, seed=2)}]}]}))
    out = tmp_path / "masks"
    assert mask_command(_parse(["mask", "wire", "-i", str(folder), "--points", str(points), "-o", str(out)])) == 0
    report = json.loads((out / "wires_report.json").read_text())
    for entry in report["wires"]:
        assert entry["shared_line_frames"] == list(range(T))
        assert entry["low_confidence_frames"] == list(range(T))
    assert "of them on another wire's line: {\"a\": 12, \"b\": 12}" in capsys.readouterr().err


@pytest.mark.parametrize("extra, grow", [([], 0), (["--wire-grow", "1"], 1)])
def test_inpaint_wires_fills_masks_without_margin(tmp_path, extra, grow):
    from propainter_wire.cli import main

    plate = textured_plate(6, 64, 96, seed=4)
    wire = SynthWire((-10, 25), (106, 35), sag=8, thickness=1.5, value=30.0, sway=2, period=12)
    clip, _ = draw_wires(plate, [wire])
    folder = _clip_folder(tmp_path, clip)
    points = tmp_path / "wires.json"
    points.write_text(json.dumps({"wires": [{"keys": [{"frame": 1001, "points": clicks(wire, 0, 64, 96)}]}]}))
    out = tmp_path / "out"
    assert main(["inpaint", "-i", str(folder), "--wires", str(points), "-o", str(out), "--engine", "classic",
                 "--quiet", *extra]) == 0
    report = json.loads((out / "wire_masks" / "wires_report.json").read_text())
    assert report["grow"] == grow
