"""HebbFF networks on continual familiarity detection, and snapshots of their learning.

Model and task are those of Tyulmankov, Yang & Abbott (Neuron 110(3), 2022), which Gu, Mattar,
Tang & Pan (arXiv:2311.05862, Sci. Adv. 2024) train in several learning modes while recording
the first-layer weights for a multilayer-network analysis (:mod:`reprolab.netsci.modularity`).

Network (one step ``t`` of a sequence; ``A`` is reset to 0 at the start of every sequence)::

    h_t     = sigmoid((W1 + A_t) x_t + b1)
    y_t     = sigmoid(w2 . h_t + b2)
    A_{t+1} = lambda A_t + eta h_t x_t^T

Task: a stream of random +-1 patterns; from ``t >= R`` on, with probability ``P`` the pattern of
``t - R`` is shown again (label 1, familiar) provided it was itself novel; otherwise a new
pattern (label 0). The familiar fraction is ``P / (1 + P)``, chance accuracy ``1 / (1 + P)``.

The recurrence over time is sequential, so the loss and its exact gradient (back-propagation
through time, derived in :func:`_loss_and_grads`) are compiled with numba: one 500-step sequence
of a [25, 25, 1] network costs under a millisecond, where the same loop of torch operations costs
tens. Parameters are numpy arrays updated by :class:`Adam` (torch's defaults), so a job does not
pay torch's import; :func:`torch_reference_logits` gives the autograd reference the tests use.
"""

from __future__ import annotations

import logging
import math
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np

from reprolab.core.errors import ConfigError

log = logging.getLogger("reprolab.netsci.hebbff")

#: Accuracy of always answering "novel" when the repeat probability is 0.5 (dtyulman/hebbff plot_figs.py).
CHANCE_P05 = 2.0 / 3.0


def chance_accuracy(P: float, multi_rep: bool = False) -> float:
    """Accuracy of always answering "novel": ``1 - P / (1 + P)`` (``1 - P`` with ``multi_rep``)."""
    return 1.0 - (P if multi_rep else P / (1.0 + P))


# --------------------------------------------------------------------------------------------
# Task
# --------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _insert_repeats(
    X: np.ndarray,
    labels: np.ndarray,
    delays: np.ndarray,
    u: np.ndarray,
    R_of: np.ndarray,
    P: float,
    multi_rep: bool,
) -> None:  # pragma: no cover - numba
    """Turn fresh patterns into repeats in place (dtyulman/hebbff data.py, generate_recog_data)."""
    B, T, _ = X.shape
    for b in range(B):
        for t in range(T):
            R = R_of[b, t]
            if t >= R and u[b, t] < P and (multi_rep or labels[b, t - R] == 0.0):
                X[b, t, :] = X[b, t - R, :]
                labels[b, t] = 1.0
                delays[b, t] = R


