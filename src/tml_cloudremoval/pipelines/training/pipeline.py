"""Training pipeline: patch stores + run folder -> trained DSen2-CR model (+ summary)."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from .nodes import train_model


def create_pipeline(**kwargs) -> Pipeline:
    """One node, ``train_model``: train_patches + val_patches + training_run (the run folder it
    resumes from and writes) -> dsen2cr_model, training_summary."""
    return Pipeline(
        [
            Node(
                func=train_model,
                inputs=[
                    "train_patches",
                    "val_patches",
                    "training_run",
                    "params:model",
                    "params:training",
                ],
                outputs=["dsen2cr_model", "training_summary"],
                name="train_model",
            )
        ]
    )
