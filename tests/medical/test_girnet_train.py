"""GIRNet's training jobs on tiny demo data: the module cycle runs, resumes to the same numbers, evaluates."""

import copy

import pytest
import torch

from reprolab.core.io import read_json
from reprolab.medical.girnet_data import build_demo_data
from reprolab.medical.girnet_train import build_model, evaluate_arms, train_arm

DATA = {
    "voxel_mm": 8, "shape": [20, 24, 20], "centre_mm": [0, -18, 6],
    "field": {"sigma_mm": 24, "max_velocity_mm": 10, "steps": 7},
    "lesion": {"radius_mm": [16, 20], "roughness": 0.3, "intensity": [0.15, 0.3], "texture": 0.08, "mass_effect_mm": 4},
    "intensity": {"gamma": [0.8, 1.25], "noise": 0.01},
    "subjects": {"pretrain": 2, "train": 2, "test": 1},
}

SETTINGS = {
    "data": DATA, "data_seed": 7,
    "networks": {"reg": {"channels": [4, 8, 8], "res_units": 0}, "seg": {"channels": [4, 8, 8], "res_units": 0},
                 "inp": {"channels": [4, 8, 8]}},
    "registration": {"steps": 4, "range_flow": 3.0, "symmetric": True, "integration_downsize": 1, "window": 3,
                     "ncc_threshold": 0.1, "similarity": "monai", "smoothness": "gradient_l2",
                     "weights": {"magnitude": 0.1, "jacobian": 1.0, "smoothness": 3.0}, "y2x_target": "inpainted"},
    "segmentation": {"window": 3, "ncc_threshold": 0.1, "eps_divisor": 32, "mask_threshold": 0.5},
    "inpainting": {"window": 3, "ncc_threshold": 0.1, "weights": {"ncc": 1.0, "mse": 100.0}, "mse_region": "whole",
                   "histogram_match": True, "keep_normal_tissue": True},
    "cycle": {"order": ["reg", "gen", "inp"], "k": {"reg": 1, "gen": 2, "inp": 2}},
    "optim": {"lr": 1e-3, "weight_decay": 0.01},
    "arms": {"girnet": {"modules": ["reg", "gen", "inp"], "guide": "inpainted"},
             "symnet_cfm": {"modules": ["reg"], "guide": "original", "cost_function_masking": True}},
    "evaluation": {"window": 3, "near_lesion_mm": 12, "random_masks": 3, "examples": 1,
                   "structures": {"grey_matter": [1], "white_matter": [2]}},
    "pretrain": {"reg": {"epochs": 1, "lr": 1e-3, "weight_decay": 0.01},
                 "inp": {"epochs": 1, "lr": 1e-3, "mask_scale": [0.1, 0.8]}},
    "epochs": 2,
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("girnet")
    data = {k: str(root / f"{k}.npz") for k in ("atlas", "pretrain", "train", "test")}
    build_demo_data(DATA, seed=7, out=data)
    model = build_model(SETTINGS, seed=0)
    torch.save({"reg": model.reg.state_dict()}, root / "reg.pt")
    torch.save({"inp": model.inp.state_dict()}, root / "inp.pt")
    return root, data


def _train(root, data, settings, name, arm="girnet"):
    out = root / name
    train_arm(data["train"], data["atlas"], str(root / "reg.pt"), str(root / "inp.pt"), settings, arm, 42,
              str(out / "model.pt"), str(out / "history.json"), str(root / f"ckpt_{name}"), "cpu")
    return out


def _numbers(path):
    return [{k: v for k, v in e.items() if k != "seconds"} for e in read_json(path)["epochs"]]


def test_an_extended_run_resumes_to_the_numbers_of_an_uninterrupted_one(workdir):
    root, data = workdir
    full = _train(root, data, SETTINGS, "full")
    short = copy.deepcopy(SETTINGS)
    short["epochs"] = 1
    _train(root, data, short, "resumed")
    resumed = _train(root, data, SETTINGS, "resumed")  # same checkpoint folder, now 2 epochs
    history = read_json(full / "history.json")
    assert history["cycle"] == ["reg", "gen", "gen", "inp", "inp"] and len(history["epochs"]) == 2
    # 2 subjects per epoch: the cycle continues across epochs (reg gen | gen inp)
    assert set(history["epochs"][0]) >= {"loss_reg", "loss_gen", "reg_ncc_full", "reg_jacobian"}
    assert set(history["epochs"][1]) >= {"loss_gen", "loss_inp"} and "loss_reg" not in history["epochs"][1]
    assert _numbers(full / "history.json") == _numbers(resumed / "history.json")
    a, b = torch.load(full / "model.pt"), torch.load(resumed / "model.pt")
    for module in ("reg", "gen", "inp"):
        assert all(torch.equal(a[module][k], b[module][k]) for k in a[module])


def test_evaluation_reports_every_metric_per_test_subject(workdir):
    root, data = workdir
    girnet = _train(root, data, SETTINGS, "full")
    cfm = _train(root, data, SETTINGS, "cfm", arm="symnet_cfm")
    evals = [str(root / "eval_girnet.json"), str(root / "eval_cfm.json")]
    examples = [str(root / "ex_girnet.npz"), str(root / "ex_cfm.npz")]
    evaluate_arms(["girnet", "symnet_cfm"], [str(girnet / "model.pt"), str(cfm / "model.pt")], data["train"],
                  data["test"], data["atlas"], SETTINGS, 42, evals, examples, "cpu")
    ev = read_json(evals[0])
    assert ev["polarity"] in ("m", "1-m") and set(ev["train_lesion_dice"]) == {"m", "1-m"}
    for metric in ("dice_mean", "dice__grey_matter", "dice__white_matter", "dice_near_lesion_mean", "lncc",
                   "folding_percent", "deformation_error_mm", "lesion_dice", "lesion_dice_random_mask",
                   "inpainting_mae_lesion"):
        assert len(ev["per_subject"][metric]) == 1, metric
    chosen = ev["per_subject"]["lesion_dice_m" if ev["polarity"] == "m" else "lesion_dice_inverse"]
    assert ev["per_subject"]["lesion_dice"] == chosen
    cfm_ev = read_json(evals[1])
    assert cfm_ev["cost_function_masking"] and "lesion_dice" not in cfm_ev["per_subject"]
    assert 0 <= cfm_ev["mean"]["dice_mean"] <= 1
