from reprolab.core.logs import script_logging
from reprolab.vision.validation import run_selection

with script_logging(snakemake.log[0]):
    run_selection(snakemake.input.histories, snakemake.params.settings, snakemake.output[0])
