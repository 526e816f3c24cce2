from reprolab.core.logs import script_logging
from reprolab.snn.mtt import run_eventsim

with script_logging(snakemake.log[0]):
    run_eventsim(snakemake.input.deployed, snakemake.input.events, snakemake.params.limit, snakemake.params.fine_T,
                 snakemake.params.binning, snakemake.output[0], snakemake.threads)
