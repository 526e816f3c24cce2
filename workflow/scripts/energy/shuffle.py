from reprolab.core.logs import script_logging
from reprolab.netsci.energy import run_shuffle

with script_logging(snakemake.log[0]):
    run_shuffle(snakemake.input[0], snakemake.params.settings, int(snakemake.wildcards.en_window),
                snakemake.output.npz, snakemake.output.json)
