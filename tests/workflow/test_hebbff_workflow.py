"""The hebbff DAG at smoke scale (shared smoke_run fixture): outputs exist and are well formed."""

import json

import numpy as np
import pytest

from reprolab.report import VERDICTS

pytestmark = pytest.mark.slow


def test_hebbff_report_claims_figures_and_benchmarks(smoke_run):
    res = smoke_run / "results/hebbff"
    html = (res / "report.html").read_text()
    assert "Emergence and reconfiguration of modular structure" in html and "data:image/png;base64," in html
    claims = json.loads((res / "claims.json").read_text())
    assert claims["paper"] == "hebbff"
    assert [c["id"] for c in claims["claims"]] == ["C0", "C1", "C2", "C3"]
    for claim in claims["claims"]:
        assert claim["verdict"] in VERDICTS and claim["scale"] == "smoke"
        assert claim["paper_label"].startswith(("verified", "unverified"))
        assert claim["measured"]
    for name in ("accuracy", "trajectories", "q_vs_accuracy", "allegiance", "generalization"):
        assert (res / "figures" / f"{name}.png").stat().st_size > 1000
    bench = smoke_run / "benchmarks/hebbff"
    for rule in ("train", "evaluate", "analysis"):
        assert len(list(bench.glob(f"{rule}_*_s*.tsv"))) == 2, f"no benchmark of hebbff_{rule}"


def test_hebbff_runs_record_snapshots_statistics_and_null(smoke_run):
    res = smoke_run / "results/hebbff"
    stats = json.loads((res / "statistics.json").read_text())
    assert stats["modes"] == ["infinite", "curriculum"] and len(stats["runs"]) == 2
    for group in [stats["all"], *stats["by_mode"].values()]:
        assert {"mean", "p_null", "smallest_p", "above_null", "null_mean", "shuffles"} <= set(group["Q_acc"])
        assert 0 < group["Q_acc"]["p_null_greater"] <= 1
    for run_dir in (res / "runs").iterdir():
        with np.load(run_dir / "snapshots.npz") as snaps:
            assert snaps["W1"].shape == (11, 8, 8) and snaps["accuracy"].shape == (11,)
        with np.load(run_dir / "analysis.npz") as arrays:
            assert arrays["Q_slice"].shape == (4, 11) and arrays["null_Q_slice"].shape == (4, 11)
            assert arrays["memberships"].shape == (4, 11, 8)
            assert arrays["test_Q_slice"].shape == (11,)  # as many partitions as each null network
        ev = json.loads((run_dir / "eval.json").read_text())
        assert ev["chance"] == pytest.approx(2 / 3) and 0 <= ev["accuracy_task_R"] <= 1
        samples = ev["trained_R_samples"]
        assert len(samples["predictions"]) == len(samples["targets"]) == 2 * 100  # every step of the test sequences
