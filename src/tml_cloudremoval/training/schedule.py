"""Learning-rate schedule of a training run: an optional linear warm-up, then a constant rate.

``training.warmup_steps`` N > 0: optimizer step s (0-based, ``optimizer.iterations``) uses
``learning_rate * min(1, (s + 1) / N)``, so the first step already moves (rate / N) and step
N - 1 onwards uses the full rate. With N = 0 the optimizer gets the plain float (the seed's
constant rate). Large batches (``conf/gpu``: batch 64, rate scaled by sqrt(4)) warm up because
Adam's second-moment estimate is noisy over the first steps (Goyal et al. 2017 for SGD; Liu et
al. 2020, "On the Variance of the Adaptive Learning Rate and Beyond", for Adam).

The schedule is a registered Keras object written in ``keras.ops`` (every backend); a resumed
run rebuilds it from the settings and the restored ``optimizer.iterations`` puts it where the
interrupted run stopped.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tml_cloudremoval")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """``rate * min(1, (step + 1) / warmup_steps)`` (``warmup_steps`` >= 1)."""

    def __init__(self, rate: float, warmup_steps: int) -> None:
        if warmup_steps < 1:
            raise ValueError(f"warmup_steps must be >= 1, got {warmup_steps}")
        self.rate = float(rate)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step: Any) -> Any:
        fraction = (ops.cast(step, "float32") + 1.0) / float(self.warmup_steps)
        return self.rate * ops.minimum(fraction, 1.0)

    def get_config(self) -> dict[str, Any]:
        return {"rate": self.rate, "warmup_steps": self.warmup_steps}


def warmup_learning_rate(rate: float, warmup_steps: int) -> float | LinearWarmup:
    """The optimizer's ``learning_rate``: ``rate`` itself without warm-up, else a
    :class:`LinearWarmup` to ``rate`` over ``warmup_steps`` optimizer steps."""
    return LinearWarmup(rate, warmup_steps) if warmup_steps > 0 else float(rate)
