from reprolab.core.logs import script_logging
from reprolab.snn.mtt import run_evaluation

with script_logging(snakemake.log[0]):
    run_evaluation(snakemake.params.exp, snakemake.input.model, snakemake.input.deployed, snakemake.input.train,
                   snakemake.input.test, snakemake.params.device, snakemake.threads, snakemake.output[0],
                   snakemake.input.test_deploy)
