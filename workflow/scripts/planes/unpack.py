# `snakemake` is injected by Snakemake's script directive.
# ruff: noqa: F821

from reprolab.core.logs import script_logging
from reprolab.medical.planes_data import unpack_dataset

with script_logging(snakemake.log[0]):
    unpack_dataset(snakemake.input[0], snakemake.output[0])
