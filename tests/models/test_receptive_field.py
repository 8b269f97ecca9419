"""The one receptive-field function, proven independently: gradient support, impulse response,
and the hand formula (4 B + 5 px, + 6 px for SAR at 40 m repeated: 75 px for 16 blocks; + 10 px
for SAR interpolated bilinearly: 79 px)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tml_cloudremoval.models.dsen2cr import build_dsen2cr
from tml_cloudremoval.models.receptive_field import receptive_field, upsampling_reach


def _inputs(batch: int, h: int, w: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "optical": rng.uniform(0, 5, (batch, h, w, 10)).astype(np.float32),
        "sar": rng.uniform(0, 2, (batch, h // 4, w // 4, 2)).astype(np.float32),
    }


def _positive_network(blocks: int, sar_upsampling: str = "nearest") -> keras.Model:
    """All weights positive so every ReLU is active: gradients are nonzero on the whole field."""
    model = build_dsen2cr(
        features=2, blocks=blocks, sar_upsampling=sar_upsampling, tail_init="he_uniform"
    )
    for layer in model.layers:
        if layer.get_weights():
            layer.set_weights([np.full_like(w, 0.05) + 0.01 for w in layer.get_weights()])
    return model


@pytest.mark.parametrize("sar_upsampling", ["nearest", "bilinear"])
@pytest.mark.parametrize("blocks", [0, 1, 2])
def test_receptive_field_matches_gradient_support(blocks, sar_upsampling):
    model = _positive_network(blocks, sar_upsampling)
    size = 48
    x = {k: tf.constant(v) for k, v in _inputs(1, size, size).items()}
    widest_optical, widest_sar = 0, 0
    for offset in range(4):  # every alignment of the output pixel inside its 40 m block
        c = 20 + offset
        with tf.GradientTape() as tape:
            tape.watch(x["optical"])
            tape.watch(x["sar"])
            out = model(x)[0, c, c, 0]
        g_opt, g_sar = tape.gradient(out, [x["optical"], x["sar"]])
        rows = np.nonzero(np.abs(g_opt.numpy()[0]).sum(axis=(1, 2)))[0]
        widest_optical = max(widest_optical, rows.max() - rows.min() + 1)
        sar_rows = np.nonzero(np.abs(g_sar.numpy()[0]).sum(axis=(1, 2)))[0]
        # 10 m pixels covered by the influencing 40 m pixels, measured from the output pixel
        reach = max(c - 4 * sar_rows.min(), 4 * sar_rows.max() + 3 - c)
        widest_sar = max(widest_sar, 2 * reach + 1)
    assert widest_optical == 4 * blocks + 5  # 2 B + 2 convolutions of 3 x 3
    # the SAR reaches 3 px (a 4 x 4 block) or 5 px (two 40 m centres) beyond the 10 m pixel
    assert widest_sar == 4 * blocks + 5 + 2 * (3 if sar_upsampling == "nearest" else 5)
    assert max(widest_optical, widest_sar) == receptive_field(model)
    assert (
        receptive_field(build_dsen2cr(2, blocks, include_sar=False, tail_init="he_uniform"))
        == widest_optical
    )


@pytest.mark.parametrize(
    ("blocks", "sar"), [(0, True), (1, True), (3, True), (2, False), (16, True)]
)
def test_receptive_field_matches_the_hand_formula(blocks, sar):
    expected = 4 * blocks + 5 + (2 * (4 - 1) if sar else 0)
    assert (
        receptive_field(
            build_dsen2cr(features=2, blocks=blocks, include_sar=sar, tail_init="he_uniform")
        )
        == expected
    )
    bilinear = build_dsen2cr(
        features=2,
        blocks=blocks,
        include_sar=sar,
        sar_upsampling="bilinear",
        tail_init="he_uniform",
    )
    assert receptive_field(bilinear) == expected + (2 * 2 if sar else 0)
    if (blocks, sar) == (16, True):
        assert expected == 75 and receptive_field(bilinear) == 79


def _support_by_brute_force(size: int, half_width: int) -> int:
    """Farthest output pixel reached through the taps of a kernel with nonzero weight, by
    placing outputs and inputs on a line (float centres) and measuring distances."""
    reach = 0
    for j in range(4 * size, 5 * size):  # outputs far from the edges
        u = (j + 0.5) / size - 0.5
        for i in range(int(u) - half_width - 1, int(u) + half_width + 2):
            if abs(u - i) < half_width:
                reach = max(reach, *(abs(j - k) for k in range(size * i, size * i + size)))
    return reach


@pytest.mark.parametrize("size", [2, 3, 4, 5])
def test_upsampling_reach_matches_a_brute_force_walk(size):
    assert upsampling_reach(size, "nearest") == size - 1
    assert upsampling_reach(size, "bilinear") == _support_by_brute_force(size, 1)
    assert upsampling_reach(size, "bilinear") == size - 1 + size // 2
    assert upsampling_reach(size, "bicubic") == _support_by_brute_force(size, 2)
    with pytest.raises(ValueError, match="area"):
        upsampling_reach(size, "area")


def test_receptive_field_bounds_impulse_response():
    """Changing one input pixel changes no output beyond the radius."""
    keras.utils.set_random_seed(1)
    model = build_dsen2cr(features=8, blocks=1, tail_init="he_uniform")
    radius = receptive_field(model) // 2
    x = _inputs(1, 64, 64)
    base = model.predict_on_batch(x)[0]
    poked_o, poked_s = x["optical"].copy(), x["sar"].copy()
    poked_o[0, 32, 32] += 3.0
    poked_s[0, 8, 8] += 1.0  # the 40 m pixel over rows/cols 32..35
    out = model.predict_on_batch({"optical": poked_o, "sar": poked_s})[0]
    changed = np.argwhere(np.abs(out - base).max(axis=-1) > 0)
    assert len(changed) > 0
    assert changed.min() >= 32 - radius and changed.max() <= 35 + radius


def test_receptive_field_of_other_graphs():
    """Dilation, stride and a second branch: the walk is not tied to DSen2-CR."""
    x = keras.Input((None, None, 1), name="optical")
    a = keras.layers.Conv2D(1, 3, dilation_rate=2, padding="same")(x)  # +2 per side
    b = keras.layers.Conv2D(1, 5, padding="same")(x)  # +2 per side
    y = keras.layers.Add()([a, b])
    y = keras.layers.Conv2D(1, 3, strides=2, padding="same")(y)  # +1 per side at 10 m
    y = keras.layers.Conv2D(1, 3, padding="same")(y)  # +1 per side at 20 m = +2 at 10 m
    assert receptive_field(keras.Model(x, y)) == 2 * (2 + 1 + 2) + 1
