"""What the model(s) hand the tiling engine: the prediction and, for an aleatoric model or an
ensemble, the variances that become the uncertainty rasters.

A predictor returns, per batch of tiles, the *parts* of :func:`output_parts` stacked on the last
axis, 10 channels (the TML bands) each, float32 (b, h, w, 10 x parts):

- ``prediction``: model units (DN / 2000); for an ensemble the mean over its members;
- ``aleatoric`` (an aleatoric model, ``models.uncertainty``): the predicted variance in
  reflectance², ``std_reflectance(log_scale)²``; for an ensemble of aleatoric models the mean of
  the members' variances (the aleatoric part of the mixture's variance);
- ``epistemic`` (an ensemble): the variance across the members of their predictions in
  reflectance² (population variance, ddof 0).

Why variances are blended, not standard deviations: the engine blends every channel with the
tile weights. Where the weights are positive every tile's value is the whole-image one, so both
give the same result there (tiled == whole image); a weighted mean of variances is moreover the
variance of the blend of the tiles' predictive distributions (they share the mean), while a
weighted mean of standard deviations would understate it wherever tiles differed. The rows are
turned into standard deviations (:func:`std_of_variance`) only when written. The plain model
(one model, one output) keeps :func:`~tml_cloudremoval.inference.engine.keras_predictor`
itself: its rows, and so its products, are bit for bit what they were.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tml_cloudremoval.bands import TML_BAND_NAMES
from tml_cloudremoval.inference.engine import PredictBatch, keras_predictor, tile_array
from tml_cloudremoval.inference.native_layout import PartOutput
from tml_cloudremoval.models.receptive_field import receptive_field
from tml_cloudremoval.models.uncertainty import (
    LOG_SCALE_OUTPUT,
    PREDICTION_OUTPUT,
    std_reflectance,
)
from tml_cloudremoval.normalise import OPTICAL_SCALE, REFLECTANCE_SCALE

PREDICTION, ALEATORIC, EPISTEMIC = "prediction", "aleatoric", "epistemic"
PARTS: tuple[str, ...] = (PREDICTION, ALEATORIC, EPISTEMIC)
"""Every part a predictor may give, in the order they are stacked."""

BANDS = len(TML_BAND_NAMES)
"""Channels of each part."""

UNITS = "reflectance"
"""Units of the uncertainty rasters: reflectance (DN / 10000), as float32."""

QUANTITY = {
    ALEATORIC: "predicted standard deviation of the reflectance (Laplace: sqrt(2) b of the "
    "model's log_scale; an ensemble: square root of the members' mean variance)",
    EPISTEMIC: "spread of the ensemble: standard deviation across the members' predictions of "
    "the reflectance (ddof 0)",
}
"""What each uncertainty raster holds (its ``TML_UNCERTAINTY`` tag and the README)."""

_TO_REFLECTANCE = OPTICAL_SCALE / REFLECTANCE_SCALE
"""Model units -> reflectance (DN / 2000 -> DN / 10000)."""


def is_aleatoric(model: Any) -> bool:
    """True for a model with the dict outputs of ``models.uncertainty`` (a ``log_scale``)."""
    return isinstance(model.output, Mapping) and LOG_SCALE_OUTPUT in model.output


def uses_sar(model: Any) -> bool:
    """True for a model with a ``"sar"`` input."""
    return "sar" in [t.name for t in model.inputs]


def output_parts(models: Sequence[Any]) -> tuple[str, ...]:
    """The parts (module docstring) the ``models`` give: ``prediction``, ``aleatoric`` when
    every one is aleatoric, ``epistemic`` for more than one. ``ValueError`` for a mix of plain
    and aleatoric models or of models with and without SAR (``inference.ensemble`` checks the
    same first, naming the versions)."""
    if not models:
        raise ValueError("no model given")
    kinds = {is_aleatoric(m) for m in models}
    if len(kinds) > 1:
        raise ValueError("an ensemble mixes aleatoric and plain models")
    if len({uses_sar(m) for m in models}) > 1:
        raise ValueError("an ensemble mixes models with and without SAR")
    parts = [PREDICTION]
    if kinds == {True}:
        parts.append(ALEATORIC)
    if len(models) > 1:
        parts.append(EPISTEMIC)
    return tuple(parts)


def receptive_field_of(models: Sequence[Any]) -> int:
    """The widest receptive field of ``models`` (px at 10 m): the overlap every tile needs."""
    return max(receptive_field(m) for m in models)


class ModelPredictor:
    """The batch predictor of an aleatoric model or an ensemble: (b, h, w, 10 x parts)."""

    def __init__(self, models: Sequence[Any]) -> None:
        self.models = list(models)
        self.parts = output_parts(self.models)
        self._sar = uses_sar(self.models[0])

    def _member(self, model: Any, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, Any]:
        """One member's (prediction (b, h, w, 10) model units, variance in reflectance² or
        None)."""
        out = model.predict_on_batch(inputs)
        if not isinstance(out, Mapping):
            return np.asarray(out, dtype=np.float32), None
        variance = np.square(std_reflectance(out[LOG_SCALE_OUTPUT]), dtype=np.float32)
        return np.asarray(out[PREDICTION_OUTPUT], dtype=np.float32), variance

    def __call__(self, optical: np.ndarray, sar: np.ndarray | None) -> np.ndarray:
        inputs = {"optical": optical}
        if self._sar:
            if sar is None:
                raise ValueError("the model takes a 'sar' input but the tiles carry no SAR")
            inputs["sar"] = sar
        members = [self._member(m, inputs) for m in self.models]
        predictions = np.stack([p for p, _ in members])
        stacked = [predictions.mean(axis=0, dtype=np.float64).astype(np.float32)]
        if ALEATORIC in self.parts:
            variances = np.stack([v for _, v in members])
            stacked.append(variances.mean(axis=0, dtype=np.float64).astype(np.float32))
        if EPISTEMIC in self.parts:
            spread = predictions.var(axis=0, dtype=np.float64) * _TO_REFLECTANCE**2
            stacked.append(spread.astype(np.float32))
        return np.concatenate(stacked, axis=-1)


def model_predictor(models: Sequence[Any]) -> tuple[PredictBatch, tuple[str, ...]]:
    """(batch predictor, its parts) for one model or an ensemble; the plain model keeps
    ``engine.keras_predictor`` (module docstring)."""
    parts = output_parts(models)
    if parts == (PREDICTION,):
        return keras_predictor(models[0]), parts
    return ModelPredictor(models), parts


def std_of_variance(values: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """Blended variance rows (n, w, C) in reflectance² -> standard deviation (n, w, C) float32
    in reflectance, NaN where not ``valid`` (the rasters' nodata)."""
    out = np.sqrt(np.maximum(values, 0.0, dtype=np.float32))
    if valid is not None:
        out[~valid] = np.nan
    return out


UNCERTAINTY_TAG = "TML_UNCERTAINTY"
"""GeoTIFF metadata tag of an uncertainty raster: which part it is (aleatoric, epistemic)."""


def uncertainty_output(part: str, path: Path) -> PartOutput:
    """How the rows of an uncertainty ``part`` are written to ``path``: float32 standard
    deviation in reflectance (:func:`std_of_variance`), nodata NaN, band units
    "reflectance", no DN scale; the tags say what it holds.

    float32 reflectance, not uint16 DN with scale 1e-4 like the cloud-free raster: the
    predicted standard deviations span ``LOG_SCALE_RANGE`` (3.5e-5 to 2.1 in reflectance), so
    uint16 DN would round the small ones of clear pixels (a few DN) by up to half their value,
    make 0 (no uncertainty) collide with nodata, and clip above 1.0; calibration compares them
    with errors in reflectance directly. The cost is twice the bytes before compression.
    """
    tags = {
        UNCERTAINTY_TAG: part,
        "TML_UNCERTAINTY_QUANTITY": QUANTITY[part],
        "TML_UNCERTAINTY_UNITS": f"{UNITS} (DN / 10000); nodata NaN; 0 where the input pixel "
        "was kept (fill: clouds)",
    }
    return PartOutput(
        path,
        "float32",
        float("nan"),
        convert=std_of_variance,
        dn_scale=False,
        units=UNITS,
        clip_20m=False,
        tags=tags,
    )


def split_parts(values: np.ndarray, parts: Sequence[str]) -> dict[str, np.ndarray]:
    """{part: (..., 10) view} of stacked channels (..., 10 x parts)."""
    if values.shape[-1] != BANDS * len(parts):
        raise ValueError(f"{values.shape[-1]} channels, expected {BANDS} x {len(parts)} parts")
    return {p: values[..., i * BANDS : (i + 1) * BANDS] for i, p in enumerate(parts)}


def predict_array_parts(
    models: Any | Sequence[Any],
    optical: np.ndarray,
    sar: np.ndarray | None = None,
    *,
    tile_size: int,
    overlap: int | None = None,
    batch_size: int = 1,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Tiled prediction of an in-memory image by one model or an ensemble (for tests,
    benchmarks and notebooks), as ``engine.predict_array`` does for a plain model.

    ``optical`` (H, W, 10), ``sar`` (ceil(H/4), ceil(W/4), 2) in model units -> {part: (H, W,
    10) float32}: ``prediction`` in model units, ``aleatoric`` / ``epistemic`` standard
    deviations in reflectance.
    """
    models = list(models) if isinstance(models, list | tuple) else [models]
    predict, parts = model_predictor(models)
    values = tile_array(
        predict,
        receptive_field_of(models),
        optical,
        sar,
        bands=BANDS * len(parts),
        tile_size=tile_size,
        overlap=overlap,
        batch_size=batch_size,
        progress=progress,
    )
    out = split_parts(values, parts)
    return {p: v.copy() if p == PREDICTION else std_of_variance(v, None) for p, v in out.items()}
