"""Figures, tables, claims and report of the ``girnet`` DAG, from the JSON / NPZ files its runs wrote.

Every verdict goes through :mod:`reprolab.report.stats`: per-subject scores of two arms are
paired on the test subjects and on the seeds (:func:`~reprolab.report.stats.paired_comparison`).
This module imports neither torch nor MONAI (it runs in the report environment).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
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
from reprolab.report.stats import Verdict, across_settings, paired_comparison, require, superiority

META = PaperMeta(
    id="girnet",
    title="Co-Learning Semantic-aware Unsupervised Segmentation for Pathological Image Registration (GIRNet)",
    citation="Liu, Gu. MICCAI 2023, LNCS pp. 537-547",
    arxiv="2310.11040",
    code="ly1998117/GIRNet (read only; commit b93a968, no licence)",
    summary=(
        "A diffeomorphic SYM-Net registers a pathological T1 image x to an atlas y. A segmentation network "
        "finds the lesion without labels (the region that cannot be inpainted from its context, minimal mutual "
        "information), an inpainter fills it from the surrounding tissue and the atlas warped into x's space, and "
        "the registration is trained on the inpainted, pseudo-normal image. The three modules are trained in a "
        "cycle, one module per batch (generation 2, inpainting 2, registration 1 batches)."
    ),
)

#: Display names of the configured arms (others are shown by their key).
ARM_NAMES = {
    "girnet": "GIRNet",
    "symnet": "SYM-Net alone",
    "symnet_cfm": "SYM-Net + cost-function masking (true lesion)",
    "no_inpainting_guidance": "GIRNet without inpainting guidance",
    "no_segmentation_loss": "GIRNet without L_gen",
}
ABSTRACT = "verified: arXiv:2310.11040 abstract"
NO_NUMBERS = "the paper's tables are not in the card (TODO from the PDF); the abstract has no numbers"


def arm_name(arm: str) -> str:
    """Display name of an arm."""
    return ARM_NAMES.get(arm, arm)


# --------------------------------------------------------------------------- loading


def load_runs(paths: Sequence[str]) -> dict[str, dict[int, dict[str, Any]]]:
    """``{arm: {seed: record}}`` from eval.json or history.json files."""
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for p in paths:
        rec = read_json(p)
        out.setdefault(rec["arm"], {})[int(rec["seed"])] = rec
    return out


def unit_table(evals: Mapping[str, Mapping[int, Mapping[str, Any]]], arm: str, metric: str,
               seeds: Sequence[int] | None = None) -> np.ndarray:
    """``[n_seeds, n_subjects]`` per-subject values of ``metric`` for ``arm``, rows in seed order.

    Raises
    ------
    KeyError
        If a seed lacks the metric or the runs were evaluated on different subjects.
    """
    runs = evals[arm]
    seeds = sorted(runs) if seeds is None else list(seeds)
    subjects = runs[seeds[0]]["subjects"]
    rows = []
    for s in seeds:
        if runs[s]["subjects"] != subjects:
            raise KeyError(f"arm {arm}: seed {s} was evaluated on other subjects than seed {seeds[0]}")
        rows.append(runs[s]["per_subject"][metric])
    return np.asarray(rows, dtype=float)


def _paired(evals: Mapping[str, Mapping[int, Mapping[str, Any]]], a: str, b: str, metric: str,
            metric_b: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    seeds = sorted(set(evals[a]) & set(evals[b]))
    if not seeds:
        raise KeyError(f"arms {a} and {b} share no seed")
    ta, tb = unit_table(evals, a, metric, seeds), unit_table(evals, b, metric_b or metric, seeds)
    if evals[a][seeds[0]]["subjects"] != evals[b][seeds[0]]["subjects"]:
        raise KeyError(f"arms {a} and {b} were evaluated on different subjects")
    return ta, tb


# --------------------------------------------------------------------------- claims


def compare_arms(evals: Mapping[str, Mapping[int, Mapping[str, Any]]], a: str, b: str, metric: str,
                 min_effect: float = 0.0, metric_b: str | None = None) -> tuple[Verdict, str]:
    """Superiority of ``a`` over ``b`` on ``metric`` (per subject, paired on subjects and seeds)."""
    ta, tb = _paired(evals, a, b, metric, metric_b)
    cmp = paired_comparison(ta, tb, binary=False)
    verdict = superiority(cmp, min_effect=min_effect, scale=100.0, unit=" Dice points")
    measured = (f"{arm_name(a)} {100 * ta.mean():.1f}, {arm_name(b) if metric_b is None else metric_b.replace('_', ' ')} "
                f"{100 * tb.mean():.1f} (x100; {ta.shape[1]} test subjects x {ta.shape[0]} seed(s))")
    return verdict, measured


#: Display names of the registration metrics the claims are read at (config key claims.registration_metrics).
REGISTRATION_METRICS = {
    "dice_mean": "structure Dice over the volume",
    "dice_near_lesion_mean": "structure Dice near the lesion",
}


def registration_beats_identity(evals: Mapping[str, Mapping[int, Mapping[str, Any]]], arm: str, metric: str,
                                min_effect: float) -> Verdict:
    """Does ``arm``'s registration improve ``metric`` over no registration at all (the identity map)?

    A comparison between two registrations says something only when the registration does: if
    the moving images are already aligned (or the network learned nothing), every arm scores the
    identity's Dice and any difference between arms is noise. Used as a precondition
    (:func:`~reprolab.report.stats.require`) of every registration claim.
    """
    v, _ = compare_arms(evals, arm, arm, metric, min_effect=min_effect, metric_b=f"{metric}_identity")
    return Verdict(v.verdict, f"{arm_name(arm)} vs no registration: {v.reason}")


def registration_verdict(evals: Mapping[str, Mapping[int, Mapping[str, Any]]], a: str, b: str,
                         claims: Mapping[str, Any]) -> tuple[Verdict, str]:
    """Superiority of arm ``a`` over arm ``b`` at every configured registration metric.

    Judged at the pre-registered ``claims.registration_metric``; the other metrics are read beside
    it (:func:`~reprolab.report.stats.across_settings`). At each metric the verdict counts only
    if the baseline registration (SYM-Net alone) beats the identity map there.
    """
    by_metric, measured = {}, []
    for metric in claims["registration_metrics"]:
        v, text = compare_arms(evals, a, b, metric, min_effect=claims["registration_min_effect"])
        works = registration_beats_identity(evals, "symnet" if "symnet" in evals else b, metric,
                                            claims["registration_min_effect"])
        by_metric[REGISTRATION_METRICS[metric]] = require(v, registration_beats_identity=works)
        measured.append(f"{REGISTRATION_METRICS[metric]}: {text}")
    verdict = across_settings(by_metric, REGISTRATION_METRICS[claims["registration_metric"]])
    return verdict, "; ".join(measured)


def _smallest_effect(claims: Mapping[str, Any]) -> str:
    return (f" Smallest effect of interest: {100 * claims['registration_min_effect']:.0f} Dice point(s) "
            "(papers.girnet.claims.registration_min_effect).")


def claim_premise(evals: Mapping[str, Mapping[int, Mapping[str, Any]]], scale: str, evidence: list[str],
                  claims: Mapping[str, Any]) -> Claim:
    """C0: the demo's lesions disturb the registration (masking the true lesion helps SYM-Net).

    Not a claim of the paper but its premise: if the oracle baseline (cost-function masking with
    the true lesion) does not beat SYM-Net alone, the lesions do not hurt the registration here
    and C1 cannot be expected to come out supported.
    """
    statement = ("C0 (premise of C1): lesions disturb the registration: SYM-Net with cost-function masking by the "
                 "TRUE lesion mask aligns anatomy better than SYM-Net alone.")
    if not {"symnet_cfm", "symnet"} <= set(evals):
        return _not_tested("C0", statement, scale, "the symnet_cfm and symnet arms are both needed")
    v, measured = registration_verdict(evals, "symnet_cfm", "symnet", claims)
    return Claim(id="C0", statement=statement, paper_value="premise (Brett et al. 2001), not a claim of the paper",
                 paper_label="unverified (card section 5, T1 baseline)", measured=measured, verdict=v.verdict,
                 scale=scale, evidence=evidence, note=v.reason + _smallest_effect(claims))


def claim_registration(evals: Mapping[str, Mapping[int, Mapping[str, Any]]], scale: str,
                       evidence: list[str], claims: Mapping[str, Any]) -> Claim:
    """C1: GIRNet aligns lesioned subjects' anatomy better than SYM-Net alone (structure Dice)."""
    statement = ("C1: registering lesioned T1 images to the atlas, GIRNet gives higher anatomical Dice than the same "
                 "registration network trained without segmentation and inpainting (SYM-Net alone).")
    if not {"girnet", "symnet"} <= set(evals):
        return _not_tested("C1", statement, scale, "the girnet and symnet arms are both needed (papers.girnet.arms)")
    v, measured = registration_verdict(evals, "girnet", "symnet", claims)
    return Claim(id="C1", statement=statement, paper_value=f"qualitative; {NO_NUMBERS}", paper_label=ABSTRACT,
                 measured=measured, verdict=v.verdict, scale=scale, evidence=evidence,
                 note=v.reason + _smallest_effect(claims))


