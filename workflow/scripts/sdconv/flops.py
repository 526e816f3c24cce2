from reprolab.core.logs import script_logging
from reprolab.vision.sdconv import flop_check

with script_logging(snakemake.log[0]):
    flop_check(snakemake.output[0], snakemake.params.settings)
