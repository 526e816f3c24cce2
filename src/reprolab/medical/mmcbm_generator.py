"""A generated choroid-tumour cohort with known ground truth (the ``mmcbm`` demo).

No public offline data exists for the paper (CTI is under an academic-use licence and is
downloaded only at paper scale), so the demo is a pipeline check on generated patients
whose truth is known, as the paper card describes:

1. the class ``y`` (melanoma / hemangioma / metastasis) is drawn with CTI's prior
   542 / 128 / 80;
2. binary concepts per modality (8 FA, 6 ICGA, 6 US) are drawn from a fixed
   class-conditional table P(c | y) (:data:`DEMO_CONCEPTS`): some discriminative, some
   shared by every class, and one per modality that is never drawn into the images (a
   report finding invisible to the encoder);
3. every active, visible concept adds its own primitive (clustered spots, a late-phase glow,
   an oriented texture, a dark rim, ...) to the phase images it belongs to, on top of a
   random background and lesion, plus pixel noise;
4. which modalities a patient has is drawn from CTI's modality-combination frequencies;
5. a fraction of patients has a "report": the active concepts of the modalities they
   have, each left out with a probability (incomplete reports).

The class reaches the images only through the concepts, so a perfect concept bottleneck
loses nothing against a black box here; the report says so. It is not a clinical result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from reprolab.core.errors import ConfigError
from reprolab.medical.mmcbm_cohort import CLASSES, MAX_PHASES, MODALITIES, PHASES, Cohort

#: CTI's class counts (melanoma, hemangioma, metastasis), from the official DATA_Cleaned.csv.
CTI_CLASS_COUNTS: tuple[int, int, int] = (542, 128, 80)
#: CTI's modality combinations and patient counts (DATA_Cleaned.csv; FA+ICGA+US merges the
#: file's two spellings, 227 + 58).
CTI_COMBINATIONS: dict[tuple[str, ...], int] = {
    ("FA", "ICGA", "US"): 285, ("US",): 217, ("FA", "ICGA"): 187, ("FA", "US"): 35, ("FA",): 12,
    ("ICGA", "US"): 10, ("ICGA",): 4,
}
ALL = (0, 1, 2)


@dataclass(frozen=True)
class DemoConcept:
    """One generated concept.

    Attributes
    ----------
    name
        English name, prefixed by the modality.
    modality
        FA, ICGA or US.
    phases
        Phase images that show it (and that are its positives in the concept bank).
    primitive
        What :func:`draw_primitive` adds to those images, or ``None``: never drawn.
    p
        P(concept | class), in the order of :data:`CLASSES`.
    """

    name: str
    modality: str
    phases: tuple[int, ...]
    primitive: str | None
    p: tuple[float, float, float]


#: The generator's concepts and P(c | y) (melanoma, hemangioma, metastasis).
DEMO_CONCEPTS: tuple[DemoConcept, ...] = (
    DemoConcept("FA, clustered early hyperfluorescent spots", "FA", (0, 1), "spots", (0.15, 0.85, 0.20)),
    DemoConcept("FA, late-phase leakage", "FA", (2,), "glow", (0.20, 0.80, 0.30)),
    DemoConcept("FA, double circulation (striped texture)", "FA", ALL, "grating45", (0.75, 0.10, 0.10)),
    DemoConcept("FA, pinpoint hyperfluorescence", "FA", (1, 2), "dots", (0.60, 0.15, 0.30)),
    DemoConcept("FA, hypofluorescent rim", "FA", ALL, "rim", (0.15, 0.15, 0.80)),
    DemoConcept("FA, mottled background", "FA", ALL, "speckle", (0.50, 0.50, 0.50)),
    DemoConcept("FA, dilated surface vessels", "FA", ALL, "hstripes", (0.30, 0.60, 0.30)),
    DemoConcept("FA, optic disc hyperfluorescence (not drawn)", "FA", ALL, None, (0.40, 0.40, 0.40)),
    DemoConcept("ICGA, early rapid filling", "ICGA", (0,), "flood", (0.10, 0.90, 0.15)),
    DemoConcept("ICGA, late washout", "ICGA", (2,), "dark_lesion", (0.20, 0.70, 0.20)),
    DemoConcept("ICGA, intrinsic tumour vessels", "ICGA", ALL, "grating135", (0.70, 0.10, 0.15)),
    DemoConcept("ICGA, hypofluorescent spots", "ICGA", ALL, "dark_spots", (0.20, 0.10, 0.75)),
    DemoConcept("ICGA, choroidal folds", "ICGA", ALL, "folds", (0.40, 0.40, 0.40)),
    DemoConcept("ICGA, blurred disc margin (not drawn)", "ICGA", ALL, None, (0.30, 0.30, 0.30)),
    DemoConcept("US, mushroom shape", "US", (0,), "cap", (0.60, 0.05, 0.10)),
    DemoConcept("US, low internal reflectivity (hollowing)", "US", (0,), "dark_band", (0.80, 0.20, 0.30)),
    DemoConcept("US, high internal reflectivity", "US", (0,), "bright_fill", (0.15, 0.80, 0.30)),
    DemoConcept("US, choroidal excavation", "US", (0,), "excavation", (0.50, 0.10, 0.20)),
    DemoConcept("US, diffuse irregular thickening", "US", (0,), "vstripes", (0.15, 0.15, 0.70)),
    DemoConcept("US, vitreous opacities", "US", (0,), "speckle", (0.30, 0.30, 0.30)),
)


def discriminative(p_concept: np.ndarray, threshold: float = 0.2) -> np.ndarray:
    """Concepts whose P(c | y) departs from its mean over classes by at least ``threshold``.

    Parameters
    ----------
    p_concept
        ``[n_classes, K]`` table P(c | y).
    threshold
        Smallest departure that makes a concept discriminative.

    Returns
    -------
    numpy.ndarray
        bool ``[K]``.
    """
    centred = p_concept - p_concept.mean(axis=0, keepdims=True)
    return np.abs(centred).max(axis=0) >= threshold


@dataclass(frozen=True)
class Geometry:
    """Per-patient lesion geometry shared by all of a patient's images (grid units, [-1, 1])."""

    cx: np.ndarray
    cy: np.ndarray
    radius: np.ndarray


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    axis = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    yy, xx = np.meshgrid(axis, axis, indexing="ij")
    return yy, xx


