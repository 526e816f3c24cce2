from reprolab.core.logs import script_logging
from reprolab.netsci.hebbff_report import make_figures

with script_logging(snakemake.log[0]):
    make_figures(
        snakemake.input.stats,
        list(snakemake.input.histories),
        list(snakemake.input.evals),
        list(snakemake.input.arrays),
        snakemake.params.settings,
        dict(snakemake.output),
    )
