from reprolab.core.logs import script_logging
from reprolab.snn.mtt_report import make_figures

with script_logging(snakemake.log[0]):
    make_figures(snakemake.input.base_histories, snakemake.input.finetune_histories, snakemake.input.evals,
                 snakemake.input.eventsims, snakemake.input.tet, dict(snakemake.output))
