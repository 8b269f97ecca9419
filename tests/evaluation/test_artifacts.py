"""Artifact measures against an independent plain implementation (explicit Gaussian kernel)."""

from __future__ import annotations

import numpy as np
import pytest

from tml_cloudremoval.evaluation.artifacts import ArtifactAccumulator, high_pass


def _plain_high_pass(image: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """x - Gaussian(x) with a truncated (4 sigma) normalised kernel and mirror padding that
    repeats the edge sample (scipy's "reflect"), one band and one axis at a time."""
    radius = int(4 * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    blurred = np.asarray(image, np.float64).copy()
    for axis in (0, 1):
        pad = [(radius, radius) if a == axis else (0, 0) for a in range(3)]
        padded = np.pad(blurred, pad, mode="symmetric")
        out = np.zeros_like(blurred)
        for k, tap in enumerate(taps):
            index = [slice(None)] * 3
            index[axis] = slice(k, k + blurred.shape[axis])
            out += tap * padded[tuple(index)]
        blurred = out
    return np.asarray(image, np.float64) - blurred


def test_high_pass_equals_a_plain_separable_gaussian():
    image = np.random.default_rng(0).uniform(0, 1, (12, 9, 3))
    np.testing.assert_allclose(high_pass(image), _plain_high_pass(image), atol=1e-12)
    flat = np.full((8, 8, 2), 0.3)
    np.testing.assert_allclose(high_pass(flat), 0.0, atol=1e-12)  # no texture, no energy


def test_ratio_and_bias_over_covered_pixels_of_several_batches():
    rng = np.random.default_rng(1)
    target = rng.uniform(0.1, 0.3, (3, 16, 16, 2))
    noise = rng.normal(0, 0.05, target.shape)
    pred = target + noise + np.array([0.01, -0.02])
    mask = np.zeros((3, 16, 16), np.uint8)
    mask[0, :8] = 1
    mask[1] = 1  # patch 2 has no covered pixel: it adds nothing
    acc = ArtifactAccumulator(["B2", "B3"])
    acc.add(pred[:2], target[:2], mask[:2])
    acc.add(pred[2:], target[2:], mask[2:])
    hp_p = np.concatenate([_plain_high_pass(p)[m != 0] for p, m in zip(pred, mask, strict=True)])
    hp_t = np.concatenate([_plain_high_pass(t)[m != 0] for t, m in zip(target, mask, strict=True)])
    diff = np.concatenate([(p - t)[m != 0] for p, t, m in zip(pred, target, mask, strict=True)])
    result = acc.result()
    assert result["hf_energy_ratio_covered"] == pytest.approx((hp_p**2).sum() / (hp_t**2).sum())
    assert result["hf_energy_ratio_covered"] > 1  # the noise is texture the target lacks
    expected_bias = dict(zip(["B2", "B3"], diff.mean(0), strict=True))
    assert result["bias_covered"] == pytest.approx(expected_bias)
    assert result["bias_covered"]["B3"] == pytest.approx(-0.02, abs=0.01)


def test_no_covered_pixel_gives_null_figures():
    acc = ArtifactAccumulator(["B2"])
    acc.add(np.ones((1, 4, 4, 1)), np.ones((1, 4, 4, 1)), np.zeros((1, 4, 4)))
    assert acc.result() == {"hf_energy_ratio_covered": None, "bias_covered": None}
    flat = ArtifactAccumulator(["B2"])
    flat.add(np.ones((1, 4, 4, 1)), np.ones((1, 4, 4, 1)), np.ones((1, 4, 4)))
    assert flat.result()["hf_energy_ratio_covered"] is None  # a target without texture
