from reprolab.core.logs import script_logging
from reprolab.snn.calib_eventsim import run_eventsim

with script_logging(snakemake.log[0]):
    run_eventsim(snakemake.params.exp, snakemake.params.settings, int(snakemake.wildcards.seed), snakemake.input.model,
                 snakemake.input.snn, snakemake.input.evaluation, snakemake.input.test, snakemake.threads,
                 snakemake.output[0])
