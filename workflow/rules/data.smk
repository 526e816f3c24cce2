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
