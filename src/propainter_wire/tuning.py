"""Every ``PROPAINTER_WIRE_*`` environment switch, parsed and validated once.

:class:`Tuning` is a frozen dataclass: the CLI and the Python API build it with
:meth:`Tuning.from_env` at the start of a run and hand it down; no other module reads
these variables. Tests construct ``Tuning(...)`` directly instead of patching the
environment. ``docs/tuning.md`` documents each switch and the measurement behind its default.

Only ``PROPAINTER_WIRE_WEIGHTS``, ``PROPAINTER_WIRE_IO_THREADS``, ``PROPAINTER_WIRE_BYTECODE_CACHE``
and ``PROPAINTER_WIRE_FAST_EXIT`` are for users; the others
are benchmark switches for A/B runs, and their defaults are the measured best.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

PREFIX = "PROPAINTER_WIRE_"

# PROPAINTER_WIRE_CHANNELS_LAST parts: name -> (network, its sub-modules; "" = the whole network)
CHANNELS_LAST_PARTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "raft_encoders": ("raft", ("fnet", "cnet")), "raft_update": ("raft", ("update_block",)),
    "flow_completion": ("flow_completion", ("",)), "inpainter_encoder": ("inpainter", ("encoder",)),
    "inpainter_decoder": ("inpainter", ("decoder",)), "feat_prop": ("inpainter", ("feat_prop_module",)),
    "transformer": ("inpainter", ("ss", "sc", "transformers")),
}
CUDNN_STAGES = ("flow", "complete", "transformer")
FUSED_EPILOGUE_MODES = ("1", "0", "update")


class TuningError(ValueError):
    """A switch with a value it does not take; the message names the variable."""


@dataclass(frozen=True)
class Tuning:
    """Run-time switches that change how (never what) the engines compute.

    ``None`` means "chosen by the engine from the device and frame size" (the measured default).
    """

    weights_dir: Path | None = None  # PROPAINTER_WIRE_WEIGHTS: a checkpoint folder searched after --weights-dir
    io_threads: int | None = None  # PROPAINTER_WIRE_IO_THREADS: decode/composite/encode threads (None: cores, <= 16)
    cuda_graphs: bool = True  # PROPAINTER_WIRE_CUDA_GRAPHS=0: RAFT's refinement runs eagerly
    raft_budget_bytes: int | None = None  # PROPAINTER_WIRE_RAFT_BUDGET_GIB
    transformer_budget_bytes: int | None = None  # PROPAINTER_WIRE_TRANSFORMER_BUDGET_GIB
    resident_bytes: int | None = None  # PROPAINTER_WIRE_RESIDENT_GIB: whole-clip arrays kept on the GPU up to this
    raft_half_pyramid: bool = False  # PROPAINTER_WIRE_RAFT_HALF_PYRAMID=1: fp16 correlation pyramids in fp16 RAFT
    # PROPAINTER_WIRE_CHANNELS_LAST: None = by device and precision; () = none; ("all",) = every network;
    # else names from CHANNELS_LAST_PARTS
    channels_last: tuple[str, ...] | None = None
    window_batch: int | None = None  # PROPAINTER_WIRE_WINDOW_BATCH=N: transformer windows per batch
    batch_directions: bool | None = None  # PROPAINTER_WIRE_BATCH_DIRECTIONS=0|1
    fused_epilogues: str = "1"  # PROPAINTER_WIRE_FUSED_EPILOGUES=1|0|update
    numpy_gather: bool = True  # PROPAINTER_WIRE_PREFETCH_GATHER=torch: window rows gathered by ATen
    cudnn_benchmark: frozenset[str] = field(default_factory=frozenset)  # PROPAINTER_WIRE_CUDNN_BENCHMARK=a,b
    preload: bool | None = None  # PROPAINTER_WIRE_PRELOAD=0|1: later stages' kernels loaded during RAFT
    # PROPAINTER_WIRE_BYTECODE_CACHE=0|1: compiled modules kept in the user cache (None: where none exist)
    bytecode_cache: bool | None = None
    fast_exit: bool = True  # PROPAINTER_WIRE_FAST_EXIT=0: the command's process ends with the interpreter's teardown
    early_cuda: bool = True  # PROPAINTER_WIRE_EARLY_CUDA=0: torch creates the CUDA context after its import

    def __post_init__(self) -> None:
        if self.io_threads is not None and self.io_threads < 1:
            raise TuningError(f"io_threads must be >= 1, got {self.io_threads}")
        if self.window_batch is not None and self.window_batch < 1:
            raise TuningError(f"window_batch must be >= 1, got {self.window_batch}")
        if self.fused_epilogues not in FUSED_EPILOGUE_MODES:
            raise TuningError(f"fused_epilogues: expected one of {', '.join(FUSED_EPILOGUE_MODES)}, "
                              f"got {self.fused_epilogues!r}")
        for budget in ("raft_budget_bytes", "transformer_budget_bytes", "resident_bytes"):
            value = getattr(self, budget)
            if value is not None and value <= 0:
                raise TuningError(f"{budget} must be positive, got {value}")
        if self.channels_last is not None:
            unknown = [p for p in self.channels_last if p != "all" and p not in CHANNELS_LAST_PARTS]
            if unknown:
                raise TuningError(f"channels_last: unknown part {unknown[0]!r} "
                                  f"(1, 0 or {', '.join(CHANNELS_LAST_PARTS)})")
        unknown_stages = set(self.cudnn_benchmark) - set(CUDNN_STAGES)
        if unknown_stages:
            raise TuningError(f"cudnn_benchmark: unknown stage {sorted(unknown_stages)[0]!r} "
                              f"(a comma list of {', '.join(CUDNN_STAGES)})")

    def replace(self, **changes) -> Tuning:
        import dataclasses

        return dataclasses.replace(self, **changes)

    def threads(self) -> int:
        """Threads for decoding, resizing, compositing and encoding frames."""
        return self.io_threads or default_io_threads(os.cpu_count() or 1)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Tuning:
        """Parse the ``PROPAINTER_WIRE_*`` variables of ``env`` (default ``os.environ``).

        Raises:
            TuningError: a variable with a value it does not take (the message names it).
        """
        env = os.environ if env is None else env
        get = _Reader(env)
        return cls(
            weights_dir=get.path("WEIGHTS"),
            io_threads=get.positive_int("IO_THREADS"),
            cuda_graphs=get.flag("CUDA_GRAPHS", default=True),
            raft_budget_bytes=get.gib("RAFT_BUDGET_GIB"),
            transformer_budget_bytes=get.gib("TRANSFORMER_BUDGET_GIB"),
            resident_bytes=get.gib("RESIDENT_GIB"),
            raft_half_pyramid=get.flag("RAFT_HALF_PYRAMID", default=False),
            channels_last=get.parts("CHANNELS_LAST"),
            window_batch=get.positive_int("WINDOW_BATCH"),
            batch_directions=get.flag("BATCH_DIRECTIONS", default=None),
            fused_epilogues=get.choice("FUSED_EPILOGUES", FUSED_EPILOGUE_MODES, default="1"),
            numpy_gather=get.choice("PREFETCH_GATHER", ("numpy", "torch"), default="numpy") == "numpy",
            cudnn_benchmark=get.stages("CUDNN_BENCHMARK"),
            preload=get.flag("PRELOAD", default=None),
            bytecode_cache=get.flag("BYTECODE_CACHE", default=None),
            fast_exit=get.flag("FAST_EXIT", default=True),
            early_cuda=get.flag("EARLY_CUDA", default=True),
        )

    @classmethod
    def variables(cls) -> list[str]:
        """The environment variables :meth:`from_env` reads (for the docs and ``doctor``)."""
        return [PREFIX + name for name in _VARIABLES]


_VARIABLES = ("WEIGHTS", "IO_THREADS", "CUDA_GRAPHS", "RAFT_BUDGET_GIB", "TRANSFORMER_BUDGET_GIB", "RESIDENT_GIB",
              "RAFT_HALF_PYRAMID", "CHANNELS_LAST", "WINDOW_BATCH", "BATCH_DIRECTIONS", "FUSED_EPILOGUES",
              "PREFETCH_GATHER", "CUDNN_BENCHMARK", "PRELOAD", "BYTECODE_CACHE", "FAST_EXIT",
              "EARLY_CUDA")
assert len(_VARIABLES) == len(fields(Tuning))


class _Reader:
    """Typed reads of ``PROPAINTER_WIRE_<NAME>``; an empty value counts as unset."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def raw(self, name: str) -> str:
        return self.env.get(PREFIX + name, "").strip()

    def fail(self, name: str, expected: str, value: str) -> TuningError:
        return TuningError(f"{PREFIX}{name}: expected {expected}, got {value!r}")

    def path(self, name: str) -> Path | None:
        value = self.raw(name)
        return Path(value).expanduser() if value else None

    def positive_int(self, name: str) -> int | None:
        value = self.raw(name)
        if not value:
            return None
        if not value.isdigit() or int(value) < 1:
            raise self.fail(name, "a positive integer", value)
        return int(value)

    def gib(self, name: str) -> int | None:
        value = self.raw(name)
        if not value:
            return None
        try:
            number = float(value)
        except ValueError:
            number = 0.0
        if not number > 0:
            raise self.fail(name, "a positive number of GiB", value)
        return int(number * 2**30)

    def flag(self, name: str, default: bool | None) -> bool | None:
        value = self.raw(name)
        if not value:
            return default
        if value not in ("0", "1"):
            raise self.fail(name, "0 or 1", value)
        return value == "1"

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.raw(name)
        if not value:
            return default
        if value not in choices:
            raise self.fail(name, " or ".join(choices), value)
        return value

    def parts(self, name: str) -> tuple[str, ...] | None:
        value = self.raw(name)
        if not value:
            return None
        chosen = tuple(p.strip() for p in value.split(",") if p.strip())
        if chosen in (("0",), ()):
            return ()
        if chosen == ("1",):
            return ("all",)
        unknown = [p for p in chosen if p not in CHANNELS_LAST_PARTS]
        if unknown:
            raise self.fail(name, f"1, 0 or a comma list of {', '.join(CHANNELS_LAST_PARTS)}", unknown[0])
        return chosen

    def stages(self, name: str) -> frozenset[str]:
        value = self.raw(name)
        chosen = frozenset(p.strip() for p in value.split(",")) - {"", "none"}
        unknown = chosen - set(CUDNN_STAGES)
        if unknown:
            raise self.fail(name, f"a comma list of {', '.join(CUDNN_STAGES)}", sorted(unknown)[0])
        return chosen


def default_io_threads(cores: int) -> int:
    """Frame threads for a machine of ``cores`` cores: one per core up to 16, less two from 8 cores up.

    The two cores left are for the threads that wait on the others: the main thread (which
    launches the GPU's kernels) and torch's import at the start of a run. With every core busy,
    each handover of the interpreter lock waits for the scheduler: on a 16-core H100 machine,
    ``import torch`` took 15.3 s beside 16 threads decoding PNGs, 5.8 s beside 4, 4.6 s alone
    (``benchmarks/results/h100_torch_import_contention.txt``).
    """
    return max(1, min(16, cores - 2 if cores >= 8 else cores))

