"""Figures, claims and report of the ``tet`` DAG, from the JSON files its runs wrote."""

from __future__ import annotations

import math
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
from reprolab.report.stats import mean_std as _mean_std
from reprolab.report.stats import noise_level
from reprolab.report.stats import verdict as _verdict

META = PaperMeta(
    id="tet",
    title="Temporal Efficient Training of Spiking Neural Network via Gradient Re-weighting",
    citation="Deng, Li, Zhang, Gu. ICLR 2022",
    arxiv="2202.11946",
    code="Gus-Lab/temporal_efficient_training",
    summary=(
        "Standard direct training (SDT) backpropagates the cross-entropy of the time-averaged output; TET "
        "gives every time step its own cross-entropy (plus an MSE regulariser towards phi). Both arms are "
        "trained here on the same data, network, seeds and schedule."
    ),
)

#: The paper's numbers as the card records them, with the card's labels.
PAPER_C1 = ("DVS-CIFAR10, VGGSNN, T=10: TET 83.17 +- 0.15 with event augmentation, 77.33 +- 0.21 without; "
            "abstract: '83% top-1 accuracy, over 10% improvement'")
PAPER_C1_LABEL = "verified: arXiv abstract (83 %); table values unverified (card, from memory)"
ARM_NAMES = {"sdt": "SDT", "tet": "TET"}


