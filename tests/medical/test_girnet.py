"""GIRNet's modules, losses, schedule and evaluation helpers (small volumes, seconds)."""

import numpy as np
import pytest
import torch

from reprolab.core.errors import ConfigError
from reprolab.medical.girnet import (
    GIRNet,
    InpNet,
    RegNet,
    SegNet,
    histogram_match,
    inpaint,
    inpainting_loss,
    registration_loss,
    segmentation_eps,
    segmentation_loss,
)
from reprolab.medical.girnet_train import (
    Arm,
    arm_from_config,
    choose_polarity,
    expected_random_voxel_dice,
    module_cycle,
    random_box_mask,
    random_mask_dice,
)
from reprolab.medical.registration import dice, warp

SHAPE = (16, 16, 16)
REG = {"steps": 7, "range_flow": 8.0, "symmetric": True, "integration_downsize": 1, "window": 3,
       "ncc_threshold": 0.1, "smoothness": "gradient_l2", "weights": {"magnitude": 0.1, "jacobian": 1.0, "smoothness": 3.0},
       "y2x_target": "inpainted"}
NETS = {"reg": {"channels": [4, 8, 8], "res_units": 0}, "seg": {"channels": [4, 8, 8], "res_units": 0},
        "inp": {"channels": [4, 8, 8]}}


def _blob(centre, radius=4.0, shape=SHAPE) -> torch.Tensor:
    axes = [torch.arange(s, dtype=torch.float32) for s in shape]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"))
    r2 = sum((grid[i] - centre[i]) ** 2 for i in range(3))
    return torch.exp(-r2 / (2 * radius ** 2))[None, None]


def test_eps_is_one_32nd_of_the_volume_and_rescales_with_it():
    assert segmentation_eps(160 * 192 * 144) == 138_240.0  # the card's value at 1 mm
    assert segmentation_eps(40 * 48 * 36) == pytest.approx(138_240.0 / 64)  # 4 mm: 64 times fewer voxels
    assert segmentation_eps(1000, divisor=10) == 100.0
    with pytest.raises(ValueError):
        segmentation_eps(0)


def test_polarity_is_chosen_on_training_dice_not_per_case():
    assert choose_polarity([0.6, 0.5], [0.1, 0.2]) == "m"
    assert choose_polarity([0.1, 0.0], [0.4, 0.3]) == "1-m"
    # A per-case max would pick m for case 1 and 1-m for case 2; one polarity is used for all cases.
    assert choose_polarity([0.9, 0.0], [0.0, 0.3]) == "m"


def test_module_cycle_follows_the_configured_order_and_k():
    arm = Arm("girnet", ("reg", "gen", "inp"), "inpainted", False)
    assert module_cycle(arm, ["reg", "gen", "inp"], {"reg": 1, "gen": 2, "inp": 2}) == ["reg", "gen", "gen", "inp", "inp"]
    only_reg = Arm("symnet", ("reg",), "original", False)
    assert module_cycle(only_reg, ["reg", "gen", "inp"], {"reg": 1, "gen": 2, "inp": 2}) == ["reg"]
    no_gen = Arm("x", ("reg", "inp"), "inpainted", False)
    assert module_cycle(no_gen, ["gen", "inp", "reg"], {"reg": 1, "gen": 2, "inp": 3}) == ["inp"] * 3 + ["reg"]


def test_arms_are_read_from_config_with_clear_errors():
    settings = {"arms": {"girnet": {"modules": ["inp", "gen", "reg"], "guide": "inpainted"},
                         "bad": {"modules": ["gen"], "guide": "original"}}}
    arm = arm_from_config(settings, "girnet")
    assert arm.modules == ("reg", "gen", "inp") and arm.has_segmentation and not arm.cost_function_masking
    with pytest.raises(ConfigError, match="no arm 'nope'"):
        arm_from_config(settings, "nope")
    with pytest.raises(ConfigError, match="must include reg"):
        arm_from_config(settings, "bad")


