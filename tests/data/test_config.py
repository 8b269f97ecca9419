"""data/config.py: the data and sample_data sections, their choices and strict keys.

(That the defaults equal the YAML is proven for every section in tests/test_config_defaults.py.)
"""

from __future__ import annotations

import typing
from typing import Literal

import pytest

from tml_cloudremoval.config import ConfigError
from tml_cloudremoval.data.checks import ON_BAD_FILE
from tml_cloudremoval.data.config import (
    DataConfig,
    TmlSceneSampleConfig,
    data_config,
    sample_data_config,
)
from tml_cloudremoval.data.discovery import LAYOUTS
from tml_cloudremoval.data.splits import OFFICIAL
from tml_cloudremoval.data.synthetic.spectra import SEASON_NAMES
from tml_cloudremoval.sar import SAR_METHODS


def test_choices_are_the_modules_choices():
    hints = typing.get_type_hints(DataConfig)
    assert typing.get_args(hints["sar_method"]) == SAR_METHODS
    assert typing.get_args(hints["on_bad_file"]) == ON_BAD_FILE
    assert typing.get_args(hints["layout"]) == LAYOUTS
    season = typing.get_type_hints(TmlSceneSampleConfig)["season"]
    assert typing.get_args(season) == SEASON_NAMES


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"cloud_treshold": 0.9},
            r"data\.cloud_treshold: unknown parameter \(did you mean data\.cloud_threshold\?\)",
        ),
        ({"cloud_threshold": 1.5}, r"data\.cloud_threshold: must be <= 1\.0"),
        ({"cloud_threshold": 0}, r"data\.cloud_threshold: must be > 0\.0"),
        ({"cloud_threshold": "0.2"}, r"data\.cloud_threshold: expected float"),
        ({"workers": 0}, r"data\.workers: must be >= 1"),
        ({"workers": 2.5}, r"data\.workers: expected int or null"),
        ({"seed": "42"}, r"data\.seed: expected int"),
        ({"on_bad_file": "warn"}, r"data\.on_bad_file: expected one of \['error', 'skip'\]"),
        ({"sar_method": "median"}, r"data\.sar_method: expected one of \['mean', 'linear_power'\]"),
        ({"layout": "flat"}, r"data\.layout: expected one of"),
        ({"split": {"train": 0.8, "val": 0.2}}, r"data\.split: split fractions must sum to 1"),
        ({"split": {"train": 0.9, "val": 0.1, "test": 0.0}}, r"data\.split\.test: must be > 0"),
        (
            {"split": {"train": 0.7, "val": 0.15, "tst": 0.15}},
            r"data\.split\.tst: unknown .* data\.split\.test",
        ),
        (
            {"split": "oficial"},
            r"data\.split: expected a mapping \(train, val, test\) or 'official', got 'oficial' "
            r"\(did you mean 'official'\?\)",
        ),
        ({"split": 0.7}, r"data\.split: expected a mapping \(train, val, test\) or 'official'"),
        ({"root": ""}, r"data\.root: must name a folder"),
        ({"file_list": 3}, r"data\.file_list: expected str or null"),
    ],
)
def test_data_faults_name_the_key(params, message):
    with pytest.raises(ConfigError, match=message):
        data_config(params)


def test_every_fault_of_a_section_in_one_error():
    with pytest.raises(ConfigError) as err:
        sample_data_config({"seed": 1.5, "sen12mscr": {"patch_size": 30}, "tml_scene": {"x": 1}})
    text = str(err.value)
    assert "sample_data.seed: expected int" in text
    assert "sample_data.sen12mscr.patch_size: must be a multiple of 4" in text
    assert "sample_data.tml_scene.x: unknown parameter" in text


def test_split_official_is_the_splits_module_choice():
    hints = typing.get_type_hints(DataConfig)
    literal = [a for a in typing.get_args(hints["split"]) if typing.get_origin(a) is Literal]
    assert [typing.get_args(a) for a in literal] == [(OFFICIAL,)]
    assert data_config({"split": "official"}).split == OFFICIAL


def test_overrides_keep_the_other_defaults():
    config = data_config(
        {"root": "/data/SEN12MS-CR", "workers": 4, "split": {"train": 0.8, "val": 0.1, "test": 0.1}}
    )
    assert config.root == "/data/SEN12MS-CR" and config.workers == 4
    assert (config.split.train, config.split.val, config.split.test) == (0.8, 0.1, 0.1)
    assert config.cloud_threshold == 0.2 and config.layout == "auto"
