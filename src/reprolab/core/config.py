"""Configuration validation with messages that name the offending key, and per-scale lookup.

The global keys are checked against ``config/schema.yaml``; each paper section
``papers.<id>`` against ``config/schemas/<id>.yaml``. The schema files may refer to each
other by file name (``common.yaml#/$defs/optim``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource

from reprolab.core.errors import ConfigError


def _load_yaml(path: Path) -> Any:
    with open(path) as handle:
        return yaml.safe_load(handle)


def _registry(schema_dir: Path) -> Registry:
    resources = [
        (p.name, Resource.from_contents(_load_yaml(p))) for p in sorted(schema_dir.glob("*.yaml"))
    ]
    return Registry().with_resources(resources)


def _key_path(prefix: str, error: jsonschema.ValidationError) -> str:
    parts = [prefix] + [str(p) for p in error.absolute_path]
    return ".".join(p for p in parts if p)


def _explain(prefix: str, error: jsonschema.ValidationError) -> str:
    where = _key_path(prefix, error) or "(top level)"
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        hint = f"; known keys here: {', '.join(known)}" if known else ""
        return f"config key {where}: {error.message}{hint}. Remove or rename the key."
    description = error.schema.get("description")
    hint = f" ({description})" if description else ""
    return f"config key {where}: {error.message}{hint}. Fix the value in the config file or --config."


def _raise_first(validator: jsonschema.protocols.Validator, instance: Any, prefix: str) -> None:
    errors = sorted(validator.iter_errors(instance), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if errors:
        raise ConfigError("\n".join(_explain(prefix, e) for e in errors[:5]))


def validate_config(config: Mapping[str, Any], schema_path: str | Path, schema_dir: str | Path) -> None:
    """Validate the whole configuration; raise on the first problems, naming the keys.

    Parameters
    ----------
    config
        The merged configuration (config.yaml, config/papers/*.yaml and --config).
    schema_path
        Schema of the global keys (``config/schema.yaml``).
    schema_dir
        Folder of per-paper schemas ``<id>.yaml`` and ``common.yaml``.

    Raises
    ------
    ConfigError
        With one line per problem: the dotted key, what is wrong, how to fix it.
    """
    schema_dir = Path(schema_dir)
    registry = _registry(schema_dir)
    cls = jsonschema.Draft202012Validator
    _raise_first(cls(_load_yaml(Path(schema_path)), registry=registry), config, "")
    known = sorted(p.stem for p in schema_dir.glob("*.yaml") if p.stem != "common")
    for paper, section in config.get("papers", {}).items():
        schema_file = schema_dir / f"{paper}.yaml"
        if not schema_file.exists():
            raise ConfigError(
                f"config key papers.{paper}: no paper of that id (known: {', '.join(known)}). "
                "Remove or rename the section."
            )
        _raise_first(cls(_load_yaml(schema_file), registry=registry), section, f"papers.{paper}")


def paper_config(config: Mapping[str, Any], paper: str, scale: str | None = None) -> dict[str, Any]:
    """Return ``papers.<paper>`` with its ``scales.<scale>`` section merged on top.

    Parameters
    ----------
    config
        The full configuration.
    paper
        Paper id.
    scale
        ``smoke``, ``demo`` or ``paper``; defaults to ``config['scale']``.

    Returns
    -------
    dict
        The paper's keys without ``scales``, updated by the chosen scale's keys.
    """
    try:
        section = copy.deepcopy(dict(config["papers"][paper]))
    except KeyError as err:
        raise ConfigError(f"config has no section papers.{paper}; add config/papers/{paper}.yaml") from err
    scales = section.pop("scales", {})
    scale = scale or config["scale"]
    return deep_update(section, scales.get(scale, {}))


def deep_update(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge ``update`` into a copy of ``base`` (mappings merged, others replaced)."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_update(dict(out[key]), value)
        else:
            out[key] = copy.deepcopy(value)
    return out
