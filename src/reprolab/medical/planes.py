"""Self-supervised pretext tasks from anatomy-oriented imaging planes (the ``planes`` paper).

Zhang, Wei, Zhu, Gu, Zheng. "Self-Supervised Learning for Medical Image Data with Anatomy-Oriented
Imaging Planes". Medical Image Analysis 94 (2024) 103151, arXiv:2403.16499.

Pretext tasks on short-axis (SAX) images (card, section 2):

(a) intersecting lines: for each long-axis view (2CH, 4CH) the line where its plane meets the SAX
    plane, as a Gaussian heatmap ``exp(-d^2 / (2 sigma^2))`` of the distance ``d`` to the line
    (one channel per view), regressed by the U-Net's output with a pixel-wise MSE;
(b) relative slice location: ``(loc - min) / (max - min)`` of ``loc = -(n . IPP)`` over the
    subject's SAX images, regressed by a head on the U-Net's bottleneck with an MSE.

The pretraining loss is ``alpha L_heat + beta L_slice``; the arms are line-only (``beta = 0``),
slice-only (``alpha = 0``) and multitask. Every pretrained U-Net (all but its output layer) then
initialises a segmentation U-Net trained with cross-entropy on a few labelled subjects; the
``scratch`` arm starts from random weights. Departures from the official code (card, section 7):
the learning rate starts at the configured value (the official schedule multiplies it by 0.3 at
epoch 0); intensities are z-scored without a uint8 cast; model selection uses a validation split;
line end points are clipped against all four borders; pixel spacing is taken per axis.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reprolab.core import distributed as dd
from reprolab.core.errors import ConfigError, DataError
from reprolab.core.io import atomic_path, write_json
from reprolab.medical.geometry import (
    Line2D,
    line_in_pixels,
    plane_intersection,
    relative_slice_locations,
    resample_image,
    slice_location,
)
from reprolab.medical.planes_data import LAX_VIEWS, Study

log = logging.getLogger("reprolab.planes")

#: Pretraining arms and their loss weights' switches (heatmap, slice).
PRETEXT_TASKS: dict[str, tuple[bool, bool]] = {"line": (True, False), "slice": (False, True),
                                               "multitask": (True, True)}
ARMS: tuple[str, ...] = ("scratch", "line", "slice", "multitask")


# --------------------------------------------------------------------------- preprocessing


def zscore(images: np.ndarray) -> np.ndarray:
    """Per-image z-score over the last two axes (original intensities, no uint8 cast)."""
    mean = images.mean(axis=(-2, -1), keepdims=True)
    std = images.std(axis=(-2, -1), keepdims=True)
    return ((images - mean) / np.maximum(std, 1e-6)).astype(np.float32)


def pretext_targets(study: Study, spacing_mm: float, size: int) -> dict[str, np.ndarray]:
    """Inputs and pretext targets of every SAX image of one study.

    Each SAX image is resampled to ``spacing_mm`` isotropic pixels on a ``size x size`` grid
    centred on the image (zero padding), z-scored per frame; its intersecting lines with the
    2CH and 4CH planes are expressed in that grid's pixels; its relative slice location is taken
    over all SAX images of the study.

    Returns
    -------
    dict
        ``image [n, F, size, size]`` float32, ``line [n, 2, 3]`` (``a, b, c`` of each view's
        line, NaN where the planes are parallel), ``slice [n]``.
    """
    rel = relative_slice_locations([im.plane for im in study.sax])
    images, lines = [], []
    for im in study.sax:
        grid = im.plane.regrid(spacing_mm, size)
        images.append(zscore(resample_image(im.pixels, im.plane, grid)))
        row = []
        for view in LAX_VIEWS:
            meet = plane_intersection(grid, study.lax[view].plane)
            line = line_in_pixels(grid, meet) if meet is not None else None
            row.append([line.a, line.b, line.c] if line is not None else [np.nan] * 3)
        lines.append(row)
    frames = max(i.shape[0] for i in images)
    image = np.stack([np.concatenate([i, np.repeat(i[-1:], frames - len(i), 0)]) for i in images])
    return {"image": image, "line": np.asarray(lines, dtype=np.float64), "slice": rel.astype(np.float32),
            "frames": np.array([len(i) for i in images])}


def build_pretext_data(studies: Sequence[Study], spacing_mm: float, size: int, out_path: str | Path) -> None:
    """The ``planes_pretext_data`` rule: pretext inputs and targets of every pretraining subject.

    Writes ``image [n, F, H, W]`` (float16), ``line``, ``slice``, ``frames``, ``subject`` (index
    into ``subjects``), ``subjects`` and ``roles``.
    """
    studies = [s for s in studies if s.role.startswith("pretrain")]
    if not studies:
        raise DataError("no pretraining subjects (roles pretrain, pretrain_val, pretrain_test) in the data")
    parts = [pretext_targets(s, spacing_mm, size) for s in studies]
    frames = max(p["image"].shape[1] for p in parts)
    image = np.concatenate([np.concatenate([p["image"], np.repeat(p["image"][:, -1:], frames - p["image"].shape[1], 1)],
                                           axis=1) for p in parts])
    arrays = {
        "image": image.astype(np.float16), "line": np.concatenate([p["line"] for p in parts]),
        "slice": np.concatenate([p["slice"] for p in parts]), "frames": np.concatenate([p["frames"] for p in parts]),
        "subject": np.concatenate([np.full(len(p["slice"]), i) for i, p in enumerate(parts)]),
        "subjects": np.array([s.subject for s in studies]), "roles": np.array([s.role for s in studies]),
        "spacing_mm": np.array(spacing_mm),
    }
    _save_npz(out_path, arrays)
    log.info("pretext data: %d images of %d subjects, %d frame(s) each at most, %s px", len(image), len(studies),
             frames, image.shape[-2:])


def build_segmentation_data(studies: Sequence[Study], spacing_mm: float, size: int, class_names: Sequence[str],
                            out_path: str | Path) -> None:
    """The ``planes_segmentation_data`` rule: labelled SAX slices resampled like the pretext inputs.

    Labels are resampled by nearest neighbour. Every study (subject and phase) is one volume:
    its slices sorted by slice location, with the slice gap kept for surface distances.
    Writes ``image [n, H, W]`` (float16, first frame), ``label [n, H, W]`` (uint8), ``volume [n]``,
    ``volume_subject [V]`` (index into ``subjects``), ``volume_phase [V]``, ``volume_gap_mm [V]``,
    ``subjects``, ``roles``, ``n_classes`` and ``class_names`` (of the foreground classes 1, 2, ...).
    """
    studies = [s for s in studies if s.role in ("train", "val", "test")]
    if not studies:
        raise DataError("no labelled subjects (roles train, val, test) in the data")
    subjects = sorted({s.subject for s in studies})
    roles = {s.subject: s.role for s in studies}
    images, labels, volume, gaps = [], [], [], []
    for v, study in enumerate(studies):
        if any(im.label is None for im in study.sax):
            raise DataError(f"subject {study.subject} {study.phase}: an image without a label in the segmentation data")
        order = np.argsort([slice_location(im.plane) for im in study.sax])
        locs = np.sort([slice_location(im.plane) for im in study.sax])
        gaps.append(float(np.median(np.diff(locs))) if len(locs) > 1 else spacing_mm)
        for k in order:
            im = study.sax[k]
            grid = im.plane.regrid(spacing_mm, size)
            images.append(zscore(resample_image(im.pixels[:1], im.plane, grid))[0])
            labels.append(resample_image(im.label, im.plane, grid, order=0))
            volume.append(v)
    label = np.stack(labels).astype(np.uint8)
    if label.max() > len(class_names):
        raise DataError(f"labels go up to {label.max()} but only {len(class_names)} foreground classes are named")
    arrays = {
        "image": np.stack(images).astype(np.float16), "label": label, "volume": np.array(volume),
        "volume_subject": np.array([subjects.index(s.subject) for s in studies]),
        "volume_phase": np.array([s.phase for s in studies]), "volume_gap_mm": np.array(gaps),
        "subjects": np.array(subjects), "roles": np.array([roles[s] for s in subjects]),
        "n_classes": np.array(len(class_names) + 1), "class_names": np.array(list(class_names)),
        "spacing_mm": np.array(spacing_mm),
    }
    _save_npz(out_path, arrays)
    log.info("segmentation data: %d slices in %d volumes of %d subjects (%s)", len(label), len(studies),
             len(subjects), {r: sum(x == r for x in roles.values()) for r in ("train", "val", "test")})


def load_studies(source: str | Path, data_cfg: Mapping[str, Any], kind: str) -> list[Study]:
    """The studies of a data rule's input: the demo planes file, or the unpacked DSB2 / ACDC folder.

    Parameters
    ----------
    source
        ``demo_planes.npz`` (``data.source: demo``) or the ``.complete`` marker of the unpacked
        dataset (``data.source: paper``).
    data_cfg
        ``papers.planes.<scale>.data``.
    kind
        ``"pretext"`` (DSB2) or ``"segmentation"`` (ACDC).
    """
    from reprolab.medical.planes_data import load_demo, read_acdc, read_dsb2

    if data_cfg["source"] == "demo":
        return load_demo(source)
    folder = Path(source).parent
    if kind == "pretext":
        spec = data_cfg["dsb2"]
        return read_dsb2(folder, spec["split"], spec["seed"], spec["max_frames"], spec.get("limit"))
    spec = data_cfg["acdc"]
    return read_acdc(folder, spec["split"], spec["seed"], spec.get("limit"))


def make_pretext_data(source: str, data_cfg: Mapping[str, Any], preprocess: Mapping[str, Any], out: str) -> None:
    """The ``planes_pretext_data`` rule."""
    build_pretext_data(load_studies(source, data_cfg, "pretext"), preprocess["spacing_mm"], preprocess["size"], out)


def make_segmentation_data(source: str, data_cfg: Mapping[str, Any], preprocess: Mapping[str, Any],
                           class_names: Sequence[str], out: str) -> None:
    """The ``planes_segmentation_data`` rule (pixel size ``segmentation_spacing_mm`` if given, else ``spacing_mm``)."""
    spacing = preprocess.get("segmentation_spacing_mm", preprocess["spacing_mm"])
    build_segmentation_data(load_studies(source, data_cfg, "segmentation"), spacing, preprocess["size"], class_names,
                            out)


def _save_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` written by this module, naming the file if it is unreadable."""
    try:
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"{path}: unreadable ({err}); delete it and rerun the rule that writes it") from err


