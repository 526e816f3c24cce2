"""Figures, claims and report of the ``sdconv`` DAG, from the JSON files its runs wrote."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as _st

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
from reprolab.report.stats import (
    LEVEL,
    Comparison,
    Verdict,
    above_chance,
    across_settings,
    all_of,
    correctness,
    mean_std,
    non_inferiority,
    paired_comparison,
    require,
    superiority,
)
from reprolab.report.stats import group_runs as _group_runs
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


def _by_seed(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(recs, key=lambda r: r["seed"])


def _correct(recs: list[dict[str, Any]]) -> np.ndarray:
    """``[n_seeds, n_test]`` 0/1 correctness of one run, seeds in ascending order (one test set, checked)."""
    return correctness(_by_seed(recs))


def ratio_comparison(sd: list[dict[str, Any]], dy: list[dict[str, Any]], max_ratio: float) -> Comparison | None:
    """``max_ratio`` minus SD-Conv's non-zero parameters as a fraction of DY-Conv's, over seeds.

    A count of weights has no test-set noise; its uncertainty is the seed-to-seed spread of
    the per-seed ratio (Student t, ``n_seeds - 1`` degrees of freedom). ``None`` with fewer
    than two seeds (the spread is then unknown).
    """
    dy_nz = {r["seed"]: r["params"]["nonzero"] for r in dy}
    ratios = np.array([r["params"]["nonzero"] / dy_nz[r["seed"]] for r in _by_seed(sd) if r["seed"] in dy_nz])
    s = len(ratios)
    if s < 2:
        return None
    est = float(max_ratio - ratios.mean())
    se = float(ratios.std(ddof=1) / np.sqrt(s))
    half = float(_st.t.ppf(0.5 + LEVEL / 2, s - 1)) * se
    return Comparison(estimate=est, low=est - half, high=est + half, se=se, df=float(s - 1), n_units=s,
                      n_seeds=(s, s), seeds_known=True,
                      method="t over the seeds' non-zero ratios (a weight count: no test-set noise)")


def ratio_verdict(sd: list[dict[str, Any]], dy: list[dict[str, Any]], max_ratio: float) -> tuple[str, Verdict]:
    """SD-Conv keeps at most ``max_ratio`` of DY-Conv's non-zero parameters (superiority of the bar over the ratio)."""
    ratios = [r["params"]["nonzero"] / d["params"]["nonzero"] for r, d in zip(_by_seed(sd), _by_seed(dy), strict=False)]
    text = f"non-zero ratio {100 * np.mean(ratios):.1f} % (per seed {', '.join(f'{100 * x:.1f}' for x in ratios)})"
    cmp = ratio_comparison(sd, dy, max_ratio)
    if cmp is None:
        return text, Verdict("inconclusive", f"{text}: one seed, so the seed-to-seed spread of the non-zero count "
                                             "is unknown; at least two seeds are needed.")
    v = superiority(cmp, 0.0, unit=" points of DY-Conv's count")
    return text, Verdict(v.verdict, f"{100 * max_ratio:.0f} % minus the ratio: {v.reason}")


def _above_chance_both(a: np.ndarray, b: np.ndarray, chance: float, names: tuple[str, str]) -> dict[str, Verdict]:
    return {f"{names[0]} above chance": above_chance(a, chance, label=f"{names[0]} accuracy"),
            f"{names[1]} above chance": above_chance(b, chance, label=f"{names[1]} accuracy")}


def prunes(sd: list[dict[str, Any]], dy: list[dict[str, Any]]) -> Verdict:
    """Precondition of the accuracy claims: SD-Conv's masks remove weights (fewer non-zeros than DY-Conv in every seed).

    A weight count has no test-set noise; SD-Conv whose masks keep every weight is DY-Conv with a
    penalty term, and its accuracy says nothing about sparse dynamic convolution.
    """
    dy_nz = {r["seed"]: r["params"]["nonzero"] for r in dy}
    pairs = [(r["params"]["nonzero"], dy_nz[r["seed"]]) for r in _by_seed(sd) if r["seed"] in dy_nz]
    if not pairs:
        return Verdict("inconclusive", "no seed has both an SD-Conv and a DY-Conv run.")
    text = ", ".join(f"{a:,} vs {b:,}" for a, b in pairs)
    if all(a < b for a, b in pairs):
        return Verdict("supported", f"SD-Conv keeps fewer non-zero parameters than DY-Conv in every seed ({text}).")
    return Verdict("inconclusive", f"SD-Conv's masks prune nothing in some seed ({text}): its accuracy is that of "
                                   "DY-Conv with a penalty term, not of a sparse dynamic convolution.")


