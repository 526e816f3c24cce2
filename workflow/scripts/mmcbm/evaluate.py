"""Rule mmcbm_evaluate: pooled out-of-fold metrics, T1, concepts, interventions, ablations."""

# ruff: noqa: F821
from reprolab.core.logs import script_logging
from reprolab.medical.mmcbm_evaluation import run_evaluation

with script_logging(snakemake.log[0]):
    run_evaluation(
        snakemake.input.cohort,
        snakemake.input.folds,
        list(snakemake.input.evals),
        list(snakemake.input.histories),
        snakemake.params.settings,
        snakemake.output[0],
    )
