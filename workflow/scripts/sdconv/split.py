from reprolab.core.logs import script_logging
from reprolab.vision.validation import run_split

with script_logging(snakemake.log[0]):
    run_split(snakemake.params.exp, snakemake.params.settings, snakemake.input.train, snakemake.output[0])
