"""Evaluate a cloud-removal model on a patch store: streaming metrics, per-patch table.

The model sees whole patches (e.g. 256 x 256 px, never a corner crop), a batch at a time, so memory
depends on the batch size and not on the number of test patches. Metrics are computed on
reflectance (see :mod:`tml_cloudremoval.evaluation.metrics`) for the model and for the baseline
"the cloudy input as the prediction", which any useful model must beat on cloud-covered pixels.
Beside the pooled figures, the per-image protocol of the literature (overall and by cloud cover of
the patch) comes from the per-patch table (see :mod:`tml_cloudremoval.evaluation.protocol`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tml_cloudremoval.bands import S1_BAND_NAMES, TML_BAND_NAMES
from tml_cloudremoval.data.patch_store import PatchStore
from tml_cloudremoval.errors import ProjectError
from tml_cloudremoval.evaluation import protocol
from tml_cloudremoval.evaluation.artifacts import HF_SIGMA_PX, ArtifactAccumulator
from tml_cloudremoval.evaluation.metrics import (
    METRIC_NAMES,
    REGIONS,
    SSIM_BORDER,
    MetricAccumulator,
    figures,
    patch_sums,
    to_reflectance,
)
from tml_cloudremoval.models.uncertainty import PREDICTION_OUTPUT
from tml_cloudremoval.normalise import denormalise_optical, normalise_optical, normalise_sar

logger = logging.getLogger(__name__)

PREDICTORS: tuple[str, ...] = ("model", "baseline_cloudy_input")
"""Keys of metrics.json: the model and the cloudy-input baseline."""

PER_PATCH_PREFIX = protocol.PREFIXES
PER_PATCH_REGIONS: tuple[str, ...] = REGIONS
PER_PATCH_SORT = "model_mae_all"
"""The per-patch table is sorted by this column, worst (largest) first."""

DEFINITIONS = {
    "units": "reflectance = DN / 10000, clipped to [0, 1]; PSNR in dB for peak 1; SAM in degrees",
    "regions": "all pixels; covered = cloud or shadow (mask 1); clear = mask 0",
    "aggregation": (
        "model, baseline_cloudy_input: pixels pooled over all patches: MAE = sum|e| / n; "
        "RMSE = sqrt(pooled MSE); PSNR = 20 log10(1 / RMSE); SAM = mean pixel angle; "
        "SSIM = mean of the SSIM map"
    ),
    "per_image": protocol.PER_IMAGE_DEFINITION,
    "per_image_by_cloud_cover": protocol.BINS_DEFINITION,
    "ssim": (
        "tf.image.ssim, Gaussian window 11 px, sigma 1.5, data range 1, mean over bands; the map "
        f"excludes the {SSIM_BORDER} px patch border; covered/clear SSIM = mean of the map over "
        "the region's pixels (n_pixels_ssim)"
    ),
    "sam": "two zero spectra = 0 deg, one zero spectrum = 90 deg",
    "baseline_cloudy_input": "the cloudy input itself taken as the prediction",
    "artifacts": (
        "covered pixels: hf_energy_ratio_covered = mean squared high-pass (x - Gaussian(x), "
        f"sigma {HF_SIGMA_PX:g} px) of the prediction / the same of the target (1: the "
        "target's texture, > 1: added noise or speckle, < 1: blur); bias_covered = mean "
        "prediction - target per band"
    ),
}


JSON_DIGITS = 7
"""Significant digits of the figures in metrics.json (float32 inputs carry about 7)."""


def rounded(value: Any, digits: int = JSON_DIGITS) -> Any:
    """``value`` with every float rounded to ``digits`` significant digits (dicts, lists kept)."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if math.isfinite(value) else value
    if isinstance(value, Mapping):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    return value


def model_input_names(model: Any) -> tuple[str, ...]:
    """Names of the model's inputs ("optical", and "sar" unless the model was built without)."""
    return tuple(tensor.name for tensor in model.inputs)


