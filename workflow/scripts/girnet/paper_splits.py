from reprolab.core.logs import script_logging
from reprolab.medical.girnet_paper import build_paper_index

with script_logging(snakemake.log[0]):
    build_paper_index(snakemake.params.settings, snakemake.params.roots, int(snakemake.params.seed),
                      snakemake.params.pseudo_dir, dict(snakemake.output))
