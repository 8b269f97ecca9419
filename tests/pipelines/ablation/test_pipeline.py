"""ablation pipeline: its shape, then a real run of every variant on tiny synthetic stores
(the project's catalog_ablation.yml with paths moved into tmp_path, SequentialRunner)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from support.synthetic_stores import synthetic_patch_store

from tml_cloudremoval.config import ConfigError
from tml_cloudremoval.pipelines.ablation import create_pipeline
from tml_cloudremoval.pipelines.ablation.pipeline import variant_pipeline
from tml_cloudremoval.pipelines.evaluation import create_pipeline as evaluation_pipeline
from tml_cloudremoval.pipelines.training import create_pipeline as training_pipeline
from tml_cloudremoval.training.variants import DEFAULT_VARIANTS

PROJECT = Path(__file__).resolve().parents[3]
BASE = PROJECT / "conf" / "base"
PER_VARIANT = (
    "training_run",
    "dsen2cr_model",
    "training_summary",
    "evaluation_metrics",
    "evaluation_per_patch",
)
"""The variant datasets other code (tracking) relies on, by these exact names."""


def _yaml(name: str) -> dict:
    return yaml.safe_load((BASE / name).read_text())


def test_each_variant_is_the_training_and_evaluation_nodes_in_its_namespace():
    pipe = variant_pipeline("no_sar")
    reused = {n.name for n in training_pipeline().nodes + evaluation_pipeline().nodes}
    assert {n.name for n in pipe.nodes} == {f"ablation.no_sar.{n}" for n in reused} | {
        "ablation.no_sar.variant_parameters"
    }
    assert {n.namespace for n in pipe.nodes} == {"ablation.no_sar"}
    train = next(n for n in pipe.nodes if n.name == "ablation.no_sar.train_model")
    assert train.func is training_pipeline().nodes[0].func  # the training node itself
    assert train.inputs == [
        "train_patches",
        "val_patches",
        "ablation.no_sar.training_run",
        "ablation.no_sar.model_params",
        "ablation.no_sar.training_params",
    ]
    assert pipe.inputs() == {
        "train_patches",
        "val_patches",
        "test_patches",
        "ablation.no_sar.training_run",
        "params:ablation.variants.no_sar",
        "params:model",
        "params:training",
        "params:evaluation",
        "params:data",  # the protocol labels the test split from the data settings
    }
    assert {f"ablation.no_sar.{d}" for d in PER_VARIANT} <= pipe.datasets()


def test_the_pipeline_has_every_variant_of_the_yaml_and_the_two_reports():
    variants = _yaml("parameters_ablation.yml")["ablation"]["variants"]
    assert variants == DEFAULT_VARIANTS
    pipe = create_pipeline(variants)
    assert {n.namespace for n in pipe.nodes} == {"ablation", *(f"ablation.{v}" for v in variants)}
    assert pipe.all_outputs() >= {"ablation_comparison", "ablation_figure"}
    for name in variants:
        assert {f"ablation.{name}.{d}" for d in PER_VARIANT} <= pipe.datasets()
    # a variant set to null is left out; none at all gives an empty pipeline
    without_l1 = create_pipeline({**variants, "l1": None})
    assert "ablation.l1.train_model" not in {n.name for n in without_l1.nodes}
    assert create_pipeline({}).nodes == []


def test_every_variant_dataset_has_a_factory_under_its_own_folders():
    """The catalog factories resolve each variant's datasets into data/06_models/ablation/<v>/
    and data/08_reporting/ablation/<v>/, none left to a MemoryDataset."""
    catalog = DataCatalog.from_config(_yaml("catalog_ablation.yml"))
    pipe = create_pipeline(DEFAULT_VARIANTS)
    for name in pipe.datasets() - {"train_patches", "val_patches", "test_patches"}:
        if name.startswith("params:"):
            continue
        described = catalog.get(name)._describe()
        path = str(described.get("filepath") or described.get("models_folder"))
        variant = name.split(".")[1] if name.startswith("ablation.") else None
        if variant:
            assert f"ablation/{variant}/" in path, (name, path)
        else:
            assert "data/08_reporting/ablation/" in path, (name, path)
    assert "data/06_models/ablation/l1/training_run" in str(
        catalog.get("ablation.l1.training_run")._describe()
    )


def test_the_demo_trains_its_variants_in_their_own_run_folders():
    factory = "ablation.{variant}.training_run"
    demo = yaml.safe_load((PROJECT / "conf" / "demo" / "catalog_ablation.yml").read_text())
    assert demo == {
        factory: {
            **_yaml("catalog_ablation.yml")[factory],
            "filepath": "data/06_models/ablation_demo/{variant}/training_run",
        }
    }


def _catalog(tmp_path: Path, pipe, params: dict[str, Any]) -> DataCatalog:
    """The project's ablation catalog under tmp_path, the stores and parameters in memory."""
    text = (BASE / "catalog_ablation.yml").read_text().replace("data/", f"{tmp_path}/data/")
    catalog = DataCatalog.from_config(yaml.safe_load(text))
    for split, (n, seed) in {"train": (6, 1), "val": (2, 2), "test": (3, 3)}.items():
        store = synthetic_patch_store(tmp_path / split, n=n, size=32, seed=seed)
        catalog[f"{split}_patches"] = MemoryDataset(store, copy_mode="assign")
    for name in pipe.inputs():
        if name.startswith("params:"):
            value: Any = params
            for key in name.removeprefix("params:").split("."):
                value = value[key]
            catalog[name] = MemoryDataset(value, copy_mode="deepcopy")
    return catalog


