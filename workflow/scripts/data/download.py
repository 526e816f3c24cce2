"""Rule data_download: fetch one file of config/datasets.yaml (mirrors, resume, checksum)."""

# `snakemake` is injected by Snakemake's script directive.
# ruff: noqa: F821

from pathlib import Path

from reprolab.core.logs import script_logging
from reprolab.data.download import fetch

with script_logging(snakemake.log[0]):
    spec = snakemake.params.spec
    fetch(
        spec["urls"],
        Path(snakemake.output[0]),
        md5=spec["md5"],
        sha256=spec["sha256"],
        size=spec["size"],
    )
