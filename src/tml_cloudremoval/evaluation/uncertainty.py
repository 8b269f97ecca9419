"""How far an aleatoric model's predicted uncertainty can be trusted, on a patch store.

Every figure is over single values (one pixel of one band), in reflectance (DN / 10000): the
error e = prediction - target with the prediction clipped to [0, 1] as in
:mod:`~tml_cloudremoval.evaluation.metrics`, the predicted standard deviation sigma = sqrt(2) b of
the Laplace head (``models.uncertainty.std_reflectance``), the predicted variance sigma^2. Each
over the regions ``all``, ``covered`` (mask 1: cloud or shadow) and ``clear`` (mask 0).

- UCE (uncertainty calibration error, reflectance^2) = sum over bins k of n_k / n
  |mean sigma^2_k - mean e^2_k|. The bins are of predicted variance, geometric and fixed in
  advance: ``N_BINS`` bins of equal width in log variance spanning everything the head can
  output (``LOG_SCALE_RANGE``), so the bin sums are streamed exactly over the whole split.
- Reliability diagram: per non-empty bin the predicted RMSE sqrt(mean sigma^2_k) against the
  observed RMSE sqrt(mean e^2_k) (calibrated = on the diagonal); also streamed exactly.
- Sparsification curve: the RMSE of the values left after removing the fraction f (``FRACTIONS``)
  with the largest sigma; the oracle removes the largest |e| first. AUSE (reflectance) = area
  between the two (trapezoids over f); ``ause_relative`` = AUSE / RMSE at f = 0.
- Spearman rank correlation of sigma and |e| (ties get their mean rank).

Sparsification and Spearman need a global sort, so they use a uniform random sample of at most
``MAX_SAMPLES`` values per region (bottom-k of seeded random keys: the same sample whatever the
batch size), not the whole split: memory is bounded by it and by one batch, whatever the number
of test patches. ``n_values`` and ``n_sampled`` say how many values each figure rests on.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tml_cloudremoval.data.patch_store import PatchStore
from tml_cloudremoval.evaluation.evaluate import check_store, model_outputs, rounded
from tml_cloudremoval.evaluation.metrics import REGIONS, to_reflectance
from tml_cloudremoval.models.uncertainty import (
    LOG_SCALE_OUTPUT,
    LOG_SCALE_RANGE,
    PREDICTION_OUTPUT,
    STD_FACTOR,
    std_reflectance,
    uncertainty_of,
)
from tml_cloudremoval.normalise import denormalise_optical

logger = logging.getLogger(__name__)

N_BINS = 44
"""Bins of predicted variance: 0.5 in ln(sigma^2) each (a factor 1.28 in sigma) over the range
of ``LOG_SCALE_RANGE`` (11 in ln b)."""

MAX_SAMPLES = 200_000
"""Values per region kept for the sparsification curve and Spearman's correlation."""

FRACTIONS = np.linspace(0.0, 0.98, 50)
"""Fractions of values removed along the sparsification curves (0 to 98 % by 2 %)."""

SEED = 0
"""Seed of the random keys of the sample."""

DEFINITIONS = {
    "units": "reflectance = DN / 10000; sigma = predicted standard deviation sqrt(2) b; "
    "UCE in reflectance^2; RMSE and AUSE in reflectance",
    "values": "one value per pixel and band; error = prediction clipped to [0, 1] - target",
    "regions": "all pixels; covered = cloud or shadow (mask 1); clear = mask 0",
    "uce": f"sum_k n_k / n |mean sigma^2 - mean e^2| over {N_BINS} bins of predicted variance, "
    "equal width in log variance over the whole range of the head; all values",
    "reliability": "per non-empty bin: predicted RMSE sqrt(mean sigma^2) vs observed RMSE "
    "sqrt(mean e^2); all values",
    "sparsification": "RMSE of the values left after removing the fraction with the largest "
    "sigma (model) or largest |e| (oracle); AUSE = trapezoid area between them; on a uniform "
    f"random sample of at most {MAX_SAMPLES} values per region",
    "spearman": "rank correlation of sigma and |e| (mean ranks for ties), on the same sample",
}


def bin_edges(n_bins: int = N_BINS) -> np.ndarray:
    """Edges (n_bins + 1,) of the variance bins in reflectance^2, geometric, from the smallest to
    the largest variance the head can predict."""
    lo, hi = ((STD_FACTOR * math.exp(v)) ** 2 for v in LOG_SCALE_RANGE)
    return np.geomspace(lo, hi, n_bins + 1)


