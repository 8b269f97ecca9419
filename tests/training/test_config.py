"""Training settings: YAML defaults = dataclass defaults; every bad key, type and range named."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
import yaml

from tml_cloudremoval.config import ConfigError
from tml_cloudremoval.models.losses import LOSSES
from tml_cloudremoval.models.uncertainty import UNCERTAINTY_KINDS, Uncertainty
from tml_cloudremoval.training.config import LossName, ModelConfig, TrainingConfig, load_configs

CONF = Path(__file__).resolve().parents[2] / "conf"


def _yaml(env: str) -> dict:
    return yaml.safe_load((CONF / env / "parameters_training.yml").read_text())


def test_the_demo_overrides_are_valid_settings():
    base, demo = _yaml("base"), _yaml("demo")
    model, training = load_configs(
        {**base["model"], **demo["model"]}, {**base["training"], **demo["training"]}
    )
    assert (model.features, model.blocks) == (32, 6)
    assert training.epochs == 12 and training.steps_per_epoch is None


def test_the_gpu_overrides_are_valid_settings():
    base, gpu = _yaml("base"), _yaml("gpu")
    assert set(gpu) == {"training"}  # the model is the base one
    model, training = load_configs(base["model"], {**base["training"], **gpu["training"]})
    assert model == ModelConfig()
    assert training.batch_size == 64
    # square-root scaling from the seed's 7e-5 at batch 16 (the YAML comment's rule)
    assert training.learning_rate == pytest.approx(7e-5 * (64 / 16) ** 0.5)
    assert (training.warmup_steps, training.mixed_precision, training.xla) == (
        500,
        "bfloat16",
        True,
    )
    assert training.input_workers == 12


@pytest.mark.parametrize(
    ("value", "expected"),
    [(False, False), (True, True), ("float16", "float16"), ("bfloat16", "bfloat16")],
)
def test_mixed_precision_takes_a_bool_or_a_16_bit_type(value, expected):
    assert load_configs(None, {"mixed_precision": value})[1].mixed_precision == expected


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("bfloat17", "training.mixed_precision: .*did you mean 'bfloat16'"),
        ("float32", "training.mixed_precision"),
        (16, "training.mixed_precision"),
    ],
)
def test_a_bad_mixed_precision_is_rejected_naming_it(value, named):
    with pytest.raises(ConfigError, match=named):
        load_configs(None, {"mixed_precision": value})


def test_warmup_steps_are_a_count_of_steps():
    assert load_configs(None, {"warmup_steps": 500})[1].warmup_steps == 500
    for bad in (-1, 1.5, True):
        with pytest.raises(ConfigError, match="training.warmup_steps"):
            load_configs(None, {"warmup_steps": bad})


def test_missing_keys_take_the_defaults():
    model, training = load_configs(None, {"epochs": 3})
    assert model == ModelConfig()
    assert training.epochs == 3 and training.learning_rate == 7e-5


def test_the_loss_choices_are_the_losses_module():
    assert typing.get_args(LossName) == LOSSES


@pytest.mark.parametrize(
    ("training", "named"),
    [
        ({"epoch": 3}, r"training\.epoch: unknown parameter \(did you mean training\.epochs\?\)"),
        ({"learning_rate": -1}, r"training\.learning_rate: must be > 0"),
        ({"learning_rate": "fast"}, r"training\.learning_rate: expected float"),
        ({"epochs": -1}, r"training\.epochs: must be >= 1"),
        ({"epochs": 2.5}, r"training\.epochs: expected int"),
        ({"epochs": True}, r"training\.epochs: expected int"),
        ({"batch_size": 0}, r"training\.batch_size: must be >= 1"),
        ({"crop_size": 10}, r"training\.crop_size: must be a multiple of 4"),
        ({"crop_size": 0}, r"training\.crop_size: must be >= 4"),
        ({"loss": "l2"}, r"training\.loss: expected one of \['carl', 'l1'\]"),
        ({"distribution": "gpu"}, r"training\.distribution: expected one of"),
        ({"if_finished": "ask"}, r"training\.if_finished: expected one of"),
        ({"steps_per_epoch": 0}, r"training\.steps_per_epoch: must be >= 1"),
        ({"keep_checkpoints": -2}, r"training\.keep_checkpoints: must be >= 1"),
        ({"beta_1": 1.0}, r"training\.beta_1: must be < 1"),
        ({"verbose": 3}, r"training\.verbose: must be <= 2"),
        ({"run_dir": "x"}, r"training\.run_dir: unknown parameter"),
    ],
)
def test_a_bad_training_parameter_is_rejected_naming_it(training, named):
    with pytest.raises(ConfigError, match=named):
        load_configs({}, training)


def test_every_fault_of_both_sections_in_one_error():
    with pytest.raises(ConfigError) as caught:
        load_configs({"filters": 3, "blocks": -1}, {"epochs": 0, "seed": -5})
    message = str(caught.value)
    for key in ("model.filters", "model.blocks", "training.epochs", "training.seed"):
        assert key in message, key


def test_configs_are_frozen():
    with pytest.raises(AttributeError):
        TrainingConfig().epochs = 3  # type: ignore[misc]


def test_model_uncertainty_is_none_or_aleatoric():
    assert load_configs(None, None)[0].uncertainty == "none"
    assert load_configs({"uncertainty": "aleatoric"}, None)[0].uncertainty == "aleatoric"
    assert typing.get_args(Uncertainty) == UNCERTAINTY_KINDS
    with pytest.raises(ConfigError, match=r"model\.uncertainty"):
        load_configs({"uncertainty": "epistemic"}, None)
