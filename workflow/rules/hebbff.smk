# Modular structure while HebbFF networks learn continual familiarity detection
# (Gu, Mattar, Tang, Pan, arXiv:2311.05862; HebbFF: Tyulmankov, Yang, Abbott, Neuron 2022).
# Per learning mode and seed: train with weight snapshots -> generalisation vs test delay ->
# multilayer modularity, flexibility, entropy and a shuffled-weights null; then statistics
# over runs -> figures -> report. No external data: the task is generated from seeds.
# Settings: config/papers/hebbff.yaml.

HEBBFF = pcfg("hebbff")
HB_RUN = "results/hebbff/runs/{hb_mode}_s{seed}"
HB_RUNS = expand(HB_RUN, hb_mode=HEBBFF["modes"], seed=HEBBFF["seeds"])  # one folder per mode and seed


wildcard_constraints:
    hb_mode="|".join(HEBBFF["modes"]),


rule hebbff_train:
    output:
        model=f"{HB_RUN}/model.npz",
        snapshots=f"{HB_RUN}/snapshots.npz",
        history=f"{HB_RUN}/history.json",
    params:
        settings=HEBBFF,
        checkpoint_dir="checkpoints/hebbff/{hb_mode}_s{seed}",
    resources:
        **train_resources("hebbff"),
    log:
        "logs/hebbff/train_{hb_mode}_s{seed}.log",
    benchmark:
        "benchmarks/hebbff/train_{hb_mode}_s{seed}.tsv"
    conda:
        f"{ENV_DIR}/netsci.yaml"
    script:
        "../scripts/hebbff/train.py"


rule hebbff_evaluate:
    input:
        model=f"{HB_RUN}/model.npz",
        history=f"{HB_RUN}/history.json",
    output:
        f"{HB_RUN}/eval.json",
    params:
        settings=HEBBFF,
    log:
        "logs/hebbff/evaluate_{hb_mode}_s{seed}.log",
    benchmark:
        "benchmarks/hebbff/evaluate_{hb_mode}_s{seed}.tsv"
    conda:
        f"{ENV_DIR}/netsci.yaml"
    script:
        "../scripts/hebbff/evaluate.py"


rule hebbff_analysis:
    input:
        snapshots=f"{HB_RUN}/snapshots.npz",
        history=f"{HB_RUN}/history.json",
    output:
        arrays=f"{HB_RUN}/analysis.npz",
        summary=f"{HB_RUN}/analysis.json",
    params:
        settings=HEBBFF,
    resources:
        **train_resources("hebbff"),
    log:
        "logs/hebbff/analysis_{hb_mode}_s{seed}.log",
    benchmark:
        "benchmarks/hebbff/analysis_{hb_mode}_s{seed}.tsv"
    conda:
        f"{ENV_DIR}/netsci.yaml"
    script:
        "../scripts/hebbff/analysis.py"


rule hebbff_statistics:
    input:
        arrays=[f"{run}/analysis.npz" for run in HB_RUNS],
        summaries=[f"{run}/analysis.json" for run in HB_RUNS],
        evals=[f"{run}/eval.json" for run in HB_RUNS],
    output:
        "results/hebbff/statistics.json",
    params:
        settings=HEBBFF,
    log:
        "logs/hebbff/statistics.log",
    benchmark:
        "benchmarks/hebbff/statistics.tsv"
    conda:
        f"{ENV_DIR}/netsci.yaml"
    script:
        "../scripts/hebbff/statistics.py"


rule hebbff_figures:
    input:
        stats="results/hebbff/statistics.json",
        histories=[f"{run}/history.json" for run in HB_RUNS],
        evals=[f"{run}/eval.json" for run in HB_RUNS],
        arrays=[f"{run}/analysis.npz" for run in HB_RUNS],
    output:
        curves=report("results/hebbff/figures/accuracy.png", caption="../report/hebbff/accuracy.rst", category="hebbff"),
        trajectories=report(
            "results/hebbff/figures/trajectories.png", caption="../report/hebbff/trajectories.rst", category="hebbff"
        ),
        scatter=report("results/hebbff/figures/q_vs_accuracy.png", caption="../report/hebbff/scatter.rst", category="hebbff"),
        allegiance=report(
            "results/hebbff/figures/allegiance.png", caption="../report/hebbff/allegiance.rst", category="hebbff"
        ),
        generalization=report(
            "results/hebbff/figures/generalization.png", caption="../report/hebbff/generalization.rst", category="hebbff"
        ),
    params:
        settings=HEBBFF,
    log:
        "logs/hebbff/figures.log",
    conda:
        f"{ENV_DIR}/netsci.yaml"
    script:
        "../scripts/hebbff/figures.py"


rule hebbff_report:
    input:
        stats="results/hebbff/statistics.json",
        histories=[f"{run}/history.json" for run in HB_RUNS],
        evals=[f"{run}/eval.json" for run in HB_RUNS],
        summaries=[f"{run}/analysis.json" for run in HB_RUNS],
        figures=rules.hebbff_figures.output,
        history=verdict_history("hebbff"),
    output:
        html="results/hebbff/report.html",
        claims="results/hebbff/claims.json",
    params:
        settings=HEBBFF,
        global_settings=global_settings(),
    log:
        "logs/hebbff/report.log",
    conda:
        f"{ENV_DIR}/netsci.yaml"
    script:
        "../scripts/hebbff/report.py"
