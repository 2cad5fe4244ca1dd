"""Wires file: format checks give one-line InputErrors naming the problem."""

import json

import numpy as np
import pytest

from propainter_wire.errors import InputError
from propainter_wire.wires.points import frame_numbers, load_wires, parse_wires

GOOD = {"wires": [{"keys": [{"frame": 0, "points": [[2, 40], [80, 50], [150, 42]]},
                            {"frame": 5, "points": [[3, 44], [150, 46]]}]}]}


def test_good_file(tmp_path):
    path = tmp_path / "w.json"
    path.write_text(json.dumps(GOOD))
    (wire,) = load_wires(path, 10, 96, 160)
    assert [k.index for k in wire.keys] == [0, 5]
    assert wire.keys[0].points.shape == (3, 2)


@pytest.mark.parametrize("data, words", [
    ({"wires": [{"keys": [{"frame": 12, "points": [[1, 1], [50, 5]]}]}]}, "unknown frame 12"),
    ({"wires": [{"keys": [{"frame": 0, "points": [[1, 1]]}]}]}, "needs 2 or more points"),
    ({"wires": [{"keys": [{"frame": 0, "points": [[1, 1], [400, 5]]}]}]}, "outside the 160x96 frame"),
    ({"wires": [{"keys": [{"frame": 0, "points": [[1, 1], [5, "a"]]}]}]}, "list of [x, y] numbers"),
    ({"wires": [{"keys": [{"frame": 0, "points": [[1, 1], [9, 1]]}, {"frame": 0, "points": [[1, 1], [9, 1]]}]}]},
     "keyed twice"),
    ({"wires": []}, "no wire"),
    ({"lines": []}, "expected an object"),
    ({"wires": [{"keys": [{"frame": 1.5, "points": [[1, 1], [9, 1]]}]}]}, "integer"),
])
def test_bad_files(data, words):
    with pytest.raises(InputError) as err:
        parse_wires(data, 10, 96, 160, path="w.json")
    text = str(err.value)
    assert words in text and "w.json" in text and "\n" not in text


def test_names_wire_and_key():
    data = {"wires": [GOOD["wires"][0], {"keys": [{"frame": 0, "points": [[1, 1], [9, 1]]},
                                                  {"frame": 3, "points": [[1, 1]]}]}]}
    with pytest.raises(InputError, match="wire 2, key 2"):
        parse_wires(data, 10, 96, 160)


def test_bad_json(tmp_path):
    path = tmp_path / "w.json"
    path.write_text("{wires: ")
    with pytest.raises(InputError, match="not valid JSON"):
        load_wires(path, 10, 96, 160)
    with pytest.raises(InputError, match="no such wires file"):
        load_wires(tmp_path / "missing.json", 10, 96, 160)


def test_numbered_sequence_frames():
    numbers = frame_numbers(["shot.1001", "shot.1002", "shot.1003"])
    assert numbers == [1001, 1002, 1003]
    (wire,) = parse_wires({"wires": [{"keys": [{"frame": 1002, "points": [[1, 1], [50, 5]]}]}]}, 3, 96, 160, numbers)
    assert wire.keys[0].index == 1
    with pytest.raises(InputError, match="numbered 1001..1003"):
        parse_wires({"wires": [{"keys": [{"frame": 0, "points": [[1, 1], [50, 5]]}]}]}, 3, 96, 160, numbers)
    assert frame_numbers(["a", "b"]) is None
    assert np.isfinite(numbers).all()
