"""A stand-in aleatoric DSen2-CR for tests and benchmarks, built from stock Keras layers.

The interface is ``tml_cloudremoval.models.uncertainty``: the inputs of the plain model and dict
outputs ``{"prediction": (B, H, W, 10) model units, "log_scale": (B, H, W, 10) Laplace log b}``.
:func:`build_aleatoric_dsen2cr` takes the arguments of ``build_dsen2cr`` and returns that model:
the plain network, unchanged (same layers, same names, so its prediction is the plain model's),
plus a 3x3 convolution from the last trunk features to 10 channels, squashed by a sigmoid onto
``LOG_SCALE_RANGE`` (a few thousand parameters). To swap in the real model later, replace the
one import: ``functools.partial(build_dsen2cr, uncertainty="aleatoric")``.

Not part of the package: tests import it as ``from support.aleatoric_model import ...``;
benchmarks put ``<repo>/tests`` on ``sys.path`` first.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from tml_cloudremoval.models.dsen2cr import build_dsen2cr
from tml_cloudremoval.models.uncertainty import LOG_SCALE_OUTPUT, LOG_SCALE_RANGE, PREDICTION_OUTPUT


def build_aleatoric_dsen2cr(**kwargs: Any) -> keras.Model:
    """``build_dsen2cr(**kwargs)`` with a log-scale head: dict outputs (module docstring). The
    tail is random (``tail_init`` he_uniform unless given) so the prediction is not the input."""
    plain = build_dsen2cr(**{"tail_init": "he_uniform", **kwargs})
    blocks = kwargs.get("blocks", 16)
    trunk = plain.get_layer(f"block{blocks - 1}_add" if blocks else "head").output
    lo, hi = LOG_SCALE_RANGE
    raw = layers.Conv2D(
        plain.output.shape[-1],
        3,
        padding="same",
        activation="sigmoid",
        kernel_initializer="he_uniform",
        name="log_scale_conv",
        dtype="float32",
    )(trunk)
    log_scale = layers.Rescaling(hi - lo, offset=lo, name=LOG_SCALE_OUTPUT, dtype="float32")(raw)
    return keras.Model(
        inputs={t.name: t for t in plain.inputs},
        outputs={PREDICTION_OUTPUT: plain.output, LOG_SCALE_OUTPUT: log_scale},
        name=f"{plain.name}_aleatoric",
    )


def aleatoric_twin(plain: keras.Model, seed: int = 0, **kwargs: Any) -> keras.Model:
    """An aleatoric model whose trunk has ``plain``'s weights (``kwargs``: the arguments
    ``plain`` was built with): its ``prediction`` is ``plain``'s; the head is seeded."""
    keras.utils.set_random_seed(seed)
    model = build_aleatoric_dsen2cr(**kwargs)
    for layer in plain.layers:
        model.get_layer(layer.name).set_weights(layer.get_weights())
    return model
