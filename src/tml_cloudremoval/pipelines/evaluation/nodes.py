"""Thin nodes: read parameters, call tml_cloudremoval.evaluation / plots, return catalog data."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from tml_cloudremoval import evaluation, plots
from tml_cloudremoval.patch_store import PatchStore
from tml_cloudremoval.training import LOG_CSV

logger = logging.getLogger(__name__)


def evaluate_model(
    model: Any, test_patches: PatchStore, params: dict[str, Any]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Metrics over the whole test split (full patches) and the per-patch table; logs a summary."""
    metrics, per_patch = evaluation.evaluate_store(
        model, test_patches, batch_size=int(params["batch_size"])
    )
    logger.info("Headline figures:\n%s", evaluation.headline(metrics))
    for note in metrics["notes"]:
        logger.warning("Evaluation note: %s", note)
    return metrics, per_patch


def plot_examples(model: Any, test_patches: PatchStore, params: dict[str, Any]) -> Figure:
    """A row of SAR VV, cloudy RGB, prediction, target and mask for a few test patches."""
    indices = evaluation.select_examples(
        test_patches, int(params["n_examples"]), params.get("example_indices")
    )
    return plots.plot_examples(evaluation.example_data(model, test_patches, indices))


def plot_band_errors(metrics: dict[str, Any]) -> Figure:
    """Per-band RMSE, model against the cloudy-input baseline."""
    return plots.plot_band_errors(metrics, metrics.get("bands") or evaluation.TML_BAND_NAMES)


def plot_training_curves(run_dir: str) -> Figure:
    """Loss and val_loss per epoch from ``<training.run_dir>/training_log.csv``.

    A missing or unreadable log gives a figure that says so (and a warning), not a failed run:
    the evaluation of a model trained elsewhere has no log.
    """
    path = Path(run_dir) / LOG_CSV
    if not path.is_file():
        message = (
            f"No training log at {path}: run `kedro run --pipeline training` to make one "
            "(a model trained elsewhere has none)"
        )
        logger.warning(message)
        return plots.plot_training_curves(None, message)
    try:
        log = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        message = f"Training log {path} could not be read: {err}"
        logger.warning(message)
        return plots.plot_training_curves(None, message)
    if log.empty:
        logger.warning("Training log %s holds no epoch yet", path)
        return plots.plot_training_curves(None, f"Training log {path} holds no epoch yet")
    return plots.plot_training_curves(log, f"Training curves ({path})")
