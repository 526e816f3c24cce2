# `snakemake` is injected by Snakemake's script directive.
# ruff: noqa: F821

from reprolab.core.logs import script_logging
from reprolab.medical.planes import make_segmentation_data

with script_logging(snakemake.log[0]):
    make_segmentation_data(snakemake.input[0], snakemake.params.data, snakemake.params.preprocess,
                           snakemake.params.classes, snakemake.output[0])
