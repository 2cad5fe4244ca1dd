"""Time the unchanged reference ProPainter script in-process, the way bench.py times ours.

The reference is not part of this project; point ``--ref`` at a checkout of
github.com/sczhou/ProPainter (with ``weights/`` holding the three checkpoints, e.g.
``propainter_wire.testing.write_deterministic_checkpoints``). Heavy libraries are
imported first, so the timer starts after imports, as for ours; the reference's
video writing (imageio-ffmpeg) is skipped, its PNG frames are written (--save_frames).

    python benchmarks/reference_driver.py --ref REF -- -i FRAMES -m MASKS -o OUT --fp16 --save_frames
Prints one JSON object: seconds, peak GPU allocated (GiB), or the error it died with.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
import time
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--ref", type=Path, required=True)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    args = p.parse_args()
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest

    import cv2  # noqa: F401
    import imageio
    import numpy  # noqa: F401
    import scipy.ndimage  # noqa: F401
    import torch
    import torchvision  # noqa: F401

    imageio.mimwrite = lambda *a, **k: None  # no ffmpeg plugin needed; frames are still saved
    os.chdir(args.ref)
    sys.path.insert(0, str(args.ref))
    sys.argv = ["inference_propainter.py", *rest]
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    error = None
    try:
        runpy.run_path("inference_propainter.py", run_name="__main__")
    except BaseException as exc:  # report how the reference died
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    print(json.dumps({"reference_seconds": round(seconds, 3), "peak_gpu_gib": None if peak is None else round(peak, 3),
                      "error": error, "args": rest}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
