"""The CTI dataset (Choroid Tri-modal Imaging, Beijing Tongren Hospital) as a :class:`Cohort`.

Paper scale of ``mmcbm``. The images come from figshare (article 28255265, version 2) and
the split and concept files from the official repository (brain-intelligence-lab/MMCBM,
commit 22776b4, ``CSV/``), both through the data registry (``config/datasets.yaml``). CTI is
for academic research only; its copyright belongs to Beijing Tongren Hospital, and without
prior approval it may not be distributed, published, copied, disseminated or modified. The
workflow downloads it on the user's machine; nothing derived from it is committed.

Semantics kept from the official code (``utils/data_split.py``, ``concepts_bank.py``):

- ``DATA_Cleaned.csv``: one row per patient with a dict of image paths per modality and the
  phase (``early``, ``middle``, ``later``) of each FA / ICGA image;
- ``train.csv`` (692 patients) takes part in the 5-fold cross-validation, ``test.csv`` (58
  multimodal patients) is held out;
- ``k_fold.csv``: folds, regrouped by patient (:func:`reprolab.medical.mmcbm_folds.official_patient_folds`);
- ``patient_concepts_map.csv`` (Chinese) and ``patient_concepts_map_trans.csv`` (the same rows
  machine-translated): the concepts of the 96 reported patients. A FA / ICGA concept with a
  phase (``time`` containing 期) is its own concept ``time + concept``; a late-phase (晚)
  concept is positive on the late image, a middle-phase (中) one is skipped as in the official
  code, any other phase on the early and middle images; concepts without a phase, and every
  US concept, on all of the modality's images.
"""

from __future__ import annotations

import ast
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reprolab.core.errors import DataError
from reprolab.data.archives import unpack
from reprolab.medical.mmcbm_cohort import CLASSES, MAX_PHASES, MODALITIES, PHASES, Cohort

log = logging.getLogger("reprolab.mmcbm")

#: CTI's pathology names -> class index of :data:`CLASSES`.
PATHOLOGY = {"Choroidal Melanoma": 0, "Choroidal Hemangioma": 1, "Choroidal Metastatic Carcinoma": 2}
#: The official phase names -> phase index.
STAGE = {"early": 0, "middle": 1, "later": 2, "None": 0}
#: English names of the phase labels of the concept maps (this project's translation).
TIME_EN = {"晚期": "late phase", "静脉期": "venous phase", "早期": "early phase", "动脉期": "arterial phase",
           "静脉早期": "early venous phase", "动静脉期": "arteriovenous phase", "动脉早期": "early arterial phase"}
#: Files the cohort is built from (rule inputs of ``mmcbm_cohort`` at paper scale).
CTI_INPUTS = ("archive", "data_cleaned", "train", "test", "concepts_zh", "concepts_en")

assert set(PATHOLOGY.values()) == set(range(len(CLASSES)))


def _read_csv(path: str | Path, columns: tuple[str, ...]) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError) as err:
        raise DataError(f"{path}: not a readable CSV ({err}); delete it and rerun to download it again") from err
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{path}: columns {missing} are missing (found {list(df.columns)}); is it the official file?")
    return df


def _dict_column(value: str, path: str | Path, column: str) -> dict[str, list[str]]:
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError) as err:
        raise DataError(f"{path}: column {column} holds {value[:60]!r}, not a dict literal") from err
    if not isinstance(parsed, dict):
        raise DataError(f"{path}: column {column} holds {value[:60]!r}, not a dict literal")
    return parsed


def read_kfold_rows(path: str | Path) -> list[tuple[str, str, int]]:
    """``(patient, modality view, fold)`` of every row of the official ``k_fold.csv``."""
    df = _read_csv(path, ("name", "modality", "k"))
    return [(r.name, r.modality, int(r.k)) for r in df.itertuples(index=False)]


