"""Uncertainty evaluation: UCE, reliability, sparsification/AUSE and Spearman against plain,
independent implementations (loops, scipy.stats.spearmanr, np.trapezoid); streaming and the
sample; a whole store through tiny aleatoric Keras models; the figure."""

from __future__ import annotations

import math

import keras
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from scipy import stats

from tml_cloudremoval.bands import SAR_FACTOR
from tml_cloudremoval.data.patch_store import PatchStore, write_patch_store
from tml_cloudremoval.evaluation import uncertainty as unc
from tml_cloudremoval.evaluation.plots_uncertainty import plot_uncertainty
from tml_cloudremoval.models.uncertainty import LOG_SCALE_RANGE

SIZE = 16


def _values(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(sigma, error) in reflectance; error ~ N(0, sigma^2) with sigma spread over 2 decades."""
    rng = np.random.default_rng(seed)
    std = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), n)).astype(np.float32)
    return std, (rng.normal(0, 1, n) * std * rng.uniform(0.5, 1.5, n)).astype(np.float32)


def _uce_by_loop(std: np.ndarray, error: np.ndarray, edges: np.ndarray) -> float:
    """UCE with explicit per-value bin search and per-bin means."""
    bins: dict[int, list[tuple[float, float]]] = {}
    for s, e in zip(std.tolist(), error.tolist(), strict=True):
        v = s * s
        k = 0
        while k < len(edges) - 2 and v >= edges[k + 1]:
            k += 1
        bins.setdefault(k, []).append((v, e * e))
    total = 0.0
    for members in bins.values():
        mv = sum(m[0] for m in members) / len(members)
        me = sum(m[1] for m in members) / len(members)
        total += len(members) / len(std) * abs(mv - me)
    return total


def _sparsification_by_loop(key: np.ndarray, abs_error: np.ndarray, fractions) -> list[float]:
    order = sorted(range(len(key)), key=lambda i: -float(key[i]))
    out = []
    for f in fractions:
        rest = order[math.floor(f * len(key)) :]
        out.append(math.sqrt(sum(float(abs_error[i]) ** 2 for i in rest) / len(rest)))
    return out


def test_bin_edges_span_the_head_and_are_geometric():
    edges = unc.bin_edges()
    assert len(edges) == unc.N_BINS + 1
    low = (math.sqrt(2) * math.exp(LOG_SCALE_RANGE[0]) * 0.2) ** 2
    high = (math.sqrt(2) * math.exp(LOG_SCALE_RANGE[1]) * 0.2) ** 2
    assert edges[0] == pytest.approx(low) and edges[-1] == pytest.approx(high)
    np.testing.assert_allclose(np.diff(np.log(edges)), 0.5, rtol=1e-9)  # 0.5 in ln variance
    k = unc.bin_index(np.array([0.0, edges[0], edges[1], edges[1] * 0.999, 1e9]), edges)
    assert k.tolist() == [0, 0, 1, 0, unc.N_BINS - 1]


def test_uce_and_reliability_match_a_loop():
    std, error = _values(3000)
    acc = unc.RegionAccumulator(unc.bin_edges(), max_samples=10_000)
    acc.add(std, error)
    result = acc.result()
    assert result["uce"] == pytest.approx(_uce_by_loop(std, error, unc.bin_edges()), rel=1e-6)
    rel = result["reliability"]
    assert sum(rel["n"]) == 3000 == result["n_values"]
    edges = unc.bin_edges()
    for lo, hi, pred, obs in zip(
        rel["variance_low"],
        rel["variance_high"],
        rel["predicted_rmse"],
        rel["observed_rmse"],
        strict=True,
    ):
        inside = (std.astype(np.float64) ** 2 >= lo) & (std.astype(np.float64) ** 2 < hi)
        assert hi == pytest.approx(lo * math.exp(0.5)) and lo >= edges[0]
        assert pred == pytest.approx(math.sqrt(np.mean(std[inside].astype(np.float64) ** 2)))
        assert obs == pytest.approx(math.sqrt(np.mean(error[inside].astype(np.float64) ** 2)))
    assert result["observed_rmse"] == pytest.approx(math.sqrt(np.mean(error.astype(float) ** 2)))
    assert result["predicted_rmse"] == pytest.approx(math.sqrt(np.mean(std.astype(float) ** 2)))


def test_uce_by_hand_on_two_values():
    # sigma 0.01 and 0.1 fall in different bins; errors 0.02 and 0.05.
    acc = unc.RegionAccumulator(unc.bin_edges())
    acc.add(np.array([0.01, 0.1]), np.array([0.02, -0.05]))
    expected = 0.5 * abs(0.01**2 - 0.02**2) + 0.5 * abs(0.1**2 - 0.05**2)
    assert acc.result()["uce"] == pytest.approx(expected, rel=1e-5)


def test_sparsification_and_ause_match_loops_and_trapezoid():
    std, error = _values(400, seed=1)
    fractions = np.linspace(0, 0.9, 10)
    model, oracle = unc.sparsification(std, np.abs(error), fractions)
    np.testing.assert_allclose(model, _sparsification_by_loop(std, np.abs(error), fractions))
    np.testing.assert_allclose(
        oracle, _sparsification_by_loop(np.abs(error), np.abs(error), fractions)
    )
    assert np.all(oracle <= model + 1e-12) and np.all(np.diff(oracle) <= 1e-12)
    assert unc.trapezoid(model - oracle, fractions) == pytest.approx(
        np.trapezoid(model - oracle, fractions)
    )
    acc = unc.RegionAccumulator(unc.bin_edges())
    acc.add(std, error)
    result = acc.result(fractions)
    assert result["ause"] == pytest.approx(np.trapezoid(model - oracle, fractions))
    assert result["ause_relative"] == pytest.approx(result["ause"] / model[0])


def test_a_perfect_ranking_has_zero_ause_and_spearman_one():
    error = np.linspace(0.01, 0.2, 50)
    acc = unc.RegionAccumulator(unc.bin_edges())
    acc.add(error * 2, error)  # sigma ranks the errors exactly
    result = acc.result()
    assert result["ause"] == pytest.approx(0.0, abs=1e-12)
    assert result["spearman"] == pytest.approx(1.0)


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 20, 300).astype(float)  # many ties
    b = a + rng.normal(0, 5, 300)
    assert unc.spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, rel=1e-10)
    np.testing.assert_allclose(unc.ranks(a), stats.rankdata(a))
    assert unc.spearman(np.ones(5), b[:5]) is None and unc.spearman(a[:1], b[:1]) is None


def test_sample_is_a_bounded_uniform_sample_independent_of_batching():
    std, error = _values(5000, seed=3)
    one = unc.RegionAccumulator(unc.bin_edges(), max_samples=700, seed=5)
    one.add(std, error)
    many = unc.RegionAccumulator(unc.bin_edges(), max_samples=700, seed=5)
    # The same random keys in the same order whatever the split: draw them in one go.
    for start in range(0, 5000, 1000):
        many.add(std[start : start + 1000], error[start : start + 1000])
    a, b = one.result(), many.result()
    assert a["n_sampled"] == b["n_sampled"] == 700 and a["n_values"] == 5000
    assert a["uce"] == pytest.approx(b["uce"])  # histograms are exact either way
    assert a["spearman"] == pytest.approx(b["spearman"])
    np.testing.assert_allclose(a["sparsification"]["model_rmse"], b["sparsification"]["model_rmse"])
    # The sample is a subset of the values, picked by keys: the values with the 700 smallest.
    keys = np.random.default_rng(5).random(5000)
    chosen = np.sort(np.argsort(keys)[:700])
    np.testing.assert_array_equal(np.sort(one.sample[1]), np.sort(std[chosen]))


def _store(path, masks: list[np.ndarray]) -> PatchStore:
    rng = np.random.default_rng(0)
    samples = []
    for mask in masks:
        target = rng.integers(300, 3000, (SIZE, SIZE, 10)).astype(np.uint16)
        samples.append(
            {
                "s2_cloudy": target + mask[..., None].astype(np.uint16) * np.uint16(2000),
                "s2": target,
                "s1": rng.uniform(-20, -5, (SIZE // SAR_FACTOR, SIZE // SAR_FACTOR, 2)),
                "mask": mask,
            }
        )
    index = pd.DataFrame({"scene_id": ["s"] * len(masks), "patch": [str(i) for i in masks]})
    write_patch_store(path, samples, len(masks), SIZE, SIZE, index)
    return PatchStore.open(path)


def _aleatoric_identity(log_scale: keras.layers.Layer | None = None) -> keras.Model:
    """prediction = the optical input; log_scale = 0.1 * optical - 4 (varies with brightness)."""
    optical = keras.Input((None, None, 10), name="optical")
    sar = keras.Input((None, None, 2), name="sar")
    up = keras.layers.UpSampling2D(SAR_FACTOR)(sar)
    zero = keras.layers.Conv2D(10, 1, kernel_initializer="zeros")(up)
    prediction = keras.layers.Add(name="long_skip")([optical, zero])
    scale = keras.layers.Rescaling(0.1, offset=-4.0, name="log_scale")(optical)
    return keras.Model(
        {"optical": optical, "sar": sar}, {"prediction": prediction, "log_scale": scale}
    )


def test_store_report_equals_figures_of_the_pooled_values(tmp_path):
    half = np.zeros((SIZE, SIZE), np.uint8)
    half[:, : SIZE // 2] = 1
    masks = [np.zeros_like(half), np.ones_like(half), half]
    store = _store(tmp_path / "store", masks)
    model = _aleatoric_identity()
    report = unc.evaluate_uncertainty(model, store, batch_size=2)
    assert report["uncertainty"] == "aleatoric" and report["n_patches"] == 3

    # The model's float32 outputs, turned into reflectance here by hand ...
    optical = np.clip(np.asarray(store.s2_cloudy, np.float32), 0, 10000) / 2000
    out = model.predict({"optical": optical, "sar": np.asarray(store.s1, np.float32)}, verbose=0)
    prediction = np.clip(out["prediction"] * 2000, 0, 10000) / 10000
    error = prediction - np.asarray(store.s2, np.float32) / 10000
    std = math.sqrt(2) * np.exp(out["log_scale"].astype(np.float64)) * 0.2
    # ... and sigma as the model was built: sqrt(2) exp(0.1 DN / 2000 - 4) x 0.2.
    np.testing.assert_allclose(std, math.sqrt(2) * np.exp(0.1 * optical - 4.0) * 0.2, rtol=1e-5)
    covered = np.asarray(store.mask) != 0
    everywhere = np.ones_like(covered)
    for region, where in (("all", everywhere), ("covered", covered), ("clear", ~covered)):
        got = report["regions"][region]
        s, e = std[where].ravel(), error[where].ravel().astype(np.float64)
        assert got["n_values"] == s.size == got["n_sampled"]
        assert got["uce"] == pytest.approx(_uce_by_loop(s, e, unc.bin_edges()), rel=1e-5)
        assert got["observed_rmse"] == pytest.approx(math.sqrt(np.mean(e**2)), rel=1e-5, abs=1e-9)
        if region == "clear":
            continue  # errors all (nearly) zero: no ranking to check
        rho = stats.spearmanr(s.astype(np.float32), np.abs(e).astype(np.float32)).statistic
        assert got["spearman"] == pytest.approx(rho, abs=1e-6)
        model_curve = _sparsification_by_loop(s, np.abs(e), unc.FRACTIONS)
        oracle_curve = _sparsification_by_loop(np.abs(e), np.abs(e), unc.FRACTIONS)
        area = np.trapezoid(np.subtract(model_curve, oracle_curve), unc.FRACTIONS)
        assert got["ause"] == pytest.approx(area, rel=1e-4, abs=1e-9)
    # Clear pixels: prediction = input = target, so no error but float rounding.
    assert report["regions"]["clear"]["observed_rmse"] < 1e-6


def test_a_model_without_uncertainty_gives_none_and_a_figure_saying_so(tmp_path):
    optical = keras.Input((None, None, 10), name="optical")
    plain = keras.Model({"optical": optical}, keras.layers.Rescaling(1.0)(optical))
    store = _store(tmp_path / "store", [np.zeros((SIZE, SIZE), np.uint8)])
    report = unc.evaluate_uncertainty(plain, store)
    assert report == {"uncertainty": "none"}
    fig = plot_uncertainty(report)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any("no uncertainty" in t for t in texts)
    assert "no uncertainty" in unc.headline(report)


def test_region_without_pixels_is_null_and_the_figure_draws_the_rest(tmp_path):
    store = _store(tmp_path / "store", [np.zeros((SIZE, SIZE), np.uint8)] * 2)
    report = unc.evaluate_uncertainty(_aleatoric_identity(), store)
    assert report["regions"]["covered"] is None and report["regions"]["clear"] is not None
    fig = plot_uncertainty(report)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    labels = [line.get_label() for line in fig.axes[1].get_lines()]
    assert labels[0].startswith("clear (AUSE") and not any("covered" in x for x in labels)
    assert "covered    no pixel" in unc.headline(report).splitlines()