# --------------------------------------------------------------------------- targets in torch


def line_heatmaps(lines, size: int, sigma_px: float):
    """Gaussian line heatmaps of a batch, ``[B, V, size, size]``, from line coefficients ``[B, V, 3]``.

    The torch twin of :func:`reprolab.medical.geometry.line_heatmap`; NaN lines give zero maps.
    """
    import torch

    coords = torch.arange(size, dtype=lines.dtype, device=lines.device)
    a, b, c = (lines[..., i, None, None] for i in range(3))
    dist = a * coords[None, None, None, :] + b * coords[None, None, :, None] + c
    heat = torch.exp(-dist.square() / (2.0 * sigma_px**2))
    return torch.nan_to_num(heat, nan=0.0)


def fit_line(heatmap: np.ndarray, floor: float = 0.5) -> Line2D | None:
    """The line best explaining a (predicted) heatmap: principal axis of the pixels above ``floor * max``.

    Weighted by the heatmap values; ``None`` if fewer than two pixels pass or the map is flat.
    """
    peak = float(heatmap.max())
    if peak <= 1e-6:
        return None
    v, u = np.nonzero(heatmap >= floor * peak)
    if len(u) < 2:
        return None
    w = heatmap[v, u].astype(float)
    centre = np.array([u @ w, v @ w]) / w.sum()
    d = np.stack([u, v], 1) - centre
    cov = (d * w[:, None]).T @ d
    direction = np.linalg.eigh(cov)[1][:, -1]
    if not np.isfinite(direction).all():
        return None
    return Line2D.through(centre, centre + direction)


