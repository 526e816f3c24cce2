from reprolab.core.logs import script_logging
from reprolab.medical.girnet_train import train_arm

with script_logging(snakemake.log[0]):
    train_arm(snakemake.input.train, snakemake.input.atlas, snakemake.input.reg, snakemake.input.inp,
              snakemake.params.settings, snakemake.wildcards.gir_arm, int(snakemake.wildcards.seed),
              snakemake.output.model, snakemake.output.history, snakemake.params.checkpoint_dir,
              snakemake.params.device, snakemake.threads)
