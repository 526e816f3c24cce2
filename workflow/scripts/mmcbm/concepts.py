"""Rule mmcbm_concepts: concept bank, MMCBM, its variants and every evaluation of one (seed, fold)."""

# ruff: noqa: F821
from reprolab.core.logs import script_logging
from reprolab.medical.mmcbm_pipeline import run_concept_fold

with script_logging(snakemake.log[0]):
    run_concept_fold(
        snakemake.input.cohort,
        snakemake.input.folds,
        snakemake.input.model,
        int(snakemake.wildcards.fold),
        int(snakemake.wildcards.seed),
        snakemake.params.settings,
        snakemake.params.device,
        snakemake.params.checkpoint_dir,
        snakemake.output[0],
        snakemake.threads,
    )
