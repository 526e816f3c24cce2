"""Temporal Efficient Training (Deng, Li, Zhang, Gu, ICLR 2022, arXiv:2202.11946).

Two arms trained on the same data and seeds: SDT (cross-entropy of the time-averaged
output, Eq. 4) and TET (mean over time of the per-step cross-entropy plus an MSE
regulariser, Eqs. 8-10). Temporal scalability (claim C2) evaluates a network trained at
``T`` on inputs of other lengths: event recordings re-binned into ``T'`` frames, static
images repeated ``T'`` times.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from reprolab.core.distributed import is_main, launch_training, world_size
from reprolab.core.errors import ConfigError
from reprolab.data.pipeline import STATIC_DATASETS
from reprolab.data.static import CACHE_NORMALIZATION
from reprolab.snn.data import ArrayBatches, Augment, Preprocess, Standardize
from reprolab.snn.losses import sdt_loss, tet_loss
from reprolab.snn.models import SpikingNet, build_model
from reprolab.snn.training import StepFn, TrainSpec, evaluate, fit, loss_step

NUM_CLASSES = {"cifar100": 100}


def is_static(dataset: str) -> bool:
    """Static images (repeated over time) rather than event frames."""
    return dataset in STATIC_DATASETS


def load_arrays(path: str | Path, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``[N, T, P, H, W]`` or images ``[N, C, H, W]`` and labels from a cache ``.npz``."""
    with np.load(path) as z:
        key = "frames" if "frames" in z.files else "images"
        data, labels = z[key], z["labels"]
    if limit is not None:
        data, labels = data[:limit], labels[:limit]
    return data, labels


def pixels_of(images: np.ndarray, dataset: str) -> np.ndarray:
    """Cached images of a static dataset as [0, 1] pixels (undoing the cache's standardisation, in place)."""
    if dataset in CACHE_NORMALIZATION:
        mean, std = (np.asarray(v, images.dtype).reshape(1, -1, 1, 1) for v in CACHE_NORMALIZATION[dataset])
        images *= std
        images += mean
    return images


def make_batches(exp: dict[str, Any], path: str | Path, train: bool, T: int | None = None,
                 limit: int | None = None) -> ArrayBatches:
    """Batches of one split for an experiment config (``config/schemas/tet.yaml``).

    Static images with ``normalize`` set are standardised with its statistics after
    augmentation, from [0, 1] pixels (torchvision's ``RandomCrop`` then ``Normalize``, as the
    official CIFAR loader).
    """
    data, labels = load_arrays(path, limit)
    frames = exp.get("frames", {})
    finalize = None
    if is_static(exp["dataset"]):
        pre = Preprocess(repeat_T=T or exp["T"])
        if "normalize" in exp:
            data = pixels_of(np.array(data, dtype=np.float32), exp["dataset"])
            finalize = Standardize(tuple(exp["normalize"]["mean"]), tuple(exp["normalize"]["std"]))
    else:
        if "normalize" in exp:
            raise ConfigError(f"experiment on {exp['dataset']}: 'normalize' applies to static images only; event "
                              "frames are normalised by frames.normalize")
        pre = Preprocess(normalize=frames.get("normalize", "none"), resize=frames.get("resize"))
    aug = Augment(**exp.get("augment", {})) if train else None
    return ArrayBatches(data, labels, exp["optim"]["batch_size"], pre, aug, shuffle=train, finalize=finalize)


def build_for(exp: dict[str, Any], batches: ArrayBatches) -> SpikingNet:
    """The experiment's network, sized from one batch of its data."""
    x, _ = next(batches.epoch(seed=0, epoch=0))
    num_classes = NUM_CLASSES.get(exp["dataset"], 10)
    return build_model(exp["model"], in_channels=x.shape[2], num_classes=num_classes, input_size=x.shape[-1])


def arm_step(arm: str, loss_cfg: dict[str, float]) -> StepFn:
    """Training step of an arm: ``sdt`` or ``tet`` (lambda and phi from the experiment's ``loss``)."""
    if arm == "sdt":
        return loss_step(sdt_loss)
    if arm == "tet":
        lam, phi = float(loss_cfg["lambda"]), float(loss_cfg["phi"])
        return loss_step(lambda out, y: tet_loss(out, y, lam, phi))
    raise ConfigError(f"papers.tet.arms: unknown arm {arm!r}; use sdt or tet")


def train_arm(exp: dict[str, Any], arm: str, seed: int, train_path: str | Path, test_path: str | Path,
              checkpoint_dir: str | Path, device: str, init_state: dict[str, torch.Tensor] | None = None,
              keep_predictions: bool = False,
              sync_batchnorm: bool = False) -> tuple[SpikingNet, list[dict[str, Any]], np.ndarray]:
    """Train one arm with one seed; resumable through ``checkpoint_dir``.

    Parameters
    ----------
    exp
        Experiment config (its ``loss`` gives lambda and phi of the TET arm).
    arm
        ``sdt`` or ``tet``.
    seed
        Seeds weight initialisation, batch order and augmentation.
    init_state
        Weights to start from (time inheritance training), else a fresh initialisation.
    keep_predictions
        Store every epoch's per-sample test predictions in its history record (time
        inheritance compares runs at an equal epoch or wall-time budget, paired on samples).
    sync_batchnorm
        Under data-parallel training on GPUs, BatchNorm statistics over the global batch.

    Returns
    -------
    model, history, targets
        The trained network, one record per epoch, and the test labels in evaluation order.
    """
    from reprolab.core.runtime import seed_everything

    limit = exp.get("limit", {})
    T = exp["T"]
    train = make_batches(exp, train_path, train=True, T=T, limit=limit.get("train"))
    test = make_batches(exp, test_path, train=False, T=T, limit=limit.get("test"))
    seed_everything(seed)
    model = build_for(exp, test)
    if init_state is not None:
        model.load_state_dict(init_state)
    spec = TrainSpec.from_config(exp["optim"], seed, arm=arm, loss=exp["loss"], model=exp["model"], T=T,
                                 dataset=exp["dataset"], inherited=init_state is not None,
                                 normalize=exp.get("normalize"), keep_predictions=keep_predictions)
    history = fit(model, train, test, arm_step(arm, exp["loss"]), spec, checkpoint_dir, device,
                  keep_predictions=keep_predictions, sync_batchnorm=sync_batchnorm)
    return model, history, test.labels