@dataclass(frozen=True)
class AlphaResult:
    """Every claim's measurement and verdict at one SD-Conv alpha."""

    alpha: float
    measured: dict[str, str]
    verdicts: dict[str, Verdict]


def claims_at_alpha(evals: dict[str, list[dict[str, Any]]], alpha: float, settings: dict[str, Any]) -> AlphaResult:
    """C1, C2a, C2a-ni, C2b and the bar for the SD-Conv run at ``alpha`` of one experiment."""
    c, bar = settings["claims"], settings["bar"]
    sd_recs, dy_recs = evals[run_name("sdconv", alpha)], evals.get("dynamic")
    st_recs = evals.get("static")
    sd = _correct(sd_recs)
    chance = 1.0 / float(sd_recs[0].get("num_classes", 10))
    measured: dict[str, str] = {}
    verdicts: dict[str, Verdict] = {}
    if dy_recs:
        dy = _correct(dy_recs)
        text, v = ratio_verdict(sd_recs, dy_recs, c["far_fewer_ratio"])
        measured["C1"], verdicts["C1"] = f"{text} of DY-Conv's", v
        cmp = paired_comparison(sd, dy)
        gates = {**_above_chance_both(sd, dy, chance, ("SD-Conv", "DY-Conv")), "masks prune": prunes(sd_recs, dy_recs)}
        measured["C2a"] = f"SD-Conv {100 * sd.mean():.2f} %, DY-Conv {100 * dy.mean():.2f} %: {cmp.describe(digits=2)}"
        verdicts["C2a"] = require(superiority(cmp, c["c2a_min_effect"]), **gates)
        measured["C2a-ni"] = measured["C2a"]
        verdicts["C2a-ni"] = require(non_inferiority(cmp, c["c2a_margin"]), **gates)
        bar_text, bar_ratio = ratio_verdict(sd_recs, dy_recs, bar["max_nonzero_ratio"])
        measured["bar"] = f"{measured['C2a']}; {bar_text}"
        verdicts["bar"] = all_of({"accuracy": require(non_inferiority(cmp, bar["max_accuracy_drop"]), **gates),
                                  "non-zero parameters": bar_ratio})
    if st_recs:
        st = _correct(st_recs)
        cmp = paired_comparison(sd, st)
        measured["C2b"] = f"SD-Conv {100 * sd.mean():.2f} %, static {100 * st.mean():.2f} %: {cmp.describe(digits=2)}"
        verdicts["C2b"] = require(superiority(cmp, c["c2b_min_effect"]),
                                  **_above_chance_both(sd, st, chance, ("SD-Conv", "static conv")))
    return AlphaResult(alpha, measured, verdicts)


def read_selections(paths: list[str]) -> dict[str, dict[str, Any]]:
    """``{experiment: alpha_selection.json}`` (written by ``sdconv_select`` before the test evaluation)."""
    return {Path(p).parts[-2]: read_json(p) for p in paths}


CLAIM_TEXT = {
    "C1": "SD-Conv has far fewer non-zero parameters than DY-Conv with the same K: at most {ratio:.0f} % ({exp}).",
    "C2a": ("SD-Conv is more accurate than DY-Conv (the abstract's 'higher performance'), by at least "
            "{c2a_min:.1f} point(s) ({exp})."),
    "C2a-ni": ("Non-inferiority reading of C2a: SD-Conv's accuracy is not more than {margin:.1f} point(s) below "
               "DY-Conv's ({exp})."),
    "C2b": "SD-Conv's accuracy is above the static-convolution baseline, by at least {c2b_min:.1f} point(s) ({exp}).",
    "bar": ("Issue 5 bar: SD-Conv within {drop:.0f} point(s) of DY-Conv's accuracy with at most {bar_ratio:.0f} % "
            "of its non-zero parameters ({exp})."),
}
PAPER = {"C1": (PAPER_C1, PAPER_C1_LABEL), "C2a": (PAPER_C2, PAPER_C2_LABEL),
         "C2a-ni": ("the paper claims higher accuracy (C2a); 'not worse' is a weaker reading, shown beside it",
                    PAPER_C2_LABEL),
         "C2b": (PAPER_C2, PAPER_C2_LABEL),
         "bar": ("project acceptance bar, not a number of the paper", "project (issue 5)")}


