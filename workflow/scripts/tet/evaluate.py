from reprolab.core.logs import script_logging
from reprolab.snn.tet import run_evaluation

with script_logging(snakemake.log[0]):
    run_evaluation(snakemake.params.exp, snakemake.input.model, dict(zip(snakemake.params.eval_T, snakemake.input.tests)), snakemake.params.device,
                   snakemake.threads, snakemake.output[0])
