from reprolab.core.logs import script_logging
from reprolab.netsci.energy import benchmark_gramians

with script_logging(snakemake.log[0]):
    benchmark_gramians(snakemake.input[0], snakemake.params.settings, snakemake.output[0])
