"""Energy of dynamic vs static functional connectivity, features and behaviour prediction.

Deng, Li, Yeo, Gu, Commun. Biol. 5:295 (2022), arXiv:2201.02340; the lab's code
(brain-intelligence-lab/functional_controllability) was read to pin down the protocol:

- Sampling (``pipelineCompareStaticDynamicEnergy.m``): one random draw per call, shared by
  all subjects: start ``s = randi(floor(F / 2.5))``, windows ``M = randi(floor((F - s - w) / w))``,
  final ``s + w M``, horizon ``T = randi(6000) / 10``, window hold time ``T / M``. States are
  the z-scored frames at start and final; static FC spans frames ``s..s+wM``, window ``m``
  spans ``s+w(m-1)..s+wm`` (MATLAB ranges include both ends: ``w + 1`` frames).
- Order control (``dynamicMiniEnergyDisruptOrder.m``): the windows (each with its own
  propagator and Gramian) are permuted at random and the energy recomputed.
- Features (``Measurements/``): average / modal controllability of ``A + I``, regional
  activation energy, node strength, local efficiency, participation coefficient, on FC and
  on MVAR(1) coefficient matrices (``ar_mls.m``).
- Prediction (``Prediction/kernel_ridge_predict*.py``): kernel ridge regression with a cosine
  kernel, 10-fold cross-validated predictions, Pearson r per behaviour, the best over feature
  variants, and a one-sided paired t-test over behaviours. The alpha grid is searched by
  nested cross-validation (the original passes the list to ``KernelRidge``, which current
  scikit-learn rejects).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np
from scipy import stats

from reprolab.core.errors import ConfigError, DataError
from reprolab.core.io import atomic_path, read_json, write_json
from reprolab.data.hcp import read_timeseries
from reprolab.netsci import control as ctl

logger = logging.getLogger("reprolab.netsci.energy")

CONTROL_ITEMS = ("AC", "MC", "EV")
GRAPH_ITEMS = ("strength", "efficiency", "pcoef")
MATRIX_TYPES = ("FC", "AR")


# =========================================================================== sampling


@dataclass(frozen=True)
class DrawPlan:
    """Random draws of the energy comparison, shared by every subject.

    Attributes
    ----------
    window
        Frames per window ``w``.
    start
        First frame of each draw, 0-based (MATLAB's ``start_point - 1``).
    n_windows
        Windows ``M`` per draw.
    horizon
        Control horizon ``T`` of the static system; each window is held ``T / M``.
    """

    window: int
    start: np.ndarray
    n_windows: np.ndarray
    horizon: np.ndarray

    @property
    def final(self) -> np.ndarray:
        """0-based frame of the target state, ``start + w M``."""
        return self.start + self.window * self.n_windows

    def __len__(self) -> int:
        return len(self.start)


def sample_draws(n_frames: int, window: int, n_draws: int, seed: int, horizon_max: float = 600.0,
                 horizon_step: float = 0.1) -> DrawPlan:
    """Draw start frames, window counts and horizons as ``pipelineCompareStaticDynamicEnergy.m``.

    MATLAB's ``randi(n)`` is uniform on ``1..n``: ``s = randi(floor(F/2.5))``,
    ``M = randi(floor((F - s - w)/w))``, ``T = randi(6000)/10`` (``horizon_max / horizon_step``
    steps of ``horizon_step``).

    Raises
    ------
    ConfigError
        If the run is too short for two windows after the latest start.
    """
    latest = int(np.floor(n_frames / 2.5))
    if (n_frames - latest - window) // window < 1:
        raise ConfigError(f"config key papers.energy.window_sizes: a window of {window} frames does not fit twice "
                          f"after the latest start ({latest}) of a {n_frames}-frame run; use windows of at most "
                          f"{(n_frames - latest) // 2} frames")
    rng = np.random.default_rng(seed)
    start1 = rng.integers(1, latest + 1, size=n_draws)
    most = (n_frames - start1 - window) // window
    n_windows = np.floor(rng.random(n_draws) * most).astype(int) + 1
    steps = round(horizon_max / horizon_step)
    horizon = rng.integers(1, steps + 1, size=n_draws) * horizon_step
    return DrawPlan(window, start1 - 1, n_windows, horizon)


def window_frames(start: int, window: int, n_windows: int) -> np.ndarray:
    """Frame indices ``[M, w + 1]`` of consecutive windows (MATLAB ranges include both ends)."""
    return start + window * np.arange(n_windows)[:, None] + np.arange(window + 1)[None, :]


# =========================================================================== connectivity variants


@dataclass(frozen=True)
class FCRule:
    """Which FC entries a system keeps.

    Attributes
    ----------
    kind
        ``p``: entries whose two-sided Pearson p-value is at most ``value`` (the paper's
        ``functional2system.m`` with 0.05); ``none``: every entry; ``density``: the strongest
        ``value`` fraction of node pairs of every matrix (equal density for a 31-frame window
        and a 1,000-frame span, unlike a p-value cut-off, which keeps |r| >= 0.355 in the first
        and about 0.07 in the second).
    value
        The p-value or the density.
    """

    kind: str
    value: float | None = None

    @classmethod
    def of(cls, spec: FCRule | float | None) -> FCRule:
        """A rule from itself, from a p-value threshold, or ``None`` (no threshold)."""
        if isinstance(spec, FCRule):
            return spec
        return cls("none") if spec is None else cls("p", float(spec))

    def apply(self, ts: np.ndarray) -> np.ndarray:
        """FC of ``ts [..., N, F]`` under this rule, ``[..., N, N]``."""
        if self.kind == "p":
            return ctl.functional_connectivity(ts, self.value)
        if self.kind == "none":
            return ctl.functional_connectivity(ts, None)
        if self.kind == "density":
            return ctl.proportional_threshold(ctl.functional_connectivity(ts, None), float(self.value))
        raise ConfigError(f"FC rule {self.kind!r} is unknown; use p, none or density")

    def system(self, ts: np.ndarray) -> tuple[ctl.SymmetricSystem, np.ndarray]:
        """The system of ``ts [..., N, F]`` under this rule, and its FC edge density ``[...]``."""
        if self.kind in ("p", "none"):
            lap, density = ctl.correlation_laplacian(ts, self.value if self.kind == "p" else None)
        else:
            fc = self.apply(ts)
            lap, density = ctl.signed_laplacian(fc), ctl.edge_density(fc)
        return ctl.system_from_laplacian(lap), density

    def describe(self) -> str:
        """Short label for tables."""
        if self.kind == "none":
            return "no threshold"
        return f"p <= {self.value:g}" if self.kind == "p" else f"density {self.value:g}"


#: The columns of the energy claims: FC rule (``p`` = the configured p_threshold) and pseudo-inverse cut-off
#: (``None`` = N eps, the paper's pinv; ``robust`` = ``robust_rtol``).
VARIANTS: dict[str, tuple[str, str | None]] = {
    "paper": ("p", None),
    "strict_pinv": ("p", "robust"),
    "unthresholded": ("none", None),
    "equal_density": ("density", None),
}


def variant_rules(settings: Mapping[str, Any]) -> dict[str, FCRule]:
    """The FC rule of each kind used by :data:`VARIANTS`, from the config."""
    return {"p": FCRule.of(settings["p_threshold"]), "none": FCRule("none"),
            "density": FCRule("density", float(settings["equal_density"]))}


# =========================================================================== energies


def _window_systems(ts: np.ndarray, window: int, starts: np.ndarray, rule: FCRule
                    ) -> tuple[ctl.SymmetricSystem, np.ndarray]:
    """Systems of the windows starting at frames ``starts`` (``[..., K]``) and their FC edge densities."""
    frames = starts[:, None] + np.arange(window + 1)[None, :]
    return rule.system(np.moveaxis(ts[..., frames], -2, -3))  # windows [..., K, N, w+1]


ENERGY_KEYS = ("static", "dynamic", "rank_static", "rank_dynamic", "static_robust", "dynamic_robust",
               "density_static", "density_dynamic")


def energies_for_draws(ts: np.ndarray, nodes: Sequence[int], plan: DrawPlan, draws: np.ndarray,
                       fc: FCRule | float | None = 0.05, robust_rtol: float = 1e-8) -> dict[str, np.ndarray]:
    """Static and dynamic minimum energies of the given draws for every series.

    Windows are identified by their first frame; every window used by the given draws is
    decomposed once, so draws whose starts are congruent modulo ``w`` (which share windows)
    should be passed together, as :func:`compare_energies` does.

    Parameters
    ----------
    ts
        Z-scored time series ``[..., N, F]`` (subjects, or subjects x surrogates).
    nodes
        Control nodes.
    plan
        The draws.
    draws
        Indices into ``plan`` to compute.
    fc
        Which FC entries the systems keep (:class:`FCRule`), or the p-value threshold of the
        paper (``None``: no threshold).
    robust_rtol
        A second, coarser pseudo-inverse cut-off (relative to the largest eigenvalue) for the
        sensitivity analysis: energies of numerically singular Gramians depend on which tiny
        eigenvalues ``pinv`` keeps.

    Returns
    -------
    dict
        ``static``, ``dynamic`` (the paper's ``pinv``), ``rank_static``, ``rank_dynamic``
        (eigenvalues kept), ``static_robust``, ``dynamic_robust`` (cut-off ``robust_rtol``)
        and the FC edge densities ``density_static``, ``density_dynamic`` (mean over the
        windows), each ``[len(draws), ...]``.
    """
    rule = FCRule.of(fc)
    w = plan.window
    batch = ts.shape[:-2]
    firsts = [plan.start[d] + w * np.arange(plan.n_windows[d]) for d in draws]
    starts = np.unique(np.concatenate(firsts))
    windows, win_density = _window_systems(ts, w, starts, rule)
    out = {k: np.zeros((len(draws),) + batch) for k in ENERGY_KEYS}
    tolerances = (None, robust_rtol)
    for row, d in enumerate(draws):
        start, m, horizon = int(plan.start[d]), int(plan.n_windows[d]), float(plan.horizon[d])
        final = start + w * m
        x0, xf = ts[..., start], ts[..., final]
        static, out["density_static"][row] = rule.system(ts[..., start:final + 1])
        one = ctl.SymmetricSystem(static.lam[..., None, :], static.vecs[..., None, :, :])
        w_s, drift_s = ctl.accumulate_windows(ctl.spectral_windows(one, nodes, horizon), x0)
        (out["static"][row], out["rank_static"][row]), (out["static_robust"][row], _) = \
            ctl.energies_at_tolerances(w_s, xf - drift_s, tolerances)
        idx = np.searchsorted(starts, firsts[row])
        out["density_dynamic"][row] = win_density[..., idx].mean(axis=-1)
        dyn = windows.take(idx, axis=len(batch))
        w_d, drift_d = ctl.accumulate_windows(ctl.spectral_windows(dyn, nodes, horizon / m), x0)
        (out["dynamic"][row], out["rank_dynamic"][row]), (out["dynamic_robust"][row], _) = \
            ctl.energies_at_tolerances(w_d, xf - drift_d, tolerances)
    return out


def settings_fingerprint(*parts: Any) -> str:
    """Short hash of settings and data identity, stored in checkpoints to detect stale ones."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _checkpointed(path: Path, fingerprint: str, compute: Callable[[], dict[str, np.ndarray]]
                  ) -> dict[str, np.ndarray]:
    """Load ``path`` if it was written with ``fingerprint``, else compute and save it."""
    if path.exists():
        try:
            with np.load(path) as z:
                if str(z["fingerprint"]) == fingerprint:
                    return {k: z[k] for k in z.files if k != "fingerprint"}
        except (OSError, KeyError, ValueError):
            logger.warning("%s: unreadable checkpoint, recomputing", path)
    result = compute()
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, fingerprint=fingerprint, **result)
    return result


