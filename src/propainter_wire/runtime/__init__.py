"""Where and how a run computes: device choice, precision policy, transfers, CUDA graphs.

A low layer: nothing here imports the engines, the API, the CLI, ``doctor`` or ``weights``
(``propainter_wire.doctor`` builds its self-tests on :mod:`.device` and :mod:`.precision`).
Import the modules themselves (``runtime.device``, ``runtime.precision``, ...): this package
imports nothing, so a light module such as :mod:`.process` does not bring in torch.
"""
