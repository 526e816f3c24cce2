"""Classification metrics and a daily long/short backtest of movement predictions.

Metrics follow StockNet (Xu & Cohen 2018, ``src/metrics.py``): accuracy and the Matthews
correlation coefficient. MCC is undefined when a model predicts one class only; it is reported
as 0 and flagged (card Sec. 7).

The backtest takes the return each position earns as an input, so the same rule runs under
two fills (:data:`FILLS`): ``next_open`` (a decision taken at a close with the posts published
up to that close is executed at the next open and held to the following open: realistic) and
``same_close`` (executed at the decision's own close and held close to close: optimistic, as it
trades at a price that was already known when the last post used was read).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Fills of the backtest: the realistic one first. Each names the samples field with its returns.
FILLS: dict[str, str] = {"next_open": "next_open_return", "same_close": "next_return"}


def mcc_from_counts(tp: np.ndarray, tn: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Matthews correlation coefficient from confusion counts (vectorised; 0 where undefined)."""
    tp, tn, fp, fn = (np.asarray(v, dtype=np.float64) for v in (tp, tn, fp, fn))
    den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return np.where(den > 0, (tp * tn - fp * fn) / np.where(den > 0, den, 1.0), 0.0)


def classification_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """Accuracy, MCC, confusion matrix ``[[tn, fp], [fn, tp]]`` and a one-class flag."""
    y, pred = np.asarray(y).astype(int), np.asarray(pred).astype(int)
    tp, tn = int(((pred == 1) & (y == 1)).sum()), int(((pred == 0) & (y == 0)).sum())
    fp, fn = int(((pred == 1) & (y == 0)).sum()), int(((pred == 0) & (y == 1)).sum())
    one_class = len(np.unique(pred)) < 2
    return {
        "accuracy": float((tp + tn) / max(len(y), 1)),
        "mcc": float(mcc_from_counts(tp, tn, fp, fn)),
        "confusion": [[tn, fp], [fn, tp]],
        "n": len(y),
        "one_class": bool(one_class),
        "predicted_up": float(pred.mean()) if len(pred) else float("nan"),
    }


def backtest(
    dates: np.ndarray,
    stock: np.ndarray,
    returns: np.ndarray,
    pred: np.ndarray,
    cost_bps: float,
    mode: str = "long_short",
) -> dict[str, Any]:
    """Daily equal-weight portfolio that follows the predictions, with proportional costs.

    On each trading day (the day after the anchor), every stock with a prediction is held long
    (predicted up) or short (predicted down; flat in ``long_only`` mode) and earns ``returns``
    (close to close for the ``same_close`` fill, open to open for ``next_open``). The day's
    return is the mean over those stocks of ``position x return``; costs of ``cost_bps`` basis
    points are charged on the mean absolute change of position (turnover), including the opening
    trades. A stock whose return is NaN (no later price to exit at) is not traded that day.

    Parameters
    ----------
    dates
        ``[N]`` trading day of each prediction (``datetime64[D]`` or int days).
    stock, returns, pred
        ``[N]`` stock index, the return the position earns, predicted class (0 / 1).

    Returns
    -------
    dict
        ``days``, ``daily_return``, ``equity`` (cumulative, starting at 1 before the first day),
        ``cumulative_return``, ``trades`` (position changes), ``hit_rate`` (fraction of non-flat
        positions with the sign of the return), ``sharpe`` (annualised, 252 days), ``untraded``
        (predictions without a return).
    """
    if mode not in ("long_short", "long_only"):
        raise ValueError(f"papers.mman.backtest.mode {mode!r}: use long_short or long_only")
    returns = np.asarray(returns, dtype=np.float64)
    filled = ~np.isnan(returns)
    day_values, day = np.unique(np.asarray(dates).astype(np.int64), return_inverse=True)
    stocks, s = np.unique(stock, return_inverse=True)
    day, s, returns, pred = day[filled], s[filled], returns[filled], np.asarray(pred)[filled]
    pos = np.where(pred == 1, 1.0, -1.0 if mode == "long_short" else 0.0)
    grid = np.zeros((len(day_values), len(stocks)))
    active = np.zeros_like(grid, dtype=bool)
    grid[day, s] = pos
    active[day, s] = True
    ret = np.zeros_like(grid)
    ret[day, s] = returns
    n_active = np.maximum(active.sum(1), 1)
    gross = (grid * ret).sum(1) / n_active
    prev = np.vstack([np.zeros((1, grid.shape[1])), grid[:-1]])
    turnover = np.abs(grid - prev).sum(1) / n_active
    daily = gross - cost_bps * 1e-4 * turnover
    equity = np.cumprod(1 + daily)
    nonflat = active & (grid != 0)
    hits = (np.sign(ret) == np.sign(grid)) & nonflat
    std = daily.std(ddof=1) if len(daily) > 1 else 0.0
    return {
        "days": day_values.astype("datetime64[D]").astype(str).tolist(),
        "daily_return": daily.tolist(),
        "equity": equity.tolist(),
        "cumulative_return": float(equity[-1] - 1) if len(equity) else 0.0,
        "trades": int((np.abs(grid - prev) > 0).sum()),
        "hit_rate": float(hits.sum() / max(nonflat.sum(), 1)),
        "sharpe": float(np.sqrt(252) * daily.mean() / std) if std > 0 else 0.0,
        "untraded": int((~filled).sum()),
        "cost_bps": cost_bps,
        "mode": mode,
    }
