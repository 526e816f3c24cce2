"""Verdicts of the previous release, so that every report says which claims changed and why.

``workflow/report/<paper>/verdict_history.yaml`` records, per claim id, the verdict the
previous release of the workflow gave at one scale, and why a new one differs::

    release: e79cd22          # the commit the recorded verdicts came from
    scale: demo               # the scale they were measured at
    papers:
      mtt:
        C3: {verdict: not supported, why: "Linear layers were re-initialised with ..."}

A claim of the current run whose verdict differs from the recorded one (same paper, claim
id and scale) gets :attr:`reprolab.report.Claim.changed` filled in.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from reprolab.core.errors import ConfigError
from reprolab.report.claims import VERDICTS, Claim


def load_history(path: str | Path) -> dict[str, Any]:
    """Read and check a verdict history file.

    Raises
    ------
    ConfigError
        Naming the file and the entry when a recorded verdict is not one of the verdicts.
    """
    data = yaml.safe_load(Path(path).read_text()) or {}
    for key in ("release", "scale", "papers"):
        if key not in data:
            raise ConfigError(f"{path}: missing top-level key {key!r} (release, scale, papers)")
    for paper, claims in (data["papers"] or {}).items():
        for cid, entry in (claims or {}).items():
            if entry.get("verdict") not in VERDICTS:
                raise ConfigError(f"{path}: papers.{paper}.{cid}.verdict must be one of {VERDICTS}, "
                                  f"not {entry.get('verdict')!r}")
    return data


def mark_changes(claims: list[Claim], paper: str, history: dict[str, Any]) -> list[Claim]:
    """Claims with ``changed`` set where the verdict differs from the recorded release's.

    Parameters
    ----------
    claims
        This run's claims.
    paper
        Paper id.
    history
        From :func:`load_history`.
    """
    recorded = (history.get("papers") or {}).get(paper) or {}
    out = []
    for c in claims:
        old = recorded.get(c.id)
        if old is None or c.scale != history["scale"] or old["verdict"] == c.verdict:
            out.append(c)
            continue
        why = old.get("why") or "the reason was not recorded"
        out.append(replace(c, changed=f"'{old['verdict']}' at {history['release']} ({history['scale']} scale), now "
                                      f"'{c.verdict}': {why}"))
    return out
