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

from tml_cloudremoval.config import (
    SECTIONS,
    ConfigError,
    config_class,
    defaults_of,
    from_params,
    validate_sections,
)

CONF = Path(__file__).resolve().parents[1] / "conf"

CONFIGS = sorted(SECTIONS.items())
"""(parameter section, "module:Class") of every validated config object."""


@pytest.fixture(scope="module")
def base_params():
    loader = OmegaConfigLoader(str(CONF), base_env="base", default_run_env="base")
    return loader["parameters"]


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
    cls = config_class(section)
    yaml_section = base_params[section]
    assert sorted(yaml_section) == sorted(f.name for f in dataclasses.fields(cls))
    assert _plain(from_params(cls, yaml_section, section)) == _plain(cls())
    assert _plain(defaults_of(cls)) == _plain(yaml_section)


@pytest.mark.parametrize(("section", "target"), CONFIGS, ids=[c[0] for c in CONFIGS])
def test_a_misspelt_key_is_rejected_naming_it(base_params, section, target):
    cls = config_class(section)
    key = next(iter(base_params[section]))
    typo = key[:-1] + ("x" if key[-1] != "x" else "y")
    with pytest.raises(ConfigError, match=rf"{section}\.{typo}: unknown parameter"):
        from_params(cls, {**base_params[section], typo: 1}, section)


def test_every_section_of_the_yaml_has_a_config_object(base_params):
    assert sorted(base_params) == sorted(SECTIONS)
    validate_sections(base_params)  # the shipped defaults are valid


def test_faults_of_several_sections_come_in_one_error(base_params):
    params = {
        **base_params,
        "training": {**base_params["training"], "learning_rate": -1},
        "inference": {**base_params["inference"], "tilesize": 64},
    }
    with pytest.raises(ConfigError) as err:
        validate_sections(params)
    assert "training.learning_rate" in str(err.value)
    assert "inference.tilesize: unknown parameter (did you mean inference.tile_size?)" in str(
        err.value
    )


# Science functions whose keyword defaults stand for a parameter: (function path, section).
# Their defaults must be the YAML's, so a call without the argument does what a run does.
# (``progress`` is left out: a progress bar is the pipeline's choice, not a processing default.)
FUNCTION_DEFAULTS = [
    ("tml_cloudremoval.models.dsen2cr:build_dsen2cr", "model"),
    ("tml_cloudremoval.models.dsen2cr:count_parameters", "model"),
    ("tml_cloudremoval.data.input_pipeline:train_dataset", "training"),
    ("tml_cloudremoval.training.trainer:CloudRemovalTrainer", "training"),
    ("tml_cloudremoval.data.discovery:discover_triplets", "data"),
    ("tml_cloudremoval.data.discovery:build_triplet_table", "data"),
    ("tml_cloudremoval.data.triplets:prepare_patch", "data"),
    ("tml_cloudremoval.data.triplets:TripletSamples", "data"),
    ("tml_cloudremoval.data.cloud_mask:cloud_shadow_mask", "data"),
    ("tml_cloudremoval.evaluation.evaluate:evaluate_store", "evaluation"),
    ("tml_cloudremoval.inference.engine:run_tiled", "inference"),
    ("tml_cloudremoval.inference.engine:predict_array", "inference"),
    ("tml_cloudremoval.inference.writer:SceneWriter", "inference"),
]


@pytest.mark.parametrize(
    ("target", "section"), FUNCTION_DEFAULTS, ids=[f[0] for f in FUNCTION_DEFAULTS]
)
def test_function_defaults_agree_with_the_yaml(base_params, target, section):
    import inspect

    module, name = target.split(":")
    func = getattr(importlib.import_module(module), name)
    yaml_section = base_params[section]
    checked = {
        arg: p.default
        for arg, p in inspect.signature(func).parameters.items()
        if p.default is not inspect.Parameter.empty and arg in yaml_section and arg != "progress"
    }
    assert checked, f"{target} has no default that stands for a {section} parameter"
    assert _plain(checked) == _plain({arg: yaml_section[arg] for arg in checked})  # tuples as lists
