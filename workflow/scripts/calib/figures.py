from reprolab.core.logs import script_logging
from reprolab.snn.calib_report import make_figures

with script_logging(snakemake.log[0]):
    make_figures(snakemake.input.evals, snakemake.input.histories, dict(snakemake.output), snakemake.params.focus_T)
