"""Neurons and surrogate gradients on top of SpikingJelly's ``activation_based`` API."""

from __future__ import annotations

import torch
from spikingjelly.activation_based import neuron, surrogate


class _TriangleSpike(torch.autograd.Function):
    """Heaviside with a strict ``>`` and the triangle surrogate of TET's ``ZIF``.

    Forward: ``H(x) = 1[x > 0]`` with ``x = u - V_th``. Backward:
    ``dH/dx = max(0, gamma - |x|) / gamma**2`` (Deng et al., ICLR 2022, code ``ZIF``).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, gamma: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.gamma = gamma
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        gamma = ctx.gamma
        surrogate_grad = (gamma - x.abs()).clamp(min=0) / (gamma * gamma)
        return grad_output * surrogate_grad, None


class Triangle(surrogate.SurrogateFunctionBase):
    """SpikingJelly surrogate module wrapping :class:`_TriangleSpike` (``alpha`` = gamma)."""

    def __init__(self, alpha: float = 1.0, spiking: bool = True) -> None:
        super().__init__(alpha, spiking)

    @staticmethod
    def spiking_function(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return _TriangleSpike.apply(x, alpha)

    @staticmethod
    def primitive_function(x: torch.Tensor, alpha: float) -> torch.Tensor:
        # Integral of the triangle: a piecewise-quadratic ramp from 0 to 1 over [-alpha, alpha].
        y = (x + alpha).clamp(0, 2 * alpha)
        return torch.where(y <= alpha, y * y / (2 * alpha * alpha), 1 - (2 * alpha - y) ** 2 / (2 * alpha * alpha))


class LIF(neuron.LIFNode):
    """SpikingJelly's ``LIFNode`` with one firing rule in training and evaluation, time split by ``unbind``.

    - One rule: SpikingJelly's ``LIFNode`` switches to TorchScript kernels in eval mode that fire
      on ``v >= V_th``, while its training path (through the surrogate) fires on ``v > V_th``,
      the rule of TET's ``LIFSpike``. Here both modes run the same charge / fire / reset steps
      of ``BaseNode``, so a network is evaluated with the dynamics it was trained with.
    - ``unbind``: SpikingJelly's torch backend indexes ``x_seq[t]`` at every step; the backward
      pass of each index allocates and fills a zero tensor of the whole ``[T, N, ...]`` input,
      which costs O(T^2) memory traffic and dominated CPU training time (see
      bench/tet_throughput.py). ``unbind`` gives one gradient buffer for all steps.
    """

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        return neuron.BaseNode.single_step_forward(self, x)

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        if self.backend != "torch":
            raise ValueError(f"LIF runs the torch backend only (one firing rule), not {self.backend!r}")
        spikes, voltages = [], []
        for x in x_seq.unbind(0):
            spikes.append(self.single_step_forward(x))
            if self.store_v_seq:
                voltages.append(self.v)
        if self.store_v_seq:
            self.v_seq = torch.stack(voltages)
        return torch.stack(spikes)


def lif(decay: float = 0.5, v_threshold: float = 1.0, gamma: float = 1.0) -> LIF:
    """The LIF neuron of TET and MTT as a multi-step SpikingJelly node.

    ``u_t = decay * u_{t-1} + x_t``; spike ``o_t = 1[u_t > V_th]``; hard reset
    ``u_t <- u_t (1 - o_t)`` (Deng et al., ICLR 2022, Sec. 3 and code ``LIFSpike``). With
    SpikingJelly's ``decay_input=False`` and ``v_reset=0`` the charge is
    ``v - v / tau + x``, so ``tau = 1 / (1 - decay)``.
    """
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"LIF decay must be in [0, 1), got {decay}")
    return LIF(
        tau=1.0 / (1.0 - decay),
        decay_input=False,
        v_threshold=v_threshold,
        v_reset=0.0,
        surrogate_function=Triangle(alpha=gamma),
        detach_reset=False,
        step_mode="m",
    )
