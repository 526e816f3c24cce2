"""Figures, claims and report of the ``planes`` DAG, from the JSON files its runs wrote."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reprolab.core.io import read_json
from reprolab.report import (
    PaperMeta,
    Table,
    figure,
    save_figure,
)
from reprolab.report.figures import PALETTE

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
                 finetune_paths: Sequence[str], out: Mapping[str, str]) -> None:
    """The ``planes_figures`` rule: F1 heatmaps, F2 slice scatter, F3 Dice vs budget, F4 loss curves."""
    pretext, finetune = by_arm(pretext_paths), by_arm(finetune_paths)
    examples = {Path(p).parent.name: dict(np.load(p)) for p in example_paths}
    _heatmaps({a: examples[a] for a in pretext if pretext[a]["heat_trained"] and a in examples}, out["heatmaps"])
    _slice_scatter({a: r for a, r in pretext.items() if r["slice_trained"]}, out["slices"])
    _dice_vs_budget(finetune, out["budget"])
    _curves(by_arm(history_paths), finetune, out["curves"])


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
