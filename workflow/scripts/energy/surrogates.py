from reprolab.core.logs import script_logging
from reprolab.netsci.energy import run_surrogates

with script_logging(snakemake.log[0]):
    run_surrogates(snakemake.input.timeseries, snakemake.params.settings, int(snakemake.wildcards.en_window),
                   snakemake.params.checkpoint_dir, snakemake.output.npz, snakemake.output.json,
                   snakemake.input.compare)
