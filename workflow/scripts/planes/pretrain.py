# `snakemake` is injected by Snakemake's script directive.
# ruff: noqa: F821

from reprolab.core.logs import script_logging
from reprolab.medical.planes import run_pretraining

with script_logging(snakemake.log[0]):
    run_pretraining(snakemake.wildcards.planes_arm, snakemake.params.settings, snakemake.input[0],
                    snakemake.params.device, snakemake.threads, snakemake.params.checkpoint_dir, dict(snakemake.output))
