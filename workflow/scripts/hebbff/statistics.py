from reprolab.core.logs import script_logging
from reprolab.netsci.hebbff import run_statistics

with script_logging(snakemake.log[0]):
    run_statistics(
        snakemake.params.settings,
        list(snakemake.input.arrays),
        list(snakemake.input.summaries),
        list(snakemake.input.evals),
        snakemake.output[0],
    )
