"""Tests of reprolab.data.registry and of config/datasets.yaml itself."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from reprolab.core.errors import ConfigError, MissingDataError
from reprolab.data.download import file_digest
from reprolab.data.registry import (
    dataset_file_path,
    download_spec,
    downloadable_ids,
    load_registry,
    require_available,
)

REPO = Path(__file__).resolve().parents[2]
REGISTRY = REPO / "config" / "datasets.yaml"


def _entry(**overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "title": "Toy",
        "paper_ids": ["mtt"],
        "licence": "CC0",
        "citation": "Someone (2024)",
        "access": "open",
        "files": [{"name": "toy.zip", "urls": ["https://example.org/toy.zip"], "md5": "a" * 32}],
    }
    entry.update(overrides)
    return entry


def _write(tmp_path: Path, datasets: dict[str, Any]) -> Path:
    path = tmp_path / "datasets.yaml"
    path.write_text(yaml.safe_dump(datasets))
    return path


def test_real_registry_loads(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="reprolab.data"):
        registry = load_registry(REGISTRY)
    expected = {"nmnist_demo", "nmnist", "cifar10dvs", "cifar10", "cifar100", "dvs_gesture", "imagenet"}
    assert expected <= set(registry)
    assert registry["nmnist"].file("Train.zip").md5 == "20959b8e626244a1b502305a9e6e2031"
    assert registry["nmnist"].file("Test.zip").md5 == "69ca8762b2fe404d9b9bad1103e97832"
    cifar10dvs = registry["cifar10dvs"].file("CIFAR10DVS.zip")
    assert cifar10dvs.md5 == "ce3a4a0682dc0943703bd8f749a7701c"
    assert cifar10dvs.urls[0].startswith("https://ndownloader.figshare.com/")
    assert registry["dvs_gesture"].access == "manual"
    assert registry["imagenet"].access == "credentials"
    assert "nmnist_demo" not in downloadable_ids(registry)
    assert "no md5 or sha256" not in caplog.text, "every registry file needs a checksum or an unverified reason"
    for dataset in registry.values():
        for data_file in dataset.files:
            assert data_file.has_checksum or data_file.unverified, (dataset.id, data_file.name)


def test_committed_demo_files_match_registry() -> None:
    dataset = load_registry(REGISTRY)["nmnist_demo"]
    for data_file in dataset.files:
        path = REPO / dataset_file_path(dataset, data_file, "unused")
        if not path.exists():
            pytest.skip(f"{path} not committed yet")
        assert path.stat().st_size == data_file.size
        assert file_digest(path) == data_file.md5


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"access": "sometimes"}, "key access"),
        ({"title": ""}, "key title"),
        ({"paper_ids": ["nope"]}, "key paper_ids"),
        ({"colour": "blue"}, "key colour"),
        ({"access": "manual"}, "key instructions"),
        ({"files": [{"name": "toy.zip", "urls": ["https://e.org/t"], "md5": "xyz"}]}, "key files[0].md5"),
        ({"files": [{"name": "toy.zip", "md5": "a" * 32}]}, "key files[0].urls"),
        ({"files": [{"name": "a/b.zip", "urls": ["https://example.org/t"]}]}, "key files[0].name"),
        ({"files": [{"name": "t.zip", "urls": ["https://e.org/t"], "size": -1}]}, "key files[0].size"),
        ({"access": "local", "files": [{"name": "t.zip", "md5": "a" * 32}]}, "key files[0].path"),
    ],
)
def test_malformed_entry_names_dataset_and_key(tmp_path: Path, overrides: dict[str, Any], key: str) -> None:
    path = _write(tmp_path, {"good": _entry(), "broken_one": _entry(**overrides)})
    with pytest.raises(ConfigError) as info:
        load_registry(path)
    message = str(info.value)
    assert "dataset broken_one" in message
    assert key in message
    assert str(path) in message


def test_missing_required_key(tmp_path: Path) -> None:
    entry = _entry()
    del entry["licence"]
    with pytest.raises(ConfigError, match=r"dataset toy, key licence: missing"):
        load_registry(_write(tmp_path, {"toy": entry}))


def test_missing_checksum_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    entry = _entry(files=[{"name": "toy.zip", "urls": ["https://example.org/toy.zip"]}])
    with caplog.at_level(logging.WARNING, logger="reprolab.data"):
        registry = load_registry(_write(tmp_path, {"toy": entry}))
    assert registry["toy"].files[0].md5 is None
    assert "toy" in caplog.text and "no md5 or sha256" in caplog.text


def test_declared_unverified_file_loads_quietly_and_warns_on_download(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = [{"name": "toy.zip", "urls": ["https://example.org/toy.zip"], "unverified": "none is published"}]
    with caplog.at_level(logging.WARNING, logger="reprolab.data"):
        registry = load_registry(_write(tmp_path, {"toy": _entry(files=files)}))
        assert "toy" not in caplog.text
        spec = download_spec(registry, "toy", "toy.zip", tmp_path)
    assert spec["md5"] is None and "without a checksum: none is published" in caplog.text


def test_empty_unverified_reason_is_refused(tmp_path: Path) -> None:
    files = [{"name": "toy.zip", "urls": ["https://example.org/toy.zip"], "unverified": " "}]
    with pytest.raises(ConfigError, match=r"files\[0\]\.unverified"):
        load_registry(_write(tmp_path, {"toy": _entry(files=files)}))


def test_unreadable_registry(tmp_path: Path) -> None:
    bad = tmp_path / "datasets.yaml"
    bad.write_text("toy: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_registry(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_registry(tmp_path / "absent.yaml")


def test_manual_dataset_absent_raises_with_instructions(tmp_path: Path) -> None:
    instructions = "Log in to the vendor portal and download toy.zip by hand."
    path = _write(
        tmp_path,
        {
            "toy_manual": _entry(
                access="manual", instructions=instructions, files=[{"name": "toy.zip", "md5": "a" * 32}]
            )
        },
    )
    dataset = load_registry(path)["toy_manual"]
    data_dir = tmp_path / "data"

    with pytest.raises(MissingDataError) as info:
        require_available(dataset, data_dir)

    message = str(info.value)
    assert instructions in message
    assert "toy_manual" in message
    assert str(data_dir / "downloads" / "toy_manual") in message
    with pytest.raises(MissingDataError, match="vendor portal"):
        download_spec({"toy_manual": dataset}, "toy_manual", "toy.zip", data_dir)

    target = dataset_file_path(dataset, "toy.zip", data_dir)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"x")
    assert require_available(dataset, data_dir) == [target]


def test_real_manual_and_credential_datasets_explain_themselves(tmp_path: Path) -> None:
    registry = load_registry(REGISTRY)
    with pytest.raises(MissingDataError, match=re.escape("ibm.ent.box.com")):
        require_available(registry["dvs_gesture"], tmp_path)
    with pytest.raises(MissingDataError, match=re.escape("image-net.org")):
        download_spec(registry, "imagenet", "ILSVRC2012_img_val.tar", tmp_path)


def test_paths_and_download_spec(tmp_path: Path) -> None:
    registry = load_registry(REGISTRY)
    demo = registry["nmnist_demo"]
    assert dataset_file_path(demo, "train.zip", tmp_path) == Path("resources/demo/nmnist-small/train.zip")
    nmnist = registry["nmnist"]
    assert dataset_file_path(nmnist, "Train.zip", tmp_path) == tmp_path / "downloads" / "nmnist" / "Train.zip"

    spec = download_spec(registry, "cifar10", "cifar-10-python.tar.gz", tmp_path)
    assert spec == {
        "urls": ["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"],
        "md5": "c58f30108f718f92721af3b95e74349a",
        "sha256": None,
        "size": None,
    }
    with pytest.raises(ConfigError, match="no dataset 'nope'"):
        download_spec(registry, "nope", "x", tmp_path)
    with pytest.raises(ConfigError, match=re.escape("has no file 'x.zip'")):
        download_spec(registry, "cifar10", "x.zip", tmp_path)
    with pytest.raises(ConfigError, match="not downloaded"):
        download_spec(registry, "nmnist_demo", "train.zip", tmp_path)


def test_local_dataset_missing_file_says_git_checkout(tmp_path: Path) -> None:
    local_file = {"name": "t.zip", "path": "resources/demo/absent/t.zip", "md5": "a" * 32}
    entry = _entry(access="local", files=[local_file])
    dataset = load_registry(_write(tmp_path, {"toy": entry}))["toy"]
    with pytest.raises(MissingDataError, match=re.escape("git checkout -- resources/demo/absent/t.zip")):
        require_available(dataset, tmp_path)
