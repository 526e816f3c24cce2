# Mixed Time-step Training (Du, Wu, Deng, Gu, ICLR 2025): SDT vs MTT on the same data and seeds,
# each deployed to a bias-free IAF network and run time-stepped and fully event-driven.
# results/mtt/<exp>/<arm>_s<seed>/{base.pt, deployed.pt, eval.json, eventsim.json} -> figures -> report.

from reprolab.data.pipeline import EVENT_DATASETS as MTT_EVENT_DATASETS

MTT = pcfg("mtt")
MTT_EXPS = MTT["experiments"]
for _name, _exp in MTT_EXPS.items():
    if _exp.get("deploy", {}).get("base") == "sdt" and "sdt" not in MTT["arms"]:
        raise ValueError(f"papers.mtt experiment {_name}: deploy.base is sdt, so papers.mtt.arms must include sdt")


wildcard_constraints:
    mtt_exp="|".join(MTT_EXPS),
    mtt_arm="|".join(MTT["arms"]),


# Frame cache of one split at max_T frames (or T frames, e.g. the deployment fine-tune's deploy.T; event counts),
# and raw event files.
mtt_frames = lambda e, split, T=None: (
    f"{DATA}/frames/{MTT_EXPS[e]['dataset']}/{split}_T{T or MTT_EXPS[e]['max_T']}_{MTT_EXPS[e]['frames']['binning']}.npz"
)
mtt_deploy_frames = lambda e, split: mtt_frames(e, split, MTT_EXPS[e].get("deploy", {}).get("T"))
mtt_events = lambda dataset, split: f"{DATA}/events/{dataset}/{split}.npz"
# Base network a deployment fine-tune starts from: the arm's own, or SDT's (deploy.base: sdt, official readme).
mtt_deploy_base = lambda e, arm: "sdt" if MTT_EXPS[e].get("deploy", {}).get("base", "own") == "sdt" else arm
# One path per experiment, arm and seed.
mtt_runs = lambda filename: [
    f"results/mtt/{e}/{a}_s{s}/{filename}" for e in MTT_EXPS for a in MTT["arms"] for s in MTT["seeds"]
]
# {result path: (TET model, dataset)} for the tet DAG's runs on event data at sensor resolution (resized frames
# have no event-driven equivalent), when both papers are enabled.
MTT_TET = (
    {
        f"results/mtt/tet/{e}/{a}_s{s}.json": (f"results/tet/{e}/{a}_s{s}/model.pt", exp["dataset"])
        for e, exp in pcfg("tet")["experiments"].items()
        if exp["dataset"] in MTT_EVENT_DATASETS and "resize" not in exp.get("frames", {})
        for a in pcfg("tet")["arms"]
        for s in pcfg("tet")["seeds"]
    }
    if MTT["tet_models"]["enabled"] and config["papers"].get("tet", {}).get("enabled", False)
    else {}
)


rule mtt_train:
    input:
        train=lambda wc: mtt_frames(wc.mtt_exp, "train"),
        test=lambda wc: mtt_frames(wc.mtt_exp, "test"),
    output:
        model="results/mtt/{mtt_exp}/{mtt_arm}_s{seed}/base.pt",
        history="results/mtt/{mtt_exp}/{mtt_arm}_s{seed}/base_history.json",
    params:
        exp=lambda wc: MTT_EXPS[wc.mtt_exp],
        device=config["device"],
        checkpoint_dir="checkpoints/mtt/{mtt_exp}/{mtt_arm}_s{seed}/base",
        parallel=pcfg("mtt")["resources"],
    resources:
        **train_resources("mtt"),
    log:
        "logs/mtt/train_{mtt_exp}_{mtt_arm}_s{seed}.log",
    benchmark:
        "benchmarks/mtt/train_{mtt_exp}_{mtt_arm}_s{seed}.tsv"
    conda:
        f"{ENV_DIR}/snn.yaml"
    script:
        "../scripts/mtt/train.py"


rule mtt_deploy:
    input:
        model=lambda wc: f"results/mtt/{wc.mtt_exp}/{mtt_deploy_base(wc.mtt_exp, wc.mtt_arm)}_s{wc.seed}/base.pt",
        train=lambda wc: mtt_frames(wc.mtt_exp, "train"),
        test=lambda wc: mtt_frames(wc.mtt_exp, "test"),
        train_deploy=lambda wc: mtt_deploy_frames(wc.mtt_exp, "train"),
        test_deploy=lambda wc: mtt_deploy_frames(wc.mtt_exp, "test"),
    output:
        deployed="results/mtt/{mtt_exp}/{mtt_arm}_s{seed}/deployed.pt",
        history="results/mtt/{mtt_exp}/{mtt_arm}_s{seed}/finetune_history.json",
    params:
        exp=lambda wc: MTT_EXPS[wc.mtt_exp],
        device=config["device"],
        checkpoint_dir="checkpoints/mtt/{mtt_exp}/{mtt_arm}_s{seed}/finetune",
        parallel=pcfg("mtt")["resources"],
    resources:
        **train_resources("mtt"),
    log:
        "logs/mtt/deploy_{mtt_exp}_{mtt_arm}_s{seed}.log",
    benchmark:
        "benchmarks/mtt/deploy_{mtt_exp}_{mtt_arm}_s{seed}.tsv"
    conda:
        f"{ENV_DIR}/snn.yaml"
    script:
        "../scripts/mtt/deploy.py"


