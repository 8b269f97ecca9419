"""Learning-rate warm-up: values by hand, inside a real optimizer, and serialisable."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tml_cloudremoval.training.schedule import LinearWarmup, warmup_learning_rate


def test_no_warmup_is_the_plain_rate():
    rate = warmup_learning_rate(7e-5, 0)
    assert isinstance(rate, float) and rate == 7e-5


def test_the_ramp_is_rate_times_step_plus_one_over_n_then_flat():
    schedule = warmup_learning_rate(1e-3, 4)
    got = [float(schedule(step)) for step in range(7)]
    np.testing.assert_allclose(got, [2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3, 1e-3], rtol=1e-6)


def test_the_optimizer_follows_the_ramp_step_by_step():
    """Plain SGD on one variable with gradient 1: each update equals that step's rate."""
    variable = keras.Variable(np.zeros(1, np.float32))
    optimizer = keras.optimizers.SGD(learning_rate=LinearWarmup(0.4, 2))
    values = []
    for _ in range(4):
        optimizer.apply_gradients([(keras.ops.ones(1), variable)])
        values.append(float(np.asarray(variable)[0]))
    steps = -np.diff([0.0, *values])
    np.testing.assert_allclose(steps, [0.2, 0.4, 0.4, 0.4], rtol=1e-6)
    assert int(optimizer.iterations) == 4


def test_the_schedule_survives_serialisation():
    copy = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(LinearWarmup(1.4e-4, 500))
    )
    assert isinstance(copy, LinearWarmup)
    assert (copy.rate, copy.warmup_steps) == (1.4e-4, 500)
    np.testing.assert_allclose(float(copy(249)), 0.7e-4, rtol=1e-6)


def test_a_ramp_needs_at_least_one_step():
    with pytest.raises(ValueError, match="warmup_steps must be >= 1"):
        LinearWarmup(1e-3, 0)
