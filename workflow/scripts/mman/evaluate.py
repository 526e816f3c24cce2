"""Rule mman_evaluate: accuracy, MCC, bootstrap noise and the backtest of every run."""

# ruff: noqa: F821
from reprolab.core.logs import script_logging
from reprolab.finance.mman_report import run_evaluation

with script_logging(snakemake.log[0]):
    run_evaluation(
        snakemake.input.samples,
        list(snakemake.input.predictions),
        snakemake.params.settings,
        snakemake.output.metrics,
        snakemake.output.backtest,
    )
