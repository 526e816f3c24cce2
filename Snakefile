# reprolab: one Snakemake workflow, one DAG per paper.
#   snakemake --cores 2 results/tet/report.html     one paper at the configured scale
#   snakemake --cores 2 all                          every enabled paper and results/index.html
#   snakemake --profile profiles/slurm all           the same on a SLURM cluster
# Settings: config/config.yaml (global) and config/papers/<id>.yaml; see the README.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"
configfile: "config/papers/tet.yaml"
configfile: "config/papers/mtt.yaml"
configfile: "config/papers/calib.yaml"
configfile: "config/papers/sdconv.yaml"
configfile: "config/papers/hebbff.yaml"
configfile: "config/papers/energy.yaml"
configfile: "config/papers/mman.yaml"
configfile: "config/papers/planes.yaml"
configfile: "config/papers/mmcbm.yaml"
configfile: "config/papers/girnet.yaml"


wildcard_constraints:
    split="train|test",
    T=r"\d+",
    binning="count|time",
    seed=r"\d+",


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/events.smk"
include: "workflow/rules/tet.smk"
include: "workflow/rules/mtt.smk"
include: "workflow/rules/calib.smk"
include: "workflow/rules/sdconv.smk"
include: "workflow/rules/hebbff.smk"
include: "workflow/rules/energy.smk"
include: "workflow/rules/mman.smk"
include: "workflow/rules/planes.smk"
include: "workflow/rules/mmcbm.smk"
include: "workflow/rules/girnet.smk"
include: "workflow/rules/index.smk"


rule all:
    default_target: True
    input:
        all_targets(),