def _claim_note(cid: str, settings: dict) -> str:
    c, bar = settings["claims"], settings["bar"]
    return {
        "C1": (f"'Far fewer' = at most {100 * c['far_fewer_ratio']:.0f} % of DY-Conv's non-zero parameters "
               "(papers.sdconv.claims.far_fewer_ratio), whole network, counted from the masked weights after "
               "training (thresholds excluded); the interval is the seed-to-seed spread of the per-seed ratio."),
        "C2a": (f"Superiority with the smallest effect of interest papers.sdconv.claims.c2a_min_effect = "
                f"{100 * c['c2a_min_effect']:g} point(s), counted only when both arms are above chance (1 / classes) "
                "and SD-Conv's masks prune weights in every seed."),
        "C2a-ni": (f"Non-inferiority with the margin papers.sdconv.claims.c2a_margin = {100 * c['c2a_margin']:g} "
                   "point(s), with the preconditions of C2a. A weaker reading than the paper's claim, kept for "
                   "comparison with earlier reports (C2a was this reading until the follow-up review of issue 12)."),
        "C2b": (f"Superiority with the smallest effect of interest papers.sdconv.claims.c2b_min_effect = "
                f"{100 * c['c2b_min_effect']:g} point(s), counted only when both arms are above chance."),
        "bar": (f"Both parts must hold: accuracy non-inferior with the margin bar.max_accuracy_drop = "
                f"{100 * bar['max_accuracy_drop']:g} point(s) (gated on chance) and the non-zero ratio below "
                f"bar.max_nonzero_ratio = {100 * bar['max_nonzero_ratio']:g} % (t over seeds)."),
    }[cid]


def claims_from(evals: dict[str, dict[str, list[dict[str, Any]]]], summary: dict, selections: dict[str, dict],
                settings: dict, scale: str, evidence: list[str]) -> list[Claim]:
    """Claims C1, C2a (superiority), C2a-ni (non-inferiority), C2b and the bar per experiment, at the chosen alpha.

    Every alpha of ``alphas.sdconv`` is judged too and shown beside the chosen one; a claim
    whose verdict flips between alphas is ``setting-dependent`` (:func:`across_settings`).
    Accuracies are paired on test samples and seeds (:func:`paired_comparison`).
    """
    c, bar = settings["claims"], settings["bar"]
    claims: list[Claim] = []
    for exp in sorted(evals):
        runs = evals[exp]
        alphas = [float(a) for a in settings["alphas"].get("sdconv", []) if run_name("sdconv", a) in runs]
        if not alphas or exp not in selections:
            continue
        chosen = float(selections[exp]["chosen"])
        if chosen not in alphas:
            raise ValueError(f"{exp}: the chosen alpha {chosen:g} has no SD-Conv run ({alphas})")
        results = {a: claims_at_alpha(runs, a, settings) for a in alphas}
        sel = selections[exp]
        how = (f"alpha={chosen:g} chosen on the validation split ({sel['rule']}; "
               f"{sel.get('n_validation', '?')} validation samples carved from the training set)"
               if settings["chosen_alpha"] == "validation" else f"alpha={chosen:g} fixed in the configuration")
        sd = summary[exp][run_name("sdconv", chosen)]
        n_seeds, n_test = sd["n_seeds"], sd["n_test"]
        for cid, template in CLAIM_TEXT.items():
            if cid not in results[chosen].verdicts:
                continue
            by = {f"alpha={a:g}": results[a].verdicts[cid] for a in alphas}
            verdict = across_settings(by, chosen=f"alpha={chosen:g}")
            rows = [{"setting": f"alpha={a:g}" + (" (chosen)" if a == chosen else ""),
                     "measured": results[a].measured[cid], "verdict": results[a].verdicts[cid].verdict}
                    for a in alphas]
            measured = f"{results[chosen].measured[cid]} ({how}; {n_seeds} seed(s), {n_test} test samples)"
            if cid == "C1":
                dy = summary[exp]["dynamic"]
                measured += (f"; dynamic-kernel non-zeros {sd['kernel_nonzero']:,.0f} vs {dy['kernel_nonzero']:,.0f}, "
                             f"multiply-adds with non-zeros {sd['madds_sparse']:,.0f} vs {dy['madds_dense']:,.0f}")
            paper_value, paper_label = PAPER[cid]
            claims.append(Claim(
                id=cid, statement=template.format(exp=exp, ratio=100 * c["far_fewer_ratio"],
                                                  margin=100 * c["c2a_margin"], drop=100 * bar["max_accuracy_drop"],
                                                  bar_ratio=100 * bar["max_nonzero_ratio"],
                                                  c2a_min=100 * c["c2a_min_effect"],
                                                  c2b_min=100 * c["c2b_min_effect"]),
                paper_value=paper_value, paper_label=paper_label, measured=measured, verdict=verdict.verdict,
                scale=scale, evidence=evidence, by_setting=rows,
                note=(f"{verdict.reason} {_claim_note(cid, settings)} Paired on test samples and seeds "
                      "(reprolab.report.stats). Final epoch; the test split was never used for training, "
                      "selection or early stopping."),
            ))
    claims.append(Claim(
        id="C3", statement="The advantage persists after transfer of pretrained models to downstream tasks.",
        paper_value="qualitative (abstract); the transfer table is not available", paper_label="verified: arXiv abstract",
        measured="not run", verdict="not tested", scale=scale,
        note="Needs ImageNet-pretrained models and the paper's downstream tasks, whose names are not known (card, Sec. 4).",
    ))
    return claims