class _Lazy:
    """A value computed on first use."""

    def __init__(self, make: Callable[[], np.ndarray]) -> None:
        self._make, self._value = make, None

    def get(self) -> np.ndarray:
        if self._value is None:
            self._value = self._make()
        return self._value


def _chunk_energies(chunk: _Lazy, nodes: Sequence[int], plan: DrawPlan, draws: np.ndarray,
                    fc: FCRule | float | None, robust_rtol: float) -> dict[str, np.ndarray]:
    return energies_for_draws(chunk.get(), nodes, plan, draws, fc, robust_rtol)


def compare_energies(ts: np.ndarray | Callable[[slice], np.ndarray], nodes: Sequence[int], plan: DrawPlan,
                     fc: FCRule | float | None, checkpoint_dir: str | Path, fingerprint: str,
                     subject_chunk: int = 50, robust_rtol: float = 1e-8, n_subjects: int | None = None,
                     tag: str = "") -> dict[str, np.ndarray]:
    """Energies of every draw and subject, resumable.

    Work is split into groups of draws sharing ``start % w`` and chunks of subjects; each
    finished piece is saved under ``checkpoint_dir``, so a killed job resumes where it
    stopped and ends with the same numbers (every draw is fixed by the plan).

    Parameters
    ----------
    ts
        ``[S, ..., N, F]``, or a function returning the series of a slice of subjects (so
        that surrogates are generated one chunk at a time); then ``n_subjects`` is needed.
    tag
        Prefix of the checkpoint files (several rules or variants may share a folder).

    Returns
    -------
    dict
        The arrays of :func:`energies_for_draws`, ``[draws, subjects, ...]``.
    """
    ckpt = Path(checkpoint_dir)
    series_of = ts if callable(ts) else (lambda sub: ts[sub])
    n_sub = n_subjects if callable(ts) else ts.shape[0]
    if n_sub is None:
        raise ValueError("n_subjects is needed when the series come from a function")
    out: dict[str, np.ndarray] = {}
    residues = plan.start % plan.window
    for lo in range(0, n_sub, subject_chunk):
        sub = slice(lo, min(lo + subject_chunk, n_sub))
        chunk = _Lazy(functools.partial(series_of, sub))  # surrogates are only made if a piece is computed
        for residue in np.unique(residues):
            draws = np.flatnonzero(residues == residue)
            compute = functools.partial(_chunk_energies, chunk, nodes, plan, draws, fc, robust_rtol)
            piece = _checkpointed(ckpt / f"{tag}s{lo}_r{residue}.npz", fingerprint, compute)
            for key, values in piece.items():
                if key not in out:
                    out[key] = np.zeros((len(plan), n_sub) + values.shape[2:])
                out[key][draws, sub] = values
        logger.info("energies%s: subjects %d-%d of %d done", f" ({tag.rstrip('_')})" if tag else "", lo + 1,
                    sub.stop, n_sub)
    return out


