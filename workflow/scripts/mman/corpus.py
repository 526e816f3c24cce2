"""Rule mman_corpus: unpack the posts archive and build the price and post tables."""

# ruff: noqa: F821
from reprolab.core.logs import script_logging
from reprolab.finance.stocknet import run_corpus

with script_logging(snakemake.log[0]):
    run_corpus(
        snakemake.params.settings,
        snakemake.input.archive,
        snakemake.params.unpack_dir,
        snakemake.input.get("prices"),
        snakemake.output[0],
    )
