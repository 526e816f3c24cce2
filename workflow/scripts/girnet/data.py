from reprolab.core.logs import script_logging
from reprolab.medical.girnet_data import build_demo_data

with script_logging(snakemake.log[0]):
    build_demo_data(snakemake.params.data, int(snakemake.params.seed), dict(snakemake.output))
