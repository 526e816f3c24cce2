from reprolab.core.logs import script_logging
from reprolab.snn.mtt import run_finetune

with script_logging(snakemake.log[0]):
    run_finetune(
        snakemake.params.exp, snakemake.wildcards.mtt_arm, int(snakemake.wildcards.seed), snakemake.input.model,
        snakemake.input.train, snakemake.input.test, snakemake.params.checkpoint_dir, snakemake.params.device,
        snakemake.threads, snakemake.output.deployed, snakemake.output.history, snakemake.input.train_deploy,
        snakemake.input.test_deploy,
        resources=snakemake.params.parallel, log_path=snakemake.log[0],
    )
