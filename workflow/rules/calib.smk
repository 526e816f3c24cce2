# ANN-to-SNN conversion with layer-wise parameter calibration (Li, Deng, Dong, Gu, arXiv:2205.10121).
# results/calib/<experiment>/ann.pt -> s<seed>/{eval.json,snn.pt} (every pipeline and T) -> figures -> report.

CALIB = pcfg("calib")
CALIB_EXPS = CALIB["experiments"]
#: What calib_convert needs besides the experiment: conversion, thresholds, calibration, pipelines, T.
CALIB_SETTINGS = {k: v for k, v in CALIB.items() if k not in ("experiments", "resources", "enabled", "seeds")}

if CALIB["focus_T"] not in CALIB["eval_T"]:
    raise WorkflowError(
        f"invalid configuration: papers.calib.focus_T = {CALIB['focus_T']} is not in papers.calib.eval_T "
        f"{CALIB['eval_T']}; add it there or change focus_T (config/papers/calib.yaml)"
    )


wildcard_constraints:
    calib_exp="|".join(CALIB_EXPS),


# Input cache of each experiment and split: the static image cache, or the one-frame-per-recording
# count cache of an event dataset.
CALIB_DATA = {
    (e, split): (
        f"{DATA}/frames/{x['dataset']}/{split}_T1_count.npz"
        if x["dataset"] in ("nmnist_demo", "nmnist")
        else f"{DATA}/static/{x['dataset']}/{split}.npz"
    )
    for e, x in CALIB_EXPS.items()
    for split in ("train", "test")
}
# Per-seed results and per-experiment ANN histories.
CALIB_EVALS = [f"results/calib/{e}/s{s}/eval.json" for e in CALIB_EXPS for s in CALIB["seeds"]]
CALIB_HISTORIES = [f"results/calib/{e}/ann_history.json" for e in CALIB_EXPS]


rule calib_train:
    input:
        train=lambda wc: CALIB_DATA[(wc.calib_exp, "train")],
        test=lambda wc: CALIB_DATA[(wc.calib_exp, "test")],
    output:
        model="results/calib/{calib_exp}/ann.pt",
        history="results/calib/{calib_exp}/ann_history.json",
    params:
        exp=lambda wc: CALIB_EXPS[wc.calib_exp],
        device=config["device"],
        checkpoint_dir="checkpoints/calib/{calib_exp}",
    resources:
        **train_resources("calib"),
    log:
        "logs/calib/train_{calib_exp}.log",
    benchmark:
        "benchmarks/calib/train_{calib_exp}.tsv"
    conda:
        f"{ENV_DIR}/snn.yaml"
    script:
        "../scripts/calib/train.py"


rule calib_convert:
    input:
        model="results/calib/{calib_exp}/ann.pt",
        train=lambda wc: CALIB_DATA[(wc.calib_exp, "train")],
        test=lambda wc: CALIB_DATA[(wc.calib_exp, "test")],
    output:
        evaluation="results/calib/{calib_exp}/s{seed}/eval.json",
        snn="results/calib/{calib_exp}/s{seed}/snn.pt",
    params:
        exp=lambda wc: CALIB_EXPS[wc.calib_exp],
        settings=CALIB_SETTINGS,
        device=config["device"],
    resources:
        **train_resources("calib"),
    log:
        "logs/calib/convert_{calib_exp}_s{seed}.log",
    benchmark:
        "benchmarks/calib/convert_{calib_exp}_s{seed}.tsv"
    conda:
        f"{ENV_DIR}/snn.yaml"
    script:
        "../scripts/calib/convert.py"


rule calib_figures:
    input:
        evals=CALIB_EVALS,
        histories=CALIB_HISTORIES,
    output:
        accuracy=report(
            "results/calib/figures/accuracy_vs_T.png", caption="../report/calib/accuracy.rst", category="calib"
        ),
        mismatch=report(
            "results/calib/figures/layer_mismatch.png", caption="../report/calib/mismatch.rst", category="calib"
        ),
        split=report(
            "results/calib/figures/clip_floor_split.png", caption="../report/calib/split.rst", category="calib"
        ),
        thresholds=report(
            "results/calib/figures/thresholds.png", caption="../report/calib/thresholds.rst", category="calib"
        ),
    params:
        focus_T=CALIB["focus_T"],
    log:
        "logs/calib/figures.log",
    conda:
        f"{ENV_DIR}/snn.yaml"  # calib_report lives in reprolab.snn, which imports spikingjelly
    script:
        "../scripts/calib/figures.py"


rule calib_report:
    input:
        evals=CALIB_EVALS,
        histories=CALIB_HISTORIES,
        figures=rules.calib_figures.output,
        data=sorted(set(CALIB_DATA.values())),
    output:
        html="results/calib/report.html",
        claims="results/calib/claims.json",
    params:
        settings=CALIB,
        global_settings=global_settings(),
    log:
        "logs/calib/report.log",
    conda:
        f"{ENV_DIR}/snn.yaml"  # calib_report lives in reprolab.snn, which imports spikingjelly
    script:
        "../scripts/calib/report.py"
