"""The quality harness and the demo, end to end on tiny inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import require
from propainter_wire.errors import InputError
from propainter_wire.quality import evaluate, methods, synth
from propainter_wire.quality.cases import Case, build_case, fit_size
from propainter_wire.quality.evaluate import run_evaluation
from propainter_wire.quality.report import crop_window


def _tiny_case() -> Case:
    truth = synth.procedural_clip(5, 64, 96, seed=11)
    inputs, masks = synth.draw_wires(truth, num_wires=1, thickness_range=(2, 3), seed=2)
    return Case("tiny-wires", truth, inputs, masks, "wires", "procedural")


def test_fit_size():
    assert fit_size(540, 972, None) == (356, 640)
    assert fit_size(240, 432, None) == (240, 432)  # never upscaled
    assert fit_size(1080, 1920, 480) == (270, 480)
    assert fit_size(100, 100, (50, 20)) == (20, 20)
    assert fit_size(720, 480, None) == (540, 360)  # portrait fits 360x640


def test_crop_window_holds_mask_pixel():
    masks = np.zeros((3, 50, 80), bool)
    masks[1, 40:44, 70:75] = True
    y0, y1, x0, x1 = crop_window(masks, 1, 32)
    assert (y1 - y0, x1 - x0) == (32, 32)
    assert masks[1, y0:y1, x0:x1].sum() == masks[1].sum()
    assert 0 <= y0 and y1 <= 50 and 0 <= x0 and x1 <= 80


def test_baselines_only_touch_the_mask():
    case = _tiny_case()
    for method in (0, 1):
        out = methods.cv2_inpaint_clip(case.inputs, case.masks, method)
        np.testing.assert_array_equal(out[~case.masks], case.inputs[~case.masks])


def test_resolve_methods():
    assert methods.resolve_methods(["telea"], ablation=True, weights_dir=None) == ["telea"]
    names = methods.resolve_methods(["classic", "ns"], ablation=True, weights_dir="w")
    assert names[:2] == ["classic", "ns"] and names[-1] == "propainter"
    assert set(methods.ABLATIONS) <= set(names)
    assert methods.resolve_methods(["ablation"], ablation=False, weights_dir=None) == list(methods.ABLATIONS)
    with pytest.raises(InputError):
        methods.method_runners(["nope"])


def test_run_evaluation_writes_every_report(tmp_path):
    rows = run_evaluation(tmp_path, data_dir=tmp_path / "no-data", cases=[_tiny_case()],
                          engines=("classic", "telea", "ns", "classic-no-propagation"), ablation=False, quiet=True)
    methods = [r["method"] for r in rows]
    assert methods == ["classic", "telea", "ns", "classic-no-propagation"]
    for r in rows:
        assert r["error"] is None, r
        assert 10 < r["psnr_mask"] < 60 and r["psnr_full"] > r["psnr_mask"]
        assert 0 < r["ssim_mask"] <= 1 and r["ssim_full"] > r["ssim_mask"]
        assert r["warp_full"] >= 0 and r["warp_mask"] >= 0 and r["sec_per_frame"] > 0
    for name in ("results.md", "results.json", "psnr_mask.png", "ssim_mask.png", "warp_mask.png",
                 "sec_per_frame.png", "contact_tiny-wires.png", "contact_sheet.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    payload = json.loads((tmp_path / "results.json").read_text())
    assert len(payload["results"]) == 4 and payload["cases"][0]["case"] == "tiny-wires"
    table = (tmp_path / "results.md").read_text()
    assert "| tiny-wires | telea |" in table
    # an inpainted clip beats the clip with the wires still in it
    wired = [r["psnr_mask"] for r in rows]
    from propainter_wire.quality.metrics import psnr

    case = _tiny_case()
    assert min(wired) > psnr(case.inputs, case.truth, case.masks)


def test_synthetic_case_and_cli(tmp_path):
    case = build_case("synthetic-wires", tmp_path, max_frames=4, size=(96, 64))
    assert case.truth.shape == (4, 54, 96, 3) and case.masks.any()
    np.testing.assert_array_equal(case.inputs[~case.masks], case.truth[~case.masks])
    with pytest.raises(ValueError):
        build_case("nope-wires", tmp_path)
    code = evaluate.main(["-o", str(tmp_path / "cli"), "--data", str(tmp_path), "--cases", "synthetic-wires",
                          "--engines", "telea", "--max-frames", "3", "--size", "80x48", "--quiet"])
    assert code == 0 and (tmp_path / "cli" / "results.md").exists()


def test_evaluation_on_shared_data(tmp_path, data_dir):
    for clip in ("bmx-trees/frames", "footage/test-sample0.mp4", "running_car/running_car.mp4"):
        require(data_dir / clip)
    rows = run_evaluation(tmp_path, data_dir=data_dir, cases=["bmx-trees-wires", "sample0-object"],
                          engines=("classic", "telea"), ablation=False, max_frames=4, size=200, quiet=True)
    assert {r["case"] for r in rows} == {"bmx-trees-wires", "sample0-object"}
    for r in rows:
        assert r["error"] is None and np.isfinite(r["psnr_mask"])
    case = build_case("running_car-box", data_dir, max_frames=2, size=200)
    assert case.truth.shape[1:3] == (111, 200) and (case.inputs[case.masks] == 0).all()


def test_demo(tmp_path):
    pytest.importorskip("propainter_wire.api", reason="the pipeline API is not there yet")
    from propainter_wire.quality.demo import run_demo

    summary = run_demo(tmp_path, engine="classic", quiet=True, num_frames=8, height=96, width=160)
    for name in ("before_after.mp4", "demo_report.json", "result/report.json", "result/inpainted.mp4",
                 "input/frames/00007.png", "input/masks/00007.png", "input/truth/00007.png",
                 "result/frames/00007.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert summary["engine"] == "classic"
    assert summary["psnr_mask"] > summary["input_psnr_mask"] + 3
    assert np.isfinite(summary["telea_psnr_mask"])
    assert json.loads((tmp_path / "demo_report.json").read_text())["psnr_mask"] == pytest.approx(summary["psnr_mask"])


def test_ablations_switch_real_engine_options():
    from propainter_wire.engines.classic import ClassicEngine

    defaults = ClassicEngine()
    for name, (kwargs, _) in methods.ABLATIONS.items():
        engine = ClassicEngine(**kwargs)  # a typo would raise TypeError
        assert any(getattr(engine, k) != getattr(defaults, k) for k in kwargs), name
