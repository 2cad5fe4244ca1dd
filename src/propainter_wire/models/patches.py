"""Overlapping patches: cut a feature map into token rows, and sum token rows back onto it.

``unfold_patches(x)`` equals ``F.unfold(x, ...).transpose(1, 2)`` and
``fold_patches(rows, size)`` equals ``F.fold(rows.transpose(1, 2), size, ...)``, up to
the order of float summation, but in the token-major layout the transformer works in:
(n, L, C*kh*kw) rows, one per patch, with the C*kh*kw values ordered channel, then
kernel row, then kernel column (``F.unfold``'s order).

Why not ``F.fold``/``F.unfold``: they work on the transposed (n, C*kh*kw, L) layout, so
every call pays a transposing copy of the largest tensor of the block, and CUDA's
``col2im`` kernel is slow for 7x7 patches at stride 3 (about 150 us per 720p frame
on an H100). Here:

- unfolding is one strided view of the zero-padded map, copied once into token rows;
- folding splits each kernel offset ``k = stride*a + r`` into a block offset ``a`` and a
  remainder ``r``: patch ``(ty, tx)``'s values with block offsets ``(a, b)`` land on
  block ``(ty + a, tx + b)`` of a canvas cut into stride x stride blocks, so the whole
  fold is ceil(kh/sh) * ceil(kw/sw) slice additions (9 for 7x7 at stride 3), each
  token value added exactly once. Half-precision rows are summed in float32 and the
  map is rounded once, as ``col2im`` does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

Size2 = tuple[int, int]


def patch_grid(size: Size2, kernel: Size2, stride: Size2, padding: Size2) -> Size2:
    """(rows, cols) of patches that ``F.unfold`` cuts from a ``size`` map."""
    return tuple((n + 2 * p - k) // s + 1 for n, k, s, p in zip(size, kernel, stride, padding, strict=True))


def unfold_patches(x: torch.Tensor, kernel: Size2, stride: Size2, padding: Size2) -> torch.Tensor:
    """Patches of a feature map as token rows.

    Args:
        x: (n, C, h, w) feature map.
        kernel, stride, padding: patch geometry (zero padding), as ``F.unfold``.
    Returns:
        (n, L, C*kh*kw) contiguous, L = rows * cols of :func:`patch_grid`, row-major.
    """
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    gh, gw = patch_grid((h, w), kernel, stride, padding)
    padded = F.pad(x, (pw, pw, ph, ph)) if ph or pw else x
    s_n, s_c, s_h, s_w = padded.stride()
    view = padded.as_strided((n, gh, gw, c, kh, kw), (s_n, sh * s_h, sw * s_w, s_c, s_h, s_w),
                             padded.storage_offset())
    return view.reshape(n, gh * gw, c * kh * kw).contiguous()  # (a 1x1 kernel's reshape is only a view)


def fold_patches(rows: torch.Tensor, size: Size2, kernel: Size2, stride: Size2, padding: Size2) -> torch.Tensor:
    """Sum token rows back onto a feature map (overlaps add up), the inverse layout of :func:`unfold_patches`.

    Args:
        rows: (n, L, C*kh*kw) token rows, L = rows * cols of :func:`patch_grid` for ``size``.
        size: (h, w) of the map.
        kernel, stride, padding: patch geometry, as ``F.fold``.
    Returns:
        (n, C, h, w) in ``rows``' dtype (half inputs are accumulated in float32).
    """
    n, count, width = rows.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    h, w = size
    gh, gw = patch_grid(size, kernel, stride, padding)
    c = width // (kh * kw)
    if c * kh * kw != width or gh * gw != count:
        raise ValueError(f"rows {tuple(rows.shape)} do not match {gh}x{gw} patches of {kh}x{kw} on a {h}x{w} map")
    ah, aw = math.ceil(kh / sh), math.ceil(kw / sw)  # block offsets a patch spans
    blocks_h, blocks_w = gh + ah - 1, gw + aw - 1
    acc = torch.float32 if rows.dtype in (torch.float16, torch.bfloat16) else rows.dtype
    if blocks_h * sh < ph + h or blocks_w * sw < pw + w:
        # the patches leave the map's last rows or columns uncovered beyond the canvas (never for 7x7 at
        # stride 3): col2im, on a float32 copy of half inputs
        return F.fold(rows.transpose(1, 2).to(acc), size, kernel, padding=padding, stride=stride).to(rows.dtype)
    # canvas of stride x stride blocks: (n, blocks_h, blocks_w, C, sh, sw), padded-map pixel (sh*i + r, sw*j + q)
    canvas = torch.zeros(n, blocks_h, blocks_w, c, sh, sw, dtype=acc, device=rows.device)
    values = rows.view(n, gh, gw, c, kh, kw)
    for a in range(ah):
        span_h = min(sh, kh - a * sh)  # kernel rows a*sh .. a*sh + span_h - 1
        for b in range(aw):
            span_w = min(sw, kw - b * sw)
            canvas[:, a:a + gh, b:b + gw, :, :span_h, :span_w].add_(
                values[:, :, :, :, a * sh:a * sh + span_h, b * sw:b * sw + span_w])
    image = canvas.permute(0, 3, 1, 4, 2, 5).reshape(n, c, blocks_h * sh, blocks_w * sw)
    return image[:, :, ph:ph + h, pw:pw + w].to(rows.dtype)


# ---------------------------------------------------------------------------
# a linear layer on patch rows, as one convolution
# ---------------------------------------------------------------------------
def linear_on_patches(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, kernel: Size2,
                      stride: Size2, padding: Size2) -> torch.Tensor:
    """``F.linear(unfold_patches(x), weight, bias)`` without the patch rows: one strided convolution.

    A linear layer on unfolded patches is a convolution whose kernel is the layer's weight
    read as (out, C, kh, kw) (the rows' channel, kernel row, kernel column order). The
    (n, L, C*kh*kw) rows, kh*kw times the map's size, are never written.

    Args:
        x: (n, C, h, w) feature map.
        weight: (out, C*kh*kw); bias: (out,) or None.
    Returns:
        (n, L, out) contiguous token rows, L as in :func:`patch_grid`.
    """
    n, c = x.shape[:2]
    out = F.conv2d(x, weight.view(weight.shape[0], c, *kernel), bias, stride=stride, padding=padding)
    # (a view when the map came out channels-last, as from a channels-last input; else one copy)
    return out.permute(0, 2, 3, 1).reshape(n, -1, out.shape[1]).contiguous()


def fold_linear(tokens: torch.Tensor, grid: Size2, weight: torch.Tensor, bias: torch.Tensor | None, size: Size2,
                kernel: Size2, stride: Size2, padding: Size2) -> torch.Tensor:
    """``fold_patches(F.linear(tokens, weight, bias), size)`` without the patch rows: one transposed convolution.

    Each token's output row is a (C, kh, kw) patch added onto the map, which is what a
    transposed convolution with the weight read as (in, C, kh, kw) does; the bias, the
    same patch for every token, folds to a fixed map (its sum over the patches covering
    each pixel), added after. Sums accumulate in float32 for half inputs, as in
    :func:`fold_patches`, and are rounded once (before the bias is added).

    Args:
        tokens: (n, L, in) with L = grid[0] * grid[1] tokens, row-major over the patch grid.
        grid: (rows, cols) of :func:`patch_grid` for ``size``.
        weight: (C*kh*kw, in); bias: (C*kh*kw,) or None.
        size: (h, w) of the map.
    Returns:
        (n, C, h, w) (channels-last in memory).
    """
    n, count, width = tokens.shape
    kh, kw = kernel
    c = weight.shape[0] // (kh * kw)
    # the transposed convolution's output is (rows - 1) * stride - 2 * padding + kernel: pad it to the map
    extra = tuple(s - ((g - 1) * st - 2 * p + k) for s, g, st, p, k in zip(size, grid, stride, padding, kernel,
                                                                          strict=True))
    if count != grid[0] * grid[1] or not all(0 <= e < st for e, st in zip(extra, stride, strict=True)):
        raise ValueError(f"{count} tokens do not make the {grid} patch grid of a {size} map")
    kernel_map = weight.t().unflatten(1, (c, kh, kw))  # (in, C, kh, kw), a view
    planes = tokens.view(n, grid[0], grid[1], width).permute(0, 3, 1, 2)  # (n, in, rows, cols), channels-last
    out = F.conv_transpose2d(planes, kernel_map, stride=stride, padding=padding, output_padding=extra)
    if bias is not None:
        ones = torch.ones(1, 1, *grid, dtype=bias.dtype, device=bias.device)
        bias_map = F.conv_transpose2d(ones, bias.view(1, c, kh, kw), stride=stride, padding=padding,
                                      output_padding=extra)  # (1, C, h, w): the bias summed per pixel
        out = out + bias_map.to(out.dtype)
    return out


def patch_coverage(size: Size2, kernel: Size2, stride: Size2, padding: Size2, device: torch.device,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """How many patches cover each pixel of a ``size`` map: (1, 1, h, w), ``fold_patches`` of ones."""
    grid = patch_grid(size, kernel, stride, padding)
    ones = torch.ones(1, grid[0] * grid[1], math.prod(kernel), dtype=torch.float32, device=device)
    return fold_patches(ones, size, kernel, stride, padding).to(dtype)

