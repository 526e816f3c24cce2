"""Rule mman_train: one MMAN variant, one seed."""

# ruff: noqa: F821
from reprolab.core.logs import script_logging
from reprolab.finance.mman import run_training

with script_logging(snakemake.log[0]):
    run_training(
        snakemake.input.corpus,
        snakemake.input.samples,
        snakemake.input.text,
        snakemake.params.settings,
        snakemake.wildcards.mman_variant,
        int(snakemake.wildcards.seed),
        snakemake.params.checkpoint_dir,
        snakemake.params.device,
        snakemake.threads,
        snakemake.output.model,
        snakemake.output.history,
        snakemake.output.predictions,
    )
