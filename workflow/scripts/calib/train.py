from reprolab.core.logs import script_logging
from reprolab.snn.calib import run_training

with script_logging(snakemake.log[0]):
    run_training(snakemake.params.exp, snakemake.input.train, snakemake.input.test, snakemake.params.checkpoint_dir,
                 snakemake.params.device, snakemake.threads, snakemake.output.model, snakemake.output.history,
                 weights=snakemake.input.get("weights"), resources=snakemake.params.parallel,
                 log_path=snakemake.log[0])
