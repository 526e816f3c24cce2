# `snakemake` is injected by Snakemake's script directive.
# ruff: noqa: F821

from reprolab.core.logs import script_logging
from reprolab.medical.planes_data import make_demo

with script_logging(snakemake.log[0]):
    make_demo(snakemake.params.spec, snakemake.output[0])
