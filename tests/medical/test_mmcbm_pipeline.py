"""The mmcbm jobs end to end on a tiny generated cohort, without Snakemake; resumable training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from reprolab.medical import mmcbm_pipeline
from reprolab.medical.mmcbm_cohort import run_cohort
from reprolab.medical.mmcbm_evaluation import run_evaluation
from reprolab.medical.mmcbm_folds import run_folds
from reprolab.medical.mmcbm_pipeline import run_concept_fold, train_backbone
from reprolab.medical.mmcbm_report import make_figures, write_report

NORM = {"mean": [0.3], "std": [0.12]}
SETTINGS = {
    "enabled": True, "dataset": "generated", "seeds": [0], "n_folds": 2, "fold_source": "stratified", "fold_seed": 0,
    "image_size": 48, "normalization": {"FA": NORM, "ICGA": NORM, "US": NORM},
    "generator": {"seed": 0, "n_patients": 60, "image_size": 48, "noise": 0.05, "concept_strength": 0.4,
                  "report_fraction": 0.6, "omission": 0.2},
    "encoder": {"width_mult": 0.25, "depth_mult": 0.25, "imagenet": False},
    "backbone": {"lr": 0.003, "weight_decay": 0.01, "epochs": 2, "batch_size": 16, "dropout": 0.2, "hflip": True},
    "concepts": {"n_samples": 10, "svm_c": 0.1, "cav_split": 0.5, "min_positives": 2},
    "cbm": {"lr": 0.05, "epochs": 3, "batch_size": 16, "init": "zero"},
    "explain": {"top_k": 5, "check_k": 3},
    "claims": {"c1_margin": 0.05, "n_boot": 100, "intervention_min_effect": 0.025, "drop_min_effect": 0.025},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("mmcbm")
    run_cohort(SETTINGS, str(d / "cohort.npz"), str(d / "cohort.json"))
    run_folds(str(d / "cohort.npz"), SETTINGS, str(d / "folds.json"))
    for fold in (0, 1):
        train_backbone(str(d / "cohort.npz"), str(d / "folds.json"), fold, 0, SETTINGS, "cpu", str(d / f"ck{fold}"),
                       str(d / f"bb{fold}.pt"), str(d / f"bbh{fold}.json"))
        run_concept_fold(str(d / "cohort.npz"), str(d / "folds.json"), str(d / f"bb{fold}.pt"), fold, 0, SETTINGS,
                         "cpu", str(d / f"cbm{fold}"), str(d / f"eval{fold}.json"))
    return d


def test_fold_evaluation_holds_per_patient_predictions_of_every_arm(run):
    e = json.loads((run / "eval0.json").read_text())
    folds = json.loads((run / "folds.json").read_text())
    test = [i for i, f in enumerate(folds["folds"]) if f == 0]
    assert e["index"] == test and len(e["backbone"]["pred"]) == len(e["mmcbm"]["pred"]) == len(test)
    assert set(e["single_modality"]) == set(e["modality_drop"]) == {"FA", "ICGA", "US"}
    assert e["cav"]["patients_used"] > 0 and len(e["class_weights"]) == 3
    iv = e["intervention"]
    assert iv["truth"] == "generator" and len(iv["pred"]) == len(iv["order"]) + 1
    assert np.asarray(e["class_weights"]).min() > 0 and np.asarray(e["class_weights"]).max() < 1


def test_killed_backbone_training_resumes_to_identical_weights(run, tmp_path, monkeypatch):
    d = run
    calls = {"n": 0}
    original = mmcbm_pipeline.predict_backbone

    def dies_in_second_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        return original(*args, **kwargs)

    monkeypatch.setattr(mmcbm_pipeline, "predict_backbone", dies_in_second_epoch)
    args = (str(d / "cohort.npz"), str(d / "folds.json"), 0, 0, SETTINGS, "cpu", str(tmp_path / "ck"),
            str(tmp_path / "bb.pt"), str(tmp_path / "bbh.json"))
    with pytest.raises(KeyboardInterrupt):
        train_backbone(*args)
    assert not (tmp_path / "bb.pt").exists()
    monkeypatch.setattr(mmcbm_pipeline, "predict_backbone", original)
    train_backbone(*args)
    resumed, uninterrupted = torch.load(tmp_path / "bb.pt"), torch.load(d / "bb0.pt")
    assert resumed.keys() == uninterrupted.keys()
    for k in resumed:
        torch.testing.assert_close(resumed[k], uninterrupted[k], rtol=0, atol=0)
    h1, h0 = json.loads((tmp_path / "bbh.json").read_text()), json.loads((d / "bbh0.json").read_text())
    assert [r["train_loss"] for r in h1["epochs"]] == [r["train_loss"] for r in h0["epochs"]]


def test_evaluation_figures_and_report(run, tmp_path):
    d = run
    metrics = tmp_path / "metrics.json"
    run_evaluation(str(d / "cohort.npz"), str(d / "folds.json"), [str(d / "eval0.json"), str(d / "eval1.json")],
                   [str(d / "bbh0.json"), str(d / "bbh1.json")], SETTINGS, str(metrics))
    m = json.loads(metrics.read_text())
    assert len(m["oof"]["labels"]) == SETTINGS["generator"]["n_patients"]
    assert (np.asarray(m["oof"]["mmcbm"]) >= 0).all() and m["t1"]["mmcbm"]["macro_f1"]["n"] == 2
    assert m["concepts"]["reference_kind"].startswith("generator") and m["oof"]["reference"] is not None
    names = ("concepts", "cav", "confusion", "intervention", "ablation", "training")
    figs = {n: str(tmp_path / f"{n}.png") for n in names}
    make_figures(str(metrics), figs)
    write_report(str(metrics), str(d / "cohort.json"), str(d / "folds.json"), list(figs.values()), [], SETTINGS,
                 {"scale": "smoke", "device": "cpu", "data_dir": "resources"}, str(tmp_path / "report.html"),
                 str(tmp_path / "claims.json"))
    html = (tmp_path / "report.html").read_text()
    assert "pipeline check with known truth" in html and "reader study" in html
    claims = {c["id"]: c for c in json.loads((tmp_path / "claims.json").read_text())["claims"]}
    assert set(claims) == {"C1", "C1-value", "C2", "C3", "C4", "C5"}
    assert claims["C3"]["verdict"] == claims["C1-value"]["verdict"] == "not tested"
