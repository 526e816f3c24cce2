from reprolab.core.logs import script_logging
from reprolab.medical.girnet_train import pretrain_registration

with script_logging(snakemake.log[0]):
    pretrain_registration(snakemake.input.pretrain, snakemake.input.atlas, snakemake.params.settings,
                          int(snakemake.params.seed), snakemake.output.model, snakemake.output.history,
                          snakemake.params.checkpoint_dir, snakemake.params.device, snakemake.threads)
