"""Spiking-network core shared by the SNN papers (tet, mtt, calib).

Tensors are multi-step, ``[T, N, ...]`` (SpikingJelly's ``step_mode='m'``); data in
``[N, T, ...]`` is transposed once, at the data boundary (:func:`reprolab.snn.data.to_time_major`).
"""

import logging as _logging
import warnings as _warnings


def _import_spikingjelly_quietly() -> None:
    """Import SpikingJelly without the root-logger handler and warnings it installs.

    SpikingJelly calls ``logging.basicConfig`` at import time, which would duplicate every
    log line of Snakemake and of our scripts.
    """
    root = _logging.getLogger()
    before = list(root.handlers)
    with _warnings.catch_warnings():
        _warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated.*")
        import spikingjelly.activation_based.neuron  # noqa: F401
    for handler in root.handlers[:]:
        if handler not in before:
            root.removeHandler(handler)


_import_spikingjelly_quietly()
