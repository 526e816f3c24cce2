"""planes pretraining and fine-tuning in 2 gloo processes on 127.0.0.1 against 1 process.

Exact checks use a per-sample normalisation (BatchNorm swapped for GroupNorm in the workers):
then 2 processes sharing each global batch take the steps 1 process takes with the whole batch,
to float32 rounding (stated tolerance: weights within rtol 1e-4 / atol 1e-5, losses within
rel 1e-4). With the real BatchNorm U-Net, each CPU process normalises over its own share
(SyncBatchNorm is CUDA only), so the wired-up rule is checked to run, write once and learn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import planes_ddp_workers as w
import pytest
from test_planes import CFG, CLASSES, SPEC, phantom

from reprolab.core import distributed as dd
from reprolab.core.io import read_json, read_jsonl
from reprolab.medical.anatomy import tissue_labels
from reprolab.medical.planes import build_pretext_data, build_segmentation_data, run_pretraining
from reprolab.medical.planes_data import synthesise_demo

TWO = dd.Topology(procs_per_node=2)
# batch 5 over 16 subjects: batches 5, 5, 5 (split 3 + 2, so the share weights matter) and a skipped 1
PRETRAIN = {**CFG, "pretrain": {**CFG["pretrain"], "epochs": 3, "batch_size": 5, "l1": 1e-5}}
FINETUNE = {**CFG, "seeds": [1], "finetune": {**CFG["finetune"], "epochs": 2, "steps_per_epoch": 3, "batch_size": 5,
                                              "budgets": ["all"], "loss": "dice_ce", "val_every": 1,
                                              "surface_metrics": False}}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    anatomy = phantom()
    studies = synthesise_demo(anatomy, tissue_labels(anatomy), SPEC)
    folder = tmp_path_factory.mktemp("planes_ddp")
    build_pretext_data(studies, CFG["preprocess"]["spacing_mm"], CFG["preprocess"]["size"], folder / "pretext.npz")
    build_segmentation_data(studies, CFG["preprocess"]["spacing_mm"], CFG["preprocess"]["size"], CLASSES,
                            folder / "segmentation.npz")
    return {"pretext": str(folder / "pretext.npz"), "segmentation": str(folder / "segmentation.npz")}


def _close(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-4, atol=1e-5, err_msg=k)


def _losses(history: list[dict], keys: tuple[str, ...]) -> list[float]:
    return [float(h[k]) for h in history for k in keys]


def test_two_processes_pretrain_like_one_and_a_killed_run_resumes_with_one(data, tmp_path: Path):
    one = w.pretrain_exact(PRETRAIN, data["pretext"], str(tmp_path / "one"))
    two = dd.launch(w.pretrain_exact, (PRETRAIN, data["pretext"], str(tmp_path / "two")), TWO, "cpu")
    assert (one["world"], two["world"]) == (1, 2)
    _close(one["weights"], two["weights"])
    keys = ("train_loss", "train_heat", "train_slice", "val_loss")
    assert _losses(two["history"], keys) == pytest.approx(_losses(one["history"], keys), rel=1e-4)
    assert two["best_epoch"] == one["best_epoch"]
    # killed in its second validation (epoch 2) in both processes: one epoch survives, on disk once
    with pytest.raises(Exception):  # noqa: B017 - the launcher wraps the worker's error
        dd.launch(w.pretrain_exact, (PRETRAIN, data["pretext"], str(tmp_path / "killed"), 2), TWO, "cpu")
    assert len(read_jsonl(tmp_path / "killed" / "history.jsonl")) == 1
    resumed = w.pretrain_exact(PRETRAIN, data["pretext"], str(tmp_path / "killed"))
    _close(one["weights"], resumed["weights"])
    assert _losses(resumed["history"], keys) == pytest.approx(_losses(one["history"], keys), rel=1e-4)


def test_two_processes_fine_tune_like_one(data, tmp_path: Path):
    one = w.finetune_exact(FINETUNE, data["segmentation"], str(tmp_path / "one"))["run"]
    two = dd.launch(w.finetune_exact, (FINETUNE, data["segmentation"], str(tmp_path / "two")), TWO, "cpu")
    assert two["world"] == 2
    two = two["run"]
    keys = ("train_loss", "val_dice")
    assert _losses(two["history"], keys) == pytest.approx(_losses(one["history"], keys), rel=1e-4)
    assert two["best_epoch"] == one["best_epoch"]
    np.testing.assert_allclose(two["test"]["dice"], one["test"]["dice"], rtol=1e-4, atol=1e-5)


def test_the_pretraining_rule_runs_the_configured_processes_and_writes_once(data, tmp_path: Path):
    """The real BatchNorm U-Net through ``resources``: 2 processes, rank 0's files, and it learns."""
    cfg = {**PRETRAIN, "pretrain": {**PRETRAIN["pretrain"], "epochs": 6, "batch_size": 4},
           "resources": {"mem_mb": 1000, "runtime": 5, "gpus": 0, "processes_per_node": 2}}
    out = {k: str(tmp_path / f"{k}.{ext}") for k, ext in (("model", "pt"), ("history", "json"), ("eval", "json"),
                                                            ("examples", "npz"))}
    run_pretraining("multitask", cfg, data["pretext"], "cpu", 2, str(tmp_path / "ckpt"), out)
    history = read_json(out["history"])["epochs"]
    assert len(history) == 6 and len(read_jsonl(tmp_path / "ckpt" / "history.jsonl")) == 6  # one line per epoch
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert read_json(out["eval"])["n_images"] > 0
