"""Rule mman_prices (paper scale): daily prices of every Xueqiu stock, fetched once and cached."""

# ruff: noqa: F821
from reprolab.core.logs import script_logging
from reprolab.finance.stocknet import run_xueqiu_prices

with script_logging(snakemake.log[0]):
    run_xueqiu_prices(
        snakemake.input.archive,
        snakemake.params.unpack_dir,
        snakemake.params.splits,
        snakemake.params.price_days,
        snakemake.output[0],
    )
