"""Rule mman_report: results/mman/report.html and claims.json."""

# ruff: noqa: F821
from reprolab.core.logs import script_logging
from reprolab.finance.mman_report import write_report

with script_logging(snakemake.log[0]):
    write_report(
        snakemake.input.metrics,
        snakemake.input.backtest,
        snakemake.input.summary,
        snakemake.input.text_summary,
        list(snakemake.input.histories),
        list(snakemake.input.predictions),
        snakemake.input.samples,
        list(snakemake.input.figures),
        snakemake.input.archive,
        snakemake.params.settings,
        snakemake.params.global_settings,
        snakemake.output.html,
        snakemake.output.claims,
        verdict_history=snakemake.input.verdict_history,
    )