def _params(variants: dict[str, Any]) -> dict[str, Any]:
    training = _yaml("parameters_training.yml")["training"]
    training.update(epochs=1, batch_size=4, crop_size=16, verbose=0, tensorboard=False)
    return {
        "model": {**_yaml("parameters_training.yml")["model"], "features": 4, "blocks": 1},
        "training": training,
        "evaluation": {**_yaml("parameters_evaluation.yml")["evaluation"], "n_examples": 1},
        "ablation": {**_yaml("parameters_ablation.yml")["ablation"], "variants": variants},
        "data": _yaml("parameters_data_processing.yml")["data"],
    }


@pytest.mark.slow
def test_every_variant_trains_evaluates_and_is_compared(tmp_path):
    variants = DEFAULT_VARIANTS
    pipe = create_pipeline(variants)
    catalog = _catalog(tmp_path, pipe, _params(variants))
    SequentialRunner().run(pipe, catalog)

    for name in variants:
        for dataset in PER_VARIANT:
            assert catalog.exists(f"ablation.{name}.{dataset}"), (name, dataset)
        metrics = catalog.load(f"ablation.{name}.evaluation_metrics")
        assert metrics["n_patches"] == 3
        assert len(catalog.load(f"ablation.{name}.evaluation_per_patch")) == 3
        folder = tmp_path / "data" / "06_models" / "ablation" / name
        assert (folder / "training_run" / "FINISHED.json").is_file()
        assert (tmp_path / "data" / "08_reporting" / "ablation" / name / "metrics.json").is_file()

    models = {name: catalog.load(f"ablation.{name}.dsen2cr_model") for name in variants}
    assert [t.name for t in models["no_sar"].model.inputs] == ["optical"]
    assert [t.name for t in models["reference"].model.inputs] == ["optical", "sar"]
    assert models["l1"].contract.training["loss"] == "l1"
    assert models["reference"].contract.training["loss"] == "carl"
    assert models["sar_bilinear"].contract.model["sar_upsampling"] == "bilinear"
    assert models["sar_bilinear"].model.get_layer("sar_to_10m").interpolation == "bilinear"
    assert models["reference"].model.get_layer("sar_to_10m").interpolation == "nearest"
    # the variant's merged settings, as persisted: only its override differs from the run's
    saved = {name: catalog.load(f"ablation.{name}.model_params") for name in variants}
    assert saved["no_sar"] == {**saved["reference"], "include_sar": False}
    assert saved["reference"]["features"] == 4

    table = pd.read_csv(tmp_path / "data" / "08_reporting" / "ablation" / "comparison.csv")
    assert list(table["variant"]) == list(variants)
    assert [json.loads(o) for o in table["overrides"]] == list(variants.values())
    for _, row in table.iterrows():
        name = row["variant"]
        metrics = catalog.load(f"ablation.{name}.evaluation_metrics")
        summary = catalog.load(f"ablation.{name}.training_summary")
        assert row["parameters"] == models[name].model.count_params() == summary["parameters"]
        assert row["model_covered_mae"] == pytest.approx(metrics["model"]["covered"]["mae"], 1e-5)
        assert row["baseline_covered_sam_deg"] == pytest.approx(
            metrics["baseline_cloudy_input"]["covered"]["sam_deg"], 1e-5
        )
        assert row["epochs"] == 1 and row["training_seconds"] > 0
    no_sar, ref = (table.set_index("variant").loc[v, "parameters"] for v in ("no_sar", "reference"))
    assert ref - no_sar == 9 * 2 * 4  # the head convolution's 2 SAR input channels, F = 4
    png = tmp_path / "data" / "08_reporting" / "ablation" / "comparison.png"
    assert png.read_bytes().startswith(b"\x89PNG")
    assert np.isfinite(table.filter(like="covered").to_numpy(dtype=float)).all()


def test_a_misspelt_override_stops_the_variant_before_training(tmp_path):
    variants = {"reference": {}, "no_sar": {"model": {"include_sarr": False}}}
    pipe = create_pipeline(variants)
    catalog = _catalog(tmp_path, pipe, _params(variants))
    with pytest.raises(ConfigError) as err:
        SequentialRunner().run(pipe.only_nodes_with_namespaces(["ablation.no_sar"]), catalog)
    assert (
        "ablation.variants.no_sar.model.include_sarr: unknown parameter "
        "(did you mean ablation.variants.no_sar.model.include_sar?)"
    ) in str(err.value)
    assert not (tmp_path / "data" / "06_models" / "ablation" / "no_sar" / "training_run").exists()
