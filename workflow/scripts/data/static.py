from reprolab.core.logs import script_logging
from reprolab.data.pipeline import build_static

with script_logging(snakemake.log[0]):
    build_static(snakemake.wildcards.dataset, snakemake.wildcards.split, snakemake.output[0],
                 snakemake.params.download_root)
