# Temporal Efficient Training (Deng et al., ICLR 2022): SDT vs TET on the same data and seeds.
# results/tet/<experiment>/<arm>_s<seed>/{model.pt,history.json,eval.json} -> figures -> report.

from reprolab.snn.tet_plan import TetPlan

TET = pcfg("tet")
TET_EXPS = TET["experiments"]
TET_PLAN = TetPlan(TET, DATA)


wildcard_constraints:
    tet_exp="|".join(TET_EXPS),
    tet_arm="|".join(TET["arms"]),


rule tet_train:
    input:
        train=lambda wc: TET_PLAN.split_file(wc.tet_exp, "train"),
        test=lambda wc: TET_PLAN.split_file(wc.tet_exp, "test"),
    output:
        model="results/tet/{tet_exp}/{tet_arm}_s{seed}/model.pt",
        history="results/tet/{tet_exp}/{tet_arm}_s{seed}/history.json",
    params:
        exp=lambda wc: TET_EXPS[wc.tet_exp],
        keep_predictions=lambda wc: TET_PLAN.keeps_predictions(wc.tet_exp, wc.tet_arm),
        device=config["device"],
        checkpoint_dir="checkpoints/tet/{tet_exp}/{tet_arm}_s{seed}",
        parallel=pcfg("tet")["resources"],
    resources:
        **train_resources("tet"),
    log:
        "logs/tet/train_{tet_exp}_{tet_arm}_s{seed}.log",
    benchmark:
        "benchmarks/tet/train_{tet_exp}_{tet_arm}_s{seed}.tsv"
    conda:
        f"{ENV_DIR}/snn.yaml"
    script:
        "../scripts/tet/train.py"


# Time inheritance training: a TET run at small_T, then one at T started from its weights.
rule tet_tit:
    input:
        train=lambda wc: TET_PLAN.split_file(wc.tet_exp, "train", TET_PLAN.tit_stage(wc.tet_exp, wc.stage)["T"]),
        test=lambda wc: TET_PLAN.split_file(wc.tet_exp, "test", TET_PLAN.tit_stage(wc.tet_exp, wc.stage)["T"]),
        init=lambda wc: TET_PLAN.tit_init(wc.tet_exp, wc.stage, wc.seed),
    output:
        model="results/tet/{tet_exp}/tit/{stage}_s{seed}/model.pt",
        history="results/tet/{tet_exp}/tit/{stage}_s{seed}/history.json",
    params:
        exp=lambda wc: TET_PLAN.tit_stage(wc.tet_exp, wc.stage),
        keep_predictions=lambda wc: wc.stage == "inherit",
        device=config["device"],
        checkpoint_dir="checkpoints/tet/{tet_exp}/tit/{stage}_s{seed}",
        parallel=pcfg("tet")["resources"],
    wildcard_constraints:
        stage="small|inherit",
    resources:
        **train_resources("tet"),
    log:
        "logs/tet/tit_{tet_exp}_{stage}_s{seed}.log",
    benchmark:
        "benchmarks/tet/tit_{tet_exp}_{stage}_s{seed}.tsv"
    conda:
        f"{ENV_DIR}/snn.yaml"
    script:
        "../scripts/tet/tit.py"


rule tet_evaluate:
    input:
        model="results/tet/{tet_exp}/{tet_arm}_s{seed}/model.pt",
        tests=lambda wc: TET_PLAN.eval_files(wc.tet_exp),
    output:
        "results/tet/{tet_exp}/{tet_arm}_s{seed}/eval.json",
    params:
        exp=lambda wc: TET_EXPS[wc.tet_exp],
        eval_T=lambda wc: TET_PLAN.eval_Ts(wc.tet_exp),
        device=config["device"],
    log:
        "logs/tet/evaluate_{tet_exp}_{tet_arm}_s{seed}.log",
    benchmark:
        "benchmarks/tet/evaluate_{tet_exp}_{tet_arm}_s{seed}.tsv"
    conda:
        f"{ENV_DIR}/snn.yaml"
    script:
        "../scripts/tet/evaluate.py"


rule tet_figures:
    input:
        histories=TET_PLAN.runs("history.json"),
        evals=TET_PLAN.runs("eval.json"),
        tit=TET_PLAN.tit_runs("history.json"),
    output:
        curves=report("results/tet/figures/training_curves.png", caption="../report/tet/curves.rst", category="tet"),
        scalability=report(
            "results/tet/figures/temporal_scalability.png", caption="../report/tet/scalability.rst", category="tet"
        ),
        per_step=report("results/tet/figures/per_step_accuracy.png", caption="../report/tet/per_step.rst", category="tet"),
        tit=report("results/tet/figures/time_inheritance.png", caption="../report/tet/tit.rst", category="tet"),
    log:
        "logs/tet/figures.log",
    conda:
        f"{ENV_DIR}/report.yaml"
    script:
        "../scripts/tet/figures.py"


rule tet_report:
    input:
        histories=TET_PLAN.runs("history.json"),
        tit=TET_PLAN.tit_runs("history.json"),
        evals=TET_PLAN.runs("eval.json"),
        figures=rules.tet_figures.output,
        history=verdict_history("tet"),
        data=TET_PLAN.data_files(),
    output:
        html="results/tet/report.html",
        claims="results/tet/claims.json",
    params:
        settings=TET,
        global_settings=global_settings(),
    log:
        "logs/tet/report.log",
    conda:
        f"{ENV_DIR}/report.yaml"
    script:
        "../scripts/tet/report.py"
