from reprolab.core.logs import script_logging
from reprolab.vision.sdconv_report import make_figures

with script_logging(snakemake.log[0]):
    make_figures(snakemake.input.histories, snakemake.input.evals, snakemake.params.settings, dict(snakemake.output),
                 selection_paths=list(snakemake.input.selections))
