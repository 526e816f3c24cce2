# Multimodal concept-bottleneck model for choroid neoplasias (Wu et al., Nat. Commun. 16:3504, 2025).
# cohort (generated demo with known truth | CTI downloads) -> patient-grouped folds -> per (seed, fold):
# black-box backbone -> concept bank + MMCBM + variants + evaluations -> pooled metrics -> figures -> report.

MMCBM = pcfg("mmcbm")
MMCBM_DATA = "results/mmcbm/data"
MMCBM_RUN = "results/mmcbm/runs/s{seed}_f{fold}"
MMCBM_RUNS = expand(MMCBM_RUN, seed=MMCBM["seeds"], fold=range(MMCBM["n_folds"]))


# CTI at paper scale: the figshare archive and the official split / concept files.
MMCBM_CTI = {}
if MMCBM["dataset"] == "cti":
    MMCBM_CTI = {
        "archive": registry_file("cti", "cti_figshare_51845132"),
        "data_cleaned": registry_file("cti_splits", "DATA_Cleaned.csv"),
        "train": registry_file("cti_splits", "train.csv"),
        "test": registry_file("cti_splits", "test.csv"),
        "concepts_zh": registry_file("cti_splits", "patient_concepts_map.csv"),
        "concepts_en": registry_file("cti_splits", "patient_concepts_map_trans.csv"),
    }
MMCBM_KFOLD = (
    {"kfold": registry_file("cti_splits", "k_fold.csv")} if MMCBM["fold_source"] == "official" else {}
)
MMCBM_WEIGHTS = (
    {"weights": registry_file("torchvision_efficientnet_b0", "efficientnet_b0_rwightman-7f5810bc.pth")}
    if MMCBM["encoder"]["imagenet"]
    else {}
)


rule mmcbm_cohort:
    input:
        **MMCBM_CTI,
    output:
        cohort=f"{MMCBM_DATA}/cohort.npz",
        summary=f"{MMCBM_DATA}/cohort.json",
    params:
        settings=MMCBM,
        unpack_dir=f"{DATA}/unpacked/cti",
    log:
        "logs/mmcbm/cohort.log",
    benchmark:
        "benchmarks/mmcbm/cohort.tsv"
    conda:
        f"{ENV_DIR}/medimg.yaml"
    script:
        "../scripts/mmcbm/cohort.py"


rule mmcbm_folds:
    input:
        cohort=f"{MMCBM_DATA}/cohort.npz",
        **MMCBM_KFOLD,
    output:
        f"{MMCBM_DATA}/folds.json",
    params:
        settings=MMCBM,
    log:
        "logs/mmcbm/folds.log",
    conda:
        f"{ENV_DIR}/medimg.yaml"
    script:
        "../scripts/mmcbm/folds.py"


rule mmcbm_backbone:
    input:
        cohort=f"{MMCBM_DATA}/cohort.npz",
        folds=f"{MMCBM_DATA}/folds.json",
        **MMCBM_WEIGHTS,
    output:
        model=f"{MMCBM_RUN}/backbone.pt",
        history=f"{MMCBM_RUN}/backbone_history.json",
    params:
        settings=MMCBM,
        device=config["device"],
        checkpoint_dir="checkpoints/mmcbm/s{seed}_f{fold}/backbone",
    wildcard_constraints:
        fold=r"\d+",
    resources:
        **train_resources("mmcbm"),
    log:
        "logs/mmcbm/backbone_s{seed}_f{fold}.log",
    benchmark:
        "benchmarks/mmcbm/backbone_s{seed}_f{fold}.tsv"
    conda:
        f"{ENV_DIR}/medimg.yaml"
    script:
        "../scripts/mmcbm/backbone.py"


rule mmcbm_concepts:
    input:
        cohort=f"{MMCBM_DATA}/cohort.npz",
        folds=f"{MMCBM_DATA}/folds.json",
        model=f"{MMCBM_RUN}/backbone.pt",
    output:
        f"{MMCBM_RUN}/eval.json",
    params:
        settings=MMCBM,
        device=config["device"],
        checkpoint_dir="checkpoints/mmcbm/s{seed}_f{fold}/cbm",
    wildcard_constraints:
        fold=r"\d+",
    resources:
        **train_resources("mmcbm"),
    log:
        "logs/mmcbm/concepts_s{seed}_f{fold}.log",
    benchmark:
        "benchmarks/mmcbm/concepts_s{seed}_f{fold}.tsv"
    conda:
        f"{ENV_DIR}/medimg.yaml"
    script:
        "../scripts/mmcbm/concepts.py"


rule mmcbm_evaluate:
    input:
        cohort=f"{MMCBM_DATA}/cohort.npz",
        folds=f"{MMCBM_DATA}/folds.json",
        evals=[f"{run}/eval.json" for run in MMCBM_RUNS],
        histories=[f"{run}/backbone_history.json" for run in MMCBM_RUNS],
    output:
        "results/mmcbm/metrics.json",
    params:
        settings=MMCBM,
    log:
        "logs/mmcbm/evaluate.log",
    benchmark:
        "benchmarks/mmcbm/evaluate.tsv"
    conda:
        f"{ENV_DIR}/medimg.yaml"
    script:
        "../scripts/mmcbm/evaluate.py"


rule mmcbm_figures:
    input:
        "results/mmcbm/metrics.json",
    output:
        concepts=report("results/mmcbm/figures/top_concepts.png", caption="../report/mmcbm/top_concepts.rst",
                        category="mmcbm"),
        cav=report("results/mmcbm/figures/cav_quality.png", caption="../report/mmcbm/cav_quality.rst", category="mmcbm"),
        confusion=report("results/mmcbm/figures/confusion.png", caption="../report/mmcbm/confusion.rst",
                         category="mmcbm"),
        intervention=report("results/mmcbm/figures/intervention.png", caption="../report/mmcbm/intervention.rst",
                            category="mmcbm"),
        ablation=report("results/mmcbm/figures/modality_drop.png", caption="../report/mmcbm/modality_drop.rst",
                        category="mmcbm"),
        training=report("results/mmcbm/figures/training.png", caption="../report/mmcbm/training.rst",
                        category="mmcbm"),
    log:
        "logs/mmcbm/figures.log",
    conda:
        f"{ENV_DIR}/report.yaml"
    script:
        "../scripts/mmcbm/figures.py"


rule mmcbm_report:
    input:
        metrics="results/mmcbm/metrics.json",
        summary=f"{MMCBM_DATA}/cohort.json",
        folds=f"{MMCBM_DATA}/folds.json",
        figures=rules.mmcbm_figures.output,
        data=[*MMCBM_CTI.values(), *MMCBM_KFOLD.values(), *MMCBM_WEIGHTS.values()],
        history=verdict_history("mmcbm"),
    output:
        html="results/mmcbm/report.html",
        claims="results/mmcbm/claims.json",
    params:
        settings=MMCBM,
        global_settings=global_settings(),
    log:
        "logs/mmcbm/report.log",
    conda:
        f"{ENV_DIR}/report.yaml"
    script:
        "../scripts/mmcbm/report.py"
