"""Evaluation: trained model + test patch store -> metrics.json, per-patch CSV, report, figures."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from .nodes import (
    evaluate_model,
    evaluate_uncertainty,
    plot_band_errors,
    plot_examples,
    plot_training_curves,
    update_model_card,
    write_evaluation_report,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Named nodes; every output is a persisted catalog entry (conf/base/catalog_evaluation.yml)."""
    return Pipeline(
        [
            Node(
                evaluate_model,
                inputs=["dsen2cr_model", "test_patches", "params:evaluation", "params:data"],
                outputs=["evaluation_metrics", "evaluation_per_patch"],
                name="evaluate_model",
            ),
            Node(
                write_evaluation_report,
                inputs="evaluation_metrics",
                outputs="evaluation_report",
                name="write_evaluation_report",
            ),
            Node(
                plot_examples,
                inputs=["dsen2cr_model", "test_patches", "params:evaluation"],
                outputs="evaluation_examples",
                name="plot_evaluation_examples",
            ),
            Node(
                evaluate_uncertainty,
                inputs=["dsen2cr_model", "test_patches", "params:evaluation"],
                outputs=["evaluation_uncertainty", "evaluation_uncertainty_figure"],
                name="evaluate_uncertainty",
            ),
            Node(
                update_model_card,
                inputs=["dsen2cr_model", "evaluation_metrics"],
                outputs="model_card",
                name="update_model_card",
            ),
            Node(
                plot_band_errors,
                inputs="evaluation_metrics",
                outputs="evaluation_band_errors",
                name="plot_band_errors",
            ),
            Node(
                plot_training_curves,
                inputs="training_summary",
                outputs="training_curves",
                name="plot_training_curves",
            ),
        ]
    )
