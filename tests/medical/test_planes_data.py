"""planes data: demo synthesis from MNI152, demo storage, DSB2 DICOM and ACDC NIfTI readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reprolab.core.errors import DataError
from reprolab.medical.planes_data import (
    LAX_VIEWS,
    DeformedSubject,
    assign_roles,
    bias_field,
    load_demo,
    read_acdc,
    read_dsb2,
    save_demo,
    subject_deformation,
    synthesise_demo,
)

DEMO_SPEC = {
    "resolution_mm": 2, "subjects": {"pretrain": 2, "pretrain_val": 1, "pretrain_test": 1, "train": 1, "val": 1,
                                     "test": 1},
    "slices": 4, "coverage_mm": [-30, 40], "acquisition": {"rows": 24, "cols": 20, "pixel_spacing": [6.0, 7.0]},
    "axis_tilt_deg": 20, "inplane_deg": 180, "lax_angle_deg": 60, "lax_jitter_deg": 0, "shift_mm": 5,
    "centre_jitter_mm": 2, "scale": 0.1, "deformation": {"magnitude_mm": 8.0, "smoothness_mm": 20.0, "steps": 7},
    "intensity": {"gamma": 1.5, "bias": 0.3}, "noise": 0.01, "seed": 3,
}


@pytest.fixture(scope="module")
def demo_studies():
    from reprolab.medical.anatomy import mni152, tissue_labels

    anatomy = mni152(2)
    return synthesise_demo(anatomy, tissue_labels(anatomy), DEMO_SPEC)


def test_demo_subjects_have_parallel_sax_stacks_and_long_axis_planes_through_their_axis(demo_studies):
    assert [s.role for s in demo_studies] == ["pretrain", "pretrain", "pretrain_val", "pretrain_test", "train", "val",
                                              "test"]
    for study in demo_studies:
        normals = np.stack([im.plane.normal for im in study.sax])
        assert np.allclose(normals, normals[0], atol=1e-12)  # shared IOP
        assert np.allclose([im.plane.iop for im in study.sax], study.sax[0].plane.iop)
        gaps = np.diff([im.plane.normal @ im.plane.origin for im in study.sax])
        assert np.allclose(gaps, 70 / 3)  # coverage_mm / (slices - 1)
        centres = np.stack([im.plane.centre for im in study.sax])  # on the long axis, shifted in-plane alike
        for view in LAX_VIEWS:
            lax = study.lax[view].plane
            assert abs(lax.normal @ normals[0]) < 1e-9  # the long axis lies in the long-axis plane
            distance = lax.signed_distance(centres)
            assert np.allclose(distance, distance[0]) and abs(distance[0]) <= 5 * np.sqrt(2) + 1e-9  # the FOV shift
        angle = np.degrees(np.arccos(abs(study.lax["2ch"].plane.normal @ study.lax["4ch"].plane.normal)))
        assert angle == pytest.approx(60.0)
        im = study.sax[len(study.sax) // 2]
        assert im.pixels.shape == (1, 24, 20) and im.label.shape == (24, 20)
        assert set(np.unique(im.label)) <= {0, 1, 2, 3} and (im.label > 0).mean() > 0.2  # the brain is in view


@pytest.fixture(scope="module")
def template():
    from reprolab.medical.anatomy import mni152, tissue_labels

    anatomy = mni152(2)
    return anatomy, tissue_labels(anatomy)


def axial_plane(anatomy, z_mm: float = 10.0):
    """An axial plane through the brain centre, 2 mm pixels, 80 x 96."""
    from reprolab.medical.geometry import Plane
    from reprolab.medical.planes_data import brain_centre

    c = brain_centre(anatomy)
    origin = np.array([c[0] - 79.0, c[1] - 95.0, z_mm])
    return Plane.from_dicom(origin, [1, 0, 0, 0, 1, 0], (2.0, 2.0), 96, 80)


def subject(template, seed: int | None, gamma: float = 1.0, bias: float = 0.0) -> DeformedSubject:
    anatomy, labels = template
    field = None if seed is None else subject_deformation(anatomy, 8.0, 20.0, 7, seed)
    coeffs = np.full(9, bias)
    return DeformedSubject(anatomy, labels, anatomy.affine, field, gamma, (np.zeros(3), coeffs), 0.0)


def test_undeformed_subject_is_the_template_on_the_plane(template):
    from reprolab.medical.geometry import sample_volume

    anatomy, labels = template
    plane = axial_plane(anatomy)
    image, label = subject(template, None).sample(plane, np.random.default_rng(0))
    assert np.allclose(image[0], sample_volume(anatomy.t1, anatomy.affine, plane), atol=1e-6)
    assert np.array_equal(label, sample_volume(labels, anatomy.affine, plane, order=0))


def test_deformation_is_smooth_invertible_and_of_the_configured_size(template):
    import torch

    from reprolab.medical.registration import jacobian_determinant

    anatomy, _ = template
    field = subject_deformation(anatomy, 8.0, 20.0, 7, seed=5)
    size = np.linalg.norm(field.ddf, axis=0)
    assert 4.0 < size.max() < 12.0  # about magnitude_mm
    det = jacobian_determinant(torch.as_tensor(field.ddf / field.spacing_mm)[None])
    assert float(det.min()) > 0  # no folding: a diffeomorphism
    assert subject_deformation(anatomy, 0.0, 20.0, 7, seed=5) is None
    again = subject_deformation(anatomy, 8.0, 20.0, 7, seed=5)
    assert np.array_equal(again.ddf, field.ddf)  # seeded
    with pytest.raises(ValueError, match="smoothness_mm"):
        subject_deformation(anatomy, 8.0, 0.0, 7, seed=5)


def test_subjects_differ_from_each_other_and_from_the_template(template):
    anatomy, _ = template
    plane = axial_plane(anatomy)
    rng = np.random.default_rng(0)
    _, base = subject(template, None).sample(plane, rng)
    labels = [subject(template, seed).sample(plane, rng)[1] for seed in (1, 2, 3)]
    brain = base > 0
    for k, lab in enumerate(labels):
        changed = (lab != base)[brain].mean()
        assert changed > 0.08, f"subject {k}: only {changed:.3f} of the brain pixels changed label"
        for other in labels[k + 1:]:
            assert (lab != other)[brain | (other > 0)].mean() > 0.08
        assert (lab > 0).mean() == pytest.approx(brain.mean(), rel=0.15)  # the same anatomy, moved, not destroyed
    # contrast and bias change the intensities of the same anatomy
    flat, _ = subject(template, None).sample(plane, rng)
    curved, _ = subject(template, None, gamma=1.5, bias=0.3).sample(plane, rng)
    assert np.abs(curved - flat)[0][brain].mean() > 0.05


def test_labels_stay_aligned_with_their_image(template):
    anatomy, _ = template
    plane = axial_plane(anatomy)
    rng = np.random.default_rng(0)
    _, template_label = subject(template, None).sample(plane, rng)
    image, label = subject(template, 4).sample(plane, rng)
    image = image[0]

    def agreement(lab: np.ndarray) -> float:
        """Share of grey- and white-matter pixels whose intensity is on their class's side of the two means."""
        gm, wm = image[lab == 1], image[lab == 2]
        cut = (np.median(gm) + np.median(wm)) / 2
        return float(((gm < cut).sum() + (wm > cut).sum()) / (len(gm) + len(wm)))

    own, template_only = agreement(label), agreement(template_label)
    assert own > 0.85
    assert own > template_only + 0.05  # the template's labels no longer fit the deformed image


