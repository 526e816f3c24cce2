from pathlib import Path

import numpy as np
import pytest

from reprolab.core.errors import DataError
from reprolab.data import cifar10dvs


def fake_tree(root: Path, per_class: int = 10) -> None:
    rng = np.random.default_rng(0)
    for cls in cifar10dvs.CLASSES:
        folder = root / "classes" / cls / cls
        folder.mkdir(parents=True)
        # created in a shuffled order: the split must not depend on file-system order
        for i in rng.permutation(per_class):
            (folder / f"cifar10_{cls}_{i}.aedat4").write_bytes(b"")


def test_split_is_per_class_90_10_over_sorted_names(tmp_path):
    fake_tree(tmp_path)
    split = cifar10dvs.split_per_class(cifar10dvs.list_recordings(tmp_path))
    assert len(split["train"]) == 90 and len(split["test"]) == 10
    for label, cls in enumerate(cifar10dvs.CLASSES):
        test_names = [p.name for p, lbl in split["test"] if lbl == label]
        # sorted names: the last of each class ("..._9") goes to test
        assert test_names == [f"cifar10_{cls}_9.aedat4"]
    assert not {p for p, _ in split["train"]} & {p for p, _ in split["test"]}


def test_split_is_deterministic(tmp_path):
    fake_tree(tmp_path)
    files = cifar10dvs.list_recordings(tmp_path)
    assert cifar10dvs.split_per_class(files) == cifar10dvs.split_per_class(dict(reversed(files.items())))


def test_missing_classes_are_named(tmp_path):
    (tmp_path / "airplane").mkdir()
    (tmp_path / "airplane" / "a.aedat4").write_bytes(b"")
    with pytest.raises(DataError, match="automobile"):
        cifar10dvs.list_recordings(tmp_path)
