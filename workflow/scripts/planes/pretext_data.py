# `snakemake` is injected by Snakemake's script directive.
# ruff: noqa: F821

from reprolab.core.logs import script_logging
from reprolab.medical.planes import make_pretext_data

with script_logging(snakemake.log[0]):
    make_pretext_data(snakemake.input[0], snakemake.params.data, snakemake.params.preprocess, snakemake.output[0])
