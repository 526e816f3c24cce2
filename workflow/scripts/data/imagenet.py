from reprolab.core.logs import script_logging
from reprolab.data.imagenet import prepare_imagenet

with script_logging(snakemake.log[0]):
    prepare_imagenet(snakemake.input.train, snakemake.input.val, snakemake.input.devkit, snakemake.output[0])
