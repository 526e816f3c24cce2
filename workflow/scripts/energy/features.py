from reprolab.core.logs import script_logging
from reprolab.netsci.energy import run_features

with script_logging(snakemake.log[0]):
    run_features(snakemake.input[0], snakemake.params.settings, snakemake.output[0])