def test_bias_field_is_one_at_the_centre_and_smooth():
    points = np.array([[0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    coeffs = np.zeros(9)
    coeffs[0] = 0.3
    values = bias_field(points, np.zeros(3), coeffs)
    assert values[0] == pytest.approx(1.0) and values[1] == pytest.approx(np.exp(0.3))
    assert abs(values[2] - 1.0) < 0.01


def test_demo_storage_round_trip_keeps_pixels_labels_and_geometry(demo_studies, tmp_path: Path):
    path = tmp_path / "demo.npz"
    save_demo(demo_studies, path)
    loaded = load_demo(path)
    assert [s.subject for s in loaded] == [s.subject for s in demo_studies]
    for a, b in zip(demo_studies, loaded, strict=True):
        for x, y in zip(a.sax + [a.lax[v] for v in LAX_VIEWS], b.sax + [b.lax[v] for v in LAX_VIEWS], strict=True):
            assert np.array_equal(x.pixels, y.pixels)
            assert np.allclose(x.plane.ipp, y.plane.ipp) and np.allclose(x.plane.iop, y.plane.iop)
            assert x.plane.pixel_spacing == y.plane.pixel_spacing == (6.0, 7.0)
        assert all(np.array_equal(x.label, y.label) for x, y in zip(a.sax, b.sax, strict=True))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="demo.npz"):
        load_demo(path)


def test_assign_roles_is_seeded_and_follows_the_shares():
    subjects = [f"p{i:03d}" for i in range(50)]
    roles = assign_roles(subjects, {"pretrain": 0.8, "pretrain_val": 0.1, "pretrain_test": 0.1}, seed=4)
    counts = {r: sum(v == r for v in roles.values()) for r in ("pretrain", "pretrain_val", "pretrain_test")}
    assert counts == {"pretrain": 40, "pretrain_val": 5, "pretrain_test": 5}
    assert roles == assign_roles(list(reversed(subjects)), {"pretrain": 0.8, "pretrain_val": 0.1,
                                                            "pretrain_test": 0.1}, seed=4)
    assert roles != assign_roles(subjects, {"pretrain": 0.8, "pretrain_val": 0.1, "pretrain_test": 0.1}, seed=5)


# --------------------------------------------------------------------------- synthetic DICOM (DSB2 layout)


def write_dicom(path: Path, pixels: np.ndarray, ipp, iop, spacing, instance: int, slope: float = 1.0) -> None:
    """One MR image with the geometry attributes the reader uses (pydicom, explicit VR little endian)."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.InstanceNumber = "MR", instance
    ds.ImagePositionPatient = [float(v) for v in ipp]
    ds.ImageOrientationPatient = [float(v) for v in iop]
    ds.PixelSpacing = [float(v) for v in spacing]
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, 0.0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


#: Axial SAX stack (normal +z) with non-square pixels: rows 1.5 mm apart (along Y), columns 1.0 mm (along X).
SAX_IOP, SAX_SPACING, SAX_SHAPE = [1, 0, 0, 0, 1, 0], [1.5, 1.0], (20, 30)
SAGITTAL_X, CORONAL_Y = 12.0, 9.0


def write_dsb2_patient(root: Path, pid: str, z_positions=(0.0, 8.0, 16.0), frames: int = 3) -> None:
    """A DSB2-like patient: SAX series at z_positions (cine), a sagittal 2CH and a coronal 4CH series."""
    rng = np.random.default_rng(int(pid))
    study = root / pid / "study"
    for k, z in enumerate(z_positions):
        for f in range(frames):
            write_dicom(study / f"sax_{10 + k}" / f"IM-{k:04d}-{f + 1:04d}.dcm",
                        rng.integers(0, 1000, SAX_SHAPE), [-5.0, -7.0, z], SAX_IOP, SAX_SPACING, f + 1, slope=2.0)
    write_dicom(study / "2ch_20" / "IM-0001.dcm", rng.integers(0, 1000, (16, 16)), [SAGITTAL_X, -40, 40],
                [0, 1, 0, 0, 0, -1], [2.0, 2.0], 1)
    write_dicom(study / "4ch_21" / "IM-0001.dcm", rng.integers(0, 1000, (16, 16)), [-40, CORONAL_Y, 40],
                [1, 0, 0, 0, 0, -1], [2.0, 2.0], 1)


def test_dsb2_reader_takes_geometry_and_cine_frames_from_the_dicom_files(tmp_path: Path):
    for pid in ("1", "2", "3"):
        write_dsb2_patient(tmp_path / "train", pid)
    (tmp_path / "train" / "4" / "study" / "sax_5").mkdir(parents=True)  # no 2CH / 4CH: skipped
    write_dicom(tmp_path / "train/4/study/sax_5/IM-1.dcm", np.zeros((4, 4)), [0, 0, 0], SAX_IOP, [1, 1], 1)
    studies = read_dsb2(tmp_path, {"pretrain": 0.34, "pretrain_val": 0.33, "pretrain_test": 0.33}, seed=0,
                        max_frames=2)
    assert sorted(s.subject for s in studies) == ["train_1", "train_2", "train_3"]
    assert sorted(s.role for s in studies) == ["pretrain", "pretrain_test", "pretrain_val"]
    study = studies[0]
    assert len(study.sax) == 3 and set(study.lax) == set(LAX_VIEWS)
    plane = study.sax[1].plane
    assert (plane.rows, plane.cols) == SAX_SHAPE and plane.pixel_spacing == (1.5, 1.0)
    assert plane.dx == 1.0 and plane.dy == 1.5 and np.allclose(plane.ipp, [-5, -7, 8])
    assert study.sax[1].pixels.shape == (2, *SAX_SHAPE)  # 2 of 3 frames kept
    assert study.sax[1].pixels.max() > 1000  # RescaleSlope 2 applied, no uint8 cast


def test_dsb2_reader_stops_on_an_empty_folder_and_a_broken_file(tmp_path: Path):
    with pytest.raises(DataError, match="no DSB2 study folders"):
        read_dsb2(tmp_path, {"pretrain": 1.0}, 0, 1)
    write_dsb2_patient(tmp_path, "1", frames=1)
    broken = tmp_path / "1/study/sax_10/IM-0000-0001.dcm"
    broken.write_bytes(b"not a dicom file")
    with pytest.raises(DataError, match="IM-0000-0001.dcm"):
        read_dsb2(tmp_path, {"pretrain": 1.0}, 0, 1)


# --------------------------------------------------------------------------- synthetic ACDC


def write_acdc_patient(root: Path, pid: int, part: str) -> None:
    import nibabel as nib

    folder = root / part / f"patient{pid:03d}"
    folder.mkdir(parents=True)
    (folder / "Info.cfg").write_text("ED: 1\nES: 3\nGroup: NOR\nNbFrame: 4\n")
    affine = np.diag([1.5, 1.5, 10.0, 1.0])
    rng = np.random.default_rng(pid)
    for frame in (1, 3):
        image = rng.normal(size=(16, 12, 4)).astype(np.float32)
        label = np.zeros((16, 12, 4), dtype=np.uint8)
        label[4:10, 3:8] = 3
        label[2:4, 3:8] = 1
        nib.save(nib.Nifti1Image(image, affine), folder / f"patient{pid:03d}_frame{frame:02d}.nii.gz")
        nib.save(nib.Nifti1Image(label, affine), folder / f"patient{pid:03d}_frame{frame:02d}_gt.nii.gz")


def test_acdc_reader_gives_labelled_ed_and_es_volumes_with_training_and_testing_roles(tmp_path: Path):
    for pid in range(1, 6):
        write_acdc_patient(tmp_path / "database", pid, "training")
    write_acdc_patient(tmp_path / "database", 101, "testing")
    studies = read_acdc(tmp_path, {"train": 0.8, "val": 0.2}, seed=0)
    assert len(studies) == 12 and {s.phase for s in studies} == {"ED", "ES"}
    roles = {s.subject: s.role for s in studies}
    assert roles["patient101"] == "test" and list(roles.values()).count("val") == 1
    study = studies[0]
    assert len(study.sax) == 4 and study.sax[0].plane.pixel_spacing == (1.5, 1.5)
    assert study.sax[2].plane.origin[2] == pytest.approx(20.0)
    assert study.sax[0].label[5, 4] == 3
    (tmp_path / "database/training/patient002/patient002_frame03_gt.nii.gz").unlink()
    with pytest.raises(DataError, match="patient002_frame03_gt"):
        read_acdc(tmp_path, {"train": 0.8, "val": 0.2}, seed=0)


def test_pretext_pipeline_on_a_synthetic_dicom_series(tmp_path: Path):
    """DICOM -> studies -> preprocessed images and exact targets -> a short pretraining run (the paper-scale path)."""
    from reprolab.core.io import read_json
    from reprolab.medical.planes import PretextData, build_pretext_data, load_npz, run_pretraining

    for pid in ("1", "2", "3", "4"):
        write_dsb2_patient(tmp_path / "dsb2" / "train", pid)
    studies = read_dsb2(tmp_path / "dsb2", {"pretrain": 0.5, "pretrain_val": 0.25, "pretrain_test": 0.25}, seed=0,
                        max_frames=3)
    build_pretext_data(studies, spacing_mm=2.0, size=16, out_path=tmp_path / "pretext.npz")
    arrays = load_npz(tmp_path / "pretext.npz")
    assert arrays["image"].shape == (12, 3, 16, 16) and set(arrays["roles"]) == {"pretrain", "pretrain_val",
                                                                                 "pretrain_test"}
    # SAX image centre (9.5, 7.25): 14.5 columns of 1.0 mm and 9.5 rows of 1.5 mm from the IPP (-5, -7);
    # the 16 x 16 grid of 2 mm pixels starts 15 mm before it, at (-5.5, -7.75).
    a2, b2, c2 = arrays["line"][0, 0]  # 2CH: the sagittal plane x = 12 -> the column u = 8.75
    assert abs(a2) == pytest.approx(1.0) and b2 == pytest.approx(0.0, abs=1e-9) and -c2 / a2 == pytest.approx(8.75)
    a4, b4, c4 = arrays["line"][0, 1]  # 4CH: the coronal plane y = 9 -> the row v = 8.375
    assert a4 == pytest.approx(0.0, abs=1e-9) and -c4 / b4 == pytest.approx(8.375)
    for s in range(4):  # z = 0, 8, 16 -> loc = -z -> 1, 0.5, 0
        assert np.allclose(arrays["slice"][arrays["subject"] == s], [1.0, 0.5, 0.0])
    assert np.allclose(arrays["image"].astype(np.float32).mean(axis=(-2, -1)), 0, atol=1e-2)

    cfg = {"pretrain_seed": 1, "heatmap_sigma_px": 1.0, "loss": {"alpha": 1.0, "beta": 1.0},
           "model": {"features": [4, 4, 4, 8, 8, 4], "head_hidden": 4, "head_dropout": 0.0},
           "pretrain": {"epochs": 2, "batch_size": 2, "lr": 0.001, "lr_step": 10, "lr_gamma": 0.3, "l1": 0.0,
                        "examples": 2}}
    out = {k: str(tmp_path / f"{k}.{e}") for k, e in (("model", "pt"), ("history", "json"), ("eval", "json"),
                                                       ("examples", "npz"))}
    run_pretraining("multitask", cfg, str(tmp_path / "pretext.npz"), "cpu", 1, str(tmp_path / "ckpt"), out)
    assert len(read_json(out["history"])["epochs"]) == 2
    assert read_json(out["eval"])["n_images"] == len(PretextData(arrays, "pretrain_test").slice) == 3