def model_outputs(model: Any, cloudy_dn: np.ndarray, s1_db: np.ndarray) -> dict[str, np.ndarray]:
    """Run the model on a batch: its outputs in model units, by name.

    ``cloudy_dn``: (B, H, W, 10) optical DN; ``s1_db``: (B, H/4, W/4, 2) VV, VH in dB.
    A plain model gives ``{"prediction": ...}``; an aleatoric one (``models.uncertainty``) its
    dict, ``{"prediction", "log_scale"}``, each (B, H, W, 10).
    """
    names = model_input_names(model)
    unknown = set(names) - {"optical", "sar"}
    if unknown:
        raise ValueError(f"model has inputs {names}; expected 'optical' and optionally 'sar'")
    available = {"optical": normalise_optical(cloudy_dn), "sar": normalise_sar(s1_db)}
    inputs = {name: available[name] for name in names}
    output = model.predict_on_batch(inputs)
    if isinstance(output, Mapping):
        return {name: np.asarray(value) for name, value in output.items()}
    return {PREDICTION_OUTPUT: np.asarray(output)}


def predict_dn(model: Any, cloudy_dn: np.ndarray, s1_db: np.ndarray) -> np.ndarray:
    """Run the model on a batch (see :func:`model_outputs`): the prediction in DN, float32
    (B, H, W, 10), neither clipped nor rounded (the ``"prediction"`` of a dict-output model).
    """
    output = model_outputs(model, cloudy_dn, s1_db)[PREDICTION_OUTPUT]
    if output.shape != cloudy_dn.shape:
        raise ValueError(
            f"model output shape {output.shape} differs from the optical input {cloudy_dn.shape}"
        )
    return denormalise_optical(output)


def check_store(store: PatchStore) -> None:
    """Fail early, naming the store, if it cannot be evaluated (:class:`ProjectError`)."""
    where = getattr(store, "path", "patch store")
    if len(store) == 0:
        why = ""
        if store.meta.get("split_method") == "official":
            why = " (data.split is official and no official test scene is under data.root)"
        raise ProjectError(f"{where}: the store holds no patch{why}; nothing to evaluate")
    bands = list(store.meta.get("bands", TML_BAND_NAMES))
    if bands != list(TML_BAND_NAMES) or store.s2.shape[-1] != len(TML_BAND_NAMES):
        raise ValueError(f"{where}: bands {bands} are not the TML bands {list(TML_BAND_NAMES)}")
    n, h, w = store.s2.shape[:3]
    if store.s2_cloudy.shape != store.s2.shape or store.mask.shape != (n, h, w):
        raise ValueError(
            f"{where}: s2_cloudy {store.s2_cloudy.shape}, s2 {store.s2.shape} and mask "
            f"{store.mask.shape} do not agree"
        )
    if store.s1.shape[0] != n or store.s1.shape[-1] != len(S1_BAND_NAMES):
        raise ValueError(f"{where}: s1 has shape {store.s1.shape}, expected ({n}, h, w, 2)")
    if min(h, w) <= 2 * SSIM_BORDER:
        raise ValueError(f"{where}: patches of {h} x {w} px are too small for SSIM")


def index_column(store: PatchStore, name: str) -> list[str]:
    """The ``name`` column of the store's index as text (empty strings when it has none)."""
    index = store.index
    if name in index.columns and len(index) == len(store):
        return [str(v) for v in index[name]]
    return [""] * len(store)


