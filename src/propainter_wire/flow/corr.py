"""Correlation lookups for RAFT, without custom CUDA.

RAFT compares every pixel of image 1 (features at 1/8 resolution) with a small
window of image-2 features around where the current flow says it went. Two
interchangeable implementations give the same numbers:

- :class:`AllPairsCorr` builds the full (h*w) x (h*w) correlation volume once,
  pools it into a 4-level pyramid over the image-2 dims and samples it
  bilinearly at each lookup (the reference ``CorrBlock``). Fast per iteration,
  memory grows with the square of the pixel count.
- :class:`LocalCorr` keeps only the image-2 feature pyramid and, at each
  lookup, gathers the features of the window and dots them with the image-1
  features (what ``alt_cuda_corr`` computed). Memory is linear in the pixel count.

Both return ``(B, levels * (2r+1)**2, h, w)`` float32 (with channels-last strides:
a permuted view of the natural (B, h, w, K) layout) with the reference's
channel order: for each level, the window offset index ``k = ix * (2r+1) + iy``
where ``ix`` walks the x offsets ``-r..r`` and ``iy`` the y offsets. Values are
dot products of the 256-d features divided by ``sqrt(256)``.

All correlation arithmetic runs in fp32 with autocast disabled.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..runtime.precision import tf32_matmul

# No single matmul / pooling / sampling operand or result may reach 2**31 elements
# (32-bit indexing limits of some kernels). Tests shrink it to exercise chunking.
_ELEMENT_LIMIT = 2**31 - 1
_GRID_SAMPLE_MAX_BATCH = 2**16 - 1  # lookup batches (query pixels) per grid_sample call

DEFAULT_CORR_BUDGET_BYTES = 4 * 2**30
CORR_MODES = ("auto", "all_pairs", "local")

CorrFn = Callable[[torch.Tensor], torch.Tensor]


def _rows_per_chunk(elements_per_row: int, limit: int | None = None) -> int:
    """How many rows of ``elements_per_row`` keep a tensor under the element limit."""
    limit = _ELEMENT_LIMIT if limit is None else limit
    return max(1, limit // max(1, elements_per_row))


def _no_autocast(device: torch.device):
    return torch.autocast(device_type=device.type, enabled=False)


def _tf32_exact(fmap: torch.Tensor) -> bool:
    """Whether an fp32 matmul of ``fmap``'s values loses nothing on TF32 tensor cores.

    fp16 and bf16 carry at most 10 mantissa bits, as TF32 does, within fp32's exponent
    range: their products are exact there and accumulate in fp32, so the volume equals
    the fp32 one up to summation order, 5-10x faster on a GPU. (RAFT's features are fp16
    values when it runs under fp16 autocast.)
    """
    return fmap.is_cuda and fmap.dtype in (torch.float16, torch.bfloat16)


def pyramid_sizes(height: int, width: int, levels: int = 4) -> list[tuple[int, int]]:
    """Spatial sizes of the pooled levels (floor halving, as ``avg_pool2d(2, 2)``)."""
    sizes = [(height, width)]
    for _ in range(levels - 1):
        height, width = height // 2, width // 2
        sizes.append((height, width))
    return sizes


def all_pairs_bytes(height: int, width: int, levels: int = 4, dtype: torch.dtype = torch.float32) -> int:
    """Bytes of one direction's all-pairs pyramid for a (height, width) feature map, stored as ``dtype``."""
    pixels = height * width
    item = torch.empty((), dtype=dtype).element_size()
    return item * pixels * sum(h * w for h, w in pyramid_sizes(height, width, levels))


