"""Rule mmcbm_backbone: the black-box backbone of one (seed, fold)."""

# ruff: noqa: F821
from reprolab.core.logs import script_logging
from reprolab.medical.mmcbm_pipeline import train_backbone

with script_logging(snakemake.log[0]):
    train_backbone(
        snakemake.input.cohort,
        snakemake.input.folds,
        int(snakemake.wildcards.fold),
        int(snakemake.wildcards.seed),
        snakemake.params.settings,
        snakemake.params.device,
        snakemake.params.checkpoint_dir,
        snakemake.output.model,
        snakemake.output.history,
        snakemake.input.get("weights"),
        snakemake.threads,
    )
