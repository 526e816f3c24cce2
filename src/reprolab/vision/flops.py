"""Multiply-add counts of static, dynamic and sparse dynamic convolutions.

The dense count comes from PyTorch's maintained counter
(:class:`torch.utils.flop_counter.FlopCounterMode`), which counts the matrix products and
convolutions a forward pass dispatches (2 FLOPs per multiply-add; element-wise work such as
batch norm, activations, softmax, pooling and mask multiplication is not counted). For a
dynamic convolution that is three terms, all visible to the counter:

- attention: ``C_in * hidden + hidden * K`` (the two FC layers on the pooled input);
- aggregation: ``K * |W_k|`` (+ ``K * C_out`` for a bias) for ``sum_k pi_k W_k``;
- convolution: ``H_out * W_out * C_out * (C_in / groups) * k * k``, as a static conv.

The sparse count keeps only what the stored non-zero weights need: the aggregation of
SD-Conv costs ``sum_k nnz(W_k (.) M_k)`` multiply-adds, and a convolution with a sparse
kernel costs its dense count times the kept fraction of the kernel actually applied (for
SD-Conv the union of the ``K`` masks, since the aggregated kernel is non-zero wherever any
``W_k`` is). Dense GPU kernels do not skip zeros, so wall-clock time does not drop with it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from reprolab.vision.sdconv import DynamicConv2d, MaskedConv2d, effective_weight, replaceable_layers

_MM_OPS = ("aten.mm", "aten.addmm", "aten.bmm")


def conv_madds(out_hw: tuple[int, int], in_channels: int, out_channels: int, kernel_size: int,
               groups: int = 1) -> int:
    """Multiply-adds of one static convolution for one sample (hand count)."""
    return out_hw[0] * out_hw[1] * out_channels * (in_channels // groups) * kernel_size * kernel_size


def dynamic_conv_madds(layer: DynamicConv2d, out_hw: tuple[int, int]) -> dict[str, int]:
    """Hand count of a dynamic convolution for one sample: attention, aggregation, convolution."""
    hidden = layer.attention.fc1.out_features
    kernel_numel = layer.weight[0].numel()
    return {
        "attention": layer.in_channels * hidden + hidden * layer.K,
        "aggregation": layer.K * kernel_numel + (layer.K * layer.out_channels if layer.bias is not None else 0),
        "conv": conv_madds(out_hw, layer.in_channels, layer.out_channels, layer.kernel_size, layer.groups),
    }


def _op_counts(counter: FlopCounterMode) -> dict[str, dict[str, int]]:
    """Per-module ``{op name: FLOPs}`` with the counter's root prefix removed from names."""
    out: dict[str, dict[str, int]] = {}
    for module_name, ops in counter.get_flop_counts().items():
        name = module_name.split(".", 1)[1] if "." in module_name else ""
        if module_name == "Global":
            name = "<total>"
        out[name] = {str(op): int(c) for op, c in ops.items()}
    return out


def _mm(ops: dict[str, int]) -> int:
    return sum(ops.get(op, 0) for op in _MM_OPS)


@torch.no_grad()
def dense_madds(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, Any]:
    """Multiply-adds of ``model`` for one input sample, with dense kernels, from the library counter.

    Parameters
    ----------
    model
        A network of :mod:`reprolab.vision.backbones` or a single layer (run in eval mode).
    input_shape
        ``(C, H, W)`` of one sample.

    Returns
    -------
    dict
        ``dense``: the total; ``layers``: per replaceable layer, its ``attention``,
        ``aggregation`` and ``conv`` terms.
    """
    was_training = model.training
    model.eval()
    x = torch.zeros(1, *input_shape, device=next(model.parameters()).device)
    with FlopCounterMode(display=False) as counter:
        model(x)
    model.train(was_training)
    ops = _op_counts(counter)
    layers: dict[str, dict[str, int]] = {}
    for name, layer in replaceable_layers(model).items():
        own = ops.get(name, {})
        prefix = f"{name}." if name else ""
        dynamic = isinstance(layer, DynamicConv2d)
        attention = _mm(ops.get(f"{prefix}attention", {})) // 2 if dynamic else 0
        layers[name] = {"attention": attention, "aggregation": _mm(own) // 2 - attention if dynamic else 0,
                        "conv": own.get("aten.convolution", 0) // 2}
    return {"dense": sum(ops["<total>"].values()) // 2, "layers": layers}


@torch.no_grad()
def sparse_madds(model: nn.Module, dense: dict[str, Any]) -> dict[str, Any]:
    """Add the count with non-zero weights only to a :func:`dense_madds` result of the same architecture.

    The dense counts depend on the architecture alone, so one library count serves every
    trained model of it; the masks of ``model`` then scale each masked layer's terms (see
    the module docstring).

    Returns
    -------
    dict
        ``dense``, ``sparse`` and ``layers`` (the dense terms plus ``sparse_aggregation``
        and ``sparse_conv``).

    Raises
    ------
    ValueError
        If ``dense`` was counted on another architecture (different replaceable layers).
    """
    layers = replaceable_layers(model)
    if set(layers) != set(dense["layers"]):
        raise ValueError("multiply-add counts belong to another architecture: replaceable layers differ")
    saved = 0
    out: dict[str, dict[str, int]] = {}
    for name, layer in layers.items():
        terms = dense["layers"][name]
        conv, aggregation = terms["conv"], terms["aggregation"]
        sparse_conv, sparse_agg = conv, aggregation
        if isinstance(layer, MaskedConv2d):
            sparse_conv = round(conv * _kept_fraction(effective_weight(layer)))
        elif isinstance(layer, DynamicConv2d) and layer.mask is not None:
            kernels = effective_weight(layer)
            sparse_conv = round(conv * float((kernels != 0).any(dim=0).float().mean()))
            bias_terms = layer.K * layer.out_channels if layer.bias is not None else 0
            sparse_agg = int((kernels != 0).sum()) + bias_terms
        saved += (conv - sparse_conv) + (aggregation - sparse_agg)
        out[name] = {**terms, "sparse_aggregation": sparse_agg, "sparse_conv": sparse_conv}
    return {"dense": dense["dense"], "sparse": dense["dense"] - saved, "layers": out}


def count_madds(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, Any]:
    """Dense and sparse multiply-adds of ``model`` for one input sample (:func:`dense_madds`, :func:`sparse_madds`)."""
    return sparse_madds(model, dense_madds(model, input_shape))


def _kept_fraction(weight: torch.Tensor) -> float:
    return float((weight != 0).float().mean())
