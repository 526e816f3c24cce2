"""Figures, claims and report of the ``sdconv`` DAG, from the JSON files its runs wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from reprolab.core.io import read_json
from reprolab.report import (
    Claim,
    Figure,
    PaperMeta,
    Table,
    build_report,
    collect_provenance,
    figure,
    save_figure,
)
from reprolab.report.figures import PALETTE
from reprolab.report.stats import group_runs as _group_runs
from reprolab.report.stats import mean_std, noise_level
from reprolab.report.stats import verdict as _verdict
from reprolab.vision import run_name

META = PaperMeta(
    id="sdconv",
    title="SD-Conv: Towards the Parameter-Efficiency of Dynamic Convolution",
    citation="He, Jiang, Dong, Ding. WACV 2023, pp. 6454-6463",
    arxiv="2204.02227",
    code="none public (reconstruction from DY-Conv and DST reference implementations)",
    summary=(
        "SD-Conv prunes the K static kernels of dynamic convolution (DY-Conv, Chen et al. 2020) with binary masks "
        "derived from learnable thresholds (DST, Liu et al. 2020): y = (sum_k pi_k(x) (W_k . S(|W_k| - t_k))) * x. "
        "No official code exists and the paper's method section was not available, so the model here is a "
        "reconstruction from the abstract and the two published building blocks (project card, Sec. 2); every "
        "choice the paper does not state is a configuration key and is listed below. Four kinds of convolution "
        "are trained on the same backbone, data, schedule and seeds: static, masked static (DST), dynamic "
        "(DY-Conv) and SD-Conv, the masked ones at several sparsity weights alpha."
    ),
)

ARM_LABELS = {"static": "static conv", "masked": "masked static (DST)", "dynamic": "DY-Conv", "sdconv": "SD-Conv"}
ARM_COLOURS = {"static": PALETTE[7], "masked": PALETTE[2], "dynamic": PALETTE[0], "sdconv": PALETTE[1]}
ARM_ORDER = ("static", "masked", "dynamic", "sdconv")

PAPER_C1 = ("abstract: the mask 'significantly reduc[es] the parameters and computational cost'; introduction: "
            "DY-ResNet-18 has about 4x the parameters of ResNet-18")
PAPER_C1_LABEL = "verified: arXiv:2204.02227 abstract and introduction; SD-Conv's own table not available (card)"
PAPER_C2 = ("abstract: 'achieving higher performance in Imagenet-1K'; DY-ResNet-18 is +2.3 % over ResNet-18 "
            "(introduction); the SD-Conv ImageNet table is not available")
PAPER_C2_LABEL = "verified: arXiv:2204.02227 abstract and introduction (numbers of SD-Conv itself: not available)"


def group_runs(paths: list[str]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``{experiment: {run: [record per seed]}}`` from eval.json or history.json paths."""
    return _group_runs(paths, "run")


