"""Rule mmcbm_figures: top concepts, CAV quality, confusion, intervention, modality drop, training."""

# ruff: noqa: F821
from reprolab.core.logs import script_logging
from reprolab.medical.mmcbm_report import make_figures

with script_logging(snakemake.log[0]):
    make_figures(snakemake.input[0], dict(snakemake.output))
