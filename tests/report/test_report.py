import re

import pytest

from reprolab.report import (
    Claim,
    Figure,
    PaperMeta,
    Table,
    build_report,
    collect_provenance,
    figure,
    read_claims,
)
from reprolab.report.provenance import read_benchmarks


def make_png(path):
    fig, axes = figure()
    axes[0, 0].plot([0, 1], [1, 0])
    from reprolab.report import save_figure

    save_figure(fig, path)


def test_report_is_self_contained_and_lists_provenance(tmp_path):
    png = tmp_path / "f.png"
    make_png(png)
    bench = tmp_path / "bench" / "train_x.tsv"
    bench.parent.mkdir()
    bench.write_text("s\th:m:s\tmax_rss\tmax_vms\n12.5\t0:00:12\t321.0\t900\n")
    claims = [Claim("C1", "x beats y", "83 %", "unverified", "84 %", "supported", "demo", evidence=["a.json"])]
    prov = collect_provenance({"scale": "demo"}, {"png": png}, benchmark_dir=tmp_path / "bench")
    build_report(PaperMeta("tet", "Title", "Someone 2022", arxiv="2202.11946"), "demo", claims,
                 [Figure(str(png), "a caption")], [Table("T", ["a", "b"], [[1, "x"]])], ["demo data"],
                 ["nothing"], prov, tmp_path / "report.html", tmp_path / "claims.json")
    html = (tmp_path / "report.html").read_text()
    assert re.search(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]{100,}"', html)
    assert not re.search(r'<(script|link|img)[^>]+(src|href)="http', html)
    assert "train_x" in html and "12.5" in html and "321" in html
    assert "unverified" in html and "84 %" in html
    paper, back = read_claims(tmp_path / "claims.json")
    assert paper == "tet" and back == claims


def test_a_claim_with_an_unknown_verdict_is_refused():
    with pytest.raises(ValueError, match="verdict"):
        Claim("C1", "x", "", "unverified", "1", "probably", "demo")


def test_read_benchmarks_takes_seconds_and_peak_memory(tmp_path):
    (tmp_path / "a.tsv").write_text("s\th:m:s\tmax_rss\n3.0\t0:00:03\t100.5\n")
    assert read_benchmarks(tmp_path) == [{"job": "a", "seconds": 3.0, "max_rss_mb": 100.5}]
