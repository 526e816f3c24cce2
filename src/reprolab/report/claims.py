"""The claims table: the paper's number beside the measured one, with a verdict."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reprolab.core.io import read_json, write_json

#: Allowed verdicts. ``supported``: the measurement agrees with the claim at this scale;
#: ``not supported``: it contradicts it; ``inconclusive``: the difference is within the noise
#: (seeds, test-set size), or a precondition (e.g. above chance) does not hold;
#: ``setting-dependent``: supported at the pre-registered setting and contradicted at another
#: configured one (or the reverse); ``not tested``: not run at this scale (the note says why).
#: Verdicts come from :mod:`reprolab.report.stats`.
VERDICTS: tuple[str, ...] = ("supported", "not supported", "inconclusive", "setting-dependent", "not tested")


@dataclass
class Claim:
    """One row of a report's claims table.

    Attributes
    ----------
    id
        Short id from the paper card (C1, C2, ...).
    statement
        The claim in testable form.
    paper_value
        What the paper reports (a number with its setting), or ``""``.
    paper_label
        ``verified: <source>`` or ``unverified`` (from the card).
    measured
        What this run measured, formatted, from the files in ``evidence``.
    verdict
        One of :data:`VERDICTS`.
    scale
        ``smoke``, ``demo`` or ``paper``.
    note
        Why the verdict (thresholds, noise level, what differs from the paper).
    evidence
        Files the measured value was read from.
    by_setting
        The same claim at every configured setting, ``[{"setting", "measured", "verdict"}]``,
        when it was judged at one pre-registered setting (shown beside the verdict).
    changed
        Why the verdict differs from the previous release of the report, if it does.
    """

    id: str
    statement: str
    paper_value: str
    paper_label: str
    measured: str
    verdict: str
    scale: str
    note: str = ""
    evidence: list[str] = field(default_factory=list)
    by_setting: list[dict[str, str]] = field(default_factory=list)
    changed: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"claim {self.id}: verdict {self.verdict!r} is not one of {VERDICTS}")
        for row in self.by_setting:
            if row.get("verdict") not in VERDICTS or "setting" not in row:
                raise ValueError(f"claim {self.id}: by_setting rows need a setting and a verdict, got {row!r}")


def write_claims(path: str | Path, paper: str, claims: list[Claim]) -> None:
    """Write the claims of a paper as JSON (read by the index page)."""
    write_json(path, {"paper": paper, "claims": [asdict(c) for c in claims]})


def read_claims(path: str | Path) -> tuple[str, list[Claim]]:
    """Read a file written by :func:`write_claims`."""
    data: dict[str, Any] = read_json(path)
    return data["paper"], [Claim(**c) for c in data["claims"]]
