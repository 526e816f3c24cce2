from reprolab.core.logs import script_logging
from reprolab.data.pipeline import build_frames

with script_logging(snakemake.log[0]):
    build_frames(snakemake.input[0], int(snakemake.wildcards.T), snakemake.wildcards.binning, snakemake.output[0])
