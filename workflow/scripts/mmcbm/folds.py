"""Rule mmcbm_folds: one cross-validation fold per patient."""

# ruff: noqa: F821
from reprolab.core.logs import script_logging
from reprolab.medical.mmcbm_folds import run_folds

with script_logging(snakemake.log[0]):
    run_folds(snakemake.input.cohort, snakemake.params.settings, snakemake.output[0], snakemake.input.get("kfold"))
