"""Thin nodes: validated ``params:evaluation`` in, tml_cloudremoval.evaluation does the work."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from tml_cloudremoval.bands import TML_BAND_NAMES
from tml_cloudremoval.data.config import data_config
from tml_cloudremoval.data.patch_store import PatchStore
from tml_cloudremoval.evaluation import (
    evaluate,
    examples,
    literature,
    plots,
    plots_uncertainty,
    report,
    uncertainty,
)
from tml_cloudremoval.evaluation.config import EvaluationConfig, evaluation_config
from tml_cloudremoval.models.contract import TrainedModel, check_store
from tml_cloudremoval.models.model_card import ModelCardUpdate, evaluated_card

logger = logging.getLogger(__name__)


def _checked_model(trained: TrainedModel, store: PatchStore, cfg: EvaluationConfig) -> Any:
    """The Keras model, once the test store is known to match its contract (``ContractError``
    naming both values otherwise, unless ``evaluation.override_contract``)."""
    check_store(
        store.meta, store.path, trained.contract, trained.contract_source, cfg.override_contract
    )
    return trained.model


def evaluate_model(
    model: TrainedModel, test_patches: PatchStore, params: dict[str, Any], data: dict[str, Any]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Metrics over the whole test split (full patches): pooled, per image, by cloud cover and
    next to the published results (labelled from the contract, the test store and ``data``);
    the per-patch table; logs a summary."""
    cfg = evaluation_config(params)
    data_cfg = data_config(data)
    network = _checked_model(model, test_patches, cfg)
    metrics, per_patch = evaluate.evaluate_store(
        network, test_patches, batch_size=cfg.batch_size, coverage_bins=cfg.coverage_bins
    )
    facts = literature.run_facts(model.contract, test_patches, data_cfg, data_cfg.root)
    metrics["literature_comparison"] = evaluate.rounded(
        literature.comparison(metrics["per_image"], facts)
    )
    logger.info("Headline figures:\n%s", evaluate.headline(metrics))
    for note in metrics["notes"]:
        logger.warning("Evaluation note: %s", note)
    return metrics, per_patch


def plot_examples(model: TrainedModel, test_patches: PatchStore, params: dict[str, Any]) -> Figure:
    """A row of SAR VV, cloudy RGB, prediction, target and mask for a few test patches."""
    cfg = evaluation_config(params)
    network = _checked_model(model, test_patches, cfg)
    indices = examples.select_examples(test_patches, cfg.n_examples, cfg.example_indices)
    return plots.plot_examples(examples.example_data(network, test_patches, indices))


def write_evaluation_report(metrics: dict[str, Any]) -> str:
    """``evaluation_report.md``: pooled, per-image, by cloud cover and the literature table."""
    return report.report_markdown(metrics)


def evaluate_uncertainty(
    model: TrainedModel, test_patches: PatchStore, params: dict[str, Any]
) -> tuple[dict[str, Any], Figure]:
    """Calibration (UCE, reliability), sparsification (AUSE) and Spearman of the predicted
    uncertainty on the test split, and their figure; ``{"uncertainty": "none"}`` and a figure
    saying so for a model without uncertainty."""
    cfg = evaluation_config(params)
    network = _checked_model(model, test_patches, cfg)
    report = uncertainty.evaluate_uncertainty(network, test_patches, batch_size=cfg.batch_size)
    logger.info("Uncertainty:\n%s", uncertainty.headline(report))
    return report, plots_uncertainty.plot_uncertainty(report)


def update_model_card(model: TrainedModel, metrics: dict[str, Any]) -> ModelCardUpdate:
    """The model card of the evaluated version, rewritten with these figures (``model_card``)."""
    return evaluated_card(model, metrics)


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
