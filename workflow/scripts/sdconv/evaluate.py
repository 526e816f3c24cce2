from reprolab.core.logs import script_logging
from reprolab.vision.sdconv import run_evaluation

with script_logging(snakemake.log[0]):
    run_evaluation(snakemake.params.exp, snakemake.params.settings, snakemake.input.model, snakemake.input.test,
                   snakemake.input.flops, snakemake.wildcards.sdc_exp, snakemake.params.device, snakemake.threads,
                   snakemake.output.evaluation, snakemake.output.sparse)
