"""Training functions run inside spawned data-parallel processes by tests/snn/test_training_distributed.py."""

from __future__ import annotations

from typing import Any

from reprolab.core import distributed as dd

EXP = {"dataset": "digits", "train_seed": 0, "model": {"arch": "vgg", "layers": [8, "A", 16, "A"]},
       "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "epochs": 3, "batch_size": 32}}
N_TRAIN = 640  # a multiple of the global batch: every process gets equal shares


def train_digits_ann(checkpoint_dir: str) -> dict[str, Any]:
    """calib's Conv-BN-ReLU ANN on real digits with the shared fit loop; the history and the process count."""
    from reprolab.data.static import digits_split
    from reprolab.snn.calib import train_ann

    splits = digits_split()
    x, y = splits["train"]
    _, _, history = train_ann(EXP, (x[:N_TRAIN], y[:N_TRAIN]), splits["test"], checkpoint_dir, "cpu", progress=False)
    return {"history": history, "world": dd.world_size()}