def selection_table(selections: dict[str, dict], splits: dict[str, dict]) -> Table:
    """How alpha was chosen on the validation split, per experiment (from ``alpha_selection.json``)."""
    rows = []
    for exp, sel in sorted(selections.items()):
        split = splits.get(exp, {})
        for alpha, row in sel["alphas"].items():
            rows.append([exp, alpha, "yes" if float(alpha) == float(sel["chosen"]) else "",
                         f"{100 * row['validation_accuracy']:.2f} %", f"{row['nonzero']:,.0f}", row["seeds"],
                         (f"{100 * sel['dynamic_validation_accuracy']:.2f} %"
                          if sel.get("dynamic_validation_accuracy") is not None else "-"),
                         (f"{len(split.get('fit', []))} / {len(split.get('validation', []))} "
                          f"(seed {split.get('seed', '?')}, fraction {split.get('fraction', '?')}, stratified)"),
                         sel["rule"]])
    return Table(
        title="SD-Conv's alpha, chosen on the validation split before the test evaluation",
        columns=["experiment", "alpha", "chosen", "validation accuracy (mean over seeds)", "non-zero parameters",
                 "seeds", "DY-Conv validation accuracy", "fit / validation samples", "rule"],
        rows=rows,
        note=("Rule sdconv_split carves a seeded, stratified validation split from the training file "
              "(results/sdconv/<experiment>/validation_split.json); every run trains on the rest and is validated on "
              "it each epoch; rule sdconv_select applies papers.sdconv.alpha_selection, and only then does "
              "sdconv_evaluate touch the test split."),
    )


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
         ("DST; alpha values: project choice (card grid 1e-6..1e-4 at paper scale; the demo grid: see "
          "config/papers/sdconv.yaml and the README)")],
        ["what is masked", "every replaceable convolution; stem, classifier and attention FCs dense",
         "project choice (card 2.3)"],
        ["weight decay", "coupled L2 on every parameter except thresholds", "project choice (card 2.3)"],
        ["initialisation", "from scratch" if settings["init_from"] == "scratch" else "SD-Conv from trained DY-Conv",
         "project choice (card 2.3: unknown)"],
        ["chosen alpha",
         (f"chosen on a validation split ({100 * settings['validation']['fraction']:g} % of the training set, "
          f"stratified, seed {settings['validation']['seed']}): fewest non-zeros within "
          f"{100 * settings['alpha_selection']['max_val_drop']:g} point(s) of DY-Conv's validation accuracy"
          if settings["chosen_alpha"] == "validation" else
          f"{settings['chosen_alpha']:g}, fixed in the configuration before the runs"),
         "claims and bar are judged at it, every other alpha shown beside"],
    ]
    return Table(title="Reconstruction: choices the paper does not state", columns=["item", "used here", "source"],
                 rows=rows)


