# `snakemake` is injected by Snakemake's script directive.
# ruff: noqa: F821

from reprolab.core.logs import script_logging
from reprolab.medical.planes_report import write_report

with script_logging(snakemake.log[0]):
    write_report(list(snakemake.input.pretext), list(snakemake.input.histories), list(snakemake.input.finetune),
                 list(snakemake.input.figures), list(snakemake.input.data), snakemake.params.settings,
                 snakemake.params.global_settings, snakemake.output.html, snakemake.output.claims)