def test_networks_give_the_expected_shapes_and_start_near_the_identity():
    torch.manual_seed(0)
    x, y = torch.rand((1, 1, *SHAPE)), torch.rand((1, 1, *SHAPE))
    reg = RegNet([4, 8, 8], res_units=1, range_flow=8.0)
    fields = reg(x, y)
    for f in (fields.v_xy, fields.half_xy, fields.xy, fields.yx):
        assert f.shape == (1, 3, *SHAPE)
    assert fields.xy.abs().max() < 1e-2  # the velocity heads start at ~0
    m = SegNet([4, 8, 8])(x)
    assert m.shape == (1, 1, *SHAPE) and 0 <= m.min() and m.max() <= 1
    out = InpNet([4, 8, 8])(x, (m > 0.5).float(), y)
    assert out.shape == (1, 1, *SHAPE)
    nonsym = RegNet([4, 8], range_flow=8.0, symmetric=False)(x, y)
    assert nonsym.half_xy is None and nonsym.xy.shape == (1, 3, *SHAPE)


def test_histogram_matching_takes_the_reference_distribution_and_keeps_the_order():
    gen = torch.Generator().manual_seed(0)
    src = torch.rand((1, 1, *SHAPE), generator=gen) ** 2
    ref = 0.5 + 0.3 * torch.rand((1, 1, *SHAPE), generator=gen)
    out = histogram_match(src, ref)
    assert torch.allclose(out.flatten().sort().values, ref.flatten().sort().values, atol=1e-5)
    assert (out.flatten()[src.flatten().argsort()].diff() >= 0).all()  # order kept


def test_inpaint_keeps_normal_tissue_when_asked():
    x = torch.rand((1, 1, *SHAPE))
    region = torch.zeros_like(x)
    region[..., 4:8, 4:8, 4:8] = 1
    inp = InpNet([4, 8, 8])
    kept = inpaint(inp, x, region, torch.rand_like(x), keep_known=True)
    assert torch.equal(kept[region == 0], x[region == 0])
    free = inpaint(inp, x, region, torch.rand_like(x), keep_known=False)
    assert not torch.allclose(free[region == 0], x[region == 0])


