"""Rule mman_text: post representations (sentence embeddings or word ids), computed once."""

# ruff: noqa: F821
from reprolab.core.logs import script_logging
from reprolab.finance.text import run_text_cache

with script_logging(snakemake.log[0]):
    run_text_cache(
        snakemake.input.corpus,
        snakemake.input.samples,
        snakemake.params.text,
        snakemake.params.device,
        snakemake.threads,
        snakemake.output.cache,
        snakemake.output.summary,
    )
