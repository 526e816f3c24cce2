from reprolab.core.logs import script_logging
from reprolab.vision.sdconv import run_training

with script_logging(snakemake.log[0]):
    run_training(
        snakemake.params.exp, snakemake.params.settings, snakemake.wildcards.sdc_run, int(snakemake.wildcards.seed),
        snakemake.input.train, snakemake.input.split, snakemake.params.checkpoint_dir, snakemake.params.device,
        snakemake.threads, snakemake.output.model, snakemake.output.history, snakemake.input.get("init"),
        resources=snakemake.params.parallel, log_path=snakemake.log[0],
    )
