from reprolab.core.logs import script_logging
from reprolab.snn.mtt_report import write_report

with script_logging(snakemake.log[0]):
    write_report(
        snakemake.input.base_histories, snakemake.input.finetune_histories, snakemake.input.evals,
        snakemake.input.eventsims, snakemake.input.tet, list(snakemake.input.figures), snakemake.input.data,
        snakemake.params.settings, snakemake.params.global_settings, snakemake.output.html, snakemake.output.claims,
        history=snakemake.input.history,
    )
