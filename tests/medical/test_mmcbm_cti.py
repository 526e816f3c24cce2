"""The CTI reader on a small fake archive in the official layout (no CTI file is used or committed)."""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from reprolab.core.errors import DataError
from reprolab.medical.mmcbm_cti import build_cti_cohort, read_kfold_rows
from reprolab.medical.mmcbm_folds import HELDOUT, check_grouped, make_folds

# (name, pathology, modalities, split); names and contents are invented, the layout is the official one
PATIENTS = [
    ("000000", "Choroidal Hemangioma", ("FA", "ICGA"), "train"),
    ("000001", "Choroidal Melanoma", ("FA", "US", "ICGA"), "train"),
    ("000002", "Choroidal Melanoma", ("US",), "train"),
    ("000003", "Choroidal Metastatic Carcinoma", ("FA", "US"), "train"),
    ("000004", "Choroidal Melanoma", ("FA", "US", "ICGA"), "test"),
]
STAGES = ("early", "middle", "later")


def _paths(name: str, mods: tuple[str, ...], split: str) -> tuple[dict, dict]:
    paths, stages = {}, {}
    for m in mods:
        if m == "US":
            paths[m], stages[m] = [f"data/{split}/{name}/US/image.jpg"], ["None"]
        else:
            paths[m] = [f"data/{split}/{name}/{m}/OD_{s}_55.jpg" for s in STAGES]
            stages[m] = list(STAGES)
    return paths, stages


@pytest.fixture
def cti(tmp_path):
    rows = []
    archive = tmp_path / "cti_figshare_51845132"
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(archive, "w") as zf:
        for name, pathology, mods, split in PATIENTS:
            paths, stages = _paths(name, mods, split)
            rows.append({"name": name, "pathology": pathology, "modality": "&".join(mods), "path": str(paths),
                         "stage": str(stages), "pos": "{}", "angle": "{}"})
            for files in paths.values():
                for rel in files:
                    img = tmp_path / "img.jpg"
                    Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(img)
                    zf.write(img, f"CTI/{rel}")
    data = pd.DataFrame(rows)
    files = {"archive": str(archive), "unpack_dir": str(tmp_path / "unpacked")}
    for split, key in (("train", "train"), ("test", "test")):
        names = [p[0] for p in PATIENTS if p[3] == split]
        data[data["name"].isin(names)].to_csv(tmp_path / f"{key}.csv", index=False)
        files[key] = str(tmp_path / f"{key}.csv")
    data.to_csv(tmp_path / "DATA_Cleaned.csv", index=False)
    files["data_cleaned"] = str(tmp_path / "DATA_Cleaned.csv")
    concepts = [  # pathology, name (int, as in the official file), modality, time, concept (zh / en)
        ("Choroidal Hemangioma", 0, "FA", "晚期", "荧光渗漏", "Late-Stage Leakage"),
        ("Choroidal Hemangioma", 0, "FA", "静脉期", "团状强荧光", "Clustered Hyperfluorescence"),
        ("Choroidal Melanoma", 1, "US", "", "蘑菇状", "Mushroom Shape"),
        ("Choroidal Melanoma", 1, "FA", "中期", "弱荧光", "Weak Fluorescence"),
        ("Choroidal Melanoma", 4, "US", "", "蘑菇状", "Mushroom-Shaped"),
    ]
    zh = pd.DataFrame([(p, n, m, t or "无", z) for p, n, m, t, z, _ in concepts],
                      columns=["pathology", "name", "modality", "time", "concept"])
    en = pd.DataFrame([(p, n, m, t, e) for p, n, m, t, _, e in concepts],
                      columns=["pathology", "name", "modality", "time", "concept"])
    zh.to_csv(tmp_path / "zh.csv", index=False)
    en.to_csv(tmp_path / "en.csv", index=False)
    files.update(concepts_zh=str(tmp_path / "zh.csv"), concepts_en=str(tmp_path / "en.csv"))
    kfold = pd.DataFrame([("000000", "FA", 0), ("000000", "ICGA", 1), ("000001", "MM", 1), ("000001", "US", 0),
                          ("000002", "US", 0), ("000003", "FA", 1)], columns=["name", "modality", "k"])
    kfold.to_csv(tmp_path / "k_fold.csv", index=False)
    files["kfold"] = str(tmp_path / "k_fold.csv")
    return files


def test_cti_cohort_reads_images_labels_splits_and_reports(cti):
    files = {k: v for k, v in cti.items() if k != "kfold"}
    cohort = build_cti_cohort(files, {"image_size": 48})
    assert cohort.patients.tolist() == [p[0] for p in PATIENTS]
    assert cohort.labels.tolist() == [1, 0, 0, 2, 0]
    assert cohort.split.tolist() == ["cv", "cv", "cv", "cv", "test"]
    assert cohort.images["FA"].shape == (5, 3, 1, 48, 48) and cohort.images["US"].shape == (5, 1, 3, 48, 48)
    assert cohort.available.tolist() == [[True, True, False], [True, True, True], [False, False, True],
                                         [True, False, True], [True, True, True]]
    assert cohort.image_mask["FA"][0].all() and cohort.images["FA"][0].std() > 0
    names = cohort.concept_names.tolist()
    # the middle-phase row is skipped (official code); one Chinese concept keeps one identity across translations
    assert len(names) == 3 and cohort.has_report.tolist() == [True, True, False, False, True]
    late = names.index("FA, late phase, Late-Stage Leakage")
    venous = names.index("FA, venous phase, Clustered Hyperfluorescence")
    assert cohort.concept_phases[late].tolist() == [False, False, True]
    assert cohort.concept_phases[venous].tolist() == [True, True, False]
    us = int(np.flatnonzero(cohort.concept_modality == 2)[0])
    assert cohort.concept_names_zh[us] == "蘑菇状" and cohort.reports[[1, 4], us].all()


def test_official_folds_from_k_fold_csv(cti):
    cohort = build_cti_cohort({k: v for k, v in cti.items() if k != "kfold"}, {"image_size": 48})
    folds, summary = make_folds(cohort, {"fold_source": "official", "n_folds": 2, "fold_seed": 0},
                                read_kfold_rows(cti["kfold"]))
    assert folds.tolist() == [0, 1, 0, 1, HELDOUT]
    assert summary["official_rows_in_conflict"] == 2
    check_grouped(cohort.patients, folds)


def test_archive_without_the_official_layout_is_a_clear_error(cti, tmp_path):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("readme.txt", "nothing here")
    files = {**{k: v for k, v in cti.items() if k != "kfold"}, "archive": str(bad),
             "unpack_dir": str(tmp_path / "bad_unpacked")}
    with pytest.raises(DataError, match="layout"):
        build_cti_cohort(files, {"image_size": 48})