def find_image_root(unpacked: Path, first_image: str) -> Path:
    """The folder against which the CSVs' image paths (``data/train/000000/FA/...``) resolve."""
    tail = Path(first_image)
    candidates = [unpacked, *sorted(p for p in unpacked.iterdir() if p.is_dir()),
                  *sorted(p for p in unpacked.glob("*/*") if p.is_dir())]
    for base in candidates:
        for rel in (tail, Path(*tail.parts[1:])):
            if (base / rel).is_file():
                return base
    raise DataError(f"{unpacked}: no image {first_image} below it (looked in {len(candidates)} folders); the "
                    "CTI archive does not have the layout of the official CSVs (data/train/<patient>/<modality>/...)")


def _image_path(root: Path, rel: str) -> Path:
    rel_path = Path(rel)
    path = root / rel_path if (root / rel_path).exists() else root / Path(*rel_path.parts[1:])
    if not path.is_file():
        raise DataError(f"{path}: image listed in DATA_Cleaned.csv is missing from the CTI archive")
    return path


def load_image(path: Path, size: int, channels: int) -> np.ndarray:
    """One image as uint8 ``[channels, size, size]`` (grayscale for FA / ICGA, RGB for US)."""
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("L" if channels == 1 else "RGB").resize((size, size), Image.Resampling.BILINEAR)
        arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


#: Stored channels per modality: FA and ICGA are grey (params.py gives one value for all three
#: channels), US is colour (Doppler).
CHANNELS = {"FA": 1, "ICGA": 1, "US": 3}


def _concept_table(zh: pd.DataFrame, en: pd.DataFrame, zh_path: str | Path) -> pd.DataFrame:
    """One row per (patient, concept) with the concept's identity, names and phase set."""
    if len(zh) != len(en) or not (zh[["name", "modality"]].values == en[["name", "modality"]].values).all():
        raise DataError(f"{zh_path}: rows do not match patient_concepts_map_trans.csv row by row")
    rows = []
    skipped = 0
    for (_, a), (_, b) in zip(zh.iterrows(), en.iterrows()):
        time = a["time"] if a["time"] not in ("", "无") else ""
        phased = "期" in time and a["modality"] != "US"
        if phased and "中" in time:
            skipped += 1
            continue
        key_zh = (time + a["concept"]) if phased else a["concept"]
        phases = (2,) if phased and "晚" in time else (0, 1) if phased else tuple(range(len(PHASES[a["modality"]])))
        rows.append({"patient": f"{int(a['name']):06d}", "modality": a["modality"], "zh": key_zh,
                     "en": (TIME_EN.get(time, time) + ", " if phased else "") + b["concept"], "phases": phases})
    if skipped:
        log.info("%s: %d middle-phase concept rows skipped (as in the official code)", zh_path, skipped)
    return pd.DataFrame(rows)


def build_concepts(table: pd.DataFrame) -> tuple[list[tuple[str, str]], dict[tuple[str, str], str],
                                                  dict[tuple[str, str], tuple[int, ...]]]:
    """Concept identities (modality, Chinese name) in modality order, their English names and phases.

    One Chinese concept can carry several machine translations; the most frequent one names it.
    """
    keys = sorted({(r.modality, r.zh) for r in table.itertuples()}, key=lambda k: (MODALITIES.index(k[0]), k[1]))
    english = {k: Counter(table.loc[(table.modality == k[0]) & (table.zh == k[1]), "en"]).most_common(1)[0][0]
               for k in keys}
    phases = {k: table.loc[(table.modality == k[0]) & (table.zh == k[1]), "phases"].iloc[0] for k in keys}
    return keys, english, phases


