from reprolab.core.logs import script_logging
from reprolab.medical.girnet_report import make_figures

with script_logging(snakemake.log[0]):
    make_figures(list(snakemake.input.evals), list(snakemake.input.examples), list(snakemake.input.histories),
                 list(snakemake.input.pretrain), snakemake.params.settings, dict(snakemake.output))