def summarise(evals: dict, histories: dict) -> dict[str, dict[str, dict[str, Any]]]:
    """Per experiment and run: accuracy, parameters, sparsity, multiply-adds, sparse-inference check."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for exp, runs in evals.items():
        out[exp] = {}
        for run, recs in runs.items():
            acc_m, acc_s = mean_std([r["accuracy"] for r in recs])
            kd = [r["params"]["kernel_dense"] for r in recs]
            kn = [r["params"]["kernel_nonzero"] for r in recs]
            hist = histories.get(exp, {}).get(run, [])
            sparse = [r["sparse_inference"] for r in recs]
            out[exp][run] = {
                "arm": recs[0]["arm"], "alpha": recs[0]["alpha"], "n_seeds": len(recs), "n_test": recs[0]["n_test"],
                "accuracy": acc_m, "accuracy_std": acc_s,
                "dense": float(np.mean([r["params"]["dense"] for r in recs])),
                "nonzero": float(np.mean([r["params"]["nonzero"] for r in recs])),
                "kernel_dense": float(np.mean(kd)), "kernel_nonzero": float(np.mean(kn)),
                "kernel_sparsity": 1.0 - float(np.sum(kn)) / float(np.sum(kd)) if np.sum(kd) else 0.0,
                "madds_dense": float(np.mean([r["madds"]["dense"] for r in recs])),
                "madds_sparse": float(np.mean([r["madds"]["sparse"] for r in recs])),
                "resets": int(sum(sum(layer["resets"] for layer in r["layers"]) for r in recs)),
                "stored": float(np.mean([s["stored_parameters"] for s in sparse])),
                "index_entries": float(np.mean([s["index_entries"] for s in sparse])),
                "sparse_bytes": float(np.mean([s["sparse_tensor_bytes"] for s in sparse])),
                "dense_bytes": float(np.mean([s["dense_tensor_bytes"] for s in sparse])),
                "max_logit_diff": max(s["max_abs_logit_diff"] for s in sparse),
                "agreement": min(s["prediction_agreement"] for s in sparse),
                "acc_equal": all(abs(s["dense_accuracy"] - s["sparse_accuracy"]) < 1e-12 for s in sparse),
                "n_compared": sparse[0].get("n_compared", recs[0]["n_test"]),
                "train_seconds": float(np.mean([h["seconds"] for h in hist])) if hist else float("nan"),
                "device": hist[0].get("device", "?") if hist else "?",
                "epochs": len(hist[0]["epochs"]) if hist else 0,
            }
    return out


def _pct(mean: float, std: float, n: int) -> str:
    return f"{100 * mean:.2f} %" + (f" ± {100 * std:.2f}" if n > 1 else "")


def _label(run: dict[str, Any]) -> str:
    label = ARM_LABELS[run["arm"]]
    return label if run["alpha"] is None else f"{label}, alpha={run['alpha']:g}"


def claims_from(summary: dict, settings: dict, scale: str, evidence: list[str]) -> list[Claim]:
    """Claims C1-C3 of the card and the issue's bar, judged on the pre-chosen alpha."""
    alpha = settings["chosen_alpha"]
    bar = settings["bar"]
    claims: list[Claim] = []
    for exp, runs in sorted(summary.items()):
        sd, dy, st = runs.get(run_name("sdconv", alpha)), runs.get("dynamic"), runs.get("static")
        if sd is None or dy is None:
            continue
        n = sd["n_seeds"]
        ratio = sd["nonzero"] / dy["nonzero"]
        k_ratio = sd["kernel_nonzero"] / dy["kernel_nonzero"]
        claims.append(Claim(
            id="C1", statement=f"SD-Conv has far fewer non-zero kernel parameters than DY-Conv with the same K ({exp}).",
            paper_value=PAPER_C1, paper_label=PAPER_C1_LABEL,
            measured=(f"alpha={alpha:g}: dynamic-kernel non-zeros {sd['kernel_nonzero']:,.0f} vs {dy['kernel_nonzero']:,.0f} "
                      f"({100 * k_ratio:.1f} %, kernel sparsity {100 * sd['kernel_sparsity']:.1f} %); whole network "
                      f"{sd['nonzero']:,.0f} vs {dy['nonzero']:,.0f} non-zero parameters ({100 * ratio:.1f} %); "
                      f"multiply-adds counted with non-zeros {sd['madds_sparse']:,.0f} vs {dy['madds_dense']:,.0f}"),
            verdict="supported" if ratio <= bar["max_nonzero_ratio"] else "not supported", scale=scale,
            evidence=evidence,
            note=(f"'Far fewer' is judged as at most {100 * bar['max_nonzero_ratio']:.0f} % of DY-Conv's non-zero "
                  "parameters (the issue's bar). Counted from the masked weights after training, thresholds excluded."),
        ))
        diff = sd["accuracy"] - dy["accuracy"]
        noise = noise_level((sd["accuracy"] + dy["accuracy"]) / 2, sd["n_test"], n,
                            max(sd["accuracy_std"], dy["accuracy_std"]))
        claims.append(Claim(
            id="C2a", statement=f"SD-Conv's accuracy is at least DY-Conv's ({exp}).",
            paper_value=PAPER_C2, paper_label=PAPER_C2_LABEL,
            measured=(f"SD-Conv (alpha={alpha:g}) {_pct(sd['accuracy'], sd['accuracy_std'], n)}, DY-Conv "
                      f"{_pct(dy['accuracy'], dy['accuracy_std'], n)}: {100 * diff:+.2f} points ({n} seed(s), "
                      f"{sd['n_test']} test samples)"),
            verdict=_verdict(diff, noise), scale=scale, evidence=evidence,
            note=(f"Differences within {100 * noise:.2f} points (two standard errors from test-set size and seed "
                  "spread) are inconclusive. Final epoch, no selection on the test set."),
        ))
        if st is not None:
            diff_s = sd["accuracy"] - st["accuracy"]
            noise_s = noise_level((sd["accuracy"] + st["accuracy"]) / 2, sd["n_test"], n,
                                  max(sd["accuracy_std"], st["accuracy_std"]))
            claims.append(Claim(
                id="C2b", statement=f"SD-Conv's accuracy is above the static-convolution baseline ({exp}).",
                paper_value=PAPER_C2, paper_label=PAPER_C2_LABEL,
                measured=(f"SD-Conv {_pct(sd['accuracy'], sd['accuracy_std'], n)}, static "
                          f"{_pct(st['accuracy'], st['accuracy_std'], n)}: {100 * diff_s:+.2f} points"),
                verdict=_verdict(diff_s, noise_s), scale=scale, evidence=evidence,
                note=f"Inconclusive below {100 * noise_s:.2f} points.",
            ))
        drop = dy["accuracy"] - sd["accuracy"]
        met = drop <= bar["max_accuracy_drop"] + 1e-12 and ratio <= bar["max_nonzero_ratio"]
        how = (f"SD-Conv is {100 * abs(drop):.2f} points {'below' if drop > 0 else 'above'} DY-Conv with "
               f"{100 * ratio:.1f} % of its non-zero parameters")
        if not met:
            misses = []
            if drop > bar["max_accuracy_drop"]:
                misses.append(f"accuracy misses by {100 * (drop - bar['max_accuracy_drop']):.2f} points")
            if ratio > bar["max_nonzero_ratio"]:
                misses.append(f"non-zero ratio misses by {100 * (ratio - bar['max_nonzero_ratio']):.1f} points")
            how += "; NOT met: " + ", ".join(misses)
        claims.append(Claim(
            id="bar", statement=(f"Issue 5 bar: SD-Conv within {100 * bar['max_accuracy_drop']:.0f} point(s) of DY-Conv "
                                 f"with at most {100 * bar['max_nonzero_ratio']:.0f} % of its non-zero parameters ({exp})."),
            paper_value="project acceptance bar, not a number of the paper", paper_label="project (issue 5)",
            measured=how, verdict="supported" if met else "not supported", scale=scale, evidence=evidence,
            note=f"Judged on the alpha fixed in the configuration before the runs (chosen_alpha={alpha:g}), mean over seeds.",
        ))
    claims.append(Claim(
        id="C3", statement="The advantage persists after transfer of pretrained models to downstream tasks.",
        paper_value="qualitative (abstract); the transfer table is not available", paper_label="verified: arXiv abstract",
        measured="not run", verdict="not tested", scale=scale,
        note="Needs ImageNet-pretrained models and the paper's downstream tasks, whose names are not known (card, Sec. 4).",
    ))
    return claims


