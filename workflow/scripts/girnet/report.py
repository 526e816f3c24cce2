from reprolab.core.logs import script_logging
from reprolab.medical.girnet_report import write_report

with script_logging(snakemake.log[0]):
    write_report(list(snakemake.input.evals), list(snakemake.input.histories), list(snakemake.input.figures),
                 [snakemake.input.data], snakemake.params.settings, snakemake.params.global_settings,
                 snakemake.output.html, snakemake.output.claims)
