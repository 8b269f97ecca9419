"""The aleatoric uncertainty of DSen2-CR: names and units shared by training, evaluation and
inference (``model.uncertainty: aleatoric``).

An aleatoric model has the inputs of the plain one and two outputs, a dict of float32 tensors,
channels_last:

- ``"prediction"`` (B, H, W, 10): the cloud-free estimate in model units (DN / 2000), as the
  plain model's only output;
- ``"log_scale"`` (B, H, W, 10): per pixel and band, log b of a Laplace distribution
  ``p(y) = exp(-|y - prediction| / b) / (2 b)`` of the true value, b in model units.

Laplace rather than Gaussian because CARL is an L1 loss: the Laplace negative log-likelihood
``|y - mu| / b + log b`` is CARL's |P - Y| term divided by the predicted scale, so at a constant
scale it is CARL itself, and the prediction keeps CARL's median-seeking behaviour.
The standard deviation of a Laplace distribution is ``sqrt(2) b``; in reflectance (DN / 10000)
that is ``sqrt(2) exp(log_scale) * OPTICAL_SCALE / REFLECTANCE_SCALE``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from tml_cloudremoval.normalise import OPTICAL_SCALE, REFLECTANCE_SCALE

__all__ = [
    "LOG_SCALE_OUTPUT",
    "LOG_SCALE_RANGE",
    "PREDICTION_OUTPUT",
    "STD_FACTOR",
    "UNCERTAINTY_KINDS",
    "Uncertainty",
    "std_reflectance",
    "uncertainty_of",
]

Uncertainty = Literal["none", "aleatoric"]
"""``model.uncertainty``: ``none`` (one output, the default) or ``aleatoric`` (two outputs)."""

UNCERTAINTY_KINDS: tuple[str, ...] = ("none", "aleatoric")

PREDICTION_OUTPUT = "prediction"
"""Output name of the cloud-free estimate of an aleatoric model (model units)."""

LOG_SCALE_OUTPUT = "log_scale"
"""Output name of the per-band Laplace log-scale log b of an aleatoric model (b in model units)."""

LOG_SCALE_RANGE: tuple[float, float] = (-9.0, 2.0)
"""Bounds of ``log_scale`` (the head maps onto this interval): b from 1.2e-4 to 7.4 model units,
i.e. a standard deviation from 3.5e-5 to 2.1 in reflectance."""

_STD_FACTOR = math.sqrt(2.0) * OPTICAL_SCALE / REFLECTANCE_SCALE

STD_FACTOR = _STD_FACTOR
"""b (model units) -> Laplace standard deviation sqrt(2) b in reflectance: sqrt(2) x 0.2."""


def std_reflectance(log_scale: np.ndarray) -> np.ndarray:
    """Predicted standard deviation in reflectance (DN / 10000) from ``log_scale`` (any shape),
    float32: ``sqrt(2) exp(log_scale) * 2000 / 10000``."""
    return (np.exp(np.asarray(log_scale, dtype=np.float64)) * _STD_FACTOR).astype(np.float32)


def uncertainty_of(model: Any) -> Uncertainty:
    """``"aleatoric"`` for a functional model whose output is a dict holding ``"log_scale"``
    (read off ``model.output``, nothing is run), else ``"none"``."""
    output = getattr(model, "output", None)
    return "aleatoric" if isinstance(output, Mapping) and LOG_SCALE_OUTPUT in output else "none"
