"""Losses on multi-step outputs ``O`` of shape ``[T, N, C]``.

Deng et al., "Temporal Efficient Training of Spiking Neural Network via Gradient
Re-weighting", ICLR 2022, Eqs. 4 (SDT) and 8-10 (TET).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sdt_loss(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Standard direct training: ``CE(mean_t O(t), y)`` (Eq. 4)."""
    return F.cross_entropy(outputs.mean(0), target)


def tet_loss(outputs: torch.Tensor, target: torch.Tensor, lam: float = 0.0, phi: float = 1.0) -> torch.Tensor:
    """Temporal efficient training: ``(1 - lam) * mean_t CE(O(t), y) + lam * MSE(O, phi)`` (Eqs. 8-10).

    Parameters
    ----------
    outputs
        ``[T, N, C]`` classifier outputs at every time step.
    target
        ``[N]`` class indices.
    lam
        Weight of the regulariser that pulls every logit towards the constant ``phi``.
    phi
        Regulariser target (``--means`` in the official code).
    """
    steps = outputs.shape[0]
    per_step_ce = F.cross_entropy(outputs.flatten(0, 1), target.repeat(steps))
    if lam == 0.0:
        return per_step_ce
    mse = F.mse_loss(outputs, torch.full_like(outputs, phi))
    return (1.0 - lam) * per_step_ce + lam * mse