def results_table(summary: dict) -> Table:
    """T1 of the card: per run, parameters, sparsity, multiply-adds and top-1."""
    rows = []
    for exp, runs in sorted(summary.items()):
        for run in _ordered(runs):
            s = runs[run]
            rows.append([exp, _label(s), s["n_seeds"], f"{s['dense']:,.0f}", f"{s['nonzero']:,.0f}",
                         f"{100 * s['kernel_sparsity']:.1f} %" if s["kernel_dense"] else "-",
                         f"{s['madds_dense']:,.0f}", f"{s['madds_sparse']:,.0f}",
                         _pct(s["accuracy"], s["accuracy_std"], s["n_seeds"]), s["resets"],
                         f"{s['train_seconds']:.0f} ({s['device']})"])
    return Table(
        title="T1: parameters, sparsity, multiply-adds and top-1 per arm",
        columns=["experiment", "arm", "seeds", "parameters", "non-zero parameters", "sparsity of replaceable kernels",
                 "multiply-adds (dense kernels)", "multiply-adds (non-zeros only)", "top-1, final epoch",
                 "safety resets", "train seconds"],
        rows=rows,
        note=("Parameters exclude the training-only thresholds. Multiply-adds per image from "
              "torch.utils.flop_counter.FlopCounterMode (convolutions and matrix products; element-wise operations "
              "not counted); the non-zeros-only column replaces each masked layer's aggregation by its kept weights "
              "and its convolution by the kept fraction of the applied kernel (for SD-Conv the union of the K masks). "
              "Dense kernels do not skip zeros, so measured time does not drop. Train seconds were measured on a "
              "shared machine and are pessimistic."),
    )


