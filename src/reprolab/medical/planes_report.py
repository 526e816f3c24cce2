"""Figures, claims and report of the ``planes`` DAG, from the JSON files its runs wrote."""

from __future__ import annotations

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
from reprolab.report.stats import Verdict

META = PaperMeta(
    id="planes",
    title="Self-Supervised Learning for Medical Image Data with Anatomy-Oriented Imaging Planes",
    citation="Zhang, Wei, Zhu, Gu, Zheng. Medical Image Analysis 94 (2024) 103151",
    arxiv="2403.16499",
    code="Forteee/Anatomy-Oriented-SSL",
    summary=(
        "Two pretext tasks from the geometry of imaging planes: regress the lines where long-axis planes cut a "
        "short-axis image (as heatmaps), and regress the relative location of a short-axis slice in its stack. "
        "A U-Net pretrained on either or both initialises a segmentation U-Net trained with few labels, compared "
        "with training from scratch."
    ),
)

ARM_NAMES = {"scratch": "scratch", "line": "line only", "slice": "slice only", "multitask": "multitask"}
VIEW_COLOURS = ("#d62728", "#1f77b4")  # 2CH, 4CH


def arm_colour(arm: str) -> str:
    """The colour of an arm in every figure."""
    return PALETTE[list(ARM_NAMES).index(arm) % len(PALETTE)]


