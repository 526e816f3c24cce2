"""Training and evaluation of the ``girnet`` DAG: pretraining, the arms' co-learning cycle, metrics.

Schedule (card section 2.4): the registration network and the inpainter start from
pretrained weights (the official code loads ``SYMNet_80000.pth`` and ``checkpoint/inp.pth``;
here :func:`pretrain_registration` trains SYM-Net on lesion-free subjects and
:func:`pretrain_inpainter` follows ``pretrain_inpainter2.py``: random box masks, target
``x (.) (1 - m) + y2x (.) m``, MSE). Each arm then trains with one AdamW optimiser per module;
every batch updates ONE module, cycling through ``cycle.order`` with ``cycle.k`` consecutive
batches each (``221``: gen 2, inp 2, reg 1). Modules an arm does not train keep their slots
out of the cycle.

Arms (explicit settings instead of the official run-mark substrings):

- ``modules``: which modules train (``[reg]`` = SYM-Net alone);
- ``guide``: the moving image the registration loss sees, ``inpainted`` (``guide_by_rec``:
  ``x_hat = x (.) (1 - m) + Inp(.) (.) m`` with ``m`` binarised) or ``original``;
- ``cost_function_masking``: mask the similarity terms with the TRUE lesion mask (baseline).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from reprolab.core.errors import ConfigError
from reprolab.core.io import atomic_path, write_json
from reprolab.core.loop import run_epochs, run_key
from reprolab.core.runtime import choose_device, seed_everything, set_threads
from reprolab.medical.anatomy import BACKGROUND
from reprolab.medical.girnet import (
    MODULES,
    GIRNet,
    histogram_match,
    inpaint,
    inpainting_loss,
    registration_loss,
    segmentation_eps,
    segmentation_loss,
)
from reprolab.medical.girnet_data import SubjectSet, read_atlas
from reprolab.medical.registration import dice, folding_fraction, jacobian_determinant, lncc, warp

log = logging.getLogger("reprolab.girnet")


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Arm:
    """One compared method (see the module docstring)."""

    name: str
    modules: tuple[str, ...]
    guide: str
    cost_function_masking: bool

    @property
    def has_segmentation(self) -> bool:
        """Whether the arm has a mask (trained or not) worth evaluating as a lesion segmentation."""
        return "gen" in self.modules


def arm_from_config(settings: Mapping[str, Any], name: str) -> Arm:
    """The arm ``name`` of ``settings['arms']``; a clear error for unknown names or values."""
    arms = settings["arms"]
    if name not in arms:
        raise ConfigError(f"config key papers.girnet.arms has no arm {name!r} (known: {', '.join(arms)})")
    spec = arms[name]
    modules = tuple(m for m in MODULES if m in spec["modules"])
    if "reg" not in modules:
        raise ConfigError(f"config key papers.girnet.arms.{name}.modules must include reg (every arm registers)")
    if spec["guide"] == "inpainted" and "inp" not in modules and not spec.get("cost_function_masking"):
        log.warning("arm %s: guided by inpainting with a frozen (pretrained) inpainter", name)
    return Arm(name=name, modules=modules, guide=spec["guide"],
               cost_function_masking=bool(spec.get("cost_function_masking", False)))


def arm_epochs(settings: Mapping[str, Any], arm_name: str) -> int:
    """Training epochs of an arm: ``arm_epochs[arm]`` where given, else ``epochs``."""
    return int((settings.get("arm_epochs") or {}).get(arm_name, settings["epochs"]))


def module_cycle(arm: Arm, order: list[str], k: Mapping[str, int]) -> list[str]:
    """The repeating sequence of modules one batch each updates, e.g. ``[reg, gen, gen, inp, inp]``."""
    cycle = [m for m in order if m in arm.modules for _ in range(int(k[m]))]
    if not cycle:
        raise ConfigError(f"arm {arm.name}: the cycle is empty; check papers.girnet.cycle.k")
    return cycle


def _device(preference: str) -> torch.device:
    return torch.device(choose_device(preference))


def _atlas_tensors(path: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    atlas = read_atlas(path)
    return (torch.as_tensor(atlas.t1)[None, None].to(device),
            torch.as_tensor(atlas.labels.astype(np.int64))[None].to(device))


def build_model(settings: Mapping[str, Any], seed: int) -> GIRNet:
    """A GIRNet with seeded initial weights."""
    seed_everything(seed)
    return GIRNet(settings["networks"], settings["registration"])


# --------------------------------------------------------------------------- one step per module


def guided_moving(model: GIRNet, x: torch.Tensor, y2x: torch.Tensor, settings: Mapping[str, Any]) -> torch.Tensor:
    """GIRNet's pseudo-normal image ``x_hat`` (no gradients): the mask region of ``x`` inpainted."""
    with torch.no_grad():
        region = (model.gen(x) > settings["segmentation"]["mask_threshold"]).float()
        return inpaint(model.inp, x, region, y2x, settings["inpainting"]["keep_normal_tissue"])


