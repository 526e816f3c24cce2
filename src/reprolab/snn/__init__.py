"""Spiking-network core shared by the SNN papers (tet, mtt, calib).

Tensors are multi-step, ``[T, N, ...]`` (SpikingJelly's ``step_mode='m'``); data in
``[N, T, ...]`` is transposed once, at the data boundary (:func:`reprolab.snn.data.to_time_major`).
"""
