"""Geometry of oblique imaging planes, in the terms DICOM uses to describe them.

A 2-D MR image lies on a plane in patient (world) coordinates, given by three DICOM attributes:

- ImagePositionPatient (IPP): the world position, in mm, of the centre of the first transmitted
  pixel (row 0, column 0);
- ImageOrientationPatient (IOP): two unit vectors, the row direction ``X = IOP[0:3]`` (the
  direction in which the column index grows along a row) and the column direction
  ``Y = IOP[3:6]`` (the direction in which the row index grows down a column);
- PixelSpacing: ``[spacing between rows, spacing between columns]``, i.e. ``[dy, dx]`` with
  ``dy`` measured along ``Y`` and ``dx`` along ``X`` (DICOM PS3.3 C.7.6.2.1.1 and 10.7.1.3).

The world position of the pixel in column ``u`` and row ``v`` is therefore
``IPP + u * dx * X + v * dy * Y`` (PS3.3 C.7.6.2.1.1, equation C.7.6.2.1-1). The official code of
Zhang et al. (MedIA 2024, arXiv:2403.16499, ``CMR_pretrain/preprocess.py``) divides the projection
on ``X`` by ``PixelSpacing[0]``, which is right only for square pixels; here ``X`` goes with
``PixelSpacing[1]``. Pixel coordinates in this module are ``(u, v) = (column, row)`` of pixel
centres, so that pixel ``(0, 0)`` is centred on the IPP and the image covers
``[-0.5, cols - 0.5] x [-0.5, rows - 0.5]``.

Everything is plain numpy linear algebra (the official code uses sympy); volumes are sampled
with :func:`scipy.ndimage.map_coordinates`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Largest allowed deviation of ``X . Y`` from 0 and of ``|X|``, ``|Y|`` from 1 in an IOP.
ORTHONORMAL_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Plane:
    """One image plane with its pixel grid (the DICOM geometry of a 2-D image).

    Attributes
    ----------
    origin
        ImagePositionPatient: world position of the centre of pixel (row 0, column 0), mm.
    row_dir
        ``X = IOP[0:3]``: unit vector along a row (column index grows).
    col_dir
        ``Y = IOP[3:6]``: unit vector down a column (row index grows).
    pixel_spacing
        DICOM PixelSpacing ``(dy, dx)``: spacing between rows (along ``Y``), then between
        columns (along ``X``), mm.
    rows, cols
        Image size (DICOM Rows, Columns).
    """

    origin: np.ndarray
    row_dir: np.ndarray
    col_dir: np.ndarray
    pixel_spacing: tuple[float, float]
    rows: int
    cols: int

    @classmethod
    def from_dicom(cls, ipp: Sequence[float], iop: Sequence[float], pixel_spacing: Sequence[float], rows: int,
                   cols: int) -> Plane:
        """Build a plane from the DICOM attributes IPP, IOP, PixelSpacing, Rows, Columns.

        Raises
        ------
        ValueError
            If IOP is not six numbers forming two orthonormal vectors (within
            :data:`ORTHONORMAL_TOLERANCE`, then re-normalised), a spacing is not positive, or
            the size is empty.
        """
        ipp_a, iop_a, ps = (np.asarray(a, dtype=float) for a in (ipp, iop, pixel_spacing))
        if ipp_a.shape != (3,) or iop_a.shape != (6,) or ps.shape != (2,):
            raise ValueError(f"expected IPP of 3, IOP of 6 and PixelSpacing of 2 numbers, got shapes "
                             f"{ipp_a.shape}, {iop_a.shape}, {ps.shape}")
        x, y = iop_a[:3], iop_a[3:]
        if (abs(np.linalg.norm(x) - 1) > ORTHONORMAL_TOLERANCE or abs(np.linalg.norm(y) - 1) > ORTHONORMAL_TOLERANCE
                or abs(float(x @ y)) > ORTHONORMAL_TOLERANCE):
            raise ValueError(f"ImageOrientationPatient {iop_a.tolist()} is not two orthonormal unit vectors")
        if np.any(ps <= 0) or rows < 1 or cols < 1:
            raise ValueError(f"PixelSpacing {ps.tolist()} must be positive and Rows x Columns {rows} x {cols} non-empty")
        x = x / np.linalg.norm(x)
        y = y - (x @ y) * x
        return cls(ipp_a, x, y / np.linalg.norm(y), (float(ps[0]), float(ps[1])), int(rows), int(cols))

    @property
    def ipp(self) -> np.ndarray:
        """ImagePositionPatient (a copy of :attr:`origin`)."""
        return self.origin.copy()

    @property
    def iop(self) -> np.ndarray:
        """ImageOrientationPatient: ``X`` then ``Y``, six numbers."""
        return np.concatenate([self.row_dir, self.col_dir])

    @property
    def normal(self) -> np.ndarray:
        """Unit normal ``n = X x Y``."""
        n = np.cross(self.row_dir, self.col_dir)
        return n / np.linalg.norm(n)

    @property
    def dx(self) -> float:
        """Spacing between columns, along ``X`` (PixelSpacing[1])."""
        return self.pixel_spacing[1]

    @property
    def dy(self) -> float:
        """Spacing between rows, along ``Y`` (PixelSpacing[0])."""
        return self.pixel_spacing[0]

    @property
    def centre(self) -> np.ndarray:
        """World position of the centre of the image."""
        return self.pixel_to_world((self.cols - 1) / 2, (self.rows - 1) / 2)

    def pixel_to_world(self, u: np.ndarray | float, v: np.ndarray | float) -> np.ndarray:
        """World positions ``IPP + u dx X + v dy Y`` of pixel coordinates (column ``u``, row ``v``).

        Returns
        -------
        numpy.ndarray
            ``[..., 3]`` for broadcast-compatible ``u`` and ``v``.
        """
        u, v = np.asarray(u, dtype=float)[..., None], np.asarray(v, dtype=float)[..., None]
        return self.origin + u * self.dx * self.row_dir + v * self.dy * self.col_dir

    def world_to_pixel(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates of the orthogonal projections of world points onto the plane.

        ``u = (p - IPP) . X / dx`` and ``v = (p - IPP) . Y / dy`` (card, section 2.1, with the
        spacing of each direction).

        Parameters
        ----------
        points
            ``[..., 3]`` world positions, mm.

        Returns
        -------
        tuple of numpy.ndarray
            ``(u, v)``: column and row coordinates, each of shape ``[...]``.
        """
        rel = np.asarray(points, dtype=float) - self.origin
        return rel @ self.row_dir / self.dx, rel @ self.col_dir / self.dy

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        """Signed distance ``n . (p - IPP)`` of world points from the plane, mm."""
        return (np.asarray(points, dtype=float) - self.origin) @ self.normal

    def project(self, points: np.ndarray) -> np.ndarray:
        """Orthogonal projection of world points onto the plane."""
        points = np.asarray(points, dtype=float)
        return points - self.signed_distance(points)[..., None] * self.normal

    def pixel_centres(self) -> np.ndarray:
        """World positions of every pixel centre, ``[rows, cols, 3]``."""
        v, u = np.meshgrid(np.arange(self.rows), np.arange(self.cols), indexing="ij")
        return self.pixel_to_world(u, v)

    def regrid(self, spacing_mm: float, size: int) -> Plane:
        """A square ``size x size`` grid of isotropic ``spacing_mm`` pixels, same orientation and centre.

        This is the in-plane resampling of the paper (1.26 mm, zero-padded and centre-cropped to
        224 x 224) expressed as a new plane: resample onto it with :func:`resample_image`.
        """
        half = (size - 1) / 2 * spacing_mm
        origin = self.centre - half * self.row_dir - half * self.col_dir
        return Plane(origin, self.row_dir.copy(), self.col_dir.copy(), (float(spacing_mm), float(spacing_mm)),
                     int(size), int(size))


