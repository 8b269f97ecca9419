"""sample_data pipeline: two independent, named nodes whose products are catalog folders."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from .nodes import make_sample_sen12mscr, make_sample_tml_scene


def create_pipeline(**kwargs) -> Pipeline:
    """Synthetic SEN12MS-CR dataset + sample TML scene (each skipped when already up to date)."""
    return Pipeline(
        [
            Node(
                make_sample_sen12mscr,
                "params:sample_data",
                "sen12mscr_sample",
                name="make_sample_sen12mscr",
            ),
            Node(
                make_sample_tml_scene,
                "params:sample_data",
                "tml_scene_sample",
                name="make_sample_tml_scene",
            ),
        ]
    )
