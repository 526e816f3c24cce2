# Control energy of dynamic vs static functional connectivity (Deng, Li, Yeo, Gu, Commun. Biol. 2022).
# time series -> static vs dynamic energy per window size, the same against phase-randomised
# surrogates (and unthresholded / equal-density / stricter-pinv variants), order-shuffle control, features ->
# behaviour prediction, Gramian benchmark -> figures -> report. Settings: config/papers/energy.yaml.
# Demo: the committed HCP subjects (dataset hcp_rest_demo). Paper: HCP S1200 from S3 with the
# user's ConnectomeDB keys, parcellated with nilearn, behaviours from the user's HCP CSV (without
# it, building the DAG stops with the steps to obtain it).

from reprolab.data import hcp as _hcp

ENERGY = pcfg("energy")
EN_DEMO = REGISTRY["hcp_rest_demo"]
EN_WINDOWS = [int(w) for w in ENERGY["window_sizes"]]
EN_MAIN = int(ENERGY["main_window"])
EN_ATLAS = _hcp.atlas_tag(ENERGY)
if EN_MAIN not in EN_WINDOWS:
    raise WorkflowError(
        f"config key papers.energy.main_window: {EN_MAIN} is not one of window_sizes {EN_WINDOWS}; add it there"
    )


wildcard_constraints:
    en_window="|".join(str(w) for w in EN_WINDOWS),
    en_subject=r"\d{6}",


rule energy_hcp_download:
    output:
        f"{DATA}/hcp/{{en_subject}}/rfMRI_REST1_LR.nii.gz",
    params:
        filename=lambda wc: ENERGY["hcp"]["filename"],
        profile=lambda wc: ENERGY["hcp"].get("aws_profile"),
    log:
        "logs/energy/hcp_download_{en_subject}.log",
    localrule: True
    retries: 2
    conda:
        f"{ENV_DIR}/netsci.yaml"
    script:
        "../scripts/energy/hcp_download.py"


rule energy_parcellate:
    input:
        f"{DATA}/hcp/{{en_subject}}/rfMRI_REST1_LR.nii.gz",
    output:
        f"{DATA}/hcp/{{en_subject}}/REST1_LR_{EN_ATLAS}.npy",
    params:
        atlas=lambda wc: ENERGY["atlas"],
    log:
        "logs/energy/parcellate_{en_subject}.log",
    benchmark:
        "benchmarks/energy/parcellate_{en_subject}.tsv"
    conda:
        f"{ENV_DIR}/netsci.yaml"
    script:
        "../scripts/energy/parcellate.py"


rule energy_timeseries:
    input:
        unpack(lambda wc: _hcp.workflow_inputs(ENERGY, EN_DEMO, DATA)),
    output:
        "results/energy/data/timeseries.npz",
    params:
        settings=ENERGY,
        demo=lambda wc: _hcp.demo_selection(EN_DEMO, DATA, ENERGY.get("subjects")) if ENERGY["data"] == "demo" else None,
        subjects=lambda wc: _hcp.workflow_subjects(ENERGY, EN_DEMO, DATA),
    log:
        "logs/energy/timeseries.log",
    conda:
        f"{ENV_DIR}/netsci.yaml"
    script:
        "../scripts/energy/timeseries.py"


rule energy_compare:
    input:
        "results/energy/data/timeseries.npz",
    output:
        npz="results/energy/compare/w{en_window}.npz",
        json="results/energy/compare/w{en_window}.json",
    params:
        settings=ENERGY,
        checkpoint_dir="checkpoints/energy/compare_w{en_window}",
    resources:
        **train_resources("energy"),
    log:
        "logs/energy/compare_w{en_window}.log",
    benchmark:
        "benchmarks/energy/compare_w{en_window}.tsv"
    conda:
        f"{ENV_DIR}/netsci.yaml"
    script:
        "../scripts/energy/compare.py"


rule energy_surrogates:
    input:
        timeseries="results/energy/data/timeseries.npz",
        compare="results/energy/compare/w{en_window}.npz",
    output:
        npz="results/energy/surrogates/w{en_window}.npz",
        json="results/energy/surrogates/w{en_window}.json",
    params:
        settings=ENERGY,
        checkpoint_dir="checkpoints/energy/surrogates_w{en_window}",
    resources:
        **train_resources("energy"),
    log:
        "logs/energy/surrogates_w{en_window}.log",
    benchmark:
        "benchmarks/energy/surrogates_w{en_window}.tsv"
    conda:
        f"{ENV_DIR}/netsci.yaml"
    script:
        "../scripts/energy/surrogates.py"


