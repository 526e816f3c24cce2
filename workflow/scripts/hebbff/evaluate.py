from reprolab.core.logs import script_logging
from reprolab.netsci.hebbff import run_generalization

with script_logging(snakemake.log[0]):
    run_generalization(
        snakemake.params.settings, snakemake.input.model, snakemake.input.history, snakemake.output[0]
    )