def evaluate_over_T(model: SpikingNet, exp: dict[str, Any], test_paths: dict[int, str | Path],
                    device: str) -> dict[int, dict[str, Any]]:
    """Accuracy (and per-step accuracy) of a trained model at every inference ``T``.

    ``test_paths`` maps ``T`` to the test cache holding ``T`` frames (event data) or to the
    image cache (static data, repeated ``T`` times).
    """
    limit = exp.get("limit", {}).get("test")
    model.to(device)
    return {
        int(T): evaluate(model, make_batches(exp, path, train=False, T=int(T), limit=limit), device, per_step=True)
        for T, path in sorted(test_paths.items())
    }


def save_model(path: str | Path, model: SpikingNet, exp: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write a ``state_dict`` with the config needed to rebuild the network (not a pickled module)."""
    from reprolab.core.io import atomic_path

    with atomic_path(path) as tmp:
        torch.save({"state_dict": model.state_dict(), "experiment": exp, **meta}, tmp)


def load_model(path: str | Path, exp: dict[str, Any], test_path: str | Path) -> SpikingNet:
    """Rebuild the experiment's network and load the weights written by :func:`save_model`."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    model = build_for(exp, make_batches(exp, test_path, train=False, limit=2))
    model.load_state_dict(state["state_dict"])
    return model


def run_training(exp: dict[str, Any], arm: str, seed: int, train_path: str, test_path: str, checkpoint_dir: str,
                 device_pref: str, threads: int, out_model: str, out_history: str, init_model: str | None = None,
                 keep_predictions: bool = False, resources: dict[str, Any] | None = None,
                 log_path: str | None = None) -> None:
    """The ``tet_train`` and ``tet_tit`` rules: train one arm and seed, write the model and its history.

    ``init_model`` (time inheritance training) starts from the weights of another run of the
    same architecture, typically trained at a smaller T. With ``keep_predictions`` the
    history holds every epoch's per-sample test predictions and the test ``targets``. With
    ``resources`` asking for several processes (``gpus``, ``nodes``, ``processes_per_node``),
    training is data-parallel (:mod:`reprolab.core.distributed`); each process logs to
    ``log_path``.
    """
    launch_training(_train_and_save, (exp, arm, seed, train_path, test_path, checkpoint_dir, out_model, out_history,
                                      init_model, keep_predictions), resources, device_pref, threads, log_path)


def _train_and_save(exp: dict[str, Any], arm: str, seed: int, train_path: str, test_path: str, checkpoint_dir: str,
                    out_model: str, out_history: str, init_model: str | None, keep_predictions: bool, *,
                    device: str, sync_batchnorm: bool) -> None:
    """Body of :func:`run_training` in every process; rank 0 writes the outputs."""
    from reprolab.core.io import write_json

    init_state = torch.load(init_model, map_location="cpu", weights_only=False)["state_dict"] if init_model else None
    model, history, targets = train_arm(exp, arm, seed, train_path, test_path, checkpoint_dir, device,
                                        init_state=init_state, keep_predictions=keep_predictions,
                                        sync_batchnorm=sync_batchnorm)
    if is_main():
        save_model(out_model, model.cpu(), exp, {"arm": arm, "seed": seed})
        write_json(out_history, {"arm": arm, "seed": seed, "T": exp["T"], "dataset": exp["dataset"],
                                 "device": device, "processes": world_size(), "inherited_from": init_model,
                                 "epochs": history, **({"targets": targets.tolist()} if keep_predictions else {})})


def run_evaluation(exp: dict[str, Any], model_path: str, test_paths: dict[str, str], device_pref: str,
                   threads: int, out: str) -> None:
    """The ``tet_evaluate`` rule: accuracy at every inference T, and per-step accuracy."""
    from reprolab.core.io import write_json
    from reprolab.core.runtime import choose_device, set_threads

    set_threads(threads)
    device = choose_device(device_pref)
    state = torch.load(model_path, map_location="cpu", weights_only=False)
    paths = {int(T): p for T, p in test_paths.items()}
    model = load_model(model_path, exp, paths[exp["T"]])
    by_T = evaluate_over_T(model, exp, paths, device)
    write_json(out, {
        "arm": state["arm"], "seed": state["seed"], "dataset": exp["dataset"], "T_train": exp["T"],
        "accuracy": by_T[exp["T"]]["accuracy"], "per_step_accuracy": by_T[exp["T"]]["per_step_accuracy"],
        "n_test": by_T[exp["T"]]["n"], "by_T": {str(T): r["accuracy"] for T, r in by_T.items()},
        "predictions": by_T[exp["T"]]["predictions"], "targets": by_T[exp["T"]]["targets"],
        "by_T_predictions": {str(T): r["predictions"] for T, r in by_T.items()},
    })