def claim_lesion(evals: Mapping[str, Mapping[int, Mapping[str, Any]]], scale: str, evidence: list[str],
                 claims: Mapping[str, Any]) -> Claim:
    """C2: GIRNet's unsupervised mask segments the lesion well above a random mask of the same size.

    The mask's polarity (``m`` or ``1 - m``) is chosen per run on the training subjects and
    reported; "well above" is read as at least ``claims.lesion_min_effect`` Dice (the verdict is
    "not supported" when the interval excludes a gain that large).
    """
    statement = ("C2: without lesion labels, GIRNet's mask m segments the lesion well above chance (the Dice of the "
                 "same mask placed at random in the volume).")
    if "girnet" not in evals:
        return _not_tested("C2", statement, scale, "the girnet arm is not configured")
    min_effect = claims["lesion_min_effect"]
    a = unit_table(evals, "girnet", "lesion_dice")
    b = unit_table(evals, "girnet", "lesion_dice_random_mask")
    cmp = paired_comparison(a, b, binary=False)
    v = superiority(cmp, min_effect=min_effect, scale=100.0, unit=" Dice points")
    polarities = sorted({str(r["polarity"]) for r in evals["girnet"].values()})
    measured = (f"lesion Dice {100 * a.mean():.1f} with polarity {'/'.join(polarities)} (chosen on the training "
                f"subjects), random mask of the same size {100 * b.mean():.1f} (x100; {a.shape[1]} subjects x "
                f"{a.shape[0]} seed(s))")
    return Claim(id="C2", statement=statement, paper_value=f"qualitative ('identify lesions'); {NO_NUMBERS}",
                 paper_label=ABSTRACT, measured=measured, verdict=v.verdict, scale=scale, evidence=evidence,
                 note=v.reason + f" 'Well above' = at least {100 * min_effect:.0f} Dice points "
                                 "(papers.girnet.claims.lesion_min_effect); a smaller gain is 'not supported' once the "
                                 "interval excludes it.")


