from reprolab.core.logs import script_logging
from reprolab.netsci.hebbff import run_training

with script_logging(snakemake.log[0]):
    run_training(
        snakemake.params.settings,
        snakemake.wildcards.hb_mode,
        int(snakemake.wildcards.seed),
        snakemake.params.checkpoint_dir,
        snakemake.output.model,
        snakemake.output.snapshots,
        snakemake.output.history,
    )
