# Event datasets -> per-split event files -> frames for any number of bins T (cached);
# static image datasets -> image caches. Rules for every SNN paper (tet, mtt, calib, ...).

from reprolab.data.pipeline import EVENT_DATASETS, STATIC_DATASETS

# event_archive() and event_archive_entry(): workflow/rules/common.smk.


rule data_events:
    input:
        archive=event_archive,
    output:
        f"{DATA}/events/{{dataset}}/{{split}}.npz",
    params:
        entry=event_archive_entry,
        unpack_dir=lambda wc: f"{DATA}/unpacked/{wc.dataset}",
    wildcard_constraints:
        dataset="|".join(EVENT_DATASETS),
    log:
        "logs/data/events_{dataset}_{split}.log",
    benchmark:
        "benchmarks/data/events_{dataset}_{split}.tsv"
    conda:
        f"{ENV_DIR}/snn.yaml"
    script:
        "../scripts/data/events.py"


rule data_frames:
    input:
        f"{DATA}/events/{{dataset}}/{{split}}.npz",
    output:
        f"{DATA}/frames/{{dataset}}/{{split}}_T{{T}}_{{binning}}.npz",
    wildcard_constraints:
        dataset="|".join(EVENT_DATASETS),
    log:
        "logs/data/frames_{dataset}_{split}_T{T}_{binning}.log",
    benchmark:
        "benchmarks/data/frames_{dataset}_{split}_T{T}_{binning}.tsv"
    conda:
        f"{ENV_DIR}/snn.yaml"
    script:
        "../scripts/data/frames.py"


rule data_static:
    output:
        f"{DATA}/static/{{dataset}}/{{split}}.npz",
    params:
        download_root=lambda wc: f"{DATA}/downloads/{wc.dataset}",
    wildcard_constraints:
        dataset="|".join(STATIC_DATASETS),
    log:
        "logs/data/static_{dataset}_{split}.log",
    benchmark:
        "benchmarks/data/static_{dataset}_{split}.tsv"
    conda:
        f"{ENV_DIR}/snn.yaml"
    script:
        "../scripts/data/static.py"
