from reprolab.core.logs import script_logging
from reprolab.snn.calib import run_conversion

with script_logging(snakemake.log[0]):
    run_conversion(snakemake.params.exp, snakemake.params.settings, int(snakemake.wildcards.seed), snakemake.input.model,
                   snakemake.input.train, snakemake.input.test, snakemake.params.device, snakemake.threads,
                   snakemake.output.evaluation, snakemake.output.snn)
