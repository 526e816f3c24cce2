"""Provenance of a report: config, git commit, package versions, data checksums, rule costs."""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: Packages whose versions every report lists (absent ones are skipped).
PACKAGES: tuple[str, ...] = (
    "reprolab", "snakemake", "torch", "torchvision", "spikingjelly", "tonic", "numpy", "scipy", "pandas",
    "scikit-learn", "matplotlib", "numba", "networkx", "leidenalg", "nctpy", "nilearn", "nibabel", "monai", "pydicom",
    "sentence-transformers", "jinja2",
)


@dataclass
class Provenance:
    """Everything a reader needs to trust and rerun a report."""

    config: dict[str, Any]
    git_commit: str
    git_dirty: bool
    generated: str
    python: str
    packages: dict[str, str]
    data_files: list[dict[str, Any]] = field(default_factory=list)
    benchmarks: list[dict[str, Any]] = field(default_factory=list)


def git_state(cwd: str | Path = ".") -> tuple[str, bool]:
    """Commit hash of ``HEAD`` and whether tracked files differ from it (``unknown`` outside git)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                                    capture_output=True, text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)", False
    return commit, dirty


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions of ``names``."""
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def md5_of(path: str | Path) -> str:
    """MD5 of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_benchmarks(folder: str | Path) -> list[dict[str, Any]]:
    """Rows of every Snakemake ``benchmark:`` file under ``folder`` (job name = relative path).

    Returns
    -------
    list of dict
        ``job``, ``seconds``, ``max_rss_mb`` (peak resident memory) per file.
    """
    rows = []
    root = Path(folder)
    for path in sorted(root.rglob("*.tsv")) if root.exists() else []:
        with open(path) as handle:
            records = list(csv.DictReader(handle, delimiter="\t"))
        if not records:
            continue
        rec = records[-1]

        def num(key: str) -> float | None:
            try:
                return float(rec[key])
            except (KeyError, TypeError, ValueError):
                return None

        rows.append({"job": str(path.relative_to(root).with_suffix("")), "seconds": num("s"),
                     "max_rss_mb": num("max_rss")})
    return rows


def collect_provenance(config: dict[str, Any], data_files: dict[str, str | Path] | None = None,
                       benchmark_dir: str | Path | None = None, extra_benchmark_dirs: list[str | Path] = ()
                       ) -> Provenance:
    """Gather provenance for a report.

    Parameters
    ----------
    config
        The configuration the paper ran with (its resolved section and the global keys).
    data_files
        ``{label: path}`` of the input data; their sizes and MD5 are listed.
    benchmark_dir
        The paper's ``benchmarks/<id>`` folder; ``extra_benchmark_dirs`` add shared ones (data).
    """
    commit, dirty = git_state()
    files = []
    for label, path in (data_files or {}).items():
        p = Path(path)
        files.append({"label": label, "path": str(p), "bytes": p.stat().st_size if p.is_file() else None,
                      "md5": md5_of(p) if p.is_file() else "(folder)"})
    bench = []
    for folder in ([benchmark_dir] if benchmark_dir else []) + list(extra_benchmark_dirs):
        bench += [dict(r, job=f"{Path(folder).name}/{r['job']}") for r in read_benchmarks(folder)]
    return Provenance(
        config=config, git_commit=commit, git_dirty=dirty,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        python=platform.python_version(), packages=package_versions(), data_files=files, benchmarks=bench,
    )
