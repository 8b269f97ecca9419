"""CARL and L1, and their Laplace NLL forms, on hand-made tensors."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tml_cloudremoval.models.losses import (
    NLL_BETA,
    carl_loss,
    carl_nll_per_sample,
    carl_per_sample,
    l1_loss,
    l1_nll_per_sample,
    l1_per_sample,
)

# One sample, 1 x 2 pixels, 2 bands. Pixel 0 is cloudy (M = 1), pixel 1 clear.
P = np.array([[[[1.0, 2.0], [3.0, 4.0]]]], np.float32)
T = np.array([[[[0.0, 2.0], [3.0, 0.0]]]], np.float32)
I = np.array([[[[1.0, 1.0], [1.0, 1.0]]]], np.float32)  # noqa: E741
M = np.array([[[1, 0]]], np.uint8)
# |P - T| = [[1, 0], [0, 4]]  -> mean 5/4
# |P - I| = [[0, 1], [2, 3]]
# C|P - I| + M|P - T|: pixel 0 -> |P - T| = [1, 0]; pixel 1 -> |P - I| = [2, 3]; mean 6/4


@pytest.mark.parametrize(("lam", "expected"), [(1.0, 1.5 + 1.25), (0.5, 1.5 + 0.625), (0.0, 1.5)])
def test_carl_by_hand(lam, expected):
    assert float(carl_loss(T, I, M, P, lambda_=lam)) == pytest.approx(expected)


def test_mask_with_channel_axis_and_float_dtype_gives_the_same():
    value = float(carl_loss(T, I, M[..., None].astype(np.float32), P))
    assert value == pytest.approx(2.75)


def test_all_clear_and_all_covered():
    clear = np.zeros_like(M)
    covered = np.ones_like(M)
    # all clear: mean|P - I| + mean|P - T| = 6/4 + 5/4
    assert float(carl_loss(T, I, clear, P)) == pytest.approx(1.5 + 1.25)
    # all covered: mean|P - T| + mean|P - T|
    assert float(carl_loss(T, I, covered, P)) == pytest.approx(2.5)


def test_per_sample_values_and_batch_mean():
    p = np.concatenate([P, np.zeros_like(P)])
    t = np.concatenate([T, np.zeros_like(T)])
    i = np.concatenate([I, np.full_like(I, 2.0)])
    m = np.concatenate([M, np.zeros_like(M)])
    # sample 2: all clear, P = T = 0, I = 2 -> mean|P - I| = 2, mean|P - T| = 0
    np.testing.assert_allclose(carl_per_sample(t, i, m, p).numpy(), [2.75, 2.0])
    assert float(carl_loss(t, i, m, p)) == pytest.approx((2.75 + 2.0) / 2)


def test_l1_by_hand():
    assert float(l1_loss(T, P)) == pytest.approx(1.25)
    np.testing.assert_allclose(l1_per_sample(T, P).numpy(), [1.25])


def test_carl_is_zero_when_prediction_matches_target_and_clear_input():
    t = np.random.default_rng(0).uniform(0, 5, (2, 4, 4, 10)).astype(np.float32)
    m = np.zeros((2, 4, 4), np.uint8)
    assert float(carl_loss(t, t, m, t)) == 0.0


# Laplace NLL forms: band 0 has b = 1 (s = 0), band 1 b = 2 (s = ln 2) at both pixels.
S = np.array([[[[0.0, np.log(2.0)], [0.0, np.log(2.0)]]]], np.float32)
LN2 = float(np.log(2.0))


@pytest.mark.parametrize(
    ("lam", "beta", "expected"),
    [
        # lambda 1: CARL terms [2, 0] (covered: 2 |P - T|), [2, 7] (clear: |P - I| + |P - T|);
        # beta 0: / b -> [2, 0], [2, 3.5]; + 2 s -> 2 ln 2 twice; mean over 4 values.
        (1.0, 0.0, (2 + 0 + 2 + 3.5 + 4 * LN2) / 4),
        # beta 1: x b -> terms + 2 b s = [2, 0 + 4 ln 2], [2, 7 + 4 ln 2].
        (1.0, 1.0, (2 + 0 + 2 + 7 + 8 * LN2) / 4),
        # lambda 0: terms [1, 0], [2, 3]; / b -> [1, 0], [2, 1.5]; + s -> ln 2 twice.
        (0.0, 0.0, (1 + 0 + 2 + 1.5 + 2 * LN2) / 4),
        # beta 1: terms + b s = [1, 0 + 2 ln 2], [2, 3 + 2 ln 2].
        (0.0, 1.0, (1 + 0 + 2 + 3 + 4 * LN2) / 4),
    ],
)
def test_carl_nll_by_hand(lam, beta, expected):
    value = carl_nll_per_sample(T, I, M, P, S, lambda_=lam, beta=beta).numpy()
    assert value.shape == (1,) and float(value[0]) == pytest.approx(expected, rel=1e-6)


def test_default_is_beta_one():
    assert NLL_BETA == 1.0
    assert float(carl_nll_per_sample(T, I, M, P, S)[0]) == pytest.approx((11 + 8 * LN2) / 4)
    assert float(l1_nll_per_sample(T, P, S)[0]) == pytest.approx((5 + 4 * LN2) / 4)


def test_carl_nll_at_unit_scale_is_carl():
    zeros = np.zeros_like(S)
    for lam in (0.0, 0.5, 1.0):
        for beta in (0.0, 1.0):
            assert float(carl_nll_per_sample(T, I, M, P, zeros, lam, beta)[0]) == pytest.approx(
                float(carl_loss(T, I, M, P, lam))
            )


def test_l1_nll_by_hand():
    # |P - T| = [1, 0], [0, 4]; / b -> [1, 0], [0, 2]; + s -> ln 2 twice.
    value = float(l1_nll_per_sample(T, P, S, beta=0.0)[0])
    assert value == pytest.approx((3 + 2 * LN2) / 4, rel=1e-6)


def _gradient(fn, variable: np.ndarray) -> np.ndarray:
    v = tf.Variable(variable)
    with tf.GradientTape() as tape:
        loss = fn(v)
    return tape.gradient(loss, v).numpy()


def test_with_beta_one_the_prediction_gets_carls_gradient_and_with_beta_zero_divided_by_b():
    lam = 0.5
    carl = _gradient(lambda p: carl_per_sample(T, I, M, p, lam), P)
    beta1 = _gradient(lambda p: carl_nll_per_sample(T, I, M, p, S, lam, beta=1.0), P)
    beta0 = _gradient(lambda p: carl_nll_per_sample(T, I, M, p, S, lam, beta=0.0), P)
    np.testing.assert_allclose(beta1, carl, rtol=1e-6)
    np.testing.assert_allclose(beta0, carl / np.exp(S), rtol=1e-6)


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
def test_nll_is_smallest_where_b_is_the_weighted_mean_absolute_difference(beta):
    """d/ds of sg(b)^beta [terms e^-s + (1 + lambda) s] is zero at b = terms / (1 + lambda)."""
    lam = 0.5
    terms = (1 - M[..., None]) * np.abs(P - I) + (M[..., None] + lam) * np.abs(P - T)
    best = np.log(np.maximum(terms, 1e-3) / (1 + lam)).astype(np.float32)
    nonzero = terms > 1e-3  # where terms is 0 the optimum is b -> 0, clipped here
    grad = _gradient(lambda s: carl_nll_per_sample(T, I, M, P, s, lam, beta), best)
    np.testing.assert_allclose(grad[nonzero], 0.0, atol=1e-6)
    moved = best + 0.1 * nonzero
    assert np.all(_gradient(lambda s: carl_nll_per_sample(T, I, M, P, s, lam, beta), moved) >= 0)
