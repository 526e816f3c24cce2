"""Conv-BN-ReLU networks with average pooling, built for ANN-to-SNN conversion (``calib``).

The networks of Li, Deng, Dong, Gu, "Converting Artificial Neural Networks to Spiking
Neural Networks via Parameter Calibration" (arXiv:2205.10121), official code
``models/CIFAR/models/{vgg,resnet}.py``:

- :class:`VGG`: ``[c, c, A, ...]`` layer lists of 3x3 Conv-BN-ReLU blocks and 2x2 average
  pooling (``A``), flatten, one ``Linear`` (VGG-16 on CIFAR: ``64, 64, A, 128, 128, A, 256 x3,
  A, 512 x3, A, 512 x3, A``).
- :class:`ResNet20`: 3x3 stem, three stages of three BasicBlocks (the official ``resnet20``
  widths are 64, 128, 256), global average pooling, one ``Linear``.
- :class:`ResNetImageNet` (ResNet-34) and :class:`VGGImageNet` (VGG-16 with BN): the 224x224
  ImageNet networks with torchvision's layer layout (``torchvision.models.resnet34`` /
  ``vgg16_bn``), max pooling replaced by average pooling as in the official
  ``models/ImageNet/models/{resnet,vgg}.py``; :func:`load_torchvision_weights` maps
  torchvision's ImageNet weights onto them.

Every ReLU sits in a :class:`Unit` ``act(synapse(x) [+ residual])`` whose ``synapse`` is a
:class:`ConvBN`. Conversion (:mod:`reprolab.snn.calib`) folds each BN into its conv and
swaps the ``act`` of every unit for an integrate-and-fire neuron; the units are also what
the calibration algorithms walk through, layer by layer.

Average pooling is a :class:`Unit` around a frozen depthwise conv with weights ``1/k^2``
(:func:`avg_pool_conv`) whose ReLU is the identity (pooled inputs are non-negative), so
it computes exactly ``nn.AvgPool2d``. The official models use ``nn.AvgPool2d``
(SNN_Calibration ``models/CIFAR/models/vgg.py``, ``models/ImageNet/models/{vgg,resnet}.py``),
which conversion leaves as it is: linear pooling of spikes, the default here
(``conversion.pool: linear``, the unit keeps its identity ReLU). The repository's
``AvgPoolConv`` (``models/utils.py``), a pooling layer followed by spiking neurons, is
never instantiated by those models; ``conversion.pool: spiking`` turns the pooling units
into such spiking layers as a labelled variant.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reprolab.core.errors import ConfigError
from reprolab.snn.calib_plan import TORCHVISION_WEIGHTS

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


def avg_pool_conv(channels: int, kernel: int = 2, stride: int | None = None, padding: int = 0) -> ConvBN:
    """Average pooling as a frozen depthwise conv with weights ``1/k^2`` (equal to ``nn.AvgPool2d``).

    Its bias starts at zero; it exists so that bias calibration can correct the pooling layer
    like any other spiking layer in the ``conversion.pool: spiking`` variant (the official
    ``AvgPoolConv``, unused by the official models); with linear pooling it stays zero.
    ``stride`` defaults to ``kernel``; zero padding counts in the average
    (``nn.AvgPool2d(count_include_pad=True)``, the official ResNet stem pool).
    """
    stride = kernel if stride is None else stride
    conv = nn.Conv2d(channels, channels, kernel, stride=stride, padding=padding, groups=channels, bias=True)
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
        True for an average-pooling unit: linear pooling of spikes after conversion (the
        official ``nn.AvgPool2d``), a spiking layer only with ``conversion.pool: spiking``.
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


def residual_stages(channels: Sequence[int], blocks: Sequence[int], batch_norm: bool = True) -> list[nn.Module]:
    """BasicBlock stages after the stem: ``blocks[i]`` blocks of width ``channels[i]``.

    The first block of every stage but the first halves the resolution (stride 2), as in
    He et al. (2016) and torchvision's ResNets; the stem's output width is ``channels[0]``.
    """
    layers: list[nn.Module] = []
    c_in = channels[0]
    for stage, (c_out, n_blocks) in enumerate(zip(channels, blocks, strict=True)):
        for b in range(n_blocks):
            layers.append(BasicBlock(c_in, c_out, stride=2 if (stage > 0 and b == 0) else 1, batch_norm=batch_norm))
            c_in = c_out
    return layers


class _ResNet(nn.Module):
    """Stem, :func:`residual_stages`, global average pooling and one ``Linear`` (He et al., 2016)."""

    def _build(self, stem: list[nn.Module], channels: Sequence[int], blocks: Sequence[int], num_classes: int,
               batch_norm: bool) -> None:
        self.features = nn.Sequential(*stem, *residual_stages(channels, blocks, batch_norm))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels[-1], num_classes)
        _init_like_official(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


class ResNet20(_ResNet):
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
        self._build(layers, channels, blocks, num_classes, batch_norm)


class ResNetImageNet(_ResNet):
    """ResNet-34 for 224x224 ImageNet images with average instead of max pooling.

    torchvision's ``resnet34`` layout: 7x7 stride-2 Conv-BN-ReLU stem, 3x3 stride-2 pooling,
    four stages of BasicBlocks (3, 4, 6, 3; widths 64, 128, 256, 512; a 1x1 Conv-BN
    shortcut where the shape changes), global average pooling, one ``Linear``. The stem's
    max pooling is the average pooling ``AvgPool2d(3, 2, padding=1)`` of the official
    ``resnet34_snn`` (SNN_Calibration ``models/ImageNet/models/resnet.py``), here an
    :func:`avg_pool_conv` unit (linear over spikes by default, spiking in the variant). The official model also replaces the
    7x7 stem by a three-conv "deep stem"; this one keeps torchvision's stem so that
    torchvision's ImageNet weights load (:func:`load_torchvision_weights`).

    Parameters
    ----------
    in_channels, num_classes
        Input channels and classes.
    channels, blocks
        Width and BasicBlocks of each stage (ResNet-34: 64, 128, 256, 512 and 3, 4, 6, 3).
    batch_norm
        As in :class:`VGG`.
    """

    def __init__(self, in_channels: int, num_classes: int, channels: Sequence[int] = (64, 128, 256, 512),
                 blocks: Sequence[int] = (3, 4, 6, 3), batch_norm: bool = True) -> None:
        super().__init__()
        if len(channels) != len(blocks) or not channels:
            raise ConfigError("resnet34 needs one model.channels entry per model.blocks entry (e.g. [64, 128, 256, 512])")
        stem = nn.Conv2d(in_channels, channels[0], 7, stride=2, padding=3, bias=not batch_norm)
        layers: list[nn.Module] = [Unit(ConvBN(stem, batch_norm)),
                                   Unit(avg_pool_conv(channels[0], 3, 2, 1), pooling=True)]
        self._build(layers, channels, blocks, num_classes, batch_norm)


#: VGG-16 (configuration D) as a layer list; ``A`` = 2x2 average pooling in place of max pooling.
VGG16_LAYERS: tuple[int | str, ...] = (64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 512, 512, 512, POOL,
                                       512, 512, 512, POOL)


class VGGImageNet(nn.Module):
    """VGG-16 with BN for 224x224 ImageNet images, average pooling, two spiking hidden layers.

    torchvision's ``vgg16_bn`` layout: 3x3 Conv(bias)-BN-ReLU blocks with 2x2 pooling
    (``A``; max pooling in torchvision, average pooling in the official
    ``models/ImageNet/models/vgg.py``), adaptive average pooling to ``pool_size`` (the
    identity at 224x224), then ``Linear-ReLU-Dropout`` twice and a ``Linear`` classifier.
    The two hidden linear layers become spiking units (official ``SpikeVGGClassifier``:
    ``fc1``, ``fc2`` spike, ``fc3`` accumulates). So that conversion and calibration treat
    them like every other unit, each is the equivalent convolution: ``fc1`` a
    ``pool_size x pool_size`` conv on the pooled map (torch's ``flatten`` order), ``fc2`` a
    1x1 conv.

    Parameters
    ----------
    in_channels, num_classes
        Input channels and classes.
    layers
        As in :class:`VGG` (default VGG-16).
    hidden
        Width of the two hidden linear layers (4096).
    pool_size
        Output side of the adaptive average pooling (7).
    dropout
        Dropout after each hidden layer during training (0.5).
    batch_norm
        Conv-BN-ReLU (True, ``vgg16_bn``) or Conv-ReLU blocks; the convs have a bias either way.
    """

    def __init__(self, in_channels: int, num_classes: int, layers: Sequence[int | str] = VGG16_LAYERS,
                 hidden: int = 4096, pool_size: int = 7, dropout: float = 0.5, batch_norm: bool = True) -> None:
        super().__init__()
        units: list[Unit] = []
        c_in = in_channels
        for item in layers:
            if item == POOL:
                units.append(Unit(avg_pool_conv(c_in), pooling=True))
            elif isinstance(item, int) and item > 0:
                conv = nn.Conv2d(c_in, item, 3, padding=1, bias=True)
                units.append(Unit(ConvBN(conv, batch_norm)))
                c_in = item
            else:
                raise ConfigError(f"model.layers: {item!r} is neither a channel count nor 'A' (average pooling)")
        self.features = nn.Sequential(*units)
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.fc1 = Unit(ConvBN(nn.Conv2d(c_in, hidden, pool_size), batch_norm=False))
        self.drop1 = nn.Dropout(dropout)
        self.fc2 = Unit(ConvBN(nn.Conv2d(hidden, hidden, 1), batch_norm=False))
        self.drop2 = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, num_classes)
        _init_like_official(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop1(self.fc1(self.pool(self.features(x))))
        return self.classifier(self.drop2(self.fc2(x)).flatten(1))


TORCHVISION_URL = "https://download.pytorch.org/models/"


def _torchvision_key_map(net: nn.Module, arch: str, tv_keys: Sequence[str]) -> dict[str, str]:
    """``{torchvision state-dict key: key of net}`` for :class:`ResNetImageNet` / :class:`VGGImageNet`."""
    mapping: dict[str, str] = {}
    if arch == "resnet34":
        blocks = [i for i, m in enumerate(net.features) if isinstance(m, BasicBlock)]
        stage_sizes = [len({k.split(".")[1] for k in tv_keys if k.startswith(f"layer{s}.")}) for s in range(1, 5)]
        positions = iter(blocks)
        block_of = {(s, b): next(positions) for s, n in enumerate(stage_sizes, 1) for b in range(n)}
        for key in tv_keys:
            parts = key.split(".")
            if parts[0] == "conv1":
                mapping[key] = "features.0.synapse.conv." + parts[-1]
            elif parts[0] == "bn1":
                mapping[key] = "features.0.synapse.bn." + parts[-1]
            elif parts[0] == "fc":
                mapping[key] = "classifier." + parts[-1]
            elif parts[0].startswith("layer"):
                idx = block_of[(int(parts[0][5:]), int(parts[1]))]
                local = {"conv1": "unit1.synapse.conv", "bn1": "unit1.synapse.bn", "conv2": "unit2.synapse.conv",
                         "bn2": "unit2.synapse.bn", "downsample.0": "shortcut.conv", "downsample.1": "shortcut.bn"}
                inner = ".".join(parts[2:-1])
                mapping[key] = f"features.{idx}.{local[inner]}.{parts[-1]}"
        return mapping
    # vgg_imagenet: torchvision's features hold (conv, bn, relu) per conv and one module per pooling
    tv_index = 0
    has_bn = any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    for ours, unit in enumerate(net.features):
        if unit.pooling:
            tv_index += 1
        else:
            for name in ("weight", "bias"):
                mapping[f"features.{tv_index}.{name}"] = f"features.{ours}.synapse.conv.{name}"
            if has_bn:
                for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
                    mapping[f"features.{tv_index + 1}.{name}"] = f"features.{ours}.synapse.bn.{name}"
            tv_index += 3 if has_bn else 2
    for tv_i, name in ((0, "fc1.synapse.conv"), (3, "fc2.synapse.conv"), (6, "classifier")):
        for p in ("weight", "bias"):
            mapping[f"classifier.{tv_i}.{p}"] = f"{name}.{p}"
    return mapping


def torchvision_state_to(net: nn.Module, arch: str, tv_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A torchvision ``resnet34`` / ``vgg16_bn`` state dict as a state dict of ``net`` (same architecture).

    Linear weights of the VGG hidden layers are reshaped into the equivalent convolutions.
    The fixed average-pooling units keep their own ``1/k^2`` weights.

    Raises
    ------
    ConfigError
        If a tensor does not fit (e.g. other widths or classes than the weights were trained with).
    """
    own = net.state_dict()
    mapping = _torchvision_key_map(net, arch, list(tv_state))
    missing = [k for k in tv_state if k not in mapping]
    if missing:
        raise ConfigError(f"torchvision weights have keys the {arch} model lacks: {missing[:4]}; "
                          f"use model.channels / blocks / layers of the torchvision architecture")
    out = dict(own)
    for tv_key, key in mapping.items():
        if tv_key not in tv_state:
            continue  # e.g. num_batches_tracked in old files
        value = tv_state[tv_key]
        if key not in own or own[key].numel() != value.numel():
            raise ConfigError(f"torchvision weight {tv_key} {tuple(value.shape)} does not fit {key} "
                              f"{tuple(own[key].shape) if key in own else '(absent)'}; the pretrained weights need "
                              f"the full torchvision architecture with 1000 classes")
        out[key] = value.reshape(own[key].shape).to(own[key].dtype)
    return out


def load_torchvision_weights(net: nn.Module, arch: str, path: str | Path) -> None:
    """Load torchvision's ImageNet weights (a ``.pth`` file) into ``net`` in place.

    The SHA-256 of the file must start with the hash in its name (torch.hub's check);
    the max-pooling layers of torchvision's models are average pooling here, so the
    network needs fine-tuning (``optim.epochs``) to recover torchvision's accuracy.

    Raises
    ------
    DataError
        If the file is absent (naming it and where to get it) or its hash prefix differs.
    """
    import hashlib
    import re

    from reprolab.core.errors import DataError

    path = Path(path)
    name = TORCHVISION_WEIGHTS.get(arch)
    if name is None:
        raise ConfigError(f"model.pretrained: torchvision weights exist for {sorted(TORCHVISION_WEIGHTS)}, not {arch!r}")
    if not path.exists():
        raise DataError(
            f"{path}: torchvision's ImageNet weights for {arch} are missing. Download {TORCHVISION_URL}{name} "
            f"(or run `python -c \"import torchvision; torchvision.models.{name.split('-')[0]}(weights='IMAGENET1K_V1')\"` "
            f"and copy it from ~/.cache/torch/hub/checkpoints/) into {path.parent}/ under exactly that name; "
            f"or set model.pretrained: none to train from scratch")
    prefix = re.search(r"-([0-9a-f]+)\.", path.name)
    if prefix:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if not digest.startswith(prefix.group(1)):
            raise DataError(f"{path}: SHA-256 {digest[:16]}... does not start with {prefix.group(1)} (the hash in the "
                            f"file name); the download is corrupt or truncated, delete it and download it again")
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(torchvision_state_to(net, arch, state))


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
    if arch == "resnet34":
        if not batch_norm:
            raise ConfigError("model.batch_norm: resnet34 is built with batch norm only (torchvision's layout)")
        return ResNetImageNet(in_channels, num_classes, spec.get("channels", (64, 128, 256, 512)),
                              spec.get("blocks", (3, 4, 6, 3)), batch_norm)
    if arch == "vgg_imagenet":
        return VGGImageNet(in_channels, num_classes, spec.get("layers", VGG16_LAYERS), spec.get("hidden", 4096),
                           spec.get("pool_size", 7), spec.get("dropout", 0.5), batch_norm)
    raise ConfigError(f"model.arch {arch!r} is unknown; use vgg, resnet20, resnet34 or vgg_imagenet")


def units_of(model: nn.Module) -> list[Unit]:
    """Every :class:`Unit` in forward order (registration order equals execution order here)."""
    return [m for m in model.modules() if isinstance(m, Unit)]