def line_errors(true: Line2D, pred: Line2D | None, size: int) -> tuple[float, float]:
    """Angle between two lines (degrees, 0-90) and the distance of the true line's point nearest the
    image centre from the predicted line (pixels); NaN for a missing prediction."""
    if pred is None:
        return float("nan"), float("nan")
    cos = abs(true.a * pred.a + true.b * pred.b)
    angle = float(np.degrees(np.arccos(min(1.0, cos))))
    centre = np.array([(size - 1) / 2, (size - 1) / 2])
    off = true.a * centre[0] + true.b * centre[1] + true.c
    foot = centre - off * np.array([true.a, true.b])
    return angle, float(pred.distance(foot[0], foot[1]))


# --------------------------------------------------------------------------- models and training state


@dataclass
class Best:
    """The best weights seen so far by a validation score (checkpointed with the run)."""

    score: float = float("inf")
    epoch: int = 0
    state: dict | None = None
    lower_is_better: bool = True

    def offer(self, score: float, epoch: int, model) -> None:
        better = score < self.score if self.lower_is_better else score > self.score
        if self.state is None or better:
            self.score, self.epoch = float(score), int(epoch)
            self.state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

    def state_dict(self) -> dict[str, Any]:
        return {"score": self.score, "epoch": self.epoch, "state": self.state, "lower": self.lower_is_better}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.score, self.epoch, self.state = state["score"], state["epoch"], state["state"]
        self.lower_is_better = state["lower"]


def pretext_model(model_cfg: Mapping[str, Any]):
    """U-Net with two heatmap channels and the bottleneck slice-location head."""
    from reprolab.medical.segmentation import UNetWithHead, basic_unet

    unet = basic_unet(1, len(LAX_VIEWS), model_cfg["features"])
    return UNetWithHead(unet, model_cfg["features"][4], model_cfg["head_hidden"], model_cfg["head_dropout"])


def segmentation_model(model_cfg: Mapping[str, Any], n_classes: int):
    """The same U-Net with an output layer of ``n_classes`` channels."""
    from reprolab.medical.segmentation import basic_unet

    return basic_unet(1, n_classes, model_cfg["features"])


def loss_weights(arm: str, loss_cfg: Mapping[str, float]) -> tuple[float, float]:
    """``(alpha, beta)`` of a pretraining arm."""
    if arm not in PRETEXT_TASKS:
        raise ConfigError(f"papers.planes.arms: {arm!r} is not a pretraining arm ({', '.join(PRETEXT_TASKS)})")
    heat, slc = PRETEXT_TASKS[arm]
    return float(loss_cfg["alpha"]) * heat, float(loss_cfg["beta"]) * slc


