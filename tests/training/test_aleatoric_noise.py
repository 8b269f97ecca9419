"""The aleatoric head learns a known noise level: targets are the input plus Laplace noise whose
scale b differs between the bands and between the two halves of each image (the SAR tells the
halves apart)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tml_cloudremoval.models.dsen2cr import build_dsen2cr
from tml_cloudremoval.training.trainer import CloudRemovalTrainer

SIZE = 32
BAND_SCALE = np.geomspace(0.03, 0.1, 10)
"""b of each band in the left half, model units (60 to 200 DN, 0.006 to 0.02 reflectance)."""
HALF_FACTOR = (1.0, 4.0)
"""b of the right half = 4 x b of the left half."""
TOLERANCE = 0.25
"""Median predicted b within 25 % of the true b, in each half and each band (seeds 0-6 of this
set-up came within 8.3 %)."""


def _data(n: int, rng: np.random.Generator):
    """(x, y, b): random optical input, SAR 1 on the right half and 0 on the left (the only cue
    to the noise level), target = input + Laplace(0, b) with b (W, C); every pixel covered, so
    CARL-NLL pulls everything to the target and its best b is E|P - T| = b at P = input."""
    optical = rng.uniform(0.2, 0.8, (n, SIZE, SIZE, 10))
    sar = np.zeros((n, SIZE // 4, SIZE // 4, 2))
    sar[:, :, SIZE // 8 :] = 1.0
    right = (np.arange(SIZE) >= SIZE // 2).astype(int)
    b = BAND_SCALE[None, :] * np.asarray(HALF_FACTOR)[right][:, None]
    target = optical + rng.laplace(0.0, 1.0, optical.shape) * b
    x = {"optical": optical.astype(np.float32), "sar": sar.astype(np.float32)}
    y = {"target": target.astype(np.float32), "mask": np.ones((n, SIZE, SIZE, 1), np.float32)}
    return x, y, b


@pytest.mark.slow
def test_trained_head_recovers_the_noise_scale_per_band_and_half():
    """400 steps of CloudRemovalTrainer (CARL beta-NLL, the project's loss for an aleatoric
    model) on a 1-block, 8-feature aleatoric DSen2-CR, prediction and head trained together."""
    keras.utils.set_random_seed(0)
    x, y, _ = _data(64, np.random.default_rng(0))
    network = build_dsen2cr(features=8, blocks=1, uncertainty="aleatoric")
    trainer = CloudRemovalTrainer(network, "carl", 1.0)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-2))
    data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(64, seed=0).repeat().batch(8)
    trainer.fit(data, steps_per_epoch=400, epochs=1, verbose=0)

    x_test, _, b_true = _data(8, np.random.default_rng(1))
    out = network.predict(x_test, verbose=0)
    # The prediction learnt the median (the input) to well under the smallest b (0.03) ...
    assert np.mean(np.abs(out["prediction"] - x_test["optical"])) < 0.01
    b_pred = np.exp(out["log_scale"])
    for half in (slice(0, SIZE // 2), slice(SIZE // 2, None)):
        median = np.median(b_pred[:, :, half, :], axis=(0, 1, 2))  # per band
        ratio = median / b_true[half][0]
        assert np.all(np.abs(ratio - 1) < TOLERANCE), ratio
    left, right = np.median(b_pred[:, :, : SIZE // 2]), np.median(b_pred[:, :, SIZE // 2 :])
    assert 3.0 < right / left < 5.3  # ... and the head tells the halves apart (4 x)
