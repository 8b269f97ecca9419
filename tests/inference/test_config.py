"""InferenceConfig: YAML defaults == code defaults; unknown keys and bad values name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader

from tml_cloudremoval.config import ConfigError
from tml_cloudremoval.inference.config import inference_config

PROJECT = Path(__file__).resolve().parents[2]


def yaml_params() -> dict:
    loader = OmegaConfigLoader(str(PROJECT / "conf"), base_env="base", default_run_env="base")
    return dict(loader["parameters"]["inference"])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"tilesize": 64},
            r"inference\.tilesize: unknown parameter \(did you mean inference\.tile_size\?\)",
        ),
        ({"compress": "bogus"}, r"inference\.compress: expected one of"),
        ({"tile_size": 50}, r"inference\.tile_size: must be a multiple of 4"),
        ({"batch_size": 0}, r"inference\.batch_size: must be >= 1"),
        ({"output_dtype": "int8"}, r"inference\.output_dtype: expected one of"),
        ({"overlap": 18}, r"inference\.overlap: must be a multiple of 4"),
        ({"overlap": 64, "tile_size": 64}, r"inference\.overlap: must be smaller than tile_size"),
        ({"progress": "yes"}, r"inference\.progress: expected bool"),
        ({"dn_offset": "bogus"}, r"inference\.dn_offset: expected 'auto' or int"),
        ({"dn_offset": 20000}, r"inference\.dn_offset: must be auto or in \[-10000, 10000\]"),
        ({"allow_l2a": "yes"}, r"inference\.allow_l2a: expected bool"),
        ({"ensemble": "latest"}, r"inference\.ensemble: expected 'all' or tuple or null"),
        ({"ensemble": ["v1"]}, r"inference\.ensemble: a list of at least 2 different"),
        ({"ensemble": ["v1", "v1"]}, r"inference\.ensemble: a list of at least 2 different"),
        ({"ensemble": ["v1", 3]}, r"inference\.ensemble: expected"),
    ],
)
def test_bad_parameters_name_the_key(changes, message):
    with pytest.raises(ConfigError, match=message):
        inference_config({**yaml_params(), **changes})


def test_all_faults_at_once():
    with pytest.raises(ConfigError) as info:
        inference_config({"tilesize": 64, "batch_size": 0})
    assert "inference.tilesize" in str(info.value) and "inference.batch_size" in str(info.value)


def test_dn_offset_takes_auto_or_an_int():
    assert inference_config({**yaml_params(), "dn_offset": -1000}).dn_offset == -1000
    assert inference_config(yaml_params()).dn_offset == "auto"


def test_ensemble_takes_null_all_or_a_list_of_versions():
    assert inference_config(yaml_params()).ensemble is None
    assert inference_config({**yaml_params(), "ensemble": "all"}).ensemble == "all"
    config = inference_config({**yaml_params(), "ensemble": ["b", "a"]})
    assert config.ensemble == ("b", "a")  # the order is kept: the first settles the contract
