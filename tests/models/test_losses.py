"""CARL and L1 on hand-made tensors."""

from __future__ import annotations

import numpy as np
import pytest

from tml_cloudremoval.models.losses import carl_loss, carl_per_sample, l1_loss, l1_per_sample

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
