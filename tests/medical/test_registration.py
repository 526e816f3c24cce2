import numpy as np
import pytest
import torch
from scipy.linalg import expm

from reprolab.medical.registration import (
    compose,
    dice,
    folding_fraction,
    gradient_smoothness,
    integrate_velocity,
    jacobian_determinant,
    lncc,
    lncc_map,
    magnitude_difference,
    negative_jacobian_penalty,
    random_velocity,
    smoothness,
    warp,
)

SHAPE = (20, 22, 18)


def _coords(shape=SHAPE) -> torch.Tensor:
    """[1, 3, X, Y, Z] voxel coordinates relative to the volume centre."""
    axes = [torch.arange(s, dtype=torch.float64) - (s - 1) / 2 for s in shape]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"))[None]


def _linear_field(matrix: np.ndarray, shape=SHAPE) -> torch.Tensor:
    """u(p) = A p about the centre, [1, 3, X, Y, Z]."""
    return torch.einsum("ij,bjxyz->bixyz", torch.as_tensor(matrix, dtype=torch.float64), _coords(shape))


def _interior(t: torch.Tensor, margin: int = 4) -> torch.Tensor:
    return t[..., margin:-margin, margin:-margin, margin:-margin]


def test_scaling_and_squaring_of_a_zero_field_is_the_identity():
    zero = torch.zeros((1, 3, *SHAPE))
    for steps in (1, 7):
        assert torch.equal(integrate_velocity(zero, steps), zero)
    image = torch.rand((1, 1, *SHAPE))
    assert torch.allclose(warp(image, integrate_velocity(zero, 7)), image, atol=1e-5)


def test_warping_with_a_known_affine_field_samples_the_image_at_the_mapped_points():
    # A smooth image f(p) = sum of sines; warping with u must give f(p + u(p)) exactly up to interpolation error.
    def f(p):
        return torch.sin(p[:, 0:1] / 3.0) + torch.cos(p[:, 1:2] / 4.0) + 0.5 * torch.sin(p[:, 2:3] / 5.0)

    p = _coords()
    affine = np.array([[0.05, 0.02, 0.0], [-0.03, 0.04, 0.01], [0.0, 0.02, -0.05]])
    u = _linear_field(affine) + torch.tensor([1.5, -0.7, 0.4], dtype=torch.float64).view(1, 3, 1, 1, 1)
    warped = warp(f(p), u)
    expected = f(p + u)
    err = (_interior(warped) - _interior(expected)).abs()
    assert err.mean() < 0.01 and err.max() < 0.05


def test_integrating_a_linear_velocity_recovers_the_matrix_exponential():
    a = np.array([[0.08, 0.03, 0.0], [-0.02, -0.05, 0.04], [0.01, 0.0, 0.06]])
    v = _linear_field(a)
    expected = _linear_field(expm(a) - np.eye(3))
    for downsize in (1, 2):
        ddf = integrate_velocity(v, steps=7, downsize=downsize)
        assert torch.allclose(_interior(ddf, 6), _interior(expected, 6), atol=0.05), downsize
    # A constant velocity integrates to the same translation.
    t = torch.full((1, 3, *SHAPE), 1.25, dtype=torch.float64)
    assert torch.allclose(_interior(integrate_velocity(t, 7), 6), _interior(t, 6), atol=1e-3)


def test_jacobian_determinant_of_a_linear_field_is_det_of_identity_plus_matrix():
    a = np.array([[0.2, 0.1, 0.0], [0.0, -0.3, 0.05], [0.1, 0.0, 0.15]])
    det = jacobian_determinant(_linear_field(a))
    assert det.shape == (1, *SHAPE)
    assert torch.allclose(det, torch.full_like(det, np.linalg.det(np.eye(3) + a)), atol=1e-9)
    assert torch.allclose(jacobian_determinant(torch.zeros((1, 3, *SHAPE))), torch.ones((1, *SHAPE)))


