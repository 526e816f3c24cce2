from reprolab.core.logs import script_logging
from reprolab.snn.calib_report import write_report

with script_logging(snakemake.log[0]):
    write_report(snakemake.input.evals, snakemake.input.histories, list(snakemake.input.figures), snakemake.input.data,
                 snakemake.params.settings, snakemake.params.global_settings, snakemake.output.html,
                 snakemake.output.claims, eventsim_paths=list(snakemake.input.eventsims),
                 verdict_history=snakemake.input.verdict_history)
