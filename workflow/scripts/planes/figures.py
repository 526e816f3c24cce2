# `snakemake` is injected by Snakemake's script directive.
# ruff: noqa: F821

from reprolab.core.logs import script_logging
from reprolab.medical.planes_report import make_figures

with script_logging(snakemake.log[0]):
    make_figures(list(snakemake.input.pretext), list(snakemake.input.histories), list(snakemake.input.examples),
                 list(snakemake.input.finetune), dict(snakemake.output), snakemake.input.segmentation)
