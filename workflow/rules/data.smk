# Dataset downloads (see config/datasets.yaml).
# --- downloads ---
# data_download fetches any file of a dataset in config/datasets.yaml into
# {DATA}/downloads/<dataset>/<file>: mirrors tried in order, interrupted transfers resumed,
# transient failures retried with backoff, size and checksum verified before the file
# appears. Datasets that need credentials or a manual download are never fetched: asking
# for one of their absent files stops the workflow with the dataset's instructions.
# Committed datasets (access: local) have no download; their paths come from the registry.
# DATA, ENV_DIR: workflow/rules/common.smk.

from reprolab.data.registry import downloadable_ids

# REGISTRY and download_params(): workflow/rules/common.smk.


rule data_download:
    output:
        f"{DATA}/downloads/{{dataset}}/{{filename}}",
    params:
        spec=download_params,
    wildcard_constraints:
        dataset="|".join(downloadable_ids(REGISTRY)),
        filename=r"[^/]+",
    log:
        "logs/data/download_{dataset}_{filename}.log",
    localrule: True
    retries: 2
    conda:
        f"{ENV_DIR}/base.yaml"
    script:
        "../scripts/data/download.py"


# --- ImageNet ---
# The user's three ILSVRC2012 archives (registry access: credentials; absent ones stop the
# workflow with the registry's instructions through data_download) unpacked once with
# torchvision's parser; papers that train or evaluate on ImageNet (sdconv, calib) take the
# manifest as input (reprolab.data.imagenet).


rule data_imagenet:
    input:
        train=f"{DATA}/downloads/imagenet/ILSVRC2012_img_train.tar",
        val=f"{DATA}/downloads/imagenet/ILSVRC2012_img_val.tar",
        devkit=f"{DATA}/downloads/imagenet/ILSVRC2012_devkit_t12.tar.gz",
    output:
        f"{DATA}/imagenet/prepared.json",
    log:
        "logs/data/imagenet_prepare.log",
    benchmark:
        "benchmarks/data/imagenet_prepare.tsv"
    conda:
        f"{ENV_DIR}/snn.yaml"
    script:
        "../scripts/data/imagenet.py"
