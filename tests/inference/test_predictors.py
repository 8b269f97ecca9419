"""Predictors on arrays: the uncertainty of an aleatoric model and of an ensemble, tiled and
blended like the prediction, against whole-image numpy; the plain model's path unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from support.aleatoric_model import build_aleatoric_dsen2cr

from tml_cloudremoval.inference.engine import keras_predictor, predict_array
from tml_cloudremoval.inference.predictors import (
    ALEATORIC,
    EPISTEMIC,
    PREDICTION,
    is_aleatoric,
    model_predictor,
    output_parts,
    predict_array_parts,
    split_parts,
    std_of_variance,
)
from tml_cloudremoval.models.dsen2cr import build_dsen2cr

HEIGHT, WIDTH = 118, 90  # not multiples of 4: padded by edge replication


@pytest.fixture(scope="module")
def image() -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(optical, sar, padded optical, whole-image inputs) in model units."""
    rng = np.random.default_rng(3)
    optical = rng.uniform(0, 5, (HEIGHT, WIDTH, 10)).astype(np.float32)
    sar = rng.uniform(0, 2, (30, 23, 2)).astype(np.float32)
    padded = np.pad(optical, ((0, 2), (0, 2), (0, 0)), mode="edge")
    return optical, sar, padded, {"optical": padded[None], "sar": sar[None]}


def _std(log_scale: np.ndarray) -> np.ndarray:
    """The Laplace standard deviation in reflectance, by hand: sqrt(2) b x 2000 / 10000."""
    return np.sqrt(2.0) * np.exp(log_scale.astype(np.float64)) * 2000.0 / 10000.0


@pytest.mark.parametrize(("tile", "batch"), [(32, 1), (48, 3), (200, 1)])
def test_tiled_uncertainty_equals_whole_image(aleatoric, image, tile, batch):
    optical, sar, _, whole_inputs = image
    whole = aleatoric.predict_on_batch(whole_inputs)
    parts = predict_array_parts(aleatoric, optical, sar, tile_size=tile, batch_size=batch)
    assert list(parts) == [PREDICTION, ALEATORIC]
    want = _std(whole["log_scale"][0])[:HEIGHT, :WIDTH]
    assert parts[ALEATORIC].shape == (HEIGHT, WIDTH, 10) and parts[ALEATORIC].dtype == np.float32
    assert want.std() > 0.1 * want.mean()  # the head varies: a constant would prove little
    np.testing.assert_allclose(parts[ALEATORIC], want, rtol=1e-4, atol=0)
    np.testing.assert_allclose(
        parts[PREDICTION], whole["prediction"][0][:HEIGHT, :WIDTH], atol=2e-5, rtol=0
    )


def test_plain_model_keeps_its_predictor_and_rows(model, aleatoric, image):
    optical, sar, _, _ = image
    predict, parts = model_predictor([model])
    assert parts == (PREDICTION,) and not is_aleatoric(model) and is_aleatoric(aleatoric)
    plain = predict_array(model, optical, sar, tile_size=48)
    via_parts = predict_array_parts(model, optical, sar, tile_size=48)
    assert list(via_parts) == [PREDICTION]
    np.testing.assert_array_equal(via_parts[PREDICTION], plain)  # bit for bit
    # the aleatoric twin shares the trunk: its prediction is the plain model's, bit for bit
    twin = predict_array_parts(aleatoric, optical, sar, tile_size=48)[PREDICTION]
    np.testing.assert_array_equal(twin, plain)
    # keras_predictor of a dict model gives its prediction alone
    x = optical[None, :64, :64]
    out = keras_predictor(aleatoric)(x, sar[None, :16, :16])
    assert out.shape == (1, 64, 64, 10)
    np.testing.assert_array_equal(out, predict(x, sar[None, :16, :16]))


@pytest.fixture(scope="module")
def members(model) -> list:
    import keras

    out = [model]
    for seed in (11, 12):
        keras.utils.set_random_seed(seed)
        out.append(build_dsen2cr(features=8, blocks=1, tail_init="he_uniform"))
    return out


def test_ensemble_mean_and_spread_against_numpy(members, image):
    optical, sar, _, whole_inputs = image
    preds = np.stack([m.predict_on_batch(whole_inputs)[0][:HEIGHT, :WIDTH] for m in members])
    parts = predict_array_parts(members, optical, sar, tile_size=48, batch_size=2)
    assert list(parts) == [PREDICTION, EPISTEMIC]
    np.testing.assert_allclose(parts[PREDICTION], preds.mean(axis=0), atol=2e-5, rtol=0)
    spread = np.std(preds.astype(np.float64) * 2000.0 / 10000.0, axis=0)  # reflectance, ddof 0
    assert spread.mean() > 1e-3
    np.testing.assert_allclose(parts[EPISTEMIC], spread, atol=2e-5, rtol=1e-3)


def test_ensemble_of_aleatoric_models_pools_their_variances(aleatoric, image):
    import keras

    optical, sar, _, whole_inputs = image
    keras.utils.set_random_seed(21)
    second = build_aleatoric_dsen2cr(features=8, blocks=1)
    outs = [m.predict_on_batch(whole_inputs) for m in (aleatoric, second)]
    parts = predict_array_parts([aleatoric, second], optical, sar, tile_size=64)
    assert list(parts) == [PREDICTION, ALEATORIC, EPISTEMIC]
    variances = np.stack([_std(o["log_scale"][0]) ** 2 for o in outs])[:, :HEIGHT, :WIDTH]
    np.testing.assert_allclose(parts[ALEATORIC], np.sqrt(variances.mean(0)), rtol=1e-4)
    preds = np.stack([o["prediction"][0] for o in outs])[:, :HEIGHT, :WIDTH].astype(np.float64)
    np.testing.assert_allclose(parts[EPISTEMIC], preds.std(0) * 0.2, atol=2e-5, rtol=1e-3)


def test_parts_of_a_mix_are_refused(model, aleatoric):
    assert output_parts([aleatoric]) == (PREDICTION, ALEATORIC)
    assert output_parts([model, model]) == (PREDICTION, EPISTEMIC)
    with pytest.raises(ValueError, match="mixes aleatoric and plain"):
        output_parts([model, aleatoric])
    with pytest.raises(ValueError, match="with and without SAR"):
        output_parts(
            [model, build_dsen2cr(features=4, blocks=0, include_sar=False, tail_init="he_uniform")]
        )


def test_std_of_variance_and_split():
    values = np.array([[[4.0, 0.25, -1e-9]]], np.float32)
    np.testing.assert_array_equal(std_of_variance(values, None), [[[2.0, 0.5, 0.0]]])
    out = std_of_variance(np.ones((2, 2, 1), np.float32), np.array([[True, False], [True, True]]))
    assert np.isnan(out[0, 1, 0]) and (out[[0, 1, 1], [0, 0, 1], 0] == 1).all()
    stacked = np.arange(2 * 20, dtype=np.float32).reshape(1, 2, 20)
    split = split_parts(stacked, (PREDICTION, ALEATORIC))
    np.testing.assert_array_equal(split[ALEATORIC], stacked[..., 10:])
    with pytest.raises(ValueError, match="channels"):
        split_parts(stacked, (PREDICTION,))
