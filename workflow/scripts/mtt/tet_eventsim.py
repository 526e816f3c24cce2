from reprolab.core.logs import script_logging
from reprolab.snn.mtt import run_tet_eventsim

with script_logging(snakemake.log[0]):
    run_tet_eventsim(snakemake.input.model, snakemake.input.train, snakemake.input.test, snakemake.params.limit,
                     snakemake.output[0], snakemake.threads)
