import copy
from pathlib import Path

import pytest
import yaml

from reprolab.core.config import deep_update, paper_config, validate_config
from reprolab.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def load_config() -> dict:
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    for path in sorted((REPO / "config/papers").glob("*.yaml")):
        config = deep_update(config, yaml.safe_load(path.read_text()))
    return config


def validate(config):
    validate_config(config, REPO / "config/schema.yaml", REPO / "config/schemas")


def test_shipped_config_is_valid():
    validate(load_config())


def test_unknown_key_is_named_with_known_alternatives():
    config = load_config()
    config["papers"]["tet"]["scales"]["demo"]["experiments"]["nmnist"]["epoch"] = 3
    with pytest.raises(ConfigError, match=r"papers\.tet\.scales\.demo\.experiments\.nmnist.*'epoch' was unexpected"):
        validate(config)


def test_wrong_type_is_named():
    config = load_config()
    config["papers"]["tet"]["scales"]["smoke"]["experiments"]["nmnist"]["optim"]["epochs"] = "two"
    with pytest.raises(ConfigError, match=r"papers\.tet\.scales\.smoke\.experiments\.nmnist\.optim\.epochs"):
        validate(config)


def test_bad_scale_value_is_named():
    config = load_config()
    config["scale"] = "huge"
    with pytest.raises(ConfigError, match=r"config key scale: 'huge' is not one of"):
        validate(config)


def test_unknown_paper_section_is_rejected():
    config = load_config()
    config["papers"]["nosuchpaper"] = {}
    with pytest.raises(ConfigError, match="papers.nosuchpaper"):
        validate(config)


def test_paper_config_merges_the_scale_over_the_paper_keys():
    config = load_config()
    tet = paper_config(config, "tet", "demo")
    assert "scales" not in tet
    assert tet["seeds"] == config["papers"]["tet"]["scales"]["demo"].get("seeds", config["papers"]["tet"]["seeds"])
    assert tet["experiments"] == config["papers"]["tet"]["scales"]["demo"]["experiments"]


def test_deep_update_does_not_mutate_its_inputs():
    base = {"a": {"b": 1, "c": 2}}
    before = copy.deepcopy(base)
    assert deep_update(base, {"a": {"b": 5}}) == {"a": {"b": 5, "c": 2}}
    assert base == before