def claims_ablation(evals: Mapping[str, Mapping[int, Mapping[str, Any]]], scale: str,
                    evidence: list[str], claims: Mapping[str, Any]) -> list[Claim]:
    """C3: the modules improve each other (registration Dice without inpainting guidance / without
    L_gen, and lesion Dice without inpainting-guided registration)."""
    rows = [
        ("C3a", "no_inpainting_guidance", "registration",
         ("C3a: registering on the inpainted image (inpainting guidance) improves anatomical Dice over the same "
         "co-learning without it.")),
        ("C3b", "no_segmentation_loss", "registration",
         ("C3b: the segmentation loss L_gen improves anatomical Dice (the inpainting then fills the learned mask, "
         "not an untrained one).")),
        ("C3c", "no_inpainting_guidance", "lesion_dice",
         "C3c: registration trained on inpainted images improves the unsupervised lesion Dice."),
    ]
    out = []
    for cid, other, metric, statement in rows:
        if not {"girnet", other} <= set(evals):
            out.append(_not_tested(cid, statement, scale, f"arm {other} is not configured"))
            continue
        if metric == "registration":
            v, measured = registration_verdict(evals, "girnet", other, claims)
            note = v.reason + _smallest_effect(claims)
        else:
            v, text = compare_arms(evals, "girnet", other, metric)
            measured, note = f"{metric}: {text}", v.reason
        out.append(Claim(id=cid, statement=statement, paper_value=f"qualitative (F2, ablation); {NO_NUMBERS}",
                         paper_label="unverified (card section 5)", measured=measured, verdict=v.verdict,
                         scale=scale, evidence=evidence, note=note))
    return out


def _not_tested(cid: str, statement: str, scale: str, why: str) -> Claim:
    return Claim(id=cid, statement=statement, paper_value="", paper_label=ABSTRACT, measured="not run",
                 verdict="not tested", scale=scale, note=why)


