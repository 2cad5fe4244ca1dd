"""What a fresh process pays on first use of a cuDNN convolution: per kernel, or per shape?

    PYTHONPATH=src python benchmarks/cold_probe.py

A benchmark aid (sixth session): a run's first RAFT chunk takes 1.05 s against 0.26 s
later. Times, in one fresh process, the first and later calls of convolutions: the same
layer at a new shape (plan per shape?), a new layer at a seen shape, and a layer first
run on another thread (are plans shared between threads?). Prints JSON lines, ms.
"""

from __future__ import annotations

import json
import sys
import threading
import time


def main() -> int:
    import torch

    dev = torch.device("cuda")
    torch.cuda.init()
    torch.empty(1, device=dev)

    def timed(fn) -> float:
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        return round((time.perf_counter() - start) * 1e3, 2)

    def conv(cin: int, cout: int, k: int):
        return torch.nn.Conv2d(cin, cout, k, padding=k // 2).to(dev).half()

    with torch.inference_mode():
        a = conv(128, 128, 3)
        x1 = torch.randn(4, 128, 90, 160, device=dev, dtype=torch.half)
        x2 = torch.randn(6, 128, 72, 128, device=dev, dtype=torch.half)
        rows = {"first layer, first shape": timed(lambda: a(x1)), "same again": timed(lambda: a(x1)),
                "same layer, new shape": timed(lambda: a(x2)), "again": timed(lambda: a(x2))}
        b = conv(128, 128, 3)
        rows["new layer (same config), seen shape"] = timed(lambda: b(x1))
        c = conv(128, 96, 3)
        rows["new config, seen input shape"] = timed(lambda: c(x1))
        rows["new config again"] = timed(lambda: c(x1))
        d = conv(128, 64, 5)
        x3 = torch.randn(3, 128, 50, 60, device=dev, dtype=torch.half)
        out = {}

        def on_thread():
            with torch.inference_mode():
                out["5x5 conv, first call, other thread"] = timed(lambda: d(x3))
                out["5x5 other thread again"] = timed(lambda: d(x3))

        worker = threading.Thread(target=on_thread)
        worker.start()
        worker.join()
        rows.update(out)
        rows["5x5 conv, main thread after the other thread"] = timed(lambda: d(x3))
        e = conv(64, 64, 7)
        x4 = torch.randn(2, 64, 40, 40, device=dev, dtype=torch.half)
        rows["7x7 small shape first"] = timed(lambda: e(x4))
        x5 = torch.randn(8, 64, 180, 320, device=dev, dtype=torch.half)
        rows["7x7 big shape first (kernels maybe loaded)"] = timed(lambda: e(x5))
        rows["7x7 big again"] = timed(lambda: e(x5))
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
