"""Backbones whose convolutions can be static, masked, dynamic or SD-Conv (:mod:`reprolab.vision.sdconv`).

- :class:`SmallCNN`: the demo network, a static stem convolution followed by replaceable
  3x3 conv-BN-ReLU blocks, global average pooling and a linear classifier.
- :class:`ResNet18`: He et al. (CVPR 2016) with BasicBlocks ``[2, 2, 2, 2]``; ``stem='cifar'``
  uses a 3x3 stride-1 stem without max pooling (the usual CIFAR variant), ``'imagenet'`` the
  7x7 stride-2 stem with max pooling. Every 3x3 convolution of the blocks is replaceable;
  the stem and the 1x1 projection shortcuts stay static (card, Sec. 3).
- :class:`MobileNetV2`: Sandler et al. (CVPR 2018), inverted residual blocks; every
  convolution of the blocks and the final 1x1 convolution are replaceable, the stem stays
  static. ``stem='cifar'`` uses stride 1 in the stem and the 24-channel stage.

The first convolution and the classifier are always static and dense (card 2.3). Every
network is wrapped in :class:`VisionNet`, which accepts ``[N, C, H, W]`` or the project's
time-major ``[T, N, C, H, W]`` batches (``T = 1`` for static images) and keeps the
training clock that drives the temperature schedule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from reprolab.core.errors import ConfigError
from reprolab.vision.sdconv import ConvSpec, make_conv

ARCHS: tuple[str, ...] = ("small_cnn", "resnet18", "mobilenetv2")


def conv_bn_relu(spec: ConvSpec, c_in: int, c_out: int, kernel: int = 3, stride: int = 1,
                 groups: int = 1, relu: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Replaceable convolution, batch norm, activation."""
    return nn.Sequential(make_conv(spec, c_in, c_out, kernel, stride, kernel // 2, groups), nn.BatchNorm2d(c_out),
                         relu(inplace=True))


def static_conv_bn_relu(c_in: int, c_out: int, kernel: int = 3, stride: int = 1,
                        relu: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """The static stem: convolution, batch norm, activation."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(c_out),
                         relu(inplace=True))


class SmallCNN(nn.Module):
    """Static stem, replaceable 3x3 blocks (2x2 max pooling after flagged ones), GAP, linear.

    Parameters
    ----------
    spec
        Kind of the replaceable convolutions.
    in_channels, num_classes
        Input channels and classes.
    channels
        Stem width followed by the widths of the replaceable blocks.
    pool_after
        One flag per replaceable block.
    """

    def __init__(self, spec: ConvSpec, in_channels: int, num_classes: int, channels: Sequence[int],
                 pool_after: Sequence[bool]) -> None:
        super().__init__()
        if len(channels) < 2:
            raise ConfigError("model.channels needs the stem width and at least one block width")
        if len(pool_after) != len(channels) - 1:
            raise ConfigError(f"model.pool_after needs one flag per block ({len(channels) - 1}), "
                              f"not {len(pool_after)}")
        layers: list[nn.Module] = [static_conv_bn_relu(in_channels, channels[0])]
        for c_in, c_out, pool in zip(channels[:-1], channels[1:], pool_after, strict=True):
            layers.append(conv_bn_relu(spec, c_in, c_out))
            if pool:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(2, 3)))


class BasicBlock(nn.Module):
    """ResNet BasicBlock with replaceable 3x3 convolutions and a static 1x1 projection shortcut."""

    def __init__(self, spec: ConvSpec, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = make_conv(spec, c_in, c_out, 3, stride, 1)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = make_conv(spec, c_out, c_out, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 (``[2, 2, 2, 2]`` BasicBlocks at widths 64-512) with replaceable 3x3 convolutions."""

    def __init__(self, spec: ConvSpec, in_channels: int, num_classes: int, stem: str = "cifar",
                 widths: Sequence[int] = (64, 128, 256, 512), blocks: Sequence[int] = (2, 2, 2, 2)) -> None:
        super().__init__()
        if stem == "cifar":
            self.stem = static_conv_bn_relu(in_channels, widths[0], 3, 1)
        elif stem == "imagenet":
            self.stem = nn.Sequential(static_conv_bn_relu(in_channels, widths[0], 7, 2), nn.MaxPool2d(3, 2, 1))
        else:
            raise ConfigError(f"model.stem is {stem!r}; use cifar or imagenet")
        stages, c_in = [], widths[0]
        for i, (c_out, n) in enumerate(zip(widths, blocks, strict=True)):
            for b in range(n):
                stages.append(BasicBlock(spec, c_in, c_out, 2 if (i > 0 and b == 0) else 1))
                c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.classifier = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.stages(self.stem(x)).mean(dim=(2, 3)))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expansion, 3x3 depthwise, 1x1 linear projection; residual when shapes match."""

    def __init__(self, spec: ConvSpec, c_in: int, c_out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn_relu(spec, c_in, hidden, 1, relu=nn.ReLU6))
        layers += [conv_bn_relu(spec, hidden, hidden, 3, stride, groups=hidden, relu=nn.ReLU6),
                   make_conv(spec, hidden, c_out, 1), nn.BatchNorm2d(c_out)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.residual else out


#: (expansion t, channels c, blocks n, stride s) of MobileNetV2 (Sandler et al. 2018, Table 2).
MOBILENETV2_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)


def _make_divisible(v: float, divisor: int = 8) -> int:
    """Round a width to a multiple of ``divisor`` without going below 90 % of it (MobileNetV2)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class MobileNetV2(nn.Module):
    """MobileNetV2 with replaceable block convolutions and final 1x1 convolution."""

    def __init__(self, spec: ConvSpec, in_channels: int, num_classes: int, stem: str = "cifar",
                 width_mult: float = 1.0, dropout: float = 0.2) -> None:
        super().__init__()
        if stem not in ("cifar", "imagenet"):
            raise ConfigError(f"model.stem is {stem!r}; use cifar or imagenet")
        c_in = _make_divisible(32 * width_mult)
        last = _make_divisible(1280 * max(1.0, width_mult))
        layers: list[nn.Module] = [static_conv_bn_relu(in_channels, c_in, 3, 1 if stem == "cifar" else 2,
                                                       relu=nn.ReLU6)]
        for i, (t, c, n, s) in enumerate(MOBILENETV2_SETTINGS):
            c_out = _make_divisible(c * width_mult)
            if stem == "cifar" and i == 1:
                s = 1
            for b in range(n):
                layers.append(InvertedResidual(spec, c_in, c_out, s if b == 0 else 1, t))
                c_in = c_out
        layers.append(conv_bn_relu(spec, c_in, last, 1, relu=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(2, 3)))


class TrainingLog(nn.Module):
    """Training-time bookkeeping saved with the model (and so with every resumable checkpoint).

    Buffers: ``step`` (optimiser steps so far) and, per epoch, the kept fraction of the
    masked kernels at the epoch's end, the safety resets so far and the temperature used.
    """

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.register_buffer("density", torch.full((epochs,), float("nan")))
        self.register_buffer("resets", torch.zeros(epochs, dtype=torch.long))
        self.register_buffer("temperature", torch.full((epochs,), float("nan")))


class VisionNet(nn.Module):
    """A backbone that also accepts time-major ``[T, N, C, H, W]`` batches.

    The project's batch sources and training loop are time-major (``reprolab.snn``); a
    static image batch is ``[1, N, C, H, W]``. The output then is ``[T, N, classes]``, so
    the shared training loop and evaluation average it over ``T`` (a no-op for ``T = 1``).
    """

    def __init__(self, body: nn.Module, epochs: int = 1) -> None:
        super().__init__()
        self.body = body
        self.train_log = TrainingLog(epochs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 5:
            t, n = x.shape[:2]
            return self.body(x.flatten(0, 1)).unflatten(0, (t, n))
        return self.body(x)


def build_backbone(model_cfg: dict[str, Any], spec: ConvSpec, in_channels: int, num_classes: int,
                   epochs: int = 1) -> VisionNet:
    """The network of a ``model`` config section (``config/schemas/sdconv.yaml``).

    Parameters
    ----------
    model_cfg
        ``arch`` (small_cnn, resnet18, mobilenetv2) and its keys.
    spec
        Kind of the replaceable convolutions.
    in_channels, num_classes
        Input channels and classes.
    epochs
        Length of the per-epoch training log.
    """
    arch = model_cfg.get("arch")
    if arch == "small_cnn":
        body: nn.Module = SmallCNN(spec, in_channels, num_classes, model_cfg["channels"], model_cfg["pool_after"])
    elif arch == "resnet18":
        body = ResNet18(spec, in_channels, num_classes, model_cfg.get("stem", "cifar"))
    elif arch == "mobilenetv2":
        body = MobileNetV2(spec, in_channels, num_classes, model_cfg.get("stem", "cifar"),
                           model_cfg.get("width_mult", 1.0))
    else:
        raise ConfigError(f"model.arch is {arch!r}; use one of {', '.join(ARCHS)}")
    return VisionNet(body, epochs)