def _optimiser(model, optim: Mapping[str, Any]):
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=optim["lr"])
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=optim["lr_step"], gamma=optim["lr_gamma"])
    return opt, sched


def _l1(model) -> Any:
    return sum(p.abs().sum() for p in model.parameters())


# --------------------------------------------------------------------------- pretraining


class PretextData:
    """Pretext arrays of one role, with the paper's sampling (one random image and frame per subject)."""

    def __init__(self, arrays: Mapping[str, np.ndarray], role: str) -> None:
        keep_subjects = np.flatnonzero(arrays["roles"] == role)
        mask = np.isin(arrays["subject"], keep_subjects)
        self.image, self.line = arrays["image"][mask], arrays["line"][mask]
        self.slice, self.frames, self.subject = arrays["slice"][mask], arrays["frames"][mask], arrays["subject"][mask]
        self.subjects = np.unique(self.subject)
        if len(self.subjects) == 0:
            raise DataError(f"the pretext data has no subject with role {role!r}; check data.*.subjects in the config")

    def epoch_items(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One ``(image index, frame)`` per subject, subjects in random order."""
        index = np.array([rng.choice(np.flatnonzero(self.subject == s)) for s in rng.permutation(self.subjects)])
        return index, rng.integers(0, self.frames[index])

    def all_items(self) -> tuple[np.ndarray, np.ndarray]:
        """Every image, first frame (evaluation)."""
        return np.arange(len(self.slice)), np.zeros(len(self.slice), dtype=int)

    def batch(self, index: np.ndarray, frame: np.ndarray, device: str):
        import torch

        x = torch.as_tensor(self.image[index, frame].astype(np.float32)[:, None], device=device)
        return (x, torch.as_tensor(self.line[index], device=device),
                torch.as_tensor(self.slice[index].astype(np.float32), device=device))


def _pretext_losses(model, data: PretextData, index, frame, sigma: float, device: str):
    import torch.nn.functional as F

    x, lines, slc = data.batch(index, frame, device)
    heat_pred, slice_pred = model(x)
    target = line_heatmaps(lines.to(heat_pred.dtype), x.shape[-1], sigma)
    return F.mse_loss(heat_pred, target), F.mse_loss(slice_pred[:, 0], slc)


def pretrain(arm: str, cfg: Mapping[str, Any], data_path: str | Path, seed: int, device: str,
             checkpoint_dir: str | Path, sync_batchnorm: bool = False) -> tuple[Any, list[dict[str, Any]], Best]:
    """Pretrain one arm (card, sections 2.2-2.4); resumable through ``checkpoint_dir``.

    Every epoch draws one random SAX image (and frame) per training subject, in batches of
    ``pretrain.batch_size``; the validation loss (same weights) selects the best epoch.

    Inside a data-parallel process group (:func:`reprolab.core.distributed.launch_training`)
    every process draws the same global batches, takes its share
    (:func:`reprolab.core.distributed.local_share`) and trains the DDP-wrapped model; training
    losses are summed over processes, BatchNorm running statistics are taken from rank 0 before
    validation (so every process validates and keeps the same best weights), and only rank 0
    writes the checkpoint. ``sync_batchnorm`` (``resources.sync_batchnorm``, CUDA only) normalises
    over the global batch; otherwise each process normalises over its share.

    Returns
    -------
    tuple
        The model holding the best weights, the per-epoch history and the :class:`Best` record.
    """
    from reprolab.core.loop import epoch_seed, run_epochs, run_key
    from reprolab.core.runtime import seed_everything

    alpha, beta = loss_weights(arm, cfg["loss"])
    spec, sigma = cfg["pretrain"], float(cfg["heatmap_sigma_px"])
    arrays = load_npz(data_path)
    train, val = PretextData(arrays, "pretrain"), PretextData(arrays, "pretrain_val")
    seed_everything(seed)
    model = pretext_model(cfg["model"]).to(device)
    net = dd.wrap(model, device, sync_batchnorm)
    opt, sched = _optimiser(model, spec)
    best = Best()
    skip_below = max(2, dd.world_size())  # batch norm cannot train on a single image; every process needs one

    def epoch_fn(epoch: int) -> dict[str, float]:
        rng = np.random.default_rng(epoch_seed(seed, epoch))
        net.train()
        index, frame = train.epoch_items(rng)
        sums, used = np.zeros(3), 0
        for start in range(0, len(index), spec["batch_size"]):
            batch = np.arange(start, min(start + spec["batch_size"], len(index)))
            if len(batch) < skip_below < len(index):  # a trailing batch too small to train on (or to split)
                continue
            part = dd.local_share(batch)
            heat, slc = _pretext_losses(net, train, index[part], frame[part], sigma, device)
            loss = alpha * heat + beta * slc
            # the share weight is exactly 1.0 with one process: the same numbers as plain ``loss``
            weighted = loss * dd.share_weight(len(part), len(batch))
            if spec["l1"] > 0:
                penalty = spec["l1"] * _l1(model)
                loss, weighted = loss + penalty, weighted + penalty
            opt.zero_grad(set_to_none=True)
            weighted.backward()
            opt.step()
            sums += np.array([loss.item(), heat.item(), slc.item()]) * len(part)
            used += len(part)
        sched.step()
        dd.sync_buffers(model)
        val_heat, val_slice = _pretext_eval_losses(model, val, sigma, device, spec["batch_size"])
        val_loss = alpha * val_heat + beta * val_slice
        best.offer(val_loss, epoch + 1, model)
        reduced = dd.reduce_sums({"loss": sums[0], "heat": sums[1], "slice": sums[2], "used": used})
        train_loss, train_heat, train_slice = (np.array([reduced["loss"], reduced["heat"], reduced["slice"]])
                                               / max(reduced["used"], 1))
        return {"train_loss": train_loss, "train_heat": train_heat, "train_slice": train_slice,
                "val_loss": val_loss, "val_heat": val_heat, "val_slice": val_slice,
                "lr": opt.param_groups[0]["lr"]}

    key = run_key({"arm": arm, "seed": seed, "cfg": {k: cfg[k] for k in ("model", "pretrain", "loss",
                                                                            "heatmap_sigma_px")}})
    history = run_epochs(epoch_fn, {"model": model, "opt": opt, "sched": sched, "best": best}, spec["epochs"], seed,
                         key, checkpoint_dir, desc=f"pretrain {arm}")
    model.load_state_dict(best.state)
    model.eval()
    return model, history, best


def _pretext_eval_losses(model, data: PretextData, sigma: float, device: str, batch: int) -> tuple[float, float]:
    import torch

    model.eval()
    index, frame = data.all_items()
    sums = np.zeros(2)
    with torch.no_grad():
        for start in range(0, len(index), batch):
            sl = slice(start, start + batch)
            heat, slc = _pretext_losses(model, data, index[sl], frame[sl], sigma, device)
            sums += np.array([heat.item(), slc.item()]) * len(index[sl])
    return tuple(float(x) for x in sums / len(index))


def predict_pretext(model, data: PretextData, device: str, batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Predicted heatmaps ``[n, 2, H, W]`` and slice locations ``[n]`` of every image (first frame)."""
    import torch

    model.eval()
    index, frame = data.all_items()
    heats, slices = [], []
    with torch.no_grad():
        for start in range(0, len(index), batch):
            x, _, _ = data.batch(index[start:start + batch], frame[start:start + batch], device)
            h, s = model(x)
            heats.append(h.cpu().numpy())
            slices.append(s[:, 0].cpu().numpy())
    return np.concatenate(heats), np.concatenate(slices)


def evaluate_pretext(model, data: PretextData, arm: str, sigma: float, device: str,
                     n_examples: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Pretext accuracy on held-out subjects: slice location (Pearson r, MAE) and line fits.

    Returns
    -------
    tuple
        The JSON record (per-image values included) and example arrays for the F1 figure
        (inputs, true and predicted heatmaps, true and fitted lines' end points).
    """
    import torch

    heat_pred, slice_pred = predict_pretext(model, data, device)
    size = data.image.shape[-1]
    lines = data.line
    heat_true = line_heatmaps(torch.as_tensor(lines), size, sigma).numpy()
    angle = np.full(lines.shape[:2], np.nan)
    offset = np.full(lines.shape[:2], np.nan)
    fitted = np.full(lines.shape, np.nan)
    for i in range(len(lines)):
        for v in range(lines.shape[1]):
            if np.isnan(lines[i, v]).any():
                continue
            pred = fit_line(heat_pred[i, v])
            angle[i, v], offset[i, v] = line_errors(Line2D(*lines[i, v]), pred, size)
            if pred is not None:
                fitted[i, v] = (pred.a, pred.b, pred.c)
    heat_on, slice_on = PRETEXT_TASKS[arm]
    true_slice = data.slice.astype(float)
    record = {
        "arm": arm, "heat_trained": heat_on, "slice_trained": slice_on, "n_images": len(true_slice),
        "n_subjects": len(data.subjects), "subject": data.subject.tolist(),
        "slice_true": true_slice.tolist(), "slice_pred": slice_pred.astype(float).tolist(),
        "slice_mae": float(np.mean(np.abs(slice_pred - true_slice))),
        "slice_r": float(np.corrcoef(slice_pred, true_slice)[0, 1]) if np.std(slice_pred) > 0 else float("nan"),
        "heat_mse": float(np.mean((heat_pred - heat_true) ** 2)),
        # constant predictions for comparison: no line, the held-out images' mean heatmap and mean location
        "heat_mse_zero": float(np.mean(heat_true**2)),
        "heat_mse_constant": float(np.mean((heat_true - heat_true.mean(axis=0)) ** 2)),
        "slice_mae_constant": float(np.mean(np.abs(true_slice - true_slice.mean()))),
        "line_angle_deg": angle.tolist(), "line_offset_px": offset.tolist(),
        "line_angle_median_deg": [float(np.nanmedian(angle[:, v])) for v in range(angle.shape[1])],
        "line_offset_median_px": [float(np.nanmedian(offset[:, v])) for v in range(offset.shape[1])],
        "views": list(LAX_VIEWS),
    }
    pick = np.linspace(0, len(true_slice) - 1, min(n_examples, len(true_slice))).round().astype(int)
    examples = {"image": data.image[pick, 0].astype(np.float32), "heat_true": heat_true[pick],
                "heat_pred": heat_pred[pick], "line_true": lines[pick], "line_pred": fitted[pick],
                "slice_true": true_slice[pick], "slice_pred": slice_pred[pick]}
    return record, examples


def run_pretraining(arm: str, cfg: Mapping[str, Any], data_path: str, device_pref: str, threads: int,
                    checkpoint_dir: str, out: Mapping[str, str]) -> None:
    """The ``planes_pretrain`` rule: pretrain one arm, evaluate it on the held-out pretext subjects.

    ``out`` names the files written: ``model`` (weights), ``history`` (per-epoch losses),
    ``eval`` (held-out pretext accuracy, per image) and ``examples`` (arrays of the F1 figure).
    Runs in the processes ``cfg["resources"]`` asks for
    (:func:`reprolab.core.distributed.launch_training`); only rank 0 evaluates and writes.
    """
    dd.launch_training(_pretrain_job, (arm, cfg, data_path, checkpoint_dir, dict(out)), cfg.get("resources"),
                       device_pref, threads)


def _pretrain_job(arm: str, cfg: Mapping[str, Any], data_path: str, checkpoint_dir: str, out: Mapping[str, str], *,
                  device: str, sync_batchnorm: bool) -> None:
    """Body of :func:`run_pretraining` in every process."""
    import torch

    seed = int(cfg["pretrain_seed"])
    model, history, best = pretrain(arm, cfg, data_path, seed, device, checkpoint_dir, sync_batchnorm)
    if not dd.is_main():
        return
    test = PretextData(load_npz(data_path), "pretrain_test")
    record, examples = evaluate_pretext(model, test, arm, float(cfg["heatmap_sigma_px"]), device,
                                        cfg["pretrain"]["examples"])
    with atomic_path(out["model"]) as tmp:
        torch.save({"state_dict": {k: v.cpu() for k, v in model.state_dict().items()}, "arm": arm, "seed": seed,
                    "model": dict(cfg["model"]), "best_epoch": best.epoch}, tmp)
    write_json(out["history"], {"arm": arm, "seed": seed, "device": device, "best_epoch": best.epoch,
                                "alpha_beta": loss_weights(arm, cfg["loss"]), "epochs": history})
    write_json(out["eval"], {**record, "seed": seed, "best_epoch": best.epoch})
    _save_npz(out["examples"], examples)


# --------------------------------------------------------------------------- segmentation


class SegmentationData:
    """Labelled slices and volumes of one role."""

    def __init__(self, arrays: Mapping[str, np.ndarray], role: str, subjects: Sequence[int] | None = None) -> None:
        volume_ok = arrays["roles"][arrays["volume_subject"]] == role
        if subjects is not None:
            volume_ok &= np.isin(arrays["volume_subject"], subjects)
        self.volumes = np.flatnonzero(volume_ok)
        mask = np.isin(arrays["volume"], self.volumes)
        self.image, self.label, self.volume = arrays["image"][mask], arrays["label"][mask], arrays["volume"][mask]
        self.volume_subject = arrays["volume_subject"][self.volumes]
        self.volume_phase = arrays["volume_phase"][self.volumes]
        self.volume_gap = arrays["volume_gap_mm"][self.volumes]
        self.subject_names = arrays["subjects"][self.volume_subject]
        self.spacing = float(arrays["spacing_mm"])
        if len(self.volumes) == 0:
            raise DataError(f"the segmentation data has no volume with role {role!r}"
                            + (f" among subjects {list(subjects)}" if subjects is not None else ""))


def label_budget_subjects(arrays: Mapping[str, np.ndarray], budget: int | str, seed: int) -> np.ndarray:
    """The labelled subjects of a budget: the first ``budget`` of a seeded permutation of the pool.

    Budgets are nested for one seed (the 2 subjects of budget 2 include budget 1's) and equal
    across arms, so arms are compared on the same labelled images; ``"all"`` is the whole pool.
    """
    pool = np.flatnonzero(arrays["roles"] == "train")
    order = np.random.default_rng([seed, 7919]).permutation(pool)
    if budget == "all":
        return np.sort(order)
    if int(budget) > len(order):
        raise ConfigError(f"papers.planes finetune.budgets: {budget} labelled subjects requested but the pool has "
                          f"{len(order)}; lower the budget or add subjects")
    return np.sort(order[:int(budget)])


def _rotate_batch(x, y, max_deg: float, generator):
    """Random rotations in ``[-max_deg, max_deg]``, bilinear for images and nearest for labels."""
    import torch
    import torch.nn.functional as F

    if max_deg <= 0:
        return x, y
    angle = (torch.rand(len(x), generator=generator) * 2 - 1) * np.radians(max_deg)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, torch.zeros_like(cos)], 1),
                         torch.stack([sin, cos, torch.zeros_like(cos)], 1)], 1).to(x)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    y = F.grid_sample(y[:, None].float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return x, y[:, 0].long()


def segmentation_loss(name: str):
    """The fine-tuning loss ``(logits [B, C, H, W], labels [B, H, W]) -> scalar``.

    ``ce``: cross-entropy (the official code). ``dice_ce``: MONAI's ``DiceCELoss`` (soft Dice of
    the softmax plus cross-entropy, equal weights), which learns rare classes within a short
    schedule.
    """
    import torch.nn.functional as F

    if name == "ce":
        return F.cross_entropy
    if name == "dice_ce":
        from monai.losses import DiceCELoss

        dice_ce = DiceCELoss(to_onehot_y=True, softmax=True)
        return lambda logits, labels: dice_ce(logits, labels[:, None])
    raise ConfigError(f"papers.planes finetune.loss: {name!r} is not ce or dice_ce")


def _epoch_batches(n: int, batch_size: int, steps: int | str, generator) -> list[np.ndarray]:
    """Slice indices of one epoch's batches: one shuffled pass (``steps == "pass"``) or ``steps``
    batches drawn with replacement."""
    import torch

    if steps == "pass":
        order = torch.randperm(n, generator=generator).numpy()
        batches = [order[i:i + batch_size] for i in range(0, n, batch_size)]
        return [b for b in batches if len(b) > 1] or batches  # batch norm cannot train on one slice
    return [torch.randint(n, (batch_size,), generator=generator).numpy() for _ in range(int(steps))]


def predict_volumes(model, data: SegmentationData, device: str, batch: int = 64) -> np.ndarray:
    """Arg-max labels of every slice ``[n, H, W]``."""
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(data.image), batch):
            x = torch.as_tensor(data.image[start:start + batch].astype(np.float32)[:, None], device=device)
            out.append(model(x).argmax(1).cpu().numpy().astype(np.uint8))
    return np.concatenate(out)


def score_volumes(pred: np.ndarray, data: SegmentationData, n_classes: int, surface: bool) -> dict[str, Any]:
    """Per-volume metrics (3-D Dice, HD, ASSD per foreground class) of predicted slices."""
    from reprolab.medical.segmentation import volume_metrics

    rows: dict[str, list] = {"dice": [], "hd": [], "assd": []}
    for v, gap in zip(data.volumes, data.volume_gap, strict=True):
        sel = data.volume == v
        m = volume_metrics(np.moveaxis(pred[sel], 0, -1), np.moveaxis(data.label[sel], 0, -1), n_classes,
                           (data.spacing, data.spacing, gap), surface=surface)
        for name, values in rows.items():
            values.append(m[name])
    return {"volume": data.volumes.tolist(), "subject": data.subject_names.tolist(),
            "phase": data.volume_phase.tolist(), **rows}


def finetune(arm: str, cfg: Mapping[str, Any], arrays: Mapping[str, np.ndarray], budget: int | str, seed: int,
             init_state: dict | None, device: str, checkpoint_dir: str | Path, init_id: str = "",
             sync_batchnorm: bool = False) -> dict[str, Any]:
    """Train one segmentation run (card, section 2.5) and score it on the test volumes.

    Each epoch is one shuffled pass over the labelled slices (``steps_per_epoch: pass``, as the
    official code) or ``steps_per_epoch`` batches drawn at random (the same number of updates at
    every budget); slices are rotated by up to ``rotation_deg``; the loss is ``loss``
    (:func:`segmentation_loss`) plus ``l1`` times the L1 norm of the weights. Validation Dice (mean over
    foreground classes and validation volumes) every ``val_every`` epochs selects the weights
    that are tested.

    Data-parallel as :func:`pretrain`: every process draws (and rotates) the same global batches
    and trains on its share; the training loss is summed over processes, rank 0's BatchNorm
    statistics are copied to all before validation, and every process validates and tests the
    same weights on the whole (small) validation and test sets.
    """
    import torch

    from reprolab.core.loop import epoch_seed, run_epochs, run_key
    from reprolab.core.runtime import seed_everything
    from reprolab.medical.segmentation import transfer_weights

    spec = cfg["finetune"]
    n_classes = int(arrays["n_classes"])
    labelled = label_budget_subjects(arrays, budget, seed)
    train = SegmentationData(arrays, "train", labelled)
    val, test = SegmentationData(arrays, "val"), SegmentationData(arrays, "test")
    seed_everything(seed)
    model = segmentation_model(cfg["model"], n_classes)
    if init_state is not None:
        transfer_weights(model, init_state, prefix="unet.")
    model.to(device)
    net = dd.wrap(model, device, sync_batchnorm)
    opt, sched = _optimiser(model, spec)
    best = Best(score=-1.0, lower_is_better=False)
    criterion = segmentation_loss(spec["loss"])

    def epoch_fn(epoch: int) -> dict[str, float]:
        gen = torch.Generator().manual_seed(epoch_seed(seed, epoch))
        net.train()
        total = 0.0
        batches = _epoch_batches(len(train.image), spec["batch_size"], spec["steps_per_epoch"], gen)
        for index in batches:
            x = torch.as_tensor(train.image[index].astype(np.float32)[:, None])
            y = torch.as_tensor(train.label[index].astype(np.int64))
            x, y = _rotate_batch(x, y, spec["rotation_deg"], gen)  # the global batch: the same draws on every rank
            part = torch.as_tensor(dd.local_share(np.arange(len(index))))
            share = len(part) / len(index)  # exactly 1.0 with one process
            loss = criterion(net(x[part].to(device)), y[part].to(device))
            weighted = loss * (share * dd.world_size())
            if spec["l1"] > 0:
                penalty = spec["l1"] * _l1(model)
                loss, weighted = loss + penalty, weighted + penalty
            opt.zero_grad(set_to_none=True)
            weighted.backward()
            opt.step()
            total += loss.item() * share
        sched.step()
        total = dd.reduce_sums({"loss": total})["loss"]
        dd.sync_buffers(model)
        out = {"train_loss": total / len(batches), "lr": opt.param_groups[0]["lr"]}
        if (epoch + 1) % spec["val_every"] == 0 or epoch + 1 == spec["epochs"]:
            scores = score_volumes(predict_volumes(model, val, device), val, n_classes, surface=False)
            out["val_dice"] = float(np.nanmean(scores["dice"]))
            best.offer(out["val_dice"], epoch + 1, model)
        return out

    key = run_key({"arm": arm, "seed": seed, "budget": budget, "init": init_id if init_state is not None else None,
                   "cfg": {k: cfg[k] for k in ("model", "finetune")}})
    history = run_epochs(epoch_fn, {"model": model, "opt": opt, "sched": sched, "best": best}, spec["epochs"],
                         seed, key, checkpoint_dir, progress=False, desc=f"{arm} b={budget} s={seed}")
    model.load_state_dict(best.state)
    scores = score_volumes(predict_volumes(model, test, device), test, n_classes, surface=spec["surface_metrics"])
    return {"seed": seed, "budget": str(budget), "n_labelled_subjects": len(labelled),
            "labelled_subjects": arrays["subjects"][labelled].tolist(), "n_labelled_slices": len(train.image),
            "best_epoch": best.epoch, "val_dice": best.score, "test": scores, "history": history}


def run_finetuning(arm: str, cfg: Mapping[str, Any], data_path: str, pretrained: str | None, device_pref: str,
                   threads: int, checkpoint_root: str, out_eval: str) -> None:
    """The ``planes_finetune`` rule: every seed and label budget of one initialisation.

    Each (seed, budget) run has its own checkpoint folder ``<checkpoint_root>/s<seed>_b<budget>``,
    so a killed job resumes where it stopped. Runs in the processes ``cfg["resources"]`` asks for
    (:func:`reprolab.core.distributed.launch_training`); only rank 0 writes ``out_eval``.
    """
    if arm != "scratch" and not pretrained:
        raise ConfigError(f"papers.planes: arm {arm!r} needs a pretrained model")
    dd.launch_training(_finetune_job, (arm, cfg, data_path, pretrained, checkpoint_root, out_eval),
                       cfg.get("resources"), device_pref, threads)


def _finetune_job(arm: str, cfg: Mapping[str, Any], data_path: str, pretrained: str | None, checkpoint_root: str,
                  out_eval: str, *, device: str, sync_batchnorm: bool) -> None:
    """Body of :func:`run_finetuning` in every process."""
    import torch

    arrays = load_npz(data_path)
    init_state = None
    if arm != "scratch":
        init_state = torch.load(pretrained, map_location="cpu", weights_only=False)["state_dict"]
    # a checkpoint made from other pretrained weights must not be resumed
    init_id = hashlib.sha256(Path(pretrained).read_bytes()).hexdigest()[:16] if init_state is not None else ""
    runs = []
    for seed in cfg["seeds"]:
        for budget in cfg["finetune"]["budgets"]:
            run = finetune(arm, cfg, arrays, budget, int(seed), copy.deepcopy(init_state), device,
                           Path(checkpoint_root) / f"s{seed}_b{budget}", init_id, sync_batchnorm)
            log.info("%s seed %s budget %s: validation Dice %.3f at epoch %d", arm, seed, budget, run["val_dice"],
                     run["best_epoch"])
            runs.append(run)
    if dd.is_main():
        write_json(out_eval, {"arm": arm, "device": device, "classes": _class_names(arrays), "runs": runs,
                              "pretrained": pretrained})


def _class_names(arrays: Mapping[str, np.ndarray]) -> list[str]:
    n = int(arrays["n_classes"])
    names = arrays.get("class_names")
    return [str(x) for x in names] if names is not None else [f"class {k}" for k in range(1, n)]
