"""Render a paper's report and the index page from one Jinja2 template each.

Reports are self-contained: CSS inline, figures embedded as base64 PNG, no network.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml

from reprolab.core.io import atomic_path
from reprolab.report.claims import Claim, read_claims, write_claims
from reprolab.report.history import load_history, mark_changes
from reprolab.report.provenance import Provenance


@dataclass
class PaperMeta:
    """Bibliographic header of a report."""

    id: str
    title: str
    citation: str
    arxiv: str = ""
    code: str = ""
    summary: str = ""


@dataclass
class Figure:
    """A PNG written by a figures rule, with its caption."""

    path: str
    caption: str


@dataclass
class Table:
    """A small table of measured numbers (cells already formatted)."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("reprolab.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )


def _embed(path: str | Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def build_report(meta: PaperMeta, scale: str, claims: list[Claim], figures: list[Figure], tables: list[Table],
                 data_notes: list[str], not_reproduced: list[str], provenance: Provenance,
                 out_html: str | Path, out_claims: str | Path, history: str | Path | None = None) -> None:
    """Write ``report.html`` and ``claims.json`` of one paper.

    Parameters
    ----------
    meta
        Title, citation, links.
    scale
        The scale this report was produced at.
    claims
        Claims table rows.
    figures
        PNG files with captions, embedded in the page.
    tables
        Further measured tables.
    data_notes
        The data and scale actually used (one sentence each).
    not_reproduced
        What could not be reproduced here and why.
    provenance
        From :func:`reprolab.report.collect_provenance`.
    out_html, out_claims
        Destinations (written atomically).
    history
        ``workflow/report/<id>/verdict_history.yaml``: the previous release's verdicts; claims whose
        verdict changed say so (:func:`reprolab.report.history.mark_changes`).
    """
    if history is not None:
        claims = mark_changes(claims, meta.id, load_history(history))
    html = _environment().get_template("report.html.j2").render(
        meta=meta, scale=scale, claims=claims, tables=tables, data_notes=data_notes,
        not_reproduced=not_reproduced, prov=provenance,
        figures=[{"src": _embed(f.path), "caption": f.caption, "name": Path(f.path).name} for f in figures],
        config_yaml=yaml.safe_dump(provenance.config, sort_keys=False, default_flow_style=None),
        verdict_counts=_count_verdicts(claims),
    )
    write_claims(out_claims, meta.id, claims)
    with atomic_path(out_html) as tmp:
        tmp.write_text(html)


def _count_verdicts(claims: list[Claim]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for c in claims:
        counts[c.verdict] = counts.get(c.verdict, 0) + 1
    return counts


def render_index(claim_files: dict[str, str | Path], out_html: str | Path, scale: str,
                 provenance: Provenance) -> None:
    """Write ``results/index.html``: one row per paper with a link and its claims' verdicts.

    Parameters
    ----------
    claim_files
        ``{paper id: results/<id>/claims.json}``.
    """
    papers = []
    for paper, path in claim_files.items():
        _, claims = read_claims(path)
        papers.append({"id": paper, "href": f"{paper}/report.html", "claims": [asdict(c) for c in claims],
                       "counts": _count_verdicts(claims)})
    html = _environment().get_template("index.html.j2").render(papers=papers, scale=scale, prov=provenance)
    with atomic_path(out_html) as tmp:
        tmp.write_text(html)


def verdict_class(verdict: str) -> str:
    """CSS class of a verdict."""
    return verdict.replace(" ", "-")


