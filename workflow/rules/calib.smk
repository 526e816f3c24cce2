# ANN-to-SNN conversion with layer-wise parameter calibration (Li, Deng, Dong, Gu, arXiv:2205.10121).
# results/calib/<experiment>/ann.pt -> s<seed>/{eval.json,snn.pt} (every pipeline and T) -> figures -> report.
# ImageNet experiments read the manifest of data_imagenet (workflow/rules/data.smk) and, with
# model.pretrained: torchvision, torchvision's weights (registry entry torchvision_imagenet).

from reprolab.snn.calib_plan import CalibPlan

CALIB = pcfg("calib")
# Checks every experiment's settings (its overrides merged) at parse time, naming the key.
CALIB_PLAN = CalibPlan(CALIB, DATA)
CALIB_EXPS = CALIB_PLAN.experiments
CALIB_EVALS = CALIB_PLAN.evals()
CALIB_HISTORIES = CALIB_PLAN.histories()
CALIB_EVENTSIMS = CALIB_PLAN.eventsims()


wildcard_constraints:
    calib_exp="|".join(CALIB_EXPS),


rule calib_train:
    input:
        unpack(lambda wc: CALIB_PLAN.weights(wc.calib_exp)),
        train=lambda wc: CALIB_PLAN.data_file(wc.calib_exp, "train"),
        test=lambda wc: CALIB_PLAN.data_file(wc.calib_exp, "test"),
    output:
        model="results/calib/{calib_exp}/ann.pt",
        history="results/calib/{calib_exp}/ann_history.json",
    params:
        exp=lambda wc: CALIB_EXPS[wc.calib_exp],
        device=config["device"],
        checkpoint_dir="checkpoints/calib/{calib_exp}",
        parallel=pcfg("calib")["resources"],
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
        train=lambda wc: CALIB_PLAN.data_file(wc.calib_exp, "train"),
        test=lambda wc: CALIB_PLAN.data_file(wc.calib_exp, "test"),
    output:
        evaluation="results/calib/{calib_exp}/s{seed}/eval.json",
        snn="results/calib/{calib_exp}/s{seed}/snn.pt",
    params:
        exp=lambda wc: CALIB_EXPS[wc.calib_exp],
        settings=lambda wc: CALIB_PLAN.by_experiment[wc.calib_exp],
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


# Beyond the paper: each calibrated SNN at focus_T through the event-driven simulator (clock ticks).
rule calib_eventsim:
    input:
        model="results/calib/{calib_exp}/ann.pt",
        snn="results/calib/{calib_exp}/s{seed}/snn.pt",
        evaluation="results/calib/{calib_exp}/s{seed}/eval.json",
        test=lambda wc: CALIB_PLAN.data_file(wc.calib_exp, "test"),
    output:
        "results/calib/{calib_exp}/s{seed}/eventsim.json",
    params:
        exp=lambda wc: CALIB_EXPS[wc.calib_exp],
        settings=lambda wc: CALIB_PLAN.by_experiment[wc.calib_exp],
    log:
        "logs/calib/eventsim_{calib_exp}_s{seed}.log",
    benchmark:
        "benchmarks/calib/eventsim_{calib_exp}_s{seed}.tsv"
    conda:
        f"{ENV_DIR}/snn.yaml"
    script:
        "../scripts/calib/eventsim.py"


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
        eventsims=CALIB_EVENTSIMS,
        histories=CALIB_HISTORIES,
        figures=rules.calib_figures.output,
        data=CALIB_PLAN.data_files(),
        verdict_history=verdict_history("calib"),
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