def claims_from(evals: Mapping[str, Mapping[int, Mapping[str, Any]]], scale: str, evidence: list[str],
                claims: Mapping[str, Any]) -> list[Claim]:
    """The premise C0 and claims C1-C3 of the card, measured on the runs' per-subject results.

    ``claims`` is ``papers.girnet.claims`` (pre-registered metric, smallest effects of interest).
    """
    unknown = set(claims["registration_metrics"]) - set(REGISTRATION_METRICS)
    if unknown or claims["registration_metric"] not in claims["registration_metrics"]:
        raise ValueError(f"config key papers.girnet.claims: registration_metric {claims['registration_metric']!r} must "
                         f"be one of registration_metrics, each one of {sorted(REGISTRATION_METRICS)}")
    return [claim_premise(evals, scale, evidence, claims), claim_registration(evals, scale, evidence, claims),
            claim_lesion(evals, scale, evidence, claims), *claims_ablation(evals, scale, evidence, claims)]


# --------------------------------------------------------------------------- tables


def _mean_sd(values: np.ndarray, scale: float = 1.0, digits: int = 1) -> str:
    """Mean over subjects and seeds, +- the standard deviation of the per-seed means."""
    per_seed = values.mean(axis=1) * scale
    text = f"{values.mean() * scale:.{digits}f}"
    return text + (f" +- {per_seed.std(ddof=1):.{digits}f}" if len(per_seed) > 1 else "")


def registration_table(evals: Mapping[str, Mapping[int, Mapping[str, Any]]], structures: Sequence[str]) -> Table:
    """T1: registration quality per arm."""
    columns = ["method", "Dice (mean)", *[f"Dice {s.replace('_', ' ')}" for s in structures],
               "Dice near lesion", "LNCC", "% det(J) <= 0", "deformation error (mm)", "near lesion (mm)"]
    rows = []
    for arm in evals:
        def cell(metric: str, scale: float = 100.0, digits: int = 1, _arm: str = arm) -> str:
            rec = next(iter(evals[_arm].values()))
            if metric not in rec["per_subject"]:
                return "-"
            return _mean_sd(unit_table(evals, _arm, metric), scale, digits)

        rows.append([arm_name(arm), cell("dice_mean"), *[cell(f"dice__{s}") for s in structures],
                     cell("dice_near_lesion_mean"), cell("lncc", 1.0, 3), cell("folding_percent", 1.0, 3),
                     cell("deformation_error_mm", 1.0, 2), cell("deformation_error_near_lesion_mm", 1.0, 2)])
    first_arm = next(iter(evals), None)
    if first_arm is not None and "dice_mean_identity" in next(iter(evals[first_arm].values()))["per_subject"]:
        def ident(metric: str, scale: float, digits: int) -> str:
            per = next(iter(evals[first_arm].values()))["per_subject"]
            return f"{scale * np.mean(per[metric]):.{digits}f}" if metric in per else "-"

        rows.append(["no registration (identity)", ident("dice_mean_identity", 100.0, 1), *["-"] * len(structures),
                     "-", "-", "0", ident("deformation_error_identity_mm", 1.0, 2),
                     ident("deformation_error_near_lesion_identity_mm", 1.0, 2)])
    return Table(title="T1: registration of the lesioned test subjects to the atlas", columns=columns, rows=rows,
                 note=("Dice x100 after warping the moving labels into the atlas; 'near lesion': atlas labels warped "
                       "into the moving space, within evaluation.near_lesion_mm of the true lesion. Deformation error: "
                       "|predicted - known| atlas-to-moving displacement, brain voxels outside the lesion. Mean over "
                       "test subjects and seeds, +- the standard deviation of the per-seed means."))


def lesion_table(evals: Mapping[str, Mapping[int, Mapping[str, Any]]]) -> Table:
    """T2: unsupervised lesion segmentation per arm that trains the segmentation network."""
    rows = []
    for arm, runs in evals.items():
        first = next(iter(runs.values()))
        if not first.get("has_segmentation"):
            continue
        polarity = ", ".join(f"s{seed}: {r['polarity']} (train Dice m {100 * r['train_lesion_dice']['m']:.1f} / "
                             f"1-m {100 * r['train_lesion_dice']['1-m']:.1f})" for seed, r in sorted(runs.items()))

        def cell(metric: str, scale: float = 100.0, digits: int = 1, _arm: str = arm) -> str:
            return _mean_sd(unit_table(evals, _arm, metric), scale, digits)

        mae = cell("inpainting_mae_lesion", 1.0, 3) if "inpainting_mae_lesion" in first["per_subject"] else "-"
        rows.append([arm_name(arm), polarity, cell("lesion_dice"), cell("lesion_dice_m"), cell("lesion_dice_inverse"),
                     cell("lesion_dice_random_mask"), cell("lesion_dice_random_voxels"), cell("mask_voxels", 1.0, 0),
                     cell("lesion_voxels", 1.0, 0), mae])
    return Table(title="T2: unsupervised lesion segmentation (test subjects)",
                 columns=["method", "polarity chosen on the training subjects", "Dice (chosen polarity)", "Dice m",
                          "Dice 1-m", "random mask, same size", "random voxels, same number", "mask voxels",
                          "lesion voxels", "inpainting MAE in the lesion"],
                 rows=rows,
                 note=("Dice x100. The polarity is chosen once per run on the training subjects; the official metric's "
                       "per-case max(Dice(m), Dice(1-m)) is not used. Chance levels: the chosen mask moved to random "
                       "places (evaluation.random_masks draws), and the expected Dice of as many random voxels."))


