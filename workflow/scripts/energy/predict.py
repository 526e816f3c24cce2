from reprolab.core.logs import script_logging
from reprolab.netsci.energy import run_prediction

with script_logging(snakemake.log[0]):
    run_prediction(snakemake.input.features, snakemake.params.settings, snakemake.output[0])
