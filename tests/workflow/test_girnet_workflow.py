"""End to end: the girnet DAG at smoke scale, and the paper-scale DAG without and with the archives."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from reprolab.report import VERDICTS

from ..conftest import run_snakemake, snakemake_bin

pytestmark = pytest.mark.slow


def test_smoke_report_is_complete_and_self_contained(smoke_run: Path):
    html = (smoke_run / "results/girnet/report.html").read_text()
    assert html.count('<img src="data:image/png;base64,') == 5
    assert "src=\"http" not in html
    claims = json.loads((smoke_run / "results/girnet/claims.json").read_text())
    assert claims["paper"] == "girnet"
    ids = {c["id"]: c for c in claims["claims"]}
    assert set(ids) == {"C0", "C1", "C2", "C3a", "C3b", "C3c"}
    assert all(c["verdict"] in VERDICTS and c["scale"] == "smoke" for c in claims["claims"])
    assert ids["C3a"]["verdict"] == ids["C0"]["verdict"] == "not tested"  # ablations and oracle do not run at smoke
    for bench in (smoke_run / "benchmarks/girnet").glob("*.tsv"):
        assert bench.name.removesuffix(".tsv") in html
    assert 'href="girnet/report.html"' in (smoke_run / "results/index.html").read_text()


def test_smoke_evaluation_stores_per_subject_results(smoke_run: Path):
    for arm in ("girnet", "symnet"):
        ev = json.loads((smoke_run / f"results/girnet/{arm}_s42/eval.json").read_text())
        n = len(ev["subjects"])
        assert n == 3
        for metric in ("dice_mean", "deformation_error_mm", "folding_percent", "lncc", "dice_near_lesion_mean"):
            assert len(ev["per_subject"][metric]) == n
        if arm == "girnet":
            assert ev["polarity"] in ("m", "1-m")
            assert {"lesion_dice", "lesion_dice_m", "lesion_dice_inverse", "lesion_dice_random_mask"} <= set(ev["per_subject"])
        else:
            assert ev["polarity"] is None and "lesion_dice" not in ev["per_subject"]
    history = json.loads((smoke_run / "results/girnet/girnet_s42/history.json").read_text())
    assert history["cycle"] == ["reg", "gen", "gen", "inp", "inp"]


def _paper_dry_run(workflow_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([snakemake_bin(), "-n", "--config", "scale=paper", "--", "results/girnet/report.html"],
                          cwd=workflow_dir, capture_output=True, text=True, timeout=600, check=False)


def test_paper_scale_stops_with_the_steps_to_build_the_archives(workflow_dir: Path):
    proc = _paper_dry_run(workflow_dir)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "girnet_atlas" in out and "MNI152SymNonLinear.tar" in out and "recon-all" in out


def test_paper_scale_dag_with_the_archives(workflow_dir: Path):
    registry = yaml.safe_load((workflow_dir / "config/datasets.yaml").read_text())
    for dataset in ("girnet_atlas", "girnet_oasis", "girnet_brats"):
        folder = workflow_dir / "resources/downloads" / dataset
        folder.mkdir(parents=True)
        (folder / registry[dataset]["files"][0]["name"]).touch()
    proc = _paper_dry_run(workflow_dir)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert out.count("rule girnet_paper_unpack:") == 3 and "girnet_paper_splits" in out
    assert "gpu=1" in out  # training jobs ask for a GPU at paper scale


def test_unknown_run_arm_stops_at_parse_time(workflow_dir: Path):
    cfg_path = workflow_dir / "config/papers/girnet.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["papers"]["girnet"]["scales"]["smoke"]["run_arms"] = ["girnet", "voxelmorph"]
    cfg_path.write_text(yaml.safe_dump(cfg))
    proc = run_snakemake(workflow_dir, "-n", "--config", "scale=smoke", "--", "results/girnet/report.html", check=False)
    assert proc.returncode != 0 and "run_arms" in proc.stdout + proc.stderr and "voxelmorph" in proc.stdout + proc.stderr
