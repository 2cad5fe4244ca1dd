"""RAFT optical flow ('things' configuration), checkpoint-compatible with ``raft-things.pth``.

Teed & Deng, "RAFT: Recurrent All-Pairs Field Transforms for Optical Flow",
ECCV 2020, as bundled with ProPainter. Only the full-size model is provided:
256-d instance-normalised feature encoder ``fnet``, batch-normalised context
encoder ``cnet`` (128 hidden + 128 context channels), 4 correlation levels of
radius 4 and the basic update block with convex 8x upsampling.

Images enter in [-1, 1] (ProPainter feeds its frames scaled that way and the
network uses them as they come). Flows are (N, 2, H, W) in pixels of the input
resolution, channel 0 = x (right), channel 1 = y (down); the flow of image 1
towards image 2 says where each image-1 pixel is found in image 2.

Sizes: the reference needs H and W multiples of 8 and returns NaN when the
coarsest correlation level is a single pixel high or wide. Here inputs are
replicate-padded when (and only when) needed and the flow is cropped back.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..runtime.cuda_graph import GraphCache
from .corr import DEFAULT_CORR_BUDGET_BYTES, CorrFn, all_pairs_bytes, build_corr, choose_corr_mode

HIDDEN_DIM = 128
CONTEXT_DIM = 128
FEATURE_DIM = 256
CORR_LEVELS = 4
CORR_RADIUS = 4
DOWNSAMPLE = 8
FUSED_EPILOGUE_MODES = ("1", "update", "0")  # see RAFT.use_fused_epilogues


# ---------------------------------------------------------------------------
# encoders
# ---------------------------------------------------------------------------
class InstanceNorm(nn.Module):
    """Instance normalisation without affine parameters or running statistics (no state), float32 out.

    The same function as ``nn.InstanceNorm2d(channels)`` (which autocast also runs in
    float32). On a GPU it is computed with one reduction and one fused multiply-add:
    the library form runs it as a training-mode batch norm over N*C "channels", which
    spreads a 64-channel, 360x640 map over too few thread blocks (0.3 ms per call at
    720p on an H100). On the CPU the library form is the faster one and is used.
    """

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, H, W) float32, each (n, c) map at zero mean and unit (biased) variance."""
        if x.device.type == "cpu":
            with torch.autocast("cpu", enabled=False):
                return F.instance_norm(x.float(), eps=self.eps)
        x = x.float()
        var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, unbiased=False)  # (N, C, 1, 1)
        scale = torch.rsqrt(var + self.eps)
        return torch.addcmul(-mean * scale, x, scale)


def _norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return InstanceNorm()  # no affine, no running stats: no state
    raise ValueError(f"unsupported norm {kind!r}")


class ResidualBlock(nn.Module):
    """Two 3x3 conv + norm + ReLU with a skip; strided blocks project the skip with 1x1 conv + norm."""

    def __init__(self, in_channels: int, out_channels: int, norm: str, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.norm1 = _norm_layer(norm, out_channels)
        self.norm2 = _norm_layer(norm, out_channels)
        self.downsample = None
        if stride != 1:
            # the checkpoint stores this norm twice (as norm3 and downsample.1): one shared module
            self.norm3 = _norm_layer(norm, out_channels)
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride), self.norm3)
        self.fused_epilogues = True  # batch norm folded into the convolutions where conv_relu fuses

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H/stride, W/stride)."""
        if self.fused_epilogues and _foldable(self.norm1) and _fused_epilogue(x, self.conv1):
            y = conv_relu(self.conv1, x, norm=self.norm1)
            y = conv_relu(self.conv2, y, norm=self.norm2)
            skip = x if self.downsample is None else F.conv2d(x, *_fold_norm(self.downsample[0], self.norm3),
                                                              self.downsample[0].stride)
            return torch.relu_(skip + y)
        y = self.relu(self.norm1(self.conv1(x)))
        y = self.relu(self.norm2(self.conv2(y)))
        skip = x if self.downsample is None else self.downsample(x)
        return self.relu(skip + y)


class BasicEncoder(nn.Module):
    """7x7/2 stem and three residual stages (64, 96/2, 128/2): (N, 3, H, W) -> (N, out, H/8, W/8)."""

    def __init__(self, output_dim: int, norm: str):
        super().__init__()
        self.norm1 = _norm_layer(norm, 64)
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3)  # (N, 64, H/2, W/2)
        self.relu1 = nn.ReLU(inplace=True)
        widths = ((64, 1), (96, 2), (128, 2))
        channels = 64
        for index, (width, stride) in enumerate(widths, start=1):
            stage = nn.Sequential(ResidualBlock(channels, width, norm, stride), ResidualBlock(width, width, norm))
            self.add_module(f"layer{index}", stage)
            channels = width
        self.conv2 = nn.Conv2d(channels, output_dim, kernel_size=1)
        self.fused_epilogues = True  # see ResidualBlock
        if self.conv1.weight.device.type != "meta":  # (built on meta, a checkpoint fills every tensor)
            self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (N, 3, H, W) in [-1, 1] -> (N, output_dim, H/8, W/8)."""
        if self.fused_epilogues and _foldable(self.norm1):
            x = conv_relu(self.conv1, _in_weight_dtype(images, self.conv1), norm=self.norm1)  # (N, 64, H/2, W/2)
        else:
            x = self.relu1(self.norm1(self.conv1(images)))  # (N, 64, H/2, W/2)
        x = self.layer1(x)  # (N, 64, H/2, W/2)
        x = self.layer2(x)  # (N, 96, H/4, W/4)
        x = self.layer3(x)  # (N, 128, H/8, W/8)
        return self.conv2(x)