def bin_index(variance: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each variance (0 .. len(edges) - 2); values beyond the ends go to the end bins."""
    return np.clip(np.searchsorted(edges, variance, side="right") - 1, 0, len(edges) - 2)


def ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values`` (1-D), ties given the mean of their ranks."""
    values = np.asarray(values)
    order = np.argsort(values, kind="stable")
    rank = np.empty(values.size, dtype=np.float64)
    rank[order] = np.arange(1, values.size + 1)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    return (np.bincount(inverse, weights=rank) / counts)[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman rank correlation of two 1-D arrays; None when one is constant or n < 2."""
    if a.size < 2:
        return None
    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = math.sqrt(float(np.dot(ra, ra)) * float(np.dot(rb, rb)))
    return float(np.dot(ra, rb) / denominator) if denominator > 0 else None


def sparsification(
    std: np.ndarray, abs_error: np.ndarray, fractions: np.ndarray = FRACTIONS
) -> tuple[np.ndarray, np.ndarray]:
    """(model, oracle) RMSE of the values left after removing each fraction of ``fractions``:
    the largest ``std`` first (model) or the largest ``abs_error`` first (oracle); floor(f n)
    values are removed. ``std`` and ``abs_error`` are 1-D of the same length n >= 1."""
    n = abs_error.size
    removed = np.floor(np.asarray(fractions) * n).astype(np.int64)
    curves = []
    for key in (std, abs_error):
        squared = abs_error[np.argsort(-key, kind="stable")].astype(np.float64) ** 2
        kept_sum = np.concatenate([np.cumsum(squared[::-1])[::-1], [0.0]])  # sum of [k:]
        curves.append(np.sqrt(kept_sum[removed] / (n - removed)))
    return curves[0], curves[1]


def trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    """Area under y(x) by the trapezoid rule."""
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2.0)


@dataclass
class RegionAccumulator:
    """Streamed sums of one region: per variance bin the count, sum sigma^2 and sum e^2, and
    the sample (random key, sigma, |e|) of at most ``max_samples`` values."""

    edges: np.ndarray
    max_samples: int = MAX_SAMPLES
    seed: int = SEED
    count: np.ndarray = field(init=False)
    sum_var: np.ndarray = field(init=False)
    sum_sq: np.ndarray = field(init=False)
    sample: tuple[np.ndarray, np.ndarray, np.ndarray] = field(init=False)

    def __post_init__(self) -> None:
        n_bins = len(self.edges) - 1
        self.count = np.zeros(n_bins, np.int64)
        self.sum_var, self.sum_sq = np.zeros(n_bins), np.zeros(n_bins)
        self.sample = (np.empty(0), np.empty(0, np.float32), np.empty(0, np.float32))
        self._rng = np.random.default_rng(self.seed)

    def add(self, std: np.ndarray, error: np.ndarray) -> None:
        """Add values: ``std`` and ``error`` of any equal shape, reflectance."""
        std = np.asarray(std, np.float32).ravel()
        error = np.asarray(error, np.float32).ravel()
        variance = std.astype(np.float64) ** 2
        k = bin_index(variance, self.edges)
        n_bins = len(self.count)
        self.count += np.bincount(k, minlength=n_bins)
        self.sum_var += np.bincount(k, weights=variance, minlength=n_bins)
        self.sum_sq += np.bincount(k, weights=error.astype(np.float64) ** 2, minlength=n_bins)
        keys = self._rng.random(std.size)
        old_keys, old_std, old_err = self.sample
        if old_keys.size >= self.max_samples:  # only keys below the largest kept can enter
            take = keys < old_keys.max()
            keys, std, error = keys[take], std[take], error[take]
        keys = np.concatenate([old_keys, keys])
        std, abs_error = np.concatenate([old_std, std]), np.concatenate([old_err, np.abs(error)])
        if keys.size > self.max_samples:
            keep = np.argpartition(keys, self.max_samples - 1)[: self.max_samples]
            keys, std, abs_error = keys[keep], std[keep], abs_error[keep]
        self.sample = (keys, std, abs_error)

    def result(self, fractions: np.ndarray = FRACTIONS) -> dict[str, Any] | None:
        """The region's figures (module docstring); None when it holds no value."""
        n = int(self.count.sum())
        if n == 0:
            return None
        used = self.count > 0
        mean_var = self.sum_var[used] / self.count[used]
        mean_sq = self.sum_sq[used] / self.count[used]
        _, std, abs_error = self.sample
        model, oracle = sparsification(std, abs_error, fractions)
        ause = trapezoid(model - oracle, np.asarray(fractions))
        return {
            "n_values": n,
            "n_sampled": int(std.size),
            "predicted_rmse": math.sqrt(float(self.sum_var.sum()) / n),
            "observed_rmse": math.sqrt(float(self.sum_sq.sum()) / n),
            "uce": float(np.sum(self.count[used] / n * np.abs(mean_var - mean_sq))),
            "spearman": spearman(std, abs_error),
            "ause": ause,
            "ause_relative": ause / model[0] if model[0] > 0 else None,
            "reliability": {
                "variance_low": self.edges[:-1][used].tolist(),
                "variance_high": self.edges[1:][used].tolist(),
                "n": self.count[used].tolist(),
                "predicted_rmse": np.sqrt(mean_var).tolist(),
                "observed_rmse": np.sqrt(mean_sq).tolist(),
            },
            "sparsification": {
                "fraction_removed": np.asarray(fractions).tolist(),
                "model_rmse": model.tolist(),
                "oracle_rmse": oracle.tolist(),
            },
        }


class UncertaintyAccumulator:
    """One :class:`RegionAccumulator` per region of ``REGIONS``, fed batch by batch."""

    def __init__(self, max_samples: int = MAX_SAMPLES, n_bins: int = N_BINS, seed: int = SEED):
        edges = bin_edges(n_bins)
        self.regions = {
            region: RegionAccumulator(edges, max_samples, seed + i)
            for i, region in enumerate(REGIONS)
        }

    def add(self, std: np.ndarray, error: np.ndarray, mask: np.ndarray) -> None:
        """``std``, ``error``: (B, H, W, C) reflectance; ``mask``: (B, H, W), nonzero = covered."""
        covered = np.asarray(mask) != 0
        self.regions["all"].add(std, error)
        self.regions["covered"].add(std[covered], error[covered])
        self.regions["clear"].add(std[~covered], error[~covered])

    def result(self) -> dict[str, dict[str, Any] | None]:
        return {region: acc.result() for region, acc in self.regions.items()}


def predict_std(
    model: Any, cloudy_dn: np.ndarray, s1_db: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, sigma) of an aleatoric model on a batch, both (B, H, W, 10) reflectance,
    the prediction clipped to [0, 1] (``cloudy_dn`` DN, ``s1_db`` dB as ``model_outputs``)."""
    outputs = model_outputs(model, cloudy_dn, s1_db)
    prediction = to_reflectance(denormalise_optical(outputs[PREDICTION_OUTPUT]))
    return prediction, std_reflectance(outputs[LOG_SCALE_OUTPUT])


def evaluate_uncertainty(
    model: Any, store: PatchStore, batch_size: int = 4, max_samples: int = MAX_SAMPLES
) -> dict[str, Any]:
    """The uncertainty report of ``model`` on every patch of ``store`` (full patches, a batch
    at a time): ``{"uncertainty": "aleatoric", "regions": {region: figures | None}, ...}``, or
    ``{"uncertainty": "none"}`` for a model without a log-scale output (nothing is run)."""
    if uncertainty_of(model) == "none":
        return {"uncertainty": "none"}
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    check_store(store)
    n = len(store)
    accumulator = UncertaintyAccumulator(max_samples)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        cloudy = np.asarray(store.s2_cloudy[start:stop])
        prediction, std = predict_std(model, cloudy, np.asarray(store.s1[start:stop]))
        error = prediction - to_reflectance(store.s2[start:stop])
        accumulator.add(std, error, np.asarray(store.mask[start:stop]))
    logger.info("Uncertainty evaluated on %d patches", n)
    return {
        "uncertainty": "aleatoric",
        "n_patches": n,
        "regions": rounded(accumulator.result()),
        "definitions": DEFINITIONS,
    }


def headline(report: Mapping[str, Any]) -> str:
    """One line per region: UCE, AUSE, Spearman, predicted against observed RMSE."""
    if report.get("uncertainty") != "aleatoric":
        return "The model predicts no uncertainty (model.uncertainty: none)"
    lines = [f"{'region':9}{'UCE':>10}{'AUSE':>9}{'rho':>7}{'pred RMSE':>11}{'obs RMSE':>10}"]
    for region, v in report["regions"].items():
        if v is None:
            lines.append(f"{region:9}  no pixel")
            continue
        rho = "n/a" if v["spearman"] is None else f"{v['spearman']:.3f}"
        lines.append(
            f"{region:9}{v['uce']:>10.2e}{v['ause']:>9.4f}{rho:>7}"
            f"{v['predicted_rmse']:>11.4f}{v['observed_rmse']:>10.4f}"
        )
    return "\n".join(lines)
