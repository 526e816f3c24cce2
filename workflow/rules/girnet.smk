# GIRNet (Liu and Gu, MICCAI 2023): registration co-learned with unsupervised lesion segmentation
# and inpainting. data -> pretrained SYM-Net -> pretrained inpainter -> every arm x seed trained
# from them -> evaluated per test subject -> figures -> report. Settings: config/papers/girnet.yaml.
# Demo / smoke: synthetic lesioned subjects on nilearn's MNI152 (known fields, masks, labels).
# Paper: the preprocessed datasets of config/datasets.yaml (reprolab.medical.girnet_paper); absent
# ones stop the workflow with the steps to obtain them.

from reprolab.medical import girnet_paper as _gp

GIRNET = pcfg("girnet")
GIR_ARMS = list(GIRNET.get("run_arms") or GIRNET["arms"])
GIR_SEEDS = [int(s) for s in GIRNET["seeds"]]
GIR_SPLIT = _gp.split_suffix(GIRNET)
GIR_DATA = {
    "atlas": "results/girnet/data/atlas.npz",
    **{split: f"results/girnet/data/{split}{GIR_SPLIT}" for split in ("pretrain", "train", "test")},
}
if set(GIR_ARMS) - set(GIRNET["arms"]):
    raise WorkflowError(
        f"config key papers.girnet.scales.{SCALE}.run_arms: {sorted(set(GIR_ARMS) - set(GIRNET['arms']))} are not "
        f"arms of papers.girnet.arms ({', '.join(GIRNET['arms'])}); fix the names"
    )
if set(GIRNET.get("arm_epochs") or {}) - set(GIRNET["arms"]):
    raise WorkflowError(
        f"config key papers.girnet.scales.{SCALE}.arm_epochs: "
        f"{sorted(set(GIRNET['arm_epochs']) - set(GIRNET['arms']))} are not arms of papers.girnet.arms; fix the names"
    )
GIR_RUNS = expand("results/girnet/{arm}_s{seed}", arm=GIR_ARMS, seed=GIR_SEEDS)


wildcard_constraints:
    gir_arm="|".join(GIR_ARMS),


if GIRNET["data"]["source"] == "demo":

    rule girnet_data:
        output:
            **GIR_DATA,
            summary="results/girnet/data/summary.json",
        params:
            data=GIRNET["data"],
            seed=GIRNET["data_seed"],
        log:
            "logs/girnet/data.log",
        benchmark:
            "benchmarks/girnet/data.tsv"
        conda:
            f"{ENV_DIR}/medimg.yaml"
        script:
            "../scripts/girnet/data.py"

else:

    include: "girnet_paper.smk"


# SYM-Net on lesion-free subjects, then the inpainter (pretrain_inpainter2.py): the weights every
# arm starts from (the official code loads SYMNet_80000.pth and checkpoint/inp.pth).
rule girnet_pretrain:
    input:
        pretrain=GIR_DATA["pretrain"],
        atlas=GIR_DATA["atlas"],
    output:
        reg="results/girnet/pretrain/reg.pt",
        reg_history="results/girnet/pretrain/reg_history.json",
        inp="results/girnet/pretrain/inp.pt",
        inp_history="results/girnet/pretrain/inp_history.json",
    params:
        settings=GIRNET,
        seed=GIR_SEEDS[0],
        device=config["device"],
        checkpoint_dir="checkpoints/girnet/pretrain",
    resources:
        **train_resources("girnet"),
    log:
        "logs/girnet/pretrain.log",
    benchmark:
        "benchmarks/girnet/pretrain.tsv"
    conda:
        f"{ENV_DIR}/medimg.yaml"
    script:
        "../scripts/girnet/pretrain.py"


rule girnet_train:
    input:
        train=GIR_DATA["train"],
        atlas=GIR_DATA["atlas"],
        reg="results/girnet/pretrain/reg.pt",
        inp="results/girnet/pretrain/inp.pt",
    output:
        model="results/girnet/{gir_arm}_s{seed}/model.pt",
        history="results/girnet/{gir_arm}_s{seed}/history.json",
    params:
        settings=GIRNET,
        device=config["device"],
        checkpoint_dir="checkpoints/girnet/{gir_arm}_s{seed}",
    resources:
        **train_resources("girnet"),
    log:
        "logs/girnet/train_{gir_arm}_s{seed}.log",
    benchmark:
        "benchmarks/girnet/train_{gir_arm}_s{seed}.tsv"
    conda:
        f"{ENV_DIR}/medimg.yaml"
    script:
        "../scripts/girnet/train.py"


# All arms of one seed in one job (one import of torch and MONAI instead of one per arm).
rule girnet_evaluate:
    input:
        models=expand("results/girnet/{arm}_s{{seed}}/model.pt", arm=GIR_ARMS),
        train=GIR_DATA["train"],
        test=GIR_DATA["test"],
        atlas=GIR_DATA["atlas"],
    output:
        evals=expand("results/girnet/{arm}_s{{seed}}/eval.json", arm=GIR_ARMS),
        examples=expand("results/girnet/{arm}_s{{seed}}/examples.npz", arm=GIR_ARMS),
    params:
        arms=GIR_ARMS,
        settings=GIRNET,
        device=config["device"],
    log:
        "logs/girnet/evaluate_s{seed}.log",
    benchmark:
        "benchmarks/girnet/evaluate_s{seed}.tsv"
    conda:
        f"{ENV_DIR}/medimg.yaml"
    script:
        "../scripts/girnet/evaluate.py"


rule girnet_figures:
    input:
        evals=[f"{run}/eval.json" for run in GIR_RUNS],
        examples=[f"{run}/examples.npz" for run in GIR_RUNS],
        histories=[f"{run}/history.json" for run in GIR_RUNS],
        pretrain=["results/girnet/pretrain/reg_history.json", "results/girnet/pretrain/inp_history.json"],
    output:
        panel=report("results/girnet/figures/qualitative.png", caption="../report/girnet/qualitative.rst", category="girnet"),
        registration=report("results/girnet/figures/registration.png", caption="../report/girnet/registration.rst", category="girnet"),
        lesion=report("results/girnet/figures/lesion_dice.png", caption="../report/girnet/lesion.rst", category="girnet"),
        ablation=report("results/girnet/figures/ablation.png", caption="../report/girnet/ablation.rst", category="girnet"),
        curves=report("results/girnet/figures/loss_curves.png", caption="../report/girnet/curves.rst", category="girnet"),
    params:
        settings=GIRNET,
    log:
        "logs/girnet/figures.log",
    conda:
        f"{ENV_DIR}/report.yaml"
    script:
        "../scripts/girnet/figures.py"


rule girnet_report:
    input:
        evals=[f"{run}/eval.json" for run in GIR_RUNS],
        histories=[f"{run}/history.json" for run in GIR_RUNS],
        figures=rules.girnet_figures.output,
        data=GIR_DATA["atlas"],
    output:
        html="results/girnet/report.html",
        claims="results/girnet/claims.json",
    params:
        settings=GIRNET,
        global_settings=global_settings(),
    log:
        "logs/girnet/report.log",
    conda:
        f"{ENV_DIR}/report.yaml"
    script:
        "../scripts/girnet/report.py"
