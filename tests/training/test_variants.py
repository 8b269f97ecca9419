"""Ablation variants: names, sections and override keys checked, overrides merged key by key."""

from __future__ import annotations

import pytest

from tml_cloudremoval.config import ConfigError, from_params, validate_sections
from tml_cloudremoval.training.config import ModelConfig, TrainingConfig
from tml_cloudremoval.training.variants import (
    DEFAULT_VARIANTS,
    AblationConfig,
    active_variants,
    variant_configs,
    variant_names,
)


def _check(variants) -> str:
    with pytest.raises(ConfigError) as err:
        from_params(AblationConfig, {"variants": variants}, "ablation")
    return str(err.value)


def test_the_default_variants_are_valid_and_in_order():
    cfg = from_params(AblationConfig, None, "ablation")
    assert list(active_variants(cfg.variants)) == [
        "reference",
        "no_sar",
        "sar_bilinear",
        "l1",
        "tail_he_uniform",
        "aleatoric",
    ]
    assert cfg.variants == DEFAULT_VARIANTS


def test_a_misspelt_override_key_names_the_variant_section_and_key():
    message = _check({"reference": {}, "no_sar": {"model": {"include_sarr": False}}})
    assert message.startswith("invalid parameters: ablation.variants.no_sar.model.include_sarr:")
    assert "(did you mean ablation.variants.no_sar.model.include_sar?)" in message


def test_every_fault_of_every_variant_comes_in_one_error():
    message = _check(
        {
            "a": {"modle": {"blocks": 2}},
            "b": {"training": {"learning_rate": -1, "loss": "l2"}},
            "c": {"model": {"sar_upsampling": "cubic"}},
            "bad.name": {},
            "d": [1, 2],
        }
    )
    assert (
        "ablation.variants.a.modle: unknown parameter (did you mean ablation.variants.a.model?)"
        in (message)
    )
    assert "ablation.variants.b.training.learning_rate: must be > 0" in message
    assert "ablation.variants.b.training.loss: expected one of ['carl', 'l1'], got 'l2'" in message
    assert "ablation.variants.c.model.sar_upsampling: expected one of ['nearest', 'bilinear']" in (
        message
    )
    assert "ablation.variants.bad.name: a variant name is a letter" in message
    assert "ablation.variants.d: expected a mapping" in message


def test_the_run_check_sees_a_bad_override_like_any_other_section():
    with pytest.raises(ConfigError, match=r"ablation\.variants\.x\.training\.epochz"):
        validate_sections({"ablation": {"variants": {"x": {"training": {"epochz": 1}}}}})


def test_null_drops_a_variant_and_all_null_is_refused():
    variants = {**DEFAULT_VARIANTS, "no_sar": None}
    assert list(active_variants(variants)) == [
        "reference",
        "sar_bilinear",
        "l1",
        "tail_he_uniform",
        "aleatoric",
    ]
    assert variant_names(variants) == [
        "reference",
        "sar_bilinear",
        "l1",
        "tail_he_uniform",
        "aleatoric",
    ]
    assert "no variant left to run" in _check({"a": None})


def test_variant_names_are_lenient_where_pipelines_are_registered():
    assert variant_names(None) == [] and variant_names([1]) == []
    assert variant_names({"ok": {}, "not ok": {}, "x.y": {}}) == ["ok"]


def test_overrides_merge_key_by_key_over_the_run_settings():
    model, training = variant_configs(
        "deep",
        {"model": {"blocks": 3}, "training": {"loss": "l1"}},
        {"features": 8, "blocks": 1, "include_sar": False},
        {"epochs": 2, "learning_rate": 1e-3},
    )
    assert model == ModelConfig(features=8, blocks=3, include_sar=False)
    assert training == TrainingConfig(epochs=2, learning_rate=1e-3, loss="l1")
    assert variant_configs("same", None, {}, {}) == (ModelConfig(), TrainingConfig())


def test_a_bad_override_or_merged_fault_is_refused_naming_the_variant():
    with pytest.raises(ConfigError, match=r"ablation\.variants\.v\.training\.crop_size: must be"):
        variant_configs("v", {"training": {"crop_size": 6}}, {}, {})
    with pytest.raises(ConfigError, match=r"ablation variant 'v' .*training\.epochs: must be >= 1"):
        variant_configs("v", {}, {}, {"epochs": 0})