def reg_step(model: GIRNet, x: torch.Tensor, y: torch.Tensor, lesion: torch.Tensor | None, arm: Arm,
             settings: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Loss of a registration batch (card 2.3, ``SymRegLoss``); gradients reach only ``model.reg``."""
    fields = model.reg(x, y)
    x_sim = x
    if arm.guide == "inpainted":
        x_sim = guided_moving(model, x, warp(y, fields.yx).detach(), settings)
    target = x_sim if settings["registration"]["y2x_target"] == "inpainted" else x
    keep = None
    if arm.cost_function_masking:
        if lesion is None:
            raise ValueError(f"arm {arm.name} masks the cost function with the true lesion mask, but none was given")
        keep = 1.0 - lesion
    return registration_loss(fields, x_sim, target, y, settings["registration"], keep_moving=keep)


def gen_step(model: GIRNet, x: torch.Tensor, y: torch.Tensor, settings: Mapping[str, Any], eps: float) -> torch.Tensor:
    """Loss of a segmentation batch (``L_gen``); gradients reach only ``model.gen``."""
    seg, inp = settings["segmentation"], settings["inpainting"]
    with torch.no_grad():
        y2x = warp(y, model.reg(x, y).yx)
    m = model.gen(x)
    with torch.no_grad():
        region = (m > seg["mask_threshold"]).float()
        # both inpaintings (of the mask from the rest, of the rest from the mask) as one batch of two
        both = inpaint(model.inp, torch.cat([x, x]), torch.cat([region, 1 - region]), torch.cat([y2x, y2x]),
                       inp["keep_normal_tissue"])
        x_f_hat, x_b_hat = both[:1], both[1:]
    return segmentation_loss(x, m, x_f_hat, x_b_hat, int(seg["window"]), float(seg["ncc_threshold"]), eps)


def inp_step(model: GIRNet, x: torch.Tensor, y: torch.Tensor, settings: Mapping[str, Any]) -> torch.Tensor:
    """Loss of an inpainting batch (``InpLoss2`` for the mask and its complement); gradients reach only ``model.inp``."""
    inp = settings["inpainting"]
    with torch.no_grad():
        y2x = warp(y, model.reg(x, y).yx)
        region = (model.gen(x) > settings["segmentation"]["mask_threshold"]).float()
        reference = histogram_match(y2x, x) if inp["histogram_match"] else y2x
    masks = torch.cat([region, 1 - region])  # both inpaintings as one batch of two
    recs = model.inp(torch.cat([x, x]) * (1 - masks), masks, torch.cat([y2x, y2x]))
    loss = x.new_zeros(())
    for k in range(2):
        loss = loss + inpainting_loss(x, masks[k:k + 1], reference, recs[k:k + 1], int(inp["window"]),
                                      float(inp["ncc_threshold"]), float(inp["weights"]["ncc"]),
                                      float(inp["weights"]["mse"]), inp["mse_region"])
    return loss


# --------------------------------------------------------------------------- training jobs


def _adamw(module: torch.nn.Module, optim: Mapping[str, Any], name: str | None = None) -> torch.optim.Optimizer:
    lr = float((optim.get("module_lr") or {}).get(name, optim["lr"]))
    return torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=float(optim["weight_decay"]))


def _write_history(path: str, history: list[dict[str, Any]], **extra: Any) -> None:
    write_json(path, {**extra, "epochs": history})


def _save_state(path: str, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def pretrain_registration(pretrain_path: str, atlas_path: str, settings: Mapping[str, Any], seed: int,
                          out_model: str, out_history: str, checkpoint_dir: str, device: str = "auto", threads: int = 1) -> None:
    """SYM-Net trained on lesion-free subjects (stands in for the official ``SYMNet_80000.pth``).

    Parameters
    ----------
    pretrain_path, atlas_path
        Split and atlas files of ``girnet_data``.
    settings
        The paper's settings at the run's scale (``pretrain.reg``: ``epochs``, ``lr``,
        ``weight_decay``).
    seed
        Initialisation and shuffling seed.
    out_model, out_history
        ``reg.pt`` (the RegNet state) and its per-epoch losses.
    checkpoint_dir
        Resumable checkpoint folder outside the rule's outputs.
    """
    set_threads(threads)
    dev = _device(device)
    data, (y, _) = SubjectSet(pretrain_path, dev), _atlas_tensors(atlas_path, dev)
    model = build_model(settings, seed).to(dev)
    spec = settings["pretrain"]["reg"]
    opt = _adamw(model.reg, spec)
    plain = Arm("pretrain", ("reg",), "original", False)

    def epoch_fn(epoch: int) -> dict[str, float]:
        model.reg.train()
        losses = []
        for i in torch.randperm(len(data)).tolist():
            terms = reg_step(model, data.get(i)["x"], y, None, plain, settings)
            opt.zero_grad(set_to_none=True)
            terms["total"].backward()
            opt.step()
            losses.append(float(terms["total"]))
        return {"loss_reg": float(np.mean(losses))}

    key = run_key({"job": "pretrain_reg", "settings": _training_settings(settings), "seed": seed})
    history = run_epochs(epoch_fn, {"reg": model.reg, "opt": opt}, int(spec["epochs"]), seed, key, checkpoint_dir,
                         desc="pretrain reg")
    _save_state(out_model, {"reg": model.reg.state_dict()})
    _write_history(out_history, history, job="pretrain_reg", seed=seed)


def random_box_mask(shape: tuple[int, ...], scales: tuple[float, float], rng: np.random.Generator,
                    levels: int = 5) -> np.ndarray:
    """A random box mask (``RandMaskG``): each edge a random fraction of the volume, random centre."""
    fractions = np.linspace(scales[0], scales[1], levels)
    mask = np.zeros(shape, dtype=np.float32)
    box = []
    for n in shape:
        size = max(1, int(n * fractions[rng.integers(levels)]))
        start = int(rng.integers(0, n - size + 1))
        box.append(slice(start, start + size))
    mask[tuple(box)] = 1.0
    return mask


def pretrain_inpainter(pretrain_path: str, atlas_path: str, reg_path: str, settings: Mapping[str, Any], seed: int,
                       out_model: str, out_history: str, checkpoint_dir: str, device: str = "auto", threads: int = 1) -> None:
    """The inpainter pretrained as in ``pretrain_inpainter2.py`` (stands in for ``checkpoint/inp.pth``).

    For every lesion-free subject: ``y2x`` from the pretrained registration, a random box mask
    ``m``; one step inpainting ``m`` from the rest and one inpainting the rest from ``m``, each
    with the MSE to ``x (.) (1 - m) + y2x (.) m`` (respectively its complement). Adam.
    """
    set_threads(threads)
    dev = _device(device)
    data, (y, _) = SubjectSet(pretrain_path, dev), _atlas_tensors(atlas_path, dev)
    model = build_model(settings, seed).to(dev)
    model.reg.load_state_dict(torch.load(reg_path, map_location=dev, weights_only=True)["reg"])
    model.reg.eval()
    spec = settings["pretrain"]["inp"]
    opt = torch.optim.Adam(model.inp.parameters(), lr=float(spec["lr"]))

    def epoch_fn(epoch: int) -> dict[str, float]:
        model.inp.train()
        rng = np.random.default_rng(torch.randint(0, 2**31 - 1, ()).item())
        losses = []
        for i in torch.randperm(len(data)).tolist():
            x = data.get(i)["x"]
            with torch.no_grad():
                y2x = warp(y, model.reg(x, y).yx)
            box = torch.as_tensor(random_box_mask(tuple(x.shape[2:]), tuple(spec["mask_scale"]), rng), device=dev)
            box = box[None, None]
            for mask in (box, 1 - box):
                rec = model.inp(x * (1 - mask), mask, y2x)
                loss = F.mse_loss(rec, x * (1 - mask) + y2x * mask)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(float(loss))
        return {"loss_inp": float(np.mean(losses))}

    key = run_key({"job": "pretrain_inp", "settings": _training_settings(settings), "seed": seed})
    history = run_epochs(epoch_fn, {"inp": model.inp, "opt": opt}, int(spec["epochs"]), seed, key, checkpoint_dir,
                         desc="pretrain inp")
    _save_state(out_model, {"inp": model.inp.state_dict()})
    _write_history(out_history, history, job="pretrain_inp", seed=seed)


def _training_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that change training numbers (the checkpoint's run key).

    The number of epochs is not one of them: a run extended to more epochs resumes from its
    checkpoint and ends where an uninterrupted run of that length would.
    """
    keys = ("data", "networks", "registration", "segmentation", "inpainting", "cycle", "optim", "pretrain", "data_seed")
    return {k: settings[k] for k in keys if k in settings}


def train_arm(train_path: str, atlas_path: str, reg_path: str, inp_path: str, settings: Mapping[str, Any],
              arm_name: str, seed: int, out_model: str, out_history: str, checkpoint_dir: str,
              device: str = "auto", threads: int = 1) -> None:
    """Train one arm for :func:`arm_epochs` epochs over the lesioned training subjects.

    Every module starts from the same weights in every arm of a seed: the pretrained
    registration and inpainter, and a segmentation network initialised from ``seed``.
    """
    arm = arm_from_config(settings, arm_name)
    set_threads(threads)
    dev = _device(device)
    data, (y, _) = SubjectSet(train_path, dev), _atlas_tensors(atlas_path, dev)
    model = build_model(settings, seed).to(dev)
    model.reg.load_state_dict(torch.load(reg_path, map_location=dev, weights_only=True)["reg"])
    model.inp.load_state_dict(torch.load(inp_path, map_location=dev, weights_only=True)["inp"])
    opts = {m: _adamw(model.module(m), settings["optim"], m) for m in arm.modules}
    cycle = module_cycle(arm, settings["cycle"]["order"], settings["cycle"]["k"])
    eps = segmentation_eps(int(np.prod(y.shape[2:])), float(settings["segmentation"]["eps_divisor"]))
    n = len(data)
    log.info("arm %s: modules %s, cycle %s, guide %s, eps %.1f", arm.name, arm.modules, cycle, arm.guide, eps)

    def epoch_fn(epoch: int) -> dict[str, float]:
        losses: dict[str, list[float]] = {m: [] for m in arm.modules}
        terms_log: dict[str, list[float]] = {}
        for b, i in enumerate(torch.randperm(n).tolist()):
            name = cycle[(epoch * n + b) % len(cycle)]
            for m in MODULES:
                model.module(m).train(m == name)
            subject = data.get(i)
            x = subject["x"]
            if name == "reg":
                terms = reg_step(model, x, y, subject["lesion"], arm, settings)
                loss = terms["total"]
                for t, v in terms.items():
                    terms_log.setdefault(f"reg_{t}", []).append(float(v))
            elif name == "gen":
                loss = gen_step(model, x, y, settings, eps)
                with torch.no_grad():  # how much of the volume the binary mask covers (diagnostic)
                    terms_log.setdefault("mask_fraction", []).append(
                        float((model.gen(x) > settings["segmentation"]["mask_threshold"]).float().mean()))
            else:
                loss = inp_step(model, x, y, settings)
            opts[name].zero_grad(set_to_none=True)
            loss.backward()
            opts[name].step()
            losses[name].append(float(loss))
        out = {f"loss_{m}": float(np.mean(v)) for m, v in losses.items() if v}
        out.update({k: float(np.mean(v)) for k, v in terms_log.items()})
        return out

    stateful = {**{m: model.module(m) for m in MODULES}, **{f"opt_{m}": o for m, o in opts.items()}}
    key = run_key({"job": "train", "arm": settings["arms"][arm_name], "settings": _training_settings(settings),
                   "seed": seed})
    history = run_epochs(epoch_fn, stateful, arm_epochs(settings, arm_name), seed, key, checkpoint_dir, desc=arm.name)
    _save_state(out_model, {m: model.module(m).state_dict() for m in MODULES})
    _write_history(out_history, history, arm=arm.name, seed=seed, modules=list(arm.modules), cycle=cycle)


# --------------------------------------------------------------------------- evaluation


def random_mask_dice(mask: np.ndarray, truth: np.ndarray, brain: np.ndarray, draws: int,
                     rng: np.random.Generator) -> float:
    """Mean Dice with ``truth`` of ``mask`` moved to random places (same shape and size).

    The chance level of a lesion segmentation: the mask's bounding box is translated to
    ``draws`` uniformly random positions inside the volume and cut to the brain.
    """
    if not mask.any():
        return 0.0
    idx = np.argwhere(mask)
    lo, hi = idx.min(0), idx.max(0) + 1
    patch = mask[tuple(slice(a, b) for a, b in zip(lo, hi))]
    size = np.array(patch.shape)
    shape = np.array(mask.shape)
    scores = []
    for _ in range(draws):
        start = [int(rng.integers(0, n - s + 1)) for n, s in zip(shape, size)]
        moved = np.zeros_like(mask)
        moved[tuple(slice(a, a + s) for a, s in zip(start, size))] = patch
        scores.append(dice(moved & brain, truth))
    return float(np.mean(scores))


def expected_random_voxel_dice(mask_size: int, truth_size: int, n_voxels: int) -> float:
    """Expected Dice of ``mask_size`` voxels drawn uniformly at random against a ``truth_size`` mask."""
    if mask_size + truth_size == 0:
        return 1.0
    return 2.0 * mask_size * truth_size / n_voxels / (mask_size + truth_size)


def _ball(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    return (r[:, None, None] ** 2 + r[None, :, None] ** 2 + r[None, None, :] ** 2) <= radius ** 2


def _segment(model: GIRNet, x: torch.Tensor, threshold: float) -> np.ndarray:
    with torch.no_grad():
        return (model.gen(x) > threshold)[0, 0].cpu().numpy()


def choose_polarity(dice_m: list[float], dice_inverse: list[float]) -> str:
    """``m`` or ``1-m``: the mask polarity with the higher mean Dice on the TRAINING subjects.

    The official metric takes ``max(Dice(gt, m), Dice(gt, 1 - m))`` per case, which hides a
    flipped mask; here one polarity is chosen per run on training data and used on every test
    subject, and both polarities' Dice are reported.
    """
    return "m" if float(np.mean(dice_m)) >= float(np.mean(dice_inverse)) else "1-m"


def evaluate_arm(model_path: str, train_path: str, test_path: str, atlas_path: str, settings: Mapping[str, Any],
                 arm_name: str, seed: int, out_eval: str, out_examples: str, device: str = "auto", threads: int = 1) -> dict[str, Any]:
    """Metrics of one trained arm on every test subject (per subject, for paired statistics).

    Registration (moving -> atlas, the direction the official code evaluates): Dice of each
    structure of ``evaluation.structures`` after warping the moving labels into the atlas
    (nearest neighbour) and their mean; % voxels with det(J) <= 0; LNCC (MONAI, window
    ``evaluation.window``) of the warped moving image and the atlas. Where the truth exists
    (demo): the structures' Dice near the lesion (atlas labels warped into moving space,
    within ``evaluation.near_lesion_mm`` of the true lesion) and the error of the
    atlas-to-moving field against the known one (mm; brain voxels outside the lesion, and
    near it). Segmentation (arms that train ``gen``): lesion Dice of ``m > threshold`` and of
    its complement, the polarity chosen on the TRAINING subjects and the Dice it gives, the
    Dice of the same mask moved to random places (chance level) and the expected Dice of as
    many random voxels. Inpainting: mean absolute error inside the true lesion between
    ``x_hat`` and the same subject without the lesion.
    """
    arm = arm_from_config(settings, arm_name)
    set_threads(threads)
    dev = _device(device)
    test, (y, atlas_labels) = SubjectSet(test_path, dev), _atlas_tensors(atlas_path, dev)
    ev = settings["evaluation"]
    structures = {name: [int(v) for v in values] for name, values in ev["structures"].items()}
    model = build_model(settings, seed).to(dev)
    state = torch.load(model_path, map_location=dev, weights_only=True)
    for m in MODULES:
        model.module(m).load_state_dict(state[m])
    model.eval()
    thr = float(settings["segmentation"]["mask_threshold"])
    polarity, train_dice = "m", {"m": [], "1-m": []}
    if arm.has_segmentation:
        train = SubjectSet(train_path, dev)
        for i in range(len(train)):
            subject = train.get(i)
            pred, truth = _segment(model, subject["x"], thr), subject["lesion"][0, 0].cpu().numpy() > 0.5
            train_dice["m"].append(dice(pred, truth))
            train_dice["1-m"].append(dice(~pred, truth))
        polarity = choose_polarity(train_dice["m"], train_dice["1-m"])
    ctx = _EvalContext(y=y, atlas_labels=atlas_labels[0].cpu().numpy(), arm=arm, polarity=polarity,
                       structures=structures, vox=float(settings["data"]["voxel_mm"]), threshold=thr,
                       window=int(ev["window"]), draws=int(ev["random_masks"]), rng=np.random.default_rng(seed),
                       near=_ball(max(1, round(float(ev["near_lesion_mm"]) / float(settings["data"]["voxel_mm"])))),
                       keep_normal=bool(settings["inpainting"]["keep_normal_tissue"]))
    per: dict[str, list[float]] = {}
    examples: dict[str, np.ndarray] = {}
    for i in range(len(test)):
        record, panel = _evaluate_subject(model, test.get(i), ctx)
        for k, v in record.items():
            per.setdefault(k, []).append(v)
        if i < int(ev["examples"]):
            examples.update({f"s{i}_{k}": v for k, v in panel.items()})
    with atomic_path(out_examples) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **examples)
    result = {
        "arm": arm.name, "seed": seed, "modules": list(arm.modules), "guide": arm.guide,
        "cost_function_masking": arm.cost_function_masking, "has_segmentation": arm.has_segmentation,
        "subjects": test.ids, "voxel_mm": ctx.vox, "structures": sorted(structures),
        "polarity": polarity if arm.has_segmentation else None,
        "train_lesion_dice": {k: float(np.mean(v)) for k, v in train_dice.items()} if arm.has_segmentation else None,
        "per_subject": per, "mean": {k: float(np.mean(v)) for k, v in per.items()},
    }
    write_json(out_eval, result)
    log.info("%s seed %d: %s", arm.name, seed, {k: round(v, 4) for k, v in result["mean"].items()})
    return result


@dataclass
class _EvalContext:
    y: torch.Tensor
    atlas_labels: np.ndarray
    arm: Arm
    polarity: str
    structures: dict[str, list[int]]
    vox: float
    threshold: float
    window: int
    draws: int
    rng: np.random.Generator
    near: np.ndarray
    keep_normal: bool


def structure_masks(labels: np.ndarray | torch.Tensor, structures: Mapping[str, list[int]]) -> torch.Tensor:
    """``[1, S, X, Y, Z]`` float masks of the structures (one channel each) of a label volume."""
    labels = torch.as_tensor(np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels))
    return torch.stack([torch.isin(labels, torch.as_tensor(v)) for v in structures.values()]).float()[None]