def choose_corr_mode(mode: str, height: int, width: int, volumes: int = 1,
                     budget_bytes: int = DEFAULT_CORR_BUDGET_BYTES, levels: int = 4,
                     dtype: torch.dtype = torch.float32) -> str:
    """Resolve ``'auto'`` to ``'all_pairs'`` or ``'local'``.

    Args:
        mode: 'auto', 'all_pairs' or 'local' (the last two are returned as given).
        height, width: feature-map size (1/8 of the padded input).
        volumes: how many all-pairs pyramids must coexist (e.g. 2 for both directions of a pair).
        budget_bytes: all-pairs is chosen when ``volumes`` pyramids fit in it.
        dtype: storage dtype of the pyramids.
    """
    if mode not in CORR_MODES:
        raise ValueError(f"corr mode must be one of {CORR_MODES}, got {mode!r}")
    if mode != "auto":
        return mode
    return "all_pairs" if volumes * all_pairs_bytes(height, width, levels, dtype) <= budget_bytes else "local"


def window_offsets(radius: int, device: torch.device | None = None) -> torch.Tensor:
    """(2r+1, 2r+1, 2) integer offsets (x, y) as float; x varies along the first axis."""
    steps = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    off_x, off_y = torch.meshgrid(steps, steps, indexing="ij")
    return torch.stack((off_x, off_y), dim=-1)


