"""The SLURM profile, submitted through for real on the local single-node cluster (.ci/slurm.sh)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from ..conftest import REPO, copy_workflow, snakemake_bin

TARGET = "results/tet/report.html"
# The local cluster has no slurmdbd, so sacct cannot answer: poll with squeue (finished jobs
# stay visible for MinJobAge), and start polling early so the smoke DAG is not mostly waiting.
# Successful jobs' SLURM logs are kept: they are the node-side evidence checked below.
SLURM_ARGS = ("--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "5",
              "--slurm-keep-successful-logs")
SUBMITTED = re.compile(r"^Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (.+)\)\.$", re.MULTILINE)
RULE_BLOCK = re.compile(r"^(localrule|rule) (\w+):\n(?:    .*\n)*?    jobid: (\d+)$", re.MULTILINE)


def _controller_up() -> bool:
    if shutil.which("scontrol") is None:
        return False
    return subprocess.run(["scontrol", "ping"], capture_output=True, timeout=30).returncode == 0


@pytest.fixture(scope="module")
def slurm_cluster():
    """The local cluster: one already running is used as it is, else started here and stopped after."""
    if _controller_up():
        yield
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("no SLURM controller answers, and installing one (.ci/slurm.sh start) needs root and apt-get")
    script = str(REPO / ".ci/slurm.sh")
    try:
        start = subprocess.run(["bash", script, "start"], capture_output=True, text=True, timeout=900)
        if start.returncode != 0 and shutil.which("slurmctld") is None:
            pytest.skip(f"apt-get could not install slurm-wlm and munge:\n{start.stderr[-2000:]}")
        assert start.returncode == 0, f".ci/slurm.sh start failed:\n{start.stderr[-4000:]}"
        yield
    finally:
        subprocess.run(["bash", script, "stop"], timeout=120)


def _snakemake(workdir: Path, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([snakemake_bin(), *args], cwd=workdir, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))


def _squeue(run_id: str) -> list[dict[str, str]]:
    """Every SLURM job of one Snakemake run, finished ones included (kept for MinJobAge)."""
    fields = ("id", "comment", "state", "partition", "mem", "limit")
    out = subprocess.run(["squeue", "--states=all", "--noheader", "--name", run_id, "--format", "%i|%k|%T|%P|%m|%l"],
                         capture_output=True, text=True, check=True).stdout
    return [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line]


def _minutes(limit: str) -> int:
    """A squeue time limit ([D-]H:MM:SS or M:SS) in minutes."""
    days, _, hms = limit.rpartition("-")
    parts = [int(p) for p in hms.split(":")]
    seconds = sum(p * 60**i for i, p in enumerate(reversed(parts)))
    return int(days or 0) * 1440 + seconds // 60


def _default_partition() -> str:
    out = subprocess.run(["sinfo", "--noheader", "--format", "%P"], capture_output=True, text=True, check=True).stdout
    return next(p.rstrip("*") for p in out.split() if p.endswith("*"))


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The smoke TET DAG submitted through profiles/slurm from a copy of the workflow."""
    wd = copy_workflow(tmp_path_factory.mktemp("slurm") / "wf")
    args = ("--profile", "profiles/slurm", "--config", "scale=smoke")
    dry = _snakemake(wd, *args, "-n", "--", TARGET)
    assert dry.returncode == 0, dry.stderr[-4000:]
    planned = sum(1 for _ in RULE_BLOCK.finditer(dry.stdout + dry.stderr))
    proc = _snakemake(wd, *args, *SLURM_ARGS, "--", TARGET)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    run_id = re.search(r"SLURM run ID: (\S+)", log).group(1)
    return SimpleNamespace(wd=wd, log=log, planned=planned, jobs=_squeue(run_id))


@pytest.mark.slurm
@pytest.mark.slow
def test_every_non_local_job_ran_as_a_slurm_job(slurm_run: SimpleNamespace):
    blocks = [(kind, rule, jobid) for kind, rule, jobid in RULE_BLOCK.findall(slurm_run.log)]
    assert len(blocks) == slurm_run.planned > 0, "the run did other jobs than the dry run planned"
    remote = {jobid: rule for kind, rule, jobid in blocks if kind == "rule"}
    submitted = {jobid: (slurm_id, Path(path)) for jobid, slurm_id, path in SUBMITTED.findall(slurm_run.log)}
    assert set(submitted) == set(remote), "a non-local job was not submitted to SLURM"

    # The controller's view: one completed job per submission, named after its rule.
    by_id = {j["id"]: j for j in slurm_run.jobs}
    assert sorted(by_id) == sorted(slurm_id for slurm_id, _ in submitted.values())
    assert Counter(j["comment"].split("_wildcards_")[0] for j in slurm_run.jobs) == Counter(
        f"rule_{rule}" for rule in remote.values())
    assert {j["state"] for j in slurm_run.jobs} == {"COMPLETED"}
    assert {j["partition"] for j in slurm_run.jobs} == {_default_partition()}

    # The node's view: slurmd wrote each job's output to <slurm id>.log, and in it the job ran its rule.
    for jobid, (slurm_id, path) in submitted.items():
        assert path.name == f"{slurm_id}.log" and path.is_file()
        assert f"rule {remote[jobid]}:" in path.read_text()