def warp_structures(masks: torch.Tensor, ddf: torch.Tensor) -> torch.Tensor:
    """Each structure's mask warped by linear interpolation and kept where >= 0.5 (bool, ``[S, X, Y, Z]``).

    As the official ``spatial_transform(ismask=True)``: label by label, interpolated and rounded,
    so sub-voxel displacements move the boundaries (nearest neighbour would not).
    """
    return (warp(masks.to(ddf.device), ddf) >= 0.5)[0]


def _dice_per_structure(pred: torch.Tensor | np.ndarray, truth: torch.Tensor | np.ndarray,
                        names: list[str], region: np.ndarray | None = None) -> dict[str, float]:
    pred, truth = np.asarray(pred, dtype=bool), np.asarray(truth, dtype=bool)
    if region is not None:
        pred, truth = pred & region, truth & region
    return {name: dice(pred[k], truth[k]) for k, name in enumerate(names)}


def _evaluate_subject(model: GIRNet, subject: Mapping[str, torch.Tensor | None],
                      ctx: _EvalContext) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    from scipy.ndimage import binary_dilation

    x, labels, y = subject["x"], subject["labels"], ctx.y
    lesion = subject["lesion"][0, 0].cpu().numpy() > 0.5
    names = list(ctx.structures)
    moving_masks, atlas_masks = structure_masks(labels[0], ctx.structures), structure_masks(ctx.atlas_labels,
                                                                                             ctx.structures)
    with torch.no_grad():
        fields = model.reg(x, y)
        x_to_y = warp(x, fields.xy)
        warped = warp_structures(moving_masks, fields.xy).cpu().numpy()
        atlas_in_x = warp_structures(atlas_masks, fields.yx).cpu().numpy()
        y2x = warp(y, fields.yx)
    labels_np = labels[0].cpu().numpy()
    record: dict[str, float] = {}
    per_structure = _dice_per_structure(warped, atlas_masks[0].numpy(), names)
    record.update({f"dice__{k}": v for k, v in per_structure.items()})
    record["dice_mean"] = float(np.mean(list(per_structure.values())))
    # the same numbers without any registration (identity map), the reference every arm should beat
    record["dice_mean_identity"] = float(np.mean(list(_dice_per_structure(moving_masks[0].numpy(),
                                                                          atlas_masks[0].numpy(), names).values())))
    record["folding_percent"] = 100.0 * folding_fraction(fields.xy)
    record["lncc"] = lncc(x_to_y, y, ctx.window)
    record["lesion_voxels"] = float(lesion.sum())
    region = binary_dilation(lesion, structure=ctx.near) if lesion.any() else None
    if region is not None:
        near = _dice_per_structure(atlas_in_x, moving_masks[0].numpy(), names, region)
        record["dice_near_lesion_mean"] = float(np.mean(list(near.values())))
        near_identity = _dice_per_structure(atlas_masks[0].numpy(), moving_masks[0].numpy(), names, region)
        record["dice_near_lesion_mean_identity"] = float(np.mean(list(near_identity.values())))
    if subject["u_true"] is not None:
        error = (fields.yx[0] - subject["u_true"][0]).norm(dim=0).cpu().numpy() * ctx.vox
        brain = labels_np != BACKGROUND
        record["deformation_error_mm"] = float(error[brain & ~lesion].mean())
        identity_error = subject["u_true"][0].norm(dim=0).cpu().numpy() * ctx.vox
        record["deformation_error_identity_mm"] = float(identity_error[brain & ~lesion].mean())
        if region is not None:
            record["deformation_error_near_lesion_mm"] = float(error[region & ~lesion].mean())
            record["deformation_error_near_lesion_identity_mm"] = float(identity_error[region & ~lesion].mean())
    det = jacobian_determinant(fields.xy)[0].cpu().numpy()
    k = int(np.argmax(lesion.sum(axis=(0, 1)))) if lesion.any() else x.shape[-1] // 2
    panel = {"x": x[0, 0, :, :, k].cpu().numpy(), "y": y[0, 0, :, :, k].cpu().numpy(),
             "x_to_y": x_to_y[0, 0, :, :, k].cpu().numpy(), "lesion": lesion[:, :, k],
             "ddf": fields.xy[0, :2, :, :, k].cpu().numpy(), "jacobian": det[:, :, k], "slice": np.asarray(k)}
    if ctx.arm.has_segmentation or ctx.arm.guide == "inpainted":
        pred = _segment(model, x, ctx.threshold)
        with torch.no_grad():
            region_t = torch.as_tensor(pred, dtype=torch.float32, device=x.device)[None, None]
            x_hat = inpaint(model.inp, x, region_t, y2x, ctx.keep_normal)
        panel.update({"m": pred[:, :, k], "x_hat": x_hat[0, 0, :, :, k].cpu().numpy()})
    if ctx.arm.has_segmentation:
        chosen = pred if ctx.polarity == "m" else ~pred
        brain = (labels_np != BACKGROUND) | lesion
        record["lesion_dice_m"] = dice(pred, lesion)
        record["lesion_dice_inverse"] = dice(~pred, lesion)
        record["lesion_dice"] = dice(chosen, lesion)
        record["lesion_dice_random_mask"] = random_mask_dice(chosen, lesion, brain, ctx.draws, ctx.rng)
        record["lesion_dice_random_voxels"] = expected_random_voxel_dice(int(chosen.sum()), int(lesion.sum()),
                                                                         chosen.size)
        record["mask_voxels"] = float(chosen.sum())
        if lesion.any() and subject["x_normal"] is not None:
            diff = (x_hat - subject["x_normal"]).abs()[0, 0].cpu().numpy()
            record["inpainting_mae_lesion"] = float(diff[lesion].mean())
    return record, panel