def shuffled_energies(ts: np.ndarray, nodes: Sequence[int], plan: DrawPlan, n_shuffles: int, seed: int,
                      p_threshold: float | None = 0.05, batch: int = 20) -> dict[str, np.ndarray]:
    """Dynamic energy with the windows in their recorded order and in random orders.

    As ``dynamicMiniEnergyDisruptOrder.m``: each window keeps its own ``e^{A_m dt}`` and
    ``W_m``; only their order changes (``randperm``), which changes ``W_eff`` and ``d``.

    Returns
    -------
    dict
        ``original`` ``[D, S]`` and ``shuffled`` ``[D, S, R]``.
    """
    rng = np.random.default_rng(seed)
    n_sub = ts.shape[0]
    original = np.zeros((len(plan), n_sub))
    shuffled = np.zeros((len(plan), n_sub, n_shuffles))
    w = plan.window
    for d in range(len(plan)):
        start, m, horizon = int(plan.start[d]), int(plan.n_windows[d]), float(plan.horizon[d])
        final = start + w * m
        x0, xf = ts[:, :, start], ts[:, :, final]
        systems, _ = _window_systems(ts, w, start + w * np.arange(m), FCRule.of(p_threshold))
        win = ctl.spectral_windows(systems, nodes, horizon / m)
        w_eff, drift = ctl.accumulate_windows(win, x0)
        original[d] = ctl.minimum_energy(w_eff, xf - drift)
        orders = np.stack([rng.permutation(m) for _ in range(n_shuffles)])
        for lo in range(0, n_shuffles, batch):
            perm = orders[lo:lo + batch]  # [R', M]
            w_eff, drift = ctl.accumulate_windows(win, x0[:, None], order=perm)
            shuffled[d, :, lo:lo + len(perm)] = ctl.minimum_energy(w_eff, xf[:, None] - drift)
    return {"original": original, "shuffled": shuffled}


# =========================================================================== surrogates


def phase_randomise(ts: np.ndarray, n_surrogates: int, seed: int | Sequence[int]) -> np.ndarray:
    """Multivariate phase-randomised surrogates (Prichard & Theiler, Phys. Rev. Lett. 73:951, 1994).

    Every frequency of the Fourier transform gets one random phase shared by all regions of a
    series, so each region's power spectrum and every cross-spectrum are kept: the surrogate
    has the same autocorrelations, lagged cross-correlations and (exactly) the same static FC
    over the whole run as the data, but is stationary and Gaussian, with no dynamic
    reconfiguration beyond what sampling produces. The mean and the Nyquist term stay real, so
    z-scored series stay z-scored.

    Parameters
    ----------
    ts
        ``[..., N, F]`` series.
    n_surrogates
        Surrogates per series.
    seed
        Seed of the phases (a sequence such as ``[seed, subject]`` gives per-subject streams).

    Returns
    -------
    ndarray
        ``[..., n_surrogates, N, F]``.
    """
    ts = np.asarray(ts, dtype=float)
    n_frames = ts.shape[-1]
    spectrum = np.fft.rfft(ts, axis=-1)  # [..., N, Fr]
    rng = np.random.default_rng(seed)
    phases = rng.uniform(0.0, 2 * np.pi, size=ts.shape[:-2] + (n_surrogates, spectrum.shape[-1]))
    phases[..., 0] = 0.0
    if n_frames % 2 == 0:
        phases[..., -1] = 0.0
    rotated = spectrum[..., None, :, :] * np.exp(1j * phases)[..., :, None, :]
    return np.fft.irfft(rotated, n=n_frames, axis=-1)


def with_surrogates(ts: np.ndarray, n_surrogates: int, seed: int, data: bool = True
                    ) -> Callable[[slice], np.ndarray]:
    """Series of a slice of subjects: the data first (unless ``data`` is false), then its surrogates.

    Subject ``i``'s phases come from the stream ``[seed, i]``, so any chunking of the subjects
    gives the same surrogates.

    Returns
    -------
    callable
        ``slice -> [s, 1 + K, N, F]`` (``[s, K, N, F]`` without the data).
    """
    def series(sub: slice) -> np.ndarray:
        idx = range(*sub.indices(ts.shape[0]))
        return np.stack([np.concatenate(([ts[i][None]] if data else []) + [phase_randomise(ts[i], n_surrogates,
                                                                                          [seed, i])])
                         for i in idx])

    return series


# --------------------------------------------------------------------------- summaries


