"""Ablation pipeline: per variant of ``params:ablation``, the training and evaluation
pipelines in the namespace ``ablation.<variant>``, then one table and one figure.

The variant list is read when the pipelines are registered (Kedro builds pipelines before it
runs them): from the run's parameters, env and ``--params`` included
(``hooks.registration_parameters``). Each variant reuses the nodes of ``pipelines.training``
and ``pipelines.evaluation`` as they are; only their ``params:model`` / ``params:training``
inputs become the variant's own settings, which a first node merges and validates. Its
datasets (``ablation.<variant>.dsen2cr_model``, ``...training_run``, ...) come from the dataset
factories of ``conf/base/catalog_ablation.yml``; the patch stores and ``params:evaluation`` are
shared.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kedro.pipeline import Node, Pipeline

from tml_cloudremoval.pipelines.evaluation import create_pipeline as evaluation_pipeline
from tml_cloudremoval.pipelines.training import create_pipeline as training_pipeline
from tml_cloudremoval.training.variants import variant_names

from .nodes import compare_variants_node, plot_variants_node, variant_parameters_node

SHARED_INPUTS = {"train_patches", "val_patches", "test_patches"}
"""The data_processing stores every variant reads (not namespaced)."""
VARIANT_PARAMS = {"params:model": "model_params", "params:training": "training_params"}
"""The training pipeline's parameter inputs -> the variant's datasets that replace them."""


def _with_variant_params(pipeline: Pipeline) -> list[Node]:
    """The nodes of ``pipeline`` with ``params:model`` / ``params:training`` read from the
    variant's datasets instead (Kedro maps parameters only onto parameters)."""
    return [
        Node(
            node.func,
            inputs=[VARIANT_PARAMS.get(name, name) for name in node.inputs],
            outputs=node.outputs,
            name=node.name,
            tags=node.tags,
        )
        for node in pipeline.nodes
    ]


def variant_pipeline(name: str) -> Pipeline:
    """Training + evaluation of variant ``name`` in namespace ``ablation.<name>``."""
    settings = Node(
        variant_parameters_node(name),
        inputs=[f"params:ablation.variants.{name}", "params:model", "params:training"],
        outputs=list(VARIANT_PARAMS.values()),
        name="variant_parameters",
    )
    nodes = [settings, *_with_variant_params(training_pipeline()), *evaluation_pipeline().nodes]
    return Pipeline(
        nodes,
        namespace=f"ablation.{name}",
        inputs=SHARED_INPUTS,
        parameters={"model", "training", "evaluation", "data", f"ablation.variants.{name}"},
    )


def create_pipeline(variants: Mapping[str, Any] | None = None, **kwargs: Any) -> Pipeline:
    """Every variant of ``variants`` (default: ``params:ablation.variants`` of the run), then
    ``ablation.compare_variants`` -> ``ablation_comparison`` and ``ablation.plot_variants`` ->
    ``ablation_figure`` (namespace ``ablation``, so kedro-viz groups the whole ablation). No
    variant: an empty pipeline (the parameter check says why)."""
    if variants is None:
        from tml_cloudremoval.hooks import registration_parameters

        variants = (registration_parameters().get("ablation") or {}).get("variants")
    names = variant_names(variants)
    if not names:
        return Pipeline([])
    per_variant = [variant_pipeline(name) for name in names]
    results = [
        f"ablation.{n}.{d}" for n in names for d in ("evaluation_metrics", "training_summary")
    ]
    compare = Node(
        compare_variants_node(names),
        inputs=["params:ablation", *results],
        outputs="ablation_comparison",
        name="compare_variants",
        namespace="ablation",
    )
    plot = Node(
        plot_variants_node(names),
        inputs=[
            "ablation_comparison",
            "test_patches",
            "params:ablation",
            *(f"ablation.{n}.dsen2cr_model" for n in names),
        ],
        outputs="ablation_figure",
        name="plot_variants",
        namespace="ablation",
    )
    return Pipeline([*per_variant, compare, plot])