def _ordered(runs: dict) -> list[str]:
    return sorted(runs, key=lambda r: (ARM_ORDER.index(runs[r]["arm"]), runs[r]["alpha"] or 0.0))


def sparse_table(summary: dict) -> Table:
    """Inference from the exported sparse model vs the dense masked model."""
    rows = []
    for exp, runs in sorted(summary.items()):
        for run in _ordered(runs):
            s = runs[run]
            if s["arm"] not in ("masked", "sdconv"):
                continue
            rows.append([exp, _label(s), f"{s['dense']:,.0f}", f"{s['stored']:,.0f}", f"{s['index_entries']:,.0f}",
                         f"{s['sparse_bytes'] / 1024:.1f} / {s['dense_bytes'] / 1024:.1f}",
                         f"{s['max_logit_diff']:.2e}", f"{100 * s['agreement']:.2f} %",
                         "yes" if s["acc_equal"] else "no", s["n_compared"]])
    return Table(
        title="Inference from the stored sparse model",
        columns=["experiment", "arm", "dense parameters", "stored parameters (sparse form)", "index entries (int32)",
                 "tensor KiB sparse / dense", "max |logit difference|", "same prediction", "same accuracy",
                 "test samples compared"],
        rows=rows,
        note=("The masked kernels are exported as CSR matrices (kept values and int32 indices only), reloaded from "
              "disk and run with sparse-dense products: static masked convolutions as im2col times the sparse "
              "kernel, SD-Conv's aggregation as the sparse kernels times the attention weights (depthwise kernels "
              "are expanded to dense before the convolution). Worst case over seeds."),
    )


def flop_table(flop_check: dict) -> Table:
    """Library multiply-add counts against hand counts on tiny layers."""
    rows = [[c["layer"], "x".join(map(str, c["input"])), str(c["hand"]), str(c["library"]),
             "yes" if c["match"] else "NO"] for c in flop_check["cases"]]
    return Table(title="Multiply-add counter checked against hand counts",
                 columns=["layer", "input (C x H x W)", "hand count", flop_check["library"], "equal"], rows=rows,
                 note=("Dynamic layers: attention = C_in*hidden + hidden*K, aggregation = K*|W_k|, "
                       "conv = H_out*W_out*C_out*(C_in/groups)*k*k (per image)."))


