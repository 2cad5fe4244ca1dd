"""RAFT's per-image encoders: a 7x7/2 stem and three residual stages down to 1/8 scale.

The feature encoder ``fnet`` uses instance norm, the context encoder ``cnet`` batch norm (folded into the
convolutions on the GPU's half-precision path, see :mod:`.fused_conv`).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .fused_conv import NormFolds, conv_relu, foldable_norm, fuses_epilogue, in_weight_dtype


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
        self.folds = NormFolds()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H/stride, W/stride)."""
        if self.fused_epilogues and foldable_norm(self.norm1) and fuses_epilogue(x, self.conv1):
            y = conv_relu(self.conv1, x, norm=self.norm1, folds=self.folds)
            y = conv_relu(self.conv2, y, norm=self.norm2, folds=self.folds)
            skip = x if self.downsample is None else F.conv2d(x, *self.folds(self.downsample[0], self.norm3),
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
        self.folds = NormFolds()
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
        if self.fused_epilogues and foldable_norm(self.norm1):
            x = conv_relu(self.conv1, in_weight_dtype(images, self.conv1), norm=self.norm1,
                          folds=self.folds)  # (N, 64, H/2, W/2)
        else:
            x = self.relu1(self.norm1(self.conv1(images)))  # (N, 64, H/2, W/2)
        x = self.layer1(x)  # (N, 64, H/2, W/2)
        x = self.layer2(x)  # (N, 96, H/4, W/4)
        x = self.layer3(x)  # (N, 128, H/8, W/8)
        return self.conv2(x)
