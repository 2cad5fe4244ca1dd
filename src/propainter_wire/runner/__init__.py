"""Run orchestration behind the public API: engine choice and loading, engine input, thread
pools, the output folder (manifest, resume, frame writing) and the report.

``propainter_wire.api`` builds the settings and the tuning switches, then calls
:func:`inpaint_files` (files) or :func:`run_engine` (arrays).
"""

from .engines import EngineLoader, select_engine
from .files import fill_and_write, inpaint_files
from .inputs import check_fillable, fill, prepare_engine_input, run_engine
from .threads import batched_map, parallel_map, serial_map

__all__ = ["EngineLoader", "batched_map", "check_fillable", "fill", "fill_and_write", "inpaint_files",
           "parallel_map", "prepare_engine_input", "run_engine", "select_engine", "serial_map"]
