"""Training pipeline: patch stores -> trained DSen2-CR model (+ summary)."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from .nodes import train_model


def create_pipeline(**kwargs) -> Pipeline:
    """One node, ``train_model``: train_patches + val_patches -> dsen2cr_model, training_summary."""
    return Pipeline(
        [
            Node(
                func=train_model,
                inputs=["train_patches", "val_patches", "params:model", "params:training"],
                outputs=["dsen2cr_model", "training_summary"],
                name="train_model",
            )
        ]
    )
