from reprolab.core.logs import script_logging
from reprolab.data.hcp import download_hcp_file

with script_logging(snakemake.log[0]):
    download_hcp_file(snakemake.wildcards.en_subject, snakemake.params.filename, snakemake.output[0],
                      profile=snakemake.params.profile)
