"""Oblique-plane geometry: DICOM conventions, intersections, projections, resampling."""

from __future__ import annotations

import numpy as np
import pytest

from reprolab.medical.geometry import (
    Line2D,
    Plane,
    clip_line,
    line_heatmap,
    line_in_pixels,
    plane_intersection,
    planes_of_volume,
    relative_slice_locations,
    resample_image,
    sample_volume,
)


def axial(z: float = 0.0, spacing=(1.0, 1.0), rows: int = 20, cols: int = 30) -> Plane:
    """x along rows, y down columns, normal +z, pixel (0, 0) at (0, 0, z)."""
    return Plane.from_dicom([0.0, 0.0, z], [1, 0, 0, 0, 1, 0], spacing, rows, cols)


def random_plane(rng: np.random.Generator, spacing=(1.3, 0.7), rows: int = 40, cols: int = 50) -> Plane:
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return Plane.from_dicom(rng.normal(scale=20, size=3), np.concatenate([q[:, 0], q[:, 1]]), spacing, rows, cols)


def test_orthogonal_plane_meets_the_image_in_a_column():
    image = axial(spacing=(1.0, 2.0))
    sagittal = Plane.from_dicom([13.0, -50, -50], [0, 1, 0, 0, 0, 1], (1.0, 1.0), 100, 100)  # plane x = 13
    line = line_in_pixels(image, plane_intersection(image, sagittal))
    # x = 13 mm is column 13 / dx = 6.5 when columns are 2 mm apart
    assert abs(line.a) == pytest.approx(1.0) and line.b == pytest.approx(0.0, abs=1e-12)
    assert -line.c / line.a == pytest.approx(6.5)
    heat = line_heatmap(line, image.rows, image.cols, sigma_px=1.0)
    assert set(np.argmax(heat, axis=1)) <= {6, 7}  # every row peaks at the column next to 6.5
    ends = clip_line(line, image.rows, image.cols)
    assert sorted(e[1] for e in ends) == pytest.approx([-0.5, image.rows - 0.5])  # top and bottom borders


def test_orthogonal_plane_meets_the_image_in_a_row_and_clipping_uses_the_side_borders():
    image = axial(spacing=(0.5, 1.0))
    coronal = Plane.from_dicom([-50, 4.0, -50], [1, 0, 0, 0, 0, 1], (1.0, 1.0), 100, 100)  # plane y = 4
    line = line_in_pixels(image, plane_intersection(image, coronal))
    assert line.a == pytest.approx(0.0, abs=1e-12) and -line.c / line.b == pytest.approx(8.0)  # 4 mm / 0.5 mm
    heat = line_heatmap(line, image.rows, image.cols, sigma_px=1.5)
    assert np.all(np.argmax(heat, axis=0) == 8)
    # a horizontal line: the official code's rows v = 0 and v = H cannot give its end points
    ends = clip_line(line, image.rows, image.cols)
    assert sorted(e[0] for e in ends) == pytest.approx([-0.5, image.cols - 0.5])
    assert all(e[1] == pytest.approx(8.0) for e in ends)


def test_parallel_planes_have_no_intersection():
    assert plane_intersection(axial(0.0), axial(5.0)) is None


def test_clip_line_handles_diagonal_and_missing_lines():
    diagonal = Line2D.through((0, 0), (1, 1))
    ends = clip_line(diagonal, rows=10, cols=20)
    assert {tuple(np.round(e, 9)) for e in ends} == {(-0.5, -0.5), (9.5, 9.5)}
    assert clip_line(Line2D.through((0, 30), (1, 30)), rows=10, cols=20) is None  # row 30 is outside


def test_point_projected_onto_a_plane_and_back_is_exact():
    rng = np.random.default_rng(0)
    for _ in range(20):
        plane = random_plane(rng)
        u, v = rng.uniform(-5, 60, size=2)
        p = plane.pixel_to_world(u, v)
        assert np.allclose(plane.world_to_pixel(p), (u, v), atol=1e-10)
        q = rng.normal(scale=30, size=3)  # a point off the plane
        on = plane.project(q)
        assert plane.signed_distance(on) == pytest.approx(0.0, abs=1e-10)
        assert np.allclose(plane.pixel_to_world(*plane.world_to_pixel(q)), on, atol=1e-10)
        assert np.allclose(np.cross(q - on, plane.normal), 0.0, atol=1e-9)  # moved along the normal only


