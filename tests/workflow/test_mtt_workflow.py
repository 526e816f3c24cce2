"""The mtt DAG at smoke scale (shared smoke_run fixture): outputs exist and are well formed."""

import json

import pytest

from reprolab.report import VERDICTS

pytestmark = pytest.mark.slow


def test_mtt_report_claims_figures_and_benchmarks(smoke_run):
    res = smoke_run / "results/mtt"
    html = (res / "report.html").read_text()
    assert "Mixed Time-step Training" in html and "data:image/png;base64," in html
    claims = json.loads((res / "claims.json").read_text())
    assert claims["paper"] == "mtt"
    ids = [c["id"] for c in claims["claims"]]
    assert {"C1", "C2a", "C2b", "C3", "C4"} <= set(ids)
    for claim in claims["claims"]:
        assert claim["verdict"] in VERDICTS and claim["scale"] == "smoke"
        assert claim["paper_label"].startswith(("verified", "unverified"))
        assert claim["measured"]
    for name in ("flexibility", "heterogeneous", "training_curves", "event_driven"):
        assert (res / "figures" / f"{name}.png").stat().st_size > 1000
    bench = smoke_run / "benchmarks/mtt"
    for rule in ("train", "deploy", "evaluate", "eventsim"):
        assert list(bench.glob(f"{rule}_nmnist_*_s*.tsv")), f"no benchmark of mtt_{rule}"


def test_mtt_eventsim_accounts_for_every_event(smoke_run):
    for path in (smoke_run / "results/mtt/nmnist").glob("*/eventsim.json"):
        sim = json.loads(path.read_text())
        assert sim["conservation"]["events_processed"] == sim["conservation"]["events_in_file"] > 0
        assert sim["conservation"]["max_charge_error_first_sample"] < 1e-6
        assert len(sim["predictions"]) == sim["n_test"]
    evals = list((smoke_run / "results/mtt/nmnist").glob("*/eval.json"))
    assert len(evals) == 2
    for path in evals:
        ev = json.loads(path.read_text())
        assert sorted(ev["base"]["uniform"], key=int) == [str(t) for t in range(1, ev["max_T"] + 1)]
        assert len(ev["deployed"]["heterogeneous"]) == len(ev["configs"])