# ---------------------------------------------------------------------------
# fused convolution epilogues (GPU, half precision)
# ---------------------------------------------------------------------------
def _fused_epilogue(x: torch.Tensor, conv: nn.Conv2d) -> bool:
    """Whether ``conv`` on ``x`` may add its bias (and a ReLU) inside cuDNN's kernel.

    PyTorch's cuDNN convolution adds the bias in a second pass over the output, and a
    ReLU is a third: on RAFT's 1/8-scale maps at 1080p those passes cost as much as a
    third of each convolution (measured on an H100). Used on CUDA tensors in
    a half precision whose layer weights are stored in that dtype (RAFT under fp16/bf16),
    for output channels in multiples of 8 (126 channels ran no faster fused); elsewhere
    the library layers run, so float32 results are untouched.
    """
    return (x.is_cuda and x.dtype in (torch.float16, torch.bfloat16) and conv.weight.dtype == x.dtype
            and conv.out_channels % 8 == 0 and torch.backends.cudnn.enabled)


def _in_weight_dtype(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``x`` in the dtype of ``conv``'s half-precision weights on a GPU (the cast autocast makes for the
    convolution anyway); unchanged otherwise."""
    if x.is_cuda and conv.weight.dtype in (torch.float16, torch.bfloat16):
        return x.to(conv.weight.dtype)
    return x


def fused_conv_relu_check(device: torch.device, dtype: torch.dtype) -> str | None:
    """Whether cuDNN's fused convolution + bias + ReLU works on ``device`` in ``dtype``: None, or
    the problem in one line (an error, or a result away from float64 beyond the dtype's rounding).

    A small NHWC layer of RAFT's kind (64 -> 64 channels, 3x3, 24x40 pixels). Used by the engine
    before it lets RAFT take the fused path, and by ``propainter-wire doctor``.
    """
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 64, 24, 40, generator=gen)
    weight = torch.randn(64, 64, 3, 3, generator=gen) / 24
    bias = torch.randn(64, generator=gen)
    exact = F.relu(F.conv2d(x.double(), weight.double(), bias.double(), padding=1))
    try:
        with torch.no_grad():
            got = torch.cudnn_convolution_relu(
                x.to(device, dtype).contiguous(memory_format=torch.channels_last),
                weight.to(device, dtype).contiguous(memory_format=torch.channels_last),
                bias.to(device, dtype), (1, 1), (1, 1), (1, 1), 1)
        error = (got.double().cpu() - exact).abs().max().item()
    except (RuntimeError, AttributeError) as exc:  # no fused engine for this GPU / cuDNN, or an old torch
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}"
    bound = 4 * torch.finfo(dtype).eps * exact.abs().max().item()  # a few roundings of the largest value
    if not error <= bound:
        return f"fused result off by {error:.3g} (bound {bound:.3g})"
    return None


def _foldable(norm: nn.Module) -> bool:
    """A batch norm in inference mode: an affine map per channel that a convolution can absorb."""
    return isinstance(norm, nn.BatchNorm2d) and not norm.training and norm.running_var is not None


def _fold_norm(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of ``norm(conv(x))`` as one convolution, in the convolution's dtype (computed in
    float32, or float64 for float64 layers, from the stored values; the weight keeps its memory format)."""
    exact = torch.promote_types(conv.weight.dtype, torch.float32)
    scale = norm.weight.to(exact) * torch.rsqrt(norm.running_var.to(exact) + norm.eps)  # (C_out,)
    weight = (conv.weight.to(exact) * scale[:, None, None, None]).to(conv.weight.dtype)
    bias = conv.bias.to(exact) if conv.bias is not None else torch.zeros_like(scale)
    return weight, ((bias - norm.running_mean.to(exact)) * scale + norm.bias.to(exact)).to(conv.weight.dtype)


def conv_relu(conv: nn.Conv2d, x: torch.Tensor, fused: bool = True,
              norm: nn.BatchNorm2d | None = None) -> torch.Tensor:
    """``relu(conv(x))``, or ``relu(norm(conv(x)))`` with an inference batch norm: (N, C_in, H, W) ->
    (N, C_out, H', W').

    With ``fused``, one cuDNN kernel with the bias and ReLU in its epilogue where
    :func:`_fused_epilogue` allows (the sum is rounded to the half dtype once instead of
    twice; a norm is folded into the weights first); the library layers otherwise.
    """
    if fused and _fused_epilogue(x, conv):
        weight, bias = (conv.weight, conv.bias) if norm is None else _fold_norm(conv, norm)
        return torch.cudnn_convolution_relu(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)
    return F.relu(conv(x) if norm is None else norm(conv(x)))


# ---------------------------------------------------------------------------
# update block
# ---------------------------------------------------------------------------
class BasicMotionEncoder(nn.Module):
    """Correlation features + current flow -> 128 motion channels (126 learned + the flow itself)."""

    def __init__(self, corr_channels: int = CORR_LEVELS * (2 * CORR_RADIUS + 1) ** 2):
        super().__init__()
        self.convc1 = nn.Conv2d(corr_channels, 256, 1)
        self.convc2 = nn.Conv2d(256, 192, kernel_size=3, padding=1)
        self.convf1 = nn.Conv2d(2, 128, kernel_size=7, padding=3)
        self.convf2 = nn.Conv2d(128, 64, kernel_size=3, padding=1)
        self.conv = nn.Conv2d(192 + 64, 128 - 2, 3, padding=1)
        self.fused_epilogues = True  # see conv_relu

    def forward(self, flow: torch.Tensor, corr: torch.Tensor) -> torch.Tensor:
        """flow (N, 2, h, w) pixels at 1/8 scale, corr (N, 324, h, w) -> (N, 128, h, w)."""
        fused = self.fused_epilogues
        c = conv_relu(self.convc1, _in_weight_dtype(corr, self.convc1), fused)  # (N, 256, h, w)
        c = conv_relu(self.convc2, c, fused)  # (N, 192, h, w)
        f = conv_relu(self.convf1, _in_weight_dtype(flow, self.convf1), fused)  # (N, 128, h, w)
        f = conv_relu(self.convf2, f, fused)  # (N, 64, h, w)
        motion = F.relu(self.conv(torch.cat((c, f), dim=1)))  # (N, 126, h, w)
        return torch.cat((motion, flow.to(motion.dtype)), dim=1)


@dataclass(frozen=True)
class GRUContext:
    """What the GRU's convolutions make of the context features, computed once per flow.

    The GRU's input is [hidden, context, motion] and the context is the same at every
    refinement step, so each gate convolution is split by input channels:
    conv([h, c, m], W) = conv([h, m], W_hm) + conv(c, W_c). Per direction ``1``/``2``:
    ``gates`` (N, 256, h, w) = the context terms of the update and reset gates,
    ``candidate`` (N, 128, h, w) = that of the candidate, and the [hidden, motion] weights.
    """

    gates: dict[str, torch.Tensor]
    candidate: dict[str, torch.Tensor]
    gate_weights: dict[str, tuple[torch.Tensor, torch.Tensor | None]]  # (weight (256, 256, kh, kw), bias (256,))
    candidate_weights: dict[str, tuple[torch.Tensor, torch.Tensor | None]]  # (weight (128, 256, kh, kw), bias (128,))


class SepConvGRU(nn.Module):
    """Convolutional GRU run twice: once with 1x5 kernels (horizontal), then 5x1 (vertical).

    The checkpoint's layers (``conv{z,r,q}{1,2}``) read [hidden (128), context (128),
    motion (128)]; :meth:`prepare` splits off the context's part once per flow (see
    :class:`GRUContext`) and fuses the update and reset gates into one convolution. On a
    GPU in half precision the biases join the context's terms there too (one pass over
    each output less per step; see :func:`_fused_epilogue`); the weights' bias is None then.
    """

    def __init__(self, hidden_dim: int = HIDDEN_DIM, input_dim: int = 256):
        super().__init__()
        self.hidden_dim = hidden_dim
        both = hidden_dim + input_dim
        for suffix, kernel, pad in (("1", (1, 5), (0, 2)), ("2", (5, 1), (2, 0))):
            for gate in ("z", "r", "q"):
                self.add_module(f"conv{gate}{suffix}", nn.Conv2d(both, hidden_dim, kernel, padding=pad))
        self.fused_epilogues = True  # fold the biases into the context's terms where _fused_epilogue allows

    def prepare(self, context: torch.Tensor) -> GRUContext:
        """context (N, 128, h, w) -> its precomputed terms (the context must be the GRU's input channels
        ``hidden_dim .. 2 * hidden_dim``, as in the checkpoint's layout)."""
        h = self.hidden_dim
        ctx = slice(h, 2 * h)
        gates, candidate, gate_weights, candidate_weights = {}, {}, {}, {}
        for suffix in ("1", "2"):
            conv_z, conv_r, conv_q = (getattr(self, f"conv{g}{suffix}") for g in ("z", "r", "q"))
            zr = torch.cat((conv_z.weight, conv_r.weight))  # (256, 384, kh, kw)
            zr_bias = torch.cat((conv_z.bias, conv_r.bias))  # (256,)
            # biases folded into the context's terms (GPU, half precision), else added by the convolutions
            fold = self.fused_epilogues and _fused_epilogue(context, conv_z)
            gates[suffix] = F.conv2d(context, zr[:, ctx], zr_bias if fold else None, padding=conv_z.padding)
            candidate[suffix] = F.conv2d(context, conv_q.weight[:, ctx], conv_q.bias if fold else None,
                                         padding=conv_q.padding)
            layout = _memory_format(conv_z.weight)  # the split weights keep the layer's memory format
            gate_weights[suffix] = (torch.cat((zr[:, :h], zr[:, 2 * h:]), dim=1).contiguous(memory_format=layout),
                                    None if fold else zr_bias)
            candidate_weights[suffix] = (
                torch.cat((conv_q.weight[:, :h], conv_q.weight[:, 2 * h:]), dim=1).contiguous(memory_format=layout),
                None if fold else conv_q.bias)
        return GRUContext(gates, candidate, gate_weights, candidate_weights)

    def _step(self, hidden: torch.Tensor, motion: torch.Tensor, prepared: GRUContext, suffix: str) -> torch.Tensor:
        padding = getattr(self, f"convz{suffix}").padding
        weight, bias = prepared.gate_weights[suffix]
        # update and reset gates in one convolution (2 x 128 channels) and one sigmoid
        gates = F.conv2d(torch.cat((hidden, motion), dim=1), weight, bias, padding=padding) + prepared.gates[suffix]
        update, reset = torch.sigmoid(gates).split(self.hidden_dim, dim=1)
        weight, bias = prepared.candidate_weights[suffix]
        candidate = F.conv2d(torch.cat((reset * hidden, motion), dim=1), weight, bias, padding=padding)
        candidate = torch.tanh(candidate + prepared.candidate[suffix])
        return torch.lerp(hidden, candidate.to(hidden.dtype), update.to(hidden.dtype))  # (1 - z) h + z q, one kernel

    def forward(self, hidden: torch.Tensor, motion: torch.Tensor, prepared: GRUContext) -> torch.Tensor:
        """hidden (N, 128, h, w), motion (N, 128, h, w), the context's terms -> new hidden (N, 128, h, w)."""
        return self._step(self._step(hidden, motion, prepared, "1"), motion, prepared, "2")


class FlowHead(nn.Module):
    """Hidden state -> flow increment (N, 2, h, w) in pixels at 1/8 scale."""

    def __init__(self, input_dim: int = HIDDEN_DIM, hidden_dim: int = 256):
        super().__init__()
        self.conv1 = nn.Conv2d(input_dim, hidden_dim, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(hidden_dim, 2, kernel_size=3, padding=1)
        self.fused_epilogues = True  # see conv_relu

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden (N, 128, h, w) -> (N, 2, h, w)."""
        return self.conv2(conv_relu(self.conv1, hidden, self.fused_epilogues))


class BasicUpdateBlock(nn.Module):
    """One refinement step: motion encoding, GRU, flow increment and (optionally) the upsampling mask."""

    def __init__(self, hidden_dim: int = HIDDEN_DIM, context_dim: int = CONTEXT_DIM):
        super().__init__()
        self.encoder = BasicMotionEncoder()
        self.gru = SepConvGRU(hidden_dim, input_dim=context_dim + 128)
        self.flow_head = FlowHead(input_dim=hidden_dim, hidden_dim=256)
        self.mask = nn.Sequential(
            nn.Conv2d(hidden_dim, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 9 * DOWNSAMPLE * DOWNSAMPLE, 1),
        )
        self.fused_epilogues = True  # see conv_relu

    def forward(self, hidden: torch.Tensor, context: GRUContext, corr: torch.Tensor, flow: torch.Tensor,
                with_mask: bool = True) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """
        Args:
            hidden: (N, 128, h, w); context: ``self.gru.prepare`` of the (N, 128, h, w) context features;
            corr: (N, 324, h, w); flow: (N, 2, h, w) current flow in pixels at 1/8 scale.
            with_mask: compute the upsampling mask (only the last step's is used).
        Returns:
            hidden (N, 128, h, w), mask (N, 576, h, w) logits scaled by 0.25 or None, delta (N, 2, h, w).
        """
        motion = self.encoder(flow, corr)  # (N, 128, h, w)
        hidden = self.gru(hidden, motion.to(hidden.dtype), context)
        delta = self.flow_head(hidden)
        mask = None
        if with_mask:
            mask = 0.25 * self.mask[2](conv_relu(self.mask[0], hidden, self.fused_epilogues))
        return hidden, mask, delta


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def coords_grid(batch: int, height: int, width: int, device: torch.device) -> torch.Tensor:
    """(batch, 2, height, width) float32 pixel coordinates, channel 0 = x, channel 1 = y."""
    ys, xs = torch.meshgrid(torch.arange(height, device=device), torch.arange(width, device=device), indexing="ij")
    return torch.stack((xs, ys)).float().unsqueeze(0).expand(batch, 2, height, width).contiguous()


def convex_upsample(flow: torch.Tensor, mask: torch.Tensor, factor: int = DOWNSAMPLE) -> torch.Tensor:
    """Upsample flow by a learned convex combination of each pixel's 3x3 neighbourhood.

    Args:
        flow: (N, 2, h, w) pixels at 1/factor scale.
        mask: (N, 9*factor*factor, h, w) logits.
    Returns:
        (N, 2, factor*h, factor*w) pixels at full scale, float32.
    """
    n, _, h, w = flow.shape
    weights = torch.softmax(mask.float().reshape(n, 1, 9, factor, factor, h, w), dim=2)
    neighbours = F.unfold(factor * flow.float(), (3, 3), padding=1).view(n, 2, 9, 1, 1, h, w)
    fine = (weights * neighbours).sum(dim=2)  # (N, 2, factor [dy], factor [dx], h, w)
    return fine.permute(0, 1, 4, 2, 5, 3).reshape(n, 2, factor * h, factor * w)


def _memory_format(weight: torch.Tensor) -> torch.memory_format:
    """``torch.channels_last`` for a 4-D weight stored that way, else ``torch.contiguous_format``."""
    if not weight.is_contiguous() and weight.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


@dataclass(frozen=True)
class _Padding:
    """Replicate padding that makes a size acceptable to RAFT, and the crop that undoes it."""

    top: int = 0
    bottom: int = 0
    left: int = 0
    right: int = 0

    @classmethod
    def for_size(cls, height: int, width: int, levels: int = CORR_LEVELS) -> _Padding:
        # multiples of 8, and the coarsest pyramid level (1/8 then levels-1 halvings) >= 2 pixels
        least = DOWNSAMPLE * 2**levels

        def split(size: int) -> tuple[int, int]:
            target = max(-(-size // DOWNSAMPLE) * DOWNSAMPLE, least)
            extra = target - size
            return extra // 2, extra - extra // 2

        top, bottom = split(height)
        left, right = split(width)
        return cls(top, bottom, left, right)

    @property
    def needed(self) -> bool:
        return any((self.top, self.bottom, self.left, self.right))

    def pad(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, H + top + bottom, W + left + right)."""
        if not self.needed:
            return images
        return F.pad(images, (self.left, self.right, self.top, self.bottom), mode="replicate")

    def crop(self, flow: torch.Tensor) -> torch.Tensor:
        """(N, 2, H_padded, W_padded) -> (N, 2, H, W)."""
        if not self.needed:
            return flow
        h, w = flow.shape[-2:]
        return flow[..., self.top:h - self.bottom, self.left:w - self.right]


# ---------------------------------------------------------------------------
# the network
# ---------------------------------------------------------------------------
class RAFT(nn.Module):
    """RAFT 'things' model. Load weights with ``propainter_wire.weights.load_raft``.

    Args:
        corr_budget_bytes: memory allowed for all-pairs correlation volumes; with
            ``corr='auto'`` larger problems use the on-demand local correlation.
    """

    def __init__(self, corr_budget_bytes: int = DEFAULT_CORR_BUDGET_BYTES):
        super().__init__()
        self.hidden_dim = HIDDEN_DIM
        self.context_dim = CONTEXT_DIM
        self.corr_levels = CORR_LEVELS
        self.corr_radius = CORR_RADIUS
        self.corr_budget_bytes = corr_budget_bytes
        self.fnet = BasicEncoder(output_dim=FEATURE_DIM, norm="instance")
        self.cnet = BasicEncoder(output_dim=HIDDEN_DIM + CONTEXT_DIM, norm="batch")
        self.update_block = BasicUpdateBlock(HIDDEN_DIM, CONTEXT_DIM)

    def use_fused_epilogues(self, mode: str = "1") -> None:
        """Which convolutions take their bias, batch norm and ReLU inside cuDNN's kernels on a GPU in half
        precision (see :func:`conv_relu`): ``"1"`` the update block's and the context encoder's (the
        default), ``"update"`` the update block's only, ``"0"`` none (the library layers). The values of
        the tuning switch ``fused_epilogues`` (docs/tuning.md)."""
        if mode not in FUSED_EPILOGUE_MODES:
            raise ValueError(f"fused epilogue mode must be one of {FUSED_EPILOGUE_MODES}, got {mode!r}")
        for module in self.modules():
            if hasattr(module, "fused_epilogues"):
                in_encoder = isinstance(module, (BasicEncoder, ResidualBlock))
                module.fused_epilogues = mode == "1" or (mode == "update" and not in_encoder)

    def encode_features(self, images: torch.Tensor) -> torch.Tensor:
        """images (N, 3, H, W) in [-1, 1], H and W multiples of 8 -> features (N, 256, H/8, W/8).

        float32, or the autocast dtype under autocast (the correlations compute in float32
        from these values; half-valued features let the GPU volume use exact TF32 products).
        """
        return self.fnet(images)

    def encode_context(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images (N, 3, H, W) in [-1, 1] -> initial hidden state (N, 128, H/8, W/8) in (-1, 1)
        and context (N, 128, H/8, W/8) >= 0 (in the autocast dtype when autocast is on)."""
        hidden, context = self.cnet(images).split((self.hidden_dim, self.context_dim), dim=1)
        return torch.tanh(hidden), torch.relu(context)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-frame encodings: (features, hidden, context) as in the two methods above."""
        return (self.encode_features(images), *self.encode_context(images))

    def refine(self, corr_fn: CorrFn, hidden: torch.Tensor, context: torch.Tensor, iters: int) -> torch.Tensor:
        """Run the recurrent updates from zero flow.

        Args:
            corr_fn: correlation lookup, (N, 2, h, w) positions -> (N, 324, h, w).
            hidden, context: (N, 128, h, w) from :meth:`encode` of the first image of each pair.
            iters: number of updates (>= 1).
        Returns:
            (N, 2, 8h, 8w) float32 flow in pixels at input scale (the convex-upsampled last estimate).
        """
        if iters < 1:
            raise ValueError(f"iters must be >= 1, got {iters}")
        n, _, h, w = hidden.shape
        # the recurrent state in the memory format of the update block's convolutions (NHWC when their
        # weights are channels-last: cuDNN then reorders nothing between the 20 steps)
        layout = _memory_format(self.update_block.encoder.convc2.weight)
        hidden, context = hidden.contiguous(memory_format=layout), context.contiguous(memory_format=layout)
        start = coords_grid(n, h, w, hidden.device).contiguous(memory_format=layout)  # (N, 2, h, w)
        target = start.clone()
        mask = None
        prepared = self.update_block.gru.prepare(context)  # the context's share of the GRU, once
        for step in range(iters):
            target = target.detach()
            corr = corr_fn(target)  # (N, 324, h, w) fp32
            hidden, mask, delta = self.update_block(hidden, prepared, corr, target - start,
                                                    with_mask=step == iters - 1)
            target = target + delta.float()
        return convex_upsample(target - start, mask)

    def forward(self, image1: torch.Tensor, image2: torch.Tensor, iters: int = 20, corr: str = "auto") -> torch.Tensor:
        """Flow from image1 to image2.

        Args:
            image1, image2: (N, 3, H, W) in [-1, 1], any H, W >= 1.
            iters: refinement iterations (ProPainter uses 20).
            corr: 'auto' (by ``corr_budget_bytes``), 'all_pairs' or 'local'.
        Returns:
            (N, 2, H, W) float32 flow in pixels of the input resolution.
        """
        padding = _Padding.for_size(*image1.shape[-2:], levels=self.corr_levels)
        image1, image2 = padding.pad(image1.contiguous()), padding.pad(image2.contiguous())
        fmap1, fmap2 = self.encode_features(torch.cat((image1, image2))).chunk(2)  # 2 x (N, 256, h, w)
        hidden, context = self.encode_context(image1)  # 2 x (N, 128, h, w)
        corr_fn = build_corr(fmap1, fmap2, corr, self.corr_levels, self.corr_radius,
                             budget_bytes=self.corr_budget_bytes)
        return padding.crop(self.refine(corr_fn, hidden, context, iters))


# ---------------------------------------------------------------------------
# sequences
# ---------------------------------------------------------------------------
# rough float count per feature-map pixel of the activations of one pair direction
_ACTIVATION_FLOATS_PER_PIXEL = 4096


def _pairs_per_chunk(height: int, width: int, mode: str, budget_bytes: int, pairs: int,
                     volumes_per_pair: int = 2, dtype: torch.dtype = torch.float32) -> int:
    """Pairs refined together: their activations (both directions) and the all-pairs
    pyramids alive at once (``volumes_per_pair`` per pair) fit ``budget_bytes``."""
    per_pair = 2 * 4 * _ACTIVATION_FLOATS_PER_PIXEL * height * width
    if mode == "all_pairs":
        per_pair += volumes_per_pair * all_pairs_bytes(height, width, CORR_LEVELS, dtype)
    return max(1, min(pairs, budget_bytes // per_pair))


@torch.no_grad()
def bidirectional_flows(raft: RAFT, frames: torch.Tensor, iters: int = 20, corr: str = "auto",
                        budget_bytes: int | None = None, pairs_per_chunk: int | None = None,
                        corr_dtype: torch.dtype = torch.float32,
                        graphs: GraphCache | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward and backward flows between consecutive frames (ProPainter's RAFT_bi).

    Each frame is encoded once. When both directions' all-pairs pyramids of a pair
    fit the budget, they are refined together and share one volume (the backward one
    is its transpose); when only one fits, the directions are refined one after the
    other, each with its own volume; when none fits, the on-demand local correlation
    is used. Frames are processed in chunks of consecutive pairs to bound memory.

    Args:
        raft: the network (eval mode).
        frames: (T, 3, H, W) in [-1, 1], T >= 2, any H, W.
        iters: refinement iterations.
        corr: 'auto', 'all_pairs' or 'local'.
        budget_bytes: memory for correlation volumes and activations per chunk
            (default ``raft.corr_budget_bytes``).
        pairs_per_chunk: override the number of pairs processed together.
        corr_dtype: storage of the all-pairs pyramids (fp32 = the reference).
        graphs: replay each chunk's refinement as a CUDA graph from this cache (GPU,
            all-pairs correlation); keep one cache across calls of a clip.
    Returns:
        flows_f (T-1, 2, H, W): flow t -> t+1; flows_b (T-1, 2, H, W): flow t+1 -> t;
        float32 pixels at input resolution, on ``frames.device``.
    """
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"frames must be (T, 3, H, W), got {tuple(frames.shape)}")
    total = frames.shape[0]
    if total < 2:
        raise ValueError("need at least two frames for flow")
    budget = raft.corr_budget_bytes if budget_bytes is None else budget_bytes
    height, width = frames.shape[-2:]
    padding = _Padding.for_size(height, width, levels=raft.corr_levels)
    feat_h = (height + padding.top + padding.bottom) // DOWNSAMPLE
    feat_w = (width + padding.left + padding.right) // DOWNSAMPLE
    mode = choose_corr_mode(corr, feat_h, feat_w, 2, budget, raft.corr_levels, corr_dtype)
    together = True  # both directions of a pair in one batch
    if mode == "local" and corr == "auto" and choose_corr_mode(corr, feat_h, feat_w, 1, budget, raft.corr_levels,
                                                               corr_dtype) == "all_pairs":
        mode, together = "all_pairs", False
    volumes = 2 if together else 1
    chunk = pairs_per_chunk or _pairs_per_chunk(feat_h, feat_w, mode, budget, total - 1, volumes, corr_dtype)
    if mode == "all_pairs":  # keep every chunk's volumes inside the budget where possible
        pyramid = all_pairs_bytes(feat_h, feat_w, raft.corr_levels, corr_dtype)
        chunk = min(chunk, max(1, budget // (volumes * pyramid)))

    flows_f = torch.empty(total - 1, 2, height, width, dtype=torch.float32, device=frames.device)
    flows_b = torch.empty_like(flows_f)

    def refine_chunk(features: torch.Tensor, hidden: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Encodings of K+1 frames -> (2K, 2, Hp, Wp) flows of their K pairs, forward then backward."""
        # the local lookup gathers fp16 features when RAFT runs in fp16 (its features are fp16 values)
        local_dtype = torch.float16 if hidden.dtype == torch.float16 else torch.float32
        if together:  # one block of both directions, sharing one volume
            corr_fn = build_corr(features[:-1], features[1:], mode, raft.corr_levels, raft.corr_radius,
                                 pairs=True, budget_bytes=budget, dtype=corr_dtype, local_dtype=local_dtype)
            return raft.refine(corr_fn, torch.cat((hidden[:-1], hidden[1:])),
                               torch.cat((context[:-1], context[1:])), iters)
        flows = []
        for src, dst in ((slice(None, -1), slice(1, None)), (slice(1, None), slice(None, -1))):
            corr_fn = build_corr(features[src], features[dst], mode, raft.corr_levels, raft.corr_radius,
                                 budget_bytes=budget, dtype=corr_dtype, local_dtype=local_dtype)
            flows.append(raft.refine(corr_fn, hidden[src], context[src], iters))
            del corr_fn  # one direction's volume alive at a time
        return torch.cat(flows)

    carried = None  # encodings of the frame shared with the previous chunk
    for first in range(0, total - 1, chunk):
        last = min(total - 1, first + chunk)  # pairs first..last-1 use frames first..last
        fresh_from = first if carried is None else first + 1
        features, hidden, context = raft.encode(padding.pad(frames[fresh_from:last + 1].contiguous()))
        if carried is not None:
            features, hidden, context = (torch.cat((c[None], x)) for c, x in zip(carried, (features, hidden, context),
                                                                                  strict=True))
        carried = (features[-1], hidden[-1], context[-1])
        pairs = last - first
        if graphs is not None and mode == "all_pairs":
            key = ("raft", tuple(features.shape), hidden.dtype, together, iters, corr_dtype)
            flow = graphs.run(key, refine_chunk, features, hidden, context)
        else:
            flow = refine_chunk(features, hidden, context)
        flow = padding.crop(flow)  # (2*pairs, 2, H, W)
        flows_f[first:last] = flow[:pairs]
        flows_b[first:last] = flow[pairs:]
    return flows_f, flows_b
