from reprolab.core.logs import script_logging
from reprolab.snn.mtt import run_train_base

with script_logging(snakemake.log[0]):
    run_train_base(
        snakemake.params.exp, snakemake.wildcards.mtt_arm, int(snakemake.wildcards.seed), snakemake.input.train,
        snakemake.input.test, snakemake.params.checkpoint_dir, snakemake.params.device, snakemake.threads,
        snakemake.output.model, snakemake.output.history,
        resources=snakemake.params.parallel, log_path=snakemake.log[0],
    )
