# Helpers shared by every rule file: config validation, per-scale paper settings, targets,
# resources. All Python of the workflow lives here or in the reprolab package.

import yaml
from pathlib import Path

from snakemake.exceptions import WorkflowError

from reprolab.core.config import paper_config, validate_config
from reprolab.core.errors import ReprolabError

try:
    validate_config(config, "config/schema.yaml", "config/schemas")
except ReprolabError as err:
    raise WorkflowError(f"invalid configuration:\n{err}")

SCALE = config["scale"]
DATA = config["data_dir"].rstrip("/")
ENV_DIR = "../../envs"


wildcard_constraints:
    split="train|test",
    T=r"\d+",
    binning="count|time",
    seed=r"\d+",


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
    if res["gpus"] > 0:
        out["gpu"] = res["gpus"]
    return out


def global_settings():
    """The global keys every report lists with the paper's own settings."""
    return {k: config[k] for k in ("scale", "device", "data_dir")}