def test_non_square_pixels_use_pixel_spacing_in_row_column_order():
    # PixelSpacing = [between rows (along Y), between columns (along X)] = [2.0, 0.5]
    plane = Plane.from_dicom([1, 2, 3], [0, 1, 0, 0, 0, -1], (2.0, 0.5), 8, 40)
    assert plane.dx == 0.5 and plane.dy == 2.0
    p = np.array([1, 2, 3]) + 10.0 * plane.row_dir + 6.0 * plane.col_dir
    assert np.allclose(plane.world_to_pixel(p), (20.0, 3.0))  # 10 mm / 0.5 along X, 6 mm / 2 along Y
    assert np.allclose(plane.pixel_to_world(20.0, 3.0), p)
    # a line at 45 degrees in the plane (mm) has slope dv/du = dx / dy = 0.25 in pixels
    line = Line2D.through(plane.world_to_pixel(p), plane.world_to_pixel(p + plane.row_dir + plane.col_dir))
    assert -line.a / line.b == pytest.approx(0.25)


def test_sample_volume_reproduces_a_linear_field_on_an_oblique_plane():
    affine = np.diag([2.0, 1.5, 1.0, 1.0])
    affine[:3, 3] = [-20, -30, -25]
    i, j, k = np.meshgrid(*(np.arange(n) for n in (30, 40, 50)), indexing="ij")
    world = np.stack([i, j, k], -1) @ affine[:3, :3].T + affine[:3, 3]
    coeff = np.array([0.3, -0.2, 0.5])
    volume = world @ coeff
    plane = Plane.from_dicom([-5, -5, 0], np.r_[[1, 1, 0] / np.sqrt(2), [0, 0, 1]], (0.7, 1.1), 12, 9)
    image = sample_volume(volume, affine, plane)
    assert image.shape == (12, 9)
    assert np.allclose(image, plane.pixel_centres() @ coeff, atol=1e-4)
    labels = sample_volume((volume > 0).astype(np.uint8), affine, plane, order=0)
    assert labels.dtype == np.uint8


def test_resample_image_onto_a_regridded_plane_matches_the_field():
    rng = np.random.default_rng(1)
    source = random_plane(rng, spacing=(1.0, 0.6), rows=60, cols=80)
    coeff = np.array([0.1, 0.4, -0.3])
    image = source.pixel_centres() @ coeff
    target = source.regrid(spacing_mm=1.7, size=21)
    assert np.allclose(target.centre, source.centre) and np.allclose(target.normal, source.normal)
    out = resample_image(np.stack([image, 2 * image]), source, target)
    assert out.shape == (2, 21, 21)
    assert np.allclose(out[0], target.pixel_centres() @ coeff, atol=1e-4)
    assert np.allclose(out[1], 2 * out[0], atol=1e-4)
    with pytest.raises(ValueError, match="does not match"):
        resample_image(image.T, source, target)


def test_slice_targets_are_monotone_in_slice_order_and_span_zero_to_one():
    rng = np.random.default_rng(2)
    base = random_plane(rng)
    offsets = np.sort(rng.uniform(-40, 40, size=9))
    # parallel slices along the normal, each also shifted in-plane (which must not matter)
    stack = [Plane(base.origin + o * base.normal + rng.normal(size=2) @ np.stack([base.row_dir, base.col_dir]),
                   base.row_dir, base.col_dir, base.pixel_spacing, base.rows, base.cols) for o in offsets]
    target = relative_slice_locations(stack)
    assert target.min() == 0.0 and target.max() == 1.0
    assert np.all(np.diff(target) < 0)  # loc = -(n . IPP) decreases along the normal
    assert np.allclose(target, (offsets.max() - offsets) / np.ptp(offsets))
    with pytest.raises(ValueError, match="two distinct"):
        relative_slice_locations([base, base])


def test_planes_of_volume_follow_the_nifti_affine():
    affine = np.array([[0, 0, 3.0, 5], [1.5, 0, 0, 6], [0, 1.2, 0, 7], [0, 0, 0, 1]])
    planes = planes_of_volume(affine, (4, 5, 3))
    assert len(planes) == 3 and (planes[0].rows, planes[0].cols) == (4, 5)
    for k, plane in enumerate(planes):
        for i, j in ((0, 0), (3, 1), (2, 4)):
            assert np.allclose(plane.pixel_to_world(j, i), (affine @ np.array([i, j, k, 1.0]))[:3])


def test_malformed_orientation_is_refused():
    with pytest.raises(ValueError, match="orthonormal"):
        Plane.from_dicom([0, 0, 0], [1, 0, 0, 1, 0, 0], (1, 1), 4, 4)
    with pytest.raises(ValueError, match="PixelSpacing"):
        Plane.from_dicom([0, 0, 0], [1, 0, 0, 0, 1, 0], (0, 1), 4, 4)
