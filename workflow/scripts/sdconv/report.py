from reprolab.core.logs import script_logging
from reprolab.vision.sdconv_report import write_report

with script_logging(snakemake.log[0]):
    write_report(snakemake.input.histories, snakemake.input.evals, snakemake.input.flops,
                 list(snakemake.input.figures), snakemake.input.data, snakemake.params.settings,
                 snakemake.params.global_settings, snakemake.output.html, snakemake.output.claims,
                 selection_paths=list(snakemake.input.selections), split_paths=list(snakemake.input.splits),
                 verdict_history=snakemake.input.verdict_history)
