"""Token transformer of the ProPainter generator (temporal sparse window attention).

Feature maps at 1/4 resolution are cut into overlapping 7x7 patches (stride 3,
padding 3), each patch is embedded as one token (``SoftSplit``), eight
transformer blocks mix the tokens across frames, and ``SoftComp`` folds them back
into a feature map. Token grids are ``(B, T, Ht, Wt, C)``; for a feature map of
``h x w`` pixels, ``Ht = (h - 1) // 3 + 1`` and likewise for ``Wt``.

Attention works on 5x9 windows of the token grid (padded with zeros to a whole
number of windows). A window whose region holds masked pixels in any local frame
attends to every token of its own window, to neighbouring tokens gathered by
rolling the grid half a window in four diagonal directions, and to 4x4-pooled
global tokens, over every ``t_dilation``-th frame. Any other window attends only
to its own tokens, frame by frame.

State-dict keys follow ``ProPainter.pth`` (``transformers.transformer.{i}...``,
``ss.embedding``, ``sc.embedding``, ``sc.bias_conv``).

Memory: the per-frame modules (``SoftSplit``, ``SoftComp``, ``FusionFeedForward``)
take ``frames_per_chunk`` and the attention ``windows_per_chunk``; with them set,
the large temporaries (patch matrices, the 1960-wide hidden layer, the gathered
keys of masked windows) exist for one chunk at a time. Results equal the
unchunked ones up to the order of float summation. None means all at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .patches import fold_linear, linear_on_patches, patch_coverage, patch_grid, unfold_patches

Size2 = tuple[int, int]


def chunked(fn: Callable[..., torch.Tensor], *inputs: torch.Tensor, chunk: int | None) -> torch.Tensor:
    """``fn(*inputs)`` evaluated ``chunk`` rows (dim 0) at a time.

    ``fn`` must treat rows independently and return one output row per input row
    (every input has the same number of rows). The pieces are copied into one
    preallocated result, so only one chunk's temporaries are alive at a time.
    ``chunk`` None, or at least the row count: a single call.
    """
    rows = inputs[0].size(0)
    if chunk is None or chunk >= rows:
        return fn(*inputs)
    if chunk < 1:
        raise ValueError(f"chunk must be a positive number of rows, got {chunk}")
    result: torch.Tensor | None = None
    for start in range(0, rows, chunk):
        piece = fn(*(x[start:start + chunk] for x in inputs))
        if result is None:
            result = piece.new_empty((rows, *piece.shape[1:]))
        result[start:start + piece.size(0)] = piece
    return result


def _window_chunks(windows: torch.Tensor, chunk: int | None) -> tuple[torch.Tensor, ...]:
    """(m,) window ids -> consecutive pieces of at most ``chunk`` ids (one piece when None)."""
    if chunk is None or chunk >= windows.numel():
        return (windows,)
    if chunk < 1:
        raise ValueError(f"windows_per_chunk must be positive, got {chunk}")
    return windows.split(chunk)


class SoftSplit(nn.Module):
    """Feature map -> overlapping patch tokens.

    Args:
        channel: feature channels (128).
        hidden: token width (512).
        kernel_size, stride, padding: patch geometry ((7, 7), (3, 3), (3, 3)).
    """

    def __init__(self, channel: int, hidden: int, kernel_size: Size2, stride: Size2, padding: Size2) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = tuple(kernel_size), tuple(stride), tuple(padding)
        self.embedding = nn.Linear(channel * math.prod(self.kernel_size), hidden)

    def forward(self, feat: torch.Tensor, batch: int, feat_size: Size2,
                frames_per_chunk: int | None = None) -> torch.Tensor:
        """(B*T, C, h, w) features -> (B, T, Ht, Wt, hidden) tokens, ``frames_per_chunk`` maps at a time."""
        grid_h, grid_w = patch_grid(feat_size, self.kernel_size, self.stride, self.padding)
        tokens = chunked(self._embed, feat, chunk=frames_per_chunk)  # (BT, L, hidden)
        return tokens.view(batch, -1, grid_h, grid_w, tokens.size(-1))

    def _embed(self, feat: torch.Tensor) -> torch.Tensor:
        """(n, C, h, w) -> (n, L, hidden): the linear layer on the (n, L, C*49) patch rows, as one convolution."""
        return linear_on_patches(feat, self.embedding.weight, self.embedding.bias, self.kernel_size, self.stride,
                                 self.padding)


class SoftComp(nn.Module):
    """Patch tokens -> feature map (overlaps summed), then a 3x3 convolution."""

    def __init__(self, channel: int, hidden: int, kernel_size: Size2, stride: Size2, padding: Size2) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = tuple(kernel_size), tuple(stride), tuple(padding)
        self.embedding = nn.Linear(hidden, channel * math.prod(self.kernel_size))
        self.bias_conv = nn.Conv2d(channel, channel, kernel_size=3, stride=1, padding=1)

    def forward(self, tokens: torch.Tensor, feat_size: Size2, frames_per_chunk: int | None = None) -> torch.Tensor:
        """(B, T, Ht, Wt, hidden) tokens -> (B*T, C, h, w) features, ``frames_per_chunk`` frames at a time."""
        b, t, grid_h, grid_w, width = tokens.shape
        per_frame = tokens.reshape(b * t, grid_h * grid_w, width)  # (BT, L, hidden)
        return chunked(lambda x: self._compose(x, feat_size), per_frame, chunk=frames_per_chunk)

    def _compose(self, tokens: torch.Tensor, feat_size: Size2) -> torch.Tensor:
        """(n, L, hidden) -> (n, C, h, w): the (n, L, C*49) patch rows of the linear layer folded, as one
        transposed convolution."""
        grid = patch_grid(feat_size, self.kernel_size, self.stride, self.padding)
        feat = fold_linear(tokens, grid, self.embedding.weight, self.embedding.bias, feat_size, self.kernel_size,
                           self.stride, self.padding)
        return self.bias_conv(feat)


class FusionFeedForward(nn.Module):
    """Token MLP whose hidden activations are averaged where patches overlap.

    The 1960 hidden units of a token are read as 40 channels of a 7x7 patch; the
    patches of a frame are folded onto the feature map, divided by the overlap
    count, and cut out again before the second linear layer.
    """

    def __init__(self, dim: int, kernel_size: Size2, stride: Size2, padding: Size2, width: int = 1960) -> None:
        super().__init__()
        self.fc1 = nn.Sequential(nn.Linear(dim, width))
        self.fc2 = nn.Sequential(nn.GELU(), nn.Linear(width, dim))
        self.fold_args = {"kernel": tuple(kernel_size), "stride": tuple(stride), "padding": tuple(padding)}

    def forward(self, tokens: torch.Tensor, feat_size: Size2, frames_per_chunk: int | None = None) -> torch.Tensor:
        """(B, N, dim) tokens with N = T*Ht*Wt -> (B, N, dim), ``frames_per_chunk`` frames at a time."""
        grid = patch_grid(feat_size, **self.fold_args)
        batch, count, dim = tokens.shape
        per_frame = tokens.reshape(-1, grid[0] * grid[1], dim)  # (B*T, L, dim)
        out = chunked(lambda x: self._mix(x, feat_size), per_frame, chunk=frames_per_chunk)
        return out.reshape(batch, count, -1)

    def _mix(self, tokens: torch.Tensor, feat_size: Size2) -> torch.Tensor:
        """(n, L, dim) tokens of n whole frames -> (n, L, dim).

        fc1's (n, L, width) rows, folded, are one transposed convolution
        (``patches.fold_linear``): those rows, 49 times the feature map, are never written.
        fc2 on the unfolded rows is one convolution on the CPU (``patches.linear_on_patches``;
        2-core EPYC, 12 frames at 256x144: the feed-forward 2.5x faster in fp32). On a GPU it
        stays unfold + matrix product: cuDNN's heuristics give that 7x7/3 convolution a kernel
        without tensor cores (H100, fp16, 18 frames at 720p: 6.7 ms against 5.3 ms for the
        whole feed-forward as rows).
        """
        fc1, gelu, fc2 = self.fc1[0], self.fc2[0], self.fc2[1]
        grid = patch_grid(feat_size, **self.fold_args)
        merged = fold_linear(tokens, grid, fc1.weight, fc1.bias, feat_size, **self.fold_args)  # (n, width/49, h, w)
        coverage = patch_coverage(feat_size, **self.fold_args, device=merged.device, dtype=merged.dtype)
        mixed = gelu(merged / coverage)
        if mixed.is_cuda:
            return fc2(unfold_patches(mixed.contiguous(), **self.fold_args))  # rows (n, L, width) -> (n, L, dim)
        return linear_on_patches(mixed, fc2.weight, fc2.bias, **self.fold_args)  # (n, L, dim)


# padded grid area (relative to the token grid) from which the attention's projections skip the padding:
# the 12x22 grid of 256x144 frames pads to 15x27 (1.53, CPU fp32 attention ~1/4 faster); 720p's 60x107 pads
# to 60x108, where writing the three projections into padded grids cost more on an H100 than the products saved
_UNPADDED_PROJECTION_AREA = 1.125


def _pad_grid(x: torch.Tensor, pad_b: int, pad_r: int) -> torch.Tensor:
    """(B, T, Ht, Wt, C) tokens zero-padded by ``pad_b`` rows and ``pad_r`` columns (``x`` itself when none)."""
    return F.pad(x, (0, 0, 0, pad_r, 0, pad_b)) if pad_b or pad_r else x


def _rolled_key_index(window: Size2) -> torch.Tensor:
    """Indices kept from the four diagonally rolled copies of a window (each ``wh*ww`` long, concatenated).

    From each copy the quadrant that overlaps the window itself is dropped. Computed on the
    CPU (its length depends on the values), returned on the default device (``meta`` while a
    network is built for a checkpoint to fill).
    """
    wh, ww = window
    eh, ew = (wh + 1) // 2, (ww + 1) // 2
    keep = torch.ones(4, wh, ww, device="cpu")
    keep[0, : wh - eh, : ww - ew] = 0  # rolled to the top-left
    keep[1, : wh - eh, ew:] = 0  # top-right
    keep[2, eh:, : ww - ew] = 0  # bottom-left
    keep[3, eh:, ew:] = 0  # bottom-right
    return keep.flatten().nonzero(as_tuple=False).view(-1).to(torch.empty(0).device)


class SparseWindowAttention(nn.Module):
    """Multi-head window attention with rolled neighbours and pooled global tokens.

    Args:
        dim: token width (512).
        n_head: heads (4).
        window_size: window of the token grid, (rows, cols) = (5, 9).
        pool_size: kernel and stride of the depthwise pooling of global tokens, (4, 4).

    The buffer ``valid_ind_rolled`` is part of the checkpoint and is used as loaded.
    """

    def __init__(self, dim: int, n_head: int, window_size: Size2, pool_size: Size2 = (4, 4)) -> None:
        super().__init__()
        if dim % n_head:
            raise ValueError(f"dim {dim} is not a multiple of n_head {n_head}")
        self.n_head = n_head
        self.window_size = tuple(window_size)
        self.expand_size = tuple((n + 1) // 2 for n in self.window_size)
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.pool_layer = nn.Conv2d(dim, dim, kernel_size=pool_size, stride=pool_size, groups=dim)
        nn.init.constant_(self.pool_layer.weight, 1.0 / math.prod(pool_size))
        nn.init.zeros_(self.pool_layer.bias)
        self.register_buffer("valid_ind_rolled", _rolled_key_index(self.window_size))

    def _positions(self, rows: int, cols: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat grid positions (into ``Hp*Wp``) of each window's own tokens (nW, wh*ww) and rolled tokens (nW, R).

        Rolled token ``r`` of a window is what ``torch.roll`` by one of four half-window
        shifts brings into the window, selected by ``valid_ind_rolled``.
        """
        wh, ww = self.window_size
        eh, ew = self.expand_size
        hp, wp = rows * wh, cols * ww
        device = self.valid_ind_rolled.device
        ys = (torch.arange(rows, device=device) * wh).view(rows, 1, 1, 1) + torch.arange(wh, device=device).view(
            1, 1, wh, 1)  # (rows, 1, wh, 1)
        xs = (torch.arange(cols, device=device) * ww).view(1, cols, 1, 1) + torch.arange(ww, device=device).view(
            1, 1, 1, ww)  # (1, cols, 1, ww)
        own = (ys * wp + xs).reshape(rows * cols, wh * ww)
        # torch.roll(grid, s)[i] == grid[(i - s) mod n]
        shifted = [((ys - sy) % hp) * wp + (xs - sx) % wp
                   for sy, sx in ((-eh, -ew), (-eh, ew), (eh, -ew), (eh, ew))]
        rolled = torch.cat([p.reshape(rows * cols, wh * ww) for p in shifted], dim=1)
        return own, rolled[:, self.valid_ind_rolled]

    def _gather(self, tokens: torch.Tensor, windows: torch.Tensor, positions: torch.Tensor,
                area: int) -> torch.Tensor:
        """Tokens of some windows.

        Args:
            tokens: (T, B*Hp*Wp, C) frame-major token grid.
            windows: (m,) window ids over ``B*nW`` (batch-major).
            positions: (nW, S) flat positions within one frame's grid.
            area: ``Hp*Wp``.
        Returns:
            (m, heads, T, S, C/heads).
        """
        n_win = positions.size(0)
        index = ((windows // n_win)[:, None] * area + positions[windows % n_win]).reshape(-1)
        picked = tokens.index_select(1, index).view(tokens.size(0), windows.numel(), positions.size(1),
                                                    self.n_head, -1)
        return picked.permute(1, 3, 0, 2, 4)

    def _pool(self, grid: torch.Tensor) -> torch.Tensor:
        """(B, T, Hp, Wp, C) normalised grid -> (B, T, P, C) depthwise-pooled global tokens."""
        b, t, hp, wp, c = grid.shape
        pooled = self.pool_layer(grid.reshape(b * t, hp, wp, c).permute(0, 3, 1, 2))  # (BT, C, ph, pw)
        return pooled.flatten(2).transpose(1, 2).reshape(b, t, -1, c)

    def _split_heads(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, P, C) -> (B, heads, T, P, C/heads)."""
        b, t, p, c = tokens.shape
        return tokens.view(b, t, p, self.n_head, c // self.n_head).permute(0, 3, 1, 2, 4)

    def masked_windows(self, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Ids over ``B*nW`` of the windows where any local frame has a masked token, and of the others.

        Args:
            mask: (B, Tl, Ht, Wt, 1) 0/1 token mask of the local frames.
        Returns:
            (masked ids, unmasked ids), each 1-D int64. (One host synchronisation: the
            counts decide the shapes; every block of a stack shares the result.)
        """
        b, tl, h, w, _ = mask.shape
        wh, ww = self.window_size
        rows, cols = math.ceil(h / wh), math.ceil(w / ww)
        padded = F.pad(mask[..., 0], (0, cols * ww - w, 0, rows * wh - h))  # (B, Tl, Hp, Wp)
        win_mask = padded.reshape(b, tl, rows, wh, cols, ww).amax(dim=(3, 5))
        masked = win_mask.sum(dim=1).reshape(-1) != 0  # (B*nW,)
        return masked.nonzero(as_tuple=False).view(-1), (~masked).nonzero(as_tuple=False).view(-1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, frames: slice = slice(None),
                windows_per_chunk: int | None = None,
                windows: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Attend.

        Args:
            x: (B, T, Ht, Wt, C) normalised tokens.
            mask: (B, Tl, Ht, Wt, 1) 0/1 token mask of the Tl local frames.
            frames: the frames (along T) whose keys masked windows see.
            windows_per_chunk: windows gathered and attended at once, separately for
                masked and unmasked windows (None: all of a kind at once). Windows are
                independent, so this only bounds memory.
            windows: :meth:`masked_windows` of ``mask``, if already known.
        Returns:
            (B, T, Ht, Wt, C).
        """
        b, t, h, w, c = x.shape
        wh, ww = self.window_size
        rows, cols = math.ceil(h / wh), math.ceil(w / ww)
        pad_b, pad_r = rows * wh - h, cols * ww - w
        sel, rest = self.masked_windows(mask) if windows is None else windows
        hp, wp = rows * wh, cols * ww
        area = hp * wp
        # frame-major tokens (T, B*Hp*Wp, C) of the zero-padded grid
        padded = None  # the zero-padded grid, where it is made anyway
        if area >= _UNPADDED_PROJECTION_AREA * h * w:  # much padding: no products for it
            q, k, v = (self._project(layer, x, pad_b, pad_r) for layer in (self.query, self.key, self.value))
        else:  # little or no padding (720p: one column in 107): pad the input once rather than three outputs
            padded = _pad_grid(x, pad_b, pad_r)
            flat = padded.transpose(0, 1).reshape(t, b * area, c)
            q, k, v = self.query(flat), self.key(flat), self.value(flat)  # padding holds the biases
        own, rolled = self._positions(rows, cols)

        out = q.new_empty(t, b * area, c)  # frame-major like q
        if sel.numel():
            near = torch.cat([own, rolled], dim=1)  # (nW, S): own + rolled positions
            keyed = padded[:, frames] if padded is not None else _pad_grid(x[:, frames], pad_b, pad_r)
            pooled = self._pool(keyed)  # (B, Tk, P, C)
            k_pool = self._split_heads(self.key(pooled))  # (B, heads, Tk, P, ch)
            v_pool = self._split_heads(self.value(pooled))
            for part in _window_chunks(sel, windows_per_chunk):
                y = self._attend_masked(q, k[frames], v[frames], k_pool, v_pool, part, own, near, area)
                self._scatter(out, y, part, own, area)
        if rest.numel():
            for part in _window_chunks(rest, windows_per_chunk):
                self._scatter(out, self._attend_own(q, k, v, part, own, area), part, own, area)

        out = out.view(t, b, hp, wp, c).transpose(0, 1)[:, :, :h, :w]
        return self.proj(out)

    @staticmethod
    def _project(layer: nn.Linear, x: torch.Tensor, pad_b: int, pad_r: int) -> torch.Tensor:
        """A projection of the zero-padded token grid, computed on the grid only.

        Args:
            x: (B, T, Ht, Wt, C) tokens; ``pad_b`` rows and ``pad_r`` columns of zeros pad
                the grid to whole windows.
        Returns:
            (T, B*Hp*Wp, C) frame-major: ``layer`` of the tokens, its bias on the padding
            (what it makes of zeros, exactly), with no product computed for the padding.
        """
        b, t, h, w, _ = x.shape
        y = layer(x.transpose(0, 1))  # (T, B, Ht, Wt, C)
        full = layer.bias.to(y.dtype).expand(t, b, h + pad_b, w + pad_r, y.size(-1)).clone()
        full[:, :, :h, :w] = y
        return full.reshape(t, -1, y.size(-1))

    def _attend_masked(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, k_pool: torch.Tensor,
                       v_pool: torch.Tensor, windows: torch.Tensor, own: torch.Tensor, near: torch.Tensor,
                       area: int) -> torch.Tensor:
        """Masked windows: each query of the window (all T frames) attends to near and pooled keys of Tk frames.

        Args:
            q: (T, B*Hp*Wp, C); k, v: (Tk, B*Hp*Wp, C); k_pool, v_pool: (B, heads, Tk, P, ch).
            windows: (m,) window ids; own: (nW, N) and near: (nW, S) flat positions; area: ``Hp*Wp``.
        Returns:
            (m, heads, T, N, ch).
        """
        m, t, n_tok = windows.numel(), q.size(0), own.size(1)
        batch_of = windows // own.size(0)
        keys = torch.cat([self._gather(k, windows, near, area), k_pool[batch_of]], dim=3)  # (m, heads, Tk, S+P, ch)
        values = torch.cat([self._gather(v, windows, near, area), v_pool[batch_of]], dim=3)
        queries = self._gather(q, windows, own, area).reshape(m, self.n_head, t * n_tok, -1)
        y = F.scaled_dot_product_attention(queries, keys.flatten(2, 3), values.flatten(2, 3))
        return y.view(m, self.n_head, t, n_tok, -1)

    def _attend_own(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, windows: torch.Tensor,
                    own: torch.Tensor, area: int) -> torch.Tensor:
        """Unmasked windows, frame by frame, own tokens only: q, k, v (T, B*Hp*Wp, C) -> (m, heads, T, N, ch)."""
        m, t, n_tok = windows.numel(), q.size(0), own.size(1)
        q_own, k_own, v_own = (self._gather(a, windows, own, area).reshape(m, self.n_head * t, n_tok, -1)
                               for a in (q, k, v))
        y = F.scaled_dot_product_attention(q_own, k_own, v_own)
        return y.view(m, self.n_head, t, n_tok, -1)

    @staticmethod
    def _scatter(out: torch.Tensor, y: torch.Tensor, windows: torch.Tensor, own: torch.Tensor, area: int) -> None:
        """Write window results ``y`` (m, heads, T, N, ch) into ``out`` (T, B*Hp*Wp, C) in place."""
        n_win = own.size(0)
        index = ((windows // n_win)[:, None] * area + own[windows % n_win]).reshape(-1)
        t = y.size(2)
        values = y.permute(2, 0, 3, 1, 4).reshape(t, -1, out.size(-1))  # (T, m*N, C)
        out.index_copy_(1, index, values.to(out.dtype))


class SparseTransformerLayer(nn.Module):
    """One pre-norm block: sparse window attention, then the fusion feed-forward."""

    def __init__(self, dim: int, heads: int, window: Size2, pool: Size2,
                 kernel_size: Size2, stride: Size2, padding: Size2) -> None:
        super().__init__()
        self.attention = SparseWindowAttention(dim, heads, window, pool)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FusionFeedForward(dim, kernel_size, stride, padding)

    def forward(self, x: torch.Tensor, feat_size: Size2, mask: torch.Tensor, frames: slice,
                frames_per_chunk: int | None = None, windows_per_chunk: int | None = None,
                windows: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """(B, T, Ht, Wt, C) -> same; ``feat_size`` is the (h, w) of the folded feature map.

        ``frames_per_chunk`` goes to the feed-forward, ``windows_per_chunk`` and ``windows``
        (the masked / unmasked window ids) to the attention.
        """
        b, t, h, w, c = x.shape
        x = x + self.attention(self.norm1(x), mask, frames, windows_per_chunk=windows_per_chunk, windows=windows)
        mixed = self.mlp(self.norm2(x).reshape(b, t * h * w, c), feat_size, frames_per_chunk=frames_per_chunk)
        return x + mixed.view(b, t, h, w, c)


class SparseTransformerStack(nn.Module):
    """``depths`` transformer blocks; block ``i`` lets masked windows see frames ``i % t_dilation :: t_dilation``."""

    def __init__(self, dim: int = 512, n_head: int = 4, window_size: Size2 = (5, 9), pool_size: Size2 = (4, 4),
                 depths: int = 8, kernel_size: Size2 = (7, 7), stride: Size2 = (3, 3),
                 padding: Size2 = (3, 3)) -> None:
        super().__init__()
        self.depths = depths
        self.transformer = nn.Sequential(*[
            SparseTransformerLayer(dim, n_head, window_size, pool_size, kernel_size, stride, padding)
            for _ in range(depths)
        ])

    def forward(self, x: torch.Tensor, feat_size: Size2, local_mask: torch.Tensor,
                t_dilation: int = 2, frames_per_chunk: int | None = None,
                windows_per_chunk: int | None = None) -> torch.Tensor:
        """Run all blocks.

        Args:
            x: (B, T, Ht, Wt, C) tokens.
            feat_size: (h, w) of the feature map the tokens were cut from.
            local_mask: (B, Tl, Ht, Wt, 1) 0/1 token mask of the local frames.
            t_dilation: temporal stride of the keys of masked windows; must divide ``depths``.
            frames_per_chunk: frames per chunk of the feed-forward layers (None: all).
            windows_per_chunk: windows per chunk of the attention (None: all).
        Returns:
            (B, T, Ht, Wt, C).
        """
        if t_dilation < 1 or self.depths % t_dilation:
            raise ValueError(f"t_dilation {t_dilation} must divide the {self.depths} transformer blocks")
        # which windows are masked depends on the mask only: found once for every block
        windows = self.transformer[0].attention.masked_windows(local_mask) if self.depths else None
        for i, block in enumerate(self.transformer):
            x = block(x, feat_size, local_mask, slice(i % t_dilation, None, t_dilation),
                      frames_per_chunk=frames_per_chunk, windows_per_chunk=windows_per_chunk, windows=windows)
        return x