def _gauss(yy, xx, cy, cx, sigma) -> np.ndarray:
    """Gaussian bumps ``[N, H, W]`` centred at per-patient ``(cy, cx)`` (arrays ``[N]``)."""
    d2 = (yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2
    return np.exp(-d2 / (2 * np.asarray(sigma, dtype=np.float32).reshape(-1, 1, 1) ** 2))


def _lesion_distance(yy, xx, geo: Geometry) -> np.ndarray:
    return np.sqrt((yy[None] - geo.cy[:, None, None]) ** 2 + (xx[None] - geo.cx[:, None, None]) ** 2)


def _lesion_mask(yy, xx, geo: Geometry, edge: float = 0.04) -> np.ndarray:
    """Soft disk of each patient's lesion, ``[N, H, W]`` in [0, 1]."""
    d = _lesion_distance(yy, xx, geo)
    return 1.0 / (1.0 + np.exp((d - geo.radius[:, None, None]) / edge))


def _points_in_lesion(rng: np.random.Generator, geo: Geometry, n_points: int, spread: float = 0.8):
    """Random points inside every patient's lesion: arrays ``[N, n_points]`` (y, x)."""
    n = len(geo.cx)
    rho = spread * geo.radius[:, None] * np.sqrt(rng.random((n, n_points)))
    phi = 2 * np.pi * rng.random((n, n_points))
    return geo.cy[:, None] + rho * np.sin(phi), geo.cx[:, None] + rho * np.cos(phi)


def _sum_of_bumps(yy, xx, py, px, sigma) -> np.ndarray:
    return sum(_gauss(yy, xx, py[:, j], px[:, j], np.full(len(py), sigma)) for j in range(py.shape[1]))


def draw_primitive(name: str, yy: np.ndarray, xx: np.ndarray, geo: Geometry, rng: np.random.Generator,
                   layout: dict[str, np.ndarray]) -> np.ndarray:
    """The image pattern of one concept for every patient, ``[N, H, W]``, unit amplitude.

    Parameters
    ----------
    name
        Primitive name (:data:`DEMO_CONCEPTS`).
    yy, xx
        Pixel grid in [-1, 1].
    geo
        Lesion geometry.
    rng
        Random state (texture phases, spot positions), used only when ``layout`` lacks them.
    layout
        Per-patient random layout of this concept, filled on first use so that every phase
        image of a patient shows the same spots / texture phase.
    """
    lesion = _lesion_mask(yy, xx, geo)
    n = len(geo.cx)
    if name in ("spots", "dots", "dark_spots"):
        count, sigma, sign = {"spots": (5, 0.05, 1.0), "dots": (14, 0.025, 1.0), "dark_spots": (4, 0.07, -1.0)}[name]
        if "py" not in layout:
            layout["py"], layout["px"] = _points_in_lesion(rng, geo, count)
        return sign * np.minimum(_sum_of_bumps(yy, xx, layout["py"], layout["px"], sigma), 1.0)
    if name in ("grating45", "grating135", "hstripes", "vstripes"):
        angle, freq = {"grating45": (np.pi / 4, 5.0), "grating135": (3 * np.pi / 4, 5.0),
                       "hstripes": (np.pi / 2, 8.0), "vstripes": (0.0, 6.0)}[name]
        if "phase" not in layout:
            layout["phase"] = (2 * np.pi * rng.random(n)).astype(np.float32)
        wave = np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle))[None]
                      + layout["phase"][:, None, None])
        if name == "hstripes":  # surface vessels: the upper half of the lesion only
            lesion = lesion * (yy[None] < geo.cy[:, None, None])
        return wave * lesion
    if name == "glow":
        return _gauss(yy, xx, geo.cy, geo.cx, 1.3 * geo.radius)
    if name == "rim":
        d = _lesion_distance(yy, xx, geo)
        return -np.exp(-((d - geo.radius[:, None, None]) ** 2) / (2 * 0.05**2))
    if name == "speckle":
        return rng.standard_normal((n, *yy.shape)).astype(np.float32) * 0.6
    if name == "flood":
        return lesion
    if name == "dark_lesion":
        return -lesion
    if name == "folds":
        d = _lesion_distance(yy, xx, geo)
        return np.sin(2 * np.pi * 4.0 * d) * (1.0 - lesion)
    if name == "cap":
        return _gauss(yy, xx, geo.cy - geo.radius, geo.cx, np.full(n, 0.12))
    if name == "dark_band":
        below = (yy[None] > geo.cy[:, None, None]) & (yy[None] < (geo.cy + 0.6 * geo.radius)[:, None, None])
        return -lesion * below
    if name == "bright_fill":
        return lesion
    if name == "excavation":
        d = _lesion_distance(yy, xx, geo)
        ring = (d > geo.radius[:, None, None]) & (d < (geo.radius + 0.15)[:, None, None])
        return -(ring & (yy[None] > geo.cy[:, None, None])).astype(np.float32)
    raise ConfigError(f"unknown demo concept primitive {name!r}")


