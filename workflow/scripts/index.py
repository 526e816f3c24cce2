from reprolab.core.logs import script_logging
from reprolab.report import collect_provenance, render_index

with script_logging(snakemake.log[0]):
    render_index(dict(zip(snakemake.params.papers, snakemake.input.claims)), snakemake.output[0],
                 snakemake.params.global_settings["scale"], collect_provenance(snakemake.params.global_settings))
