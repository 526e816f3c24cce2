from reprolab.core.logs import script_logging
from reprolab.medical.girnet_train import pretrain

with script_logging(snakemake.log[0]):
    pretrain(snakemake.input.pretrain, snakemake.input.atlas, snakemake.params.settings, int(snakemake.params.seed),
             dict(snakemake.output), snakemake.params.checkpoint_dir, snakemake.params.device, snakemake.threads)
