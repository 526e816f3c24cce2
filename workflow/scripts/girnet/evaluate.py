from reprolab.core.logs import script_logging
from reprolab.medical.girnet_train import evaluate_arm

with script_logging(snakemake.log[0]):
    evaluate_arm(snakemake.input.model, snakemake.input.train, snakemake.input.test, snakemake.input.atlas,
                 snakemake.params.settings, snakemake.wildcards.gir_arm, int(snakemake.wildcards.seed),
                 snakemake.output.eval, snakemake.output.examples, snakemake.params.device, snakemake.threads)