# --------------------------------------------------------------------------- figures


def make_figures(eval_paths: Sequence[str], example_paths: Sequence[str], history_paths: Sequence[str],
                 pretrain_paths: Sequence[str], settings: Mapping[str, Any], out: Mapping[str, str]) -> None:
    """The ``girnet_figures`` rule: qualitative panel, registration and lesion bars, ablation, loss curves."""
    evals, histories = load_runs(eval_paths), load_runs(history_paths)
    arms = list(evals)
    _qualitative(arms, example_paths, evals, out["panel"])
    _bars(evals, arms, [("dice_mean", "Dice (x100)", 100.0), ("deformation_error_mm", "deformation error (mm)", 1.0),
                        ("folding_percent", "% det(J) <= 0", 1.0)], out["registration"], "registration")
    _lesion_bars(evals, out["lesion"])
    ablation = [a for a in ("girnet", "no_inpainting_guidance", "no_segmentation_loss", "symnet") if a in evals]
    _bars(evals, ablation, [("dice_mean", "Dice (x100)", 100.0),
                            ("dice_near_lesion_mean", "Dice near the lesion (x100)", 100.0),
                            ("lesion_dice", "lesion Dice (x100)", 100.0)], out["ablation"], "ablation")
    _curves(histories, [read_json(p) for p in pretrain_paths], out["curves"])


def _colour(arm: str, arms: Sequence[str]) -> str:
    order = list(ARM_NAMES) + [a for a in arms if a not in ARM_NAMES]
    return PALETTE[order.index(arm) % len(PALETTE)]


def _bars(evals: Mapping[str, Any], arms: Sequence[str], metrics: Sequence[tuple[str, str, float]], path: str,
          title: str) -> None:
    fig, axes = figure(ncols=len(metrics), width=4.0, height=3.6)
    for ax, (metric, label, scale) in zip(axes[0], metrics):
        shown = [a for a in arms if metric in next(iter(evals[a].values()))["per_subject"]]
        for k, arm in enumerate(shown):
            table = unit_table(evals, arm, metric) * scale
            ax.bar(k, table.mean(), color=_colour(arm, arms), alpha=0.75)
            subj = table.mean(axis=0)
            ax.scatter(np.full(subj.shape, k) + np.linspace(-0.2, 0.2, len(subj)), subj, s=8, color="k", zorder=3)
        reference = f"{metric.removesuffix('_mm')}_identity" + ("_mm" if metric.endswith("_mm") else "")
        if shown and reference in next(iter(evals[shown[0]].values()))["per_subject"]:
            ax.axhline(scale * unit_table(evals, shown[0], reference).mean(), color="grey", ls="--", lw=1,
                       label="no registration")
            ax.legend(fontsize=7)
        ax.set_xticks(range(len(shown)), [arm_name(a) for a in shown], rotation=30, ha="right", fontsize=7)
        ax.set(ylabel=label, title=f"{title}: {label}")
    save_figure(fig, path)


def _lesion_bars(evals: Mapping[str, Any], path: str) -> None:
    arms = [a for a, runs in evals.items() if next(iter(runs.values())).get("has_segmentation")]
    fig, axes = figure(width=5.5, height=3.6)
    ax = axes[0, 0]
    labels = [("lesion_dice", "chosen polarity"), ("lesion_dice_inverse", "other polarity"),
              ("lesion_dice_random_mask", "random mask, same size")]
    width = 0.8 / len(labels)
    for j, (metric, label) in enumerate(labels):
        vals = [100 * unit_table(evals, a, metric).mean() for a in arms]
        ax.bar(np.arange(len(arms)) + (j - 1) * width, vals, width, label=label, color=PALETTE[j])
    ax.set_xticks(range(len(arms)), [arm_name(a) for a in arms], rotation=20, ha="right", fontsize=7)
    ax.set(ylabel="lesion Dice (x100)", title="T2: unsupervised lesion segmentation")
    ax.legend(fontsize=7)
    save_figure(fig, path)


