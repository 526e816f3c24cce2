from reprolab.core.logs import script_logging
from reprolab.netsci.energy_report import write_report

with script_logging(snakemake.log[0]):
    write_report(snakemake.input.compare, snakemake.input.surrogates, snakemake.input.shuffle,
                 snakemake.input.prediction, snakemake.input.bench, list(snakemake.input.figures),
                 snakemake.input.data, snakemake.params.data_files, snakemake.params.settings,
                 snakemake.params.global_settings, snakemake.output.html, snakemake.output.claims,
                 snakemake.input.history)