def two_way_median_ci(values: np.ndarray, n_boot: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of the pooled median, resampling draws (rows) and subjects (columns) independently.

    Every subject shares a draw's random start, windows and horizon, and every draw is taken
    from the same subjects: draws and subjects are crossed random factors, so both are
    resampled (a bootstrap of draws alone treats the subjects as fixed).
    """
    rng = np.random.default_rng(seed)
    n_d, n_s = values.shape
    rows = rng.integers(0, n_d, size=(n_boot, n_d))
    cols = rng.integers(0, n_s, size=(n_boot, n_s))
    meds = np.array([np.median(values[r][:, c]) for r, c in zip(rows, cols)])
    lo, hi = np.quantile(meds, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def summarise_ratio(static: np.ndarray, dynamic: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:
    """Distribution of ``E_dynamic / E_static`` over draws x subjects.

    Returns
    -------
    dict
        Median ratio with its two-way bootstrap CI (draws and subjects resampled) and
        quartiles, the median reduction ``1 - ratio``, the share of pairs with ``E_d < E_s``,
        per-subject medians, and the per-unit log ratios ``log_ratio [subjects, draws]``
        (natural log) that the report pairs with the surrogates'.
    """
    ratio = dynamic / static
    lo, hi = two_way_median_ci(ratio, n_boot, seed)
    q25, q50, q75 = np.quantile(ratio, [0.25, 0.5, 0.75])
    return {
        "n_draws": int(ratio.shape[0]), "n_subjects": int(ratio.shape[1]),
        "median_ratio": float(q50), "ratio_q25": float(q25), "ratio_q75": float(q75),
        "median_ratio_ci95": [lo, hi], "median_reduction": float(1 - q50),
        "median_reduction_ci95": [float(1 - hi), float(1 - lo)],
        "fraction_dynamic_lower": float(np.mean(dynamic < static)),
        "per_subject_median_ratio": np.median(ratio, axis=0).tolist(),
        "geometric_mean_ratio": float(np.exp(np.mean(np.log(ratio)))),
        "log_ratio": np.log(ratio).T.tolist(),
    }


def summarise_shuffle(original: np.ndarray, shuffled: np.ndarray, n_windows: np.ndarray) -> dict[str, Any]:
    """Does the recorded window order need less energy than shuffled orders?

    Uses draws with at least three windows (two windows have one alternative order). Per
    (draw, subject): ``ln(median E_shuffled / E_recorded)`` (positive: the recorded order is
    cheaper), stored as ``[subjects, draws]`` for the report's two-way paired comparison
    (subjects and draws are crossed, neither is independent of the other). As a secondary,
    robust statistic: a one-sided Wilcoxon signed-rank test over draws of the per-draw median
    over subjects (draws are independent random draws; the subjects are then held fixed).
    """
    keep = n_windows >= 3
    if not keep.any():
        return {"n_pairs": 0, "note": "no draw had three or more windows"}
    orig, shuf = original[keep], shuffled[keep]
    gain = np.log(np.median(shuf, axis=-1) / orig)  # [D', S]
    above = np.mean(shuf > orig[..., None], axis=-1)
    per_draw = np.median(gain, axis=1)
    p = (float(stats.wilcoxon(per_draw, alternative="greater").pvalue)
         if per_draw.size >= 5 and np.any(per_draw != 0) else float("nan"))
    return {
        "n_pairs": int(gain.size), "n_draws": int(keep.sum()), "n_subjects": int(gain.shape[1]),
        "n_shuffles": int(shuffled.shape[-1]),
        "median_log10_ratio": float(np.median(-gain) / np.log(10)),
        "fraction_original_lower": float(np.mean(gain > 0)),
        "median_share_of_shuffles_higher": float(np.median(above)),
        "per_draw_wilcoxon_p_greater": p,
        "per_draw_fraction_original_lower": float(np.mean(per_draw > 0)),
        "log_gain": gain.T.tolist(),
        "log_shuffled": np.log(np.median(shuf, axis=-1)).T.tolist(),
        "log_recorded": np.log(orig).T.tolist(),
    }


def summarise_surrogates(res: Mapping[str, np.ndarray], rtol_key: str | None) -> dict[str, Any]:
    """Real vs surrogate energy ratios of one variant, per unit (subject x draw).

    Parameters
    ----------
    res
        Arrays of :func:`compare_energies` on ``[data, surrogate 1..K]`` series, each
        ``[draws, subjects, 1 + K]``.
    rtol_key
        ``None`` for the paper's pseudo-inverse, ``"robust"`` for the stricter one.

    Returns
    -------
    dict
        Medians of the real and the surrogate ratio, the mean edge densities, and the per-unit
        natural-log ratios ``real_log_ratio`` and ``surrogate_log_ratio`` (mean over
        surrogates), each ``[subjects, draws]``.
    """
    suffix = "_robust" if rtol_key == "robust" else ""
    ratio = res[f"dynamic{suffix}"] / res[f"static{suffix}"]  # [D, S, 1 + K]
    log_ratio = np.log(ratio)
    real, surrogate = log_ratio[..., 0], log_ratio[..., 1:].mean(axis=-1)
    return {
        "median_ratio": float(np.median(ratio[..., 0])),
        "surrogate_median_ratio": float(np.median(ratio[..., 1:])),
        "density_static": float(res["density_static"][..., 0].mean()),
        "density_dynamic": float(res["density_dynamic"][..., 0].mean()),
        "surrogate_density_dynamic": float(res["density_dynamic"][..., 1:].mean()),
        "real_log_ratio": real.T.tolist(),
        "surrogate_log_ratio": surrogate.T.tolist(),
    }


def _load_inputs(timeseries_path: str | Path) -> tuple[np.ndarray, list[int], dict[str, Any]]:
    data = read_timeseries(timeseries_path)
    return data["ts"].astype(float), data["control_nodes"], data


def _plan(settings: Mapping[str, Any], n_frames: int, window: int) -> DrawPlan:
    """The draws of one window size (the surrogate comparison uses the first ``surrogates.draws``)."""
    hz = settings["horizon"]
    return sample_draws(n_frames, window, settings["draws"], settings["seed"] + window, hz["max"], hz["step"])


def run_compare(timeseries_path: str | Path, settings: Mapping[str, Any], window: int,
                checkpoint_dir: str | Path, out_npz: str | Path, out_json: str | Path) -> None:
    """The ``energy_compare`` rule: static vs dynamic energy for one window size (the paper's method)."""
    ts, nodes, data = _load_inputs(timeseries_path)
    plan = _plan(settings, ts.shape[-1], window)
    fingerprint = settings_fingerprint(window, settings["draws"], settings["seed"], settings["horizon"],
                                       settings["p_threshold"], settings["robust_rtol"], data["subjects"], nodes,
                                       float(np.abs(ts).sum()))
    t0 = time.perf_counter()
    res = compare_energies(ts, nodes, plan, settings["p_threshold"], checkpoint_dir, fingerprint,
                           settings["subject_chunk"], settings["robust_rtol"])
    seconds = time.perf_counter() - t0
    with atomic_path(out_npz) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, start=plan.start, n_windows=plan.n_windows, horizon=plan.horizon,
                 subjects=np.asarray(data["subjects"]), **res)
    summary = summarise_ratio(res["static"], res["dynamic"], settings["bootstrap"], settings["seed"])
    robust = summarise_ratio(res["static_robust"], res["dynamic_robust"], settings["bootstrap"], settings["seed"])
    summary.update({
        "robust_rtol": settings["robust_rtol"],
        "robust": {k: robust[k] for k in ("median_ratio", "median_ratio_ci95", "ratio_q25", "ratio_q75",
                                          "fraction_dynamic_lower", "median_reduction")},
        "window": window, "subjects": data["subjects"], "control_nodes": [data["labels"][i] for i in nodes],
        "single_window_draws": int(np.sum(plan.n_windows == 1)),
        "median_rank_static": float(np.median(res["rank_static"])),
        "median_rank_dynamic": float(np.median(res["rank_dynamic"])), "n_regions": int(ts.shape[1]),
        "density_static": float(res["density_static"].mean()), "density_dynamic": float(res["density_dynamic"].mean()),
        "seconds": seconds, "seconds_per_subject_draw": seconds / max(1, res["static"].size),
    })
    write_json(out_json, summary)
    logger.info("window %d: median E_d/E_s %.3f (CI %.3f-%.3f) over %d draws x %d subjects", window,
                summary["median_ratio"], *summary["median_ratio_ci95"], len(plan), ts.shape[0])


def _data_energies(compare_npz: str | Path, plan: DrawPlan) -> dict[str, np.ndarray]:
    """The comparison's energies of the data on the first draws of its plan, ``[draws, subjects, 1]``."""
    with np.load(compare_npz) as z:
        n = len(plan)
        if not (np.array_equal(z["start"][:n], plan.start) and np.array_equal(z["horizon"][:n], plan.horizon)):
            raise DataError(f"{compare_npz}: its draws are not this plan's (settings changed?); rerun energy_compare")
        return {k: z[k][:n, :, None] for k in ENERGY_KEYS}


def run_surrogates(timeseries_path: str | Path, settings: Mapping[str, Any], window: int,
                   checkpoint_dir: str | Path, out_npz: str | Path, out_json: str | Path,
                   compare_npz: str | Path | None = None) -> None:
    """The ``energy_surrogates`` rule: the energy ratio of the data against phase-randomised surrogates.

    On the first ``surrogates.draws`` draws of the comparison's plan, every subject's series
    and ``surrogates.count`` multivariate phase-randomised surrogates of it (same static FC,
    no dynamics) go through the same static-vs-dynamic comparison, under each FC rule of
    :data:`VARIANTS` (thresholded as the paper, unthresholded, equal density) and with the
    paper's and the stricter pseudo-inverse. The data's energies under the paper's rule are
    those of the comparison (``compare_npz``, same draws), not computed twice.
    """
    ts, nodes, data = _load_inputs(timeseries_path)
    sur = settings["surrogates"]
    full = _plan(settings, ts.shape[-1], window)
    n = min(sur["draws"], len(full))
    plan = DrawPlan(window, full.start[:n], full.n_windows[:n], full.horizon[:n])
    seed = settings["seed"] + 104729 * window
    rules = variant_rules(settings)
    t0 = time.perf_counter()
    results: dict[str, dict[str, np.ndarray]] = {}
    for kind in dict.fromkeys(kind for kind, _ in VARIANTS.values()):
        reuse = compare_npz is not None and kind == "p"
        fingerprint = settings_fingerprint(window, n, settings["seed"], settings["horizon"], rules[kind],
                                           settings["robust_rtol"], sur, data["subjects"], nodes,
                                           float(np.abs(ts).sum()), reuse)
        res = compare_energies(with_surrogates(ts, sur["count"], seed, data=not reuse), nodes, plan, rules[kind],
                               checkpoint_dir, fingerprint, settings["subject_chunk"], settings["robust_rtol"],
                               ts.shape[0], tag=f"{kind}_")
        if reuse:
            own = _data_energies(compare_npz, plan)
            res = {k: np.concatenate([own[k], res[k]], axis=-1) for k in ENERGY_KEYS}
        results[kind] = res
    seconds = time.perf_counter() - t0
    arrays = {f"{kind}/{key}": value for kind, res in results.items() for key, value in res.items()}
    with atomic_path(out_npz) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, start=plan.start, n_windows=plan.n_windows, horizon=plan.horizon,
                 subjects=np.asarray(data["subjects"]), **arrays)
    variants = {name: {"fc": rules[kind].describe(), "pinv": "N eps (paper)" if tol is None
                       else f"{settings['robust_rtol']:g} x largest", **summarise_surrogates(results[kind], tol)}
                for name, (kind, tol) in VARIANTS.items()}
    write_json(out_json, {"window": window, "n_draws": n, "n_subjects": int(ts.shape[0]),
                          "n_surrogates": int(sur["count"]), "single_window_draws": int(np.sum(plan.n_windows == 1)),
                          "variants": variants, "seconds": seconds})
    logger.info("window %d: median ratio %.3f vs surrogates %.3f (%d draws x %d subjects x %d surrogates, %.0f s)",
                window, variants["paper"]["median_ratio"], variants["paper"]["surrogate_median_ratio"], n,
                ts.shape[0], sur["count"], seconds)


