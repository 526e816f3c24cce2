"""End to end: the mman DAG at smoke scale (shared smoke_run of every enabled paper)."""

from __future__ import annotations

import json

import pytest

from reprolab.report import VERDICTS

pytestmark = pytest.mark.slow


def test_mman_report_claims_figures_and_benchmarks(smoke_run):
    wd = smoke_run
    html = (wd / "results/mman/report.html").read_text()
    assert "Multi-modal Attention Network" in html and "data:image/png;base64," in html
    claims = json.loads((wd / "results/mman/claims.json").read_text())
    assert claims["paper"] == "mman" and claims["claims"]
    for claim in claims["claims"]:
        assert claim["verdict"] in VERDICTS
        assert claim["measured"] and claim["scale"] == "smoke"
    ids = {c["id"] for c in claims["claims"]}
    assert {"C2", "C3"} <= ids and any(i.startswith("C1-") for i in ids)
    for name in ("results", "equity", "credibility", "confusion"):
        assert (wd / f"results/mman/figures/{name}.png").stat().st_size > 1000
    metrics = json.loads((wd / "results/mman/metrics.json").read_text())
    assert 0.0 <= metrics["summary"]["mman"]["test_accuracy"] <= 1.0
    assert metrics["n_test"] > 0
    # Per-sample predictions and trading dates, so the report pairs models and resamples dates.
    run = metrics["runs"]["mman"]["1"]["test"]
    assert len(run["predictions"]) == len(run["targets"]) == len(metrics["test_units"]["date"]) == metrics["n_test"]
    trades = json.loads((wd / "results/mman/backtest.json").read_text())
    assert set(trades["fills"]) == {"next_open", "same_close"} and trades["settings"]["fill"] == "next_open"
    c2 = next(c for c in claims["claims"] if c["id"] == "C2")
    assert [r["verdict"] in VERDICTS for r in c2["by_setting"]] == [True, True]
    bench = wd / "benchmarks/mman"
    assert (bench / "text.tsv").is_file() and (bench / "evaluate.tsv").is_file()
    assert list(bench.glob("train_mman_s*.tsv")) and list(bench.glob("baseline_*_s*.tsv"))
    assert (wd / "results/mman/data/text_minilm.npz").is_file()
