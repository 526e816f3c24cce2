from reprolab.core.logs import script_logging
from reprolab.snn.tet_report import make_figures

with script_logging(snakemake.log[0]):
    make_figures(snakemake.input.histories, snakemake.input.evals, list(snakemake.input.tit), dict(snakemake.output))