def examples_path_for(eval_path: str) -> str:
    """The examples file written next to an evaluation file."""
    return str(Path(eval_path).with_name("examples.npz"))


def pretrain(pretrain_path: str, atlas_path: str, settings: Mapping[str, Any], seed: int, out: Mapping[str, str],
             checkpoint_dir: str, device: str = "auto", threads: int = 1) -> None:
    """The ``girnet_pretrain`` rule: :func:`pretrain_registration`, then :func:`pretrain_inpainter` from it.

    ``out`` holds ``reg``, ``reg_history``, ``inp`` and ``inp_history``; each stage resumes from its
    own checkpoint under ``checkpoint_dir``.
    """
    pretrain_registration(pretrain_path, atlas_path, settings, seed, out["reg"], out["reg_history"],
                          str(Path(checkpoint_dir) / "reg"), device, threads)
    pretrain_inpainter(pretrain_path, atlas_path, out["reg"], settings, seed, out["inp"], out["inp_history"],
                       str(Path(checkpoint_dir) / "inp"), device, threads)


def evaluate_arms(arms: list[str], model_paths: list[str], train_path: str, test_path: str, atlas_path: str,
                  settings: Mapping[str, Any], seed: int, out_evals: list[str], out_examples: list[str],
                  device: str = "auto", threads: int = 1) -> None:
    """The ``girnet_evaluate`` rule: :func:`evaluate_arm` for every arm of one seed (lists in the same order)."""
    if not len(arms) == len(model_paths) == len(out_evals) == len(out_examples):
        raise ValueError("evaluate_arms: arms, models and outputs must be lists of the same length")
    for arm, model, out_eval, out_ex in zip(arms, model_paths, out_evals, out_examples):
        evaluate_arm(model, train_path, test_path, atlas_path, settings, arm, seed, out_eval, out_ex, device, threads)