def choices_table(settings: dict) -> Table:
    """The reconstruction's choices, with where each comes from."""
    dyn, mask = settings["dynamic"], settings.get("mask", {})
    tau = dyn["temperature"]
    alphas = ", ".join(f"{arm}: {', '.join(f'{a:g}' for a in values)}" for arm, values in settings["alphas"].items())
    rows = [
        ["dynamic convolution",
         (f"K={dyn['K']}, attention GAP -> FC(C_in, int(C_in*{dyn['ratio']})+1) -> ReLU -> FC(K) -> softmax(/tau), "
          "no FC bias; one grouped conv per batch"), "DY-Conv (card 2.1)"],
        ["temperature",
         f"{tau['start']:g} -> {tau['end']:g} linearly over {tau['anneal_epochs']} epochs, then {tau['end']:g}",
         "project choice (DY-Conv: 30 -> 1; reference code 34, -3 per epoch)"],
        ["batch norm / attention input",
         "BN + ReLU after every (dynamic) convolution; attention on the GAP of the layer's input",
         "card 2.1 (pitfall: both change results)"],
        ["mask",
         (f"M = S(|W| - t), long-tailed backward, thresholds per {mask.get('threshold_per', 'kernel')} and output "
          f"filter, init {mask.get('init', 0.0):g}"),
         "DST (card 2.2); per-kernel thresholds: project choice"],
        ["safety reset",
         f"layer keeping <= {100 * mask.get('reset_keep_ratio', 0.01):g} % -> t = 0 (training mode only, counted and logged)",
         "DST"],
        ["penalty", f"alpha * sum_layers sum_c exp(-t_c); alphas {alphas}",
         ("DST; alpha values: project choice (card grid 1e-6..1e-4 at paper scale; the demo grid and chosen alpha "
          "were set from a one-seed pilot run on the same split, see config/papers/sdconv.yaml)")],
        ["what is masked", "every replaceable convolution; stem, classifier and attention FCs dense",
         "project choice (card 2.3)"],
        ["weight decay", "coupled L2 on every parameter except thresholds", "project choice (card 2.3)"],
        ["initialisation", "from scratch" if settings["init_from"] == "scratch" else "SD-Conv from trained DY-Conv",
         "project choice (card 2.3: unknown)"],
        ["chosen alpha", f"{settings['chosen_alpha']:g}, fixed in the configuration before the runs",
         "claims and bar are judged on it"],
    ]
    return Table(title="Reconstruction: choices the paper does not state", columns=["item", "used here", "source"],
                 rows=rows)


def make_figures(history_paths: list[str], eval_paths: list[str], settings: dict, out: dict[str, str]) -> None:
    """F1 accuracy vs non-zero parameters, F2 per-layer sparsity, F3 sparsity and accuracy per epoch,
    F4 attention entropy."""
    histories, evals = group_runs(history_paths), group_runs(eval_paths)
    summary = summarise(evals, histories)
    exps = sorted(summary)
    _tradeoff(summary, exps, out["tradeoff"])
    _layers(evals, exps, settings["chosen_alpha"], out["layers"])
    _curves(histories, exps, out["curves"])
    _entropy(evals, exps, settings["chosen_alpha"], out["entropy"])


def _tradeoff(summary: dict, exps: list[str], path: str) -> None:
    fig, axes = figure(ncols=len(exps), width=5.0)
    for col, exp in enumerate(exps):
        ax, runs = axes[0, col], summary[exp]
        for arm in ARM_ORDER:
            pts = sorted((s for s in runs.values() if s["arm"] == arm), key=lambda s: s["nonzero"])
            if not pts:
                continue
            x = [s["nonzero"] for s in pts]
            y = [100 * s["accuracy"] for s in pts]
            e = [100 * s["accuracy_std"] for s in pts]
            ax.errorbar(x, y, yerr=e, marker="o" if arm in ("masked", "sdconv") else "s", ms=5, capsize=3,
                        color=ARM_COLOURS[arm], label=ARM_LABELS[arm], ls="-" if len(pts) > 1 else "none")
            for s in pts:
                if s["alpha"] is not None:
                    ax.annotate(f"{s['alpha']:g}", (s["nonzero"], 100 * s["accuracy"]), fontsize=7,
                                textcoords="offset points", xytext=(4, 4))
        ax.set_xscale("log")
        ax.set(xlabel="non-zero parameters (log)", ylabel="test accuracy (%)",
               title=f"{exp}: accuracy vs non-zero parameters")
        ax.legend()
    save_figure(fig, path)


