from reprolab.core.logs import script_logging
from reprolab.medical.girnet_train import evaluate_arms

with script_logging(snakemake.log[0]):
    evaluate_arms(list(snakemake.params.arms), list(snakemake.input.models), snakemake.input.train,
                  snakemake.input.test, snakemake.input.atlas, snakemake.params.settings, int(snakemake.wildcards.seed),
                  list(snakemake.output.evals), list(snakemake.output.examples), snakemake.params.device,
                  snakemake.threads)
