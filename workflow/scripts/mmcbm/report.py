"""Rule mmcbm_report: results/mmcbm/report.html and claims.json."""

# ruff: noqa: F821
from reprolab.core.logs import script_logging
from reprolab.medical.mmcbm_report import write_report

with script_logging(snakemake.log[0]):
    write_report(
        snakemake.input.metrics,
        snakemake.input.summary,
        snakemake.input.folds,
        list(snakemake.input.figures),
        list(snakemake.input.data),
        snakemake.params.settings,
        snakemake.params.global_settings,
        snakemake.output.html,
        snakemake.output.claims,
        snakemake.input.history,
    )
