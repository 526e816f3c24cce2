"""Conv-BN-ReLU networks with average pooling, built for ANN-to-SNN conversion (``calib``).

The networks of Li, Deng, Dong, Gu, "Converting Artificial Neural Networks to Spiking
Neural Networks via Parameter Calibration" (arXiv:2205.10121), official code
``models/CIFAR/models/{vgg,resnet}.py``:

- :class:`VGG`: ``[c, c, A, ...]`` layer lists of 3x3 Conv-BN-ReLU blocks and 2x2 average
  pooling (``A``), flatten, one ``Linear`` (VGG-16 on CIFAR: ``64, 64, A, 128, 128, A, 256 x3,
  A, 512 x3, A, 512 x3, A``).
- :class:`ResNet20`: 3x3 stem, three stages of three BasicBlocks (the official ``resnet20``
  widths are 64, 128, 256), global average pooling, one ``Linear``.

Every ReLU sits in a :class:`Unit` ``act(synapse(x) [+ residual])`` whose ``synapse`` is a
:class:`ConvBN`. Conversion (:mod:`reprolab.snn.calib`) folds each BN into its conv and
swaps the ``act`` of every unit for an integrate-and-fire neuron; the units are also what
the calibration algorithms walk through, layer by layer. Average pooling is a
:class:`ConvBN` around a frozen depthwise conv with weights ``1/k^2`` (the official
``AvgPoolConv``) followed by a ReLU, so that it can become a spiking layer; in the ANN the
ReLU is the identity, because the pooled inputs are non-negative.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from reprolab.core.errors import ConfigError

POOL = "A"


class ConvBN(nn.Module):
    """A convolution followed by batch norm (or by nothing when ``bn`` is off or folded)."""

    def __init__(self, conv: nn.Conv2d, batch_norm: bool) -> None:
        super().__init__()
        self.conv = conv
        self.bn: nn.Module = nn.BatchNorm2d(conv.out_channels) if batch_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


def conv_bn(c_in: int, c_out: int, kernel: int = 3, stride: int = 1, batch_norm: bool = True) -> ConvBN:
    """A ``kernel x kernel`` convolution (no bias with BN, as in the official code) and BN."""
    conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=not batch_norm)
    return ConvBN(conv, batch_norm)


def avg_pool_conv(channels: int, kernel: int = 2) -> ConvBN:
    """Average pooling as a frozen depthwise conv with weights ``1/k^2`` (``AvgPoolConv``).

    Its bias starts at zero; it exists so that bias calibration can correct the pooling layer
    like any other spiking layer.
    """
    conv = nn.Conv2d(channels, channels, kernel, stride=kernel, groups=channels, bias=True)
    with torch.no_grad():
        conv.weight.fill_(1.0 / (kernel * kernel))
        conv.bias.zero_()
    conv.weight.requires_grad_(False)
    conv.bias.requires_grad_(False)
    return ConvBN(conv, batch_norm=False)


class Unit(nn.Module):
    """One ReLU layer: ``act(synapse(x) + residual)``; the unit of conversion and calibration.

    Attributes
    ----------
    synapse
        The conv (and BN) whose weights and bias the calibration adjusts.
    act
        ``nn.ReLU`` in the ANN, an integrate-and-fire neuron after conversion.
    pooling
        True for an average-pooling unit (converted only when pooling spikes).
    """

    def __init__(self, synapse: ConvBN, pooling: bool = False) -> None:
        super().__init__()
        self.synapse = synapse
        self.act: nn.Module = nn.ReLU()
        self.pooling = pooling

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        z = self.synapse(x)
        if residual is not None:
            z = z + residual
        return self.act(z)


def _init_like_official(module: nn.Module) -> None:
    """He-normal convs (``n = k*k*out``), BN at identity, ``N(0, 1/in)`` linear weights."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d) and m.weight.requires_grad:
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 1.0 / m.in_features)
            nn.init.zeros_(m.bias)


