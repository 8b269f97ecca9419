"""data_processing pipeline: every node named, every edge a persisted catalog entry."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from .nodes import (
    build_patch_stores,
    build_triplet_table,
    select_valid_triplets,
    split_triplets,
    validate_triplets,
)


def create_pipeline(**kwargs) -> Pipeline:
    """triplets (+ the official split table) -> split lists -> validation report -> checked
    lists -> patch stores."""
    return Pipeline(
        [
            Node(build_triplet_table, "params:data", "triplets", name="build_triplet_table"),
            Node(
                split_triplets,
                ["triplets", "sen12mscr_official_split", "params:data"],
                ["train_triplets", "val_triplets", "test_triplets"],
                name="split_triplets",
            ),
            Node(
                validate_triplets,
                ["train_triplets", "val_triplets", "test_triplets", "params:data"],
                "triplet_validation",
                name="validate_triplets",
            ),
            Node(
                select_valid_triplets,
                [
                    "train_triplets",
                    "val_triplets",
                    "test_triplets",
                    "triplet_validation",
                    "params:data",
                ],
                ["train_triplets_valid", "val_triplets_valid", "test_triplets_valid"],
                name="select_valid_triplets",
            ),
            Node(
                build_patch_stores,
                [
                    "train_triplets_valid",
                    "val_triplets_valid",
                    "test_triplets_valid",
                    "params:data",
                ],
                ["train_patches", "val_patches", "test_patches"],
                name="build_patch_stores",
            ),
        ]
    )