def group_runs(paths: list[str]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``{experiment: {arm: [record per seed]}}`` from eval.json or history.json paths."""
    return _group_runs(paths, "arm")


def _pct(mean: float, std: float, n: int) -> str:
    return f"{100 * mean:.1f} %" + (f" +- {100 * std:.1f}" if n > 1 else "")


def scalability_drop(run: dict[str, Any]) -> float:
    """Mean accuracy lost when testing at every other inference T (claim C2)."""
    others = [acc for T, acc in run["by_T"].items() if int(T) != run["T_train"]]
    return float(run["accuracy"] - np.mean(others)) if others else 0.0


def make_figures(history_paths: list[str], eval_paths: list[str], tit_paths: list[str], out: dict[str, str]) -> None:
    """Training curves, temporal scalability, per-step accuracy and time inheritance training."""
    histories, evals = group_runs(history_paths), group_runs(eval_paths)
    exps = sorted(evals)
    _curves(histories, exps, out["curves"])
    _by_T(evals, exps, out["scalability"])
    _per_step(evals, exps, out["per_step"])
    _tit(tit_runs(tit_paths, histories), out["tit"])


def tit_runs(tit_paths: list[str], histories: dict) -> dict[str, dict[str, Any]]:
    """Per experiment: the small-T run, the inherited run and the from-scratch TET run of the same seed."""
    out: dict[str, dict[str, Any]] = {}
    for p in tit_paths:
        exp, stage = Path(p).parts[-4], Path(p).parts[-2].split("_s")[0]
        rec = read_json(p)
        out.setdefault(exp, {})[stage] = rec
    for exp, runs in out.items():
        runs["scratch"] = next(h for h in histories[exp]["tet"] if h["seed"] == runs["inherit"]["seed"])
    return out


def _tit(runs: dict[str, dict[str, Any]], path: str) -> None:
    fig, axes = figure(ncols=max(1, len(runs)))
    if not runs:
        axes[0, 0].text(0.5, 0.5, "time inheritance training is disabled in the config", ha="center", va="center")
        axes[0, 0].set_axis_off()
    for col, (exp, r) in enumerate(sorted(runs.items())):
        ax = axes[0, col]
        for key, label, colour in (("scratch", f"from scratch at T={r['scratch']['T']}", PALETTE[1]),
                                   ("inherit", f"inherited from T={r['small']['T']}", PALETTE[2])):
            acc = [100 * e["test_accuracy"] for e in r[key]["epochs"]]
            ax.plot(range(1, len(acc) + 1), acc, marker="o", ms=3, color=colour, label=label)
        ax.set(xlabel=f"epochs at T={r['scratch']['T']}", ylabel="test accuracy (%)",
               title=f"{exp}: time inheritance ({len(r['small']['epochs'])} epochs at T={r['small']['T']} first)")
        ax.legend()
    save_figure(fig, path)


def tit_claim(runs: dict[str, dict[str, Any]], summary: dict, scale: str, evidence: list[str]) -> list[Claim]:
    """Claim C3: the inherited run reaches the from-scratch accuracy in fewer epochs and less time."""
    claims = []
    for exp, r in sorted(runs.items()):
        scratch = [e["test_accuracy"] for e in r["scratch"]["epochs"]]
        inherit = [e["test_accuracy"] for e in r["inherit"]["epochs"]]
        target = scratch[-1]
        # one standard error of the test accuracy (test-set size of this experiment)
        tol = noise_level(target, summary[exp]["tet"]["n_test"], 1) / (2 * math.sqrt(2))
        reached = next((i + 1 for i, a in enumerate(inherit) if a >= target - tol), None)
        small_s = sum(e["seconds"] for e in r["small"]["epochs"])
        scratch_s = sum(e["seconds"] for e in r["scratch"]["epochs"])
        if reached is None:
            verdict, measured = "not supported", (
                f"inherited run ended at {100 * inherit[-1]:.1f} % after {len(inherit)} epochs; from scratch "
                f"{100 * target:.1f} % after {len(scratch)} epochs")
        else:
            inherit_s = small_s + sum(e["seconds"] for e in r["inherit"]["epochs"][:reached])
            fewer = reached < len(scratch) and inherit_s < scratch_s
            verdict = "supported" if fewer else "not supported"
            measured = (f"inherited run reached {100 * target:.1f} % (-{100 * tol:.1f}) after {reached} epoch(s) at "
                        f"T={r['scratch']['T']} ({inherit_s:.0f} s including {len(r['small']['epochs'])} epochs at "
                        f"T={r['small']['T']}); from scratch: {len(scratch)} epochs, {scratch_s:.0f} s")
        claims.append(Claim(
            id="C3", statement=f"Time inheritance training: starting a T={r['scratch']['T']} run from T={r['small']['T']} TET weights reaches the from-scratch accuracy in fewer epochs ({exp}).",
            paper_value="qualitative (abstract: 'induces a temporal inheritable training for acceleration')",
            paper_label="verified: arXiv abstract", measured=measured, verdict=verdict, scale=scale,
            evidence=evidence, note="One seed (the first); times are wall-clock seconds of the training jobs on this machine.",
        ))
    return claims


def _arm_colour(arm: str) -> str:
    return PALETTE[list(ARM_NAMES).index(arm) % len(PALETTE)]


def _curves(histories: dict, exps: list[str], path: str) -> None:
    fig, axes = figure(ncols=2, nrows=len(exps))
    for row, exp in enumerate(exps):
        for arm, runs in sorted(histories[exp].items()):
            epochs = [r["epoch"] for r in runs[0]["epochs"]]
            test = np.array([[r["test_accuracy"] for r in run["epochs"]] for run in runs]) * 100
            loss = np.array([[r["train_loss"] for r in run["epochs"]] for run in runs])
            for ax, values in ((axes[row, 0], test), (axes[row, 1], loss)):
                ax.plot(epochs, values.mean(0), color=_arm_colour(arm), label=ARM_NAMES[arm])
                if len(runs) > 1:
                    ax.fill_between(epochs, values.min(0), values.max(0), color=_arm_colour(arm), alpha=0.2)
        axes[row, 0].set(xlabel="epoch", ylabel="test accuracy (%)", title=f"{exp}: test accuracy")
        axes[row, 1].set(xlabel="epoch", ylabel="training loss (own objective)", title=f"{exp}: training loss")
        axes[row, 0].legend()
    save_figure(fig, path)


def _by_T(evals: dict, exps: list[str], path: str) -> None:
    fig, axes = figure(ncols=len(exps))
    for col, exp in enumerate(exps):
        ax = axes[0, col]
        for arm, runs in sorted(evals[exp].items()):
            Ts = sorted(int(T) for T in runs[0]["by_T"])
            acc = np.array([[run["by_T"][str(T)] for T in Ts] for run in runs]) * 100
            ax.plot(Ts, acc.mean(0), marker="o", ms=3, color=_arm_colour(arm), label=ARM_NAMES[arm])
            if len(runs) > 1:
                ax.fill_between(Ts, acc.min(0), acc.max(0), color=_arm_colour(arm), alpha=0.2)
        ax.axvline(runs[0]["T_train"], color="grey", ls="--", lw=0.8, label="training T")
        ax.set(xlabel="inference time steps T", ylabel="test accuracy (%)", title=f"{exp}: temporal scalability")
        ax.legend()
    save_figure(fig, path)


def _per_step(evals: dict, exps: list[str], path: str) -> None:
    fig, axes = figure(ncols=len(exps))
    for col, exp in enumerate(exps):
        ax = axes[0, col]
        for arm, runs in sorted(evals[exp].items()):
            acc = np.array([run["per_step_accuracy"] for run in runs]) * 100
            ax.plot(np.arange(1, acc.shape[1] + 1), acc.mean(0), marker="o", ms=3, color=_arm_colour(arm),
                    label=ARM_NAMES[arm])
        ax.set(xlabel="time step t", ylabel="accuracy of O(t) alone (%)", title=f"{exp}: per-step accuracy")
        ax.legend()
    save_figure(fig, path)


def summarise(evals: dict, histories: dict) -> dict[str, dict[str, dict[str, Any]]]:
    """Per experiment and arm: accuracy, spread, scalability drop, best epoch, throughput."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for exp, arms in evals.items():
        out[exp] = {}
        for arm, runs in arms.items():
            acc_m, acc_s = _mean_std([r["accuracy"] for r in runs])
            drop_m, drop_s = _mean_std([scalability_drop(r) for r in runs])
            hist = histories[exp][arm]
            best = [max(e["test_accuracy"] for e in h["epochs"]) for h in hist]
            sps = [np.mean([e["samples_per_second"] for e in h["epochs"]]) for h in hist]
            out[exp][arm] = {
                "n_seeds": len(runs), "n_test": runs[0]["n_test"], "T": runs[0]["T_train"],
                "accuracy": acc_m, "accuracy_std": acc_s, "drop": drop_m, "drop_std": drop_s,
                "best_epoch_accuracy": float(np.mean(best)), "samples_per_second": float(np.mean(sps)),
                "device": hist[0].get("device", "?"), "epochs": len(hist[0]["epochs"]),
            }
    return out


def claims_from(summary: dict, scale: str, evidence: list[str]) -> list[Claim]:
    """Claims C1-C4 of the card, measured on every experiment that ran both arms."""
    claims: list[Claim] = []
    for exp, arms in sorted(summary.items()):
        if not {"sdt", "tet"} <= set(arms):
            continue
        sdt, tet = arms["sdt"], arms["tet"]
        n = sdt["n_seeds"]
        diff = tet["accuracy"] - sdt["accuracy"]
        noise = noise_level((tet["accuracy"] + sdt["accuracy"]) / 2, sdt["n_test"], n,
                            max(sdt["accuracy_std"], tet["accuracy_std"]))
        claims.append(Claim(
            id="C1", statement=f"TET gives higher test accuracy than SDT with the same network, data and schedule ({exp}, T={sdt['T']}).",
            paper_value=PAPER_C1, paper_label=PAPER_C1_LABEL,
            measured=(f"SDT {_pct(sdt['accuracy'], sdt['accuracy_std'], n)}, TET {_pct(tet['accuracy'], tet['accuracy_std'], n)}"
                      f" (difference {100 * diff:+.1f} points; {n} seed(s), {sdt['n_test']} test samples)"),
            verdict=_verdict(diff, noise), scale=scale, evidence=evidence,
            note=f"A difference below {100 * noise:.1f} points (two standard errors from test-set size and seeds) is called inconclusive. Final epoch, no selection on the test set.",
        ))
        ddiff = sdt["drop"] - tet["drop"]
        dnoise = noise_level((tet["accuracy"] + sdt["accuracy"]) / 2, sdt["n_test"], n,
                             max(sdt["drop_std"], tet["drop_std"]))
        claims.append(Claim(
            id="C2", statement=f"A TET network degrades less than SDT when tested at T other than its training T ({exp}).",
            paper_value="qualitative (abstract: 'TET improves the temporal scalability of SNN')",
            paper_label="verified: arXiv abstract",
            measured=(f"mean accuracy lost away from T={sdt['T']}: SDT {100 * sdt['drop']:.1f} points, "
                      f"TET {100 * tet['drop']:.1f} points"),
            verdict=_verdict(ddiff, dnoise), scale=scale, evidence=evidence,
            note="Drop = accuracy at the training T minus the mean accuracy over the other evaluated T (frames re-binned to T).",
        ))
    claims.append(Claim(
        id="C4", statement="The TET minimum is flatter (loss along random filter-normalised directions).",
        paper_value="qualitative (Sec. 4 of the paper)", paper_label="unverified", measured="not run",
        verdict="not tested", scale=scale, note="Optional in the card; the loss-landscape scan is not implemented.",
    ))
    return claims


def results_table(summary: dict) -> Table:
    rows = []
    for exp, arms in sorted(summary.items()):
        for arm, s in sorted(arms.items()):
            rows.append([exp, ARM_NAMES[arm], s["T"], s["n_seeds"], s["epochs"],
                         _pct(s["accuracy"], s["accuracy_std"], s["n_seeds"]),
                         f"{100 * s['best_epoch_accuracy']:.1f} %", f"{100 * s['drop']:.1f}",
                         f"{s['samples_per_second']:.0f} ({s['device']})"])
    return Table(
        title="Measured accuracy per arm",
        columns=["experiment", "arm", "T", "seeds", "epochs", "test accuracy, final epoch", "best epoch (secondary)",
                 "scalability drop (points)", "training samples/s"],
        rows=rows,
        note=("Primary number: final epoch. 'Best epoch' selects on the test set, as the official code does; it is "
              "shown only for comparison with such numbers."),
    )


def write_report(history_paths: list[str], eval_paths: list[str], tit_paths: list[str], figure_paths: list[str],
                 data_paths: list[str],
                 settings: dict[str, Any], global_settings: dict[str, Any], out_html: str, out_claims: str) -> None:
    """The ``tet_report`` rule."""
    scale = global_settings["scale"]
    evals, histories = group_runs(eval_paths), group_runs(history_paths)
    summary = summarise(evals, histories)
    claims = claims_from(summary, scale, sorted(eval_paths))
    tit = tit_runs(tit_paths, histories)
    claims[2:2] = tit_claim(tit, summary, scale, sorted(tit_paths)) or [Claim(
        id="C3", statement="Time inheritance training reaches the from-scratch accuracy in fewer epochs.",
        paper_value="qualitative (abstract)", paper_label="verified: arXiv abstract", measured="not run",
        verdict="not tested", scale=scale, note="Disabled in config/papers/tet.yaml (experiments.<name>.tit.enabled).")]
    captions = {
        "training_curves.png": "Test accuracy (left) and training loss (right) over epochs, SDT vs TET, mean over seeds (band: min-max).",
        "temporal_scalability.png": "Temporal scalability: accuracy of networks trained at the dashed T, tested with the recordings re-binned into T frames.",
        "per_step_accuracy.png": "Accuracy of each time step's output O(t) alone (a project diagnostic, not a figure of the paper).",
        "time_inheritance.png": "Time inheritance training: test accuracy per epoch at the training T, from scratch vs started from the weights of a TET run at a small T.",
    }
    figures = [Figure(p, captions.get(Path(p).name, "")) for p in figure_paths]
    data_notes = []
    for exp_name, exp in settings["experiments"].items():
        data_notes.append(
            f"{exp_name}: dataset {exp['dataset']}, T={exp['T']}, frames {exp.get('frames', {})}, model {exp['model']}, "
            f"optimiser {exp['optim']}, augmentation {exp.get('augment', {})}, seeds {settings['seeds']}, "
            f"loss lambda={settings['loss']['lambda']} phi={settings['loss']['phi']}."
        )
    if scale != "paper":
        data_notes.append(
            "N-MNIST demo subset: the first 1,000 training and first 100 test recordings of the official release "
            "(CC BY-SA 4.0, Orchard et al. 2015), frames of equal event count as in TET's CIFAR10-DVS preprocessing. "
            "The network is a reduced VGGSNN (fewer blocks and channels)."
        )
    not_reproduced = [
        "CIFAR10-DVS (VGGSNN, T=10), CIFAR-10/100 (ResNet-19) and ImageNet: the paper's datasets are not available "
        "offline on the demo machine. CIFAR10-DVS and CIFAR-10 are configured under scale: paper "
        "(config/papers/tet.yaml) and run with the same rules on a GPU cluster." if scale != "paper" else
        "ImageNet (Spiking-/SEW-ResNet-34) is not configured.",
        "The 83 % CIFAR10-DVS number used event augmentation (NDA, arXiv:2203.06145) that is not implemented here.",
        "C4 (loss flatness along random filter-normalised directions) is not run.",
    ]
    data_files = {Path(p).name: p for p in data_paths}
    provenance = collect_provenance({**global_settings, "papers": {"tet": settings}}, data_files,
                                    benchmark_dir="benchmarks/tet", extra_benchmark_dirs=["benchmarks/data"])
    build_report(META, scale, claims, figures, [results_table(summary)], data_notes, not_reproduced, provenance,
                 out_html, out_claims)