def by_arm(paths: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{arm: record}`` of JSON files that carry an ``arm`` key, in the order of :data:`ARM_NAMES`."""
    records = {rec["arm"]: rec for rec in (read_json(p) for p in paths)}
    return {a: records[a] for a in ARM_NAMES if a in records}


def budget_label(budget: str, runs: Sequence[Mapping[str, Any]]) -> str:
    """``"4"`` or ``"all (16)"``."""
    if budget != "all":
        return budget
    n = {r["n_labelled_subjects"] for r in runs if r["budget"] == "all"}
    return f"all ({n.pop()})" if len(n) == 1 else "all"


def budgets_of(record: Mapping[str, Any]) -> list[str]:
    """The label budgets of a fine-tuning record, in run order."""
    return list(dict.fromkeys(r["budget"] for r in record["runs"]))


def dice_units(record: Mapping[str, Any], budget: str) -> tuple[np.ndarray, list[int], list[int]]:
    """Per-volume Dice, mean over the foreground classes: ``[n_seeds, n_volumes]``, seeds, volume ids.

    Rows are sorted by seed and columns by volume id, so two arms' matrices are paired cell by cell.
    """
    runs = sorted((r for r in record["runs"] if r["budget"] == budget), key=lambda r: r["seed"])
    if not runs:
        raise KeyError(f"no runs with budget {budget} for arm {record['arm']}")
    order = np.argsort(runs[0]["test"]["volume"])
    volumes = [runs[0]["test"]["volume"][i] for i in order]
    rows = []
    for r in runs:
        if sorted(r["test"]["volume"]) != volumes:
            raise ValueError(f"arm {record['arm']} budget {budget}: runs were tested on different volumes")
        dice = np.asarray(r["test"]["dice"], dtype=float)[np.argsort(r["test"]["volume"])]
        rows.append(np.nanmean(dice, axis=1))
    return np.stack(rows), [r["seed"] for r in runs], volumes


def class_dice(record: Mapping[str, Any], budget: str) -> np.ndarray:
    """Per-class test Dice averaged over volumes, one row per seed: ``[n_seeds, n_classes]``."""
    runs = [r for r in record["runs"] if r["budget"] == budget]
    return np.stack([np.nanmean(np.asarray(r["test"]["dice"], dtype=float), axis=0) for r in runs])


def _mean_std(values: np.ndarray) -> str:
    values = np.asarray(values, dtype=float)
    return f"{values.mean():.3f}" + (f" +- {values.std(ddof=1):.3f}" if len(values) > 1 else "")


# --------------------------------------------------------------------------- figures


def make_figures(pretext_paths: Sequence[str], history_paths: Sequence[str], example_paths: Sequence[str],
                 finetune_paths: Sequence[str], out: Mapping[str, str], segmentation_path: str | None = None) -> None:
    """The ``planes_figures`` rule: F0 subjects, F1 heatmaps, F2 slice scatter, F3 Dice vs budget, F4 loss curves.

    F0 (``out["subjects"]``) is drawn from the segmentation data when ``segmentation_path`` is given.
    """
    if segmentation_path is not None:
        subjects_figure(segmentation_path, out["subjects"])
    pretext, finetune = by_arm(pretext_paths), by_arm(finetune_paths)
    examples = {Path(p).parent.name: dict(np.load(p)) for p in example_paths}
    _heatmaps({a: examples[a] for a in pretext if pretext[a]["heat_trained"] and a in examples}, out["heatmaps"])
    _slice_scatter({a: r for a, r in pretext.items() if r["slice_trained"]}, out["slices"])
    _dice_vs_budget(finetune, out["budget"])
    _curves(by_arm(history_paths), finetune, out["curves"])


def middle_slices(arrays: Mapping[str, np.ndarray], n: int) -> list[tuple[str, str, int]]:
    """``(subject, role, slice index)`` of the middle slice of the first ``n`` volumes, one per subject.

    Subjects are taken in the order of the roles test, train, val (the test subjects first: the
    units of the claims).
    """
    subjects, roles = arrays["subjects"], arrays["roles"]
    picked, seen = [], set()
    for role in ("test", "train", "val"):
        for v, s in enumerate(arrays["volume_subject"]):
            if len(picked) == n:
                return picked
            if roles[s] != role or s in seen:
                continue
            index = np.flatnonzero(arrays["volume"] == v)
            if len(index):
                seen.add(s)
                picked.append((str(subjects[s]), str(role), int(index[len(index) // 2])))
    return picked


def subjects_figure(segmentation_path: str | Path, path: str, n: int = 5) -> None:
    """F0: the middle SAX-like slice of a few subjects, as input and with its labels, to show the data's variability."""
    from reprolab.medical.planes import load_npz

    arrays = load_npz(segmentation_path)
    picked = middle_slices(arrays, n)
    if not picked:
        raise ValueError(f"{segmentation_path}: no labelled volumes to show in F0")
    names = ["background", *(str(c) for c in arrays["class_names"])]
    fig, axes = figure(ncols=len(picked), nrows=2, width=2.0, height=2.0)
    for k, (subject, role, i) in enumerate(picked):
        image, label = arrays["image"][i].astype(np.float32), arrays["label"][i]
        axes[0, k].imshow(image, cmap="gray")
        axes[0, k].set_title(f"{subject} ({role})", fontsize=8)
        axes[1, k].imshow(image, cmap="gray")
        axes[1, k].imshow(np.ma.masked_equal(label, 0), cmap="viridis", vmin=1, vmax=max(len(names) - 1, 1), alpha=0.55,
                          interpolation="nearest")
    axes[1, 0].set_title("labels: " + ", ".join(names[1:]), fontsize=7, loc="left")
    for ax in axes.flat:
        ax.set_axis_off()
    save_figure(fig, path)


def _draw_line(ax, coeffs: np.ndarray, size: int, colour: str, style: str) -> None:
    from reprolab.medical.geometry import Line2D, clip_line

    if not np.all(np.isfinite(coeffs)):
        return
    ends = clip_line(Line2D(*coeffs), size, size)
    if ends is not None:
        ax.plot([ends[0][0], ends[1][0]], [ends[0][1], ends[1][1]], style, color=colour, lw=1.2)


def _heatmaps(examples: Mapping[str, Mapping[str, np.ndarray]], path: str) -> None:
    if not examples:
        fig, axes = figure()
        axes[0, 0].text(0.5, 0.5, "no arm was trained on the line heatmaps", ha="center", va="center")
        axes[0, 0].set_axis_off()
        save_figure(fig, path)
        return
    n = min(len(next(iter(examples.values()))["image"]), 4)
    cols = 1 + 2 * len(examples)
    fig, axes = figure(ncols=cols, nrows=n, width=2.1, height=2.1)
    for i in range(n):
        first = next(iter(examples.values()))
        size = first["image"].shape[-1]
        ax = axes[i, 0]
        ax.imshow(first["image"][i], cmap="gray")
        ax.imshow(_rgb(first["heat_true"][i]), alpha=0.45)
        ax.set_title("input, true heatmaps" if i == 0 else "")
        for k, (arm, ex) in enumerate(examples.items()):
            lines_ax, heat_ax = axes[i, 1 + 2 * k], axes[i, 2 + 2 * k]
            lines_ax.imshow(ex["image"][i], cmap="gray")
            for v, colour in enumerate(VIEW_COLOURS):
                _draw_line(lines_ax, ex["line_true"][i, v], size, colour, "-")
                _draw_line(lines_ax, ex["line_pred"][i, v], size, colour, "--")
            heat_ax.imshow(_rgb(ex["heat_pred"][i]))
            if i == 0:
                lines_ax.set_title(f"{ARM_NAMES[arm]}: true - / fitted --")
                heat_ax.set_title(f"{ARM_NAMES[arm]}: predicted")
    for ax in axes.flat:
        ax.set_axis_off()
    save_figure(fig, path)


def _rgb(heat: np.ndarray) -> np.ndarray:
    """Two heatmap channels as red (2CH) and blue (4CH)."""
    h = np.clip(heat, 0, 1)
    return np.stack([h[0], np.zeros_like(h[0]), h[1]], axis=-1)


def _slice_scatter(records: Mapping[str, Mapping[str, Any]], path: str) -> None:
    fig, axes = figure(ncols=max(1, len(records)), width=3.4, height=3.2)
    if not records:
        axes[0, 0].text(0.5, 0.5, "no arm was trained on slice locations", ha="center", va="center")
        axes[0, 0].set_axis_off()
    for ax, (arm, rec) in zip(axes[0], records.items(), strict=False):
        ax.scatter(rec["slice_true"], rec["slice_pred"], s=8, alpha=0.6, color=arm_colour(arm))
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        ax.set(xlabel="true relative slice location", ylabel="predicted",
               title=f"{ARM_NAMES[arm]}: r = {rec['slice_r']:.3f}, MAE = {rec['slice_mae']:.3f}")
    save_figure(fig, path)


def _dice_vs_budget(finetune: Mapping[str, Mapping[str, Any]], path: str) -> None:
    fig, axes = figure(width=5.0, height=3.4)
    ax = axes[0, 0]
    budgets = budgets_of(next(iter(finetune.values())))
    x = np.arange(len(budgets))
    for k, (arm, rec) in enumerate(finetune.items()):
        per_seed = np.array([dice_units(rec, b)[0].mean(axis=1) for b in budgets])  # [budgets, seeds]
        shift = (k - (len(finetune) - 1) / 2) * 0.06
        ax.errorbar(x + shift, per_seed.mean(1), yerr=[per_seed.mean(1) - per_seed.min(1),
                                                       per_seed.max(1) - per_seed.mean(1)],
                    marker="o", ms=4, capsize=2, color=arm_colour(arm), label=ARM_NAMES[arm])
    ax.set_xticks(x, [budget_label(b, next(iter(finetune.values()))["runs"]) for b in budgets])
    ax.set(xlabel="labelled subjects", ylabel="test Dice (mean of classes and volumes)",
           title="segmentation Dice vs label budget")
    ax.legend()
    save_figure(fig, path)


def _curves(histories: Mapping[str, Mapping[str, Any]], finetune: Mapping[str, Mapping[str, Any]], path: str) -> None:
    fig, axes = figure(ncols=3, width=3.6, height=3.0)
    for arm, h in histories.items():
        epochs = [e["epoch"] for e in h["epochs"]]
        axes[0, 0].plot(epochs, [e["train_loss"] for e in h["epochs"]], color=arm_colour(arm), label=f"{ARM_NAMES[arm]} train")
        axes[0, 0].plot(epochs, [e["val_loss"] for e in h["epochs"]], color=arm_colour(arm), ls="--",
                        label=f"{ARM_NAMES[arm]} val")
    axes[0, 0].set(xlabel="epoch", ylabel="alpha L_heat + beta L_slice", title="pretext loss", yscale="log")
    axes[0, 0].legend(fontsize=7)
    smallest = budgets_of(next(iter(finetune.values())))[0]
    for arm, rec in finetune.items():
        runs = [r for r in rec["runs"] if r["budget"] == smallest]
        loss = np.array([[e["train_loss"] for e in r["history"]] for r in runs])
        epochs = np.arange(1, loss.shape[1] + 1)
        axes[0, 1].plot(epochs, loss.mean(0), color=arm_colour(arm), label=ARM_NAMES[arm])
        val = [[(e["epoch"], e["val_dice"]) for e in r["history"] if "val_dice" in e] for r in runs]
        ve = [p[0] for p in val[0]]
        axes[0, 2].plot(ve, np.mean([[p[1] for p in v] for v in val], axis=0), marker="o", ms=3,
                        color=arm_colour(arm), label=ARM_NAMES[arm])
    axes[0, 1].set(xlabel="epoch", ylabel="cross-entropy", title=f"segmentation training loss ({smallest} labelled)")
    axes[0, 2].set(xlabel="epoch", ylabel="validation Dice", title=f"segmentation validation ({smallest} labelled)")
    axes[0, 1].legend()
    save_figure(fig, path)


# --------------------------------------------------------------------------- tables


def dice_table(finetune: Mapping[str, Mapping[str, Any]], class_names: Sequence[str]) -> Table:
    """T1: test Dice per class and label budget for every initialisation, mean +- std over seeds."""
    rows = []
    for arm, rec in finetune.items():
        for b in budgets_of(rec):
            per_class = class_dice(rec, b)
            units, seeds, volumes = dice_units(rec, b)
            rows.append([ARM_NAMES[arm], budget_label(b, rec["runs"]), len(seeds), len(volumes),
                         _mean_std(units.mean(axis=1)), *(_mean_std(per_class[:, c]) for c in range(per_class.shape[1]))])
    return Table(
        title="T1: test Dice per label budget and initialisation",
        columns=["initialisation", "labelled subjects", "seeds", "test volumes", "mean Dice", *class_names],
        rows=rows,
        note=("Mean +- standard deviation over seeds of the Dice averaged over test volumes (3-D Dice per volume, MONAI "
              "DiceMetric). Weights chosen by validation Dice; the test split was not used for any choice."),
    )


def surface_table(finetune: Mapping[str, Mapping[str, Any]], class_names: Sequence[str]) -> Table | None:
    """Hausdorff distance and ASSD per class at every budget, if they were computed."""
    rows = []
    for arm, rec in finetune.items():
        for b in budgets_of(rec):
            runs = [r for r in rec["runs"] if r["budget"] == b]
            hd = np.array([np.nanmean(np.asarray(r["test"]["hd"], dtype=float), axis=0) for r in runs])
            if np.all(np.isnan(hd)):
                return None
            assd = np.array([np.nanmean(np.asarray(r["test"]["assd"], dtype=float), axis=0) for r in runs])
            rows.append([ARM_NAMES[arm], budget_label(b, rec["runs"]),
                         *(f"{hd[:, c].mean():.1f} / {assd[:, c].mean():.2f}" for c in range(hd.shape[1]))])
    if not rows:
        return None
    return Table(title="Surface distances (HD / ASSD, mm) on the test volumes",
                 columns=["initialisation", "labelled subjects", *class_names], rows=rows,
                 note="Mean over seeds of the mean over test volumes where both prediction and label hold the class.")


def pretext_table(pretext: Mapping[str, Mapping[str, Any]]) -> Table:
    """Pretext accuracy on held-out subjects."""
    rows = []
    for arm, rec in pretext.items():
        heat = (" / ".join(f"{a:.1f} deg, {o:.2f} px" for a, o in zip(rec["line_angle_median_deg"],
                                                                     rec["line_offset_median_px"], strict=True))
                if rec["heat_trained"] else "not trained")
        slc = f"r = {rec['slice_r']:.3f}, MAE = {rec['slice_mae']:.3f}" if rec["slice_trained"] else "not trained"
        rows.append([ARM_NAMES[arm], rec["n_subjects"], rec["n_images"], rec["best_epoch"], heat, slc])
    return Table(
        title="Pretext tasks on held-out subjects",
        columns=["arm", "subjects", "images", "best epoch (val loss)", "lines 2CH / 4CH: median angle, offset",
                 "relative slice location"],
        rows=rows,
        note=("Predicted lines are fitted to the predicted heatmaps (principal axis of the pixels above half the "
              "maximum); offset = distance of the true line's point nearest the image centre from the fitted line."),
    )


# --------------------------------------------------------------------------- claims

#: Dice is shown in points (x 100) in the verdicts' sentences.
DICE_SCALE, DICE_UNIT = 100.0, " Dice points"
NO_NUMBERS = "no numbers in the abstract; the cardiac tables are not transcribed in the card (TODO from the PDF)"


def limited_budgets(record: Mapping[str, Any]) -> list[str]:
    """The label budgets below the whole pool, smallest first (the settings of C1 and C2)."""
    limited = [b for b in budgets_of(record) if b != "all"]
    return sorted(limited, key=int) or budgets_of(record)


def _compare(finetune: Mapping[str, Mapping[str, Any]], a: str, b: str, budget: str):
    from reprolab.report.stats import paired_comparison

    ua, seeds_a, vols_a = dice_units(finetune[a], budget)
    ub, seeds_b, vols_b = dice_units(finetune[b], budget)
    if vols_a != vols_b or seeds_a != seeds_b:
        raise ValueError(f"{a} and {b} at budget {budget} were not run on the same seeds and test volumes")
    return paired_comparison(ua, ub, binary=False, groups=volume_subjects(finetune[a], budget))


def volume_subjects(record: Mapping[str, Any], budget: str) -> list[str]:
    """The subject of every test volume, in volume-id order: ED and ES volumes of one patient form one group."""
    test = next(r for r in record["runs"] if r["budget"] == budget)["test"]
    return [s for _, s in sorted(zip(test["volume"], test["subject"], strict=True))]


def mean_dice(record: Mapping[str, Any], budget: str) -> float:
    """Mean test Dice of one arm at one budget (over seeds, test volumes and foreground classes)."""
    return float(dice_units(record, budget)[0].mean())


def works_gate(verdict: Verdict, claimed: float, comparator: float, works_dice: float, claimed_name: str,
               comparator_name: str) -> Verdict:
    """A comparison of two arms counts only if both segmentations work (mean Dice >= ``works_dice``).

    The claimed arm below ``works_dice`` makes the claim "not supported" (a segmentation that
    does not work is no evidence of a benefit, and no other outcome can rescue it); otherwise the
    comparator below it makes the claim "inconclusive" (beating or matching a broken arm says
    nothing about the method). Both at or above it: ``verdict`` unchanged.

    Parameters
    ----------
    verdict
        Verdict of the paired comparison.
    claimed, comparator
        Mean test Dice of the two arms in the compared setting.
    works_dice
        ``papers.planes.claims.works_dice``.
    claimed_name, comparator_name
        Names of the arms for the reason.
    """
    if not 0.0 <= works_dice <= 1.0:
        raise ValueError(f"papers.planes.claims.works_dice must lie in [0, 1], got {works_dice}")
    if claimed < works_dice:
        return Verdict("not supported", f"{claimed_name} reaches a mean Dice of {claimed:.3f}, below "
                                        f"claims.works_dice = {works_dice:g}: its segmentation does not work. "
                                        f"(Comparison: {verdict.reason})")
    if comparator < works_dice:
        return Verdict("inconclusive", f"Not judged: the comparator {comparator_name} reaches a mean Dice of "
                                       f"{comparator:.3f}, below claims.works_dice = {works_dice:g} (its segmentation "
                                       f"does not work). (Comparison: {verdict.reason})")
    return verdict


def _per_budget(finetune, a: str, b: str, judge, works_dice: float) -> dict[str, Any]:
    return {f"{bud} labelled": works_gate(judge(_compare(finetune, a, b, bud)), mean_dice(finetune[a], bud),
                                          mean_dice(finetune[b], bud), works_dice, ARM_NAMES[a], ARM_NAMES[b])
            for bud in limited_budgets(finetune[a])}


def _measured(finetune, a: str, b: str, budget: str) -> str:
    ua, ub = dice_units(finetune[a], budget)[0], dice_units(finetune[b], budget)[0]
    return (f"{budget} labelled subject(s): {ARM_NAMES[a]} {ua.mean():.3f} vs {ARM_NAMES[b]} {ub.mean():.3f} mean test "
            f"Dice ({ua.shape[0]} seeds x {ua.shape[1]} test volumes)")


def claims_from(finetune: Mapping[str, Mapping[str, Any]], settings: Mapping[str, Any], scale: str,
                evidence: Sequence[str]) -> list[Claim]:
    """Claims C1-C3 of the card from the fine-tuning records (``{arm: eval.json}``).

    Every comparison is paired on seeds (same labelled subjects and seed in both arms) and on
    test volumes, through :func:`reprolab.report.stats.paired_comparison`. C1 and C2 are judged
    at the smallest label budget (pre-registered) and read against the other limited budgets
    (:func:`~reprolab.report.stats.across_settings`).
    """
    from reprolab.report.stats import across_settings, non_inferiority, superiority

    min_effect, margin = settings["claims"]["min_effect"], settings["claims"]["margin"]
    works = settings["claims"]["works_dice"]
    claims: list[Claim] = []
    if "scratch" not in finetune:
        return [Claim(id="C1", statement="Pretraining beats training from scratch.", paper_value=NO_NUMBERS,
                      paper_label="verified: arXiv abstract (no numbers)", measured="scratch arm not run",
                      verdict="not tested", scale=scale, note="Add scratch to papers.planes.arms.")]

    def better(cmp):
        return superiority(cmp, min_effect, DICE_SCALE, DICE_UNIT)

    def not_worse(cmp):
        return non_inferiority(cmp, margin, DICE_SCALE, DICE_UNIT)

    for cid, arm, what in (("C1a", "line", "the intersecting-line task"), ("C1b", "slice", "the slice-location task"),
                           ("C1c", "multitask", "both tasks (multitask)")):
        if arm not in finetune:
            continue
        smallest = limited_budgets(finetune[arm])[0]
        v = across_settings(_per_budget(finetune, arm, "scratch", better, works), f"{smallest} labelled")
        claims.append(Claim(
            id=cid, statement=f"A U-Net pretrained on {what} segments better than one trained from scratch with few labels.",
            paper_value=NO_NUMBERS, paper_label="verified: arXiv abstract ('remarkably boosted performance')",
            measured=_measured(finetune, arm, "scratch", smallest), verdict=v.verdict, scale=scale,
            evidence=list(evidence),
            note=v.reason + " Paired on seeds (same labelled subjects) and test volumes; weights chosen on validation Dice.",
        ))
    if "multitask" in finetune and "all" in budgets_of(finetune["multitask"]):
        claims.append(_gain_shrinks_claim(finetune, scale, evidence, min_effect, works))
    for cid, other in (("C2a", "line"), ("C2b", "slice")):
        if "multitask" not in finetune or other not in finetune:
            continue
        smallest = limited_budgets(finetune["multitask"])[0]
        v = across_settings(_per_budget(finetune, "multitask", other, not_worse, works), f"{smallest} labelled")
        claims.append(Claim(
            id=cid, statement=f"Multitask pretraining is at least as good as {ARM_NAMES[other]} pretraining "
                              f"(non-inferiority margin {DICE_SCALE * margin:.1f} Dice points).",
            paper_value="qualitative (abstract: 'can be combined in multitask learning for better representation learning')",
            paper_label="verified: arXiv abstract", measured=_measured(finetune, "multitask", other, smallest),
            verdict=v.verdict, scale=scale, evidence=list(evidence), note=v.reason,
        ))
    claims.append(Claim(
        id="C3", statement="The pretext tasks also help knee MRI classification and beat other SSL methods.",
        paper_value="knee: 80 / 800 subjects, metric unstated (third-party note, not a target)", paper_label="unverified",
        measured="not run", verdict="not tested", scale=scale,
        note="The knee data, task and protocol are not published in accessible form, and no SSL baselines are "
             "implemented here (card, section 2.5).",
    ))
    return claims


def _gain_shrinks_claim(finetune, scale: str, evidence: Sequence[str], min_effect: float, works_dice: float) -> Claim:
    """C1d: the multitask gain over scratch is larger at the smallest budget than with all labels.

    Gated like the other comparisons (:func:`works_gate`) on both arms' Dice at the smallest budget.
    """
    from reprolab.report.stats import paired_comparison, superiority

    smallest = limited_budgets(finetune["multitask"])[0]
    gains = {b: dice_units(finetune["multitask"], b)[0] - dice_units(finetune["scratch"], b)[0]
             for b in (smallest, "all")}
    cmp = paired_comparison(gains[smallest], gains["all"], binary=False,
                            groups=volume_subjects(finetune["multitask"], smallest))
    v = works_gate(superiority(cmp, min_effect, DICE_SCALE, DICE_UNIT), mean_dice(finetune["multitask"], smallest),
                   mean_dice(finetune["scratch"], smallest), works_dice, ARM_NAMES["multitask"], ARM_NAMES["scratch"])
    return Claim(
        id="C1d", statement="The gain of (multitask) pretraining over scratch is largest with few labelled subjects.",
        paper_value=NO_NUMBERS, paper_label="unverified (card's testable form)",
        measured=(f"multitask - scratch: {gains[smallest].mean():+.3f} Dice with {smallest} labelled, "
                  f"{gains['all'].mean():+.3f} with all"),
        verdict=v.verdict, scale=scale, evidence=list(evidence),
        note=v.reason + " A = the gain at the smallest budget, B = the gain with all labelled subjects, paired on "
                        "seeds and test volumes.",
    )


# --------------------------------------------------------------------------- report

CAPTIONS = {
    "subjects.png": ("F0: the middle short-axis-like slice of a few segmentation subjects after preprocessing (top) and "
                     "its labels (bottom); in the demo each subject is the template under its own deformation, contrast, "
                     "bias field and noise, cut by its own oblique planes."),
    "heatmaps.png": ("F1: held-out SAX inputs with the true (solid) and fitted predicted (dashed) intersecting lines "
                     "of the 2CH-like (red) and 4CH-like (blue) planes, and the predicted heatmaps."),
    "slice_location.png": "F2: predicted vs true relative slice location on held-out subjects (Pearson r, MAE).",
    "dice_vs_budget.png": ("F3: test Dice vs number of labelled subjects for the four initialisations (mean over seeds; "
                           "bars: min-max over seeds)."),
    "loss_curves.png": ("F4: pretext losses (train solid, validation dashed) and, at the smallest label budget, the "
                        "segmentation training loss and validation Dice (mean over seeds)."),
}


LOSS_NAMES = {"ce": "cross-entropy (as the paper)", "dice_ce": "soft Dice + cross-entropy (MONAI DiceCELoss; the paper uses "
                                                              "cross-entropy alone)"}


def _data_notes(settings: Mapping[str, Any], scale: str, finetune: Mapping[str, Mapping[str, Any]],
                pretext: Mapping[str, Mapping[str, Any]]) -> list[str]:
    data, pre = settings["data"], settings["preprocess"]
    notes = []
    if data["source"] == "demo":
        d = data["demo"]
        notes.append(
            f"Demo anatomy: nilearn's MNI152 (ICBM 2009a nonlinear symmetric) T1, grey- and white-matter templates at "
            f"{d['resolution_mm']} mm (Fonov et al. 2011). Each synthetic subject is the template scaled by 1 +- "
            f"{d['scale']} per axis and deformed by its own seeded smooth diffeomorphism (random stationary velocity "
            f"field, largest magnitude {d['deformation']['magnitude_mm']} mm, smoothness sigma "
            f"{d['deformation']['smoothness_mm']} mm, scaling and squaring with {d['deformation']['steps']} steps; "
            f"labels warped by the same map, nearest neighbour), with its own contrast (gamma in [1/"
            f"{d['intensity']['gamma']}, {d['intensity']['gamma']}]), smooth bias field (log-coefficients up to "
            f"+-{d['intensity']['bias']}) and noise (sd {d['noise']}); F0 shows a few of them. It is resliced on a stack of {d['slices']} parallel SAX-like planes perpendicular to a long axis "
            f"tilted up to {d['axis_tilt_deg']} deg from superior (offsets {d['coverage_mm']} mm from the brain centre, "
            f"in-plane rotation up to {d['inplane_deg']} deg, field of view shifted up to {d['shift_mm']} mm) and on two "
            f"long-axis planes containing that axis ({d['lax_angle_deg']} deg apart, +-{d['lax_jitter_deg']} deg), "
            f"stored with their DICOM geometry (IPP, IOP, PixelSpacing {d['acquisition']['pixel_spacing']} mm, "
            f"{d['acquisition']['rows']} x {d['acquisition']['cols']}). Subjects: {d['subjects']}.")
        notes.append("Segmentation labels: background / grey matter / white matter / other tissue from the thresholded "
                     "templates (reprolab.medical.anatomy.tissue_labels), resampled by nearest neighbour.")
    else:
        notes.append(f"Pretraining: Kaggle DSB2 cine CMR DICOM (SAX, 2CH, 4CH), patient split {data['dsb2']['split']} "
                     f"(seed {data['dsb2']['seed']}), {data['dsb2']['max_frames']} frames per SAX position. "
                     f"Segmentation: ACDC at ED and ES, training patients split {data['acdc']['split']} "
                     f"(seed {data['acdc']['seed']}), the official testing patients as the test set.")
    notes.append(f"Preprocessing: in-plane resampling to {pre['spacing_mm']} mm isotropic, {pre['size']} x {pre['size']} "
                 f"centred grid with zero padding, per-image z-score of the original intensities; heatmap sigma "
                 f"{settings['heatmap_sigma_px']} px.")
    p, f = settings["pretrain"], settings["finetune"]
    notes.append(f"Network: MONAI BasicUNet, features {settings['model']['features']}, batch norm, slice head "
                 f"(global max pool, {settings['model']['head_hidden']} hidden units, dropout "
                 f"{settings['model']['head_dropout']}). Pretraining: {p['epochs']} epochs, batch {p['batch_size']}, "
                 f"Adam lr {p['lr']} (x{p['lr_gamma']} every {p['lr_step']} epochs, starting at lr), loss alpha "
                 f"{settings['loss']['alpha']} / beta {settings['loss']['beta']}, seed {settings['pretrain_seed']}, best "
                 f"epoch by validation loss. Fine-tuning: {f['epochs']} epochs of {f['steps_per_epoch']} step(s), batch "
                 f"{f['batch_size']}, Adam lr {f['lr']}, L1 {f['l1']}, rotation +-{f['rotation_deg']} deg, loss "
                 f"{LOSS_NAMES[f['loss']]}, weights chosen by validation Dice every {f['val_every']} epoch(s); label budgets "
                 f"{f['budgets']}, seeds {settings['seeds']}.")
    return notes


def _not_reproduced(settings: Mapping[str, Any], scale: str) -> list[str]:
    items = [
        ("C3 (knee MRI classification, comparison with SimCLR, BYOL, MAE and other SSL methods): data and protocol "
         "are not available."),
        "Other backbones of the official code (ResNet-UNet, AlexNet-UNet, DeepLabV3) are not run.",
    ]
    if settings["data"]["source"] == "demo":
        items.insert(0, (
            "The cardiac claim itself: the demo replaces cine CMR (DSB2 pretraining, ACDC RV / MYO / LV segmentation) "
            "by a brain template resliced on synthetic anatomy-oriented planes, with tissue segmentation as the target "
            "task. It tests the machinery (exact plane geometry, targets, transfer) and whether the pretext tasks help "
            "a different anatomy with few labels; it cannot test cardiac segmentation, where the lines cross the left "
            "ventricle's long axis and so point at the structures being segmented. The paper scale runs DSB2 and "
            "ACDC (config/papers/planes.yaml, scales.paper) once both are downloaded with an account."))
        items.insert(1, (
            "Training length: the demo trains for a few hundred updates on a CPU (a small U-Net on 48 x 48 images), "
            "against 500 epochs of a 64-1024 U-Net on 224 x 224 images in the paper; every arm gets the same "
            "number of updates at every budget."))
    return items


def write_report(pretext_paths: Sequence[str], history_paths: Sequence[str], finetune_paths: Sequence[str],
                 figure_paths: Sequence[str], data_paths: Sequence[str], settings: Mapping[str, Any],
                 global_settings: Mapping[str, Any], out_html: str, out_claims: str) -> None:
    """The ``planes_report`` rule."""
    scale = global_settings["scale"]
    pretext, finetune = by_arm(pretext_paths), by_arm(finetune_paths)
    class_names = next(iter(finetune.values()))["classes"]
    claims = claims_from(finetune, settings, scale, sorted(finetune_paths))
    tables = [dice_table(finetune, class_names), pretext_table(pretext)]
    surface = surface_table(finetune, class_names)
    if surface is not None:
        tables.append(surface)
    figures = [Figure(p, CAPTIONS.get(Path(p).name, "")) for p in figure_paths]
    provenance = collect_provenance({**global_settings, "papers": {"planes": dict(settings)}},
                                    {Path(p).name: p for p in data_paths}, benchmark_dir="benchmarks/planes")
    build_report(META, scale, claims, figures, tables, _data_notes(settings, scale, finetune, pretext),
                 _not_reproduced(settings, scale) + _why_no_gain(claims, settings), provenance, out_html, out_claims)


def _why_no_gain(claims: Sequence[Claim], settings: Mapping[str, Any]) -> list[str]:
    """When multitask pretraining does not beat scratch at the smallest budget, say so with the measurement."""
    c1c = next((c for c in claims if c.id == "C1c"), None)
    if c1c is None or c1c.verdict == "supported":
        return []
    text = (f"Multitask pretraining did not beat training from scratch beyond the paired noise at the smallest "
            f"label budget ({c1c.verdict}): {c1c.measured}; {c1c.note}")
    if settings["data"]["source"] == "demo":
        text += (" On this demo the target is tissue classification on T1, which depends on intensity and local "
                 "context that a network from scratch learns from one labelled subject within the same number of "
                 "updates, while the pretext tasks teach the global orientation and level of a slice; in the "
                 "cardiac data the intersecting lines run through the left ventricle, the structure being segmented. "
                 "This is a reading of the measurement, not a tested explanation.")
    return [text]
