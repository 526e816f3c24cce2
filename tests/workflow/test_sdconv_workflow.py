"""End to end: the ``sdconv`` DAG at smoke scale, and the paper-scale DAG with and without ImageNet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from reprolab.report import VERDICTS

from ..conftest import run_snakemake

pytestmark = pytest.mark.slow

RUNS = ("static", "masked_a0.001", "dynamic", "sdconv_a0.001")
FIGURES = ("accuracy_vs_nonzero", "layer_sparsity", "sparsity_accuracy_epochs", "attention_entropy")


def test_sdconv_smoke_outputs(smoke_run: Path):
    res = smoke_run / "results/sdconv"
    html = (res / "report.html").read_text()
    assert html.count('<img src="data:image/png;base64,') == len(FIGURES)
    assert "reconstruction" in html and "FlopCounterMode" in html
    for name in FIGURES:
        assert (res / "figures" / f"{name}.png").stat().st_size > 1000
    claims = json.loads((res / "claims.json").read_text())
    assert claims["paper"] == "sdconv"
    by_id = {c["id"]: c for c in claims["claims"]}
    assert set(by_id) == {"C1", "C2a", "C2a-ni", "C2b", "bar", "C3"}
    for claim in by_id.values():
        assert claim["verdict"] in VERDICTS and claim["scale"] == "smoke" and claim["measured"]
    assert by_id["C3"]["verdict"] == "not tested"
    for cid in ("C1", "C2a", "C2a-ni", "C2b", "bar"):  # judged at the alpha chosen on validation, every alpha shown
        assert [r["setting"] for r in by_id[cid]["by_setting"]] == ["alpha=0.001 (chosen)"]
    # alpha was chosen on a validation split carved from the training set, before the test evaluation
    split = json.loads((res / "digits/validation_split.json").read_text())
    assert split["n_train"] == 256 and split["stratified"] and not set(split["fit"]) & set(split["validation"])
    selection = json.loads((res / "digits/alpha_selection.json").read_text())
    assert selection["chosen"] == 0.001 and selection["n_validation"] == len(split["validation"])
    assert (res / "digits/alpha_selection.json").stat().st_mtime <= min(
        (res / "digits" / f"{run}_s1" / "eval.json").stat().st_mtime for run in RUNS)
    assert "chosen on the validation split before the test evaluation" in html
    for run in RUNS:
        ev = json.loads((res / "digits" / f"{run}_s1" / "eval.json").read_text())
        assert 0.0 <= ev["accuracy"] <= 1.0 and ev["n_test"] == 100
        assert len(ev["predictions"]) == len(ev["targets"]) == 100 and ev["num_classes"] == 10
        assert ev["accuracy"] == sum(p == t for p, t in zip(ev["predictions"], ev["targets"], strict=True)) / 100
        assert ev["sparse_inference"]["prediction_agreement"] == 1.0
        assert ev["params"]["nonzero"] <= ev["params"]["dense"]
        assert (smoke_run / "benchmarks/sdconv" / f"train_digits_{run}_s1.tsv").exists()
        assert (smoke_run / "benchmarks/sdconv" / f"evaluate_digits_{run}_s1.tsv").exists()
        hist = json.loads((res / "digits" / f"{run}_s1" / "history.json").read_text())
        assert len(hist["epochs"]) == 2 and all("kernel_density" in e for e in hist["epochs"])
        assert hist["n_fit"] == len(split["fit"]) and hist["validation"]["n"] == len(split["validation"])
    flops = json.loads((res / "flops.json").read_text())
    assert flops["all_match"] and set(flops["architectures"]["digits"]["arms"]) == {r.split("_")[0] for r in RUNS}
    sd = json.loads((res / "digits/sdconv_a0.001_s1/eval.json").read_text())
    dy = json.loads((res / "digits/dynamic_s1/eval.json").read_text())
    assert by_id["C1"]["measured"].startswith(
        f"non-zero ratio {100 * sd['params']['nonzero'] / dy['params']['nonzero']:.1f} %")


def test_paper_scale_stops_with_instructions_without_imagenet(workflow_dir: Path):
    proc = run_snakemake(workflow_dir, "-n", "--config", "scale=paper", "--", "results/sdconv/report.html",
                         check=False, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "image-net.org" in out and "ILSVRC2012_img_train.tar" in out


def test_paper_scale_dry_run_with_cifar100_and_present_imagenet(workflow_dir: Path):
    downloads = workflow_dir / "resources/downloads/imagenet"
    downloads.mkdir(parents=True)
    for name in ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar", "ILSVRC2012_devkit_t12.tar.gz"):
        (downloads / name).write_bytes(b"placeholder")  # dry run: only presence matters
    proc = run_snakemake(workflow_dir, "-n", "--config", "scale=paper", "--", "results/sdconv/report.html",
                         timeout=600)
    out = proc.stdout
    assert "data_imagenet" in out and "sdconv_train" in out
    # 4 experiments x 8 runs x 3 seeds
    assert "results/sdconv/inr18/sdconv_a1e-05_s3/model.pt" in out
    assert "resources/static/cifar100/train.npz" in out


def test_chosen_alpha_outside_the_grid_stops_at_parse_time(workflow_dir: Path):
    proc = run_snakemake(workflow_dir, "-n", "--config", "scale=smoke", "--", "results/sdconv/report.html",
                         check=False)
    assert proc.returncode == 0
    path = workflow_dir / "config/papers/sdconv.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["papers"]["sdconv"]["scales"]["smoke"]["chosen_alpha"] = 0.5
    path.write_text(yaml.safe_dump(cfg))
    proc = run_snakemake(workflow_dir, "-n", "--config", "scale=smoke", "--", "results/sdconv/report.html",
                         check=False)
    assert proc.returncode != 0 and "papers.sdconv.chosen_alpha" in proc.stdout + proc.stderr
