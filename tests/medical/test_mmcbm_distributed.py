"""mmcbm backbone training in 2 gloo processes on 127.0.0.1 against 1 process.

The workers give the EfficientNet per-sample normalisation (GroupNorm for BatchNorm) and no
stochastic depth, so that 2 processes sharing each global batch must take the steps of 1
process (stated tolerance: weights within rtol 1e-4 / atol 1e-5, training loss within rel 1e-4).
The real backbone (BatchNorm per process on CPU) is checked to run from ``resources`` and
write once.
"""

from __future__ import annotations

import mmcbm_ddp_workers as w
import numpy as np
import pytest
from test_mmcbm_pipeline import SETTINGS

from reprolab.core import distributed as dd
from reprolab.core.io import read_json, read_jsonl
from reprolab.medical.mmcbm_cohort import run_cohort
from reprolab.medical.mmcbm_folds import run_folds
from reprolab.medical.mmcbm_pipeline import train_backbone

TWO = dd.Topology(procs_per_node=2)
# 30 training patients in batches of 9, 9, 9, 3: every batch is split unevenly (5 + 4, 2 + 1)
EXACT = {**SETTINGS, "backbone": {**SETTINGS["backbone"], "epochs": 2, "batch_size": 9, "dropout": 0.0}}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    d = tmp_path_factory.mktemp("mmcbm_ddp")
    run_cohort(SETTINGS, str(d / "cohort.npz"), str(d / "cohort.json"))
    run_folds(str(d / "cohort.npz"), SETTINGS, str(d / "folds.json"))
    return d


def _args(d, folder, settings=EXACT) -> tuple:
    return (str(d / "cohort.npz"), str(d / "folds.json"), 0, 0, settings, str(folder / "ck"), str(folder / "bb.pt"),
            str(folder / "bbh.json"), None)


# The last bias of the attention scores adds one constant per feature to every image's score, which
# the softmax over images cancels: its gradient is zero up to float rounding, and AdamW turns that
# rounding (which differs with the batch split) into steps of about lr. It changes no output.
NO_EFFECT = ("pool.score.2.bias",)


def _close(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    bad = {k: float(np.abs(np.asarray(b[k], float) - np.asarray(a[k], float)).max()) for k in a
           if k not in NO_EFFECT and not np.allclose(b[k], a[k], rtol=1e-4, atol=1e-5)}
    assert not bad, bad


def _numbers(path: str) -> list[float]:
    return [float(e[k]) for e in read_json(path)["epochs"] for k in ("train_loss", "train_accuracy",
                                                                     "test_fold_macro_f1")]


def test_two_processes_train_the_backbone_like_one_and_resume_with_one(cohort, tmp_path):
    one = w.train_exact(_args(cohort, tmp_path / "one"))
    two = dd.launch(w.train_exact, (_args(cohort, tmp_path / "two"),), TWO, "cpu")
    assert (one["world"], two["world"]) == (1, 2)
    _close(one["weights"], two["weights"])
    assert _numbers(two["history"]) == pytest.approx(_numbers(one["history"]), rel=1e-4)
    with pytest.raises(Exception):  # noqa: B017 - the launcher wraps the worker's error
        dd.launch(w.train_exact, (_args(cohort, tmp_path / "killed"), 2), TWO, "cpu")
    assert len(read_jsonl(tmp_path / "killed" / "ck" / "history.jsonl")) == 1
    resumed = w.train_exact(_args(cohort, tmp_path / "killed"))
    _close(one["weights"], resumed["weights"])
    assert _numbers(resumed["history"]) == pytest.approx(_numbers(one["history"]), rel=1e-4)


def test_the_backbone_rule_runs_the_configured_processes_and_writes_once(cohort, tmp_path):
    settings = {**SETTINGS, "resources": {"mem_mb": 1000, "runtime": 5, "gpus": 0, "processes_per_node": 2}}
    args = _args(cohort, tmp_path, settings)
    train_backbone(*args[:5], "cpu", *args[5:8], None, 2)
    history = read_json(args[7])
    assert len(history["epochs"]) == SETTINGS["backbone"]["epochs"]
    assert len(read_jsonl(tmp_path / "ck" / "history.jsonl")) == SETTINGS["backbone"]["epochs"]
    assert (tmp_path / "bb.pt").exists()
