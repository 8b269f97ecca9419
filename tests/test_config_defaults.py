"""Defaults live in YAML: every config object's code defaults equal conf/base, key for key.

The parameters are loaded as Kedro loads them (OmegaConfigLoader, globals resolved), so a
default changed in one place and not the other fails here. Every key a config object knows is
in the YAML (documented where users look), and the YAML has no key the code does not know.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader

from tml_cloudremoval.config import ConfigError, defaults_of, from_params

CONF = Path(__file__).resolve().parents[1] / "conf"

# (parameter section, "module:Class") of every validated config object.
CONFIGS = [
    ("sample_data", "tml_cloudremoval.data.config:SampleDataConfig"),
    ("data", "tml_cloudremoval.data.config:DataConfig"),
    ("model", "tml_cloudremoval.training.config:ModelConfig"),
    ("training", "tml_cloudremoval.training.config:TrainingConfig"),
    ("evaluation", "tml_cloudremoval.evaluation.config:EvaluationConfig"),
    ("inference", "tml_cloudremoval.inference.config:InferenceConfig"),
]


@pytest.fixture(scope="module")
def base_params():
    loader = OmegaConfigLoader(str(CONF), base_env="base", default_run_env="base")
    return loader["parameters"]


def _cls(target: str):
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def _plain(value):
    """Config values as YAML would spell them (tuples as lists, nested configs as dicts)."""
    if dataclasses.is_dataclass(value):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@pytest.mark.parametrize(("section", "target"), CONFIGS, ids=[c[0] for c in CONFIGS])
def test_code_defaults_equal_the_yaml(base_params, section, target):
    cls = _cls(target)
    yaml_section = base_params[section]
    assert sorted(yaml_section) == sorted(f.name for f in dataclasses.fields(cls))
    assert _plain(from_params(cls, yaml_section, section)) == _plain(cls())
    assert _plain(defaults_of(cls)) == _plain(yaml_section)


@pytest.mark.parametrize(("section", "target"), CONFIGS, ids=[c[0] for c in CONFIGS])
def test_a_misspelt_key_is_rejected_naming_it(base_params, section, target):
    cls = _cls(target)
    key = next(iter(base_params[section]))
    typo = key[:-1] + ("x" if key[-1] != "x" else "y")
    with pytest.raises(ConfigError, match=rf"{section}\.{typo}: unknown parameter"):
        from_params(cls, {**base_params[section], typo: 1}, section)
