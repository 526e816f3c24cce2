# Helpers shared by all rule files (config validation, per-scale paper settings, targets,
# resources, data registry lookups). All Python of the workflow lives here or in the package.

import yaml
from pathlib import Path

from snakemake.exceptions import WorkflowError

from reprolab.core.config import paper_config, validate_config
from reprolab.core.errors import ReprolabError
from reprolab.data.pipeline import archive_for_split
from reprolab.data.registry import dataset_file_path, download_spec, get_dataset, load_registry

try:
    validate_config(config, "config/schema.yaml", "config/schemas")
except ReprolabError as err:
    raise WorkflowError(f"invalid configuration:\n{err}")

try:
    REGISTRY = load_registry("config/datasets.yaml")
except ReprolabError as err:
    raise WorkflowError(f"invalid dataset registry:\n{err}")

SCALE = config["scale"]
DATA = config["data_dir"].rstrip("/")
ENV_DIR = "../../envs"


def pcfg(paper):
    """Settings of ``paper`` at the configured scale (scales.<scale> merged over the rest)."""
    return paper_config(config, paper)


def enabled_papers():
    """Paper ids whose section has ``enabled: true``, in a stable order."""
    return [p for p, section in config["papers"].items() if section.get("enabled", False)]


def all_targets():
    """Every enabled paper's report plus the index page."""
    return [f"results/{p}/report.html" for p in enabled_papers()] + ["results/index.html"]


def train_resources(paper):
    """Scheduler resources of a paper's training jobs; runtime grows with the retry attempt."""
    res = pcfg(paper)["resources"]
    out = {
        "mem_mb": res["mem_mb"],
        "runtime": lambda wildcards, attempt: res["runtime"] * attempt,
    }
    nodes = res.get("nodes", 1)
    if res["gpus"] > 0:
        out["gpu"] = res["gpus"] * nodes  # the slurm plugin's --gpus counts the whole job
    if nodes > 1:
        # One task per machine; the job's script starts them with srun (reprolab.core.distributed),
        # so the slurm executor runs it as an "MPI" job (no srun of its own around the job).
        out.update(nodes=nodes, tasks=nodes, mpi="srun")
    return out


def global_settings():
    """The global keys every report lists with the paper's own settings."""
    return {k: config[k] for k in ("scale", "device", "data_dir")}


def download_params(wildcards):
    """fetch() arguments of one registry file; raises with instructions for gated data."""
    return download_spec(REGISTRY, wildcards.dataset, wildcards.filename, DATA)


def event_archive_entry(wildcards):
    """Registry entry of the archive holding an event dataset's split."""
    ds = get_dataset(REGISTRY, wildcards.dataset)
    return archive_for_split(ds.files, ds.id, wildcards.split)


def event_archive(wildcards):
    """The archive holding a split: committed (demo) or downloaded by data_download."""
    return str(dataset_file_path(get_dataset(REGISTRY, wildcards.dataset), event_archive_entry(wildcards), DATA))


def registry_file(dataset, name=None):
    """Path of one file of a registry dataset (its first when ``name`` is None): committed for a
    local dataset, else where data_download puts it (stopping with instructions for gated data)."""
    ds = get_dataset(REGISTRY, dataset)
    return str(dataset_file_path(ds, ds.files[0] if name is None else name, DATA))


def verdict_history(paper):
    """The previous release's verdicts of ``paper``: its report states which claims changed and why."""
    return f"workflow/report/{paper}/verdict_history.yaml"
