"""Thin nodes: validated ``params:evaluation`` in, tml_cloudremoval.evaluation does the work."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from tml_cloudremoval.bands import TML_BAND_NAMES
from tml_cloudremoval.data.patch_store import PatchStore
from tml_cloudremoval.evaluation import evaluate, examples, plots
from tml_cloudremoval.evaluation.config import evaluation_config

logger = logging.getLogger(__name__)


def evaluate_model(
    model: Any, test_patches: PatchStore, params: dict[str, Any]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Metrics over the whole test split (full patches) and the per-patch table; logs a summary."""
    cfg = evaluation_config(params)
    metrics, per_patch = evaluate.evaluate_store(model, test_patches, batch_size=cfg.batch_size)
    logger.info("Headline figures:\n%s", evaluate.headline(metrics))
    for note in metrics["notes"]:
        logger.warning("Evaluation note: %s", note)
    return metrics, per_patch


def plot_examples(model: Any, test_patches: PatchStore, params: dict[str, Any]) -> Figure:
    """A row of SAR VV, cloudy RGB, prediction, target and mask for a few test patches."""
    cfg = evaluation_config(params)
    indices = examples.select_examples(test_patches, cfg.n_examples, cfg.example_indices)
    return plots.plot_examples(examples.example_data(model, test_patches, indices))


def plot_band_errors(metrics: dict[str, Any]) -> Figure:
    """Per-band RMSE, model against the cloudy-input baseline."""
    return plots.plot_band_errors(metrics, metrics.get("bands") or TML_BAND_NAMES)


def plot_training_curves(training_summary: dict[str, Any]) -> Figure:
    """Loss and val_loss per epoch from the ``history`` of the training summary.

    Taking the summary (the training node's output) as input orders this node after training
    and shows the edge in kedro-viz. A summary without history gives a figure that says so.
    """
    history = training_summary.get("history") or []
    source = training_summary.get("run_dir", "the training summary")
    if not history:
        message = f"No epoch in the training history of {source}"
        logger.warning(message)
        return plots.plot_training_curves(None, message)
    return plots.plot_training_curves(pd.DataFrame(history), f"Training curves ({source})")
