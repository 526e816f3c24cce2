from reprolab.core.logs import script_logging
from reprolab.medical.girnet_paper import unpack_archive

with script_logging(snakemake.log[0]):
    unpack_archive(snakemake.input[0], snakemake.params.dest)
