"""The claims table: the paper's number beside the measured one, with a verdict."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reprolab.core.io import read_json, write_json

#: Allowed verdicts. ``supported``: the measurement agrees with the claim at this scale;
#: ``not supported``: it contradicts it; ``inconclusive``: the difference is within the noise
#: (seeds, test-set size); ``not tested``: not run at this scale (the note says why).
VERDICTS: tuple[str, ...] = ("supported", "not supported", "inconclusive", "not tested")


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

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"claim {self.id}: verdict {self.verdict!r} is not one of {VERDICTS}")


def write_claims(path: str | Path, paper: str, claims: list[Claim]) -> None:
    """Write the claims of a paper as JSON (read by the index page)."""
    write_json(path, {"paper": paper, "claims": [asdict(c) for c in claims]})


def read_claims(path: str | Path) -> tuple[str, list[Claim]]:
    """Read a file written by :func:`write_claims`."""
    data: dict[str, Any] = read_json(path)
    return data["paper"], [Claim(**c) for c in data["claims"]]
