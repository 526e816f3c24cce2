from reprolab.core.logs import script_logging
from reprolab.netsci.hebbff_report import write_report

with script_logging(snakemake.log[0]):
    write_report(
        snakemake.input.stats,
        list(snakemake.input.histories),
        list(snakemake.input.evals),
        list(snakemake.input.summaries),
        list(snakemake.input.figures),
        snakemake.params.settings,
        snakemake.params.global_settings,
        snakemake.output.html,
        snakemake.output.claims,
        snakemake.input.history,
    )
