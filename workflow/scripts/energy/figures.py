from reprolab.core.logs import script_logging
from reprolab.netsci.energy_report import make_figures

with script_logging(snakemake.log[0]):
    make_figures(snakemake.input.compare, snakemake.input.surrogates, snakemake.input.shuffle,
                 snakemake.input.prediction, snakemake.params.main_window, dict(snakemake.output))