class VGG(nn.Module):
    """VGG-style Conv-BN-ReLU network with average pooling and one linear classifier.

    Parameters
    ----------
    in_channels, num_classes
        Input channels and classes.
    input_size
        Input height = width.
    layers
        Output channels of each conv block, ``"A"`` for 2x2 average pooling.
    batch_norm
        Conv-BN-ReLU blocks (the paper's setting); False gives Conv(bias)-ReLU.
    """

    def __init__(self, in_channels: int, num_classes: int, input_size: int, layers: Sequence[int | str],
                 batch_norm: bool = True) -> None:
        super().__init__()
        units: list[Unit] = []
        c_in, size = in_channels, input_size
        for item in layers:
            if item == POOL:
                units.append(Unit(avg_pool_conv(c_in), pooling=True))
                size //= 2
            elif isinstance(item, int) and item > 0:
                units.append(Unit(conv_bn(c_in, item, batch_norm=batch_norm)))
                c_in = item
            else:
                raise ConfigError(f"model.layers: {item!r} is neither a channel count nor 'A' (average pooling)")
        if size < 1:
            raise ConfigError(f"model.layers pools a {input_size}px input below 1px; remove an 'A'")
        if not any(not u.pooling for u in units):
            raise ConfigError("model.layers has no conv layer; give at least one channel count")
        self.features = nn.Sequential(*units)
        self.classifier = nn.Linear(c_in * size * size, num_classes)
        _init_like_official(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class BasicBlock(nn.Module):
    """ResNet BasicBlock: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``.

    The shortcut is the identity or a 1x1 Conv-BN; it is linear, so after conversion it
    carries spikes (or their projection) into the second unit's membrane (``SpikeResModule``).
    """

    def __init__(self, c_in: int, c_out: int, stride: int, batch_norm: bool = True) -> None:
        super().__init__()
        self.unit1 = Unit(conv_bn(c_in, c_out, stride=stride, batch_norm=batch_norm))
        self.unit2 = Unit(conv_bn(c_out, c_out, batch_norm=batch_norm))
        if stride != 1 or c_in != c_out:
            self.shortcut: nn.Module = conv_bn(c_in, c_out, kernel=1, stride=stride, batch_norm=batch_norm)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unit2(self.unit1(x), self.shortcut(x))


class ResNet20(nn.Module):
    """The official CIFAR ``resnet20``: stem, ``blocks`` BasicBlocks per stage, GAP, linear.

    Parameters
    ----------
    in_channels, num_classes
        Input channels and classes.
    channels
        Widths of the stem/first stage and the next stages (official: 64, 128, 256).
    blocks
        BasicBlocks per stage (3, 3, 3 for ResNet-20).
    batch_norm
        As in :class:`VGG`.
    """

    def __init__(self, in_channels: int, num_classes: int, channels: Sequence[int] = (64, 128, 256),
                 blocks: Sequence[int] = (3, 3, 3), batch_norm: bool = True) -> None:
        super().__init__()
        if len(channels) != len(blocks) or not channels:
            raise ConfigError("resnet20 needs one model.channels entry per model.blocks entry (e.g. [64, 128, 256])")
        layers: list[nn.Module] = [Unit(conv_bn(in_channels, channels[0], batch_norm=batch_norm))]
        c_in = channels[0]
        for stage, (c_out, n_blocks) in enumerate(zip(channels, blocks, strict=True)):
            for b in range(n_blocks):
                layers.append(BasicBlock(c_in, c_out, stride=2 if (stage > 0 and b == 0) else 1, batch_norm=batch_norm))
                c_in = c_out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_in, num_classes)
        _init_like_official(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


def build_ann(spec: dict[str, Any], in_channels: int, num_classes: int, input_size: int) -> nn.Module:
    """The network of a ``model`` config section (``config/schemas/calib.yaml``)."""
    arch = spec["arch"]
    batch_norm = spec.get("batch_norm", True)
    if arch == "vgg":
        if "layers" not in spec:
            raise ConfigError("model.layers is required for arch vgg (e.g. [16, 16, A, 32, A])")
        return VGG(in_channels, num_classes, input_size, spec["layers"], batch_norm)
    if arch == "resnet20":
        return ResNet20(in_channels, num_classes, spec.get("channels", (64, 128, 256)), spec.get("blocks", (3, 3, 3)),
                        batch_norm)
    raise ConfigError(f"model.arch {arch!r} is unknown; use vgg or resnet20")


def units_of(model: nn.Module) -> list[Unit]:
    """Every :class:`Unit` in forward order (registration order equals execution order here)."""
    return [m for m in model.modules() if isinstance(m, Unit)]
