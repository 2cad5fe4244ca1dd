"""Page-locked (pinned) host memory for whole-clip tensors of a GPU run.

Copies between the GPU and ordinary (pageable) host memory go through the
driver's small staging buffers and fault the destination's pages in on first
touch: measured at about 1.7 GB/s on an H100 host. Page-locked memory is copied
by DMA at the bus's speed. ``HostPins`` page-locks tensors the engine already
allocated (``cudaHostRegister`` on their own memory): no second copy and no
power-of-two rounding or caching, unlike torch's pinned allocator.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger("propainter_wire")


class HostPins:
    """Pins host tensors until :meth:`close` (use as a context manager).

    Args:
        budget_bytes: most bytes pinned at once; past it (or where the system refuses,
            e.g. over the locked-memory limit) tensors stay pageable, which is only slower.

    The pinned tensors are referenced here until ``close`` unpins them, so their memory
    is not freed while registered.
    """

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self.pinned_bytes = 0
        self._tensors: list[torch.Tensor] = []

    def pin(self, tensor: torch.Tensor) -> bool:
        """Page-lock ``tensor``'s memory (a contiguous CPU tensor); False when it stays pageable."""
        size = tensor.numel() * tensor.element_size()
        if (size == 0 or tensor.device.type != "cpu" or not tensor.is_contiguous()
                or self.pinned_bytes + size > self.budget_bytes or not torch.cuda.is_available()):
            return False
        rc = torch.cuda.cudart().cudaHostRegister(tensor.data_ptr(), size, 0)
        if int(rc) != 0:
            log.debug("could not pin %.0f MiB of host memory (cudaHostRegister error %s)", size / 2**20, int(rc))
            return False
        self._tensors.append(tensor)
        self.pinned_bytes += size
        return True

    def close(self) -> None:
        """Unpin every tensor (each may then be freed)."""
        cudart = torch.cuda.cudart() if self._tensors else None
        for tensor in self._tensors:
            cudart.cudaHostUnregister(tensor.data_ptr())
        self._tensors.clear()
        self.pinned_bytes = 0

    def __enter__(self) -> HostPins:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def pin_budget_bytes() -> int:
    """At most a quarter of the host's memory, and 16 GiB, may be page-locked by one run."""
    try:
        import os

        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 16 * 2**30
    return int(min(16 * 2**30, total // 4))