def run_shuffle(timeseries_path: str | Path, settings: Mapping[str, Any], window: int, out_npz: str | Path,
                out_json: str | Path) -> None:
    """The ``energy_shuffle`` rule: recorded vs shuffled window order."""
    ts, nodes, _ = _load_inputs(timeseries_path)
    hz, sh = settings["horizon"], settings["shuffle"]
    plan = sample_draws(ts.shape[-1], window, sh["draws"], settings["seed"] + 7919 * window, hz["max"], hz["step"])
    t0 = time.perf_counter()
    res = shuffled_energies(ts, nodes, plan, sh["shuffles"], settings["seed"], settings["p_threshold"])
    seconds = time.perf_counter() - t0
    with atomic_path(out_npz) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, start=plan.start, n_windows=plan.n_windows, horizon=plan.horizon, **res)
    summary = summarise_shuffle(res["original"], res["shuffled"], plan.n_windows)
    summary.update({"window": window, "seconds": seconds})
    write_json(out_json, summary)


# =========================================================================== features


def mvar1(ts: np.ndarray) -> np.ndarray:
    """MVAR(1) coefficients by least squares, ``x_t = A x_{t-1} + e_t`` (``ar_mls.m``, p = 1).

    As the lab's version, the intercept row is removed (the series are z-scored):
    ``A = Y Z^T pinv(Z Z^T)`` with ``Y = X[:, 1:]``, ``Z = X[:, :-1]``.

    Parameters
    ----------
    ts
        ``[..., N, F]`` time series.
    """
    y, z = ts[..., 1:], ts[..., :-1]
    zt = np.swapaxes(z, -1, -2)
    return (y @ zt) @ np.linalg.pinv(z @ zt)


def graph_weights(matrix: np.ndarray) -> np.ndarray:
    """Weights for graph measures: positive part, zero diagonal, scaled to at most 1.

    Local efficiency and participation are defined for non-negative weights (bctpy asks for
    weights in [0, 1]); negative correlations and the diagonal are dropped (project choice,
    stated in the report). Directed (MVAR) matrices are symmetrised first.
    """
    m = np.asarray(matrix, dtype=float)
    m = (m + np.swapaxes(m, -1, -2)) / 2
    m = np.clip(m, 0.0, None) * (1.0 - np.eye(m.shape[-1]))
    top = m.max(axis=(-1, -2), keepdims=True)
    return m / np.where(top > 1, top, 1.0)


def node_strength(W: np.ndarray) -> np.ndarray:
    """Sum of each node's edge weights."""
    return W.sum(axis=-1)


def local_efficiency(W: np.ndarray) -> np.ndarray:
    """Weighted local efficiency of every node (Wang et al. 2016; bctpy ``efficiency_wei(W, local=True)``).

    For node ``u`` with neighbours ``V``: ``E_u = sum_{i,j in V} (w_ui^{1/3} + w_iu^{1/3})
    (w_uj^{1/3} + w_ju^{1/3}) (d_ij^-1 + d_ji^-1) / 2 / ((sum a)^2 - sum a^2)``, where ``d`` are
    shortest-path lengths inside ``V`` on the cube roots of the connection lengths ``1 / w`` and
    ``a_i = A_ui + A_iu`` the symmetrised adjacency. Shortest paths: Floyd-Warshall per
    neighbourhood, compiled with numba.

    Parameters
    ----------
    W
        ``[N, N]`` non-negative weights in ``[0, 1]``, zero diagonal.
    """
    W = np.ascontiguousarray(W, dtype=float)
    return _local_efficiency_numba(W)


