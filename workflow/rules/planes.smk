# Self-supervised pretext tasks from anatomy-oriented imaging planes (Zhang et al., MedIA 2024).
# studies (demo: MNI152 resliced on oblique planes; paper: DSB2 DICOM + ACDC NIfTI)
#   -> pretext data (SAX images, line and slice targets) + segmentation data (labelled slices)
#   -> pretraining per pretext arm (line, slice, multitask)
#   -> fine-tuning per arm (scratch + the pretrained ones) over seeds x label budgets
#   -> figures -> results/planes/report.html

PLANES = pcfg("planes")
PLANES_DATA = PLANES["data"]
PLANES_PRETEXT_ARMS = [a for a in PLANES["arms"] if a != "scratch"]
PLANES_CLASSES = {"demo": ["grey matter", "white matter", "other tissue"], "paper": ["RV", "MYO", "LV"]}


wildcard_constraints:
    planes_arm="|".join(PLANES["arms"]),
    planes_dataset="dsb2|acdc",


# Input of each data rule: the demo planes, or the unpacked DSB2 (pretext) / ACDC (segmentation).
PLANES_SOURCE = (
    dict.fromkeys(("pretext", "segmentation"), "results/planes/data/demo_planes.npz")
    if PLANES_DATA["source"] == "demo"
    else {"pretext": f"{DATA}/planes/dsb2/.complete", "segmentation": f"{DATA}/planes/acdc/.complete"}
)


rule planes_demo_planes:
    output:
        "results/planes/data/demo_planes.npz",
    params:
        spec=PLANES_DATA.get("demo"),
    log:
        "logs/planes/demo_planes.log",
    benchmark:
        "benchmarks/planes/demo_planes.tsv"
    conda:
        f"{ENV_DIR}/medimg.yaml"
    script:
        "../scripts/planes/demo_planes.py"


rule planes_unpack:
    input:
        # the one registry file of DSB2 or ACDC (absent: data_download stops with the instructions)
        lambda wc: registry_file(wc.planes_dataset),
    output:
        f"{DATA}/planes/{{planes_dataset}}/.complete",
    log:
        "logs/planes/unpack_{planes_dataset}.log",
    conda:
        f"{ENV_DIR}/medimg.yaml"
    script:
        "../scripts/planes/unpack.py"


rule planes_pretext_data:
    input:
        PLANES_SOURCE["pretext"],
    output:
        f"{DATA}/planes/{SCALE}/pretext.npz",
    params:
        data=PLANES_DATA,
        preprocess=PLANES["preprocess"],
    log:
        "logs/planes/pretext_data.log",
    benchmark:
        "benchmarks/planes/pretext_data.tsv"
    conda:
        f"{ENV_DIR}/medimg.yaml"
    script:
        "../scripts/planes/pretext_data.py"


rule planes_segmentation_data:
    input:
        PLANES_SOURCE["segmentation"],
    output:
        f"{DATA}/planes/{SCALE}/segmentation.npz",
    params:
        data=PLANES_DATA,
        preprocess=PLANES["preprocess"],
        classes=PLANES_CLASSES[PLANES_DATA["source"]],
    log:
        "logs/planes/segmentation_data.log",
    benchmark:
        "benchmarks/planes/segmentation_data.tsv"
    conda:
        f"{ENV_DIR}/medimg.yaml"
    script:
        "../scripts/planes/segmentation_data.py"


rule planes_pretrain:
    input:
        f"{DATA}/planes/{SCALE}/pretext.npz",
    output:
        model="results/planes/pretrain/{planes_arm}/model.pt",
        history="results/planes/pretrain/{planes_arm}/history.json",
        eval="results/planes/pretrain/{planes_arm}/eval.json",
        examples="results/planes/pretrain/{planes_arm}/examples.npz",
    params:
        settings=PLANES,
        device=config["device"],
        checkpoint_dir=lambda wc: f"checkpoints/planes/{SCALE}/pretrain/{wc.planes_arm}",
    wildcard_constraints:
        planes_arm="line|slice|multitask",
    resources:
        **train_resources("planes"),
    log:
        "logs/planes/pretrain_{planes_arm}.log",
    benchmark:
        "benchmarks/planes/pretrain_{planes_arm}.tsv"
    conda:
        f"{ENV_DIR}/medimg.yaml"
    script:
        "../scripts/planes/pretrain.py"


rule planes_finetune:
    input:
        data=f"{DATA}/planes/{SCALE}/segmentation.npz",
        pretrained=lambda wc: [] if wc.planes_arm == "scratch" else [f"results/planes/pretrain/{wc.planes_arm}/model.pt"],
    output:
        "results/planes/finetune/{planes_arm}/eval.json",
    params:
        settings=PLANES,
        device=config["device"],
        checkpoint_root=lambda wc: f"checkpoints/planes/{SCALE}/finetune/{wc.planes_arm}",
    resources:
        **train_resources("planes"),
    log:
        "logs/planes/finetune_{planes_arm}.log",
    benchmark:
        "benchmarks/planes/finetune_{planes_arm}.tsv"
    conda:
        f"{ENV_DIR}/medimg.yaml"
    script:
        "../scripts/planes/finetune.py"


rule planes_figures:
    input:
        pretext=expand("results/planes/pretrain/{arm}/eval.json", arm=PLANES_PRETEXT_ARMS),
        histories=expand("results/planes/pretrain/{arm}/history.json", arm=PLANES_PRETEXT_ARMS),
        examples=expand("results/planes/pretrain/{arm}/examples.npz", arm=PLANES_PRETEXT_ARMS),
        finetune=expand("results/planes/finetune/{arm}/eval.json", arm=PLANES["arms"]),
        segmentation=f"{DATA}/planes/{SCALE}/segmentation.npz",
    output:
        subjects=report("results/planes/figures/subjects.png", caption="../report/planes/subjects.rst", category="planes"),
        heatmaps=report("results/planes/figures/heatmaps.png", caption="../report/planes/heatmaps.rst", category="planes"),
        slices=report("results/planes/figures/slice_location.png", caption="../report/planes/slices.rst", category="planes"),
        budget=report("results/planes/figures/dice_vs_budget.png", caption="../report/planes/budget.rst", category="planes"),
        curves=report("results/planes/figures/loss_curves.png", caption="../report/planes/curves.rst", category="planes"),
    log:
        "logs/planes/figures.log",
    conda:
        f"{ENV_DIR}/report.yaml"
    script:
        "../scripts/planes/figures.py"


rule planes_report:
    input:
        pretext=rules.planes_figures.input.pretext,
        histories=rules.planes_figures.input.histories,
        finetune=rules.planes_figures.input.finetune,
        figures=rules.planes_figures.output,
        data=[f"{DATA}/planes/{SCALE}/pretext.npz", f"{DATA}/planes/{SCALE}/segmentation.npz"],
    output:
        html="results/planes/report.html",
        claims="results/planes/claims.json",
    params:
        settings=PLANES,
        global_settings=global_settings(),
    log:
        "logs/planes/report.log",
    conda:
        f"{ENV_DIR}/report.yaml"
    script:
        "../scripts/planes/report.py"
