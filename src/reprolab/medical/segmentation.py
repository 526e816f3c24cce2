"""Generic MONAI pieces of the medical papers: U-Nets, weight transfer, per-volume metrics.

- :func:`basic_unet`: MONAI's ``BasicUNet`` (2-D or 3-D, two convolutions per level, four
  down-samplings, transposed-convolution up-path: the layout of the classic U-Net) with batch
  norm and ReLU, whose last layer is always called ``final_conv``.
- :class:`UNetWithHead`: a U-Net plus a regression head on its bottleneck (global max pooling,
  two linear layers), both trained together; the head reads the bottleneck through a forward
  hook, so MONAI's forward is used unchanged.
- :func:`transfer_weights`: load pretrained weights into a network, except named layers (a new
  output layer).
- :func:`volume_metrics`: Dice (MONAI ``DiceMetric``), Hausdorff distance and average symmetric
  surface distance per class and volume, in mm.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


def basic_unet(in_channels: int, out_channels: int, features: Sequence[int], spatial_dims: int = 2,
               dropout: float = 0.0) -> nn.Module:
    """MONAI ``BasicUNet`` with batch norm and ReLU.

    Parameters
    ----------
    in_channels, out_channels
        Input channels and output channels (classes, heatmaps, ...).
    features
        Six widths: the five encoder levels (the fifth is the bottleneck) and the last decoder
        level, e.g. ``(64, 128, 256, 512, 1024, 64)`` for the classic U-Net.
    spatial_dims
        2 or 3.
    dropout
        Dropout rate inside the convolution blocks.
    """
    from monai.networks.nets import BasicUNet

    if len(features) != 6:
        raise ValueError(f"features must be six widths (five encoder levels and the last decoder), got {features}")
    return BasicUNet(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels,
                     features=tuple(int(f) for f in features), act=("relu", {"inplace": True}),
                     norm=("batch", {"affine": True}), dropout=dropout)


class UNetWithHead(nn.Module):
    """A ``BasicUNet`` whose bottleneck also feeds a regression head.

    Head: global max pooling -> Linear(C, hidden) -> Dropout -> ReLU -> Linear(hidden, outputs),
    the slice-location head of Zhang et al. (MedIA 2024, ``networks/premodel.py``: MaxPool2d(14)
    over the 14 x 14 bottleneck, Linear(1024, 128), Dropout(0.5), ReLU, Linear(128, 1)).

    ``forward`` returns ``(dense output, head output)``. The U-Net's parameters are under
    ``unet.``, the head's under ``head.``.
    """

    def __init__(self, unet: nn.Module, bottleneck_channels: int, hidden: int, dropout: float = 0.5,
                 outputs: int = 1) -> None:
        super().__init__()
        self.unet = unet
        spatial_dims = unet.conv_0.conv_0.conv.weight.dim() - 2
        pool = nn.AdaptiveMaxPool2d(1) if spatial_dims == 2 else nn.AdaptiveMaxPool3d(1)
        self.head = nn.Sequential(pool, nn.Flatten(), nn.Linear(bottleneck_channels, hidden), nn.Dropout(dropout),
                                  nn.ReLU(), nn.Linear(hidden, outputs))
        self._bottleneck: torch.Tensor | None = None
        unet.down_4.register_forward_hook(self._keep_bottleneck)

    def _keep_bottleneck(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        self._bottleneck = output

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dense = self.unet(x)
        bottleneck, self._bottleneck = self._bottleneck, None
        return dense, self.head(bottleneck)


def transfer_weights(model: nn.Module, state: dict[str, torch.Tensor], prefix: str = "",
                     exclude: Sequence[str] = ("final_",)) -> list[str]:
    """Copy pretrained weights into ``model``, skipping keys that contain any of ``exclude``.

    Parameters
    ----------
    model
        The network to initialise (e.g. a segmentation U-Net).
    state
        Pretrained ``state_dict``.
    prefix
        Prefix of the pretrained keys to take (e.g. ``"unet."``), removed before matching.
    exclude
        Substrings of keys not transferred; by default the output layer (``final_conv``), as the
        official downstream code loads every key not containing ``final_``.

    Returns
    -------
    list of str
        The keys of ``model`` that were loaded.

    Raises
    ------
    ValueError
        If a transferred key is missing from ``model`` or has another shape.
    """
    own = model.state_dict()
    picked = {k[len(prefix):]: v for k, v in state.items()
              if k.startswith(prefix) and not any(e in k for e in exclude)}
    wrong = [k for k, v in picked.items() if k not in own or own[k].shape != v.shape]
    if wrong:
        raise ValueError(f"pretrained weights do not fit the network: {wrong[:5]}")
    own.update(picked)
    model.load_state_dict(own)
    return sorted(picked)


def volume_metrics(pred: np.ndarray, label: np.ndarray, n_classes: int, spacing: Sequence[float],
                   surface: bool = True) -> dict[str, list[float]]:
    """Dice, Hausdorff distance and ASSD of every foreground class of one labelled volume.

    Parameters
    ----------
    pred, label
        Integer label volumes of one shape (2-D or 3-D).
    n_classes
        Number of classes including background (0).
    spacing
        Voxel size per axis, mm (for the surface distances).
    surface
        Also compute the surface distances (slower); otherwise they are NaN.

    Returns
    -------
    dict
        ``{"dice": [...], "hd": [...], "assd": [...]}``, one value per class 1..n_classes-1;
        NaN where a class is absent from the label (Dice) or from either volume (distances).
    """
    from monai.metrics import DiceMetric, compute_average_surface_distance, compute_hausdorff_distance
    from monai.networks.utils import one_hot

    def onehot(x: np.ndarray) -> torch.Tensor:
        return one_hot(torch.as_tensor(np.asarray(x, dtype=np.int64))[None, None], n_classes)

    y_pred, y = onehot(pred), onehot(label)
    dice = DiceMetric(include_background=False, reduction="none", ignore_empty=True)(y_pred, y)[0]
    out = {"dice": dice.tolist(), "hd": [float("nan")] * (n_classes - 1), "assd": [float("nan")] * (n_classes - 1)}
    if surface:
        present = (y_pred[:, 1:].flatten(2).any(-1) & y[:, 1:].flatten(2).any(-1))[0]
        spacing = [float(s) for s in spacing]
        if present.any():
            hd = compute_hausdorff_distance(y_pred, y, include_background=False, spacing=spacing)[0]
            assd = compute_average_surface_distance(y_pred, y, include_background=False, symmetric=True,
                                                    spacing=spacing)[0]
            out["hd"] = [float(h) if p else float("nan") for h, p in zip(hd, present, strict=True)]
            out["assd"] = [float(a) if p else float("nan") for a, p in zip(assd, present, strict=True)]
    return out
