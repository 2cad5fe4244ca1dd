"""The jobs file of ``batch``: CSV, JSON and YAML shots, settings by flag name, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from propainter_wire.batch.jobs import load_jobs
from propainter_wire.config import InpaintConfig
from propainter_wire.errors import InputError


def test_csv_columns_named_like_flags_and_relative_paths(tmp_path):
    jobs = tmp_path / "shots.csv"
    jobs.write_text("input,mask,output,engine,max-side,save_video,name\n"
                    "a/frames,a/masks,out/a,classic,32,yes,\n"
                    "/abs/frames,b/masks,out/b,,,,bee\n")
    first, second = load_jobs(jobs, InpaintConfig(engine="propainter", mask_dilation=2))
    assert first.input == tmp_path / "a/frames" and first.output == tmp_path / "out/a" and first.name == "a"
    assert first.config.engine == "classic" and first.config.max_side == 32 and first.config.save_video
    assert first.config.mask_dilation == 2  # the command line's default
    assert second.input == Path("/abs/frames") and second.name == "bee"
    assert second.config.engine == "propainter" and second.config.max_side is None  # empty cell: the default


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_json_and_yaml_lists(tmp_path, suffix):
    shots = [{"video": "x", "mask": "m", "output": "o1", "max_side": 64, "overwrite": True},
             {"input": "y", "mask": "m", "output": "o2", "mask-dilation": 0}]
    jobs = tmp_path / f"shots{suffix}"
    if suffix == ".json":
        jobs.write_text(json.dumps({"shots": shots}))
    else:
        import yaml

        jobs.write_text(yaml.safe_dump(shots))
    a, b = load_jobs(jobs)
    assert a.config.max_side == 64 and a.config.overwrite and a.input == tmp_path / "x"
    assert b.config.mask_dilation == 0 and b.row == 2


@pytest.mark.parametrize("body, words", [
    ("input,mask,output,colour\nx,m,o,red\n", ["row 1", "'colour'", "unknown column"]),
    ("input,mask,output,max-side\nx,m,o,big\n", ["row 1", "'max-side'", "bad value"]),
    ("input,mask,output,engine\nx,m,o,classic\nx,m,o,magic\n", ["row 2", "unknown engine"]),
    ("input,mask\nx,m\n", ["row 1", "no 'output'"]),
    ("input,mask,output,device\nx,m,o,cpu\n", ["row 1", "whole batch"]),
    ("input,mask,output\nx,m,o\ny,m,o\n", ["row 2", "row 1's"]),
    ("input,mask,output\n", ["no shots"]),
])
def test_errors_name_file_row_and_column(tmp_path, body, words):
    jobs = tmp_path / "bad.csv"
    jobs.write_text(body)
    with pytest.raises(InputError) as info:
        load_jobs(jobs)
    message = str(info.value)
    assert "\n" not in message and str(jobs) in message
    for word in words:
        assert word in message


def test_unknown_type_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="unknown jobs file type"):
        (tmp_path / "x.txt").write_text("")
        load_jobs(tmp_path / "x.txt")
    with pytest.raises(InputError, match="cannot read"):
        load_jobs(tmp_path / "absent.csv")
