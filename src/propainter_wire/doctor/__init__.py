"""``propainter-wire doctor``: what is installed, what the GPU can do, what to fix.

- :mod:`.environment`: library versions, the CUDA stack (runtime, cuDNN, cuBLAS, driver), the GPUs.
- :mod:`.selftests`: small computations on the selected device checked against float64.
- :mod:`.report`: the report (``collect_report``), its advice, text rendering and exit code.

This package sits above the engines (its end-to-end test runs the networks); nothing in
``runtime/`` imports it.
"""

from .report import collect_report, doctor_command, exit_code, render_text
from .selftests import SelfTest, run_self_tests, self_tests

__all__ = ["SelfTest", "collect_report", "doctor_command", "exit_code", "render_text", "run_self_tests",
           "self_tests"]
