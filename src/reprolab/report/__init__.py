"""One self-contained HTML report per paper, from files that runs wrote.

Typical use in a paper's report script::

    from reprolab.report import Claim, Figure, Table, build_report
    build_report(meta, claims, figures, tables, notes, provenance, out_html, out_claims)
"""

from reprolab.report.claims import VERDICTS, Claim, read_claims, write_claims
from reprolab.report.figures import figure, save_figure
from reprolab.report.html import Figure, PaperMeta, Table, build_report, render_index
from reprolab.report.provenance import Provenance, collect_provenance

__all__ = [
    "VERDICTS",
    "Claim",
    "Figure",
    "PaperMeta",
    "Provenance",
    "Table",
    "build_report",
    "collect_provenance",
    "figure",
    "read_claims",
    "render_index",
    "save_figure",
    "write_claims",
]
