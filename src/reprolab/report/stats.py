"""The one statistics layer behind every claims table: paired comparisons and verdicts.

Every paper's claims go through these functions, so that "supported", "not supported",
"inconclusive" and "setting-dependent" mean the same thing in every report.

Noise model
-----------
Two arms are usually evaluated on *one* test set (the same samples, subjects, patients or
days), each trained with several seeds. The difference of their mean scores then has two
sources of noise, and :func:`paired_comparison` estimates both from the per-unit results:

- **test-set sampling**: which units happened to be in the test set. It is shared by all
  seeds, so it is *not* divided by the number of seeds; pairing on units removes what the
  two arms have in common (McNemar's idea for accuracies);
- **training variability**: how much the difference moves from seed to seed on the fixed
  test set.

With the per-seed, per-unit differences ``d[s, i]`` laid out as a two-way table
(seeds x units), the variance of the mean difference is estimated from the two-way ANOVA
mean squares, ``Var = (MS_seed + MS_unit - MS_residual) / (S n)`` (an unbiased estimate of
``sigma_seed^2 / S + sigma_unit^2 / n + sigma_residual^2 / (S n)``). The seed term is kept
only when a preliminary F test (``MS_seed / MS_residual``) exceeds its 75th percentile and
is otherwise pooled into the residual ("sometimes pool", :data:`POOL_ALPHA`), and only with
at least :data:`MIN_SEEDS` seeds per arm: with one or two seeds training variability has at
most one degree of freedom, which would make the interval a lottery, so the comparison is
conditional on the trained networks and its description says so. The interval is Student-t
with Satterthwaite's degrees of freedom.

For 0/1 outcomes the variance never falls below the Agresti-Min variance of the pooled
paired table (half a count added to each cell; Agresti & Min, Biometrics 61:515, 2005), so
two arms at 0 % or 100 % still carry the noise of ``n`` test samples. Metrics that are not
means over units (macro-F1, MCC) go through :func:`metric_comparison`, which resamples units
(or groups of units such as patients or trading days) with a vectorised bootstrap.

Verdicts
--------
:func:`superiority`, :func:`equivalence` and :func:`non_inferiority` turn an interval into a
:class:`Verdict`; each can come out inconclusive, and when the interval at this scale is too
wide for "supported" ever to be reached, the reason says so. Equivalence and non-inferiority
read the same two-sided 95 % interval, i.e. two one-sided tests at 2.5 % each (stricter than
the common 90 % TOST interval); read margins accordingly. :func:`above_chance` and
:func:`significance` cover one-arm and test-statistic claims, :func:`require` makes a verdict
on preconditions (an equivalence of two arms at chance is not a reproduction; a failed
precondition never hides a "not supported"), and :func:`across_settings` reports a claim
judged at a pre-registered setting together with every other configured setting
("setting-dependent" when two of them conflict).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as _st

from reprolab.core.io import read_json
from reprolab.report.claims import VERDICTS

#: Confidence level of every interval in the claims tables.
LEVEL = 0.95


# --------------------------------------------------------------------------------------
# Small summaries
# --------------------------------------------------------------------------------------


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), (float(arr.std(ddof=1)) if len(arr) > 1 else 0.0)


def wilson_interval(successes: float, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of a proportion (never of zero width, also at 0 % and 100 %).

    Parameters
    ----------
    successes
        Number of successes (may be fractional, e.g. a mean over seeds times ``n``).
    n
        Number of trials.
    level
        Confidence level.
    """
    if n <= 0:
        return 0.0, 1.0
    z = _st.norm.ppf(0.5 + level / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def group_runs(paths: list[str], key: str) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``{experiment: {record[key]: [record per seed]}}`` from ``results/<id>/<experiment>/<run>/<file>.json``."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for p in sorted(paths):
        rec = read_json(p)
        out[Path(p).parts[-3]][rec[key]].append(rec)
    return out


# --------------------------------------------------------------------------------------
# Per-unit results in evaluation files
# --------------------------------------------------------------------------------------


def per_sample(predictions: Sequence[int] | np.ndarray, targets: Sequence[int] | np.ndarray) -> dict[str, list[int]]:
    """The per-sample fields every evaluation JSON carries, so that reports can pair arms.

    Returns
    -------
    dict
        ``{"predictions": [...], "targets": [...]}`` in the test set's fixed order.
    """
    p, t = np.asarray(predictions).astype(int).ravel(), np.asarray(targets).astype(int).ravel()
    if p.shape != t.shape:
        raise ValueError(f"{p.size} predictions for {t.size} targets")
    return {"predictions": p.tolist(), "targets": t.tolist()}


def stack_runs(records: Sequence[Mapping[str, Any]], field: str = "predictions",
               targets_field: str = "targets") -> tuple[np.ndarray, np.ndarray]:
    """Stack one per-unit field of several seeds' records into ``[n_seeds, n_units]``.

    Every record must list the same targets in the same order (one test set): otherwise the
    arms cannot be paired, and this raises naming the field.

    Returns
    -------
    values, targets
        ``[n_seeds, n_units]`` array of ``field`` and the ``[n_units]`` targets.
    """
    if not records:
        raise ValueError("no records to stack")
    missing = [i for i, r in enumerate(records) if field not in r or targets_field not in r]
    if missing:
        raise ValueError(f"records {missing} have no {field!r}/{targets_field!r}: rerun their evaluation "
                         "(evaluation files must store per-unit results)")
    targets = np.asarray(records[0][targets_field])
    for r in records[1:]:
        if not np.array_equal(np.asarray(r[targets_field]), targets):
            raise ValueError(f"records disagree on {targets_field!r}: they were not evaluated on one test set "
                             "in one order, so they cannot be paired")
    return np.stack([np.asarray(r[field]) for r in records]), targets


def correctness(records: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """``[n_seeds, n_samples]`` 0/1 correctness from records written with :func:`per_sample`."""
    preds, targets = stack_runs(records)
    return (preds == targets[None, :]).astype(float)


# --------------------------------------------------------------------------------------
# Comparisons
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """The difference A - B (claim direction positive) with its interval.

    Attributes
    ----------
    estimate
        Mean of A minus mean of B.
    low, high
        Two-sided interval at ``level``.
    se
        Standard error of ``estimate``.
    df
        Degrees of freedom of the Student-t interval (``inf`` for a normal one).
    n_units
        Units (test samples, subjects, ...) or groups of units the test-set noise came from.
    n_seeds
        Seeds of A and of B.
    seeds_known
        Whether training variability entered the noise (it needs at least two seeds per arm).
    method
        One line saying how the interval was computed.
    level
        Confidence level.
    units, seeds
        What the columns and rows are called in the report (default ``units`` / ``seeds``; e.g.
        ``draws`` / ``subjects`` when the repeated dimension is not a training seed).
    """

    estimate: float
    low: float
    high: float
    se: float
    df: float
    n_units: int
    n_seeds: tuple[int, int]
    seeds_known: bool
    method: str
    level: float = LEVEL
    units: str = "units"
    seeds: str = "seeds"

    @property
    def half_width(self) -> float:
        """Half the interval's width."""
        return (self.high - self.low) / 2

    @property
    def p_value(self) -> float:
        """Two-sided p-value of a zero difference (from the same t statistic)."""
        if self.se <= 0:
            return 0.0 if self.estimate != 0 else 1.0
        return float(2 * _st.t.sf(abs(self.estimate) / self.se, self.df))

    @classmethod
    def from_interval(cls, estimate: float, low: float, high: float, method: str, n_units: int = 0,
                      n_seeds: tuple[int, int] = (1, 1), level: float = LEVEL, units: str = "units",
                      seeds: str = "seeds") -> Comparison:
        """Wrap an interval computed elsewhere (a bootstrap of a correlation, ...) for the verdicts."""
        z = _st.norm.ppf(0.5 + level / 2)
        return cls(estimate=float(estimate), low=float(low), high=float(high), se=(high - low) / (2 * z),
                   df=math.inf, n_units=n_units, n_seeds=n_seeds, seeds_known=min(n_seeds) > 1,
                   method=method, level=level, units=units, seeds=seeds)

    def describe(self, scale: float = 100.0, unit: str = " points", digits: int = 1) -> str:
        """``+1.2 points (95 % CI -0.3 to +2.7; 100 units, 3 + 3 seeds; ...)``."""
        f = f"{{:+.{digits}f}}"
        one = self.seeds.removesuffix("s")
        seeds = f"{self.n_seeds[0]} + {self.n_seeds[1]} {self.seeds}" if self.n_seeds[0] != self.n_seeds[1] \
            else f"{self.n_seeds[0]} {self.seeds if self.n_seeds[0] != 1 else one} per arm"
        what = "training variability" if self.seeds == "seeds" else f"variability across {self.seeds}"
        count = self.n_seeds[0] if self.n_seeds[0] == self.n_seeds[1] else min(self.n_seeds)
        these = f"this one {one}" if count == 1 else f"these {count} {self.seeds}"
        caveat = "" if self.seeds_known else (
            f"; conditional on {these}: {what} needs at least {MIN_SEEDS} {self.seeds} to be estimated")
        if np.isfinite(self.df) and self.df < 30:
            caveat += f"; t with {self.df:.1f} df"
        return (f"{f.format(scale * self.estimate)}{unit} ({round(100 * self.level)} % CI "
                f"{f.format(scale * self.low)} to {f.format(scale * self.high)}; {self.n_units} {self.units}, "
                f"{seeds}; {self.method}{caveat})")


def _as_table(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"{name} must be [n_seeds, n_units] (or [n_units]); got shape {np.shape(x)}")
    return arr


#: With fewer seeds per arm than this, training variability is not estimated: the comparison is
#: conditional on the trained networks (one or two seeds give at most one degree of freedom for it,
#: and a 1-df term makes the interval a lottery), and its description says so.
MIN_SEEDS = 3
#: Level of the preliminary F test that keeps a seed term in the variance ("sometimes pool":
#: Bozivich, Bancroft & Hartley, Ann. Math. Stat. 27:1017, 1956); below it the seed term is pooled.
POOL_ALPHA = 0.25


def _seed_term(seed_var: float, resid_var: float, n_seeds: int, resid_df: float) -> tuple[float, list[tuple[float, float]], str]:
    """Variance that training seeds add to a mean difference, its Satterthwaite terms, and a note.

    Parameters
    ----------
    seed_var
        Variance of the per-seed differences divided by the number of seeds.
    resid_var
        What ``seed_var`` is expected to be without any seed effect (the seed x unit
        interaction, already inside the test-set term).
    n_seeds
        Seeds per arm.
    resid_df
        Degrees of freedom of ``resid_var``.
    """
    if n_seeds < MIN_SEEDS:
        return 0.0, [], ""
    ratio = seed_var / resid_var if resid_var > 0 else math.inf
    keep = seed_var > resid_var and ratio > _st.f.ppf(1 - POOL_ALPHA, n_seeds - 1, max(resid_df, 1))
    if not keep:
        return 0.0, [], f"seed term pooled (F = {ratio:.2f})"
    return seed_var - resid_var, [(seed_var, n_seeds - 1), (resid_var, resid_df)], f"seed term kept (F = {ratio:.2f})"


def _satterthwaite(terms: Sequence[tuple[float, float]], total: float | None = None) -> float:
    """Satterthwaite's degrees of freedom of a combination of independent variance terms.

    ``terms`` are ``(|coefficient x mean square|, df)``; ``total`` is the combination's value
    (default: the sum of the terms).
    """
    total = sum(v for v, _ in terms) if total is None else total
    used = [(v, df) for v, df in terms if df > 0 and np.isfinite(df) and v > 0]
    denom = sum(v * v / df for v, df in used)
    if total <= 0 or denom <= 0:
        return math.inf
    return max(total * total / denom, 1.0)


def _cluster_var(values: np.ndarray, groups: np.ndarray | None) -> tuple[float, int]:
    """Variance of the mean of ``values`` over units, clustered by ``groups``; and the number of clusters."""
    n = len(values)
    if groups is None:
        return (float(values.var(ddof=1)) / n if n > 1 else 0.0), n
    _, idx = np.unique(np.asarray(groups), return_inverse=True)
    g = int(idx.max()) + 1
    sums = np.bincount(idx, weights=values - values.mean(), minlength=g)
    return (float(g / (g - 1) * (sums ** 2).sum() / n ** 2) if g > 1 else 0.0), g


def _group_means(values: np.ndarray, groups: Any) -> np.ndarray:
    """Mean of ``values`` in each group."""
    _, idx = np.unique(np.asarray(groups), return_inverse=True)
    return np.bincount(idx, weights=values) / np.bincount(idx)


def _pseudo_count_var(per_unit: np.ndarray) -> float:
    """Variance of a mean paired difference of 0/1 outcomes with Agresti-Min pseudo-counts.

    Half a unit is added to each cell of the paired 2 x 2 table (differences +1, -1, 0, 0),
    so the variance of ``n`` units is never zero, even when both arms are at 0 % or 100 %.
    ``per_unit`` holds the seed-averaged difference of each unit.
    """
    values = np.concatenate([per_unit, [1.0, -1.0, 0.0, 0.0]])
    weights = np.concatenate([np.ones(len(per_unit)), np.full(4, 0.5)])
    total = weights.sum()
    mean = float((weights * values).sum() / total)
    return float((weights * (values - mean) ** 2).sum() / (total - 1) / total)


def _interval(estimate: float, var: float, df: float, level: float) -> tuple[float, float, float]:
    se = math.sqrt(max(var, 0.0))
    crit = float(_st.t.ppf(0.5 + level / 2, df)) if np.isfinite(df) else float(_st.norm.ppf(0.5 + level / 2))
    return se, estimate - crit * se, estimate + crit * se


def paired_comparison(a: Any, b: Any, binary: bool | None = None, groups: Any = None,
                      pair_seeds: bool | None = None, level: float = LEVEL, units: str = "units",
                      seeds: str = "seeds") -> Comparison:
    """Compare per-unit scores of two arms evaluated on the same units.

    Parameters
    ----------
    a, b
        ``[n_seeds, n_units]`` (or ``[n_units]`` for one seed): a score per unit, e.g. 0/1
        correctness per test sample, Dice per subject, return per day. Column ``i`` of both
        is the same unit. ``a - b`` is the claim's direction.
    binary
        Whether scores are 0/1 outcomes (then the Agresti-Min floor applies); inferred when
        ``None``.
    groups
        Optional ``[n_units]`` cluster labels (patient, trading day): units of one group are
        not independent, so test-set noise is estimated over groups.
    pair_seeds
        Whether row ``s`` of ``a`` and of ``b`` share a seed (paired training runs). Default:
        when both have the same number of seeds.
    level
        Confidence level of the interval.
    units, seeds
        Names of the columns and rows in the report's wording.

    Returns
    -------
    Comparison
        The mean difference and its interval (see the module docstring for the model).
    """
    a, b = _as_table(a, "a"), _as_table(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"arms are not paired: {a.shape[1]} units in a, {b.shape[1]} in b")
    if binary is None:
        binary = bool(np.isin(a, (0.0, 1.0)).all() and np.isin(b, (0.0, 1.0)).all())
    n, (sa, sb) = a.shape[1], (a.shape[0], b.shape[0])
    pair_seeds = (sa == sb) if pair_seeds is None else pair_seeds
    if pair_seeds and sa != sb:
        raise ValueError(f"pair_seeds needs as many seeds in a as in b ({sa} vs {sb})")
    per_unit = a.mean(0) - b.mean(0)
    estimate = float(per_unit.mean())
    unit_var, n_units = _cluster_var(per_unit, groups)
    terms: list[tuple[float, float]] = [(unit_var, n_units - 1)]
    seeds_known = min(sa, sb) >= MIN_SEEDS
    var, seed_note = unit_var, ""
    if pair_seeds and seeds_known:
        d = a - b
        resid = d - d.mean(1, keepdims=True) - d.mean(0, keepdims=True) + d.mean()
        ms_res = float((resid ** 2).sum()) / ((sa - 1) * (n - 1)) if n > 1 else 0.0
        extra, seed_terms, seed_note = _seed_term(float(d.mean(1).var(ddof=1)) / sa, ms_res / (sa * n), sa,
                                                  (sa - 1) * (n - 1))
        var, terms = unit_var + extra, terms + seed_terms
    elif seeds_known:  # unpaired seeds: each arm's seed spread (conservative: it also holds the interaction)
        seed_terms = [(float(x.mean(1).var(ddof=1)) / len(x), len(x) - 1) for x in (a, b)]
        var, terms = unit_var + sum(v for v, _ in seed_terms), terms + seed_terms
    df = _satterthwaite(terms, var)
    if binary:  # the floor counts clusters, not units, when units are grouped
        var = max(var, _pseudo_count_var(per_unit if groups is None else _group_means(per_unit, groups)))
    se, low, high = _interval(estimate, var, df, level)
    method = (f"paired over {units}" + (" (clustered by group)" if groups is not None else "")
              + (f" and {seeds}" if pair_seeds and seeds_known else "")
              + ", two-way variance" + (f", {seed_note}" if seed_note else "") + ", Satterthwaite t"
              + (", Agresti-Min floor" if binary else ""))
    return Comparison(estimate=estimate, low=low, high=high, se=se, df=df, n_units=n_units, n_seeds=(sa, sb),
                      seeds_known=seeds_known, method=method, level=level, units=units, seeds=seeds)


# Metrics computed from confusion matrices ``[..., K, K]`` (rows: truth, columns: prediction),
# so that a whole bootstrap is one matrix product.

def accuracy_from_confusion(conf: np.ndarray) -> np.ndarray:
    """Accuracy of each confusion matrix in ``conf [..., K, K]``."""
    total = conf.sum((-2, -1))
    return np.divide(np.trace(conf, axis1=-2, axis2=-1), total, out=np.zeros_like(total, dtype=float),
                     where=total > 0)


def macro_f1_from_confusion(conf: np.ndarray) -> np.ndarray:
    """Macro-averaged F1 over the classes present in the truth or the predictions (as scikit-learn)."""
    tp = np.diagonal(conf, axis1=-2, axis2=-1)
    support, predicted = conf.sum(-1), conf.sum(-2)
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(denom, dtype=float), where=denom > 0)
    present = denom > 0
    return np.divide((f1 * present).sum(-1), present.sum(-1), out=np.zeros(f1.shape[:-1]),
                     where=present.sum(-1) > 0)


def mcc_from_confusion(conf: np.ndarray) -> np.ndarray:
    """Matthews correlation coefficient (multi-class, Gorodkin's R_K) of each confusion matrix."""
    t, p = conf.sum(-1), conf.sum(-2)
    c, s = np.trace(conf, axis1=-2, axis2=-1), conf.sum((-2, -1))
    num = c * s - (t * p).sum(-1)
    den = np.sqrt((s ** 2 - (p ** 2).sum(-1)) * (s ** 2 - (t ** 2).sum(-1)))
    return np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den > 0)


METRICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "accuracy": accuracy_from_confusion, "macro_f1": macro_f1_from_confusion, "mcc": mcc_from_confusion}


def _confusions(y: np.ndarray, preds: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """``[B, n_seeds, K, K]`` confusion matrices of every seed under every weight vector ``[B, n]``."""
    onehot = np.zeros((preds.shape[0], preds.shape[1], k * k))
    cells = y[None, :] * k + preds
    np.put_along_axis(onehot, cells[..., None], 1.0, axis=2)
    return np.einsum("bn,snc->bsc", weights, onehot).reshape(weights.shape[0], preds.shape[0], k, k)


def metric_comparison(y_true: Any, pred_a: Any, pred_b: Any, metric: str | Callable[[np.ndarray], np.ndarray],
                      groups: Any = None, n_boot: int = 2000, seed: int = 0, level: float = LEVEL,
                      n_classes: int | None = None) -> Comparison:
    """Compare a metric that is not a mean over units (macro-F1, MCC) between two arms.

    Test-set noise comes from a bootstrap over units (or over ``groups`` of units, e.g.
    patients or trading days), using the same resample for both arms and every seed;
    training variability from the spread of the per-seed differences, as in
    :func:`paired_comparison`.

    Parameters
    ----------
    y_true
        ``[n_units]`` integer classes.
    pred_a, pred_b
        ``[n_seeds, n_units]`` (or ``[n_units]``) predicted classes of arms A and B.
    metric
        ``"accuracy"``, ``"macro_f1"``, ``"mcc"`` or a function of confusion matrices
        ``[..., K, K] -> [...]``.
    groups
        Optional ``[n_units]`` group labels resampled as blocks.
    n_boot
        Bootstrap resamples.
    seed
        Seed of the resampling.
    level
        Confidence level.
    n_classes
        Number of classes (default: from the data).

    Returns
    -------
    Comparison
        Mean over seeds of A's metric minus B's, with its interval.
    """
    fn = METRICS[metric] if isinstance(metric, str) else metric
    y = np.asarray(y_true).astype(int).ravel()
    a, b = _as_table(pred_a, "pred_a").astype(int), _as_table(pred_b, "pred_b").astype(int)
    if not (a.shape[1] == b.shape[1] == y.size):
        raise ValueError(f"arms and truth are not paired: {a.shape[1]}, {b.shape[1]} predictions, {y.size} targets")
    k = n_classes or int(max(y.max(), a.max(), b.max())) + 1
    n, (sa, sb) = y.size, (a.shape[0], b.shape[0])
    ones = np.ones((1, n))
    ma, mb = fn(_confusions(y, a, ones, k))[0], fn(_confusions(y, b, ones, k))[0]
    estimate = float(ma.mean() - mb.mean())
    rng = np.random.default_rng(seed)
    if groups is None:
        weights, n_units = rng.multinomial(n, np.full(n, 1 / n), size=n_boot).astype(float), n
    else:
        _, idx = np.unique(np.asarray(groups), return_inverse=True)
        n_units = int(idx.max()) + 1
        weights = rng.multinomial(n_units, np.full(n_units, 1 / n_units), size=n_boot).astype(float)[:, idx]
    boot_a, boot_b = fn(_confusions(y, a, weights, k)), fn(_confusions(y, b, weights, k))  # [B, seeds]
    boot = boot_a.mean(1) - boot_b.mean(1)
    unit_var = float(boot.var(ddof=1))
    terms: list[tuple[float, float]] = [(unit_var, n_units - 1)]
    seeds_known = min(sa, sb) >= MIN_SEEDS
    var, seed_note = unit_var, ""
    if seeds_known and sa == sb:
        # Per-seed differences vary with training and with the seed x unit interaction; the
        # bootstrap variance of each seed's deviation from the seed mean estimates the latter
        # (as MS_res does in paired_comparison), without the units' common effect.
        deviation = (boot_a - boot_b) - boot[:, None]
        interaction = float(deviation.var(0, ddof=1).mean()) * sa / (sa - 1)
        extra, seed_terms, seed_note = _seed_term(float((ma - mb).var(ddof=1)) / sa, interaction / sa, sa,
                                                  n_units - 1)
        var, terms = unit_var + extra, terms + seed_terms
    elif seeds_known:
        seed_terms = [(float(m.var(ddof=1)) / len(m), len(m) - 1) for m in (ma, mb)]
        var, terms = unit_var + sum(v for v, _ in seed_terms), terms + seed_terms
    df = _satterthwaite(terms, var)
    # Floor: the Agresti-Min standard error of a paired table with no discordant unit.
    var = max(var, (1.0 / (n_units + 2)) ** 2)
    se, low, high = _interval(estimate, var, df, level)
    name = metric if isinstance(metric, str) else getattr(metric, "__name__", "metric")
    method = (f"{name}: bootstrap over {'groups' if groups is not None else 'units'} ({n_boot} resamples, paired)"
              + (f" + seed spread, {seed_note}" if seed_note else "") + ", Satterthwaite t")
    return Comparison(estimate=estimate, low=low, high=high, se=se, df=df, n_units=n_units, n_seeds=(sa, sb),
                      seeds_known=seeds_known, method=method, level=level)


# --------------------------------------------------------------------------------------
# Verdicts
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """A claim's verdict and the sentence that justifies it."""

    verdict: str
    reason: str

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {VERDICTS}")


def _pts(x: float, scale: float, unit: str) -> str:
    return f"{scale * x:.{1 if scale != 1 else 3}f}{unit}"


def superiority(cmp: Comparison, min_effect: float = 0.0, scale: float = 100.0, unit: str = " points") -> Verdict:
    """Claim "A is better than B" (by at least ``min_effect``, the smallest effect of interest).

    Supported when the interval lies above zero and the estimate reaches ``min_effect``; not
    supported when the whole interval lies below ``min_effect`` (the claimed gain is ruled out,
    or A is worse); inconclusive otherwise. With ``min_effect = 0`` a null effect can only be
    inconclusive ("not supported" then needs A measurably worse), and the reason says so.
    """
    text = cmp.describe(scale, unit)
    bound = _pts(min_effect, scale, unit)
    if cmp.low > 0 and cmp.estimate >= min_effect:
        extra = f" and the estimate reaches the smallest effect of interest ({bound})" if min_effect > 0 else ""
        return Verdict("supported", f"A - B = {text}: the interval lies above 0{extra}.")
    if cmp.high < min_effect:
        what = f"the smallest effect of interest ({bound})" if min_effect > 0 else "0"
        return Verdict("not supported", f"A - B = {text}: the interval lies below {what}.")
    if cmp.low > 0:
        return Verdict("inconclusive", f"A - B = {text}: above 0, but the estimate is below the smallest effect of "
                                       f"interest ({bound}) and the interval does not rule it out.")
    note = (" With no smallest effect of interest, 'not supported' would need A measurably worse than B."
            if min_effect <= 0 else _null_reach(cmp, min_effect, scale, unit))
    return Verdict("inconclusive", f"A - B = {text}: the interval contains 0.{note}")


def _null_reach(cmp: Comparison, min_effect: float, scale: float, unit: str) -> str:
    """Says so when a null effect cannot come out "not supported" at this scale: that needs an
    interval around 0 narrower than ``min_effect``, i.e. a half-width below it."""
    if cmp.half_width < min_effect:
        return ""
    return (f" At this scale the half-width ({_pts(cmp.half_width, scale, unit)}) is at least the smallest effect of "
            f"interest ({_pts(min_effect, scale, unit)}): a null effect cannot come out 'not supported' here; more "
            "test units (or training runs) are needed.")


def equivalence(cmp: Comparison, margin: float, scale: float = 100.0, unit: str = " points") -> Verdict:
    """Claim "A is as good as B" within +-``margin`` (two one-sided tests on the interval).

    Supported when the interval lies inside (-margin, margin); not supported when it lies
    wholly outside; inconclusive otherwise. When the interval is wider than the margin,
    "supported" cannot be reached at this scale, and the reason says so.
    """
    text = cmp.describe(scale, unit)
    m = _pts(margin, scale, unit)
    if -margin < cmp.low and cmp.high < margin:
        return Verdict("supported", f"A - B = {text}: the interval lies within +-{m}.")
    if cmp.low > margin or cmp.high < -margin:
        return Verdict("not supported", f"A - B = {text}: the interval lies outside +-{m}.")
    reason = f"A - B = {text}: the interval crosses the margin +-{m}."
    if cmp.half_width >= margin:
        reason += (f" At this scale the interval's half-width ({_pts(cmp.half_width, scale, unit)}) is at least the "
                   "margin, so 'supported' cannot be reached: more test units or seeds are needed.")
    return Verdict("inconclusive", reason)


def non_inferiority(cmp: Comparison, margin: float, scale: float = 100.0, unit: str = " points") -> Verdict:
    """Claim "A is not worse than B by more than ``margin``".

    Supported when the interval lies above ``-margin``; not supported when it lies below it;
    inconclusive otherwise.
    """
    text = cmp.describe(scale, unit)
    m = _pts(margin, scale, unit)
    if cmp.low > -margin:
        return Verdict("supported", f"A - B = {text}: the interval lies above -{m}.")
    if cmp.high < -margin:
        return Verdict("not supported", f"A - B = {text}: A is worse by more than {m}.")
    reason = f"A - B = {text}: the interval crosses -{m}."
    if cmp.half_width >= margin:
        reason += (f" At this scale the half-width ({_pts(cmp.half_width, scale, unit)}) is at least the margin: "
                   "'supported' needs A to be measurably better than B.")
    return Verdict("inconclusive", reason)


def above_chance(correct: Any, chance: float, level: float = LEVEL, label: str = "accuracy") -> Verdict:
    """Is an accuracy above chance? Wilson interval over the test units (seeds averaged, not pooled as units).

    Parameters
    ----------
    correct
        ``[n_seeds, n_units]`` (or ``[n_units]``) 0/1 correctness on one test set.
    chance
        Chance level (e.g. 1 / number of classes, or the majority-class rate).
    """
    c = _as_table(correct, "correct")
    n = c.shape[1]
    acc = float(c.mean())
    low, high = wilson_interval(acc * n, n, level)
    text = (f"{label} {100 * acc:.1f} % ({round(100 * level)} % Wilson interval {100 * low:.1f}-{100 * high:.1f} %, "
            f"{n} units, {c.shape[0]} seed(s)) vs chance {100 * chance:.1f} %")
    if low > chance:
        return Verdict("supported", f"{text}: above chance.")
    if high < chance:
        return Verdict("not supported", f"{text}: below chance.")
    return Verdict("inconclusive", f"{text}: not distinguishable from chance.")


def significance(p_value: float, direction_ok: bool, alpha: float = 0.05, smallest_p: float = 0.0,
                 test: str = "test") -> Verdict:
    """Verdict from a hypothesis test whose null is "no effect".

    Supported when ``p < alpha`` in the claimed direction; not supported when ``p < alpha`` in
    the opposite direction; otherwise inconclusive (a test of a null cannot show an effect
    absent). When the smallest p-value the test can produce at this scale (``smallest_p``,
    e.g. ``1 / (permutations + 1)`` or an exact test's minimum) is not below ``alpha``, the
    claim is untestable here and the reason says so.
    """
    if smallest_p >= alpha:
        return Verdict("inconclusive", f"{test}: the smallest p-value it can reach at this scale is {smallest_p:.3g}, "
                                       f"not below alpha = {alpha:g}, so the claim cannot be tested here.")
    text = f"{test}: p = {p_value:.3g} (alpha {alpha:g})"
    if not np.isfinite(p_value):
        return Verdict("inconclusive", f"{test}: no p-value (too few data).")
    if p_value < alpha:
        return Verdict("supported" if direction_ok else "not supported",
                       f"{text}, {'in' if direction_ok else 'against'} the claimed direction.")
    return Verdict("inconclusive", f"{text}: not significant.")


def require(verdict: Verdict, **preconditions: Verdict) -> Verdict:
    """``verdict``, but "supported" only if every precondition is supported.

    Example: an equivalence of two accuracies counts only if both arms are above chance. A
    failed precondition never hides a "not supported" (the claimed arm collapsing is the most
    important failure); it turns a "supported" into "inconclusive".
    """
    failed = {name: v for name, v in preconditions.items() if v.verdict != "supported"}
    if not failed:
        return verdict
    why = "; ".join(f"{name}: {v.reason}" for name, v in failed.items())
    if verdict.verdict != "supported":
        return Verdict(verdict.verdict, f"{verdict.reason} (A precondition does not hold either: {why})")
    return Verdict("inconclusive", f"Not judged (supported on its own): a precondition does not hold. {why}")


def all_of(parts: Mapping[str, Verdict]) -> Verdict:
    """A claim made of several parts: supported when every part is, not supported when any part is not."""
    kinds = {v.verdict for v in parts.values()}
    reasons = " ".join(f"[{name}] {v.reason}" for name, v in parts.items())
    if kinds == {"supported"}:
        return Verdict("supported", reasons)
    return Verdict("not supported" if "not supported" in kinds else "inconclusive", reasons)


def across_settings(by_setting: Mapping[str, Verdict], chosen: str) -> Verdict:
    """A claim judged at the pre-registered setting ``chosen``, read against every other setting.

    The verdict is the one at ``chosen`` unless two configured settings (the chosen one or
    any others) give opposite conclusive verdicts (supported vs not supported): then the
    claim is ``setting-dependent``.
    """
    if chosen not in by_setting:
        raise ValueError(f"chosen setting {chosen!r} is not among {sorted(by_setting)}")
    main = by_setting[chosen]
    others = {s: v.verdict for s, v in by_setting.items() if s != chosen}
    listing = ", ".join(f"{s}: {v}" for s, v in others.items()) or "none"
    supported = sorted(s for s, v in by_setting.items() if v.verdict == "supported")
    contradicted = sorted(s for s, v in by_setting.items() if v.verdict == "not supported")
    if supported and contradicted:
        return Verdict("setting-dependent",
                       f"At the pre-registered setting {chosen}: {main.verdict} ({main.reason}) Supported at "
                       f"{', '.join(supported)} but not supported at {', '.join(contradicted)}. "
                       f"Other settings: {listing}.")
    return Verdict(main.verdict, f"At the pre-registered setting {chosen}: {main.reason} Other settings: {listing}.")
