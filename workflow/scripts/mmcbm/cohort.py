"""Rule mmcbm_cohort: the generated demo cohort, or CTI read from its downloads."""

# ruff: noqa: F821
from reprolab.core.logs import script_logging
from reprolab.medical.mmcbm_cohort import run_cohort

with script_logging(snakemake.log[0]):
    cti = {**{k: v for k, v in snakemake.input.items()}, "unpack_dir": snakemake.params.unpack_dir} if len(snakemake.input) else None
    run_cohort(snakemake.params.settings, snakemake.output.cohort, snakemake.output.summary, cti)
