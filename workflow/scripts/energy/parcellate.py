from reprolab.core.logs import script_logging
from reprolab.data.hcp import parcellate_run

with script_logging(snakemake.log[0]):
    parcellate_run(snakemake.input[0], snakemake.params.atlas, snakemake.output[0])