# ---------------------------------------------------------------------------
# all-pairs volume
# ---------------------------------------------------------------------------
def all_pairs_volume(fmap1: torch.Tensor, fmap2: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Correlation of every pixel of ``fmap1`` with every pixel of ``fmap2``.

    Args:
        fmap1, fmap2: (B, C, h, w) features (any float dtype; computed in fp32).
        out: optional (B, h*w, h*w) tensor to write into; a half-precision ``out`` stores
            the fp32 products rounded to its dtype.
    Returns:
        (B, h*w [image 1], h*w [image 2]) fp32 (or ``out``'s dtype), divided by sqrt(C).
        Computed by row chunks so no matmul operand or result reaches the element limit.
    """
    batch, dim, height, width = fmap1.shape
    pixels = height * width
    if dim * pixels > _ELEMENT_LIMIT:
        raise ValueError(f"feature map of {dim}x{pixels} elements is too large for a single matmul operand")
    rows = _rows_per_chunk(max(pixels, dim))
    scale = math.sqrt(dim)
    differentiable = torch.is_grad_enabled() and (fmap1.requires_grad or fmap2.requires_grad)
    if out is None and differentiable:
        with _no_autocast(fmap1.device):
            queries = fmap1.float().reshape(batch, dim, pixels).transpose(1, 2)  # (B, hw1, C)
            keys = fmap2.float().reshape(batch, dim, pixels)  # (B, C, hw2)
            blocks = [torch.matmul(queries[b:b + 1, s:s + rows], keys[b:b + 1]) / scale
                      for b in range(batch) for s in range(0, pixels, rows)]
        return torch.cat(blocks, dim=1).view(batch, pixels, pixels)
    if out is None:
        out = torch.empty(batch, pixels, pixels, dtype=torch.float32, device=fmap1.device)
    # 1/sqrt(C) is a power of two for C = 256 (and 4, 16, 64 ...): applied to the queries it is
    # exact and saves a pass over the volume; otherwise the products are divided as they come
    prescale = math.log2(scale).is_integer()
    tf32 = _tf32_exact(fmap1) and _tf32_exact(fmap2)
    with _no_autocast(fmap1.device), torch.no_grad(), tf32_matmul(tf32):
        for b in range(batch):
            queries = fmap1[b].float().reshape(dim, pixels).t()  # (hw1, C)
            if prescale:
                queries = queries * (1.0 / scale)
            keys = fmap2[b].float().reshape(dim, pixels)  # (C, hw2)
            for start in range(0, pixels, rows):
                block = out[b, start:start + rows]  # (rows, hw2), contiguous
                if block.dtype == torch.float32:
                    torch.matmul(queries[start:start + rows], keys, out=block)
                    if not prescale:
                        block.div_(scale)
                else:  # fp32 products, stored rounded
                    product = torch.matmul(queries[start:start + rows], keys)
                    block.copy_(product if prescale else product.div_(scale))
    return out


def _pool_rows(volume: torch.Tensor) -> torch.Tensor:
    """avg_pool2d(2, 2) of an (M, 1, h, w) stack, chunked over M."""
    count, _, height, width = volume.shape
    rows = _rows_per_chunk(height * width)
    if rows >= count:
        return F.avg_pool2d(volume, 2, stride=2)
    return torch.cat([F.avg_pool2d(volume[s:s + rows], 2, stride=2) for s in range(0, count, rows)])


class AllPairsCorr:
    """Pyramid of all-pairs correlation volumes and its windowed lookup (reference CorrBlock).

    Build with :meth:`from_features` (one direction) or :meth:`from_pairs` (both
    directions of each pair, the backward volume being the transpose of the forward one).
    """

    def __init__(self, volume: torch.Tensor, height: int, width: int, levels: int = 4, radius: int = 4):
        """
        Args:
            volume: (B, h*w [image 1], h*w [image 2]) fp32 level-0 correlation.
            height, width: feature-map size h, w.
        """
        self.batch = volume.shape[0]
        self.height, self.width = height, width
        self.radius = radius
        level = volume.reshape(self.batch * height * width, 1, height, width)  # (B*h*w, 1, h2, w2)
        self.pyramid = [level]
        for _ in range(levels - 1):
            level = _pool_rows(level)
            self.pyramid.append(level)
        # per level, grid_sample's [-1, 1] coordinates (align_corners=True) as one affine map of the
        # level-0 window centre: grid = centre * scale + (offset * unit - 1), with unit = 2 / (size - 1)
        # per axis and scale = unit / 2**level. (The reference normalises centre + offset after the
        # sum; this differs from it in the last bits only, and makes the lookup one kernel per level.)
        side = 2 * radius + 1
        offsets = window_offsets(radius, volume.device).view(1, side, side, 2)
        self.scales, self.shifted_offsets = [], []
        for index, lvl in enumerate(self.pyramid):
            lvl_h, lvl_w = lvl.shape[-2:]
            # (2,) x, y; a 1-pixel level divides by zero, as in the reference (NaN flows: RAFT pads to avoid it)
            unit = torch.stack([torch.full((), 2 / (n - 1) if n > 1 else math.inf, device=volume.device)
                                for n in (lvl_w, lvl_h)])
            self.scales.append(unit / 2**index)
            self.shifted_offsets.append(offsets * unit - 1)  # (1, 2r+1, 2r+1, 2)

    @classmethod
    def from_features(cls, fmap1: torch.Tensor, fmap2: torch.Tensor, levels: int = 4,
                      radius: int = 4, dtype: torch.dtype = torch.float32) -> AllPairsCorr:
        """fmap1, fmap2: (B, C, h, w) -> lookup of image-1 pixels in image 2.

        ``dtype`` is the pyramid's storage (products are computed in fp32 either way).
        """
        batch, _, height, width = fmap1.shape
        if dtype == torch.float32:
            return cls(all_pairs_volume(fmap1, fmap2), height, width, levels, radius)
        volume = torch.empty(batch, height * width, height * width, dtype=dtype, device=fmap1.device)
        return cls(all_pairs_volume(fmap1, fmap2, out=volume), height, width, levels, radius)

    @classmethod
    def from_pairs(cls, fmap1: torch.Tensor, fmap2: torch.Tensor, levels: int = 4, radius: int = 4,
                   dtype: torch.dtype = torch.float32) -> AllPairsCorr:
        """Both directions of K pairs in one block of batch 2K.

        Args:
            fmap1, fmap2: (K, C, h, w) features of the first and second frame of each pair.
            dtype: storage of the pyramid.
        Returns:
            batch entries 0..K-1 look up fmap1 pixels in fmap2 (forward), entries
            K..2K-1 fmap2 pixels in fmap1 (backward, the transposed volume).
        """
        pairs, _, height, width = fmap1.shape
        pixels = height * width
        volume = torch.empty(2 * pairs, pixels, pixels, dtype=dtype, device=fmap1.device)
        all_pairs_volume(fmap1, fmap2, out=volume[:pairs])
        rows = _rows_per_chunk(pixels)
        for k in range(pairs):
            for start in range(0, pixels, rows):
                volume[pairs + k, start:start + rows].copy_(volume[k, :, start:start + rows].t())
        return cls(volume, height, width, levels, radius)

    def __call__(self, coords: torch.Tensor) -> torch.Tensor:
        """
        Args:
            coords: (B, 2, h, w) positions in image 2 at level-0 pixels (x, y).
        Returns:
            (B, levels * (2r+1)**2, h, w) fp32 correlation features.
        """
        batch, _, height, width = coords.shape
        side = 2 * self.radius + 1
        with _no_autocast(coords.device):
            centres = coords.float().permute(0, 2, 3, 1).reshape(batch * height * width, 1, 1, 2)
            dtype = self.pyramid[0].dtype
            features = []
            for index, level in enumerate(self.pyramid):
                lvl_h, lvl_w = level.shape[-2:]
                # (B*h*w, 2r+1, 2r+1, 2) window positions in grid_sample's [-1, 1]
                grid = torch.addcmul(self.shifted_offsets[index], centres, self.scales[index]).to(dtype)
                # cuDNN's grid sampler refuses batches past 65535 (CUDNN_STATUS_NOT_SUPPORTED)
                rows = min(_rows_per_chunk(max(lvl_h * lvl_w, side * side * 2)), _GRID_SAMPLE_MAX_BATCH)
                sampled = torch.cat([
                    F.grid_sample(level[s:s + rows], grid[s:s + rows], align_corners=True)
                    for s in range(0, level.shape[0], rows)
                ]) if rows < level.shape[0] else F.grid_sample(level, grid, align_corners=True)
                features.append(sampled.view(batch, height, width, side * side))  # (B, h, w, K)
            stacked = torch.cat(features, dim=-1)  # (B, h, w, levels*K)
        # a permuted view: channels-last strides, which NHWC convolutions read without a copy
        return stacked.float().permute(0, 3, 1, 2)


# ---------------------------------------------------------------------------
# on-demand local correlation
# ---------------------------------------------------------------------------
class LocalCorr:
    """Windowed correlation computed at each lookup from feature pyramids (no volume).

    For each query pixel and level, the image-2 features on the integer
    (2r+2) x (2r+2) grid covering the window are dotted with the image-1
    feature; the window samples are then the bilinear blend of those dots (the
    fractional position is shared by the whole window). Out-of-image grid points
    count as zero, like grid_sample's zero padding.

    Two ways to get the dots, same values up to float summation order:

    - tiled (most pixels): the query grid is cut into ``TILE`` x ``TILE`` tiles; where
      the integer window origins of a tile's pixels lie within ``SPREAD`` pixels of each
      other (smooth flow; always, at the coarse levels), the tile's features are
      multiplied with one shared region of (2r+2+SPREAD)^2 image-2 features in a single
      matrix product, and each pixel picks its window out of the result. That gathers
      about a tenth of the features of the per-pixel way, and runs on tensor cores;
    - per pixel (tiles whose flow spreads further): each pixel's own grid is gathered.
    """

    TILE = 8  # query tile side (pixels of the 1/8-scale grid)
    SPREAD = 14  # largest spread of a tile's window origins for the tiled path (pixels of the level)

    def __init__(self, fmap1: torch.Tensor, fmap2: torch.Tensor, levels: int = 4, radius: int = 4,
                 chunk_elements: int = 2**27, dtype: torch.dtype = torch.float32):
        """
        Args:
            fmap1, fmap2: (B, C, h, w) features of the query image and the looked-up image.
            chunk_elements: bound on the gathered features (and products) per step.
            dtype: storage of the features that are gathered (the pyramid is pooled in float32
                first). float16 halves the gathered bytes; the dot products still accumulate in
                float32 (cuBLAS) and are rounded to float16 once, as RAFT's fp16 convolutions
                then read them anyway.
        """
        self.radius = radius
        self.chunk_elements = chunk_elements
        batch, dim, height, width = fmap1.shape
        self.scale = math.sqrt(dim)
        with _no_autocast(fmap1.device):
            # queries as rows: (B*h*w, C)
            per_pixel = fmap1.float().permute(0, 2, 3, 1)  # (B, h, w, C)
            self.queries = per_pixel.reshape(batch * height * width, dim).to(dtype)
            self.levels = []  # (B*h_l*w_l, C) rows, with (h_l, w_l)
            level = fmap2.float()
            for index in range(levels):
                if index:
                    level = F.avg_pool2d(level, 2, stride=2)
                lvl_h, lvl_w = level.shape[-2:]
                rows = level.permute(0, 2, 3, 1).reshape(batch * lvl_h * lvl_w, dim).to(dtype)
                self.levels.append((rows, lvl_h, lvl_w))
            # the query grid in tiles, zero-padded to whole tiles: (n_tiles, TILE*TILE, C), and for each
            # tile slot the query's row in ``queries`` (-1 for padding) and each tile's batch entry
            t = self.TILE
            pad_h, pad_w = (-height) % t, (-width) % t
            rows_t, cols_t = (height + pad_h) // t, (width + pad_w) // t
            tiles = F.pad(per_pixel, (0, 0, 0, pad_w, 0, pad_h)).view(batch, rows_t, t, cols_t, t, dim)
            self.tile_queries = tiles.permute(0, 1, 3, 2, 4, 5).reshape(-1, t * t, dim).to(dtype)
            index = torch.arange(batch * height * width, device=fmap1.device).view(batch, height, width)
            index = F.pad(index, (0, pad_w, 0, pad_h), value=-1).view(batch, rows_t, t, cols_t, t)
            self.tile_slots = index.permute(0, 1, 3, 2, 4).reshape(-1, t * t)  # (n_tiles, TILE*TILE)
            self.tile_batch = torch.arange(batch, device=fmap1.device).repeat_interleave(rows_t * cols_t)
            self.grid_pad = (pad_h, pad_w)

    def _blend(self, dots: torch.Tensor, frac: torch.Tensor) -> torch.Tensor:
        """dots (..., 2r+2 [y], 2r+2 [x]) on the integer grid, frac (..., 2) (x, y) in [0, 1)
        -> (..., (2r+1)**2) bilinear window samples, x offset major, divided by sqrt(C)."""
        fx = frac[..., 0, None, None]
        fy = frac[..., 1, None, None]
        top = dots[..., :-1, :-1] * (1 - fx) + dots[..., :-1, 1:] * fx
        bottom = dots[..., 1:, :-1] * (1 - fx) + dots[..., 1:, 1:] * fx
        window = top * (1 - fy) + bottom * fy  # (..., 2r+1 [y], 2r+1 [x])
        side = 2 * self.radius + 1
        return window.transpose(-1, -2).reshape(*window.shape[:-2], side * side) / self.scale

    def _level_lookup(self, rows: torch.Tensor, lvl_h: int, lvl_w: int, centres: torch.Tensor,
                      batch_index: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        """Per pixel.

        Args:
            rows: (B*h_l*w_l, C) level features; centres: (Q, 2) positions at this level (x, y);
            batch_index: (Q,) which batch entry each query belongs to; queries: (Q, C).
        Returns:
            (Q, (2r+1)**2) correlation, x offset major.
        """
        r = self.radius
        grid_side = 2 * r + 2
        base = torch.floor(centres)  # (Q, 2)
        frac = centres - base  # (Q, 2) in [0, 1)
        steps = torch.arange(-r, r + 2, device=centres.device)
        base = base.long()
        xs = base[:, :1] + steps  # (Q, 2r+2)
        ys = base[:, 1:] + steps
        valid_x = (xs >= 0) & (xs < lvl_w)
        valid_y = (ys >= 0) & (ys < lvl_h)
        # flat row index of every grid point, (Q, 2r+2 [y], 2r+2 [x])
        flat = (batch_index[:, None, None] * (lvl_h * lvl_w)
                + ys.clamp(0, lvl_h - 1)[:, :, None] * lvl_w + xs.clamp(0, lvl_w - 1)[:, None, :])
        gathered = rows[flat.reshape(-1)].view(flat.shape[0], grid_side * grid_side, -1)  # (Q, G, C)
        dots = torch.matmul(gathered, queries.unsqueeze(-1)).float().view(-1, grid_side, grid_side)  # (Q, y, x)
        dots = dots * (valid_y[:, :, None] & valid_x[:, None, :])
        return self._blend(dots, frac)

    def _tiled_lookup(self, rows: torch.Tensor, lvl_h: int, lvl_w: int, centres: torch.Tensor,
                      tiles: torch.Tensor) -> torch.Tensor:
        """Tiles whose window origins lie within ``SPREAD`` pixels.

        Args:
            rows: (B*h_l*w_l, C) level features; centres: (m, TILE*TILE, 2) positions at this level;
            tiles: (m,) tile ids.
        Returns:
            (m, TILE*TILE, (2r+1)**2) correlation, x offset major.
        """
        r = self.radius
        grid_side = 2 * r + 2
        side = grid_side + self.SPREAD  # region side
        base = torch.floor(centres)
        frac = centres - base
        base = base.long()  # (m, T, 2)
        origin = base.amin(dim=1) - r  # (m, 2) region corner (x, y)
        steps = torch.arange(side, device=centres.device)
        xs = origin[:, :1] + steps  # (m, side)
        ys = origin[:, 1:] + steps
        valid = ((ys >= 0) & (ys < lvl_h))[:, :, None] & ((xs >= 0) & (xs < lvl_w))[:, None, :]  # (m, side, side)
        flat = (self.tile_batch[tiles][:, None, None] * (lvl_h * lvl_w)
                + ys.clamp(0, lvl_h - 1)[:, :, None] * lvl_w + xs.clamp(0, lvl_w - 1)[:, None, :])
        region = rows[flat.reshape(-1)].view(len(tiles), side * side, rows.shape[1])  # (m, side^2, C)
        region = region * valid.view(len(tiles), side * side, 1).to(region.dtype)  # out-of-image points: 0
        products = torch.bmm(self.tile_queries[tiles], region.transpose(1, 2)).float()  # (m, T, side^2)
        # each query's (2r+2)^2 grid inside the region
        inner = base - r - origin[:, None, :]  # (m, T, 2) in [0, SPREAD]
        grid = torch.arange(grid_side, device=centres.device)
        pick = ((inner[..., 1, None] + grid)[..., :, None] * side
                + (inner[..., 0, None] + grid)[..., None, :])  # (m, T, 2r+2 [y], 2r+2 [x])
        dots = products.gather(2, pick.view(len(tiles), -1, grid_side * grid_side))
        return self._blend(dots.view(*pick.shape), frac)

    def __call__(self, coords: torch.Tensor) -> torch.Tensor:
        """
        Args:
            coords: (B, 2, h, w) positions in image 2 at level-0 pixels (x, y).
        Returns:
            (B, levels * (2r+1)**2, h, w) fp32 correlation features.
        """
        batch, _, height, width = coords.shape
        count = batch * height * width
        dim = self.queries.shape[1]
        t = self.TILE
        side2 = (2 * self.radius + 2) ** 2
        region2 = (2 * self.radius + 2 + self.SPREAD) ** 2
        limit = min(self.chunk_elements, _ELEMENT_LIMIT)
        step = max(1, limit // (side2 * dim))  # pixels per per-pixel step
        tile_step = max(1, limit // (region2 * max(dim, t * t)))  # tiles per tiled step
        pad_h, pad_w = self.grid_pad
        with _no_autocast(coords.device):
            centres = coords.float().permute(0, 2, 3, 1)  # (B, h, w, 2)
            # per tile slot, edge-padded (padding never widens a tile's spread): (n_tiles, TILE*TILE, 2)
            tiled = F.pad(centres.permute(0, 3, 1, 2), (0, pad_w, 0, pad_h), mode="replicate")
            rows_t, cols_t = tiled.shape[-2] // t, tiled.shape[-1] // t
            tiled = tiled.view(batch, 2, rows_t, t, cols_t, t).permute(0, 2, 4, 3, 5, 1).reshape(-1, t * t, 2)
            flat_centres = centres.reshape(count, 2)
            batch_index = torch.arange(batch, device=coords.device).repeat_interleave(height * width)
            out = torch.empty(count, len(self.levels), (2 * self.radius + 1) ** 2,
                              dtype=torch.float32, device=coords.device)
            for index, (rows, lvl_h, lvl_w) in enumerate(self.levels):
                scale = 2**index
                origins = torch.floor(tiled / scale)
                spread = (origins.amax(dim=1) - origins.amin(dim=1)).amax(dim=1)  # (n_tiles,)
                fits = spread <= self.SPREAD
                fitting = fits.nonzero().view(-1)
                for tiles in fitting.split(tile_step) if fitting.numel() else ():
                    samples = self._tiled_lookup(rows, lvl_h, lvl_w, tiled[tiles] / scale, tiles)
                    slots = self.tile_slots[tiles]  # (m, T), -1 for padding
                    real = slots >= 0
                    out[slots[real], index] = samples[real]
                # pixels of the other tiles, one by one
                rest = self.tile_slots[~fits]
                rest = rest[rest >= 0]
                for start in range(0, rest.numel(), step):
                    ids = rest[start:start + step]
                    out[ids, index] = self._level_lookup(rows, lvl_h, lvl_w, flat_centres[ids] / scale,
                                                         batch_index[ids], self.queries[ids])
        # (B*h*w, L, K) -> (B, L*K, h, w)
        return out.view(batch, height, width, -1).permute(0, 3, 1, 2)  # channels-last strides, as above


def build_corr(fmap1: torch.Tensor, fmap2: torch.Tensor, mode: str, levels: int = 4, radius: int = 4,
               pairs: bool = False, budget_bytes: int = DEFAULT_CORR_BUDGET_BYTES,
               dtype: torch.dtype = torch.float32, local_dtype: torch.dtype = torch.float32) -> CorrFn:
    """A correlation lookup for ``fmap1`` pixels in ``fmap2``.

    Args:
        fmap1, fmap2: (K, C, h, w) features.
        mode: 'auto', 'all_pairs' or 'local'.
        pairs: build both directions (batch 2K: forward entries first, then backward).
        budget_bytes: memory allowed for all-pairs volumes (used by 'auto') and the local gather chunks.
        dtype: storage of an all-pairs pyramid (fp32 = the reference; half halves its memory).
        local_dtype: storage of the gathered features of the local lookup (see :class:`LocalCorr`).
    """
    count, _, height, width = fmap1.shape
    volumes = count * (2 if pairs else 1)
    mode = choose_corr_mode(mode, height, width, volumes, budget_bytes, levels, dtype)
    if mode == "all_pairs":
        if pairs:
            return AllPairsCorr.from_pairs(fmap1, fmap2, levels, radius, dtype)
        return AllPairsCorr.from_features(fmap1, fmap2, levels, radius, dtype)
    chunk = max(2**20, budget_bytes // 16)
    if pairs:
        return LocalCorr(torch.cat([fmap1, fmap2]), torch.cat([fmap2, fmap1]), levels, radius, chunk, local_dtype)
    return LocalCorr(fmap1, fmap2, levels, radius, chunk, local_dtype)