def _curves(histories: Mapping[str, Mapping[int, Mapping[str, Any]]], pretrain: Sequence[Mapping[str, Any]],
            path: str) -> None:
    modules = ("reg", "gen", "inp")
    fig, axes = figure(ncols=5, width=3.4, height=3.2)
    for col, module in enumerate(modules):
        ax = axes[0, col]
        for arm, runs in histories.items():
            key = f"loss_{module}"
            series = [[e[key] for e in r["epochs"] if key in e] for r in runs.values()]
            series = [s for s in series if s]
            if not series:
                continue
            n = min(len(s) for s in series)
            mean = np.mean([s[:n] for s in series], axis=0)
            ax.plot(range(1, n + 1), mean, marker="o", ms=3, color=_colour(arm, list(histories)), label=arm_name(arm))
        ax.set(xlabel="epoch", ylabel=f"L_{module} (training)", title=f"{module} module")
        if col == 0:
            ax.legend(fontsize=6)
    ax = axes[0, 3]
    for arm, runs in histories.items():
        series = [[e["mask_fraction"] for e in r["epochs"] if "mask_fraction" in e] for r in runs.values()]
        series = [s for s in series if s]
        if series:
            n = min(len(s) for s in series)
            ax.plot(range(1, n + 1), 100 * np.mean([s[:n] for s in series], axis=0), marker="o", ms=3,
                    color=_colour(arm, list(histories)), label=arm_name(arm))
    ax.set(xlabel="epoch", ylabel="% of the volume", title="mask m > 0.5 (training batches)")
    ax = axes[0, 4]
    twin = ax.twinx()
    for k, record in enumerate(pretrain):
        key, target = ("loss_reg", ax) if record["job"] == "pretrain_reg" else ("loss_inp", twin)
        values = [e[key] for e in record["epochs"]]
        target.plot(range(1, len(values) + 1), values, marker="o", ms=3, color=PALETTE[k], label=record["job"])
        target.set_ylabel(key, color=PALETTE[k])
    ax.set(xlabel="epoch", title="pretraining")
    save_figure(fig, path)


def _qualitative(arms: Sequence[str], example_paths: Sequence[str], evals: Mapping[str, Any], path: str) -> None:
    """F1: one test subject, first seed: x, y, mask vs truth, inpainted, warped, grid, Jacobian per arm."""
    by_arm: dict[str, str] = {}
    for p in sorted(example_paths):
        arm = Path(p).parent.name.rsplit("_s", 1)[0]
        by_arm.setdefault(arm, p)
    columns = ["moving x", "atlas y", "mask m (red) vs truth (cyan)", "inpainted x_hat", "x warped to y",
               "deformation grid", "det(J) of x -> y"]
    fig, axes = figure(ncols=len(columns), nrows=len(arms), width=2.0, height=2.1)
    for row, arm in enumerate(arms):
        with np.load(by_arm[arm]) as data:
            ex = {k[3:]: data[k] for k in data.files if k.startswith("s0_")}
        for col in range(len(columns)):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if row == 0:
                ax.set_title(columns[col], fontsize=7)
        axes[row, 0].set_ylabel(textwrap.fill(arm_name(arm), 22), fontsize=7)
        if not ex:
            continue
        show = {0: ex["x"], 1: ex["y"], 4: ex["x_to_y"]}
        if "x_hat" in ex:
            show[3] = ex["x_hat"]
        else:
            axes[row, 3].set_axis_off()
        for col, img in show.items():
            axes[row, col].imshow(img.T, origin="lower", cmap="gray", vmin=0, vmax=1)
        ax = axes[row, 2]
        ax.imshow(ex["x"].T, origin="lower", cmap="gray", vmin=0, vmax=1)
        if "m" in ex:
            ax.contour(ex["m"].T.astype(float), levels=[0.5], colors="red", linewidths=0.8)
        ax.contour(ex["lesion"].T.astype(float), levels=[0.5], colors="cyan", linewidths=0.8)
        _grid(axes[row, 5], ex["ddf"])
        im = axes[row, 6].imshow(ex["jacobian"].T, origin="lower", cmap="RdBu_r", vmin=0, vmax=2)
        if row == len(arms) - 1:
            fig.colorbar(im, ax=axes[row, 6], fraction=0.046)
    save_figure(fig, path)