@pytest.mark.slurm
@pytest.mark.slow
def test_training_jobs_request_memory_and_runtime_from_config(slurm_run: SimpleNamespace):
    cfg = yaml.safe_load((REPO / "config/papers/tet.yaml").read_text())
    res = cfg["papers"]["tet"]["scales"]["smoke"]["resources"]
    train = [j for j in slurm_run.jobs if j["comment"].startswith(("rule_tet_train", "rule_tet_tit"))]
    assert train
    for job in train:
        assert job["mem"] == f"{res['mem_mb']}M"
        assert _minutes(job["limit"]) == res["runtime"]


@pytest.mark.slurm
@pytest.mark.slow
def test_smoke_outputs_exist(slurm_run: SimpleNamespace):
    for path in (TARGET, "results/tet/claims.json"):
        assert (slurm_run.wd / path).stat().st_size > 0, path
    assert (slurm_run.wd / "logs/tet/report.log").is_file()


RETRY_PROBE = """
rule probe:
    output: "probe.txt"
    log: "probe.log"
    resources: attempt=lambda wildcards, attempt: attempt
    shell: "test {resources.attempt} -gt 1 && echo {resources.runtime} > {output} 2> {log}"
"""


@pytest.mark.slurm
@pytest.mark.slow
def test_failed_job_is_resubmitted_with_longer_runtime(slurm_cluster, tmp_path: Path):
    """The profile's retries: the first attempt fails, the second asks SLURM for twice the time."""
    (tmp_path / "Snakefile").write_text(RETRY_PROBE)
    proc = _snakemake(tmp_path, "--profile", str(REPO / "profiles/slurm"), *SLURM_ARGS, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    jobs = sorted(_squeue(re.search(r"SLURM run ID: (\S+)", log).group(1)), key=lambda j: int(j["id"]))
    assert [j["state"] for j in jobs] == ["FAILED", "COMPLETED"]
    first, second = (_minutes(j["limit"]) for j in jobs)
    assert second == 2 * first
    assert int((tmp_path / "probe.txt").read_text()) == second


def test_gpu_resource_becomes_an_sbatch_gpu_request():
    """Training rules ask for GPUs as the resource `gpu`, which the slurm plugin turns into --gpus."""
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    class Resources(dict):
        __getattr__ = dict.__getitem__

    assert set_gres_string(SimpleNamespace(resources=Resources(gpu=1))) == " --gpus=1"
    assert set_gres_string(SimpleNamespace(resources=Resources(gpu=0))) == ""


def test_paper_scale_training_jobs_ask_for_a_gpu(workflow_dir: Path):
    """Dry run through the SLURM profile at paper scale: every training job carries gpu, memory, runtime."""
    cfg = yaml.safe_load((REPO / "config/papers/tet.yaml").read_text())
    res = cfg["papers"]["tet"]["scales"]["paper"]["resources"]
    proc = _snakemake(workflow_dir, "--profile", "profiles/slurm", "-n", "--config", "scale=paper", "--", TARGET,
                      timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    train = re.findall(r"^rule tet_(?:train|tit):\n(?:    .*\n)*?    resources: (.*)$", log, re.MULTILINE)
    assert train
    for resources in train:
        assert f"gpu={res['gpus']}" in resources
        assert f"mem_mb={res['mem_mb']}," in resources and f"runtime={res['runtime']}" in resources


@pytest.mark.slurm
@pytest.mark.timeout(600)
def test_a_two_task_slurm_job_trains_data_parallel(slurm_cluster, tmp_path: Path):
    """Two srun tasks (one launcher each, as on two nodes) meet in one c10d rendezvous and train as one run."""
    script = tmp_path / "job.py"
    script.write_text(
        "import json, sys\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from reprolab.core import distributed as dd\n"
        "from tests.core import ddp_workers as w\n"
        "if __name__ == '__main__':\n"
        f"    two = dd.launch(w.train_linear, (3, {str(tmp_path / 'two')!r}), dd.Topology(nodes=2), 'cpu')\n"
        f"    one = w.train_linear(3, {str(tmp_path / 'one')!r})\n"
        "    print(json.dumps({'world': two['world'], 'two': two['weight'].tolist(), 'one': one['weight'].tolist()}))\n")
    out = tmp_path / "job.out"
    env = dict(os.environ, REPROLAB_SRUN_NODES="1", OMP_NUM_THREADS="1")
    proc = subprocess.run(["sbatch", "--wait", "--ntasks=2", "--nodes=1", "--mem=4G", "--time=10", "-o", str(out),
                           "--wrap", f"{sys.executable} {script}"], capture_output=True, text=True, env=env,
                          timeout=580, cwd=tmp_path)
    text = out.read_text() if out.exists() else ""
    assert proc.returncode == 0, proc.stderr + text[-3000:]
    result = json.loads(text.strip().splitlines()[-1])
    assert result["world"] == 2
    assert result["two"][0] == pytest.approx(result["one"][0], rel=1e-5, abs=1e-6)
