"""Networks of ``mmcbm``: the black-box backbone and the concept-bottleneck classifier.

Backbone (card 2.1; official ``MMAttnSCLSEfficientNet``): one EfficientNet-b0 encoder per
modality (torchvision's implementation), the features of all of a patient's images (FA and
ICGA phases, the US image) pooled by self-attention (Safari et al., arXiv:2008.01077), and a
linear classifier to three classes. Missing images are masked out of the pooling.

Concept bottleneck (card 2.3; official ``M2LinearCBM`` with ``act_on_weight``): a linear map
from concept scores to class logits whose weights pass through a sigmoid, so every
concept-class weight lies in (0, 1).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision.models.efficientnet import EfficientNet, MBConvConfig, efficientnet_b0

from reprolab.core.errors import ConfigError, DataError
from reprolab.medical.mmcbm_cohort import MODALITIES

#: EfficientNet-b0 stages (Tan & Le 2019, Table 1): expand ratio, kernel, stride, in, out, layers.
B0_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1),
)
#: torchvision's ImageNet weights of EfficientNet-b0 (EfficientNet_B0_Weights.IMAGENET1K_V1).
IMAGENET_B0_FILE = "efficientnet_b0_rwightman-7f5810bc.pth"


def efficientnet_b0_net(width_mult: float = 1.0, depth_mult: float = 1.0) -> EfficientNet:
    """torchvision's EfficientNet-b0, optionally narrower / shallower (demo scale).

    At ``width_mult = depth_mult = 1`` this is ``torchvision.models.efficientnet_b0()``
    itself; otherwise the b0 stage table scaled by torchvision's own channel and depth rules.
    """
    if width_mult == 1.0 and depth_mult == 1.0:
        return efficientnet_b0(weights=None)
    stages = [MBConvConfig(*stage, width_mult=width_mult, depth_mult=depth_mult) for stage in B0_STAGES]
    return EfficientNet(stages, dropout=0.2)


def load_imagenet_weights(net: EfficientNet, path: str | Path) -> None:
    """Load torchvision's ImageNet EfficientNet-b0 weights into ``net``, checking the file's hash.

    The SHA-256 of the file must start with the 8 hex digits in its name (torch.hub's check).

    Raises
    ------
    DataError
        The file is missing or its hash differs.
    ConfigError
        The network is not the full-size b0 (``width_mult`` / ``depth_mult`` not 1).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: torchvision's ImageNet EfficientNet-b0 weights are missing; download "
                        f"https://download.pytorch.org/models/{IMAGENET_B0_FILE} into {path.parent}/ (the "
                        "workflow's data_download rule does this) or set encoder.imagenet: false")
    prefix = re.search(r"-([0-9a-f]{8})\.pth$", path.name)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if prefix is None or not digest.startswith(prefix.group(1)):
        raise DataError(f"{path}: SHA-256 {digest[:16]}... does not start with the hash in the file name "
                        f"({IMAGENET_B0_FILE}); the file is corrupt or another one, delete it and download it again")
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise ConfigError("encoder.imagenet: ImageNet weights need the full EfficientNet-b0 "
                          "(encoder.width_mult = encoder.depth_mult = 1)") from err


class ImageEncoder(nn.Module):
    """One modality's encoder: uint8 images -> normalised 3-channel input -> pooled features.

    Parameters
    ----------
    mean, std
        Intensity normalisation of the modality (per channel of the stored images, values
        of images scaled to [0, 1]; official ``params.py``).
    width_mult, depth_mult
        EfficientNet-b0 scaling (1, 1 at paper scale).
    imagenet_weights
        Path of torchvision's ImageNet weights, or ``None`` (random init).
    """

    def __init__(self, mean: list[float], std: list[float], width_mult: float = 1.0, depth_mult: float = 1.0,
                 imagenet_weights: str | Path | None = None) -> None:
        super().__init__()
        net = efficientnet_b0_net(width_mult, depth_mult)
        if imagenet_weights is not None:
            load_imagenet_weights(net, imagenet_weights)
        # channels-last memory speeds up the depthwise convolutions (1.7x per image on one CPU thread)
        self.features, self.pool = net.features.to(memory_format=torch.channels_last), net.avgpool
        self.out_features = int(net.classifier[1].in_features)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[n, C, H, W]`` uint8 (C = 1 or 3) -> ``[n, out_features]``."""
        x = (images.float() / 255.0 - self.mean) / self.std
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = x.contiguous(memory_format=torch.channels_last)
        return torch.flatten(self.pool(self.features(x)), 1)


class AttentionPooling(nn.Module):
    """Self-attention pooling over a patient's images, per feature (official ``SelfAttentionPooling``).

    A small bottleneck MLP scores every feature of every image; a softmax over the
    (present) images turns the scores into weights, and the pooled vector is the weighted
    sum (Safari, India & Hernando, arXiv:2008.01077).
    """

    def __init__(self, dim: int, reduction: int = 8) -> None:
        super().__init__()
        hidden = max(1, dim // reduction)
        self.score = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x [B, T, F]``, ``mask [B, T]`` (at least one True per row) -> ``[B, F]``."""
        logits = self.score(x).masked_fill(~mask[..., None], float("-inf"))
        return (torch.softmax(logits, dim=1) * x).sum(dim=1)


