from reprolab.core.logs import script_logging
from reprolab.snn.tet import run_training

with script_logging(snakemake.log[0]):
    run_training(
        snakemake.params.exp, "tet", int(snakemake.wildcards.seed), snakemake.input.train, snakemake.input.test,
        snakemake.params.checkpoint_dir, snakemake.params.device, snakemake.threads, snakemake.output.model,
        snakemake.output.history, init_model=(snakemake.input.init or [None])[0],
        keep_predictions=snakemake.params.keep_predictions,
        resources=snakemake.params.parallel, log_path=snakemake.log[0],
    )