def _layers(evals: dict, exps: list[str], alpha: float, path: str) -> None:
    fig, axes = figure(ncols=len(exps), width=5.0)
    for col, exp in enumerate(exps):
        ax = axes[0, col]
        shown = [(arm, evals[exp].get(run_name(arm, alpha), [])) for arm in ("masked", "sdconv")]
        shown = [(arm, recs) for arm, recs in shown if recs]
        if not shown:
            ax.text(0.5, 0.5, "no masked run at the chosen alpha", ha="center", transform=ax.transAxes)
            continue
        names = [layer["layer"] for layer in shown[0][1][0]["layers"]]
        width = 0.8 / len(shown)
        for i, (arm, recs) in enumerate(shown):
            sp = np.array([[layer["sparsity"] for layer in r["layers"]] for r in recs]) * 100
            ax.bar(np.arange(len(names)) + i * width, sp.mean(0), width, yerr=sp.std(0) if len(recs) > 1 else None,
                   color=ARM_COLOURS[arm], label=ARM_LABELS[arm], capsize=2)
        ax.set_xticks(np.arange(len(names)) + width * (len(shown) - 1) / 2)
        ax.set_xticklabels([n.replace("body.", "") for n in names], rotation=60, ha="right", fontsize=6)
        ax.set(ylabel="sparsity of the layer's kernels (%)", ylim=(0, 100), title=f"{exp}: per-layer sparsity, alpha={alpha:g}")
        ax.legend()
    save_figure(fig, path)


def _curves(histories: dict, exps: list[str], path: str) -> None:
    fig, axes = figure(ncols=2, nrows=len(exps))
    for row, exp in enumerate(exps):
        runs = histories[exp]
        for run in sorted(runs, key=lambda r: (ARM_ORDER.index(runs[r][0]["arm"]), runs[r][0]["alpha"] or 0.0)):
            recs = runs[run]
            arm, alpha = recs[0]["arm"], recs[0]["alpha"]
            epochs = [e["epoch"] for e in recs[0]["epochs"]]
            acc = np.array([[e["test_accuracy"] for e in r["epochs"]] for r in recs]) * 100
            shade = 0.35 + 0.65 * _alpha_rank(runs, arm, alpha)
            label = ARM_LABELS[arm] + (f", alpha={alpha:g}" if alpha is not None else "")
            axes[row, 1].plot(epochs, acc.mean(0), color=ARM_COLOURS[arm], alpha=shade, label=label)
            if arm in ("masked", "sdconv"):
                dens = np.array([[e.get("kernel_density") or np.nan for e in r["epochs"]] for r in recs])
                axes[row, 0].plot(epochs, 100 * (1 - np.nanmean(dens, 0)), color=ARM_COLOURS[arm], alpha=shade,
                                  label=label)
        axes[row, 0].set(xlabel="epoch", ylabel="sparsity of masked kernels (%)", title=f"{exp}: sparsity during training")
        axes[row, 1].set(xlabel="epoch", ylabel="test accuracy (%)", title=f"{exp}: test accuracy during training")
        axes[row, 0].legend(fontsize=7)
        axes[row, 1].legend(fontsize=7)
    save_figure(fig, path)


def _alpha_rank(runs: dict, arm: str, alpha: float | None) -> float:
    alphas = sorted({r[0]["alpha"] for r in runs.values() if r[0]["arm"] == arm and r[0]["alpha"] is not None})
    if alpha is None or len(alphas) < 2:
        return 1.0
    return alphas.index(alpha) / (len(alphas) - 1)


def _entropy(evals: dict, exps: list[str], alpha: float, path: str) -> None:
    fig, axes = figure(ncols=len(exps), width=5.0)
    for col, exp in enumerate(exps):
        ax = axes[0, col]
        shown = [(lbl, evals[exp].get(run)) for lbl, run in (("dynamic", "dynamic"), ("sdconv", run_name("sdconv", alpha)))]
        shown = [(arm, recs) for arm, recs in shown if recs and recs[0]["attention_entropy"]]
        if not shown:
            ax.text(0.5, 0.5, "no dynamic layers", ha="center", transform=ax.transAxes)
            continue
        names = list(shown[0][1][0]["attention_entropy"])
        width = 0.8 / len(shown)
        for i, (arm, recs) in enumerate(shown):
            ent = np.array([[r["attention_entropy"][n] for n in names] for r in recs])
            ax.bar(np.arange(len(names)) + i * width, ent.mean(0), width, color=ARM_COLOURS[arm],
                   label=ARM_LABELS[arm] + (f", alpha={alpha:g}" if arm == "sdconv" else ""))
        ax.set_xticks(np.arange(len(names)) + width * (len(shown) - 1) / 2)
        ax.set_xticklabels([n.replace("body.", "") for n in names], rotation=60, ha="right", fontsize=6)
        ax.set(ylabel="attention entropy / log K (1 = uniform)", ylim=(0, 1.3), title=f"{exp}: attention entropy")
        ax.legend(loc="upper right", ncols=2)
    save_figure(fig, path)


