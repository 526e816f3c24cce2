from reprolab.core.logs import script_logging
from reprolab.netsci.hebbff import run_analysis

with script_logging(snakemake.log[0]):
    run_analysis(
        snakemake.params.settings,
        snakemake.input.snapshots,
        snakemake.input.history,
        snakemake.output.arrays,
        snakemake.output.summary,
    )
