# Multi-modal attention network for stock movements (He & Gu, KDF@AAAI 2022, arXiv:2112.13593).
# StockNet archive (demo) or Xueqiu posts + fetched prices (paper) -> corpus -> samples (labels,
# chronological splits, windows, credibility features) -> cached post representations ->
# MMAN variants and baselines per seed -> metrics + backtest -> figures -> report.


MMAN = pcfg("mman")
MMAN_MODELS = MMAN["variants"] + MMAN["baselines"]
MMAN_DATA = "results/mman/data"


wildcard_constraints:
    mman_variant="|".join(MMAN["variants"]) or "none",
    mman_baseline="|".join(MMAN["baselines"]) or "none",


# The posts archive: committed (stocknet_demo) or downloaded by data_download (xueqiu).
MMAN_ARCHIVE = registry_file(MMAN["dataset"])
MMAN_CORPUS_INPUTS = {"archive": MMAN_ARCHIVE}
if MMAN["dataset"] == "xueqiu":
    MMAN_CORPUS_INPUTS["prices"] = f"{DATA}/mman/xueqiu_prices.csv"
# One path per model (variant or baseline) and seed.
MMAN_RUNS = "results/mman/runs/{model}_s{seed}/{filename}"
MMAN_PREDICTIONS = expand(MMAN_RUNS, model=MMAN_MODELS, seed=MMAN["seeds"], filename="predictions.npz")
MMAN_HISTORIES = expand(MMAN_RUNS, model=MMAN_MODELS, seed=MMAN["seeds"], filename="history.json")


rule mman_prices:
    input:
        archive=MMAN_ARCHIVE,
    output:
        f"{DATA}/mman/xueqiu_prices.csv",
    params:
        unpack_dir=f"{DATA}/unpacked/{MMAN['dataset']}",
        splits=MMAN["splits"],
        price_days=MMAN["window"]["price_days"],
    log:
        "logs/mman/prices.log",
    localrule: True
    retries: 2
    conda:
        f"{ENV_DIR}/nlp.yaml"
    script:
        "../scripts/mman/prices.py"


rule mman_corpus:
    input:
        **MMAN_CORPUS_INPUTS,
    output:
        f"{MMAN_DATA}/corpus.npz",
    params:
        settings=MMAN,
        unpack_dir=f"{DATA}/unpacked/{MMAN['dataset']}",
    log:
        "logs/mman/corpus.log",
    benchmark:
        "benchmarks/mman/corpus.tsv"
    conda:
        f"{ENV_DIR}/nlp.yaml"
    script:
        "../scripts/mman/corpus.py"


rule mman_samples:
    input:
        f"{MMAN_DATA}/corpus.npz",
    output:
        samples=f"{MMAN_DATA}/samples.npz",
        summary=f"{MMAN_DATA}/samples.json",
    params:
        settings=MMAN,
    log:
        "logs/mman/samples.log",
    benchmark:
        "benchmarks/mman/samples.tsv"
    conda:
        f"{ENV_DIR}/nlp.yaml"
    script:
        "../scripts/mman/samples.py"


rule mman_text:
    input:
        corpus=f"{MMAN_DATA}/corpus.npz",
        samples=f"{MMAN_DATA}/samples.npz",
    output:
        cache=f"{MMAN_DATA}/text_{MMAN['text']['encoder']}.npz",
        summary=f"{MMAN_DATA}/text_{MMAN['text']['encoder']}.json",
    params:
        text=MMAN["text"],
        device=config["device"],
    threads: 2
    log:
        "logs/mman/text.log",
    benchmark:
        "benchmarks/mman/text.tsv"
    conda:
        f"{ENV_DIR}/nlp.yaml"
    script:
        "../scripts/mman/text.py"


rule mman_train:
    input:
        corpus=f"{MMAN_DATA}/corpus.npz",
        samples=f"{MMAN_DATA}/samples.npz",
        text=rules.mman_text.output.cache,
    output:
        model="results/mman/runs/{mman_variant}_s{seed}/model.pt",
        history="results/mman/runs/{mman_variant}_s{seed}/history.json",
        predictions="results/mman/runs/{mman_variant}_s{seed}/predictions.npz",
    params:
        settings=MMAN,
        device=config["device"],
        checkpoint_dir="checkpoints/mman/{mman_variant}_s{seed}",
    resources:
        **train_resources("mman"),
    log:
        "logs/mman/train_{mman_variant}_s{seed}.log",
    benchmark:
        "benchmarks/mman/train_{mman_variant}_s{seed}.tsv"
    conda:
        f"{ENV_DIR}/nlp.yaml"
    script:
        "../scripts/mman/train.py"


rule mman_baseline:
    input:
        corpus=f"{MMAN_DATA}/corpus.npz",
        samples=f"{MMAN_DATA}/samples.npz",
        text=rules.mman_text.output.cache,
    output:
        history="results/mman/runs/{mman_baseline}_s{seed}/history.json",
        predictions="results/mman/runs/{mman_baseline}_s{seed}/predictions.npz",
    params:
        settings=MMAN,
    resources:
        **train_resources("mman"),
    log:
        "logs/mman/baseline_{mman_baseline}_s{seed}.log",
    benchmark:
        "benchmarks/mman/baseline_{mman_baseline}_s{seed}.tsv"
    conda:
        f"{ENV_DIR}/nlp.yaml"
    script:
        "../scripts/mman/baseline.py"


rule mman_evaluate:
    input:
        samples=f"{MMAN_DATA}/samples.npz",
        predictions=MMAN_PREDICTIONS,
    output:
        metrics="results/mman/metrics.json",
        backtest="results/mman/backtest.json",
    params:
        settings=MMAN,
    log:
        "logs/mman/evaluate.log",
    benchmark:
        "benchmarks/mman/evaluate.tsv"
    conda:
        f"{ENV_DIR}/nlp.yaml"
    script:
        "../scripts/mman/evaluate.py"


rule mman_figures:
    input:
        metrics="results/mman/metrics.json",
        backtest="results/mman/backtest.json",
        samples=f"{MMAN_DATA}/samples.npz",
        predictions=MMAN_PREDICTIONS,
    output:
        results=report("results/mman/figures/results.png", caption="../report/mman/results.rst", category="mman"),
        equity=report("results/mman/figures/equity.png", caption="../report/mman/equity.rst", category="mman"),
        credibility=report(
            "results/mman/figures/credibility.png", caption="../report/mman/credibility.rst", category="mman"
        ),
        confusion=report("results/mman/figures/confusion.png", caption="../report/mman/confusion.rst", category="mman"),
    log:
        "logs/mman/figures.log",
    conda:
        f"{ENV_DIR}/report.yaml"
    script:
        "../scripts/mman/figures.py"


rule mman_report:
    input:
        metrics="results/mman/metrics.json",
        backtest="results/mman/backtest.json",
        summary=f"{MMAN_DATA}/samples.json",
        text_summary=rules.mman_text.output.summary,
        histories=MMAN_HISTORIES,
        predictions=MMAN_PREDICTIONS,
        samples=f"{MMAN_DATA}/samples.npz",
        figures=rules.mman_figures.output,
        archive=MMAN_ARCHIVE,
        verdict_history=verdict_history("mman"),
    output:
        html="results/mman/report.html",
        claims="results/mman/claims.json",
    params:
        settings=MMAN,
        global_settings=global_settings(),
    log:
        "logs/mman/report.log",
    conda:
        f"{ENV_DIR}/report.yaml"
    script:
        "../scripts/mman/report.py"
