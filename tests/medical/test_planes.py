"""planes: pretext targets, line fits, label budgets, and that pretraining and fine-tuning learn and resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from reprolab.core.errors import ConfigError
from reprolab.core.io import read_json
from reprolab.medical.anatomy import Anatomy, tissue_labels
from reprolab.medical.geometry import Line2D, line_heatmap
from reprolab.medical.planes import (
    PretextData,
    build_pretext_data,
    build_segmentation_data,
    fit_line,
    label_budget_subjects,
    line_errors,
    line_heatmaps,
    load_npz,
    pretext_targets,
    run_finetuning,
    run_pretraining,
)
from reprolab.medical.planes_data import synthesise_demo

CLASSES = ["grey matter", "white matter", "other tissue"]


def phantom(shape=(40, 48, 40), voxel=4.0) -> Anatomy:
    """A head-like phantom: an ellipsoidal 'brain' whose white-matter core shrinks towards the top,
    with a dark blob in front (asymmetric, so orientation and level can be read from an image)."""
    affine = np.diag([voxel, voxel, voxel, 1.0])
    affine[:3, 3] = -voxel * (np.array(shape) - 1) / 2
    idx = np.stack(np.meshgrid(*(np.arange(n) for n in shape), indexing="ij"), -1)
    x, y, z = np.moveaxis(idx @ affine[:3, :3].T + affine[:3, 3], -1, 0)
    brain = (x / 65) ** 2 + (y / 80) ** 2 + (z / 65) ** 2 <= 1
    core = (x / 45) ** 2 + (y / 60) ** 2 + (z / 50) ** 2 <= (1 - z / 120) ** 2
    blob = ((x - 10) / 15) ** 2 + ((y - 40) / 12) ** 2 + (z / 20) ** 2 <= 1
    wm = (core & ~blob).astype(np.float32)
    gm = (brain & ~core & ~blob).astype(np.float32)
    t1 = 0.85 * wm + 0.55 * gm + 0.15 * (brain & blob)
    return Anatomy(t1=t1.astype(np.float32), gm=gm, wm=wm, affine=affine)


SPEC = {
    "resolution_mm": 2, "subjects": {"pretrain": 16, "pretrain_val": 3, "pretrain_test": 3, "train": 3, "val": 2,
                                     "test": 3},
    "slices": 6, "coverage_mm": [-45, 45], "acquisition": {"rows": 40, "cols": 40, "pixel_spacing": [5.0, 5.0]},
    "axis_tilt_deg": 15, "inplane_deg": 30, "lax_angle_deg": 60, "lax_jitter_deg": 0, "shift_mm": 5,
    "centre_jitter_mm": 2, "scale": 0.05, "deformation": {"magnitude_mm": 0.0, "smoothness_mm": 20.0, "steps": 7},
    "intensity": {"gamma": 1.0, "bias": 0.0}, "noise": 0.01, "seed": 0,
}
CFG = {
    "arms": ["scratch", "line", "slice", "multitask"], "seeds": [1, 2], "pretrain_seed": 1, "heatmap_sigma_px": 1.5,
    "loss": {"alpha": 1.0, "beta": 1.0}, "preprocess": {"spacing_mm": 8.0, "size": 32},
    "model": {"features": [4, 4, 8, 8, 16, 4], "head_hidden": 16, "head_dropout": 0.0},
    "pretrain": {"epochs": 20, "batch_size": 4, "lr": 0.01, "lr_step": 100, "lr_gamma": 0.3, "l1": 0.0, "examples": 2},
    "finetune": {"epochs": 6, "steps_per_epoch": 8, "batch_size": 6, "lr": 0.003, "lr_step": 100, "lr_gamma": 0.5,
                 "l1": 1e-6, "loss": "ce", "rotation_deg": 10, "val_every": 2, "budgets": [1, "all"], "surface_metrics": True},
}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    anatomy = phantom()
    studies = synthesise_demo(anatomy, tissue_labels(anatomy), SPEC)
    folder = tmp_path_factory.mktemp("planes")
    out = {"pretext": folder / "pretext.npz", "segmentation": folder / "segmentation.npz", "studies": studies}
    build_pretext_data(studies, CFG["preprocess"]["spacing_mm"], CFG["preprocess"]["size"], out["pretext"])
    build_segmentation_data(studies, CFG["preprocess"]["spacing_mm"], CFG["preprocess"]["size"], CLASSES,
                            out["segmentation"])
    return out


def test_torch_heatmaps_equal_the_geometry_heatmap():
    lines = np.array([[[0.6, 0.8, -12.0], [1.0, 0.0, -3.5]], [[0.0, 1.0, -20.0], [np.nan, np.nan, np.nan]]])
    heat = line_heatmaps(torch.as_tensor(lines), 24, 2.0).numpy()
    assert np.allclose(heat[0, 0], line_heatmap(Line2D(*lines[0, 0]), 24, 24, 2.0), atol=1e-6)
    assert np.allclose(heat[1, 0], line_heatmap(Line2D(*lines[1, 0]), 24, 24, 2.0), atol=1e-6)
    assert np.all(heat[1, 1] == 0)  # parallel planes: no line, no target


@pytest.mark.parametrize("points", [((3, 4), (30, 20)), ((0, 17), (31, 17.5)), ((11, 0), (10, 31))])
def test_fit_line_recovers_a_line_from_its_heatmap(points):
    true = Line2D.through(*points)
    fitted = fit_line(line_heatmap(true, 32, 32, 2.0))
    angle, offset = line_errors(true, fitted, 32)
    assert angle < 0.5 and offset < 0.1
    assert fit_line(np.zeros((8, 8))) is None
    assert np.isnan(line_errors(true, None, 32)[0])


def test_pretext_targets_of_a_demo_study(data):
    study = data["studies"][0]
    targets = pretext_targets(study, 8.0, 32)
    assert targets["image"].shape == (6, 1, 32, 32)
    assert np.allclose(targets["image"].mean(axis=(-2, -1)), 0, atol=1e-4)  # z-scored per image
    assert np.all(np.diff(targets["slice"]) < 0) and targets["slice"].min() == 0 and targets["slice"].max() == 1
    # every SAX plane is cut by both long-axis planes, along lines through the same axis point
    centre = np.array([15.5, 15.5])
    for view in range(2):
        a, b, c = targets["line"][:, view].T
        assert np.allclose(a**2 + b**2, 1)
        assert np.all(np.abs(a * centre[0] + b * centre[1] + c) < 2.0)  # FOV shift <= 5 mm, pixels 8 mm


def test_label_budgets_are_nested_seeded_and_checked(data):
    arrays = load_npz(data["segmentation"])
    one, three = label_budget_subjects(arrays, 1, seed=5), label_budget_subjects(arrays, 3, seed=5)
    assert set(one) <= set(three) and set(three) == set(label_budget_subjects(arrays, "all", seed=5))
    assert np.array_equal(one, label_budget_subjects(arrays, 1, seed=5))
    assert all(arrays["roles"][s] == "train" for s in three)
    with pytest.raises(ConfigError, match="budgets"):
        label_budget_subjects(arrays, 4, seed=5)


def _outputs(folder: Path) -> dict[str, str]:
    return {k: str(folder / f"{k}.{ext}") for k, ext in (("model", "pt"), ("history", "json"), ("eval", "json"),
                                                           ("examples", "npz"))}


@pytest.fixture(scope="module")
def multitask(data, tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("multitask")
    out = _outputs(folder)
    run_pretraining("multitask", CFG, str(data["pretext"]), "cpu", 1, str(folder / "ckpt"), out)
    return out


def test_multitask_pretraining_learns_both_pretext_tasks(multitask):
    history = read_json(multitask["history"])["epochs"]
    assert history[-1]["train_heat"] < 0.6 * history[0]["train_heat"]
    assert history[-1]["train_slice"] < 0.6 * history[0]["train_slice"]
    ev = read_json(multitask["eval"])  # held-out subjects, compared with constant predictions
    assert ev["slice_r"] > 0.3 and ev["slice_mae"] < 0.9 * ev["slice_mae_constant"]
    assert ev["heat_mse"] < 0.8 * ev["heat_mse_zero"]
    examples = load_npz(multitask["examples"])
    assert examples["heat_pred"].shape == (2, 2, 32, 32)


def test_fine_tuning_learns_and_transfers_everything_but_the_output_layer(data, multitask, tmp_path: Path):
    cfg = {**CFG, "seeds": [1], "finetune": {**CFG["finetune"], "budgets": [1]}}
    runs = {}
    for arm, pretrained in (("scratch", None), ("multitask", multitask["model"])):
        out = tmp_path / f"{arm}.json"
        run_finetuning(arm, cfg, str(data["segmentation"]), pretrained, "cpu", 1, str(tmp_path / arm), str(out))
        runs[arm] = read_json(out)["runs"][0]
    chance = _chance_dice(load_npz(data["segmentation"]))
    for run in runs.values():
        dice = np.nanmean(run["test"]["dice"])
        assert dice > max(0.35, 1.5 * chance)  # learnt from the slices of one labelled subject
        assert len(run["test"]["volume"]) == 3 and np.isfinite(np.nanmean(run["test"]["hd"]))
        assert run["n_labelled_subjects"] == 1 and run["best_epoch"] in (2, 4, 6)
    assert runs["scratch"]["labelled_subjects"] == runs["multitask"]["labelled_subjects"]
    assert runs["scratch"]["history"][0]["train_loss"] != runs["multitask"]["history"][0]["train_loss"]


def _chance_dice(arrays) -> float:
    """Mean foreground Dice of the test labels against a random shuffle of themselves."""
    from reprolab.medical.segmentation import volume_metrics

    test = np.isin(arrays["volume"], np.flatnonzero(arrays["roles"][arrays["volume_subject"]] == "test"))
    label = arrays["label"][test]
    shuffled = np.random.default_rng(0).permutation(label.ravel()).reshape(label.shape)
    return float(np.nanmean(volume_metrics(shuffled, label, 4, (1, 1, 1), surface=False)["dice"]))


def test_killed_fine_tuning_resumes_to_the_same_numbers(data, tmp_path: Path, monkeypatch):
    from reprolab.medical import planes

    cfg = {**CFG, "seeds": [1], "finetune": {**CFG["finetune"], "budgets": [1], "surface_metrics": False}}
    reference = tmp_path / "reference.json"
    run_finetuning("scratch", cfg, str(data["segmentation"]), None, "cpu", 1, str(tmp_path / "ref"), str(reference))

    calls = {"n": 0}
    original = planes.score_volumes

    def dies_on_second_validation(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        return original(*args, **kwargs)

    monkeypatch.setattr(planes, "score_volumes", dies_on_second_validation)
    resumed = tmp_path / "resumed.json"
    with pytest.raises(KeyboardInterrupt):
        run_finetuning("scratch", cfg, str(data["segmentation"]), None, "cpu", 1, str(tmp_path / "kill"), str(resumed))
    monkeypatch.setattr(planes, "score_volumes", original)
    assert len((tmp_path / "kill/s1_b1/history.jsonl").read_text().splitlines()) == 3  # epochs 1-3 survived
    run_finetuning("scratch", cfg, str(data["segmentation"]), None, "cpu", 1, str(tmp_path / "kill"), str(resumed))

    def numbers(path: Path) -> tuple:
        run = read_json(path)["runs"][0]
        return ([{k: v for k, v in e.items() if k != "seconds"} for e in run["history"]], run["test"]["dice"],
                run["best_epoch"])

    assert numbers(resumed) == numbers(reference)


def test_pretext_data_roles_are_separate(data):
    arrays = load_npz(data["pretext"])
    train, val = PretextData(arrays, "pretrain"), PretextData(arrays, "pretrain_val")
    assert len(train.subjects) == 16 and len(val.subjects) == 3
    assert not set(train.subjects) & set(val.subjects)
    index, _frame = train.epoch_items(np.random.default_rng(0))
    assert len(index) == 16 and len(set(train.subject[index])) == 16  # one image per subject per epoch
    with pytest.raises(Exception, match="role 'train'"):
        PretextData(arrays, "train")


def test_f0_shows_the_middle_slice_of_distinct_subjects_test_subjects_first(data, tmp_path: Path):
    from reprolab.medical.planes import load_npz
    from reprolab.medical.planes_report import middle_slices, subjects_figure

    arrays = load_npz(data["segmentation"])
    picked = middle_slices(arrays, 4)
    assert len(picked) == 4 and len({p[0] for p in picked}) == 4
    assert [p[1] for p in picked] == ["test", "test", "test", "train"]  # SPEC: 3 test subjects
    for subject, _, i in picked:
        v = arrays["volume"][i]
        assert str(arrays["subjects"][arrays["volume_subject"][v]]) == subject
        index = np.flatnonzero(arrays["volume"] == v)
        assert i == index[len(index) // 2]
    out = tmp_path / "subjects.png"
    subjects_figure(data["segmentation"], str(out), n=4)
    assert out.stat().st_size > 1000
