"""End to end: the mmcbm DAG at smoke scale (shared smoke_run), and the paper-scale DAG as a dry run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reprolab.report import VERDICTS

from ..conftest import run_snakemake

pytestmark = pytest.mark.slow


def test_mmcbm_report_claims_figures_and_benchmarks(smoke_run):
    wd = smoke_run
    html = (wd / "results/mmcbm/report.html").read_text()
    assert "Concept-based Interpretable Model" in html and "data:image/png;base64," in html
    assert "pipeline check with known truth" in html and "reader study" in html
    claims = json.loads((wd / "results/mmcbm/claims.json").read_text())
    assert claims["paper"] == "mmcbm"
    by_id = {c["id"]: c for c in claims["claims"]}
    assert set(by_id) == {"C1", "C1-value", "C2", "C3", "C4", "C5"}
    for claim in claims["claims"]:
        assert claim["verdict"] in VERDICTS and claim["measured"] and claim["scale"] == "smoke"
    assert by_id["C3"]["verdict"] == "not tested"
    for name in ("top_concepts", "cav_quality", "confusion", "intervention", "modality_drop", "training"):
        assert (wd / f"results/mmcbm/figures/{name}.png").stat().st_size > 1000
    metrics = json.loads((wd / "results/mmcbm/metrics.json").read_text())
    folds = json.loads((wd / "results/mmcbm/data/folds.json").read_text())
    assert len(metrics["oof"]["labels"]) == len(folds["patients"]) and folds["patients_in_two_folds"] == 0
    bench = wd / "benchmarks/mmcbm"
    assert (bench / "cohort.tsv").is_file() and (bench / "evaluate.tsv").is_file()
    assert list(bench.glob("backbone_s*_f*.tsv")) and list(bench.glob("concepts_s*_f*.tsv"))
    assert (wd / "checkpoints/mmcbm/s0_f0/backbone/last.pt").is_file()


def test_mmcbm_paper_scale_dry_run_downloads_cti_and_runs_five_folds(workflow_dir: Path):
    proc = run_snakemake(workflow_dir, "-n", "--config", "scale=paper", "--", "results/mmcbm/report.html",
                         timeout=600)
    out = proc.stdout + proc.stderr
    downloads = "resources/downloads"
    assert f"{downloads}/cti/cti_figshare_51845132" in out
    for name in ("DATA_Cleaned.csv", "train.csv", "test.csv", "k_fold.csv", "patient_concepts_map.csv",
                 "patient_concepts_map_trans.csv"):
        assert f"{downloads}/cti_splits/{name}" in out
    assert f"{downloads}/torchvision_efficientnet_b0/efficientnet_b0_rwightman-7f5810bc.pth" in out
    for fold in range(5):
        assert f"results/mmcbm/runs/s0_f{fold}/eval.json" in out
    assert "results/mmcbm/runs/s0_f5/" not in out
