# GIRNet at paper scale (included by girnet.smk): the user's preprocessed archives
# (config/datasets.yaml, girnet_*; absent ones stop the workflow here with the steps to build
# them) are unpacked, pseudo-lesions are pasted into OASIS brains when the training set needs
# them, and the configured fold of a 5-fold split (regenerated with data_seed, official sizes
# checked) becomes the split files the demo's rules read. reprolab.medical.girnet_paper.

from reprolab.core.errors import MissingDataError

GIR_KEYS = _gp.needed_archives(GIRNET)


def girnet_archive(wildcards):
    """The archive of one preprocessed set; stops with the registry's steps when any needed one is absent."""
    try:
        archives = _gp.check_archives(REGISTRY, GIRNET, DATA)
    except MissingDataError as err:
        raise WorkflowError(f"girnet at paper scale needs preprocessed data:\n{err}")
    return archives[GIR_KEYS.index(wildcards.gir_archive)]


wildcard_constraints:
    gir_archive="|".join(GIR_KEYS),


rule girnet_paper_unpack:
    input:
        girnet_archive,
    output:
        f"{DATA}/girnet/{{gir_archive}}/.complete",
    params:
        dest=f"{DATA}/girnet/{{gir_archive}}",
    log:
        "logs/girnet/paper_unpack_{gir_archive}.log",
    conda:
        f"{ENV_DIR}/medimg.yaml"
    script:
        "../scripts/girnet/paper_unpack.py"


rule girnet_paper_splits:
    input:
        [f"{DATA}/girnet/{key}/.complete" for key in GIR_KEYS],
    output:
        **GIR_DATA,
        folds="results/girnet/data/folds.json",
    params:
        settings=GIRNET,
        roots={key: f"{DATA}/girnet/{key}" for key in GIR_KEYS},
        seed=GIRNET["data_seed"],
        pseudo_dir=f"{DATA}/girnet/pseudo_{GIRNET['data']['train_set']}",
    log:
        "logs/girnet/paper_splits.log",
    benchmark:
        "benchmarks/girnet/paper_splits.tsv"
    conda:
        f"{ENV_DIR}/medimg.yaml"
    script:
        "../scripts/girnet/paper_splits.py"
