"""Rule mman_figures: results, equity curves, credibility weights, confusion matrices."""

# ruff: noqa: F821
from reprolab.core.logs import script_logging
from reprolab.finance.mman_report import make_figures

with script_logging(snakemake.log[0]):
    make_figures(
        snakemake.input.metrics,
        snakemake.input.backtest,
        snakemake.input.samples,
        list(snakemake.input.predictions),
        dict(snakemake.output),
    )