#: Mean intensity of background and lesion per modality and phase (FA / ICGA brighten over the phases).
_BACKGROUND = {"FA": (0.25, 0.32, 0.30), "ICGA": (0.22, 0.28, 0.25), "US": (0.12,)}
_LESION = {"FA": 0.15, "ICGA": 0.10, "US": 0.25}


def sample_modalities(rng: np.random.Generator, n: int) -> np.ndarray:
    """bool ``[n, 3]`` modality availability drawn from :data:`CTI_COMBINATIONS`."""
    combos = list(CTI_COMBINATIONS)
    weights = np.array([CTI_COMBINATIONS[c] for c in combos], dtype=float)
    drawn = rng.choice(len(combos), size=n, p=weights / weights.sum())
    table = np.array([[m in c for m in MODALITIES] for c in combos])
    return table[drawn]


def _sample_classes(rng: np.random.Generator, n: int) -> np.ndarray:
    prior = np.asarray(CTI_CLASS_COUNTS, dtype=float)
    return rng.choice(len(CLASSES), size=n, p=prior / prior.sum()).astype(np.int64)


def _render_modality(modality: str, concepts: list[int], active: np.ndarray, amplitude: np.ndarray,
                     geo: Geometry, size: int, settings: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """Float images ``[N, P, H, W]`` of one modality for every patient."""
    yy, xx = _grid(size)
    n = len(geo.cx)
    lesion = _lesion_mask(yy, xx, geo)
    contrast = (_LESION[modality] * rng.uniform(0.7, 1.3, n)).astype(np.float32)
    # a smooth random background shared by the phases of one patient
    by, bx = rng.uniform(-1, 1, (n, 3)), rng.uniform(-1, 1, (n, 3))
    background = sum(rng.uniform(-0.06, 0.06, n)[:, None, None].astype(np.float32)
                     * _gauss(yy, xx, by[:, j], bx[:, j], np.full(n, 0.5)) for j in range(3))
    patterns: dict[int, np.ndarray] = {}  # one pattern per concept, shared by the phases that show it
    images = np.empty((n, len(PHASES[modality]), size, size), dtype=np.float32)
    strength = settings["concept_strength"]
    for phase in range(len(PHASES[modality])):
        img = _BACKGROUND[modality][phase] + background + contrast[:, None, None] * lesion
        for k in concepts:
            spec = DEMO_CONCEPTS[k]
            if spec.primitive is None or phase not in spec.phases:
                continue
            on = active[:, k] * amplitude[:, k] * strength
            if not on.any():
                continue
            if k not in patterns:
                patterns[k] = draw_primitive(spec.primitive, yy, xx, geo, rng, {}).astype(np.float32)
            img = img + on[:, None, None] * patterns[k]
        images[:, phase] = img + settings["noise"] * rng.standard_normal(img.shape).astype(np.float32)
    return images


def generate_cohort(settings: dict[str, Any], seed: int) -> Cohort:
    """Generate the demo cohort.

    Parameters
    ----------
    settings
        ``papers.mmcbm.generator`` (``config/schemas/mmcbm.yaml``): ``n_patients``,
        ``image_size``, ``noise``, ``concept_strength``, ``report_fraction``, ``omission``.
    seed
        Seed of everything drawn.

    Returns
    -------
    Cohort
        With ``true_concepts``, ``p_concept`` and ``visible`` filled; every patient in the
        cross-validation split.
    """
    rng = np.random.default_rng(seed)
    n, size = int(settings["n_patients"]), int(settings["image_size"])
    labels = _sample_classes(rng, n)
    p_concept = np.array([c.p for c in DEMO_CONCEPTS], dtype=float).T  # [classes, K]
    active = rng.random((n, len(DEMO_CONCEPTS))) < p_concept[labels]
    amplitude = rng.uniform(0.6, 1.0, active.shape).astype(np.float32)
    available = sample_modalities(rng, n)
    geo = Geometry(cx=rng.uniform(-0.15, 0.15, n).astype(np.float32), cy=rng.uniform(-0.15, 0.15, n).astype(np.float32),
                   radius=rng.uniform(0.30, 0.42, n).astype(np.float32))
    modality_of = np.array([MODALITIES.index(c.modality) for c in DEMO_CONCEPTS])
    images, masks = {}, {}
    for mi, m in enumerate(MODALITIES):
        concepts = [k for k in range(len(DEMO_CONCEPTS)) if modality_of[k] == mi]
        imgs = _render_modality(m, concepts, active.astype(np.float32), amplitude, geo, size, settings, rng)
        imgs[~available[:, mi]] = 0.0
        images[m] = (np.clip(imgs, 0.0, 1.0) * 255).round().astype(np.uint8)[:, :, None]
        masks[m] = np.repeat(available[:, mi : mi + 1], len(PHASES[m]), axis=1)
    has_report = rng.random(n) < settings["report_fraction"]
    kept = rng.random(active.shape) >= settings["omission"]
    reports = active & available[:, modality_of] & kept & has_report[:, None]
    phases = np.zeros((len(DEMO_CONCEPTS), MAX_PHASES), dtype=bool)
    for k, c in enumerate(DEMO_CONCEPTS):
        phases[k, list(c.phases)] = True
    return Cohort(
        patients=np.array([f"demo{i:05d}" for i in range(n)]),
        labels=labels,
        split=np.full(n, "cv"),
        images=images,
        image_mask=masks,
        concept_names=np.array([c.name for c in DEMO_CONCEPTS]),
        concept_names_zh=np.array(["" for _ in DEMO_CONCEPTS]),
        concept_modality=modality_of.astype(np.int64),
        concept_phases=phases,
        reports=reports,
        has_report=has_report,
        source="generated",
        true_concepts=active,
        p_concept=p_concept,
        visible=np.array([c.primitive is not None for c in DEMO_CONCEPTS]),
    )
