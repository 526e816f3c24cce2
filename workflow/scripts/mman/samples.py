"""Rule mman_samples: labels, chronological splits, windows and credibility features."""

# ruff: noqa: F821
from reprolab.core.logs import script_logging
from reprolab.finance.stocknet import run_samples

with script_logging(snakemake.log[0]):
    run_samples(
        snakemake.input[0], snakemake.params.settings, snakemake.output.samples, snakemake.output.summary
    )
