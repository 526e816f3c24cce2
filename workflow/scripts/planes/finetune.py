# `snakemake` is injected by Snakemake's script directive.
# ruff: noqa: F821

from reprolab.core.logs import script_logging
from reprolab.medical.planes import run_finetuning

with script_logging(snakemake.log[0]):
    run_finetuning(snakemake.wildcards.planes_arm, snakemake.params.settings, snakemake.input.data,
                   (list(snakemake.input.pretrained) or [None])[0], snakemake.params.device, snakemake.threads,
                   snakemake.params.checkpoint_root, snakemake.output[0])