rule mtt_evaluate:
    input:
        model="results/mtt/{mtt_exp}/{mtt_arm}_s{seed}/base.pt",
        deployed="results/mtt/{mtt_exp}/{mtt_arm}_s{seed}/deployed.pt",
        train=lambda wc: mtt_frames(wc.mtt_exp, "train"),
        test=lambda wc: mtt_frames(wc.mtt_exp, "test"),
        test_deploy=lambda wc: mtt_deploy_frames(wc.mtt_exp, "test"),
    output:
        "results/mtt/{mtt_exp}/{mtt_arm}_s{seed}/eval.json",
    params:
        exp=lambda wc: MTT_EXPS[wc.mtt_exp],
        device=config["device"],
    log:
        "logs/mtt/evaluate_{mtt_exp}_{mtt_arm}_s{seed}.log",
    benchmark:
        "benchmarks/mtt/evaluate_{mtt_exp}_{mtt_arm}_s{seed}.tsv"
    conda:
        f"{ENV_DIR}/snn.yaml"
    script:
        "../scripts/mtt/evaluate.py"


rule mtt_eventsim:
    input:
        deployed="results/mtt/{mtt_exp}/{mtt_arm}_s{seed}/deployed.pt",
        events=lambda wc: mtt_events(MTT_EXPS[wc.mtt_exp]["dataset"], "test"),
    output:
        "results/mtt/{mtt_exp}/{mtt_arm}_s{seed}/eventsim.json",
    params:
        limit=lambda wc: MTT_EXPS[wc.mtt_exp]["evaluation"].get("eventsim_limit"),
        fine_T=lambda wc: MTT_EXPS[wc.mtt_exp]["evaluation"].get("fine_T", []),
        binning=lambda wc: MTT_EXPS[wc.mtt_exp]["frames"]["binning"],
    log:
        "logs/mtt/eventsim_{mtt_exp}_{mtt_arm}_s{seed}.log",
    benchmark:
        "benchmarks/mtt/eventsim_{mtt_exp}_{mtt_arm}_s{seed}.tsv"
    conda:
        f"{ENV_DIR}/snn.yaml"
    script:
        "../scripts/mtt/eventsim.py"


rule mtt_tet_eventsim:
    input:
        model=lambda wc: MTT_TET[f"results/mtt/tet/{wc.tet_run}.json"][0],
        train=lambda wc: mtt_events(MTT_TET[f"results/mtt/tet/{wc.tet_run}.json"][1], "train"),
        test=lambda wc: mtt_events(MTT_TET[f"results/mtt/tet/{wc.tet_run}.json"][1], "test"),
    output:
        "results/mtt/tet/{tet_run}.json",
    params:
        limit=MTT["tet_models"].get("limit"),
    wildcard_constraints:
        tet_run="|".join(p[len("results/mtt/tet/"):-len(".json")] for p in MTT_TET) or "(?!)",
    log:
        "logs/mtt/tet_eventsim_{tet_run}.log",
    benchmark:
        "benchmarks/mtt/tet_eventsim_{tet_run}.tsv"
    conda:
        f"{ENV_DIR}/snn.yaml"
    script:
        "../scripts/mtt/tet_eventsim.py"


rule mtt_figures:
    input:
        base_histories=mtt_runs("base_history.json"),
        finetune_histories=mtt_runs("finetune_history.json"),
        evals=mtt_runs("eval.json"),
        eventsims=mtt_runs("eventsim.json"),
        tet=sorted(MTT_TET),
    output:
        flexibility=report("results/mtt/figures/flexibility.png", caption="../report/mtt/flexibility.rst", category="mtt"),
        heterogeneous=report(
            "results/mtt/figures/heterogeneous.png", caption="../report/mtt/heterogeneous.rst", category="mtt"
        ),
        curves=report("results/mtt/figures/training_curves.png", caption="../report/mtt/curves.rst", category="mtt"),
        eventdriven=report(
            "results/mtt/figures/event_driven.png", caption="../report/mtt/event_driven.rst", category="mtt"
        ),
    log:
        "logs/mtt/figures.log",
    conda:
        f"{ENV_DIR}/report.yaml"
    script:
        "../scripts/mtt/figures.py"


rule mtt_report:
    input:
        base_histories=mtt_runs("base_history.json"),
        finetune_histories=mtt_runs("finetune_history.json"),
        evals=mtt_runs("eval.json"),
        eventsims=mtt_runs("eventsim.json"),
        tet=sorted(MTT_TET),
        figures=rules.mtt_figures.output,
        history=verdict_history("mtt"),
        data=lambda wc: sorted(
            {f(e, s) for f in (mtt_frames, mtt_deploy_frames) for e in MTT_EXPS for s in ("train", "test")}
            | {mtt_events(MTT_EXPS[e]["dataset"], "test") for e in MTT_EXPS}
        ),
    output:
        html="results/mtt/report.html",
        claims="results/mtt/claims.json",
    params:
        settings=MTT,
        global_settings=global_settings(),
    log:
        "logs/mtt/report.log",
    conda:
        f"{ENV_DIR}/report.yaml"
    script:
        "../scripts/mtt/report.py"