def evaluate_store(
    model: Any,
    store: PatchStore,
    batch_size: int = 4,
    band_names: Sequence[str] = TML_BAND_NAMES,
    coverage_bins: Sequence[float] = protocol.COVERAGE_BINS_PERCENT,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Run ``model`` over every patch of ``store`` and compute the metrics.

    Returns ``(metrics, per_patch)``: ``metrics`` is the metrics.json layout
    ({"model": {"all": {...}, "covered": {...} | None, "clear": ..., "per_band_rmse": {...}, ...},
    "baseline_cloudy_input": {...}, "per_image": {...}, "per_image_by_cloud_cover": [...],
    "n_patches": .., ...}); ``per_patch`` has one row per patch (scene_id, patch, cloud cover,
    model and baseline MAE/RMSE/PSNR/SSIM/SAM over all, covered and clear pixels), worst model
    MAE first. ``coverage_bins``: edges in percent (see :mod:`.protocol`).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    faults = protocol.check_coverage_bins(coverage_bins)
    if faults:
        raise ValueError("coverage_bins: " + "; ".join(faults))
    check_store(store)
    n, h, w = store.s2.shape[:3]
    accumulators = {who: MetricAccumulator(band_names) for who in PREDICTORS}
    artifacts = {who: ArtifactAccumulator(band_names) for who in PREDICTORS}
    rows: dict[str, list[Any]] = {"position": list(range(n)), "cloud_cover": []}
    n_batches = math.ceil(n / batch_size)
    logger.info("Evaluating %d patches of %d x %d px in %d batches", n, h, w, n_batches)
    for b, start in enumerate(range(0, n, batch_size)):
        stop = min(start + batch_size, n)
        _evaluate_batch(model, store, (start, stop), (accumulators, artifacts), rows)
        if (b + 1) % max(1, n_batches // 10) == 0 or stop == n:
            logger.info("Evaluated %d / %d patches", stop, n)
    per_patch = _per_patch_table(store, rows)
    metrics: dict[str, Any] = {
        who: rounded({**accumulators[who].result(), "artifacts": artifacts[who].result()})
        for who in PREDICTORS
    }
    metrics["per_image"] = rounded(protocol.per_image_summary(per_patch))
    metrics["coverage_bins_percent"] = [float(e) for e in coverage_bins]
    metrics["per_image_by_cloud_cover"] = rounded(protocol.by_cloud_cover(per_patch, coverage_bins))
    n_outside = protocol.outside_bins(per_patch, coverage_bins)
    cover = per_patch["cloud_cover"].to_numpy()
    metrics.update(
        {
            "n_patches": n,
            "n_pixels": n * h * w,
            "patch_size": [h, w],
            "cloud_cover": rounded(float(np.mean(cover))),
            "n_patches_all_clear": int(np.sum(cover == 0)),
            "n_patches_all_covered": int(np.sum(cover == 1)),
            "bands": list(band_names),
            "definitions": DEFINITIONS,
            "notes": _notes(metrics) + protocol.protocol_notes(metrics, n_outside),
        }
    )
    return metrics, per_patch


def _evaluate_batch(
    model: Any,
    store: PatchStore,
    span: tuple[int, int],
    sums: tuple[Mapping[str, MetricAccumulator], Mapping[str, ArtifactAccumulator]],
    rows: dict[str, list[Any]],
) -> None:
    """Patches ``start:stop`` (``span``): add their sums to the metric and artifact
    accumulators (``sums``) and their rows to ``rows``."""
    start, stop = span
    accumulators, artifacts = sums
    cloudy = np.asarray(store.s2_cloudy[start:stop])
    mask = np.asarray(store.mask[start:stop])
    target = to_reflectance(store.s2[start:stop])
    predictions = {
        "model": to_reflectance(predict_dn(model, cloudy, np.asarray(store.s1[start:stop]))),
        "baseline_cloudy_input": to_reflectance(cloudy),
    }
    rows["cloud_cover"].extend((mask != 0).mean(axis=(1, 2)).tolist())
    for who, pred in predictions.items():
        artifacts[who].add(pred, target, mask)
        region_sums = patch_sums(pred, target, mask)
        accumulators[who].add(region_sums)
        for region in PER_PATCH_REGIONS:
            for i in range(stop - start):
                values = figures(region_sums[region], i) or {}
                for metric in METRIC_NAMES:
                    column = f"{PER_PATCH_PREFIX[who]}_{metric}_{region}"
                    value = values.get(metric)
                    rows.setdefault(column, []).append(np.nan if value is None else value)


def _per_patch_table(store: PatchStore, rows: Mapping[str, list[Any]]) -> pd.DataFrame:
    """One row per patch (scene, patch id, figures), worst model MAE first."""
    per_patch = pd.DataFrame(
        {
            "scene_id": index_column(store, "scene_id"),
            "patch": index_column(store, "patch"),
            **rows,
        }
    )
    per_patch = per_patch.sort_values(PER_PATCH_SORT, ascending=False, kind="stable")
    return per_patch.reset_index(drop=True)


def _notes(metrics: Mapping[str, Any]) -> list[str]:
    """Say why a figure is null."""
    notes = []
    missing = {"covered": "cloud or shadow", "clear": "clear", "all": ""}
    for region in REGIONS:
        if metrics["model"][region] is None:
            notes.append(
                f"{region}: no {missing[region]} pixel in the evaluated patches, so its figures "
                "and per-band RMSE are null"
            )
    for who in PREDICTORS:
        for region in REGIONS:
            values = metrics[who][region]
            if values is None:
                continue
            if values["psnr"] is None:
                notes.append(f"{who} {region}: RMSE is 0, PSNR is infinite (null)")
            if values["ssim"] is None:
                notes.append(
                    f"{who} {region}: no pixel of the region lies {SSIM_BORDER} px or more inside "
                    "a patch, so SSIM is null"
                )
    return notes


def _fmt(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _headline_rows(figures_of: Mapping[str, Any], count: str, missing: str) -> list[str]:
    """Rows ``predictor region MAE RMSE PSNR SSIM SAM count`` of {predictor: {region: ..}}."""
    lines = []
    for region in REGIONS:
        for who in PREDICTORS:
            v = figures_of[who][region]
            label = "model" if who == "model" else "baseline"
            if v is None:
                lines.append(f"{label:10}{region:9}  {missing}")
                continue
            lines.append(
                f"{label:10}{region:9}{_fmt(v['mae'], 4):>8}{_fmt(v['rmse'], 4):>8}"
                f"{_fmt(v['psnr'], 2):>7}{_fmt(v['ssim'], 3):>7}{_fmt(v['sam_deg'], 2):>7}"
                f"{v[count]:>10}"
            )
    return lines


def headline(metrics: Mapping[str, Any]) -> str:
    """A short plain-text table of the main figures, model against the cloudy-input baseline:
    pooled over pixels, then per-image means (the published protocol) when present."""
    columns = f"{'region':9}{'MAE':>8}{'RMSE':>8}{'PSNR':>7}{'SSIM':>7}{'SAM':>7}"
    lines = [
        f"Evaluation on {metrics['n_patches']} patches ({metrics['n_pixels']} px, "
        f"{100 * metrics['cloud_cover']:.1f} % cloud/shadow); reflectance, SAM in degrees",
        f"{'pooled':10}{columns}{'pixels':>10}",
        *_headline_rows(metrics, "n_pixels", "no pixel"),
    ]
    if "per_image" in metrics:
        lines.append(f"{'per image':10}{columns}{'patches':>10}")
        lines += _headline_rows(metrics["per_image"], "n_patches", "no patch")
    model, base = metrics["model"]["covered"], metrics["baseline_cloudy_input"]["covered"]
    if model is not None and base is not None:
        for key, name in (("mae", "MAE"), ("sam_deg", "SAM")):
            verdict = "beats" if model[key] < base[key] else "does NOT beat"
            lines.append(
                f"On covered pixels the model {verdict} the cloudy input on {name}: "
                f"{model[key]:.4f} vs {base[key]:.4f}"
            )
    return "\n".join(lines)