@dataclass(frozen=True)
class Line3D:
    """A straight line ``point + t * direction`` in world coordinates (``direction`` of unit length)."""

    point: np.ndarray
    direction: np.ndarray


@dataclass(frozen=True)
class Line2D:
    """A line ``a u + b v + c = 0`` in pixel coordinates, with ``a**2 + b**2 = 1``.

    ``|a u + b v + c|`` is then the perpendicular distance of pixel ``(u, v)`` from the line, in
    pixels (of the image's own pixel grid).
    """

    a: float
    b: float
    c: float

    @classmethod
    def through(cls, p0: Sequence[float], p1: Sequence[float]) -> Line2D:
        """The line through two distinct points ``(u, v)``.

        Raises
        ------
        ValueError
            If the points coincide.
        """
        (u0, v0), (u1, v1) = p0, p1
        a, b = v1 - v0, u0 - u1
        norm = float(np.hypot(a, b))
        if norm < 1e-12:
            raise ValueError("a line needs two distinct points")
        a, b = a / norm, b / norm
        return cls(float(a), float(b), float(-(a * u0 + b * v0)))

    def distance(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Perpendicular distance of points ``(u, v)`` from the line."""
        return np.abs(self.a * np.asarray(u, dtype=float) + self.b * np.asarray(v, dtype=float) + self.c)


def plane_intersection(a: Plane, b: Plane, tolerance_deg: float = 1.0) -> Line3D | None:
    """The line where two planes meet.

    Its direction is ``n_a x n_b`` (card, section 2.2); its point is the one closest to the centre
    of image ``a`` among those satisfying both plane equations ``n . (p - IPP) = 0``.

    Parameters
    ----------
    a, b
        The planes (e.g. a short-axis and a long-axis image).
    tolerance_deg
        Planes closer than this angle to parallel have no usable intersection.

    Returns
    -------
    Line3D or None
        ``None`` for (nearly) parallel planes.
    """
    direction = np.cross(a.normal, b.normal)
    if np.linalg.norm(direction) < np.sin(np.radians(tolerance_deg)):
        return None
    direction = direction / np.linalg.norm(direction)
    system = np.stack([a.normal, b.normal, direction])
    rhs = np.array([a.normal @ a.origin, b.normal @ b.origin, direction @ a.centre])
    return Line3D(np.linalg.solve(system, rhs), direction)


def line_in_pixels(plane: Plane, line: Line3D) -> Line2D:
    """The projection of a world line onto a plane, as a line in that image's pixel coordinates.

    Exact for a line lying in the plane (such as :func:`plane_intersection` of the plane with
    another one); any other line is projected orthogonally first.

    Raises
    ------
    ValueError
        If the line is perpendicular to the plane (its projection is a point).
    """
    p0 = np.stack(plane.world_to_pixel(line.point))
    p1 = np.stack(plane.world_to_pixel(line.point + 10.0 * max(plane.dx, plane.dy) * line.direction))
    try:
        return Line2D.through(p0, p1)
    except ValueError as err:
        raise ValueError("the line is perpendicular to the plane; its projection is a single point") from err


def clip_line(line: Line2D, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray] | None:
    """End points of a line inside the image ``[-0.5, cols - 0.5] x [-0.5, rows - 0.5]``.

    The line is clipped against all four borders (Liang-Barsky), so horizontal, vertical and
    steep lines are all handled; the official code intersects only the rows ``v = 0`` and
    ``v = H``, which fails for near-horizontal lines (card, section 7).

    Returns
    -------
    tuple of numpy.ndarray or None
        Two ``(u, v)`` points on the image border, or ``None`` if the line misses the image.
    """
    # a point on the line (the foot of the perpendicular from the origin) and its direction
    point = np.array([-line.a * line.c, -line.b * line.c])
    direction = np.array([-line.b, line.a])
    lo, hi = np.array([-0.5, -0.5]), np.array([cols - 0.5, rows - 0.5])
    t_min, t_max = -np.inf, np.inf
    for axis in range(2):
        if abs(direction[axis]) < 1e-12:
            if not lo[axis] <= point[axis] <= hi[axis]:
                return None
            continue
        t0, t1 = sorted(((lo[axis] - point[axis]) / direction[axis], (hi[axis] - point[axis]) / direction[axis]))
        t_min, t_max = max(t_min, t0), min(t_max, t1)
    if t_max <= t_min:
        return None
    return point + t_min * direction, point + t_max * direction


def pixel_grid(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Column and row coordinates ``(u, v)`` of every pixel, each ``[rows, cols]``."""
    v, u = np.meshgrid(np.arange(rows, dtype=float), np.arange(cols, dtype=float), indexing="ij")
    return u, v


def line_heatmap(line: Line2D | None, rows: int, cols: int, sigma_px: float) -> np.ndarray:
    """Gaussian heatmap of a line: ``exp(-d^2 / (2 sigma^2))``, ``d`` the distance to the line in pixels.

    The target of the intersecting-line pretext task (card, section 2.2, step 4), computed from
    the analytic distance map instead of a drawn and blurred line.

    Parameters
    ----------
    line
        The line, or ``None`` (no intersection: an all-zero map).
    rows, cols
        Image size.
    sigma_px
        Width of the Gaussian, pixels.

    Returns
    -------
    numpy.ndarray
        float32 ``[rows, cols]`` in [0, 1].
    """
    if line is None:
        return np.zeros((rows, cols), dtype=np.float32)
    u, v = pixel_grid(rows, cols)
    return np.exp(-line.distance(u, v) ** 2 / (2.0 * sigma_px**2)).astype(np.float32)


def sample_volume(volume: np.ndarray, affine: np.ndarray, plane: Plane, order: int = 1,
                  cval: float = 0.0) -> np.ndarray:
    """Resample a 3-D volume on a plane's pixel grid.

    Parameters
    ----------
    volume
        ``[I, J, K]`` array.
    affine
        4 x 4 voxel-index-to-world matrix of ``volume`` (as in NIfTI).
    plane
        The image plane to sample.
    order
        Spline order of :func:`scipy.ndimage.map_coordinates` (0 = nearest, for labels; 1 = linear).
    cval
        Value outside the volume.

    Returns
    -------
    numpy.ndarray
        ``[plane.rows, plane.cols]``, dtype of ``volume`` for ``order=0``, else float32.
    """
    from scipy.ndimage import map_coordinates

    world = plane.pixel_centres().reshape(-1, 3)
    inverse = np.linalg.inv(np.asarray(affine, dtype=float))
    index = world @ inverse[:3, :3].T + inverse[:3, 3]
    out = map_coordinates(volume, index.T, order=order, mode="constant", cval=cval, prefilter=False)
    out = out.reshape(plane.rows, plane.cols)
    return out if order == 0 else out.astype(np.float32)


def resample_image(image: np.ndarray, source: Plane, target: Plane, order: int = 1, cval: float = 0.0) -> np.ndarray:
    """Resample an image from its plane's pixel grid onto another grid of (nearly) the same plane.

    Every target pixel centre is mapped to world coordinates and projected onto the source grid
    (:meth:`Plane.world_to_pixel`), so spacing, size, shift and in-plane rotation may all differ.

    Parameters
    ----------
    image
        ``[source.rows, source.cols]`` or ``[frames, source.rows, source.cols]`` (every frame
        is resampled the same way).
    source, target
        Geometry of ``image`` and of the output.
    order
        Spline order (0 for labels, 1 for intensities).
    cval
        Value outside the source image (zero padding).

    Returns
    -------
    numpy.ndarray
        ``[target.rows, target.cols]`` (or with the leading frame axis).
    """
    from scipy.ndimage import map_coordinates

    image = np.asarray(image)
    if image.shape[-2:] != (source.rows, source.cols):
        raise ValueError(f"image of shape {image.shape} does not match its plane's {source.rows} x {source.cols} grid")
    u, v = source.world_to_pixel(target.pixel_centres())
    frames = image.reshape(-1, source.rows, source.cols)
    coords = np.broadcast_to(np.stack([v, u]), (2, *u.shape))
    out = np.stack([map_coordinates(f, coords, order=order, mode="constant", cval=cval, prefilter=False)
                    for f in frames])
    out = out.reshape(*image.shape[:-2], target.rows, target.cols)
    return out if order == 0 else out.astype(np.float32)


def slice_location(plane: Plane) -> float:
    """Signed position ``-(n . IPP)`` of a plane along its own normal, mm (card, section 2.3)."""
    return float(-(plane.normal @ plane.origin))


def relative_slice_locations(planes: Sequence[Plane]) -> np.ndarray:
    """Relative slice locations of one subject's parallel images: ``(loc - min) / (max - min)``.

    The target of the slice-location pretext task (card, section 2.3), in [0, 1] over all the
    given planes (every short-axis image of one patient).

    Raises
    ------
    ValueError
        With fewer than two distinct locations (the target is undefined).
    """
    locs = np.array([slice_location(p) for p in planes])
    span = locs.max() - locs.min() if len(locs) else 0.0
    if span < 1e-6:
        raise ValueError(f"relative slice location needs at least two distinct slice positions, got {locs.tolist()}")
    return (locs - locs.min()) / span


def planes_of_volume(affine: np.ndarray, shape: Sequence[int]) -> list[Plane]:
    """The plane of every slice ``volume[:, :, k]`` of a volume with a voxel-to-world ``affine``.

    In slice ``k``, array axis 0 is the row index (direction ``Y``, spacing ``dy``) and axis 1
    the column index (``X``, ``dx``), so ``volume[:, :, k]`` is that plane's image.

    Raises
    ------
    ValueError
        If the affine's first two axes are not orthogonal (a sheared grid has no DICOM plane).
    """
    affine = np.asarray(affine, dtype=float)
    col_axis, row_axis = affine[:3, 0], affine[:3, 1]  # along rows of the array: Y; along columns: X
    dy, dx = float(np.linalg.norm(col_axis)), float(np.linalg.norm(row_axis))
    iop = np.concatenate([row_axis / dx, col_axis / dy])
    rows, cols, depth = int(shape[0]), int(shape[1]), int(shape[2])
    return [Plane.from_dicom(affine[:3, :3] @ np.array([0.0, 0.0, k]) + affine[:3, 3], iop, (dy, dx), rows, cols)
            for k in range(depth)]
