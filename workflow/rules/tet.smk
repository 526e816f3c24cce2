# Temporal Efficient Training (Deng et al., ICLR 2022): SDT vs TET on the same data and seeds.
# results/tet/<experiment>/<arm>_s<seed>/{model.pt,history.json,eval.json} -> figures -> report.

from reprolab.data.pipeline import STATIC_DATASETS

TET = pcfg("tet")
TET_EXPS = TET["experiments"]


wildcard_constraints:
    tet_exp="|".join(TET_EXPS),
    tet_arm="|".join(TET["arms"]),


def tet_split_file(exp_name, split, T=None):
    """Cache file of one split at T frames (event data) or the image cache (static data)."""
    exp = TET_EXPS[exp_name]
    if exp["dataset"] in STATIC_DATASETS:
        return f"{DATA}/static/{exp['dataset']}/{split}.npz"
    binning = exp.get("frames", {}).get("binning", "count")
    return f"{DATA}/frames/{exp['dataset']}/{split}_T{T or exp['T']}_{binning}.npz"


def tet_eval_Ts(exp_name):
    exp = TET_EXPS[exp_name]
    return sorted(set(exp["eval_T"]) | {exp["T"]})


def tet_tit_exps():
    """Experiments with time inheritance training enabled."""
    return [e for e, exp in TET_EXPS.items() if exp.get("tit", {}).get("enabled", False)]


def tet_tit_stage(exp_name, stage):
    """Experiment config of a TIT stage: ``small`` (at small_T) or ``inherit`` (at T, fewer epochs)."""
    exp, tit = TET_EXPS[exp_name], TET_EXPS[exp_name]["tit"]
    if stage == "small":
        return dict(exp, T=tit["small_T"], optim=dict(exp["optim"], epochs=tit["small_epochs"]))
    return dict(exp, optim=dict(exp["optim"], epochs=tit["epochs"]))


def tet_tit_runs(filename):
    seed = TET["seeds"][0]
    return [f"results/tet/{e}/tit/{stage}_s{seed}/{filename}" for e in tet_tit_exps() for stage in ("small", "inherit")]


def tet_runs(filename):
    """One path per experiment, arm and seed."""
    return [
        f"results/tet/{e}/{a}_s{s}/{filename}" for e in TET_EXPS for a in TET["arms"] for s in TET["seeds"]
    ]


rule tet_train:
    input:
        train=lambda wc: tet_split_file(wc.tet_exp, "train"),
        test=lambda wc: tet_split_file(wc.tet_exp, "test"),
    output:
        model="results/tet/{tet_exp}/{tet_arm}_s{seed}/model.pt",
        history="results/tet/{tet_exp}/{tet_arm}_s{seed}/history.json",
    params:
        exp=lambda wc: TET_EXPS[wc.tet_exp],
        loss=TET["loss"],
        device=config["device"],
        checkpoint_dir="checkpoints/tet/{tet_exp}/{tet_arm}_s{seed}",
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


rule tet_tit:
    """Time inheritance training: a TET run at small_T, then one at T started from its weights."""
    input:
        train=lambda wc: tet_split_file(wc.tet_exp, "train", tet_tit_stage(wc.tet_exp, wc.stage)["T"]),
        test=lambda wc: tet_split_file(wc.tet_exp, "test", tet_tit_stage(wc.tet_exp, wc.stage)["T"]),
        init=lambda wc: [f"results/tet/{wc.tet_exp}/tit/small_s{wc.seed}/model.pt"] if wc.stage == "inherit" else [],
    output:
        model="results/tet/{tet_exp}/tit/{stage}_s{seed}/model.pt",
        history="results/tet/{tet_exp}/tit/{stage}_s{seed}/history.json",
    params:
        exp=lambda wc: tet_tit_stage(wc.tet_exp, wc.stage),
        loss=TET["loss"],
        device=config["device"],
        checkpoint_dir="checkpoints/tet/{tet_exp}/tit/{stage}_s{seed}",
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
        tests=lambda wc: [tet_split_file(wc.tet_exp, "test", T) for T in tet_eval_Ts(wc.tet_exp)],
    output:
        "results/tet/{tet_exp}/{tet_arm}_s{seed}/eval.json",
    params:
        exp=lambda wc: TET_EXPS[wc.tet_exp],
        eval_T=lambda wc: tet_eval_Ts(wc.tet_exp),
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
        histories=tet_runs("history.json"),
        evals=tet_runs("eval.json"),
        tit=tet_tit_runs("history.json"),
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
        histories=tet_runs("history.json"),
        tit=tet_tit_runs("history.json"),
        evals=tet_runs("eval.json"),
        figures=rules.tet_figures.output,
        data=lambda wc: sorted({tet_split_file(e, s) for e in TET_EXPS for s in ("train", "test")}),
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
