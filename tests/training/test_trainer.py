"""The training wrapper: CARL / L1 and metrics against plain numpy, config round trip, export."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tml_cloudremoval.models.dsen2cr import build_dsen2cr
from tml_cloudremoval.training.config import ModelConfig
from tml_cloudremoval.training.trainer import (
    TO_REFLECTANCE,
    CloudRemovalTrainer,
    dummy_inputs,
    export_network,
)


def _weights(model: keras.Model) -> list[np.ndarray]:
    return [np.asarray(w) for w in model.get_weights()]


def _batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    shape = (3, 8, 8, 10)
    x = {"optical": rng.uniform(0, 5, shape).astype(np.float32)}
    y = {
        "target": rng.uniform(0, 5, shape).astype(np.float32),
        "mask": (rng.uniform(0, 1, (*shape[:3], 1)) > 0.5).astype(np.float32),
    }
    return x, y, rng.uniform(0, 5, shape).astype(np.float32)


def test_carl_and_l1_losses_match_plain_numpy():
    x, y, pred = _batch()
    network = build_dsen2cr(4, 1, tail_init="he_uniform")
    m, target, cloudy = y["mask"], y["target"], x["optical"]
    carl = np.mean((1 - m) * np.abs(pred - cloudy) + m * np.abs(pred - target))
    carl += 0.5 * np.mean(np.abs(pred - target))
    trainer = CloudRemovalTrainer(network, "carl", 0.5)
    assert float(trainer.compute_loss(x, y, pred)) == pytest.approx(carl, rel=1e-5)
    l1 = CloudRemovalTrainer(network, "l1")
    assert float(l1.compute_loss(x, y, pred)) == pytest.approx(
        np.mean(np.abs(pred - target)), rel=1e-5
    )


def test_metrics_are_mae_in_reflectance_overall_and_on_covered_pixels():
    x, y, pred = _batch(1)
    trainer = CloudRemovalTrainer(build_dsen2cr(4, 1, tail_init="he_uniform"))
    logs = trainer.compute_metrics(x, y, pred)
    per_pixel = np.abs(pred - y["target"]).mean(axis=-1) * 0.2  # (B, H, W), reflectance
    mask = y["mask"][..., 0]
    assert TO_REFLECTANCE == pytest.approx(0.2)
    assert float(logs["mae"]) == pytest.approx(per_pixel.mean(), rel=1e-5)
    assert float(logs["covered_mae"]) == pytest.approx(
        (per_pixel * mask).sum() / mask.sum(), rel=1e-5
    )


def test_trainer_config_round_trip_and_unknown_loss():
    network = build_dsen2cr(4, 1, tail_init="he_uniform")
    trainer = CloudRemovalTrainer(network, "l1", 0.5)
    clone = CloudRemovalTrainer.from_config(trainer.get_config())
    assert clone.loss_name == "l1" and clone.carl_lambda == 0.5
    assert clone.network.count_params() == network.count_params()
    with pytest.raises(ValueError, match="not one of"):
        CloudRemovalTrainer(network, "l2")


def test_dummy_inputs_build_a_network_with_and_without_sar():
    with_sar = dummy_inputs(True)
    assert with_sar["optical"].shape == (1, 8, 8, 10) and with_sar["sar"].shape == (1, 2, 2, 2)
    assert set(dummy_inputs(False)) == {"optical"}
    out = build_dsen2cr(4, 1, include_sar=False, tail_init="he_uniform")(dummy_inputs(False))
    assert tuple(out.shape) == (1, 8, 8, 10)


def test_export_of_a_mixed_precision_network_is_float32():
    mixed = build_dsen2cr(8, 1, dtype="mixed_float16", tail_init="he_uniform")
    product = export_network(mixed, ModelConfig(8, 1))
    assert product is not mixed
    assert {layer.dtype_policy.name for layer in product.layers} == {"float32"}
    for a, b in zip(_weights(mixed), _weights(product), strict=True):
        np.testing.assert_array_equal(a, b)
    plain = build_dsen2cr(8, 1, tail_init="he_uniform")
    assert export_network(plain, ModelConfig(8, 1)) is plain


def test_aleatoric_network_is_trained_with_the_nll_and_logs_its_std():
    x, y, pred = _batch(2)
    log_scale = np.random.default_rng(3).uniform(-4, 0, pred.shape).astype(np.float32)
    y_pred = {"prediction": pred, "log_scale": log_scale}
    network = build_dsen2cr(4, 1, uncertainty="aleatoric")
    m, target, cloudy = y["mask"], y["target"], x["optical"]
    b = np.exp(log_scale.astype(np.float64))
    terms = (1 - m) * np.abs(pred - cloudy) + (m + 0.5) * np.abs(pred - target)
    carl_nll = np.mean(terms + 1.5 * b * log_scale)  # b (terms / b + 1.5 s): beta-NLL, beta 1
    trainer = CloudRemovalTrainer(network, "carl", 0.5)
    assert trainer.aleatoric
    assert float(trainer.compute_loss(x, y, y_pred)) == pytest.approx(carl_nll, rel=1e-5)
    l1 = CloudRemovalTrainer(network, "l1")
    l1_nll = np.mean(np.abs(pred - target) + b * log_scale)
    assert float(l1.compute_loss(x, y, y_pred)) == pytest.approx(l1_nll, rel=1e-5)

    logs = trainer.compute_metrics(x, y, y_pred)
    assert float(logs["mae"]) == pytest.approx(np.abs(pred - target).mean() * 0.2, rel=1e-5)
    assert float(logs["std"]) == pytest.approx(np.mean(np.sqrt(2) * b * 0.2), rel=1e-5)
    assert "std" not in CloudRemovalTrainer(build_dsen2cr(4, 1)).compute_metrics(x, y, pred)


def test_aleatoric_trainer_config_round_trip_and_float32_export():
    network = build_dsen2cr(4, 1, uncertainty="aleatoric")
    clone = CloudRemovalTrainer.from_config(CloudRemovalTrainer(network).get_config())
    assert clone.aleatoric and clone.network.count_params() == network.count_params()
    mixed = build_dsen2cr(8, 1, dtype="mixed_float16", uncertainty="aleatoric")
    product = export_network(mixed, ModelConfig(8, 1, uncertainty="aleatoric"))
    assert {layer.dtype_policy.name for layer in product.layers} == {"float32"}
    assert set(product(dummy_inputs(True))) == {"prediction", "log_scale"}
    for a, b in zip(_weights(mixed), _weights(product), strict=True):
        np.testing.assert_array_equal(a, b)
