import pytest

from reprolab.core.errors import ConfigError
from reprolab.report import Claim
from reprolab.report.history import load_history, mark_changes


def _claim(cid, verdict, scale="demo"):
    return Claim(id=cid, statement="s", paper_value="", paper_label="unverified", measured="m", verdict=verdict,
                 scale=scale)


def test_changed_verdicts_are_marked_with_the_recorded_reason(tmp_path):
    path = tmp_path / "h.yaml"
    path.write_text("release: abc123\nscale: demo\npapers:\n  mtt:\n"
                    "    C3: {verdict: not supported, why: the classifier was re-initialised}\n"
                    "    C1: {verdict: supported}\n")
    history = load_history(path)
    claims = mark_changes([_claim("C3", "inconclusive"), _claim("C1", "supported"), _claim("C9", "supported"),
                           _claim("C3", "supported", scale="smoke")], "mtt", history)
    assert "'not supported' at abc123" in claims[0].changed and "re-initialised" in claims[0].changed
    assert [c.changed for c in claims[1:]] == ["", "", ""]


def test_a_bad_history_names_the_entry(tmp_path):
    path = tmp_path / "h.yaml"
    path.write_text("release: a\nscale: demo\npapers:\n  tet:\n    C1: {verdict: maybe}\n")
    with pytest.raises(ConfigError, match="papers.tet.C1.verdict"):
        load_history(path)
    path.write_text("papers: {}\n")
    with pytest.raises(ConfigError, match="release"):
        load_history(path)


def test_the_committed_histories_are_valid():
    from pathlib import Path
    for path in (Path(__file__).resolve().parents[2] / "workflow/report").glob("*/verdict_history.yaml"):
        history = load_history(path)
        assert set(history["papers"]) <= {path.parent.name}, f"{path} may only record its own paper"
