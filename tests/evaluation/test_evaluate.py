"""Streaming evaluation over a patch store, with tiny Keras models of the DSen2-CR contract."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pandas as pd
import pytest

from tml_cloudremoval.bands import SAR_FACTOR, TML_BAND_NAMES
from tml_cloudremoval.data.patch_store import PatchStore, write_patch_store
from tml_cloudremoval.evaluation.evaluate import evaluate_store, headline, predict_dn
from tml_cloudremoval.evaluation.examples import example_data, select_examples
from tml_cloudremoval.models.dsen2cr import build_dsen2cr

SIZE = 32


def make_store(path, masks: list[np.ndarray], seed: int = 0) -> PatchStore:
    """A store of synthetic SIZE x SIZE patches, one per mask (cloud: +4000 DN)."""
    rng = np.random.default_rng(seed)
    n = len(masks)
    samples = []
    for mask in masks:
        target = rng.integers(300, 3000, (SIZE, SIZE, 10)).astype(np.uint16)
        cloudy = target + mask[..., None].astype(np.uint16) * np.uint16(4000)
        s1 = rng.uniform(-20, -5, (SIZE // SAR_FACTOR, SIZE // SAR_FACTOR, 2)).astype(np.float32)
        samples.append({"s2_cloudy": cloudy, "s2": target, "s1": s1, "mask": mask.astype(np.uint8)})
    index = pd.DataFrame(
        {"scene_id": [f"ROIs1_spring_{i}" for i in range(n)], "patch": [f"p{i}" for i in range(n)]}
    )
    write_patch_store(path, samples, n, SIZE, SIZE, index)
    return PatchStore.open(path)


def default_masks() -> list[np.ndarray]:
    half = np.zeros((SIZE, SIZE), np.uint8)
    half[:, : SIZE // 2] = 1
    blob = np.zeros((SIZE, SIZE), np.uint8)
    blob[8:20, 4:28] = 1
    return [np.zeros((SIZE, SIZE), np.uint8), np.ones((SIZE, SIZE), np.uint8), half, blob, half.T]


def tiny_model(scale: float = 1.0, offset: float = 0.0) -> keras.Model:
    """output = scale * optical + offset (normalised units), with an all-zero SAR branch."""
    optical = keras.Input((None, None, 10), name="optical")
    sar = keras.Input((None, None, 2), name="sar")
    up = keras.layers.UpSampling2D(SAR_FACTOR)(sar)
    zero = keras.layers.Conv2D(10, 1, kernel_initializer="zeros", bias_initializer="zeros")(up)
    out = keras.layers.Rescaling(scale, offset=offset)(optical)
    return keras.Model({"optical": optical, "sar": sar}, keras.layers.Add()([out, zero]))


def assert_same_figures(a: dict | None, b: dict | None, rel: float = 1e-6) -> None:
    """Region figures equal up to ``rel``; None (no figure) must match None."""
    assert (a is None) == (b is None)
    if a is None:
        return
    assert a.keys() == b.keys()
    for key in a:
        if a[key] is None or b[key] is None:
            assert a[key] is b[key], key
        else:
            assert a[key] == pytest.approx(b[key], rel=rel, abs=1e-12), key


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> PatchStore:
    return make_store(tmp_path_factory.mktemp("store") / "test", default_masks())


def test_identity_model_equals_cloudy_baseline(store):
    metrics, per_patch = evaluate_store(tiny_model(), store, batch_size=2)
    model, base = metrics["model"], metrics["baseline_cloudy_input"]
    for region in ("all", "covered"):
        assert_same_figures(model[region], base[region])
    assert model["per_band_rmse"] == pytest.approx(base["per_band_rmse"], rel=1e-6)
    assert model["clear"]["mae"] < 1e-8  # float32 round trip DN -> model units -> DN
    np.testing.assert_allclose(per_patch["model_mae_all"], per_patch["baseline_mae_all"], atol=1e-8)
    # the cloudy input equals the target on clear pixels
    assert base["clear"]["mae"] == 0 and base["clear"]["psnr"] is None
    assert any("clear: RMSE is 0" in note for note in metrics["notes"])


def test_constant_model_against_direct_numpy(store):
    """Prediction 0.5 model units = 1000 DN = reflectance 0.1 everywhere."""
    metrics, _ = evaluate_store(tiny_model(scale=0.0, offset=0.5), store, batch_size=3)
    target = np.asarray(store.s2, dtype=np.float64) / 10000
    covered = np.asarray(store.mask) == 1
    err = 0.1 - target
    assert metrics["model"]["all"]["mae"] == pytest.approx(np.abs(err).mean(), rel=1e-5)
    assert metrics["model"]["covered"]["mae"] == pytest.approx(
        np.abs(err[covered]).mean(), rel=1e-5
    )
    assert metrics["model"]["clear"]["rmse"] == pytest.approx(
        math.sqrt(np.square(err[~covered]).mean()), rel=1e-5
    )
    rmse_b8 = math.sqrt(np.square(err[..., TML_BAND_NAMES.index("B8")]).mean())
    assert metrics["model"]["per_band_rmse"]["B8"] == pytest.approx(rmse_b8, rel=1e-5)
    cloudy = np.clip(np.asarray(store.s2_cloudy, np.float64), 0, 10000) / 10000
    base_cov = np.abs(cloudy - target)[covered].mean()
    assert metrics["baseline_cloudy_input"]["covered"]["mae"] == pytest.approx(base_cov, rel=1e-5)
    n_cov = int(covered.sum())
    assert metrics["model"]["covered"]["n_pixels"] == n_cov
    assert metrics["model"]["covered"]["n_patches"] == 4  # patch 0 is all clear
    assert metrics["model"]["clear"]["n_patches"] == 4  # patch 1 is all cloud
    assert metrics["n_patches"] == 5 and metrics["n_pixels"] == 5 * SIZE * SIZE
    assert metrics["cloud_cover"] == pytest.approx(n_cov / (5 * SIZE * SIZE))
    assert metrics["n_patches_all_clear"] == 1 and metrics["n_patches_all_covered"] == 1


def test_metrics_do_not_depend_on_batch_size(store):
    model = tiny_model(scale=0.9, offset=0.05)
    one, per_one = evaluate_store(model, store, batch_size=1)
    many, per_many = evaluate_store(model, store, batch_size=5)
    for who in ("model", "baseline_cloudy_input"):
        for region in ("all", "covered", "clear"):
            assert_same_figures(one[who][region], many[who][region])
    pd.testing.assert_frame_equal(per_one, per_many)


class SpyArray:
    """Wraps an array and records how many patches one read returns."""

    def __init__(self, array: np.ndarray, reads: list[int]) -> None:
        self.array, self.reads = array, reads
        self.shape, self.dtype = array.shape, array.dtype

    def __getitem__(self, key):
        out = self.array[key]
        self.reads.append(out.shape[0] if out.ndim == self.array.ndim else 1)
        return out


def test_reads_at_most_one_batch_at_a_time(store):
    reads: list[int] = []
    spy = PatchStore(
        path=store.path,
        index=store.index,
        meta=store.meta,
        **{k: SpyArray(getattr(store, k), reads) for k in ("s2_cloudy", "s2", "s1", "mask")},
    )
    evaluate_store(tiny_model(), spy, batch_size=2)
    assert reads and max(reads) <= 2


def test_per_patch_table_sorted_worst_first(store):
    metrics, per_patch = evaluate_store(tiny_model(scale=0.0, offset=0.5), store, batch_size=4)
    assert len(per_patch) == 5
    assert list(per_patch.columns[:4]) == ["scene_id", "patch", "position", "cloud_cover"]
    for who in ("model", "baseline"):
        for metric in ("mae", "rmse", "psnr", "ssim", "sam_deg"):
            for region in ("all", "covered"):
                assert f"{who}_{metric}_{region}" in per_patch.columns
    assert per_patch["model_mae_all"].is_monotonic_decreasing
    clear_row = per_patch[per_patch["patch"] == "p0"].iloc[0]
    assert clear_row["cloud_cover"] == 0 and np.isnan(clear_row["model_mae_covered"])
    assert per_patch.set_index("patch").loc["p1", "cloud_cover"] == 1
    # per-patch MAE of patch 2 (half covered), checked directly
    target = np.asarray(store.s2[2], np.float64) / 10000
    row = per_patch.set_index("position").loc[2]
    assert row["model_mae_all"] == pytest.approx(np.abs(0.1 - target).mean(), rel=1e-5)
    json.dumps(metrics, allow_nan=False)  # strict JSON: no NaN or inf anywhere


def test_no_cover_gives_null_and_note(tmp_path):
    clear_store = make_store(tmp_path / "clear", [np.zeros((SIZE, SIZE), np.uint8)] * 2)
    metrics, per_patch = evaluate_store(tiny_model(scale=0.8), clear_store, batch_size=2)
    assert metrics["model"]["covered"] is None
    assert metrics["baseline_cloudy_input"]["covered"] is None
    assert metrics["model"]["per_band_rmse_covered"] is None
    assert any(note.startswith("covered: no cloud or shadow pixel") for note in metrics["notes"])
    assert per_patch["model_mae_covered"].isna().all()
    json.dumps(metrics, allow_nan=False)
    assert "covered" in headline(metrics)


def test_dsen2cr_model_runs_on_full_patches(store):
    model = build_dsen2cr(features=8, blocks=1, tail_init="he_uniform")
    pred = predict_dn(model, np.asarray(store.s2_cloudy[:2]), np.asarray(store.s1[:2]))
    assert pred.shape == (2, SIZE, SIZE, 10) and pred.dtype == np.float32
    metrics, _ = evaluate_store(model, store, batch_size=4)
    assert 0 <= metrics["model"]["all"]["mae"] < 1


def test_optical_only_model_gets_no_sar():
    optical = keras.Input((None, None, 10), name="optical")
    model = keras.Model({"optical": optical}, keras.layers.Rescaling(1.0)(optical))
    cloudy = np.full((1, 8, 8, 10), 2000, np.uint16)
    pred = predict_dn(model, cloudy, np.zeros((1, 2, 2, 2), np.float32))
    np.testing.assert_allclose(pred, 2000.0)


def test_bad_inputs_are_reported(tmp_path, store):
    optical = keras.Input((None, None, 10), name="optical")
    three = keras.Model({"optical": optical}, keras.layers.Conv2D(3, 1)(optical))
    with pytest.raises(ValueError, match="model output shape"):
        evaluate_store(three, store)
    with pytest.raises(ValueError, match="batch_size"):
        evaluate_store(tiny_model(), store, batch_size=0)
    empty = make_store(tmp_path / "empty", [])
    with pytest.raises(ValueError, match=r"empty.*no patch"):
        evaluate_store(tiny_model(), empty)


def test_select_examples(store):
    # covers: p0 0, p1 1, p2 0.5, p3 0.28, p4 0.5; partly covered first, sorted by cover
    assert select_examples(store, 2) == [3, 4]
    assert select_examples(store, 3) == [3, 2, 4]
    assert select_examples(store, 4) == [0, 3, 2, 4]
    assert select_examples(store, 0) == []
    assert select_examples(store, 2, indices=[4, 1]) == [4, 1]
    with pytest.raises(ValueError, match="out of range"):
        select_examples(store, 2, indices=[5])


def test_example_data(store):
    examples = example_data(tiny_model(), store, [2, 0])
    assert [e["title"] for e in examples] == ["ROIs1_spring_2 p2", "ROIs1_spring_0 p0"]
    first = examples[0]
    assert first["cloudy_rgb"].shape == (SIZE, SIZE, 3)
    assert first["sar_vv_db"].shape == (SIZE // SAR_FACTOR, SIZE // SAR_FACTOR)
    assert first["cloud_cover"] == 0.5
    # RGB = B4, B3, B2: channel 0 is B4 (TML position 2)
    np.testing.assert_allclose(first["target_rgb"][..., 0], store.s2[2][..., 2] / 10000, rtol=1e-6)
    assert first["mae_model"] == pytest.approx(first["mae_baseline"], rel=1e-6)


def test_predict_dn_takes_the_prediction_of_a_dict_output_model():
    plain = tiny_model(scale=0.5, offset=0.1)
    optical, sar = plain.inputs[0], plain.inputs[1]
    log_scale = keras.layers.Rescaling(0.0, offset=-3.0, name="log_scale")(optical)
    aleatoric = keras.Model(
        {"optical": optical, "sar": sar}, {"prediction": plain.outputs[0], "log_scale": log_scale}
    )
    rng = np.random.default_rng(7)
    cloudy = rng.integers(0, 10000, (2, 8, 8, 10)).astype(np.float32)
    s1 = rng.uniform(-20, -5, (2, 2, 2, 2)).astype(np.float32)
    expected = (0.5 * cloudy / 2000 + 0.1) * 2000
    np.testing.assert_allclose(predict_dn(aleatoric, cloudy, s1), expected, rtol=1e-5)
    np.testing.assert_allclose(predict_dn(plain, cloudy, s1), expected, rtol=1e-5)
