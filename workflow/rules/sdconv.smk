# SD-Conv (He et al., WACV 2023): static, masked, dynamic and sparse dynamic convolution on the
# same backbone, data and seeds; masked arms once per sparsity weight alpha.
# results/sdconv/<experiment>/validation_split.json (carved from the training file)
#   -> <run>_s<seed>/{model.pt,history.json} (trained on the rest, validated on the split)
#   -> alpha_selection.json (SD-Conv's alpha chosen on validation) -> <run>_s<seed>/{eval.json,sparse_model.pt}
#   (test evaluation, after the choice) + results/sdconv/flops.json -> figures -> report.
# Settings: config/papers/sdconv.yaml.

from reprolab.vision import SdconvPlan

SDC = pcfg("sdconv")
SDC_PLAN = SdconvPlan(SDC, DATA)
SDC_EXPS = SDC["experiments"]


wildcard_constraints:
    sdc_exp="|".join(SDC_EXPS),
    sdc_run=SDC_PLAN.run_pattern(),


rule sdconv_split:
    input:
        train=lambda wc: SDC_PLAN.split_file(wc.sdc_exp, "train"),
    output:
        SDC_PLAN.split_path("{sdc_exp}"),
    params:
        exp=lambda wc: SDC_EXPS[wc.sdc_exp],
        settings=SDC,
    log:
        "logs/sdconv/split_{sdc_exp}.log",
    conda:
        f"{ENV_DIR}/snn.yaml"
    script:
        "../scripts/sdconv/split.py"


rule sdconv_train:
    input:
        unpack(lambda wc: SDC_PLAN.init_model(wc.sdc_exp, wc.sdc_run, wc.seed)),
        train=lambda wc: SDC_PLAN.split_file(wc.sdc_exp, "train"),
        split=SDC_PLAN.split_path("{sdc_exp}"),
    output:
        model="results/sdconv/{sdc_exp}/{sdc_run}_s{seed}/model.pt",
        history="results/sdconv/{sdc_exp}/{sdc_run}_s{seed}/history.json",
    params:
        exp=lambda wc: SDC_EXPS[wc.sdc_exp],
        settings=SDC,
        device=config["device"],
        checkpoint_dir="checkpoints/sdconv/{sdc_exp}/{sdc_run}_s{seed}",
        parallel=pcfg("sdconv")["resources"],
    resources:
        **train_resources("sdconv"),
    log:
        "logs/sdconv/train_{sdc_exp}_{sdc_run}_s{seed}.log",
    benchmark:
        "benchmarks/sdconv/train_{sdc_exp}_{sdc_run}_s{seed}.tsv"
    conda:
        f"{ENV_DIR}/snn.yaml"
    script:
        "../scripts/sdconv/train.py"


# SD-Conv's alpha is chosen on the validation split before any test evaluation (config alpha_selection).
rule sdconv_select:
    input:
        histories=lambda wc: SDC_PLAN.selection_histories(wc.sdc_exp),
    output:
        SDC_PLAN.selection_path("{sdc_exp}"),
    params:
        settings=SDC,
    log:
        "logs/sdconv/select_{sdc_exp}.log",
    conda:
        f"{ENV_DIR}/report.yaml"
    script:
        "../scripts/sdconv/select.py"


rule sdconv_evaluate:
    input:
        unpack(lambda wc: SDC_PLAN.selection_input(wc.sdc_exp)),
        model="results/sdconv/{sdc_exp}/{sdc_run}_s{seed}/model.pt",
        test=lambda wc: SDC_PLAN.split_file(wc.sdc_exp, "test"),
        flops="results/sdconv/flops.json",
    output:
        evaluation="results/sdconv/{sdc_exp}/{sdc_run}_s{seed}/eval.json",
        sparse="results/sdconv/{sdc_exp}/{sdc_run}_s{seed}/sparse_model.pt",
    params:
        exp=lambda wc: SDC_EXPS[wc.sdc_exp],
        settings=SDC,
        device=config["device"],
    log:
        "logs/sdconv/evaluate_{sdc_exp}_{sdc_run}_s{seed}.log",
    benchmark:
        "benchmarks/sdconv/evaluate_{sdc_exp}_{sdc_run}_s{seed}.tsv"
    conda:
        f"{ENV_DIR}/snn.yaml"
    script:
        "../scripts/sdconv/evaluate.py"


rule sdconv_flops:
    output:
        "results/sdconv/flops.json",
    params:
        settings=SDC,
    log:
        "logs/sdconv/flops.log",
    benchmark:
        "benchmarks/sdconv/flops.tsv"
    conda:
        f"{ENV_DIR}/snn.yaml"
    script:
        "../scripts/sdconv/flops.py"


rule sdconv_figures:
    input:
        histories=SDC_PLAN.paths("history.json"),
        evals=SDC_PLAN.paths("eval.json"),
        selections=SDC_PLAN.selections(),
    output:
        tradeoff=report(
            "results/sdconv/figures/accuracy_vs_nonzero.png", caption="../report/sdconv/tradeoff.rst", category="sdconv"
        ),
        layers=report(
            "results/sdconv/figures/layer_sparsity.png", caption="../report/sdconv/layers.rst", category="sdconv"
        ),
        curves=report(
            "results/sdconv/figures/sparsity_accuracy_epochs.png", caption="../report/sdconv/curves.rst", category="sdconv"
        ),
        entropy=report(
            "results/sdconv/figures/attention_entropy.png", caption="../report/sdconv/entropy.rst", category="sdconv"
        ),
    params:
        settings=SDC,
    log:
        "logs/sdconv/figures.log",
    conda:
        f"{ENV_DIR}/report.yaml"
    script:
        "../scripts/sdconv/figures.py"


rule sdconv_report:
    input:
        histories=SDC_PLAN.paths("history.json"),
        evals=SDC_PLAN.paths("eval.json"),
        flops="results/sdconv/flops.json",
        figures=rules.sdconv_figures.output,
        data=SDC_PLAN.data_files(),
        selections=SDC_PLAN.selections(),
        splits=[SDC_PLAN.split_path(e) for e in SDC_EXPS],
        verdict_history=verdict_history("sdconv"),
    output:
        html="results/sdconv/report.html",
        claims="results/sdconv/claims.json",
    params:
        settings=SDC,
        global_settings=global_settings(),
    log:
        "logs/sdconv/report.log",
    conda:
        f"{ENV_DIR}/report.yaml"
    script:
        "../scripts/sdconv/report.py"
