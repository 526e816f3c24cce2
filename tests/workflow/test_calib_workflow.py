"""End-to-end checks of the calib DAG at smoke scale (real scikit-learn digits)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from reprolab.report import VERDICTS

from ..conftest import run_snakemake

pytestmark = pytest.mark.slow


def _smoke_settings(root: Path) -> dict:
    from reprolab.core.config import deep_update

    section = yaml.safe_load((root / "config/papers/calib.yaml").read_text())["papers"]["calib"]
    return deep_update({k: v for k, v in section.items() if k != "scales"}, section["scales"]["smoke"])


def test_calib_smoke_report_claims_figures_and_benchmarks(smoke_run: Path):
    res = smoke_run / "results/calib"
    html = (res / "report.html").read_text()
    assert '<img src="data:image/png;base64,' in html and "src=\"http" not in html
    for name in ("accuracy_vs_T", "layer_mismatch", "clip_floor_split", "thresholds"):
        assert (res / "figures" / f"{name}.png").stat().st_size > 1000
    claims = json.loads((res / "claims.json").read_text())
    assert claims["paper"] == "calib"
    by_id = {c["id"]: c for c in claims["claims"]}
    assert {"C1", "C2a", "C2b", "C3", "C4"} <= set(by_id)
    for claim in by_id.values():
        assert claim["verdict"] in VERDICTS and claim["scale"] == "smoke" and claim["measured"]
        assert claim["paper_label"].startswith(("verified", "unverified"))
    assert by_id["C4"]["verdict"] == "not tested"
    settings = _smoke_settings(smoke_run)
    for cid in ("C1", "C2a", "C2b", "C3"):  # judged at focus_T, every configured T shown beside it
        assert [r["setting"].split(" ")[0] for r in by_id[cid]["by_setting"]] == [f"T={T}" for T in settings["eval_T"]]
        assert f"T={settings['focus_T']}" in by_id[cid]["note"]
    assert "Average pooling: linear (default) vs spiking (labelled variant)" in html
    bench = {p.stem for p in (smoke_run / "benchmarks/calib").glob("*.tsv")}
    assert "train_digits" in bench and "convert_digits_s1000" in bench
    for b in bench:  # every benchmark row is shown in the report's provenance table
        assert b in html


def test_calib_eval_covers_every_T_pipeline_and_layer(smoke_run: Path):
    settings = _smoke_settings(smoke_run)
    for seed in settings["seeds"]:
        run_dir = smoke_run / "results/calib/digits" / f"s{seed}"
        ev = json.loads((run_dir / "eval.json").read_text())
        assert ev["seed"] == seed and ev["folded_accuracy"] == pytest.approx(ev["ann_accuracy"], abs=1e-6)
        assert ev["pool"] == "linear" and not any(ev["pooling"])  # the official linear pooling: no pool neurons
        assert ev["num_classes"] == 10 and len(ev["ann_correct"]) == ev["n_test"]
        assert set(ev["by_T"]) == {str(T) for T in settings["eval_T"]}
        for T, res in ev["by_T"].items():
            assert set(res["accuracy"]) == set(settings["pipelines"])
            for name, steps in settings["pipelines"].items():
                assert 0.0 <= res["accuracy"][name] <= 1.0
                assert len(res["correct"][name]) == ev["n_test"]
                assert [s["step"] for s in res["stages"][name]] == steps
                for stage in res["stages"][name]:  # per-layer mismatch is measured at focus_T only
                    if int(T) == settings["focus_T"]:
                        assert len(stage["mismatch"]) == len(ev["layers"])
                    else:
                        assert stage["mismatch"] is None
            assert len(res["local_error"]["threshold_mse"]["clip"]) == len(ev["layers"])
            variant = res["pool_variant"]  # the spiking-pooling variant on the same images
            assert variant["pool"] == "spiking" and set(variant["accuracy"]) == set(settings["pool_variant"])
            assert all(len(b) == ev["n_test"] for b in variant["correct"].values())
        assert len(ev["thresholds"]["mse"][str(settings["focus_T"])]) == len(ev["layers"])
        state = torch.load(run_dir / "snn.pt", map_location="cpu", weights_only=False)
        assert state["seed"] == seed
        assert set(state["by_T"]) == {str(T) for T in settings["eval_T"]}
        advanced = state["by_T"][str(settings["focus_T"])]["advanced"]
        assert advanced["T"] == settings["focus_T"]
        assert all(n["v_init"] is not None for n in advanced["neurons"])  # potential calibration ran


IMAGENET_ARCHIVES = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar", "ILSVRC2012_devkit_t12.tar.gz")


def test_calib_paper_scale_stops_with_the_registry_instructions_without_imagenet(workflow_dir: Path):
    proc = run_snakemake(workflow_dir, "-n", "--config", "scale=paper", "--", "results/calib/report.html",
                         check=False, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "image-net.org" in out and "ILSVRC2012_img_train.tar" in out and "downloads/imagenet" in out


def test_calib_paper_scale_dry_run_plans_cifar_and_imagenet_experiments(workflow_dir: Path):
    downloads = workflow_dir / "resources/downloads/imagenet"
    downloads.mkdir(parents=True)
    for name in IMAGENET_ARCHIVES:
        (downloads / name).write_bytes(b"placeholder")  # dry run: only presence matters
    proc = run_snakemake(workflow_dir, "-n", "--config", "scale=paper", "--", "results/calib/report.html",
                         timeout=600)
    out = proc.stdout + proc.stderr
    for exp in ("cifar10vgg16", "cifar10resnet20", "cifar100vgg16", "cifar100resnet20", "imagenetresnet34",
                "imagenetvgg16"):
        assert f"results/calib/{exp}/ann.pt" in out
    assert "data_imagenet" in out and "resources/imagenet/prepared.json" in out
    # torchvision's ImageNet weights are fetched by the download rule (model.pretrained: torchvision)
    assert "resources/downloads/torchvision_imagenet/resnet34-b627a593.pth" in out
    assert "resources/downloads/torchvision_imagenet/vgg16_bn-6c64b313.pth" in out
    # ImageNet: one calibration run (the official script's), CIFAR: five
    assert "results/calib/imagenetresnet34/s1000/eval.json" in out
    assert "results/calib/imagenetresnet34/s1001/eval.json" not in out
    assert "results/calib/cifar10vgg16/s1004/eval.json" in out


def test_calib_focus_T_outside_eval_T_stops_at_parse_time(workflow_dir: Path):
    cfg_path = workflow_dir / "config/papers/calib.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["papers"]["calib"]["focus_T"] = 12
    cfg_path.write_text(yaml.safe_dump(cfg))
    proc = run_snakemake(workflow_dir, "-n", "--", "results/calib/report.html", check=False, timeout=600)
    assert proc.returncode != 0
    assert "papers.calib.focus_T = 12 is not in papers.calib.eval_T" in proc.stdout + proc.stderr


def test_calib_eventsim_runs_every_seed_and_pipeline_and_matches_the_time_stepped_snn(smoke_run: Path):
    settings = _smoke_settings(smoke_run)
    html = (smoke_run / "results/calib/report.html").read_text()
    assert "Event-driven accuracy of the calibrated SNNs" in html
    for seed in settings["seeds"]:
        res = json.loads((smoke_run / "results/calib/digits" / f"s{seed}" / "eventsim.json").read_text())
        ev = json.loads((smoke_run / "results/calib/digits" / f"s{seed}" / "eval.json").read_text())
        assert res["T"] == settings["focus_T"] and res["n_images"] == settings["eventsim"]["limit"]
        assert set(res["pipelines"]) == set(settings["eventsim"]["pipelines"])
        for name, r in res["pipelines"].items():
            # one spike per tick: the event-driven run is the time-stepped SNN (float64 reference)
            assert r["prediction_agreement"] == 1.0 and r["event_accuracy"] == r["time_stepped_accuracy"]
            assert r["identical_neuron_counts"]["identical"] == r["identical_neuron_counts"]["images"] > 0
            bits = ev["by_T"][str(settings["focus_T"])]["correct"][name][: res["n_images"]]
            assert r["eval_accuracy_same_images"] == pytest.approx(bits.count("1") / res["n_images"])
        assert (smoke_run / "benchmarks/calib" / f"eventsim_digits_s{seed}.tsv").exists()