def _grid(ax: Any, ddf: np.ndarray, step: int = 2) -> None:
    """In-plane deformation grid: the lines of a regular grid moved by the displacement."""
    nx, ny = ddf.shape[1:]
    gx, gy = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    px, py = gx + ddf[0], gy + ddf[1]
    for i in range(0, nx, step):
        ax.plot(px[i, :], py[i, :], color="k", lw=0.4)
    for j in range(0, ny, step):
        ax.plot(px[:, j], py[:, j], color="k", lw=0.4)
    ax.set_xlim(0, nx - 1)
    ax.set_ylim(0, ny - 1)


# --------------------------------------------------------------------------- report


def write_report(eval_paths: Sequence[str], history_paths: Sequence[str], figure_paths: Sequence[str],
                 data_paths: Sequence[str], settings: Mapping[str, Any], global_settings: Mapping[str, Any],
                 out_html: str, out_claims: str) -> None:
    """The ``girnet_report`` rule."""
    scale = global_settings["scale"]
    evals = load_runs(eval_paths)
    claims = claims_from(evals, scale, sorted(eval_paths), settings["claims"])
    structures = list(settings["evaluation"]["structures"])
    tables = [registration_table(evals, structures), lesion_table(evals), _schedule_table(load_runs(history_paths))]
    captions = {
        "qualitative.png": "F1: one test subject (first seed): moving image, atlas, the learned mask (red) against the "
                           "true lesion (cyan), the inpainted pseudo-normal image, the moving image warped to the "
                           "atlas, the deformation grid and det(J) of the moving-to-atlas map, per method.",
        "registration.png": "T1 as bars: structure Dice, deformation error against the known field and folding, per "
                            "method (bar: mean over subjects and seeds; dots: test subjects, mean over seeds).",
        "lesion_dice.png": "T2: lesion Dice of the chosen mask polarity, of the other polarity, and of the same mask at "
                           "random places (chance level).",
        "ablation.png": "F2: ablations: GIRNet, without inpainting guidance, without L_gen, and SYM-Net alone.",
        "loss_curves.png": "F3: per-module training losses per epoch (mean over seeds) and the pretraining losses.",
    }
    figures = [Figure(p, captions.get(Path(p).name, "")) for p in figure_paths]
    build_report(META, scale, claims, figures, tables, data_notes(settings, scale), not_reproduced(scale),
                 collect_provenance({**global_settings, "papers": {"girnet": dict(settings)}},
                                    {Path(p).name: p for p in data_paths}, benchmark_dir="benchmarks/girnet"),
                 out_html, out_claims)


def _schedule_table(histories: Mapping[str, Mapping[int, Mapping[str, Any]]]) -> Table:
    rows = []
    for arm, runs in histories.items():
        rec = next(iter(runs.values()))
        seconds = np.mean([sum(e["seconds"] for e in r["epochs"]) for r in runs.values()])
        rows.append([arm_name(arm), ", ".join(rec["modules"]), " ".join(rec["cycle"]), len(rec["epochs"]),
                     len(runs), f"{seconds:.0f}"])
    return Table(title="Training schedule per method", columns=["method", "modules trained", "cycle (one batch each)",
                                                                 "epochs", "seeds", "training seconds per run"],
                 rows=rows, note="Seconds are wall-clock times of the training jobs on this machine.")