def build_cti_cohort(inputs: dict[str, str], settings: dict[str, Any]) -> Cohort:
    """Read CTI into a :class:`Cohort` (images resized to ``settings["image_size"]``).

    Parameters
    ----------
    inputs
        Paths of :data:`CTI_INPUTS` plus ``unpack_dir`` (where the archive is unpacked).
    settings
        ``papers.mmcbm`` at paper scale.
    """
    missing = [k for k in (*CTI_INPUTS, "unpack_dir") if k not in inputs]
    if missing:
        raise DataError(f"CTI cohort: inputs {missing} are missing")
    unpacked = unpack(inputs["archive"], inputs["unpack_dir"])
    data = _read_csv(inputs["data_cleaned"], ("name", "pathology", "path", "stage"))
    train_names = set(_read_csv(inputs["train"], ("name",))["name"])
    test_names = set(_read_csv(inputs["test"], ("name",))["name"])
    unknown = sorted(set(data["pathology"]) - set(PATHOLOGY))
    if unknown:
        raise DataError(f"{inputs['data_cleaned']}: unknown pathologies {unknown}")
    if (train_names | test_names) - set(data["name"]):
        raise DataError(f"{inputs['train']} / {inputs['test']}: patients missing from {inputs['data_cleaned']}")
    data = data[data["name"].isin(train_names | test_names)].reset_index(drop=True)
    paths = [_dict_column(v, inputs["data_cleaned"], "path") for v in data["path"]]
    stages = [_dict_column(v, inputs["data_cleaned"], "stage") for v in data["stage"]]
    first = next(p for d in paths for v in d.values() for p in v)
    root = find_image_root(Path(unpacked), first)
    n, size = len(data), int(settings["image_size"])
    images = {m: np.zeros((n, len(PHASES[m]), CHANNELS[m], size, size), dtype=np.uint8) for m in MODALITIES}
    masks = {m: np.zeros((n, len(PHASES[m])), dtype=bool) for m in MODALITIES}
    for i, (p, s) in enumerate(zip(paths, stages)):
        for m, files in p.items():
            if m not in MODALITIES:
                continue
            for rel, stage in zip(files, s.get(m, ["None"] * len(files))):
                phase = STAGE.get(stage)
                if phase is None or masks[m][i, phase]:
                    log.warning("patient %s: %s image %s (stage %r) skipped", data["name"][i], m, rel, stage)
                    continue
                images[m][i, phase] = load_image(_image_path(root, rel), size, CHANNELS[m])
                masks[m][i, phase] = True
        if (i + 1) % 100 == 0:
            log.info("read the images of %d / %d patients", i + 1, n)
    zh = _read_csv(inputs["concepts_zh"], ("pathology", "name", "modality", "time", "concept"))
    en = _read_csv(inputs["concepts_en"], ("pathology", "name", "modality", "time", "concept"))
    table = _concept_table(zh, en, inputs["concepts_zh"])
    keys, english, phases = build_concepts(table)
    index = {p: i for i, p in enumerate(data["name"])}
    unknown_patients = sorted(set(table["patient"]) - set(index))
    if unknown_patients:
        log.warning("concept map: %d patients are not in train.csv / test.csv and are ignored", len(unknown_patients))
    reports = np.zeros((n, len(keys)), dtype=bool)
    col = {k: j for j, k in enumerate(keys)}
    for r in table.itertuples():
        if r.patient in index:
            reports[index[r.patient], col[(r.modality, r.zh)]] = True
    has_report = np.zeros(n, dtype=bool)
    has_report[[index[p] for p in set(table["patient"]) if p in index]] = True
    concept_phases = np.zeros((len(keys), MAX_PHASES), dtype=bool)
    for j, k in enumerate(keys):
        concept_phases[j, list(phases[k])] = True
    return Cohort(
        patients=data["name"].to_numpy(dtype=str),
        labels=data["pathology"].map(PATHOLOGY).to_numpy(dtype=np.int64),
        split=np.where(data["name"].isin(test_names), "test", "cv"),
        images=images, image_mask=masks,
        concept_names=np.array([f"{k[0]}, {english[k]}" for k in keys]),
        concept_names_zh=np.array([k[1] for k in keys]),
        concept_modality=np.array([MODALITIES.index(k[0]) for k in keys], dtype=np.int64),
        concept_phases=concept_phases, reports=reports, has_report=has_report, source="CTI",
    )
