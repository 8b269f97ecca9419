"""Inference: trained model + cloudy TML scene(s) + SAR -> cloud-free GeoTIFF(s) + quicklooks.

Lineage: params:inference -> inference_plan -> cloud_masks; dsen2cr_model + inference_plan +
cloud_masks -> cloudfree_scenes, uncertainty_scenes, epistemic_scenes (one pass per scene; the
last two only for an aleatoric model / an ensemble) -> scene_quicklooks; cloudfree_scenes ->
inference_report and inference_runs (the run summary of the run's shard). Every output is a
catalog dataset (conf/base/catalog_inference.yml); the plan and the report are saved per shard.
"""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from .nodes import (
    make_cloud_masks,
    make_scene_quicklooks,
    plan_inference,
    predict_cloudfree_scenes,
    report_inference,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Named nodes; every output persisted."""
    return Pipeline(
        [
            Node(
                plan_inference,
                inputs="params:inference",
                outputs="inference_plan",
                name="plan_inference",
            ),
            Node(  # outputs (issue 11, item 3)
                make_cloud_masks,
                inputs=["inference_plan", "params:inference"],
                outputs="cloud_masks",
                name="make_cloud_masks",
            ),
            Node(
                predict_cloudfree_scenes,
                inputs=["dsen2cr_model", "inference_plan", "cloud_masks", "params:inference"],
                outputs=["cloudfree_scenes", "uncertainty_scenes", "epistemic_scenes"],
                name="predict_cloudfree_scenes",
            ),
            Node(
                make_scene_quicklooks,
                inputs=[
                    "cloudfree_scenes",
                    "uncertainty_scenes",
                    "epistemic_scenes",
                    "inference_plan",
                    "params:inference",
                ],
                outputs="scene_quicklooks",
                name="make_scene_quicklooks",
            ),
            Node(
                report_inference,
                inputs=["cloudfree_scenes", "inference_plan", "params:inference"],
                outputs=["inference_report", "inference_runs"],
                name="report_inference",
            ),
        ]
    )
