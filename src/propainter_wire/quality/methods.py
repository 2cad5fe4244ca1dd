"""The methods the quality harness compares: per-frame OpenCV baselines, the engines, ablations.

``telea`` and ``ns`` are per-frame ``cv2.inpaint`` (Telea's fast marching and
Navier-Stokes) on the user's mask, no temporal information; ``classic`` and
``propainter`` run the engines through :func:`propainter_wire.api.inpaint_arrays`; the
ablations run the classic engine with one part switched off (:data:`ABLATIONS`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError

BASELINE_RADIUS = 3  # cv2.inpaint neighbourhood in pixels, Telea's and Navier-Stokes'
# classic-engine variants with one part switched off: name -> (ClassicEngine kwargs, InpaintConfig changes)
ABLATIONS: dict[str, tuple[dict, dict]] = {
    "classic-no-flow-completion": ({"use_flow_completion": False}, {}),  # DIS flow on the pre-fill kept as is
    "classic-one-pass": ({"passes": 1}, {}),  # no second pass on the re-measured flow
    "classic-no-blend": ({"use_blending": False}, {}),  # no blending of the ring residual
    "classic-no-propagation": ({"use_propagation": False}, {}),  # spatial fill only
}
METHODS = ("classic", "telea", "ns", "propainter", *ABLATIONS)


def cv2_inpaint_clip(frames: np.ndarray, masks: np.ndarray, method: int, radius: int = BASELINE_RADIUS) -> np.ndarray:
    """Per-frame ``cv2.inpaint`` (no temporal information).

    Args:
        frames: (T, H, W, 3) uint8 RGB.
        masks: (T, H, W) bool.
        method: ``cv2.INPAINT_TELEA`` or ``cv2.INPAINT_NS``.
        radius: neighbourhood in pixels.
    Returns:
        (T, H, W, 3) uint8, equal to ``frames`` outside the masks.
    """
    return np.stack([cv2.inpaint(f, m.astype(np.uint8), radius, method) for f, m in zip(frames, masks, strict=True)])


def _classic_variant(engine_kwargs: dict, config_changes: dict, device: str) -> Callable:
    def run(frames: np.ndarray, masks: np.ndarray) -> np.ndarray:
        from ..config import InpaintConfig
        from ..engines.classic import ClassicEngine
        from ..pipeline.stages import Stages
        from ..runner.inputs import run_engine

        config = InpaintConfig(engine="classic", device=device, quiet=True, **config_changes).validate()
        out = run_engine(list(frames), list(masks), config, Stages(quiet=True), engine=ClassicEngine(**engine_kwargs))
        return np.stack(out)

    return run


def method_runners(methods: Sequence[str], weights_dir: Path | None = None,
                   device: str = "cpu") -> dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """Name -> function (frames (T, H, W, 3) uint8, masks (T, H, W) bool) -> (T, H, W, 3) uint8."""
    from ..api import inpaint_arrays

    runners: dict[str, Callable] = {}
    for name in methods:
        if name == "telea":
            runners[name] = lambda f, m: cv2_inpaint_clip(f, m, cv2.INPAINT_TELEA)
        elif name == "ns":
            runners[name] = lambda f, m: cv2_inpaint_clip(f, m, cv2.INPAINT_NS)
        elif name == "classic":
            runners[name] = lambda f, m: inpaint_arrays(f, m, engine="classic", device=device, quiet=True)
        elif name == "propainter":
            if weights_dir is None:
                raise InputError("the propainter method needs weights_dir")
            runners[name] = lambda f, m: inpaint_arrays(f, m, engine="propainter", weights_dir=weights_dir,
                                                        device=device, quiet=True)
        elif name in ABLATIONS:
            runners[name] = _classic_variant(*ABLATIONS[name], device=device)
        else:
            raise InputError(f"unknown method '{name}' (choose from {', '.join(METHODS)}, or 'ablation')")
    return runners


def resolve_methods(engines: Sequence[str], ablation: bool, weights_dir: Path | None) -> list[str]:
    """The method list: ``engines`` ('ablation' expands to every variant), plus ablations and propainter."""
    names: list[str] = []
    for name in engines:
        names.extend(ABLATIONS if name == "ablation" else [name])
    if ablation and "classic" in names:
        names.extend(ABLATIONS)
    if weights_dir is not None:
        names.append("propainter")
    return list(dict.fromkeys(names))  # unique, in order