def data_notes(settings: Mapping[str, Any], scale: str) -> list[str]:
    """What data and settings this report was produced with."""
    data = settings["data"]
    if data["source"] == "demo":
        notes = [
            (f"Atlas: nilearn's MNI152 T1 template (ICBM 2009 nonlinear asymmetric), resampled to {data['voxel_mm']} mm "
            f"({' x '.join(map(str, data['shape']))} voxels), skull-stripped by the GM / WM / CSF templates."),
            (f"Subjects: {data['subjects']['pretrain']} lesion-free (pretraining), {data['subjects']['train']} "
            f"lesioned training and {data['subjects']['test']} lesioned test subjects, each the atlas pulled back by "
            f"a random smooth diffeomorphism (velocity smoothed with sigma {data['field']['sigma_mm']} mm, at most "
            f"{data['field']['max_velocity_mm']} mm, scaling and squaring), a hypointense textured lesion of radius "
            f"{data['lesion']['radius_mm']} mm with {data['lesion']['mass_effect_mm']} mm mass effect, a gamma in "
            f"{data['intensity']['gamma']} and noise {data['intensity']['noise']}. Truth: the field, the lesion mask, "
            "tissue labels (GM / WM templates warped with the same field) and the subject without the lesion."),
        ]
    else:
        notes = [(f"Training set {data['train_set']}, fold {data['fold']} of {data['folds']} (regenerated with seed "
                 f"{settings['data_seed']}), {' x '.join(map(str, data['shape']))} voxels at 1 mm.")]
    notes.append(f"Arms: {', '.join(arm_name(a) for a in settings['arms'])}; seeds {settings['seeds']}; optimiser "
                 f"{settings['optim']}; {settings['epochs']} epochs (per arm: {settings.get('arm_epochs') or 'the same'}) "
                 f"after pretraining {settings['pretrain']}.")
    notes.append(f"Registration {settings['registration']}; segmentation {settings['segmentation']}; inpainting "
                 f"{settings['inpainting']}; cycle {settings['cycle']}.")
    return notes


def not_reproduced(scale: str) -> list[str]:
    """What this report cannot show, and why (including every deliberate difference from the official code)."""
    items = [
        ("The paper's numbers: the card has none (the abstract has no numbers and the tables were not copied), so the "
         "claims table compares arms measured here, without a paper column."),
        ("Landmark error (BraTS-Reg): pairwise pre-operative / follow-up registration is not implemented; BraTS-Reg is "
        "registered, unpacked and split (5 folds, 104 / 26) but training on it stops with a message."),
        "Ablations over other k cycles (F2) are configurable (papers.girnet.cycle) but not run by default.",
        "PolyLR schedulers of the official utils/train_base.py are not used (constant learning rate).",
        ("Deliberate differences from ly1998117/GIRNet: the pretrained SYM-Net and inpainter are trained by the DAG "
         "(girnet_pretrain) instead of loading SYMNet_80000.pth and inp.pth; cost-function masking warps the true "
         "lesion mask into the space of each similarity term (the official code applies the moving-space mask to the "
         "atlas-space term too); lesion Dice uses one mask polarity per run chosen on the training subjects instead of "
         "a per-case max over m and 1 - m; the random pairing of pseudo-lesions is seeded."),
    ]
    if scale != "paper":
        items.insert(0, "OASIS-1, BraTS 2020, BraTS-Reg and ATLAS at 1 mm (160 x 192 x 144): they need data-use "
                        "agreements and FSL / FreeSurfer preprocessing; they are configured at scale paper "
                        "(config/papers/girnet.yaml, config/datasets.yaml). The demo is a synthetic-lesion study on "
                        "real anatomy at coarse resolution (4 mm), with smaller networks, a 10x higher learning rate (50x for the mask network) "
                        "and a few hundred batches instead of 200 epochs.")
        items.append("Demo registration: pretrained for a few epochs on 16 subjects at 4 mm, SYM-Net removes only part of "
                     "the known misalignment (compare the T1 table's deformation error and Dice with its identity row). "
                     "C0 reads whether the demo's lesions disturb that registration at all: where masking the true "
                     "lesion gains nothing, there is nothing for GIRNet's inpainting to recover, and C1 and C3a-b "
                     "measure the cost of co-learning rather than its benefit. The paper's setting (1 mm, large "
                     "tumours, 200 epochs) is where the benefit is claimed.")
        items.append("Demo registration loss: MONAI's local NCC (SYM-Net's original, papers.girnet.scales.demo."
                     "registration.similarity: monai) instead of GIRNet's thresholded lncc, whose score is 1 wherever "
                     "the warped image is flat: with 3-voxel windows at 4 mm the network learned to empty windows "
                     "(deformation error 3 -> 40 mm within a few epochs). The segmentation and inpainting losses keep "
                     "the thresholded form.")
        items.append("Demo inpainter: it predicts a correction to the atlas warped into the subject "
                     "(papers.girnet.scales.demo.networks.inp.residual: true) instead of the volume itself. Trained "
                     "for a few hundred batches, the published form stays blurry, normal tissue then looks as "
                     "unpredictable as the lesion, and the minimal-mutual-information mask grows to the whole brain "
                     "(measured: 27,800 of 76,800 voxels, lesion Dice 0.05). The segmentation network's output is "
                     "offset so the mask starts nearly empty (networks.seg.output_bias: -2; the official one starts at "
                     "m ~ 0.5 everywhere), which lets the mask find the lesion in about a hundred batches.")
    return items