rule energy_shuffle:
    input:
        "results/energy/data/timeseries.npz",
    output:
        npz="results/energy/shuffle/w{en_window}.npz",
        json="results/energy/shuffle/w{en_window}.json",
    params:
        settings=ENERGY,
    resources:
        **train_resources("energy"),
    log:
        "logs/energy/shuffle_w{en_window}.log",
    benchmark:
        "benchmarks/energy/shuffle_w{en_window}.tsv"
    conda:
        f"{ENV_DIR}/netsci.yaml"
    script:
        "../scripts/energy/shuffle.py"


rule energy_features:
    input:
        "results/energy/data/timeseries.npz",
    output:
        "results/energy/features.npz",
    params:
        settings=ENERGY,
    resources:
        **train_resources("energy"),
    log:
        "logs/energy/features.log",
    benchmark:
        "benchmarks/energy/features.tsv"
    conda:
        f"{ENV_DIR}/netsci.yaml"
    script:
        "../scripts/energy/features.py"


rule energy_predict:
    input:
        features="results/energy/features.npz",
        behaviour=lambda wc: [ENERGY["behaviour"]["csv"]] if ENERGY["data"] == "hcp" else [],
    output:
        "results/energy/prediction.json",
    params:
        settings=ENERGY,
    resources:
        **train_resources("energy"),
    log:
        "logs/energy/predict.log",
    benchmark:
        "benchmarks/energy/predict.tsv"
    conda:
        f"{ENV_DIR}/netsci.yaml"
    script:
        "../scripts/energy/predict.py"


rule energy_bench:
    input:
        "results/energy/data/timeseries.npz",
    output:
        "results/energy/bench_gramian.json",
    params:
        settings=ENERGY,
    log:
        "logs/energy/bench.log",
    benchmark:
        "benchmarks/energy/bench.tsv"
    conda:
        f"{ENV_DIR}/netsci.yaml"
    script:
        "../scripts/energy/bench.py"


rule energy_figures:
    input:
        compare=expand("results/energy/compare/w{w}.npz", w=EN_WINDOWS),
        surrogates=expand("results/energy/surrogates/w{w}.json", w=EN_WINDOWS),
        shuffle=f"results/energy/shuffle/w{EN_MAIN}.npz",
        prediction="results/energy/prediction.json",
    output:
        scatter=report(
            "results/energy/figures/static_vs_dynamic.png", caption="../report/energy/scatter.rst", category="energy"
        ),
        shuffle=report("results/energy/figures/shuffle.png", caption="../report/energy/shuffle.rst", category="energy"),
        horizon=report("results/energy/figures/horizon.png", caption="../report/energy/horizon.rst", category="energy"),
        window=report(
            "results/energy/figures/window_size.png", caption="../report/energy/window.rst", category="energy"
        ),
        prediction=report(
            "results/energy/figures/prediction.png", caption="../report/energy/prediction.rst", category="energy"
        ),
        surrogates=report(
            "results/energy/figures/surrogates.png", caption="../report/energy/surrogates.rst", category="energy"
        ),
    params:
        main_window=EN_MAIN,
    log:
        "logs/energy/figures.log",
    conda:
        f"{ENV_DIR}/report.yaml"
    script:
        "../scripts/energy/figures.py"


rule energy_report:
    input:
        compare=expand("results/energy/compare/w{w}.json", w=EN_WINDOWS),
        surrogates=expand("results/energy/surrogates/w{w}.json", w=EN_WINDOWS),
        shuffle=expand("results/energy/shuffle/w{w}.json", w=EN_WINDOWS),
        prediction="results/energy/prediction.json",
        bench="results/energy/bench_gramian.json",
        figures=rules.energy_figures.output,
        data="results/energy/data/timeseries.npz",
        history=verdict_history("energy"),
    output:
        html="results/energy/report.html",
        claims="results/energy/claims.json",
    params:
        settings=ENERGY,
        global_settings=global_settings(),
        data_files=lambda wc: (
            list(_hcp.demo_selection(EN_DEMO, DATA, ENERGY.get("subjects"))[0].values())
            if ENERGY["data"] == "demo"
            else []
        ),
    log:
        "logs/energy/report.log",
    conda:
        f"{ENV_DIR}/report.yaml"
    script:
        "../scripts/energy/report.py"
