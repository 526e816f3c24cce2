"""Rule mman_baseline: one baseline, one seed."""

# ruff: noqa: F821
from reprolab.core.logs import script_logging
from reprolab.finance.mman import run_baseline

with script_logging(snakemake.log[0]):
    run_baseline(
        snakemake.input.corpus,
        snakemake.input.samples,
        snakemake.input.text,
        snakemake.params.settings,
        snakemake.wildcards.mman_baseline,
        int(snakemake.wildcards.seed),
        snakemake.output.predictions,
        snakemake.output.history,
    )
