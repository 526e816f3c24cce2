"""Shared fixtures: a throw-away copy of the workflow for end-to-end runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: What a workflow run needs from the repository (the package itself is installed).
WORKFLOW_PARTS = ("Snakefile", "config", "workflow", "envs", "profiles", "resources/demo")


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow files (not results, caches or the package) into ``dest``."""
    for part in WORKFLOW_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (dest / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / part)
    return dest


def snakemake_bin() -> str:
    """The snakemake executable of the interpreter running the tests."""
    candidate = Path(sys.executable).with_name("snakemake")
    return str(candidate) if candidate.exists() else "snakemake"


def run_snakemake(workdir: Path, *args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run snakemake in ``workdir`` with the default profile; return the finished process."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([snakemake_bin(), "--cores", "2", *args], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture
def workflow_dir(tmp_path: Path) -> Path:
    """A fresh copy of the workflow in a temporary folder."""
    return copy_workflow(tmp_path / "wf")


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One smoke-scale run of every enabled paper (shared by the workflow tests)."""
    wd = copy_workflow(tmp_path_factory.mktemp("smoke") / "wf")
    run_snakemake(wd, "--config", "scale=smoke", "--", "all")
    return wd
