from reprolab.core.logs import script_logging
from reprolab.data.pipeline import build_event_split

with script_logging(snakemake.log[0]):
    build_event_split(snakemake.wildcards.dataset, snakemake.wildcards.split, snakemake.input.archive,
                      snakemake.params.entry, snakemake.output[0], snakemake.params.unpack_dir)
