from reprolab.core.logs import script_logging
from reprolab.data.hcp import build_demo_timeseries, build_paper_timeseries

with script_logging(snakemake.log[0]):
    settings = snakemake.params.settings
    if settings["data"] == "demo":
        mats, labels, checks = snakemake.params.demo
        build_demo_timeseries(mats, labels, settings, snakemake.output[0], checks)
    else:
        runs = dict(zip(snakemake.params.subjects, snakemake.input.runs))
        build_paper_timeseries(runs, settings["atlas"], settings, snakemake.output[0])
