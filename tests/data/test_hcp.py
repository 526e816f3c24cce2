"""HCP readers: committed demo files, S3 access without credentials, behaviour CSV, parcellation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reprolab.core.errors import ChecksumError, ConfigError, DataError, MissingDataError
from reprolab.data import hcp

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "resources" / "demo" / "hcp-rest"
LABELS = DEMO / "aal2_94_labels.tsv"
DMN = ["^(Frontal_Sup_Medial|Frontal_Med_Orb|Cingulate_Ant|Cingulate_Post|Angular|Precuneus)_[LR]$"]


def demo_mat(subject: str = "101309") -> Path:
    return DEMO / "subjects" / subject / "functional" / "TC_rsfMRI_REST1_LR.mat"


def test_demo_files_read_with_their_labels():
    labels = hcp.read_region_labels(LABELS)
    assert len(labels) == 94 and labels[0] == "Precentral_L" and labels[-1] == "Temporal_Inf_R"
    ts = hcp.read_mat_timeseries(demo_mat())
    assert ts.shape == (94, 1200) and ts.mean() > 1000  # raw intensities, z-scored later


def test_dmn_patterns_select_the_twelve_listed_regions():
    labels = hcp.read_region_labels(LABELS)
    nodes = hcp.select_regions(labels, DMN)
    assert [labels[i] for i in nodes] == [
        "Frontal_Sup_Medial_L", "Frontal_Sup_Medial_R", "Frontal_Med_Orb_L", "Frontal_Med_Orb_R",
        "Cingulate_Ant_L", "Cingulate_Ant_R", "Cingulate_Post_L", "Cingulate_Post_R", "Angular_L", "Angular_R",
        "Precuneus_L", "Precuneus_R"]
    with pytest.raises(ConfigError, match="control_regions"):
        hcp.select_regions(labels, ["^Nowhere$"])


def test_build_demo_timeseries_z_scores_and_checks_checksums(tmp_path):
    from reprolab.data.registry import load_registry

    ds = load_registry(REPO / "config" / "datasets.yaml")["hcp_rest_demo"]
    spec = ds.file("102311_TC_rsfMRI_REST1_LR.mat")
    settings = {"control_regions": DMN, "tr": 0.72, "n_frames": 300}
    out = tmp_path / "ts.npz"
    hcp.build_demo_timeseries({"102311": REPO / spec.path}, LABELS, settings, out,
                              [{"path": str(REPO / spec.path), "md5": spec.md5, "size": spec.size}])
    data = hcp.read_timeseries(out)
    assert data["ts"].shape == (1, 94, 300) and data["subjects"] == ["102311"]
    np.testing.assert_allclose(data["ts"].mean(-1), 0, atol=1e-10)
    np.testing.assert_allclose(data["ts"].std(-1, ddof=1), 1, rtol=1e-10)
    assert len(data["control_nodes"]) == 12
    with pytest.raises(ChecksumError):
        hcp.build_demo_timeseries({"102311": REPO / spec.path}, LABELS, settings, tmp_path / "x.npz",
                                  [{"path": str(REPO / spec.path), "md5": "0" * 32, "size": spec.size}])
    assert not (tmp_path / "x.npz").exists()


def test_truncated_or_wrong_files_are_named(tmp_path):
    bad = tmp_path / "TC.mat"
    bad.write_bytes(demo_mat().read_bytes()[:5000])
    with pytest.raises(DataError, match="TC.mat"):
        hcp.read_mat_timeseries(bad)
    with pytest.raises(DataError, match="no variable 'sc'"):
        hcp.read_mat_timeseries(demo_mat(), key="sc")
    tsv = tmp_path / "labels.tsv"
    tsv.write_text("index\tname\n1\tA\n")
    with pytest.raises(DataError, match="index"):
        hcp.read_region_labels(tsv)


def test_s3_without_credentials_stops_with_the_steps(monkeypatch, tmp_path):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(MissingDataError, match="db.humanconnectome.org") as err:
        hcp.s3_client()
    assert "AWS_ACCESS_KEY_ID" in str(err.value)
    with pytest.raises(MissingDataError, match="profile 'hcp' not found"):
        hcp.s3_client("hcp")


class StubS3:
    """The two S3 calls the downloader makes, served from memory."""

    def __init__(self, body: bytes, size: int | None = None, error: Exception | None = None):
        self.body, self.size, self.error, self.keys = body, size, error, []

    def head_object(self, Bucket, Key):
        self.keys.append((Bucket, Key))
        if self.error:
            raise self.error
        return {"ContentLength": self.size if self.size is not None else len(self.body)}

    def download_file(self, bucket, key, filename):
        Path(filename).write_bytes(self.body)


class ClientError(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.response = {"Error": {"Code": code}}


def test_download_hcp_file_fetches_the_key_atomically(tmp_path):
    client = StubS3(b"nifti-bytes")
    dest = tmp_path / "s" / "run.nii.gz"
    hcp.download_hcp_file("100206", "rfMRI_REST1_LR_hp2000_clean.nii.gz", dest, client=client)
    assert dest.read_bytes() == b"nifti-bytes"
    key = "HCP_1200/100206/MNINonLinear/Results/rfMRI_REST1_LR/rfMRI_REST1_LR_hp2000_clean.nii.gz"
    assert client.keys == [("hcp-openaccess", key)]
    with pytest.raises(DataError, match="expected 99"):
        hcp.download_hcp_file("100206", "x.nii.gz", tmp_path / "y.nii.gz", client=StubS3(b"abc", size=99))
    assert not (tmp_path / "y.nii.gz").exists() and not list(tmp_path.glob(".y.nii.gz*"))
    with pytest.raises(MissingDataError, match="access denied"):
        hcp.download_hcp_file("100206", "x.nii.gz", tmp_path / "z", client=StubS3(b"", error=ClientError("403")))
    with pytest.raises(DataError, match="not available"):
        hcp.download_hcp_file("100206", "x.nii.gz", tmp_path / "z", client=StubS3(b"", error=ClientError("404")))
    with pytest.raises(ConfigError, match="six digits"):
        hcp.hcp_s3_key("12ab", "x")


def write_csv(path: Path) -> None:
    path.write_text("Subject,Age,PicSeq_Unadj,ListSort_Unadj,FD\n"
                    "100206,26-30,101.2,99.0,0.1\n"
                    "100307,26-30,,105.5,0.2\n"
                    "100408,31-35,90.0,88.5,0.3\n")


def test_behaviour_csv_reading(tmp_path):
    csv_path = tmp_path / "behavioral.csv"
    with pytest.raises(MissingDataError, match="Behavioral Data"):
        hcp.read_behaviour_csv(csv_path, ["PicSeq_Unadj"])
    write_csv(csv_path)
    ids, scores = hcp.read_behaviour_csv(csv_path, ["PicSeq_Unadj", "ListSort_Unadj"])
    assert ids == ["100206", "100408"]  # 100307 lacks PicSeq
    np.testing.assert_allclose(scores, [[101.2, 99.0], [90.0, 88.5]])
    with pytest.raises(DataError, match="missing column"):
        hcp.read_behaviour_csv(csv_path, ["Flanker_Unadj"])
    with pytest.raises(DataError, match="100307 has no numeric value"):
        hcp.read_behaviour_csv(csv_path, ["PicSeq_Unadj"], subjects=["100206", "100307"])
    settings = {"behaviour": {"csv": str(csv_path), "columns": ["PicSeq_Unadj"], "subject_column": "Subject",
                              "confounds": ["FD"]}}
    assert hcp.paper_subjects(settings) == ["100206", "100408"]
    ids, y, conf = hcp.load_behaviour(settings, ["100408", "100206"])
    assert ids == ["100408", "100206"] and conf.tolist() == [[0.3], [0.1]] and y.tolist() == [[90.0], [101.2]]
    assert hcp.paper_subjects({"subjects": ["123456"]}) == ["123456"]
    (tmp_path / "subjects.txt").write_text("100206\n\n100408\n")
    assert hcp.paper_subjects({"subjects_file": str(tmp_path / "subjects.txt")}) == ["100206", "100408"]


def test_parcellate_run_averages_each_labelled_region(tmp_path):
    import nibabel as nib

    rng = np.random.default_rng(0)
    labels = np.zeros((4, 4, 4), dtype=np.int16)
    labels[:2] = 1
    labels[2:, :2] = 2
    bold = rng.standard_normal((4, 4, 4, 6)) + 100
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    nib.save(nib.Nifti1Image(labels, affine), tmp_path / "atlas.nii.gz")
    nib.save(nib.Nifti1Image(bold, affine), tmp_path / "bold.nii.gz")
    (tmp_path / "names.txt").write_text("RegionA\nRegionB\n")
    atlas = {"name": "file", "image": str(tmp_path / "atlas.nii.gz"), "labels": str(tmp_path / "names.txt")}
    hcp.parcellate_run(tmp_path / "bold.nii.gz", atlas, tmp_path / "out.npy")
    ts = np.load(tmp_path / "out.npy")
    assert ts.shape == (2, 6)
    np.testing.assert_allclose(ts[0], bold[:2].reshape(-1, 6).mean(0), rtol=1e-5)
    np.testing.assert_allclose(ts[1], bold[2:, :2].reshape(-1, 6).mean(0), rtol=1e-5)
    with pytest.raises(ConfigError, match="does not exist"):
        hcp.resolve_atlas({"name": "file", "image": str(tmp_path / "nope.nii.gz"), "labels": "x"})