def test_segmentation_loss_moves_a_free_mask_onto_the_unpredictable_region():
    """Minimising L_gen over a free mask finds the region the inpainting cannot reproduce."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((1, 1, *SHAPE), generator=gen)
    lesion = torch.zeros_like(x, dtype=torch.bool)
    lesion[..., 5:11, 4:10, 6:12] = True
    noise = torch.rand((1, 1, *SHAPE), generator=gen)
    # Inpaintings reproduce x everywhere except inside the lesion (unpredictable from context).
    x_f_hat = torch.where(lesion, noise, x)
    x_b_hat = torch.where(lesion, noise, x)
    logits = torch.zeros_like(x, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.1)
    eps = segmentation_eps(x.numel())
    for _ in range(150):
        loss = segmentation_loss(x, torch.sigmoid(logits), x_f_hat, x_b_hat, window=3, threshold=0.1, eps=eps)
        opt.zero_grad()
        loss.backward()
        opt.step()
    mask = (torch.sigmoid(logits) > 0.5)[0, 0].numpy()
    truth = lesion[0, 0].numpy()
    chance = expected_random_voxel_dice(int(mask.sum()), int(truth.sum()), mask.size)
    assert dice(mask, truth) > 0.7 > chance + 0.4


def test_inpainting_loss_is_lowest_for_the_target_and_regions_are_normalised_on_request():
    gen = torch.Generator().manual_seed(1)
    x, y2x = torch.rand((1, 1, *SHAPE), generator=gen), torch.rand((1, 1, *SHAPE), generator=gen)
    mask = torch.zeros_like(x)
    mask[..., :4, :, :] = 1
    target = x * (1 - mask) + y2x * mask
    for region in ("whole", "exclude"):
        best = inpainting_loss(x, mask, y2x, target, 3, 0.1, 1.0, 100.0, region)
        worse = inpainting_loss(x, mask, y2x, target + 0.1, 3, 0.1, 1.0, 100.0, region)
        assert best < worse
    with pytest.raises(ValueError, match="mse_region"):
        inpainting_loss(x, mask, y2x, target, 3, 0.1, 1.0, 100.0, "inside")


def test_registration_network_learns_to_align_a_shifted_blob():
    """A few dozen SYM-Net steps with the symmetric loss align x to y better than the identity."""
    torch.manual_seed(0)
    y = _blob((8.0, 8.0, 8.0))
    x = _blob((10.0, 7.0, 8.5))
    model = GIRNet(NETS, REG)
    opt = torch.optim.Adam(model.reg.parameters(), lr=3e-3)

    def mismatch() -> float:
        with torch.no_grad():
            return float(((warp(x, model.reg(x, y).xy) - y) ** 2).mean())

    before = mismatch()
    for _ in range(60):
        terms = registration_loss(model.reg(x, y), x, x, y, REG)
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
    assert set(terms) >= {"ncc_full", "ncc_half", "magnitude", "jacobian", "smoothness", "total"}
    assert mismatch() < 0.5 * before


def test_cost_function_masking_removes_the_lesion_from_the_similarity():
    torch.manual_seed(0)
    y = _blob((8.0, 8.0, 8.0)) + 0.2 * torch.rand((1, 1, *SHAPE))
    x = y.clone()
    x[..., 6:10, 6:10, 6:10] = torch.rand((4, 4, 4))  # a "lesion" where x and y differ
    fields = RegNet([4, 8, 8], range_flow=8.0)(x, y)
    keep = torch.ones_like(x)
    keep[..., 5:11, 5:11, 5:11] = 0.0  # the lesion and a margin of the NCC window

    def ncc(image, mask=None):
        return float(registration_loss(fields, image, image, y, REG, keep_moving=mask)["ncc_full"])

    # With the lesion masked out, the lesioned and the lesion-free image score (almost) alike.
    assert abs(ncc(x, keep) - ncc(y, keep)) < 0.2 * abs(ncc(x) - ncc(y))


def test_random_masks_give_the_chance_level():
    rng = np.random.default_rng(0)
    truth = np.zeros((20, 20, 20), bool)
    truth[5:10, 5:10, 5:10] = True
    brain = np.ones_like(truth)
    # The true mask itself, moved at random, overlaps rarely.
    assert random_mask_dice(truth, truth, brain, 200, rng) < 0.2
    assert random_mask_dice(np.zeros_like(truth), truth, brain, 5, rng) == 0.0
    assert expected_random_voxel_dice(125, 125, 8000) == pytest.approx(125 / 8000)


def test_random_box_masks_cover_the_configured_fractions():
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = random_box_mask((20, 30, 10), (0.1, 0.8), rng)
        idx = np.argwhere(m > 0)
        edges = idx.max(0) - idx.min(0) + 1
        assert np.all(edges >= np.floor(np.array([20, 30, 10]) * 0.1))
        assert np.all(edges <= np.ceil(np.array([20, 30, 10]) * 0.8))


def test_residual_inpainter_starts_as_the_warped_atlas():
    x, y2x = torch.rand((1, 1, *SHAPE)), torch.rand((1, 1, *SHAPE))
    mask = (torch.rand_like(x) > 0.5).float()
    out = InpNet([4, 8, 8], residual=True)(x * (1 - mask), mask, y2x)
    assert torch.allclose(out, y2x, atol=1e-3)
    assert not torch.allclose(InpNet([4, 8, 8])(x * (1 - mask), mask, y2x), y2x, atol=1e-2)


def test_structures_are_warped_label_by_label_with_linear_interpolation():
    from reprolab.medical.girnet_train import structure_masks, warp_structures

    labels = np.zeros(SHAPE, dtype=np.int64)
    labels[4:10, 4:10, 4:10] = 2
    labels[10:12, 4:10, 4:10] = 3
    masks = structure_masks(labels, {"a": [2], "both": [2, 3]})
    assert masks.shape == (1, 2, *SHAPE) and masks[0, 1].sum() == 6 * 6 * 6 + 2 * 6 * 6
    same = warp_structures(masks, torch.zeros((1, 3, *SHAPE)))
    assert torch.equal(same, masks[0].bool())
    shift = torch.zeros((1, 3, *SHAPE))
    shift[:, 0] = 0.6  # sample 0.6 voxel further along axis 0: the box moves down one voxel
    moved = warp_structures(masks, shift)[0]
    assert moved[2, 5, 5] == 0 and moved[3, 5, 5] == 1 and moved[8, 5, 5] == 1 and moved[9, 5, 5] == 0