def make_figures(history_paths: list[str], eval_paths: list[str], settings: dict, out: dict[str, str],
                 selection_paths: list[str] | None = None) -> None:
    """F1 accuracy vs non-zero parameters, F2 per-layer sparsity, F3 sparsity and validation accuracy
    per epoch, F4 attention entropy (F2 and F4 at each experiment's chosen alpha)."""
    histories, evals = group_runs(history_paths), group_runs(eval_paths)
    summary = summarise(evals, histories)
    exps = sorted(summary)
    chosen = {e: float(sel["chosen"]) for e, sel in read_selections(selection_paths or []).items()}
    _tradeoff(summary, exps, out["tradeoff"])
    _layers(evals, exps, chosen, out["layers"])
    _curves(histories, exps, out["curves"])
    _entropy(evals, exps, chosen, out["entropy"])


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


def _layers(evals: dict, exps: list[str], chosen: dict[str, float], path: str) -> None:
    fig, axes = figure(ncols=len(exps), width=5.0)
    for col, exp in enumerate(exps):
        ax = axes[0, col]
        alpha = chosen.get(exp)
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
        axes[row, 1].set(xlabel="epoch", ylabel="validation accuracy (%)",
                         title=f"{exp}: validation accuracy during training")
        axes[row, 0].legend(fontsize=7)
        axes[row, 1].legend(fontsize=7)
    save_figure(fig, path)


def _alpha_rank(runs: dict, arm: str, alpha: float | None) -> float:
    alphas = sorted({r[0]["alpha"] for r in runs.values() if r[0]["arm"] == arm and r[0]["alpha"] is not None})
    if alpha is None or len(alphas) < 2:
        return 1.0
    return alphas.index(alpha) / (len(alphas) - 1)


def _entropy(evals: dict, exps: list[str], chosen: dict[str, float], path: str) -> None:
    fig, axes = figure(ncols=len(exps), width=5.0)
    for col, exp in enumerate(exps):
        ax = axes[0, col]
        alpha = chosen.get(exp)
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
                 out_claims: str, selection_paths: list[str] | None = None, split_paths: list[str] | None = None,
                 verdict_history: str | None = None) -> None:
    """The ``sdconv_report`` rule (``selection_paths`` / ``split_paths``: the validation split and the alpha
    chosen on it per experiment; ``verdict_history``: ``workflow/report/sdconv/verdict_history.yaml``)."""
    scale = global_settings["scale"]
    evals, histories = group_runs(eval_paths), group_runs(history_paths)
    summary = summarise(evals, histories)
    flop_check = read_json(flop_check_path)
    selections = read_selections(selection_paths or [])
    splits = {Path(p).parts[-2]: read_json(p) for p in split_paths or []}
    claims = claims_from(evals, summary, selections, settings, scale, sorted(eval_paths))
    captions = {
        "accuracy_vs_nonzero.png": "F1: test accuracy (mean ± std over seeds) against non-zero parameters; one point per alpha for the masked arms (labels), static conv and DY-Conv as references.",
        "layer_sparsity.png": "F2: sparsity of each replaceable layer's kernels at the chosen alpha (mean over seeds).",
        "sparsity_accuracy_epochs.png": "F3: sparsity of the masked kernels (left) and accuracy on the validation split (right) at the end of each epoch, mean over seeds; darker = larger alpha.",
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
    for exp, split in sorted(splits.items()):
        data_notes.append(f"{exp}: validation split of {len(split['validation'])} of the {split['n_train']} training "
                          f"samples (fraction {split['fraction']:g}, stratified by class, seed {split['seed']}); every "
                          f"run trains on the other {len(split['fit'])} and is validated on it; alpha is chosen there.")
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
    if selections:
        tables.insert(1, selection_table(selections, splits))
    build_report(META, scale, claims, figures, tables, data_notes, not_reproduced, provenance, out_html, out_claims,
                 history=verdict_history)
