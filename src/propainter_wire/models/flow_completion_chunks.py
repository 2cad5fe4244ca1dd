"""Memory-bounded chunking of the flow completion network over time (pure planning, no tensors computed).

The stages before the recurrence mix frames only locally (temporal convolutions), so they can run on
windows of frames widened by a *halo*; the recurrence sees every frame; the decoder is per frame. These
functions derive the halo from the modules, size chunks for a memory budget and lay out the windows.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn as nn

# values per full-resolution pixel and frame alive at once (see ``frames_for_budget``)
ENCODER_VALUES_PER_PIXEL = 24
DECODER_VALUES_PER_PIXEL = 44
SEQUENCE_VALUES_PER_PIXEL = 24
BUDGET_MARGIN = 1.25

Window = tuple[slice, slice, slice, slice]  # (rows, read, keep, keep_in_read)


def temporal_halo(stages: Iterable[nn.Module]) -> int:
    """Frames each side of a chunk that ``stages`` (run in order) read: 8 for the checkpoint's layout.

    Every ``Conv3d`` with a length-preserving temporal kernel k, dilation d reaches ``d * (k - 1) / 2``
    frames each way, and reaches add up along a chain (a residual branch reaches no further than the
    chain it skips). Here: 4 P3D blocks x one (3, 1, 1) conv dilated by 2 = 4 x 2 frames. A window
    clipped at a clip end pads exactly as the whole clip does there, so the padding mode does not
    matter. Raises ValueError for a temporal conv that would change the frame count.
    """
    halo = 0
    for stage in stages:
        for conv in stage.modules():
            if not isinstance(conv, nn.Conv3d):
                continue
            k, d, p, s = conv.kernel_size[0], conv.dilation[0], conv.padding, conv.stride[0]
            reach = d * (k - 1) // 2
            if s != 1 or k % 2 == 0 or isinstance(p, str) or p[0] != reach:
                raise ValueError(f"{conv} does not keep the frame count; temporal chunking would be wrong")
            halo += reach
    return halo


def frames_for_budget(height: int, width: int, budget_bytes: int, halo: int,
                      dtype: torch.dtype = torch.float16, num_flows: int | None = None) -> int:
    """A ``frames_per_chunk`` whose chunk activations should fit in ``budget_bytes``.

    Rough inference-mode (no autograd) estimate, counted in activation values per full-resolution
    pixel and frame, each ``dtype.itemsize`` bytes:

    - decoder chunk, per frame: ~44 (the x2-upsampled 32-channel map at full resolution, 32, plus its
      half-resolution input, 8, the output flow, 2, and slack for the 1/4-scale stages);
    - encoder chunk, per frame read, i.e. chunk + ``2 * halo`` frames: ~24 (input 3 plus its padded
      copy, two 32-channel maps at 1/2 scale, 8 each);
    - whole sequence, per flow, only when ``num_flows`` is given: ~24 (the 1/4-scale skip, 4, the
      1/8-scale features and the recurrence's per-frame lists, ~10, the output and its chunks, 4, plus
      slack); this is taken off the budget first.

    Everything is multiplied by a 1.25 margin for allocator rounding and conv workspaces. Weights
    (~10 MB in fp16) are not counted. Checked against peak RSS on CPU (fp32, 240x432): ~44 values per
    extra chunk frame and ~29 per flow for the whole sequence, both within the margin; the unchunked
    run peaked at ~114 values per pixel and flow.

    Args:
        height, width: flow size in pixels (the working resolution).
        budget_bytes: memory allowed for activations.
        halo: the encoder's :func:`temporal_halo`.
        dtype: activation dtype (``torch.float16`` under fp16 autocast).
        num_flows: L, if the sequence-wide tensors should come out of the budget.
    Returns:
        frames per chunk, at least 1.
    """
    value_bytes = torch.empty((), dtype=dtype).element_size()
    frame_bytes = height * width * value_bytes * BUDGET_MARGIN  # bytes of one value per pixel
    budget = float(budget_bytes)
    if num_flows is not None:
        budget -= num_flows * SEQUENCE_VALUES_PER_PIXEL * frame_bytes
    by_decoder = budget / (DECODER_VALUES_PER_PIXEL * frame_bytes)
    by_encoder = budget / (ENCODER_VALUES_PER_PIXEL * frame_bytes) - 2 * halo
    return max(1, int(min(by_decoder, by_encoder)))


def chunk_windows(frames_per_chunk: int | None, halo: int, batch: int, length: int) -> list[Window]:
    """Encoder windows: ``(rows, read, keep, keep_in_read)`` slices over batch and time.

    ``read`` is the chunk ``keep`` widened by ``halo`` (clipped at the clip ends); ``keep_in_read``
    picks the chunk's frames out of the window's output. Without ``frames_per_chunk``, or with one of
    at least ``length`` frames, one window covers every row and frame, as the unchunked network.
    """
    n = frames_per_chunk
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"frames_per_chunk must be a positive int or None, got {n!r}")
    if n is None or n >= length:  # one window, all rows
        whole = slice(0, length)
        return [(slice(0, batch), whole, whole, whole)]
    windows = []
    for row in range(batch):
        for start in range(0, length, n):
            stop = min(start + n, length)
            lo, hi = max(0, start - halo), min(length, stop + halo)
            windows.append((slice(row, row + 1), slice(lo, hi), slice(start, stop), slice(start - lo, stop - lo)))
    return windows
