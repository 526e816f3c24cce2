"""TET's spiking architectures, width and depth configurable (Deng et al., ICLR 2022, Sec. 5).

- :class:`VGGSNN`: 3x3 conv + BN + LIF blocks, 2x2 average pooling after flagged blocks,
  a linear classifier (the paper's DVS network: 64, 128, AP, 256, 256, AP, 512, 512, AP,
  512, 512, AP, FC).
- :class:`ResNet19`: conv stem, BasicBlocks ``[3, 3, 2]`` at widths 128/256/512 (stride 2 at
  the first block of stages 2 and 3), global average pooling, a spiking FC 512->256 and the
  classifier.

Every module runs multi-step: input ``[T, N, C, H, W]``, output ``[T, N, classes]`` (the
classifier's pre-synaptic output ``O(t)`` of the paper). BatchNorm normalises over the
flattened ``T * N`` batch (SpikingJelly's multi-step ``BatchNorm2d``). Network state is
reset at the start of every forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from spikingjelly.activation_based import functional, layer
from torch import nn

from reprolab.core.errors import ConfigError
from reprolab.snn.neurons import lif


class SpikingNet(nn.Module):
    """Base class: resets neuron state before each forward pass; multi-step throughout."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        functional.reset_net(self)
        return self.forward_steps(x)

    def forward_steps(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def conv_bn_lif(c_in: int, c_out: int, stride: int = 1, bias: bool = True) -> list[nn.Module]:
    """One TET conv block: 3x3 convolution, per-step batch norm over ``T*N``, LIF.

    ``bias``: the VGG ``Layer`` of the official code keeps the convolution's bias, its ResNet-19
    (``conv3x3``) has none.
    """
    return [
        layer.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=bias, step_mode="m"),
        layer.BatchNorm2d(c_out, step_mode="m"),
        lif(),
    ]


def kaiming_conv_init(module: nn.Module) -> None:
    """Kaiming-normal (fan-out) weights of every convolution, nothing else (official ``VGGSNN``).

    The official VGG models re-initialise only ``nn.Conv2d`` weights; conv biases, batch norm
    and the linear layers keep PyTorch's defaults. The official ResNet-19 re-initialises
    nothing (its Kaiming loop sits inside ``if zero_init_residual``, which is off).
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


class VGGSNN(SpikingNet):
    """TET's VGGSNN with configurable widths and pooling positions.

    Parameters
    ----------
    in_channels
        Input channels (2 polarities for event data).
    num_classes
        Classifier outputs.
    input_size
        Input height = width.
    channels
        Output channels of each conv block.
    pool_after
        One flag per block: 2x2 average pooling after it.
    classifier_hidden
        Width of an optional spiking FC layer before the classifier (0 = none).
    """

    def __init__(self, in_channels: int, num_classes: int, input_size: int, channels: Sequence[int],
                 pool_after: Sequence[bool], classifier_hidden: int = 0) -> None:
        super().__init__()
        if len(pool_after) != len(channels):
            raise ConfigError(
                f"model.pool_after has {len(pool_after)} flags for {len(channels)} model.channels; give one per block"
            )
        blocks: list[nn.Module] = []
        size, c_in = input_size, in_channels
        for c_out, pool in zip(channels, pool_after, strict=True):
            blocks += conv_bn_lif(c_in, c_out)
            if pool:
                blocks.append(layer.AvgPool2d(2, step_mode="m"))
                size //= 2
            c_in = c_out
        if size < 1:
            raise ConfigError(f"model.pool_after pools a {input_size}px input below 1px; remove pooling flags")
        self.features = nn.Sequential(*blocks)
        head: list[nn.Module] = [layer.Flatten(step_mode="m")]
        width = c_in * size * size
        if classifier_hidden:
            head += [layer.Linear(width, classifier_hidden, step_mode="m"), lif()]
            width = classifier_hidden
        head.append(layer.Linear(width, num_classes, step_mode="m"))
        self.classifier = nn.Sequential(*head)
        kaiming_conv_init(self)

    def forward_steps(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    """Spiking BasicBlock: conv-BN-LIF-conv-BN, plus the (projected) shortcut, then LIF."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *conv_bn_lif(c_in, c_out, stride, bias=False),
            layer.Conv2d(c_out, c_out, 3, padding=1, bias=False, step_mode="m"),
            layer.BatchNorm2d(c_out, step_mode="m"),
        )
        # A projection is needed when either the resolution or the width changes (a logical or;
        # the MTT code's bitwise `|` binds before `!=`, see the card's pitfalls).
        if stride != 1 or c_in != c_out:
            self.shortcut: nn.Module = nn.Sequential(
                layer.Conv2d(c_in, c_out, 1, stride=stride, bias=False, step_mode="m"),
                layer.BatchNorm2d(c_out, step_mode="m"),
            )
        else:
            self.shortcut = nn.Identity()
        self.spike = lif()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spike(self.body(x) + self.shortcut(x))


class ResNet19(SpikingNet):
    """TET's ResNet-19, widths and blocks configurable.

    Parameters
    ----------
    in_channels, num_classes
        Input channels and classifier outputs.
    channels
        ``[stem, stage1, stage2, stage3]`` widths (paper: 128, 128, 256, 512).
    blocks
        BasicBlocks per stage (paper: 3, 3, 2).
    classifier_hidden
        Width of the spiking FC layer before the classifier (paper: 256; 0 = none).
    """

    def __init__(self, in_channels: int, num_classes: int, channels: Sequence[int],
                 blocks: Sequence[int] = (3, 3, 2), classifier_hidden: int = 256) -> None:
        super().__init__()
        if len(channels) != 4 or len(blocks) != 3:
            raise ConfigError("resnet19 needs model.channels = [stem, s1, s2, s3] and model.blocks = [b1, b2, b3]")
        layers: list[nn.Module] = conv_bn_lif(in_channels, channels[0], bias=False)
        c_in = channels[0]
        for stage, (c_out, n_blocks) in enumerate(zip(channels[1:], blocks, strict=True)):
            for b in range(n_blocks):
                layers.append(BasicBlock(c_in, c_out, stride=2 if (stage > 0 and b == 0) else 1))
                c_in = c_out
        self.features = nn.Sequential(*layers, layer.AdaptiveAvgPool2d((1, 1), step_mode="m"),
                                      layer.Flatten(step_mode="m"))
        head: list[nn.Module] = []
        if classifier_hidden:
            head += [layer.Linear(c_in, classifier_hidden, step_mode="m"), lif()]
            c_in = classifier_hidden
        head.append(layer.Linear(c_in, num_classes, step_mode="m"))
        self.classifier = nn.Sequential(*head)
        # PyTorch's default initialisation everywhere, as the official resnet19 (zero_init_residual=False).

    def forward_steps(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build_model(spec: dict, in_channels: int, num_classes: int, input_size: int) -> SpikingNet:
    """Build the network described by a ``model`` config section (``common.yaml#/$defs/snn_model``)."""
    arch = spec["arch"]
    if arch == "vggsnn":
        return VGGSNN(in_channels, num_classes, input_size, spec["channels"],
                      spec.get("pool_after", [True] * len(spec["channels"])), spec.get("classifier_hidden", 0))
    if arch == "resnet19":
        return ResNet19(in_channels, num_classes, spec["channels"], spec.get("blocks", (3, 3, 2)),
                        spec.get("classifier_hidden", 256))
    raise ConfigError(f"model.arch {arch!r} is unknown; use vggsnn or resnet19")
