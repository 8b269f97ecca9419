"""Inference: trained model + cloudy TML scene(s) + SAR -> cloud-free GeoTIFF(s) + quicklooks."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from .nodes import make_quicklooks, plan_inference, predict_scenes


def create_pipeline(**kwargs) -> Pipeline:
    """Named nodes; outputs are persisted JSON (conf/base/catalog_inference.yml).

    The GeoTIFFs and PNGs themselves are written by the nodes (windowed, atomic) at the paths
    in ``params:inference``; the JSON entries record them.
    """
    return Pipeline(
        [
            Node(
                plan_inference,
                inputs="params:inference",
                outputs="inference_plan",
                name="plan_inference",
            ),
            Node(
                predict_scenes,
                inputs=["dsen2cr_model", "inference_plan", "params:inference"],
                outputs="inference_report",
                name="predict_scenes",
            ),
            Node(
                make_quicklooks,
                inputs=["inference_plan", "inference_report", "params:inference"],
                outputs="inference_quicklooks",
                name="make_inference_quicklooks",
            ),
        ]
    )