def write_report(history_paths: list[str], eval_paths: list[str], flop_check_path: str, figure_paths: list[str],
                 data_paths: list[str], settings: dict[str, Any], global_settings: dict[str, Any], out_html: str,
                 out_claims: str) -> None:
    """The ``sdconv_report`` rule."""
    scale = global_settings["scale"]
    evals, histories = group_runs(eval_paths), group_runs(history_paths)
    summary = summarise(evals, histories)
    flop_check = read_json(flop_check_path)
    claims = claims_from(summary, settings, scale, sorted(eval_paths))
    captions = {
        "accuracy_vs_nonzero.png": "F1: test accuracy (mean ± std over seeds) against non-zero parameters; one point per alpha for the masked arms (labels), static conv and DY-Conv as references.",
        "layer_sparsity.png": "F2: sparsity of each replaceable layer's kernels at the chosen alpha (mean over seeds).",
        "sparsity_accuracy_epochs.png": "F3: sparsity of the masked kernels (left) and test accuracy (right) at the end of each epoch, mean over seeds; darker = larger alpha.",
        "attention_entropy.png": "F4: mean entropy of the attention pi(x) over the test set per dynamic layer, divided by log K; DY-Conv vs SD-Conv at the chosen alpha.",
    }
    figures = [Figure(p, captions.get(Path(p).name, "")) for p in figure_paths]
    data_notes = [f"{name}: dataset {exp['dataset']}, model {exp['model']}, optimiser {exp['optim']}, augmentation "
                  f"{exp.get('augment', {})}, limit {exp.get('limit', 'none')}, seeds {settings['seeds']}."
                  for name, exp in settings["experiments"].items()]
    datasets = {exp["dataset"] for exp in settings["experiments"].values()}
    if "digits" in datasets:
        data_notes.append("scikit-learn digits: 1,797 real 8x8 handwritten digits (UCI), scaled to [0, 1], fixed "
                          "stratified split 1,437 train / 360 test. A proxy: it cannot confirm the ImageNet claim.")
    if "nmnist_demo" in datasets:
        data_notes.append("N-MNIST demo subset (CC BY-SA 4.0, Orchard et al. 2015): per-polarity event counts of each "
                          "recording as one 2x34x34 image. A proxy.")
    if "cifar100" in datasets:
        data_notes.append("CIFAR-100 (torchvision, md5-checked): the card's proxy for ImageNet.")
    not_reproduced = [
        ("The model is a reconstruction: SD-Conv's official code does not exist and its method section and tables "
         "were not available; the choices table lists what was decided here."),
        ("C3 (transfer of ImageNet-pretrained models to downstream tasks) is not run: the task names are not known "
         "in accessible form."),
        ("Wall-clock time: masked weights are multiplied as dense tensors during training; only the multiply-add "
         "count with non-zeros and the sparse-form inference show the saving."),
    ]
    if scale != "paper":
        not_reproduced.insert(1, "ImageNet-1K (ResNet-18, MobileNetV2) and the CIFAR-100 proxy are configured under "
                                 "scale: paper (config/papers/sdconv.yaml); ImageNet needs an image-net.org account and "
                                 "GPUs, so this scale uses a small real offline dataset and a small CNN instead.")
    data_files = {Path(p).parent.name + "/" + Path(p).name: p for p in data_paths}
    provenance = collect_provenance({**global_settings, "papers": {"sdconv": settings}}, data_files,
                                    benchmark_dir="benchmarks/sdconv", extra_benchmark_dirs=["benchmarks/data"])
    tables = [results_table(summary), sparse_table(summary), flop_table(flop_check), choices_table(settings)]
    build_report(META, scale, claims, figures, tables, data_notes, not_reproduced, provenance, out_html, out_claims)
