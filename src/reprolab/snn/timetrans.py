"""MTT's communication module ``TimeTrans``: re-bin a spike train from ``T_in`` to ``T_out`` steps.

Du, Wu, Deng, Gu, "Temporal Flexibility in Spiking Neural Networks", ICLR 2025
(arXiv:2503.17394), Sec. 3 and Fig. 1; official code ``TimeTrans`` / ``table_spwn`` (mode 0,
"evenly distributed").

With ``S = min(T_in, T_out)`` and ``L = max(T_in, T_out)``, small index ``i`` owns the large
indices ``j`` in ``[b_i, b_{i+1})`` where ``b_k`` is ``k * L / S`` rounded with ties going
*down* (the official table subtracts ``1e-5`` before Python's ``round``).

- Expanding (``T_out > T_in``): output step ``j`` is a copy of the input step that owns it.
- Compressing (``T_out < T_in``): output step ``i`` is the SUM of the input steps it owns, so
  values may exceed 1 (integer, non-binary input to the next layer; never clamped).
- ``T_in == T_out``: identity.

Both directions are one matrix product with a 0/1 matrix ``M[T_out, T_in]`` over the time
axis of a multi-step tensor ``[T, N, ...]``, so gradients flow exactly as through the
official copy / sum.
"""

from __future__ import annotations

import numpy as np
import torch

from reprolab.core.errors import ConfigError

#: Re-binning modes of the official code; only 0 ("evenly distributed") is implemented there.
MODES = (0,)


def boundaries(T_in: int, T_out: int) -> np.ndarray:
    """Boundaries ``b_0 = 0 < b_1 < ... < b_S = L`` of the large-index blocks.

    ``b_k = ceil(k L / S - 1/2)``, i.e. ``k L / S`` rounded half *down*, computed in
    integers so that exact ``.5`` ties are not at the mercy of floating point.
    """
    if T_in < 1 or T_out < 1:
        raise ConfigError(f"TimeTrans needs positive time steps, got T_in={T_in}, T_out={T_out}")
    small, large = min(T_in, T_out), max(T_in, T_out)
    k = np.arange(small + 1, dtype=np.int64)
    # ceil((2kL - S) / (2S)) with integer floor division; b_0 = 0 by the same formula.
    return -((small - 2 * k * large) // (2 * small))


def owner(T_in: int, T_out: int) -> np.ndarray:
    """For every large index ``j`` in ``[0, L)``, the small index that owns it."""
    b = boundaries(T_in, T_out)
    return np.repeat(np.arange(len(b) - 1), np.diff(b))


def transfer_matrix(T_in: int, T_out: int) -> np.ndarray:
    """0/1 matrix ``M[T_out, T_in]`` with ``out[t] = sum_s M[t, s] in[s]``."""
    if T_in == T_out:
        return np.eye(T_in, dtype=np.float32)
    own = owner(T_in, T_out)
    large = len(own)
    onehot = np.zeros((large, min(T_in, T_out)), dtype=np.float32)
    onehot[np.arange(large), own] = 1.0
    return onehot.T.copy() if T_in > T_out else onehot


def time_trans(x: torch.Tensor, T_out: int, mode: int = 0) -> torch.Tensor:
    """Re-bin a multi-step tensor ``[T_in, N, ...]`` to ``[T_out, N, ...]`` (copy / sum).

    Parameters
    ----------
    x
        Spike trains (or any per-step tensor), time-major.
    T_out
        Number of output steps.
    mode
        Only ``0`` (evenly distributed); the official modes 1-3 have no table and crash.
    """
    if mode not in MODES:
        raise ConfigError(f"TimeTrans mode {mode} is not implemented; only mode 0 (evenly distributed) exists")
    T_in = x.shape[0]
    if T_in == T_out:
        return x
    m = torch.from_numpy(transfer_matrix(T_in, T_out)).to(device=x.device, dtype=x.dtype)
    return (m @ x.reshape(T_in, -1)).reshape(T_out, *x.shape[1:])


def time_trim(x: torch.Tensor, T_out: int) -> torch.Tensor:
    """``TimeTrans_HardTrim``: keep the first ``T_out`` steps when compressing, copy when expanding.

    The official DVS-Gesture model and the time-stepped DVS loaders feed the first spike
    layer only the first ``T`` frames (truncation, not re-binning).
    """
    T_in = x.shape[0]
    if T_out <= T_in:
        return x[:T_out]
    return time_trans(x, T_out)