class Backbone(nn.Module):
    """The black-box model: per-modality encoders, attention pooling, linear classifier.

    Parameters
    ----------
    normalization
        ``{modality: {"mean": [...], "std": [...]}}``.
    width_mult, depth_mult
        EfficientNet-b0 scaling.
    imagenet_weights
        torchvision's ImageNet weights file, or ``None``.
    n_classes
        Number of classes.
    dropout
        Dropout before the classifier.
    """

    def __init__(self, normalization: Mapping[str, Mapping[str, list[float]]], width_mult: float = 1.0,
                 depth_mult: float = 1.0, imagenet_weights: str | Path | None = None, n_classes: int = 3,
                 dropout: float = 0.2) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict({
            m: ImageEncoder(normalization[m]["mean"], normalization[m]["std"], width_mult, depth_mult,
                            imagenet_weights) for m in MODALITIES})
        self.n_features = self.encoders[MODALITIES[0]].out_features
        self.pool = AttentionPooling(self.n_features)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.n_features, n_classes))

    def encode(self, images: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Features of the present images, zeros elsewhere: ``{modality: [B, P_m, F]}``."""
        out = {}
        for m in MODALITIES:
            img, mask = images[m], masks[m]
            feats = img.new_zeros((*mask.shape, self.n_features), dtype=torch.float32)
            if mask.any():
                feats[mask] = self.encoders[m](img[mask])
            out[m] = feats
        return out

    def classify(self, features: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Class logits ``[B, n_classes]`` from per-image features (a modality can be dropped by its mask)."""
        x = torch.cat([features[m] for m in MODALITIES], dim=1)
        mask = torch.cat([masks[m] for m in MODALITIES], dim=1)
        if not bool(mask.any(dim=1).all()):
            raise ValueError("Backbone.classify: a patient has no image left")
        return self.head(self.pool(x, mask))

    def forward(self, images: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.classify(self.encode(images, masks), masks)


def batch_tensors(images: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray], index: np.ndarray,
                  device: str = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The images and masks of patients ``index`` as torch tensors on ``device``."""
    imgs = {m: torch.from_numpy(np.ascontiguousarray(images[m][index])).to(device) for m in MODALITIES}
    msks = {m: torch.from_numpy(np.ascontiguousarray(masks[m][index])).to(device) for m in MODALITIES}
    return imgs, msks


class ConceptBottleneck(nn.Module):
    """Class logits = concept inputs @ sigmoid(W).T (official ``WeightMatrix``, ``act_on_weight``).

    Parameters
    ----------
    n_inputs
        Concept scores plus the missing-modality indicators.
    n_classes
        Number of classes.
    init
        ``zero``: every weight starts at sigmoid(0) = 0.5 (the official run name's
        ``aow_zero``); ``default``: torch's ``nn.Linear`` initialisation.
    """

    def __init__(self, n_inputs: int, n_classes: int = 3, init: str = "zero") -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_classes, n_inputs))
        if init == "zero":
            nn.init.zeros_(self.weight)
        elif init == "default":
            nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        else:
            raise ConfigError(f"cbm.init must be zero or default, not {init!r}")

    @property
    def class_weights(self) -> torch.Tensor:
        """The effective concept-class weights sigmoid(W), ``[n_classes, n_inputs]`` in (0, 1)."""
        return torch.sigmoid(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.class_weights.T