def test_folding_is_detected_and_penalised():
    # u = -2 x along axis 0 mirrors the volume: det = -1 everywhere.
    fold = _linear_field(np.diag([-2.0, 0.0, 0.0]))
    assert folding_fraction(fold) == 1.0
    assert negative_jacobian_penalty(fold).item() == pytest.approx(1.0)
    smooth = _linear_field(np.diag([0.1, 0.1, 0.1]))
    assert folding_fraction(smooth) == 0.0 and negative_jacobian_penalty(smooth).item() == 0.0
    mask = torch.zeros((1, *SHAPE), dtype=torch.bool)
    mask[0, :3] = True
    assert folding_fraction(fold, mask) == 1.0


def test_a_field_composed_with_its_inverse_is_the_identity():
    gen = torch.Generator().manual_seed(0)
    v = random_velocity(SHAPE, sigma=3.0, max_velocity=2.0, generator=gen).double()
    forward, backward = integrate_velocity(v, 7), integrate_velocity(-v, 7)
    residual = _interior(compose(forward, backward)).abs()
    assert residual.max() < 0.1 and _interior(forward).abs().max() > 1.0
    # Warping twice equals warping once with the composition.
    image = torch.sin(_coords()[:, :1] / 3.0) * torch.cos(_coords()[:, 1:2] / 4.0)
    twice = warp(warp(image, forward), backward)
    assert (_interior(twice) - _interior(image)).abs().mean() < 0.05


def test_random_velocity_is_smooth_bounded_and_diffeomorphic():
    gen = torch.Generator().manual_seed(1)
    v = random_velocity(SHAPE, sigma=4.0, max_velocity=3.0, generator=gen)
    assert v.norm(dim=1).max().item() == pytest.approx(3.0, rel=1e-5)
    assert folding_fraction(integrate_velocity(v, 7)) == 0.0
    same = random_velocity(SHAPE, sigma=4.0, max_velocity=3.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(v, same)


def test_thresholded_lncc_map_matches_monai_on_textured_images_and_is_one_on_flat_ones():
    from monai.losses import LocalNormalizedCrossCorrelationLoss

    gen = torch.Generator().manual_seed(2)
    a = torch.rand((1, 1, *SHAPE), generator=gen, dtype=torch.float64)
    b = 0.5 * a + 0.5 * torch.rand((1, 1, *SHAPE), generator=gen, dtype=torch.float64)
    ours = lncc_map(a, b, window=5, threshold=0.0)
    theirs = -LocalNormalizedCrossCorrelationLoss(kernel_size=5, reduction="none")(a, b)
    assert torch.allclose(_interior(ours, 3), _interior(theirs, 3), atol=1e-8)
    assert lncc_map(a, a, 5, 0.1).min() > 0.999
    flat = torch.zeros((1, 1, *SHAPE))
    assert torch.allclose(lncc_map(flat, flat, 5, 0.1), torch.ones_like(flat))
    assert lncc(a, a, 5) == pytest.approx(1.0, abs=1e-4) and lncc(a, b, 5) < 0.9
    with pytest.raises(ValueError, match="odd"):
        lncc_map(a, b, 4, 0.1)


def test_regularisers():
    zero = torch.zeros((1, 3, *SHAPE))
    ramp = _linear_field(np.diag([0.1, 0.0, 0.0])).float()
    assert gradient_smoothness(zero) == 0 and gradient_smoothness(ramp).item() == pytest.approx(0.01 / 9, rel=1e-5)
    assert smoothness(ramp, "bending_energy").item() == pytest.approx(0.0, abs=1e-10)  # linear: no curvature
    assert magnitude_difference(ramp, ramp) == 0 and magnitude_difference(ramp, zero) > 0
    with pytest.raises(ValueError, match="smoothness"):
        smoothness(ramp, "tv")


def test_dice():
    a = np.zeros((4, 4), bool)
    a[:2] = True
    b = np.zeros((4, 4), bool)
    b[1:3] = True
    assert dice(a, b) == pytest.approx(0.5) and dice(a, a) == 1.0 and dice(~a & a, ~a & a) == 1.0