def generate_recog_batch(
    rng: np.random.Generator,
    n_seq: int,
    T: int,
    d: int,
    R: int | list[int],
    P: float = 0.5,
    multi_rep: bool = False,
    patterns: str = "pm1",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sequences of the continual familiarity task.

    Parameters
    ----------
    rng
        Source of every random number (patterns, repeat decisions, delays).
    n_seq, T, d
        Number of sequences, their length, pattern dimension.
    R
        Repeat delay, or a list of delays drawn uniformly for every step of every sequence.
    P
        Probability that a step repeats the pattern of ``R`` steps before.
    multi_rep
        Allow a repeat of a repeat (the HebbFF default, used here, is ``False``).
    patterns
        ``pm1`` (entries +-1, the default of the HebbFF code) or ``01``.

    Returns
    -------
    X : ndarray, float64, ``[n_seq, T, d]``
    labels : ndarray, float64, ``[n_seq, T]``, 1 = familiar
    delays : ndarray, int64, ``[n_seq, T]``, delay of each familiar step (0 for novel steps)
    """
    Rs = np.atleast_1d(np.asarray(R, dtype=np.int64))
    if Rs.min() < 1:
        raise ConfigError(f"repeat delay R must be >= 1, got {R}")
    if patterns == "pm1":
        X = rng.integers(0, 2, size=(n_seq, T, d)).astype(np.float64) * 2.0 - 1.0
    elif patterns == "01":
        X = rng.integers(0, 2, size=(n_seq, T, d)).astype(np.float64)
    else:
        raise ConfigError(f"task.patterns {patterns!r} is unknown; use pm1 or 01")
    u = rng.random((n_seq, T))
    R_of = Rs[rng.integers(0, len(Rs), size=(n_seq, T))]
    labels = np.zeros((n_seq, T))
    delays = np.zeros((n_seq, T), dtype=np.int64)
    _insert_repeats(X, labels, delays, u, R_of, float(P), bool(multi_rep))
    return X, labels, delays


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


class HebbFF:
    """HebbFF ``[Nx, Nh, 1]`` (Tyulmankov et al. 2022; dtyulman/hebbff networks.HebbNet), numpy parameters.

    Parameters
    ----------
    Nx, Nh
        Input and hidden sizes.
    lam_init, eta_init
        Initial decay and Hebbian rate (HebbFF: 0.99 and -5 / Nx).
    plasticity
        ``free`` (eta learned with any sign), ``anti`` (eta = -exp(theta), forceAnti) or
        ``hebb`` (eta = +exp(theta), forceHebb).
    lam_param
        ``clamp`` (lambda learned directly, clamped to [0, 1] after every update) or
        ``sigmoid`` (lambda = sigmoid(theta), reparamLam).
    rng
        Draws the initialisation: weights ~ N(0, 1) / sqrt(fan_in), biases ~ N(0, 1)
        (net_utils.random_weight_init).

    Attributes
    ----------
    params : dict of ndarray
        ``w1 [Nh, Nx]``, ``b1 [Nh]``, ``w2 [Nh]``, ``b2 [1]``, ``lam_raw []``, ``eta_raw []``.
    """

    def __init__(
        self,
        Nx: int,
        Nh: int,
        lam_init: float = 0.99,
        eta_init: float | None = None,
        plasticity: str = "free",
        lam_param: str = "clamp",
        rng: np.random.Generator | None = None,
    ) -> None:
        if plasticity not in ("free", "anti", "hebb"):
            raise ConfigError(f"model.plasticity {plasticity!r} is unknown; use free, anti or hebb")
        if lam_param not in ("clamp", "sigmoid"):
            raise ConfigError(f"model.lam_param {lam_param!r} is unknown; use clamp or sigmoid")
        eta_init = -5.0 / Nx if eta_init is None else float(eta_init)
        if plasticity != "free" and (eta_init == 0 or (eta_init > 0) != (plasticity == "hebb")):
            raise ConfigError(f"model.eta_init_times_Nx has the wrong sign for plasticity {plasticity!r}")
        if lam_param == "sigmoid" and not 0.0 < lam_init < 1.0:
            raise ConfigError("model.lam_init must lie strictly between 0 and 1 with lam_param: sigmoid")
        self.plasticity, self.lam_param = plasticity, lam_param
        rng = rng or np.random.default_rng(0)
        self.params: dict[str, np.ndarray] = {
            "w1": rng.standard_normal((Nh, Nx)) / math.sqrt(Nx),
            "b1": rng.standard_normal(Nh),
            "w2": rng.standard_normal(Nh) / math.sqrt(Nh),
            "b2": rng.standard_normal(1),
            "lam_raw": np.array(math.log(lam_init / (1 - lam_init)) if lam_param == "sigmoid" else lam_init),
            "eta_raw": np.array(math.log(abs(eta_init)) if plasticity != "free" else eta_init),
        }

    @property
    def Nx(self) -> int:
        return self.params["w1"].shape[1]

    @property
    def Nh(self) -> int:
        return self.params["w1"].shape[0]

    def lam(self) -> float:
        """Decay lambda of the plastic matrix."""
        raw = float(self.params["lam_raw"])
        return 1.0 / (1.0 + math.exp(-raw)) if self.lam_param == "sigmoid" else raw

    def eta(self) -> float:
        """Hebbian rate eta (negative = anti-Hebbian)."""
        raw = float(self.params["eta_raw"])
        if self.plasticity == "anti":
            return -math.exp(raw)
        if self.plasticity == "hebb":
            return math.exp(raw)
        return raw

    def constrain(self) -> None:
        """Clamp lambda to [0, 1] (the HebbFF code does it before every use; pitfall 1 of the card)."""
        if self.lam_param == "clamp":
            self.params["lam_raw"] = np.clip(self.params["lam_raw"], 0.0, 1.0)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float, float]:
        """``(W1, b1, w2, b2, lambda, eta)`` for the compiled kernels."""
        p = self.params
        return p["w1"], p["b1"], p["w2"], float(p["b2"][0]), self.lam(), self.eta()

    def state_dict(self) -> dict[str, Any]:
        return {
            "params": {k: v.copy() for k, v in self.params.items()},
            "plasticity": self.plasticity,
            "lam_param": self.lam_param,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> HebbFF:
        w1 = np.asarray(state["params"]["w1"])
        net = cls(
            w1.shape[1],
            w1.shape[0],
            plasticity=state["plasticity"],
            lam_param=state["lam_param"],
            eta_init=1.0 if state["plasticity"] == "hebb" else -1.0,
            lam_init=0.5,
        )
        net.params = {k: np.array(v, dtype=np.float64) for k, v in state["params"].items()}
        return net


class Adam:
    """Adam (Kingma & Ba 2015) with torch's defaults (betas 0.9, 0.999, eps 1e-8), on a dict of arrays."""

    def __init__(
        self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        self.lr, self.betas, self.eps = lr, betas, eps
        self.step_count = 0
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        b1, b2 = self.betas
        self.step_count += 1
        c1, c2 = 1 - b1**self.step_count, 1 - b2**self.step_count
        for name, g in grads.items():
            m = self.m.setdefault(name, np.zeros_like(g))
            v = self.v.setdefault(name, np.zeros_like(g))
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            params[name] = params[name] - self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)

    def state_dict(self) -> dict[str, Any]:
        return {
            "step_count": self.step_count,
            "m": {k: v.copy() for k, v in self.m.items()},
            "v": {k: v.copy() for k, v in self.v.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count, self.m, self.v = state["step_count"], state["m"], state["v"]


def torch_reference_logits(net: HebbFF, X: np.ndarray):
    """Logits ``[B, T]`` computed with torch autograd from the network's parameters (tests only).

    Returns the logits and the dict of leaf tensors, so that ``backward`` gives the reference
    gradient that :func:`loss_and_grads` must reproduce.
    """
    import torch

    leaves = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in net.params.items()}
    lam = torch.sigmoid(leaves["lam_raw"]) if net.lam_param == "sigmoid" else leaves["lam_raw"]
    eta = {"anti": lambda r: -torch.exp(r), "hebb": torch.exp, "free": lambda r: r}[net.plasticity](
        leaves["eta_raw"]
    )
    x = torch.tensor(X, dtype=torch.float64)
    B, T, _ = x.shape
    A = x.new_zeros(B, net.Nh, net.Nx)
    out = []
    for t in range(T):
        h = torch.sigmoid(torch.einsum("bij,bj->bi", leaves["w1"] + A, x[:, t]) + leaves["b1"])
        out.append(h @ leaves["w2"] + leaves["b2"])
        A = lam * A + eta * h.unsqueeze(2) * x[:, t].unsqueeze(1)
    return torch.stack(out, 1), leaves


@numba.njit(cache=True, fastmath=False)
def _sigmoid(v: float) -> float:  # pragma: no cover - numba
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


@numba.njit(cache=True)
def _softplus(v: float) -> float:  # pragma: no cover - numba
    return max(v, 0.0) + math.log1p(math.exp(-abs(v)))


@numba.njit(cache=True, fastmath=True)
def _forward_sequence(W, b1, w2, b2, lam, eta, X, H, A_hist, z):  # pragma: no cover - numba
    """Run one sequence; keep h_t, A_t (for the lambda gradient) and the logits z_t."""
    T, Nx = X.shape
    Nh = W.shape[0]
    A = np.zeros((Nh, Nx))
    for t in range(T):
        x = X[t]
        if A_hist.shape[0] > 0:
            A_hist[t] = A
        s = b2
        for i in range(Nh):
            a = b1[i]
            for j in range(Nx):
                a += (W[i, j] + A[i, j]) * x[j]
            h = _sigmoid(a)
            H[t, i] = h
            s += w2[i] * h
        z[t] = s
        for i in range(Nh):
            eh = eta * H[t, i]
            for j in range(Nx):
                A[i, j] = lam * A[i, j] + eh * x[j]
    return A


@numba.njit(cache=True, fastmath=True)
def _loss_and_grads(W, b1, w2, b2, lam, eta, Xb, Lb):  # pragma: no cover - numba
    """Mean BCE over sequences and steps, its exact gradient, and the number of correct steps.

    Back-propagation through time, with ``G_t = dL/dA_t`` (``G_T = 0``) and
    ``dz_t = (sigmoid(z_t) - label_t) / (B T)``::

        dh_t    = dz_t w2 + eta G_{t+1} x_t
        da_t    = dh_t * h_t * (1 - h_t)
        dW1    += da_t x_t^T,  db1 += da_t,  dw2 += dz_t h_t,  db2 += dz_t
        dlam   += <G_{t+1}, A_t>,  deta += h_t^T G_{t+1} x_t
        G_t     = lam G_{t+1} + da_t x_t^T
    """
    B, T, Nx = Xb.shape
    Nh = W.shape[0]
    gW = np.zeros((Nh, Nx))
    gb1 = np.zeros(Nh)
    gw2 = np.zeros(Nh)
    gb2 = 0.0
    glam = 0.0
    geta = 0.0
    loss = 0.0
    correct = 0
    H = np.empty((T, Nh))
    A_hist = np.empty((T, Nh, Nx))
    z = np.empty(T)
    G = np.empty((Nh, Nx))
    Gx = np.empty(Nh)
    norm = 1.0 / (B * T)
    for b in range(B):
        X = Xb[b]
        _forward_sequence(W, b1, w2, b2, lam, eta, X, H, A_hist, z)
        G[:, :] = 0.0
        for t in range(T - 1, -1, -1):
            x = X[t]
            zt = z[t]
            lab = Lb[b, t]
            loss += _softplus(zt) - lab * zt
            if (zt > 0.0) == (lab > 0.5):
                correct += 1
            dz = (_sigmoid(zt) - lab) * norm
            gb2 += dz
            At = A_hist[t]
            for i in range(Nh):
                acc = 0.0
                for j in range(Nx):
                    acc += G[i, j] * x[j]
                    glam += G[i, j] * At[i, j]
                Gx[i] = acc
            for i in range(Nh):
                h = H[t, i]
                geta += h * Gx[i]
                gw2[i] += dz * h
                da = (dz * w2[i] + eta * Gx[i]) * h * (1.0 - h)
                gb1[i] += da
                for j in range(Nx):
                    gW[i, j] += da * x[j]
                    G[i, j] = lam * G[i, j] + da * x[j]
    return loss * norm, correct, gW, gb1, gw2, gb2, glam, geta


@numba.njit(cache=True)
def _forward_batch(W, b1, w2, b2, lam, eta, Xb, mean_A):  # pragma: no cover - numba
    """Logits ``[B, T]`` and, if ``mean_A``, the plastic matrix averaged over steps and sequences."""
    B, T, Nx = Xb.shape
    Nh = W.shape[0]
    Z = np.empty((B, T))
    H = np.empty((T, Nh))
    A_hist = np.empty((T if mean_A else 0, Nh, Nx))
    A_mean = np.zeros((Nh, Nx))
    for b in range(B):
        _forward_sequence(W, b1, w2, b2, lam, eta, Xb[b], H, A_hist, Z[b])
        if mean_A:
            for t in range(T):
                A_mean += A_hist[t]
    if mean_A:
        A_mean /= B * T
    return Z, A_mean


def loss_and_grads(
    net: HebbFF, X: np.ndarray, labels: np.ndarray
) -> tuple[float, float, dict[str, np.ndarray]]:
    """Mean binary cross-entropy of ``net`` on ``X [B, T, Nx]``, accuracy, and the gradient.

    Returns
    -------
    loss, accuracy, grads
        Loss and accuracy averaged over sequences and steps; ``grads`` has the keys of
        ``net.params``.
    """
    W, b1, w2, b2, lam, eta = net.arrays()
    loss, correct, gW, gb1, gw2, gb2, glam, geta = _loss_and_grads(
        W,
        b1,
        w2,
        b2,
        lam,
        eta,
        np.ascontiguousarray(X, dtype=np.float64),
        np.ascontiguousarray(labels, dtype=np.float64),
    )
    # chain rule from (lambda, eta) to the raw parameters
    if net.lam_param == "sigmoid":
        glam *= lam * (1.0 - lam)
    if net.plasticity != "free":
        geta *= eta  # d(+-exp(theta))/dtheta = eta
    grads = {
        "w1": gW,
        "b1": gb1,
        "w2": gw2,
        "b2": np.array([gb2]),
        "lam_raw": np.array(glam),
        "eta_raw": np.array(geta),
    }
    return float(loss), correct / labels.size, grads


def predict_logits(net: HebbFF, X: np.ndarray, mean_A: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Logits ``[B, T]`` of ``net`` on ``X [B, T, Nx]`` (state reset per sequence), and mean ``A``."""
    W, b1, w2, b2, lam, eta = net.arrays()
    return _forward_batch(W, b1, w2, b2, lam, eta, np.ascontiguousarray(X, dtype=np.float64), mean_A)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of steps where ``sigmoid(logit) > 0.5`` equals the label."""
    return float(((logits > 0) == (labels > 0.5)).mean())


def positive_rates(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy, true-positive rate (familiar called familiar), false-positive rate (novel called familiar)."""
    pred, fam = logits > 0, labels > 0.5
    return {
        "accuracy": accuracy(logits, labels),
        "tpr": float(pred[fam].mean()) if fam.any() else float("nan"),
        "fpr": float(pred[~fam].mean()) if (~fam).any() else float("nan"),
    }


@dataclass
class ModelSpec:
    """``papers.hebbff.model`` of the config."""

    Nx: int
    Nh: int
    lam_init: float = 0.99
    eta_init_times_Nx: float = -5.0
    plasticity: str = "free"
    lam_param: str = "clamp"

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> ModelSpec:
        return cls(**cfg)

    def build(self, seed: int) -> HebbFF:
        return HebbFF(
            self.Nx,
            self.Nh,
            self.lam_init,
            self.eta_init_times_Nx / self.Nx,
            self.plasticity,
            self.lam_param,
            rng=np.random.default_rng([seed, 1]),
        )


# --------------------------------------------------------------------------------------------
# Learning modes (dtyulman/hebbff net_utils.fit: 'dataset', 'infinite', 'curriculum', 'multiR')
# --------------------------------------------------------------------------------------------

MODES = ("dataset", "infinite", "curriculum", "multiR")


@dataclass
class TaskSpec:
    """``papers.hebbff.task``: the familiarity task the networks are trained and tested on."""

    R: int
    P: float = 0.5
    T: int = 500
    patterns: str = "pm1"
    multi_rep: bool = False

    def generate(
        self,
        rng: np.random.Generator,
        n_seq: int,
        d: int,
        R: int | list[int] | None = None,
        T: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return generate_recog_batch(
            rng, n_seq, T or self.T, d, self.R if R is None else R, self.P, self.multi_rep, self.patterns
        )


class Schedule:
    """Which sequences a learning mode trains on, and how its delays change with progress.

    Subclasses keep their whole state in ``self.state`` (a dict of plain values), so that a
    checkpoint can store and restore it.
    """

    name = ""

    def __init__(self, task: TaskSpec, d: int, cfg: dict[str, Any]) -> None:
        self.task, self.d, self.cfg = task, d, cfg
        self.state: dict[str, Any] = {"stopped": False, "last_change": 0}

    def delays(self) -> int | list[int]:
        """The delay(s) of the current training data."""
        return self.task.R

    def describe(self) -> str:
        R = self.delays()
        return f"R={R}" if isinstance(R, int) else f"R={R[0]}..{R[-1]}"

    def sequences(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        X, labels, _ = self.task.generate(rng, n, self.d, self.delays())
        return X, labels

    def converged(self, train_accs: list[float], it: int) -> bool:
        """HebbFF's criterion: the last five logged training accuracies average ``converge_acc``.

        At least ``min_iters`` iterations must have passed since the last change of delay, so
        that the five entries belong to the current task (the ``+50`` hack of net_utils).
        """
        if it - self.state["last_change"] < self.cfg["min_iters"] or len(train_accs) < 5:
            return False
        return sum(train_accs[-5:]) >= 5 * self.cfg["converge_acc"] - 1e-9

    def after_log(self, train_accs: list[float], it: int, net: HebbFF, rng: np.random.Generator) -> None:
        """Update the schedule after a logged iteration; set ``state['stopped']`` to end training."""
        if self.cfg["early_stop"] and self.converged(train_accs, it):
            self.state["stopped"] = True


class DatasetSchedule(Schedule):
    """One fixed set of sequences, trained on again and again ("dat")."""

    name = "dataset"

    def __init__(self, task: TaskSpec, d: int, cfg: dict[str, Any], seed: int) -> None:
        super().__init__(task, d, cfg)
        n = cfg["dataset_sequences"]
        self.X, self.labels, _ = task.generate(np.random.default_rng([seed, 7]), n, d)

    def sequences(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        i = self.state.setdefault("cursor", 0)
        idx = (i + np.arange(n)) % len(self.X)
        self.state["cursor"] = int((i + n) % len(self.X))
        return self.X[idx], self.labels[idx]


class InfiniteSchedule(Schedule):
    """A fresh sequence at every iteration ("inf")."""

    name = "infinite"


class CurriculumSchedule(Schedule):
    """Start at ``R0``; ``R += 1`` after convergence; stop after converging at ``R_final`` ("cur")."""

    name = "curriculum"

    def __init__(self, task: TaskSpec, d: int, cfg: dict[str, Any]) -> None:
        super().__init__(task, d, cfg)
        self.state["R"] = int(cfg["curriculum"]["R0"])
        self.state["increments"] = [[0, self.state["R"]]]

    def delays(self) -> int:
        return self.state["R"]

    def after_log(self, train_accs: list[float], it: int, net: HebbFF, rng: np.random.Generator) -> None:
        if not self.converged(train_accs, it):
            return
        if self.state["R"] >= self.cfg["curriculum"]["R_final"]:
            self.state["stopped"] = self.state["stopped"] or self.cfg["early_stop"]
            return
        self.state["R"] += 1
        self.state["last_change"] = it
        self.state["increments"].append([it, self.state["R"]])
        log.info("iteration %d: converged, curriculum R <- %d", it, self.state["R"])


class MultiRSchedule(Schedule):
    """Train on delays ``R_lo..R_hi``; raise ``R_hi`` when validation accuracy at ``R_hi`` exceeds a threshold."""

    name = "multiR"

    def __init__(self, task: TaskSpec, d: int, cfg: dict[str, Any]) -> None:
        super().__init__(task, d, cfg)
        m = cfg["multiR"]
        self.state.update(
            R_lo=int(m["R_lo"]), R_hi=int(m["R_hi"]), increments=[[0, int(m["R_lo"]), int(m["R_hi"])]]
        )

    def delays(self) -> list[int]:
        return list(range(self.state["R_lo"], self.state["R_hi"] + 1))

    def after_log(self, train_accs: list[float], it: int, net: HebbFF, rng: np.random.Generator) -> None:
        m = self.cfg["multiR"]
        if self.state["R_hi"] >= m["R_hi_max"] or it - self.state["last_change"] < self.cfg["min_iters"]:
            return
        X, labels, _ = self.task.generate(rng, 1, self.d, self.state["R_hi"])
        logits, _ = predict_logits(net, X)
        if accuracy(logits, labels) > m["valid_threshold"]:
            R_hi = self.state["R_hi"]
            R_hi = R_hi + 1 if m["increment"] == "plus1" else math.ceil(R_hi * 1.3)
            self.state["R_hi"] = min(R_hi, int(m["R_hi_max"]))
            self.state["last_change"] = it
            self.state["increments"].append([it, self.state["R_lo"], self.state["R_hi"]])
            log.info(
                "iteration %d: accuracy at R_hi above %.2f, R <- %s", it, m["valid_threshold"], self.delays()
            )


def make_schedule(mode: str, task: TaskSpec, d: int, train_cfg: dict[str, Any], seed: int) -> Schedule:
    """The schedule of a learning mode (``papers.hebbff.modes``)."""
    if mode == "dataset":
        return DatasetSchedule(task, d, train_cfg, seed)
    if mode == "infinite":
        return InfiniteSchedule(task, d, train_cfg)
    if mode == "curriculum":
        return CurriculumSchedule(task, d, train_cfg)
    if mode == "multiR":
        return MultiRSchedule(task, d, train_cfg)
    raise ConfigError(f"papers.hebbff.modes: unknown learning mode {mode!r}; use one of {', '.join(MODES)}")


def trained_delays(mode: str, task: TaskSpec, schedule_state: dict[str, Any]) -> list[int]:
    """The delay(s) a finished run was trained on last (its "trained R")."""
    if mode == "curriculum":
        return [int(schedule_state["R"])]
    if mode == "multiR":
        return list(range(int(schedule_state["R_lo"]), int(schedule_state["R_hi"]) + 1))
    return [task.R]


# --------------------------------------------------------------------------------------------
# Training with snapshots (resumable)
# --------------------------------------------------------------------------------------------


@dataclass
class SnapshotSpec:
    """``papers.hebbff.snapshots``: when weights are recorded and how accuracy is measured.

    Every snapshot holds ``W1`` and the plastic matrix ``A`` averaged over ``probe_sequences``
    probe sequences, so the analysis can use ``W1`` or the effective ``W1 + mean(A)``.
    """

    every: int
    valid_sequences: int = 4
    probe_sequences: int = 1


def _bce(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((np.logaddexp(0.0, logits) - labels * logits).mean())


class SnapshotRecorder:
    """Weights and validation accuracy of the network at regular iterations (the time slices)."""

    def __init__(self, spec: SnapshotSpec, task: TaskSpec, d: int, seed: int) -> None:
        self.spec, self.task, self.d, self.seed = spec, task, d, seed
        self.valid = task.generate(np.random.default_rng([seed, 11]), spec.valid_sequences, d)
        self.probe = task.generate(np.random.default_rng([seed, 13]), spec.probe_sequences, d)[0]
        self.records: list[dict[str, Any]] = []

    def _current(self, delays: int | list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        key = [delays] if isinstance(delays, int) else list(delays)
        return self.task.generate(
            np.random.default_rng([self.seed, 17, *key]), self.spec.valid_sequences, self.d, delays
        )

    def take(self, it: int, net: HebbFF, schedule: Schedule) -> None:
        X, labels, _ = self.valid
        logits, _ = predict_logits(net, X)
        rates = positive_rates(logits, labels)
        Xc, Lc, _ = self._current(schedule.delays())
        W, b1, w2, b2, lam, eta = net.arrays()
        rec = {
            "iteration": it,
            "W1": W,
            "b1": b1,
            "w2": w2,
            "b2": b2,
            "lam": lam,
            "eta": eta,
            "accuracy": rates["accuracy"],
            "tpr": rates["tpr"],
            "fpr": rates["fpr"],
            "valid_loss": _bce(logits, labels),
            "accuracy_current": accuracy(predict_logits(net, Xc)[0], Lc),
            "R_current": max(np.atleast_1d(schedule.delays())),
        }
        rec["A_mean"] = predict_logits(net, self.probe, mean_A=True)[1]
        self.records.append(rec)

    def arrays(self) -> dict[str, np.ndarray]:
        """Stacked records: ``W1 [L, Nh, Nx]``, ``iteration [L]``, ``accuracy [L]``, ..."""
        return {k: np.stack([np.asarray(r[k]) for r in self.records]) for k in self.records[0]}


def _run_key(*parts: Any) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def train_run(
    model: ModelSpec,
    task: TaskSpec,
    train_cfg: dict[str, Any],
    snap: SnapshotSpec,
    mode: str,
    seed: int,
    checkpoint_dir: str | None = None,
) -> tuple[HebbFF, dict[str, Any], dict[str, np.ndarray]]:
    """Train one HebbFF network in one learning mode, recording snapshots; resumable.

    One iteration is one Adam step on ``train.batch_size`` sequences (1 in the HebbFF code),
    with the exact BPTT gradient of :func:`loss_and_grads`. Every ``train.log_every`` iterations
    the training accuracy of that step is logged and the schedule may change the delay or stop.
    A checkpoint with the full state (weights, Adam moments, random state, schedule, records)
    is written every ``train.checkpoint_every`` iterations; a rerun with the same settings
    resumes from it and ends with identical numbers.

    Returns
    -------
    net, history, snapshots
        The trained network; logged training curve and schedule; stacked snapshot arrays.
    """
    import time

    from reprolab.core.io import atomic_path

    net = model.build(seed)
    optimiser = Adam(lr=train_cfg["lr"])
    rng = np.random.default_rng([seed, 3])
    schedule = make_schedule(mode, task, model.Nx, train_cfg, seed)
    recorder = SnapshotRecorder(snap, task, model.Nx, seed)
    log_records: list[dict[str, Any]] = []
    it, elapsed = 0, 0.0
    key = _run_key(model.__dict__, task.__dict__, train_cfg, snap.__dict__, mode, seed)
    ckpt = None if checkpoint_dir is None else Path(checkpoint_dir) / "last.pt"
    if ckpt is not None and ckpt.exists():
        with open(ckpt, "rb") as handle:
            state = pickle.load(handle)
        if state["key"] == key:
            net = HebbFF.from_state(state["net"])
            optimiser.load_state_dict(state["optimiser"])
            rng.bit_generator.state = state["rng"]
            schedule.state = state["schedule"]
            recorder.records, log_records, it, elapsed = (
                state["records"],
                state["log"],
                state["it"],
                state["elapsed"],
            )
            log.info("resumed %s seed %d from iteration %d (%s)", mode, seed, it, ckpt)
        else:
            log.info("checkpoint %s belongs to other settings; starting afresh", ckpt)
    t0 = time.perf_counter() - elapsed
    every, n_iter = snap.every, int(train_cfg["iterations"])
    while True:
        if it % every == 0 and (not recorder.records or recorder.records[-1]["iteration"] != it):
            recorder.take(it, net, schedule)
        if it >= n_iter or schedule.state["stopped"]:
            if recorder.records[-1]["iteration"] != it:
                recorder.take(it, net, schedule)
            break
        X, labels = schedule.sequences(rng, train_cfg["batch_size"])
        loss, acc, grads = loss_and_grads(net, X, labels)
        optimiser.step(net.params, grads)
        net.constrain()
        it += 1
        if it % train_cfg["log_every"] == 0:
            log_records.append(
                {
                    "iteration": it,
                    "loss": loss,
                    "accuracy": acc,
                    "R": schedule.describe(),
                    "lam": float(net.lam()),
                    "eta": float(net.eta()),
                }
            )
            schedule.after_log([r["accuracy"] for r in log_records], it, net, rng)
            if it % (train_cfg["log_every"] * 50) == 0:
                log.info(
                    "%s seed %d iteration %d: loss %.4f accuracy %.3f %s lambda %.3f eta*Nx %.2f",
                    mode,
                    seed,
                    it,
                    loss,
                    acc,
                    schedule.describe(),
                    float(net.lam()),
                    float(net.eta()) * model.Nx,
                )
        if ckpt is not None and it % train_cfg["checkpoint_every"] == 0 and it < n_iter:
            with atomic_path(ckpt) as tmp, open(tmp, "wb") as handle:
                pickle.dump(
                    {
                        "key": key,
                        "net": net.state_dict(),
                        "optimiser": optimiser.state_dict(),
                        "rng": rng.bit_generator.state,
                        "schedule": schedule.state,
                        "records": recorder.records,
                        "log": log_records,
                        "it": it,
                        "elapsed": time.perf_counter() - t0,
                    },
                    handle,
                )
    seconds = time.perf_counter() - t0
    history = {
        "mode": mode,
        "seed": seed,
        "iterations": it,
        "stopped_early": bool(schedule.state["stopped"]),
        "seconds": seconds,
        "iterations_per_second": it / max(seconds, 1e-9),
        "log": log_records,
        "schedule": schedule.state,
        "trained_R": trained_delays(mode, task, schedule.state),
        "lam": float(net.lam()),
        "eta": float(net.eta()),
    }
    return net, history, recorder.arrays()


def save_model(path: str | Path, net: HebbFF, meta: dict[str, Any]) -> None:
    """Write the parameters and their settings as ``.npz`` (no pickled objects)."""
    import json

    from reprolab.core.io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle,
            **net.params,
            meta=np.array(json.dumps({"plasticity": net.plasticity, "lam_param": net.lam_param, **meta})),
        )


def load_model(path: str | Path) -> tuple[HebbFF, dict[str, Any]]:
    """Read a network written by :func:`save_model`."""
    import json

    from reprolab.core.errors import DataError

    try:
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
            params = {k: z[k] for k in z.files if k != "meta"}
    except (OSError, KeyError, ValueError) as err:
        raise DataError(f"{path}: not a HebbFF model file ({err}); rerun the hebbff_train rule") from err
    net = HebbFF.from_state(
        {"params": params, "plasticity": meta["plasticity"], "lam_param": meta["lam_param"]}
    )
    return net, meta


def save_arrays(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` written atomically."""
    from reprolab.core.io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, naming the file if it is unreadable."""
    from reprolab.core.errors import DataError

    try:
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as err:
        raise DataError(
            f"{path}: unreadable array file ({err}); delete it and rerun the rule that writes it"
        ) from err


def run_training(
    settings: dict[str, Any],
    mode: str,
    seed: int,
    checkpoint_dir: str,
    out_model: str,
    out_snapshots: str,
    out_history: str,
) -> None:
    """The ``hebbff_train`` rule: train one mode and seed; write model, snapshots and history."""
    from reprolab.core.io import write_json

    model = ModelSpec.from_config(settings["model"])
    task = TaskSpec(**settings["task"])
    snap = SnapshotSpec(**settings["snapshots"])
    net, history, snapshots = train_run(model, task, settings["train"], snap, mode, seed, checkpoint_dir)
    log.info(
        "%s seed %d: %d iterations in %.1f s (%.0f it/s), final accuracy at R=%d: %.3f",
        mode,
        seed,
        history["iterations"],
        history["seconds"],
        history["iterations_per_second"],
        task.R,
        snapshots["accuracy"][-1],
    )
    save_model(out_model, net, {"mode": mode, "seed": seed, "trained_R": history["trained_R"]})
    save_arrays(out_snapshots, snapshots)
    write_json(out_history, {**history, "model": settings["model"], "task": settings["task"]})


def generalization(
    net: HebbFF, task: TaskSpec, test_R: list[int], n_seq: int, T_per_R: int, seed: int
) -> dict[str, dict[str, float]]:
    """Accuracy, true- and false-positive rates at each test delay (plotting.get_recog_positive_rates).

    Sequences have ``max(T, T_per_R * R)`` steps so that long delays still produce repeats
    (the HebbFF plotting code uses ``max(T, 20 R)``).
    """
    out = {}
    for R in test_R:
        X, labels, _ = task.generate(
            np.random.default_rng([seed, 23, R]), n_seq, net.Nx, R, T=max(task.T, T_per_R * R)
        )
        logits, _ = predict_logits(net, X)
        out[str(R)] = {**positive_rates(logits, labels), "steps": int(labels.size)}
    return out


def run_generalization(settings: dict[str, Any], model_path: str, history_path: str, out: str) -> None:
    """The ``hebbff_evaluate`` rule: accuracy at the task R, at the trained R, and TPR/FPR vs test R."""
    from reprolab.core.io import read_json, write_json

    net, meta = load_model(model_path)
    history = read_json(history_path)
    task = TaskSpec(**settings["task"])
    ev = settings["evaluation"]
    seed = int(meta["seed"])
    test_R = sorted(set(ev["test_R"]) | {task.R} | set(meta["trained_R"]))
    by_R = generalization(net, task, test_R, ev["sequences"], ev["T_per_R"], seed)
    X, labels, _ = task.generate(
        np.random.default_rng([seed, 29]), ev["sequences"], net.Nx, meta["trained_R"]
    )
    logits = predict_logits(net, X)[0]
    trained = positive_rates(logits, labels)
    generalises_to = 0  # the HebbFF plotting code stops at the first delay with TPR <= FPR
    for R in test_R:
        if not by_R[str(R)]["tpr"] > by_R[str(R)]["fpr"]:
            break
        generalises_to = R
    write_json(
        out,
        {
            "mode": meta["mode"],
            "seed": seed,
            "task_R": task.R,
            "trained_R": meta["trained_R"],
            "accuracy_task_R": by_R[str(task.R)]["accuracy"],
            "accuracy_trained_R": trained["accuracy"],
            "tpr_trained_R": trained["tpr"],
            "fpr_trained_R": trained["fpr"],
            "chance": chance_accuracy(task.P, task.multi_rep),
            "generalises_to_R": generalises_to,
            "by_R": by_R,
            "lam": net.lam(),
            "eta": net.eta(),
            "iterations": history["iterations"],
            "sequences": ev["sequences"],
            # every step of the trained-R test sequences (sequence after sequence), so that the report
            # can put an interval on each network's accuracy; the format of reprolab.report.stats.per_sample,
            # written here without importing the report layer (matplotlib) into the evaluation job
            "trained_R_samples": {"predictions": (logits > 0).astype(int).ravel().tolist(),
                                  "targets": (labels > 0.5).astype(int).ravel().tolist()},
        },
    )


# --------------------------------------------------------------------------------------------
# Network neuroscience of the snapshots (card section 2.4)
# --------------------------------------------------------------------------------------------


def snapshot_weights(snapshots: dict[str, np.ndarray], weights: str) -> np.ndarray:
    """``W1`` of every slice, or ``W1 + mean(A)`` over the probe sequence (``weights: effective``)."""
    if weights == "w1":
        return snapshots["W1"]
    if weights == "effective":
        return snapshots["W1"] + snapshots["A_mean"]
    raise ConfigError(f"analysis.weights {weights!r} is unknown; use w1 or effective")


def partition_measures(
    adjs: np.ndarray, memberships: np.ndarray, gamma: float, omega: float, window: int
) -> dict[str, np.ndarray]:
    """Per repeat: multilayer Q, per-slice Q, flexibility (node, windowed), entropies, module counts."""
    from reprolab.netsci import modularity as mod

    rows: dict[str, list[np.ndarray]] = {
        k: []
        for k in (
            "Q_multilayer",
            "Q_slice",
            "flex_node",
            "flex_window",
            "entropy_size",
            "entropy_allegiance_node",
            "entropy_allegiance_window",
            "n_modules",
        )
    }
    for g in memberships:
        rows["Q_multilayer"].append(np.array(mod.multilayer_modularity(adjs, g, gamma, omega)))
        rows["Q_slice"].append(mod.slice_modularity(adjs, g, gamma))
        rows["flex_node"].append(mod.node_flexibility(g))
        rows["flex_window"].append(mod.windowed_flexibility(g, window))
        rows["entropy_size"].append(mod.module_size_entropy(g))
        rows["entropy_allegiance_node"].append(mod.allegiance_entropy(g))
        rows["entropy_allegiance_window"].append(mod.windowed_allegiance_entropy(g, window))
        rows["n_modules"].append(mod.n_modules(g))
    return {k: np.stack(v) for k, v in rows.items()}


def _partitions(adjs: np.ndarray, cfg: dict[str, Any], repeats: int, seed: int) -> np.ndarray:
    from reprolab.netsci.modularity import multilayer_partitions

    return multilayer_partitions(
        adjs, cfg["gamma"], cfg["omega"], repeats, seed, cfg["backend"], cfg["leiden_iterations"]
    )


def analyse_snapshots(
    snapshots: dict[str, np.ndarray], cfg: dict[str, Any]
) -> tuple[dict[str, np.ndarray], dict]:
    """Multilayer community structure of one run's snapshots, with its shuffled-weights null.

    Parameters
    ----------
    snapshots
        Arrays written by :func:`train_run` (``W1``, ``A_mean``, ``accuracy``, ``iteration``).
    cfg
        ``papers.hebbff.analysis``.

    Returns
    -------
    arrays, summary
        ``arrays``: per-repeat measures (``Q_slice [R, L]`` ...); the test series (``test_Q_slice
        [L]`` ...), the mean over the first ``null_model.repeats`` partitions of the observed
        network; the null's per-shuffle means over the same number of partitions
        (``null_Q_slice [K, L]`` ...); allegiance matrices of the first and last third of the
        slices, the consensus partition, and the robustness variants' mean ``Q_slice``.
        ``summary``: scalars (means over repeats) and what was computed how.

    Notes
    -----
    The observed statistic and every null statistic average the same number of partitions,
    so that they are exchangeable under the null: a series averaged over 100 partitions is
    smoother than one averaged over 2, and comparing the two would make the permutation
    p-values anti-conservative. The remaining partitions of the observed network feed only
    the descriptive allegiance matrices and the consensus partition.
    """
    import time

    from reprolab.netsci import modularity as mod

    t0 = time.perf_counter()
    seed = int(cfg["seed"])
    Ws = snapshot_weights(snapshots, cfg["weights"])
    adjs = mod.weight_graphs(Ws, cfg["graph"])
    L = adjs.shape[0]
    if L < 3:
        raise ConfigError(
            f"only {L} snapshots: lower snapshots.every or raise train.iterations (need >= 3 slices)"
        )
    null = cfg["null_model"]
    test_repeats = int(null["repeats"])
    if not 1 <= test_repeats <= cfg["repeats"]:
        raise ConfigError(
            f"analysis.null_model.repeats = {test_repeats} must lie in 1..analysis.repeats ({cfg['repeats']}): "
            "the observed test statistic averages the same number of partitions as each null network"
        )
    memberships = _partitions(adjs, cfg, cfg["repeats"], seed)
    arrays = partition_measures(adjs, memberships, cfg["gamma"], cfg["omega"], cfg["window"])
    for name in list(arrays):
        arrays[f"test_{name}"] = nanmean(arrays[name][:test_repeats], axis=0)
    arrays["test_repeats"] = np.array(test_repeats)
    arrays["memberships"] = memberships.astype(np.int16)
    third = max(L // 3, 1)
    arrays["allegiance_early"] = mod.allegiance_matrix(memberships, slice(0, third))
    arrays["allegiance_late"] = mod.allegiance_matrix(memberships, slice(L - third, L))
    cons = cfg["consensus"]
    consensus, rounds, agreed = mod.consensus_partition(
        memberships,
        cfg["gamma"],
        cfg["omega"],
        cons["threshold"],
        cons["repeats"],
        cons["max_rounds"],
        seed + 7,
        cfg["backend"],
        cfg["leiden_iterations"],
    )
    arrays["consensus"] = consensus
    t_obs = time.perf_counter() - t0

    rng = np.random.default_rng([seed, 31])
    null_rows: dict[str, list[np.ndarray]] = {}
    for k in range(null["shuffles"]):
        adjs_k = mod.weight_graphs(mod.shuffle_weights(Ws, rng, null["same_permutation"]), cfg["graph"])
        m_k = _partitions(adjs_k, cfg, test_repeats, seed + 10_000 + 100 * k)
        for name, value in partition_measures(adjs_k, m_k, cfg["gamma"], cfg["omega"], cfg["window"]).items():
            null_rows.setdefault(name, []).append(nanmean(value, axis=0))
    for name, rows in null_rows.items():
        arrays[f"null_{name}"] = np.stack(rows)
    t_null = time.perf_counter() - t0 - t_obs

    variants = []
    for i, variant in enumerate(cfg.get("robustness", [])):
        vcfg = {**cfg, **variant}
        adjs_v = mod.weight_graphs(snapshot_weights(snapshots, vcfg["weights"]), vcfg["graph"])
        m_v = _partitions(adjs_v, vcfg, cfg["robustness_repeats"], seed + 20_000 + 100 * i)
        variants.append(np.mean([mod.slice_modularity(adjs_v, g, vcfg["gamma"]) for g in m_v], axis=0))
    if variants:
        arrays["robust_Q_slice"] = np.stack(variants)
    arrays["iteration"] = snapshots["iteration"]
    arrays["accuracy"] = snapshots["accuracy"]
    summary = {
        "slices": L,
        "nodes": adjs.shape[1],
        "repeats": int(cfg["repeats"]),
        "test_repeats": test_repeats,
        "Q_multilayer": float(arrays["Q_multilayer"].mean()),
        "Q_multilayer_std": float(arrays["Q_multilayer"].std()),
        "flexibility": float(arrays["flex_node"].mean()),
        "flexibility_std": float(arrays["flex_node"].mean(1).std()),
        "entropy_allegiance": float(arrays["entropy_allegiance_node"].mean()),
        "null_Q_multilayer": float(arrays["null_Q_multilayer"].mean()),
        "null_flexibility": float(arrays["null_flex_node"].mean()),
        "consensus": {
            "rounds": rounds,
            "converged": agreed == 1.0,
            "pairs_agreed": agreed,
            "Q_multilayer": mod.multilayer_modularity(adjs, consensus, cfg["gamma"], cfg["omega"]),
            "flexibility": float(mod.node_flexibility(consensus).mean()),
            "modules_last_slice": int(mod.n_modules(consensus)[-1]),
        },
        "robustness": cfg.get("robustness", []),
        "seconds": {
            "observed": t_obs,
            "null": t_null,
            "robustness": time.perf_counter() - t0 - t_obs - t_null,
        },
    }
    return arrays, summary


def run_analysis(
    settings: dict[str, Any], snapshots_path: str, history_path: str, out_arrays: str, out_summary: str
) -> None:
    """The ``hebbff_analysis`` rule: community structure of one run's snapshots and its null."""
    from reprolab.core.io import read_json, write_json

    history = read_json(history_path)
    arrays, summary = analyse_snapshots(load_arrays(snapshots_path), settings["analysis"])
    log.info(
        "%s seed %s: %d slices, Q_multilayer %.3f (null %.3f), flexibility %.3f (null %.3f) in %.1f s",
        history["mode"],
        history["seed"],
        summary["slices"],
        summary["Q_multilayer"],
        summary["null_Q_multilayer"],
        summary["flexibility"],
        summary["null_flexibility"],
        sum(summary["seconds"].values()),
    )
    save_arrays(out_arrays, arrays)
    write_json(
        out_summary,
        {"mode": history["mode"], "seed": history["seed"], **summary, "settings": settings["analysis"]},
    )


# --------------------------------------------------------------------------------------------
# Statistics over runs (card section 2.4, step 8)
# --------------------------------------------------------------------------------------------


def nanmean(a: Any, axis: int | None = None) -> Any:
    """``np.nanmean`` without the warning for all-NaN columns (the first window - 1 slices)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.asarray(a, dtype=float), axis=axis)


def nanstd(a: Any, axis: int | None = None, ddof: int = 0) -> Any:
    """``np.nanstd`` without warnings (NaN where undefined)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanstd(np.asarray(a, dtype=float), axis=axis, ddof=ddof)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho over the pairs where both are finite (NaN if fewer than 3 or constant)."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return float("nan")
    return float(spearmanr(a[ok], b[ok])[0])


def lagged_spearman(q: np.ndarray, acc: np.ndarray, max_lag: int) -> list[float]:
    """``rho(Q(l), acc(l + d))`` for ``d = 0..max_lag``: does modularity now predict later accuracy?"""
    L = len(q)
    return [spearman(q[: L - d], acc[d:]) if L - d >= 3 else float("nan") for d in range(max_lag + 1)]


def rolling_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of the ``window`` values ending at each index (NaN before), aligned with windowed flexibility."""
    x = np.asarray(x, dtype=float)
    out = np.full(len(x), np.nan)
    if 1 <= window <= len(x):
        c = np.concatenate([[0.0], np.cumsum(x)])
        out[window - 1 :] = (c[window:] - c[:-window]) / window
    return out


def null_p_value(observed: float, null: np.ndarray, alternative: str = "greater") -> float:
    """Permutation p-value ``(1 + #{null >= observed}) / (K + 1)`` (or ``<=`` for ``less``)."""
    null = np.asarray(null, dtype=float)
    null = null[np.isfinite(null)]
    if not np.isfinite(observed) or null.size == 0:
        return float("nan")
    hits = (null >= observed).sum() if alternative == "greater" else (null <= observed).sum()
    return float((1 + hits) / (null.size + 1))


def run_measures(arrays: dict[str, np.ndarray], entropy: str, window: int, max_lag: int) -> dict[str, Any]:
    """Per-run correlations of modularity with accuracy and flexibility, observed and under the null.

    Everything compared with the null uses the ``test_*`` series of :func:`analyse_snapshots`
    (as many partitions per network as each null network); ``Q_std`` (the spread over all
    partitions of the observed network) is descriptive.
    """
    acc = arrays["accuracy"]
    q = arrays["test_Q_slice"]
    flex = arrays["test_flex_window"]
    ent_key = "entropy_size" if entropy == "size" else "entropy_allegiance_window"
    ent = arrays[f"test_{ent_key}"]
    null_q, null_flex = arrays["null_Q_slice"], arrays["null_flex_window"]
    return {
        "rho_Q_acc": spearman(q, acc),
        "rho_Q_acc_lags": lagged_spearman(q, acc, max_lag),
        "null_rho_Q_acc": [spearman(nq, acc) for nq in null_q],
        "null_rho_Q_acc_lags": [lagged_spearman(nq, acc, max_lag) for nq in null_q],
        "rho_Q_flex": spearman(rolling_mean(q, window), flex),
        "null_rho_Q_flex": [spearman(rolling_mean(nq, window), nf) for nq, nf in zip(null_q, null_flex)],
        "rho_entropy_acc": spearman(ent, acc),
        "rho_flex_acc": spearman(flex, acc),
        "robust_rho_Q_acc": [spearman(v, acc) for v in arrays.get("robust_Q_slice", [])],
        "test_repeats": int(arrays["test_repeats"]),
        "final_accuracy": float(acc[-1]),
        "final_Q": float(q[-1]),
        "first_Q": float(q[0]),
        "null_first_Q": float(null_q[:, 0].mean()),
        "null_final_Q": float(null_q[:, -1].mean()),
        "null_final_Q_std": float(null_q[:, -1].std()),
        "mean_flexibility": float(arrays["test_flex_node"].mean()),
        "null_mean_flexibility": float(arrays["null_flex_node"].mean()),
        "final_entropy": float(ent[-1]),
        "null_final_entropy": float(nanmean(arrays[f"null_{ent_key}"][:, -1])),
        "Q_multilayer": float(arrays["test_Q_multilayer"]),
        "null_Q_multilayer": float(arrays["null_Q_multilayer"].mean()),
        "series": {
            "iteration": arrays["iteration"],
            "accuracy": acc,
            "Q": q,
            "Q_std": arrays["Q_slice"].std(0),
            "flexibility": flex,
            "entropy": ent,
            "null_Q": null_q.mean(0),
            "null_Q_std": null_q.std(0),
            "null_flexibility": nanmean(null_flex, 0),
            "null_entropy": nanmean(arrays[f"null_{ent_key}"], 0),
        },
    }


def null_test(observed: float, null: np.ndarray) -> dict[str, Any]:
    """Permutation test of an observed statistic against the same statistic on ``K`` null networks.

    Returns
    -------
    dict
        One-sided p-values ``p_null_greater`` / ``p_null_less`` (``(1 + hits) / (K + 1)``), the
        two-sided ``p_null = min(1, 2 min(...))``, the smallest two-sided p-value ``K`` finite
        null values can give (``smallest_p = 2 / (K + 1)``), and whether the observed value lies
        above the null's mean (the direction of the claims).
    """
    null = np.asarray(null, dtype=float)
    finite = null[np.isfinite(null)]
    greater, less = null_p_value(observed, finite, "greater"), null_p_value(observed, finite, "less")
    two_sided = min(1.0, 2 * min(greater, less)) if np.isfinite(greater) else float("nan")
    return {
        "p_null_greater": greater,
        "p_null_less": less,
        "p_null": two_sided,
        "smallest_p": min(1.0, 2.0 / (finite.size + 1)),
        "above_null": bool(finite.size and observed > finite.mean()),
        "shuffles": int(finite.size),
    }


def sign_rank_test(per_run: Any) -> dict[str, Any]:
    """Is a per-run correlation positive across runs? Exact two-sided Wilcoxon signed-rank test.

    Returns
    -------
    dict
        ``p_positive`` (two-sided p of a zero median), ``smallest_p_positive`` (``2 / 2^n`` for
        ``n`` runs: what the exact test can reach), ``positive_direction`` (median above 0) and
        ``runs_tested``.
    """
    from scipy.stats import wilcoxon

    rho = np.asarray(per_run, dtype=float)
    rho = rho[np.isfinite(rho) & (rho != 0)]
    n = int(rho.size)
    p = float(wilcoxon(rho).pvalue) if n >= 2 else float("nan")
    return {"p_positive": p, "smallest_p_positive": min(1.0, 2.0 / 2**n) if n else 1.0,
            "positive_direction": bool(n and np.median(rho) > 0), "runs_tested": n}


def group_statistics(runs: list[dict[str, Any]], max_lag: int) -> dict[str, Any]:
    """Mean correlations over runs, tested against the same mean under the null and for being positive across runs."""
    from scipy.stats import binomtest

    def mean_and_null(key: str) -> dict[str, Any]:
        obs = np.array([r[key] for r in runs], dtype=float)
        null = nanmean([r[f"null_{key}"] for r in runs], 0)  # [K]: the null's mean over runs
        ok = obs[np.isfinite(obs)]
        positive = int((ok > 0).sum())
        mean = float(nanmean(obs))
        return {
            "mean": mean,
            "per_run": obs.tolist(),
            "null_mean": float(nanmean(null)),
            "null_std": float(nanstd(null)),
            **null_test(mean, null),
            **sign_rank_test(obs),
            "positive": positive,
            "n": int(ok.size),
            "p_sign": float(binomtest(positive, ok.size, 0.5, alternative="greater").pvalue)
            if ok.size
            else float("nan"),
        }

    lags = np.array([r["rho_Q_acc_lags"] for r in runs], dtype=float)  # [runs, lags]
    null_lags = nanmean([r["null_rho_Q_acc_lags"] for r in runs], 0)  # [K, lags]: the null's mean over runs
    lag_means = nanmean(lags, 0)
    lag_tests = [null_test(m, null_lags[:, d]) | sign_rank_test(lags[:, d]) for d, m in enumerate(lag_means)]
    robust = (
        np.array([r["robust_rho_Q_acc"] for r in runs], dtype=float) if runs[0]["robust_rho_Q_acc"] else None
    )

    def mean_std(key: str) -> list[float]:
        v = np.array([r[key] for r in runs], dtype=float)
        return [float(nanmean(v)), float(nanstd(v, ddof=1)) if len(v) > 1 else 0.0]

    return {
        "runs": len(runs),
        "Q_acc": mean_and_null("rho_Q_acc"),
        "Q_flex": mean_and_null("rho_Q_flex"),
        "Q_acc_lags": lag_means.tolist(),
        "null_Q_acc_lags": nanmean(null_lags, 0).tolist(),
        "p_null_Q_acc_lags": [t["p_null_greater"] for t in lag_tests],
        "Q_acc_lag_tests": lag_tests,
        "entropy_acc": float(nanmean([r["rho_entropy_acc"] for r in runs])),
        "flex_acc": float(nanmean([r["rho_flex_acc"] for r in runs])),
        "robust_Q_acc": nanmean(robust, 0).tolist() if robust is not None else [],
        **{
            k: mean_std(k)
            for k in (
                "final_accuracy",
                "final_Q",
                "first_Q",
                "null_first_Q",
                "null_final_Q",
                "mean_flexibility",
                "null_mean_flexibility",
                "final_entropy",
                "null_final_entropy",
                "Q_multilayer",
                "null_Q_multilayer",
            )
        },
    }


#: Per-run summaries compared across learning modes (claim C3).
MODE_SUMMARIES = ("rho_Q_acc", "final_Q", "mean_flexibility", "final_entropy", "rho_Q_flex")


def smallest_permutation_p(sizes: list[int], permutations: int) -> float:
    """Smallest p-value a Monte-Carlo permutation test of group labels can give.

    With ``P`` random relabelings the p-value ``(1 + hits) / (P + 1)`` is at least
    ``1 / (P + 1)``; and however many are drawn, it cannot fall below the share of distinct
    labelings that separate the groups as well as the most extreme one (``prod(n_g!)`` times
    the ways to swap groups of equal size, over ``n!``).
    """
    from math import factorial, lgamma

    n = sum(sizes)
    swaps = 1
    for size in set(sizes):
        swaps *= factorial(sizes.count(size))
    log_share = math.log(swaps) + sum(lgamma(k + 1) for k in sizes) - lgamma(n + 1)
    return min(1.0, max(1.0 / (permutations + 1), math.exp(log_share)))


def kruskal_permutation(samples: list[np.ndarray], permutations: int, seed: int) -> dict[str, float]:
    """Kruskal-Wallis H across groups, with a permutation p-value (labels shuffled over units).

    The chi-square approximation of H needs about five units per group; with three seeds per
    mode its p-value cannot fall below about 0.016 for four groups. Permuting the labels gives
    an exact-in-distribution test at any size; the rank statistic ``sum_g R_g^2 / n_g`` is
    monotone in H for fixed group sizes, so it orders permutations as H does.
    """
    from scipy.stats import kruskal, rankdata

    sizes = [len(x) for x in samples]
    values = np.concatenate(samples)
    labels = np.repeat(np.arange(len(samples)), sizes)
    ranks = rankdata(values)
    n_g = np.asarray(sizes, dtype=float)

    def statistic(lab: np.ndarray) -> np.ndarray:  # lab [P, n]
        sums = np.stack([(ranks * (lab == g)).sum(-1) for g in range(len(samples))], -1)
        return (sums**2 / n_g).sum(-1)

    rng = np.random.default_rng(seed)
    perms = np.argsort(rng.random((permutations, values.size)), axis=1)
    observed = statistic(labels[None])[0]
    hits = int((statistic(labels[perms]) >= observed - 1e-9).sum())
    return {
        "H": float(kruskal(*samples).statistic),
        "p": (1 + hits) / (permutations + 1),
        "smallest_p": smallest_permutation_p(sizes, permutations),
        "permutations": permutations,
    }


def eta_squared_h(samples: list[np.ndarray]) -> float:
    """Rank effect size of a Kruskal-Wallis test, ``eta^2_H = (H - k + 1) / (n - k)``, clipped to [0, 1].

    ``k`` groups, ``n`` values (Tomczak & Tomczak, Trends Sport Sci. 21:19, 2014). Unlike
    ``epsilon^2 = H / (n - 1)``, whose mean under no difference is about ``(k - 1) / (n - 1)``
    (0.27 for 4 modes x 3 runs, above Cohen's 'large' 0.14), ``eta^2_H`` is about 0 then,
    because ``E[H] = k - 1`` under the null. 0 when all values are equal.
    """
    from scipy.stats import kruskal

    values = np.concatenate(samples)
    n, k = values.size, len(samples)
    if n <= k or np.ptp(values) == 0:
        return 0.0
    h = float(kruskal(*samples).statistic)
    return float(np.clip((h - k + 1) / (n - k), 0.0, 1.0))


def eta_squared_h_interval(samples: list[np.ndarray], n_boot: int, seed: int,
                             level: float = 0.95) -> tuple[float, float, float]:
    """``eta^2_H`` and a percentile bootstrap interval (runs resampled within each mode).

    With few runs per mode the bootstrap inflates ``eta^2_H`` (duplicated runs tie within
    their mode), so the upper bound is conservative for a claim that modes are alike: it can
    show "no large difference" only when there are enough runs.
    """
    rng = np.random.default_rng(seed)
    boot = np.empty(n_boot)
    for b in range(n_boot):
        boot[b] = eta_squared_h([s[rng.integers(0, len(s), len(s))] for s in samples])
    tail = (1 - level) / 2
    return eta_squared_h(samples), float(np.quantile(boot, tail)), float(np.quantile(boot, 1 - tail))


def mode_differences(
    runs_by_mode: dict[str, list[dict[str, Any]]], permutations: int = 9999, seed: int = 0, n_boot: int = 2000
) -> dict[str, dict[str, float]]:
    """Permutation Kruskal-Wallis test across learning modes of each per-run summary (claim C3).

    Each entry also holds the rank effect size ``eta2`` with its bootstrap interval
    (``eta2_low``, ``eta2_high``; :func:`eta_squared_h_interval`), so that the claim
    can also come out "not supported" when every summary's difference is shown to be small.
    """
    out = {}
    groups = [g for g in runs_by_mode.values() if len(g) >= 2]
    for i, key in enumerate(MODE_SUMMARIES):
        samples = [np.array([r[key] for r in g], dtype=float) for g in groups]
        samples = [s[np.isfinite(s)] for s in samples]
        if len(samples) < 2 or any(len(s) < 2 for s in samples) or np.ptp(np.concatenate(samples)) == 0:
            out[key] = {"H": float("nan"), "p": float("nan"), "smallest_p": 1.0, "permutations": permutations,
                        "eta2": float("nan"), "eta2_low": float("nan"), "eta2_high": float("nan"),
                        "runs": int(sum(len(s) for s in samples))}
            continue
        eps, low, high = eta_squared_h_interval(samples, n_boot, seed + 100 + i)
        out[key] = kruskal_permutation(samples, permutations, seed + i) | {
            "eta2": eps, "eta2_low": low, "eta2_high": high, "boot": n_boot,
            "runs": int(sum(len(s) for s in samples))}
    return out


def run_statistics(
    settings: dict[str, Any],
    analysis_paths: list[str],
    summary_paths: list[str],
    eval_paths: list[str],
    out: str,
) -> None:
    """The ``hebbff_statistics`` rule: every claim's statistic, per mode and over all runs."""
    from reprolab.core.io import read_json, write_json

    cfg = settings["analysis"]
    runs, runs_by_mode = [], {}
    summaries = {(s["mode"], int(s["seed"])): s for s in map(read_json, summary_paths)}
    evals = {(e["mode"], int(e["seed"])): e for e in map(read_json, eval_paths)}
    for path in analysis_paths:
        key = next(k for k in summaries if Path(path).parent.name == f"{k[0]}_s{k[1]}")
        r = run_measures(load_arrays(path), cfg["entropy"], cfg["window"], cfg["max_lag"])
        r.update(
            mode=key[0],
            seed=key[1],
            accuracy_task_R=evals[key]["accuracy_task_R"],
            accuracy_trained_R=evals[key]["accuracy_trained_R"],
            trained_R=evals[key]["trained_R"],
            generalises_to_R=evals[key]["generalises_to_R"],
            consensus=summaries[key]["consensus"],
        )
        runs.append(r)
        runs_by_mode.setdefault(key[0], []).append(r)
    order = [m for m in settings["modes"] if m in runs_by_mode]
    write_json(
        out,
        {
            "modes": order,
            "alpha": cfg["alpha"],
            "entropy": cfg["entropy"],
            "window": cfg["window"],
            "max_lag": cfg["max_lag"],
            "robustness": cfg.get("robustness", []),
            "by_mode": {m: group_statistics(runs_by_mode[m], cfg["max_lag"]) for m in order},
            "all": group_statistics(runs, cfg["max_lag"]),
            "mode_differences": mode_differences(
                {m: runs_by_mode[m] for m in order}, cfg["mode_permutations"], int(cfg["seed"]), cfg["mode_boot"]
            ),
            "mode_min_effect": cfg["mode_min_effect"],
            "test_repeats": int(cfg["null_model"]["repeats"]),
            "shuffles": int(cfg["null_model"]["shuffles"]),
            "runs": [
                {k: v for k, v in r.items() if k != "series"}
                | {"series": {k: np.asarray(v).tolist() for k, v in r["series"].items()}}
                for r in runs
            ],
        },
    )
