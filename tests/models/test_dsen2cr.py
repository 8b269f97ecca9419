"""DSen2-CR network: parameter count, shapes, long skip, SAR upsampling, saving; the aleatoric
head."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from tml_cloudremoval.models.dsen2cr import build_dsen2cr, count_parameters
from tml_cloudremoval.models.receptive_field import receptive_field
from tml_cloudremoval.models.uncertainty import LOG_SCALE_OUTPUT, LOG_SCALE_RANGE, PREDICTION_OUTPUT


def _inputs(batch: int, h: int, w: int, seed: int = 0, sar: bool = True) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = {"optical": rng.uniform(0, 5, (batch, h, w, 10)).astype(np.float32)}
    if sar:
        x["sar"] = rng.uniform(0, 2, (batch, h // 4, w // 4, 2)).astype(np.float32)
    return x


def test_default_parameter_count_matches_hand_formula():
    f, b, o, s = 64, 16, 10, 2
    head = 3 * 3 * (o + s) * f + f
    blocks = b * 2 * (3 * 3 * f * f + f)
    tail = 3 * 3 * f * o + o
    expected = head + blocks + tail
    assert expected == 1_194_442
    model = build_dsen2cr()
    assert model.count_params() == expected
    assert count_parameters() == expected


def test_parameter_count_without_sar_and_other_sizes():
    assert build_dsen2cr(8, 2, include_sar=False, tail_init="he_uniform").count_params() == (
        9 * 10 * 8 + 8 + 2 * 2 * (9 * 8 * 8 + 8) + 9 * 8 * 10 + 10
    )
    assert build_dsen2cr(16, 3, tail_init="he_uniform").count_params() == count_parameters(16, 3)


@pytest.mark.parametrize(("batch", "h", "w"), [(1, 32, 32), (3, 20, 44), (2, 256, 256)])
def test_any_batch_and_image_size(batch, h, w):
    model = build_dsen2cr(features=8, blocks=1, tail_init="he_uniform")
    out = model(_inputs(batch, h, w))
    assert tuple(out.shape) == (batch, h, w, 10)
    assert out.dtype == tf.float32


def test_no_lambda_layers_and_he_uniform_channels_last():
    model = build_dsen2cr(features=8, blocks=2, tail_init="he_uniform")
    kinds = {type(layer).__name__ for layer in model.layers}
    assert "Lambda" not in kinds
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 2 * 2 + 2
    for conv in convs:
        assert conv.data_format == "channels_last"
        assert conv.kernel_size == (3, 3)
        assert type(conv.kernel_initializer).__name__ == "HeUniform"


def test_long_skip_returns_the_optical_input_when_the_tail_is_zero():
    model = build_dsen2cr(features=8, blocks=1, tail_init="he_uniform")
    tail = model.get_layer("tail")
    tail.set_weights([np.zeros_like(w) for w in tail.get_weights()])
    x = _inputs(2, 16, 16)
    np.testing.assert_array_equal(model(x).numpy(), x["optical"])


def test_sar_is_repeated_onto_its_4x4_block():
    model = build_dsen2cr(features=4, blocks=0, tail_init="he_uniform")
    probe = keras.Model(model.inputs, model.get_layer("sar_to_10m").output)
    x = _inputs(1, 8, 12)
    up = probe(x).numpy()[0]
    expected = np.repeat(np.repeat(x["sar"][0], 4, axis=0), 4, axis=1)
    np.testing.assert_array_equal(up, expected)


def _bilinear_at_10m_centres(sar_40m: np.ndarray) -> np.ndarray:
    """Independent bilinear interpolation (np.interp, separable) of (h, w, c) 40 m pixels at the
    10 m pixel centres: 40 m pixel i covers 10 m pixels 4i..4i+3, its centre at 4i + 1.5;
    beyond the outermost centres the edge value holds (as np.interp does)."""
    h, w, c = sar_40m.shape
    centres_h, centres_w = 4 * np.arange(h) + 1.5, 4 * np.arange(w) + 1.5
    rows = np.arange(4 * h, dtype=np.float64)
    cols = np.arange(4 * w, dtype=np.float64)
    along_rows = np.stack(
        [
            np.stack([np.interp(rows, centres_h, sar_40m[:, j, k]) for j in range(w)], axis=1)
            for k in range(c)
        ],
        axis=-1,
    )  # (4h, w, c)
    return np.stack(
        [
            np.stack([np.interp(cols, centres_w, along_rows[r, :, k]) for r in range(4 * h)])
            for k in range(c)
        ],
        axis=-1,
    )


def test_bilinear_sar_upsampling_interpolates_between_40m_pixel_centres():
    model = build_dsen2cr(features=4, blocks=0, sar_upsampling="bilinear", tail_init="he_uniform")
    probe = keras.Model(model.inputs, model.get_layer("sar_to_10m").output)
    x = _inputs(1, 24, 32)
    ii, jj = np.mgrid[0:6, 0:8].astype(np.float32)
    x["sar"][0] = np.stack([0.1 * ii + 0.02 * jj, 1.5 - 0.05 * ii + 0.07 * jj], axis=-1)
    up = probe(x).numpy()[0]
    # A ramp on the 40 m grid is the same ramp at the 10 m centres, in 40 m pixel units:
    # 10 m pixel p lies at (p - 1.5) / 4; in the interior (between outermost centres) exactly.
    p, q = np.mgrid[0:24, 0:32].astype(np.float64)
    u, v = (p - 1.5) / 4, (q - 1.5) / 4
    ramp = np.stack([0.1 * u + 0.02 * v, 1.5 - 0.05 * u + 0.07 * v], axis=-1)
    interior = (slice(2, 22), slice(2, 30))  # 10 m pixels between the outermost 40 m centres
    np.testing.assert_allclose(up[interior], ramp[interior], atol=1e-5)
    np.testing.assert_allclose(up, _bilinear_at_10m_centres(x["sar"][0]), atol=1e-5)
    # and on a rough field, against the independent interpolation everywhere (edges clamp)
    x = _inputs(1, 24, 32, seed=5)
    np.testing.assert_allclose(
        probe(x).numpy()[0], _bilinear_at_10m_centres(x["sar"][0]), atol=1e-5
    )


def test_an_unknown_sar_upsampling_is_refused():
    with pytest.raises(ValueError, match="sar_upsampling must be one of"):
        build_dsen2cr(features=4, blocks=0, sar_upsampling="bicubic", tail_init="he_uniform")


def test_bilinear_model_saves_and_loads_in_safe_mode(tmp_path):
    model = build_dsen2cr(features=4, blocks=1, sar_upsampling="bilinear", tail_init="he_uniform")
    assert model.count_params() == count_parameters(4, 1)  # the interpolation has no weights
    model.save(tmp_path / "bilinear.keras")
    loaded = keras.saving.load_model(tmp_path / "bilinear.keras", safe_mode=True)
    assert loaded.get_layer("sar_to_10m").interpolation == "bilinear"
    x = _inputs(2, 16, 20, seed=4)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), atol=1e-6)


def test_without_sar_the_model_takes_only_optical():
    model = build_dsen2cr(features=4, blocks=1, include_sar=False, tail_init="he_uniform")
    assert [t.name for t in model.inputs] == ["optical"]
    assert model(_inputs(1, 8, 8, sar=False)).shape == (1, 8, 8, 10)


def test_saved_model_loads_in_safe_mode_in_a_fresh_process(tmp_path):
    model = build_dsen2cr(features=8, blocks=2, tail_init="he_uniform")
    path = tmp_path / "model.keras"
    model.save(path)
    x = _inputs(3, 256, 256, seed=3)
    np.savez(tmp_path / "x.npz", **x)
    np.save(tmp_path / "expected.npy", model.predict(x, verbose=0))
    script = textwrap.dedent(
        f"""
        import numpy as np, keras
        model = keras.saving.load_model({str(path)!r}, safe_mode=True)
        x = dict(np.load({str(tmp_path / "x.npz")!r}))
        expected = np.load({str(tmp_path / "expected.npy")!r})
        one = model.predict({{k: v[:1] for k, v in x.items()}}, verbose=0)
        three = model.predict(x, batch_size=3, verbose=0)
        assert one.shape == (1, 256, 256, 10) and three.shape == (3, 256, 256, 10)
        np.testing.assert_allclose(three, expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(one, expected[:1], rtol=1e-5, atol=1e-5)
        print("OK")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("OK")


def test_mixed_precision_build_keeps_the_output_float32():
    model = build_dsen2cr(features=8, blocks=1, dtype="mixed_float16", tail_init="he_uniform")
    assert model.get_layer("block0_conv1").compute_dtype == "float16"
    assert model.get_layer("tail").compute_dtype == "float32"
    assert model(_inputs(1, 16, 16)).dtype == tf.float32


def test_the_untrained_default_model_is_the_identity_and_the_seed_init_is_not():
    """tail_init zeros: output = cloudy input exactly, whatever the SAR; he_uniform (the seed's
    initialisation) adds a random correction of the order of the input (the colour noise)."""
    rng = np.random.default_rng(0)
    inputs = {
        "optical": rng.uniform(0, 2, (2, 16, 16, 10)).astype("float32"),
        "sar": rng.uniform(0, 2, (2, 4, 4, 2)).astype("float32"),
    }
    identity = build_dsen2cr(features=8, blocks=2)
    assert identity.get_layer("tail").kernel_initializer.__class__.__name__ == "Zeros"
    np.testing.assert_array_equal(np.asarray(identity(inputs)), inputs["optical"])
    seeded = build_dsen2cr(features=8, blocks=2, tail_init="he_uniform")
    correction = np.asarray(seeded(inputs)) - inputs["optical"]
    assert np.abs(correction).mean() > 0.05  # model units: 0.01 reflectance
    with pytest.raises(ValueError, match="tail_init must be one of"):
        build_dsen2cr(features=8, blocks=1, tail_init="ones")


def test_uncertainty_none_is_todays_model_layer_for_layer():
    plain, none = (
        build_dsen2cr(8, 2, tail_init="he_uniform"),
        build_dsen2cr(8, 2, uncertainty="none", tail_init="he_uniform"),
    )
    assert [layer.name for layer in none.layers] == [layer.name for layer in plain.layers]
    assert none.count_params() == plain.count_params() == count_parameters(8, 2)
    with pytest.raises(ValueError, match="uncertainty must be one of"):
        build_dsen2cr(8, 1, uncertainty="epistemic", tail_init="he_uniform")


def test_aleatoric_head_costs_one_tail_sized_convolution():
    f, o = 64, 10
    head = 9 * f * o + o
    assert head == 5770
    model = build_dsen2cr(uncertainty="aleatoric", tail_init="he_uniform")
    assert model.count_params() == 1_194_442 + head == count_parameters(uncertainty="aleatoric")
    small = build_dsen2cr(8, 1, include_sar=False, uncertainty="aleatoric", tail_init="he_uniform")
    assert small.count_params() == count_parameters(
        8, 1, include_sar=False, uncertainty="aleatoric"
    )
    assert small.count_params() - build_dsen2cr(
        8, 1, include_sar=False, tail_init="he_uniform"
    ).count_params() == (9 * 8 * 10 + 10)


def test_aleatoric_outputs_are_named_float32_and_bounded():
    model = build_dsen2cr(features=8, blocks=1, uncertainty="aleatoric", tail_init="he_uniform")
    out = model(_inputs(2, 16, 24))
    assert set(out) == {PREDICTION_OUTPUT, LOG_SCALE_OUTPUT}
    for value in out.values():
        assert tuple(value.shape) == (2, 16, 24, 10) and value.dtype == tf.float32
    # Saturate the head's sigmoid both ways: log_scale reaches exactly the ends of the range.
    conv = model.get_layer("log_scale_conv")
    kernel, bias = conv.get_weights()
    for sign, end in ((1.0, LOG_SCALE_RANGE[1]), (-1.0, LOG_SCALE_RANGE[0])):
        conv.set_weights([np.zeros_like(kernel), np.full_like(bias, sign * 50.0)])
        np.testing.assert_allclose(model(_inputs(1, 8, 8))[LOG_SCALE_OUTPUT], end, atol=1e-5)
    conv.set_weights([np.zeros_like(kernel), np.zeros_like(bias)])  # sigmoid(0) = 1/2: the middle
    np.testing.assert_allclose(
        model(_inputs(1, 8, 8))[LOG_SCALE_OUTPUT], sum(LOG_SCALE_RANGE) / 2, atol=1e-5
    )


def test_aleatoric_prediction_equals_the_plain_model_with_the_same_weights():
    aleatoric = build_dsen2cr(8, 2, uncertainty="aleatoric", tail_init="he_uniform")
    plain = build_dsen2cr(8, 2, tail_init="he_uniform")
    for layer in plain.layers:
        layer.set_weights(aleatoric.get_layer(layer.name).get_weights())
    x = _inputs(2, 16, 16, seed=4)
    np.testing.assert_allclose(aleatoric(x)[PREDICTION_OUTPUT], plain(x), rtol=1e-6, atol=1e-6)
    assert receptive_field(aleatoric) == receptive_field(plain) == 4 * 2 + 11


def test_aleatoric_mixed_precision_keeps_both_outputs_float32():
    model = build_dsen2cr(
        8, 1, dtype="mixed_float16", uncertainty="aleatoric", tail_init="he_uniform"
    )
    assert model.get_layer("block0_conv1").compute_dtype == "float16"
    assert model.get_layer("log_scale_conv").compute_dtype == "float32"
    out = model(_inputs(1, 16, 16))
    assert {v.dtype for v in out.values()} == {tf.float32}


def test_saved_aleatoric_model_loads_in_safe_mode_in_a_fresh_process(tmp_path):
    model = build_dsen2cr(features=8, blocks=1, uncertainty="aleatoric", tail_init="he_uniform")
    path = tmp_path / "model.keras"
    model.save(path)
    x = _inputs(2, 32, 32, seed=5)
    np.savez(tmp_path / "x.npz", **x)
    expected = model.predict(x, verbose=0)
    np.savez(tmp_path / "expected.npz", **expected)
    script = textwrap.dedent(
        f"""
        import numpy as np, keras
        model = keras.saving.load_model({str(path)!r}, safe_mode=True)
        x = dict(np.load({str(tmp_path / "x.npz")!r}))
        expected = dict(np.load({str(tmp_path / "expected.npz")!r}))
        out = model.predict(x, verbose=0)
        assert sorted(out) == ["log_scale", "prediction"], sorted(out)
        for name in out:
            np.testing.assert_allclose(out[name], expected[name], rtol=1e-5, atol=1e-5)
        print("OK")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("OK")