@numba.njit(cache=True)
def _local_efficiency_numba(W: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    n = W.shape[0]
    eff = np.zeros(n)
    for u in range(n):
        nb = np.array([v for v in range(n) if W[u, v] != 0 or W[v, u] != 0])
        k = nb.size
        if k < 2:
            continue
        dist = np.full((k, k), np.inf)
        for i in range(k):
            dist[i, i] = 0.0
            for j in range(k):
                if i != j and W[nb[i], nb[j]] != 0:
                    dist[i, j] = (1.0 / W[nb[i], nb[j]]) ** (1.0 / 3.0)
        for m in range(k):
            for i in range(k):
                dim = dist[i, m]
                if dim == np.inf:
                    continue
                for j in range(k):
                    alt = dim + dist[m, j]
                    dist[i, j] = min(dist[i, j], alt)
        numer = 0.0
        for i in range(k):
            swi = W[u, nb[i]] ** (1.0 / 3.0) + W[nb[i], u] ** (1.0 / 3.0)
            for j in range(k):
                if i == j:
                    continue
                swj = W[u, nb[j]] ** (1.0 / 3.0) + W[nb[j], u] ** (1.0 / 3.0)
                inv = (1.0 / dist[i, j] if dist[i, j] < np.inf else 0.0) + \
                    (1.0 / dist[j, i] if dist[j, i] < np.inf else 0.0)
                numer += swi * swj * inv
        numer /= 2.0
        if numer != 0.0:
            total, squares = 0.0, 0.0
            for i in range(k):
                sa = (1.0 if W[u, nb[i]] != 0 else 0.0) + (1.0 if W[nb[i], u] != 0 else 0.0)
                total += sa
                squares += sa * sa
            eff[u] = numer / (total * total - squares)
    return eff


def participation_coefficient(W: np.ndarray, communities: np.ndarray) -> np.ndarray:
    """Participation coefficient ``1 - sum_c (k_ic / k_i)^2`` (Guimera & Amaral 2005; bctpy ``participation_coef``).

    Parameters
    ----------
    W
        ``[..., N, N]`` non-negative weights.
    communities
        ``[N]`` community label of each node.
    """
    onehot = (np.asarray(communities)[:, None] == np.unique(communities)[None, :]).astype(float)
    k = W.sum(axis=-1)
    kc = W @ onehot
    with np.errstate(invalid="ignore", divide="ignore"):
        p = 1.0 - np.sum(kc**2, axis=-1) / k**2
    return np.where(k > 0, p, 0.0)


def louvain_communities(W: np.ndarray, seed: int) -> np.ndarray:
    """Community label per node by Louvain modularity maximisation (networkx), seeded."""
    import networkx as nx
    from networkx.algorithms.community import louvain_communities as louvain

    graph = nx.from_numpy_array(np.asarray(W, dtype=float))
    labels = np.zeros(W.shape[0], dtype=int)
    for c, members in enumerate(sorted(louvain(graph, weight="weight", seed=seed), key=min)):
        labels[list(members)] = c
    return labels


def connectivity_matrices(ts: np.ndarray, p_threshold: float | None) -> dict[str, np.ndarray]:
    """The two matrix types of the paper: thresholded FC and MVAR(1) coefficients, ``[S, N, N]``."""
    return {"FC": ctl.functional_connectivity(ts, p_threshold), "AR": mvar1(ts)}


def control_features(matrix: np.ndarray, ev_horizon: float) -> dict[str, np.ndarray]:
    """AC, MC and regional activation energy EV on the system built from ``matrix``.

    The system is ``functional2system`` of the (symmetrised) matrix, as
    ``regional_activation_energy.m`` does; AC and MC use ``A + I`` (``ave_control.m``,
    ``modal_control.m``).
    """
    sym = (matrix + np.swapaxes(matrix, -1, -2)) / 2
    system = ctl.system_from_fc(sym)
    a = system.matrix()
    return {"AC": ctl.average_controllability(a), "MC": ctl.modal_controllability(a),
            "EV": ctl.regional_activation_energy(system, ev_horizon)}


def graph_features(matrix: np.ndarray, communities: np.ndarray) -> dict[str, np.ndarray]:
    """Node strength, local efficiency and participation coefficient per subject ``[S, N]``."""
    w = graph_weights(matrix)
    return {"strength": node_strength(w), "efficiency": np.stack([local_efficiency(x) for x in w]),
            "pcoef": participation_coefficient(w, communities)}


def compute_features(ts: np.ndarray, p_threshold: float | None, ev_horizon: float,
                     communities: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every feature ``<item>_<matrix type>`` as ``[S, N]`` arrays."""
    out: dict[str, np.ndarray] = {}
    for mtype, mats in connectivity_matrices(ts, p_threshold).items():
        for item, values in {**control_features(mats, ev_horizon),
                             **graph_features(mats, communities[mtype])}.items():
            out[f"{item}_{mtype}"] = values
    return out


def group_communities(ts: np.ndarray, p_threshold: float | None, seed: int) -> dict[str, np.ndarray]:
    """One community partition per matrix type, from the group-mean matrix (the paper's ``Ci`` is not
    published; project choice)."""
    return {mtype: louvain_communities(graph_weights(mats.mean(axis=0)), seed)
            for mtype, mats in connectivity_matrices(ts, p_threshold).items()}


def cohort_segments(n_subjects: int, n_frames: int, size: int, segment_frames: int, seed: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Random (subject, first frame) pairs of the generated demo cohort, balanced over subjects."""
    if segment_frames > n_frames:
        raise ConfigError(f"config key papers.energy.prediction.cohort.segment_frames: {segment_frames} exceeds "
                          f"the {n_frames} frames of a run")
    rng = np.random.default_rng(seed)
    subjects = np.arange(size) % n_subjects
    starts = rng.integers(0, n_frames - segment_frames + 1, size=size)
    return subjects, starts


def run_features(timeseries_path: str | Path, settings: Mapping[str, Any], out_npz: str | Path) -> None:
    """The ``energy_features`` rule: features of every subject (and of the demo cohort)."""
    ts, _, data = _load_inputs(timeseries_path)
    feat_cfg, p = settings["features"], settings["p_threshold"]
    communities = group_communities(ts, p, settings["seed"])
    arrays: dict[str, np.ndarray] = {}
    for name, values in compute_features(ts, p, feat_cfg["ev_horizon"], communities).items():
        arrays[f"subject/{name}"] = values
    cohort = settings["prediction"].get("cohort")
    if cohort:
        subj, starts = cohort_segments(ts.shape[0], ts.shape[-1], cohort["size"], cohort["segment_frames"],
                                       settings["seed"])
        frames = starts[:, None] + np.arange(cohort["segment_frames"])[None, :]
        segs = ctl.zscore_regions(ts[subj[:, None], :, frames].transpose(0, 2, 1))
        for name, values in compute_features(segs, p, feat_cfg["ev_horizon"], communities).items():
            arrays[f"cohort/{name}"] = values
        arrays["cohort_subject"], arrays["cohort_start"] = subj, starts
    for mtype, labels in communities.items():
        arrays[f"communities/{mtype}"] = labels
    with atomic_path(out_npz) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, subjects=np.asarray(data["subjects"]), labels=np.asarray(data["labels"]), **arrays)


def read_feature_set(path: str | Path, group: str) -> dict[str, np.ndarray]:
    """Features ``<item>_<type>`` of ``group`` (``subject`` or ``cohort``) from :func:`run_features`' file."""
    with np.load(path) as z:
        prefix = f"{group}/"
        out = {k[len(prefix):]: z[k] for k in z.files if k.startswith(prefix)}
    if not out:
        raise DataError(f"{path}: no features of group {group!r}; rerun energy_features")
    return out


# =========================================================================== prediction


def zscore_columns(x: np.ndarray) -> np.ndarray:
    """Z-score every column (feature) across subjects; constant columns become 0."""
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def cosine_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``K_ij = a_i . b_j / (|a_i| |b_j|)`` (scikit-learn's ``cosine`` kernel)."""
    def unit(x: np.ndarray) -> np.ndarray:
        n = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.where(n > 0, n, 1.0)

    return unit(a) @ unit(b).T


def krr_predict_all_alphas(k_train: np.ndarray, k_test: np.ndarray, y_train: np.ndarray,
                           alphas: np.ndarray) -> np.ndarray:
    """Kernel ridge predictions for every alpha at once, ``[A, n_test, B]``.

    ``f = K_test (K_train + alpha I)^-1 y`` (no intercept, as scikit-learn's ``KernelRidge``),
    through one eigendecomposition ``K_train = Q diag(l) Q^T``.
    """
    lam, q = np.linalg.eigh((k_train + k_train.T) / 2)
    qty = q.T @ y_train  # [n, B]
    kq = k_test @ q  # [m, n]
    scaled = qty[None] / (lam[None, :, None] + alphas[:, None, None])  # [A, n, B]
    return np.einsum("mn,anb->amb", kq, scaled)


def kfold_indices(n: int, folds: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled K-fold test indices (sizes differ by at most one)."""
    if folds < 2 or folds > n:
        raise ConfigError(f"config key papers.energy.prediction: {folds} folds for {n} subjects; use 2..{n}")
    return np.array_split(rng.permutation(n), folds)


def _residualise(y_tr: np.ndarray, c_tr: np.ndarray | None, y_te: np.ndarray, c_te: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Centre behaviours on the training fold, and regress out confounds fitted on it."""
    if c_tr is None:
        mu = y_tr.mean(axis=0)
        return y_tr - mu, y_te - mu
    d_tr = np.column_stack([np.ones(len(c_tr)), c_tr])
    d_te = np.column_stack([np.ones(len(c_te)), c_te])
    beta = np.linalg.lstsq(d_tr, y_tr, rcond=None)[0]
    return y_tr - d_tr @ beta, y_te - d_te @ beta


def nested_cv_predict(x: np.ndarray, y: np.ndarray, alphas: Sequence[float], outer_folds: int, inner_folds: int,
                      seed: int, confounds: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cross-validated kernel ridge predictions with alpha chosen per behaviour by inner CV.

    Parameters
    ----------
    x
        ``[n, p]`` features (z-scored across subjects, as the paper's code does).
    y
        ``[n, B]`` behaviours.
    alphas
        Grid searched in every outer training set by ``inner_folds``-fold CV (mean squared error).
    outer_folds
        Folds of the cross-validated predictions (10 in the paper).
    seed
        Fold assignment.
    confounds
        ``[n, c]`` regressed out of the behaviours within each training fold, or ``None``.

    Returns
    -------
    tuple
        Held-out predictions ``[n, B]`` and the behaviours they predict ``[n, B]`` (centred or
        residualised with training-fold statistics).
    """
    alphas = np.asarray(alphas, dtype=float)
    rng = np.random.default_rng(seed)
    kernel = cosine_kernel(x, x)
    pred, target = np.zeros_like(y, dtype=float), np.zeros_like(y, dtype=float)
    for test in kfold_indices(len(y), outer_folds, rng):
        train = np.setdiff1d(np.arange(len(y)), test)
        c_tr = confounds[train] if confounds is not None else None
        c_te = confounds[test] if confounds is not None else None
        y_tr, y_te = _residualise(y[train], c_tr, y[test], c_te)
        best = _inner_alpha(kernel[np.ix_(train, train)], y_tr, alphas, inner_folds, rng)
        all_pred = krr_predict_all_alphas(kernel[np.ix_(train, train)], kernel[np.ix_(test, train)], y_tr, alphas)
        pred[test] = np.take_along_axis(all_pred, best[None, None, :], axis=0)[0]
        target[test] = y_te
    return pred, target


def _inner_alpha(k: np.ndarray, y: np.ndarray, alphas: np.ndarray, folds: int, rng: np.random.Generator
                 ) -> np.ndarray:
    """Index of the alpha with the lowest inner-CV squared error, per behaviour."""
    err = np.zeros((len(alphas), y.shape[1]))
    for val in kfold_indices(len(y), folds, rng):
        fit = np.setdiff1d(np.arange(len(y)), val)
        mu = y[fit].mean(axis=0)
        p = krr_predict_all_alphas(k[np.ix_(fit, fit)], k[np.ix_(val, fit)], y[fit] - mu, alphas)
        err += np.sum((p - (y[val] - mu)[None]) ** 2, axis=1)
    return np.argmin(err, axis=0)


def pearson_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of matching columns; 0 where either column is constant (as the paper's code)."""
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    den = np.sqrt((a**2).sum(axis=0) * (b**2).sum(axis=0))
    return np.where(den > 0, (a * b).sum(axis=0) / np.where(den > 0, den, 1.0), 0.0)


def feature_variants(features: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """The paper's feature sets and their variants (``kernel_ridge_predict*.py``).

    - control: AC, MC, EV each on FC, on AR and on both (9 variants),
    - graph: strength, efficiency, participation each on FC, AR and both (9 variants),
    - combination: one control item on one matrix type with one graph item on one matrix
      type (2 x 2 x 3 x 3 = 36 variants).

    Every feature is z-scored across subjects first.
    """
    z = {k: zscore_columns(v) for k, v in features.items()}

    def single(items: Sequence[str]) -> dict[str, np.ndarray]:
        out = {}
        for item in items:
            out[f"{item}_FC"], out[f"{item}_AR"] = z[f"{item}_FC"], z[f"{item}_AR"]
            out[f"{item}_FC+AR"] = np.hstack([z[f"{item}_FC"], z[f"{item}_AR"]])
        return out

    combination = {f"{c}_{t1}+{g}_{t2}": np.hstack([z[f"{c}_{t1}"], z[f"{g}_{t2}"]])
                   for t1 in MATRIX_TYPES for t2 in MATRIX_TYPES for c in CONTROL_ITEMS for g in GRAPH_ITEMS}
    return {"control": single(CONTROL_ITEMS), "graph": single(GRAPH_ITEMS), "combination": combination}


def compare_feature_sets(features: Mapping[str, np.ndarray], y: np.ndarray, pred_cfg: Mapping[str, Any],
                         seed: int, confounds: np.ndarray | None = None) -> dict[str, Any]:
    """Per-behaviour accuracy of control, graph and combination features, and the paper's t-tests.

    For every variant the cross-validated Pearson r per behaviour is computed; each feature
    set keeps, per behaviour, its best variant (as the paper). Combination is then compared
    with control and with graph by one-sided paired t-tests over behaviours.

    Returns
    -------
    dict
        ``r`` per set (``[B]`` lists), ``r_variants`` per set and variant, ``mean_r`` per set,
        and ``tests`` with t, p (one-sided, combination greater) and df.
    """
    out: dict[str, Any] = {"r": {}, "r_variants": {}, "mean_r": {}, "n_variants": {}}
    for set_name, variants in feature_variants(features).items():
        rs = {}
        for vname, x in variants.items():
            pred, target = nested_cv_predict(x, y, pred_cfg["alphas"], pred_cfg["outer_folds"],
                                             pred_cfg["inner_folds"], seed, confounds)
            rs[vname] = pearson_columns(pred, target)
        best = np.max(np.stack(list(rs.values())), axis=0)
        out["r"][set_name] = best.tolist()
        out["r_variants"][set_name] = {k: v.tolist() for k, v in rs.items()}
        out["mean_r"][set_name] = float(best.mean())
        out["n_variants"][set_name] = len(variants)
    comb = np.asarray(out["r"]["combination"])
    out["tests"] = {}
    for other in ("control", "graph"):
        res = stats.ttest_rel(comb, np.asarray(out["r"][other]), alternative="greater")
        out["tests"][f"combination_vs_{other}"] = {"t": float(res.statistic), "p": float(res.pvalue),
                                                   "df": int(len(comb) - 1)}
    return out


def planted_behaviours(features: Mapping[str, np.ndarray], n_behaviours: int, n_planted: int, r2: float,
                       seed: int) -> tuple[np.ndarray, list[str]]:
    """Synthetic behaviours with a known linear signal in chosen features (pipeline check).

    Behaviour ``b`` is driven, in turn, by control features only, graph features only, or
    both (half each): ``y = sqrt(r2) s + sqrt(1 - r2) e`` with ``s`` a standardised random
    combination of ``n_planted`` z-scored features of that block and ``e`` standard noise.
    ``r2 = 0`` gives pure noise (the null check). The ideal predictor reaches ``r = sqrt(r2)``.

    Returns
    -------
    tuple
        ``[n, n_behaviours]`` scores and the driving block of each behaviour.
    """
    rng = np.random.default_rng(seed)
    blocks = {"control": np.hstack([zscore_columns(features[f"{i}_{t}"]) for i in CONTROL_ITEMS for t in MATRIX_TYPES]),
              "graph": np.hstack([zscore_columns(features[f"{i}_{t}"]) for i in GRAPH_ITEMS for t in MATRIX_TYPES])}
    kinds = [("control", "graph", "both")[b % 3] for b in range(n_behaviours)]
    n = blocks["control"].shape[0]
    y = np.zeros((n, n_behaviours))
    for b, kind in enumerate(kinds):
        parts = ["control", "graph"] if kind == "both" else [kind]
        signal = np.zeros(n)
        for part in parts:
            cols = rng.choice(blocks[part].shape[1], size=n_planted // len(parts), replace=False)
            signal += blocks[part][:, cols] @ rng.standard_normal(len(cols))
        signal = (signal - signal.mean()) / (signal.std() or 1.0)
        y[:, b] = np.sqrt(r2) * signal + np.sqrt(1 - r2) * rng.standard_normal(n)
    return y, kinds


def run_prediction(features_path: str | Path, settings: Mapping[str, Any], out_json: str | Path) -> None:
    """The ``energy_predict`` rule.

    Demo / smoke (``data: demo``): a generated cohort (features of random segments of the
    real subjects' runs) with planted and with null behaviours, a check of the pipeline,
    not of the paper's claim. Paper (``data: hcp``): the HCP behaviours of the CSV.
    """
    pred_cfg, seed = settings["prediction"], settings["seed"]
    t0 = time.perf_counter()
    if settings["data"] == "hcp":
        from reprolab.data.hcp import load_behaviour

        with np.load(features_path) as z:
            subjects = [str(s) for s in z["subjects"]]
        ids, y, confounds = load_behaviour(settings, subjects)
        feats = _features_for(features_path, ids)
        result: dict[str, Any] = {"mode": "hcp", "n_subjects": len(ids), "behaviours": settings["behaviour"]["columns"],
                                  "real": compare_feature_sets(feats, y, pred_cfg, seed, confounds)}
    else:
        cohort = pred_cfg.get("cohort")
        if not cohort:
            raise ConfigError("config key papers.energy.prediction.cohort: the demo data have no behaviour scores; "
                              "set a cohort for the pipeline check, or use data: hcp with a behaviour CSV")
        feats = read_feature_set(features_path, "cohort")
        result = {"mode": "synthetic", "n_subjects": int(next(iter(feats.values())).shape[0])}
        for name, r2 in (("planted", cohort["planted_r2"]), ("null", 0.0)):
            y, kinds = planted_behaviours(feats, cohort["behaviours"], cohort["planted_features"], r2,
                                          seed + (0 if r2 else 1))
            result[name] = compare_feature_sets(feats, y, pred_cfg, seed)
            result[name].update({"kinds": kinds, "r2": r2, "ideal_r": float(np.sqrt(r2))})
    result["seconds"] = time.perf_counter() - t0
    write_json(out_json, result)


def _features_for(path: str | Path, ids: Sequence[str]) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        subjects = [str(s) for s in z["subjects"]]
    feats = read_feature_set(path, "subject")
    missing = [s for s in ids if s not in subjects]
    if missing:
        raise DataError(f"{path}: no features for subjects {missing[:5]}; rerun energy_features with them")
    order = [subjects.index(s) for s in ids]
    return {k: v[order] for k, v in feats.items()}


# =========================================================================== benchmark


def simpson_gramian(A: np.ndarray, B: np.ndarray, T: float, n_steps: int = 1000) -> np.ndarray:
    """Gramian by composite Simpson quadrature over ``n_steps`` steps of ``e^{A t}``.

    The scheme of nctpy's ``minimum_energy_fast`` (one ``expm`` of ``A T / n`` accumulated
    step by step); used here only as the quadrature baseline of the dynamic energy, for
    which nctpy has no function.
    """
    import scipy.linalg

    dt = T / n_steps
    step = scipy.linalg.expm(A * dt)
    acc = np.eye(A.shape[0])
    total = B @ B.T
    for i in range(1, n_steps + 1):
        acc = acc @ step
        p = acc @ B
        weight = 1 if i == n_steps else (4 if i % 2 else 2)
        total = total + weight * (p @ p.T)
    return total * dt / 3


def benchmark_gramians(timeseries_path: str | Path, settings: Mapping[str, Any], out_json: str | Path) -> None:
    """Time static and dynamic energy for one subject: exact spectral / Van Loan vs quadrature.

    Static: :func:`reprolab.netsci.control.static_energy` (spectral), the Van Loan block
    exponential, and nctpy's ``minimum_energy_fast`` (Simpson quadrature, 1000 steps; its
    per-system cache is defeated by a fresh matrix every repeat), halved to the paper's
    ``1/2 d^T W^-1 d``. Dynamic: ``M`` windows with spectral Gramians vs the same
    recursion with Simpson-quadrature Gramians. Relative differences check that all agree.
    """
    ts, nodes, data = _load_inputs(timeseries_path)
    cfg = settings["bench"]
    ctl.compile_kernels()
    x = ts[0]
    n, m, horizon, w = x.shape[0], cfg["windows"], float(cfg["horizon"]), int(cfg["window"])
    B = ctl.control_matrix(n, nodes)
    x0, xf = x[:, 0], x[:, w * m]
    timings: dict[str, list[float]] = {k: [] for k in ("static_spectral", "static_vanloan", "static_nctpy",
                                                       "dynamic_spectral", "dynamic_quadrature")}
    diffs: dict[str, float] = {}
    for rep in range(cfg["repeats"]):
        shift = rep * 3  # a new segment each repeat: fresh systems, no cache hits
        fc = ctl.functional_connectivity(x[:, shift:shift + w * m + 1], settings["p_threshold"])
        system = ctl.system_from_fc(fc)
        a = system.matrix()
        e_spec = _timed(timings["static_spectral"], ctl.static_energy, system, nodes, horizon, x0, xf)
        e_vl = _timed(timings["static_vanloan"], _vanloan_energy, a, B, horizon, x0, xf)
        e_nct = _timed(timings["static_nctpy"], _nctpy_energy, a, B, horizon, x0, xf)
        win = np.moveaxis(x[:, window_frames(shift, w, m)], 1, 0)
        windows = ctl.system_from_fc(ctl.functional_connectivity(win, settings["p_threshold"]))
        e_dyn = _timed(timings["dynamic_spectral"], ctl.dynamic_energy, windows, nodes, horizon / m, x0, xf)
        e_quad = _timed(timings["dynamic_quadrature"], _quadrature_dynamic, windows.matrix(), B, horizon / m, x0, xf)
        w_spec = ctl.gramian_spectral(system, nodes, horizon)
        diffs = {"gramian_vanloan_vs_spectral": _rel(ctl.gramian_vanloan(a, B, horizon), w_spec),
                 "gramian_simpson_vs_spectral": _rel(simpson_gramian(a, B, horizon), w_spec),
                 "static_vanloan_vs_spectral": abs(e_vl - e_spec) / abs(e_spec),
                 "static_nctpy_vs_spectral": abs(e_nct - e_spec) / abs(e_spec),
                 "dynamic_quadrature_vs_spectral": abs(e_quad - e_dyn) / abs(e_dyn)}
    best = {k: float(np.median(v)) for k, v in timings.items()}
    write_json(out_json, {
        "n_regions": n, "n_control": len(nodes), "windows": m, "horizon": horizon, "repeats": cfg["repeats"],
        "subject": data["subjects"][0], "median_seconds": best,
        "speedup_static_vs_nctpy": best["static_nctpy"] / best["static_spectral"],
        "speedup_static_vanloan_vs_nctpy": best["static_nctpy"] / best["static_vanloan"],
        "speedup_dynamic_vs_quadrature": best["dynamic_quadrature"] / best["dynamic_spectral"],
        "relative_difference": diffs,
    })


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _timed(bucket: list[float], fn: Callable[..., Any], *args: Any) -> float:
    """``float(fn(*args))``, appending its run time to ``bucket``."""
    t0 = time.perf_counter()
    value = float(fn(*args))
    bucket.append(time.perf_counter() - t0)
    return value


def _nctpy_energy(a: np.ndarray, B: np.ndarray, T: float, x0: np.ndarray, xf: np.ndarray) -> float:
    """nctpy's quadrature energy, halved to the paper's ``1/2 d^T W^-1 d``."""
    from nctpy.energies import minimum_energy_fast

    return 0.5 * float(minimum_energy_fast(a, T, B, x0, xf).sum())


def _vanloan_energy(a: np.ndarray, B: np.ndarray, T: float, x0: np.ndarray, xf: np.ndarray) -> float:
    e_at, w = ctl.vanloan_terms(a, B, T)
    return float(ctl.minimum_energy(w, xf - e_at @ x0))


def _quadrature_dynamic(mats: np.ndarray, B: np.ndarray, dt: float, x0: np.ndarray, xf: np.ndarray) -> float:
    import scipy.linalg

    phis = np.stack([scipy.linalg.expm(a * dt) for a in mats])
    grams = np.stack([simpson_gramian(a, B, dt) for a in mats])
    return float(ctl.piecewise_energy(phis, grams, x0, xf))


def read_summary(path: str | Path) -> dict[str, Any]:
    """A JSON summary written by this module."""
    return read_json(path)
