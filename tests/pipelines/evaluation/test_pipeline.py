"""evaluation pipeline: the project's catalog entries (paths moved into tmp_path), a tiny
store and a tiny model of the DSen2-CR contract, SequentialRunner."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.io.core import Version
from kedro.runner import SequentialRunner

from tml_cloudremoval.bands import SAR_FACTOR, TML_BAND_NAMES
from tml_cloudremoval.data.patch_store import PatchStore, write_patch_store
from tml_cloudremoval.datasets.model_dataset import ModelDataset
from tml_cloudremoval.models.contract import (
    ContractError,
    ModelContract,
    SarNormalisation,
    TrainedModel,
)
from tml_cloudremoval.pipelines.evaluation import create_pipeline

PROJECT = Path(__file__).resolve().parents[3]
CATALOG_YML = PROJECT / "conf" / "base" / "catalog_evaluation.yml"
PARAMS_YML = PROJECT / "conf" / "base" / "parameters_evaluation.yml"
DATA_PARAMS_YML = PROJECT / "conf" / "base" / "parameters_data_processing.yml"
OUTPUTS = {
    "evaluation_metrics": "data/08_reporting/metrics.json",
    "evaluation_per_patch": "data/08_reporting/per_patch_metrics.csv",
    "evaluation_report": "data/08_reporting/evaluation_report.md",
    "evaluation_examples": "data/08_reporting/evaluation_examples.png",
    "evaluation_band_errors": "data/08_reporting/evaluation_band_errors.png",
    "training_curves": "data/08_reporting/training_curves.png",
    "evaluation_uncertainty": "data/08_reporting/uncertainty.json",
    "evaluation_uncertainty_figure": "data/08_reporting/uncertainty.png",
}
SIZE = 32
MODELS = "data/06_models/dsen2cr.keras"
VERSION = "2026-01-01T00.00.00.000Z"


def tiny_store(path: Path) -> PatchStore:
    """4 patches: all clear, all cloud, two half covered; cloudy = target + 3000 DN under cloud."""
    rng = np.random.default_rng(0)
    half = np.zeros((SIZE, SIZE), np.uint8)
    half[:, :16] = 1
    masks = [np.zeros_like(half), np.ones_like(half), half, half.T]
    samples = []
    for mask in masks:
        target = rng.integers(300, 3000, (SIZE, SIZE, 10)).astype(np.uint16)
        samples.append(
            {
                "s2_cloudy": target + mask[..., None].astype(np.uint16) * np.uint16(3000),
                "s2": target,
                "s1": rng.uniform(-20, -5, (SIZE // SAR_FACTOR, SIZE // SAR_FACTOR, 2)),
                "mask": mask,
            }
        )
    index = pd.DataFrame({"scene_id": ["ROIs1_spring_1"] * 4, "patch": ["p1", "p2", "p3", "p4"]})
    meta = {"sar_method": "mean", "cloud_threshold": 0.2}
    write_patch_store(path, samples, 4, SIZE, SIZE, index, meta)
    return PatchStore.open(path)


LOG_B = -3.0
"""log b of the tiny aleatoric model, everywhere (b = 0.0498 model units)."""


def tiny_model(aleatoric: bool = False) -> keras.Model:
    """Predicts 1000 DN everywhere (0.5 model units), takes optical and SAR like DSen2-CR;
    ``aleatoric``: also ``log_scale`` = LOG_B everywhere (dict outputs)."""
    optical = keras.Input((None, None, 10), name="optical")
    sar = keras.Input((None, None, 2), name="sar")
    zero = keras.layers.Conv2D(10, 1, kernel_initializer="zeros")(
        keras.layers.UpSampling2D(SAR_FACTOR)(sar)
    )
    const = keras.layers.Rescaling(0.0, offset=0.5)(optical)
    prediction = keras.layers.Add()([const, zero])
    if not aleatoric:
        return keras.Model({"optical": optical, "sar": sar}, prediction)
    log_scale = keras.layers.Rescaling(0.0, offset=LOG_B)(optical)
    outputs = {"prediction": prediction, "log_scale": log_scale}
    return keras.Model({"optical": optical, "sar": sar}, outputs)


def make_catalog(
    out: Path,
    store: PatchStore,
    history: list[dict],
    contract: ModelContract | None = None,
    network: keras.Model | None = None,
) -> DataCatalog:
    """The project's evaluation entries under ``out``; the model saved there as one version
    (``VERSION``) with ``contract`` (default: one the tiny store matches)."""
    config = yaml.safe_load(CATALOG_YML.read_text())
    assert {k: v["filepath"] for k, v in config.items()} == {**OUTPUTS, "model_card": MODELS}
    for entry in config.values():
        entry["filepath"] = str(out / entry["filepath"])
    config["model_card"]["filepath"] = str(out / MODELS)
    catalog = DataCatalog.from_config(config)
    model = ModelDataset(filepath=str(out / MODELS), version=Version(None, VERSION))
    model.save(TrainedModel(network or tiny_model(), contract or ModelContract()))
    catalog["dsen2cr_model"] = ModelDataset(filepath=str(out / MODELS), version=Version(None, None))
    catalog["test_patches"] = MemoryDataset(store, copy_mode="assign")
    catalog["params:evaluation"] = MemoryDataset(
        yaml.safe_load(PARAMS_YML.read_text())["evaluation"]
    )
    catalog["training_summary"] = MemoryDataset({"run_dir": "data/run", "history": history})
    # data.root: a folder the sample generator wrote (the store's index has no file paths)
    sample_root = out / "sen12mscr_sample"
    sample_root.mkdir(exist_ok=True)
    (sample_root / "manifest.json").write_text('{"kind": "sen12mscr", "status": "complete"}')
    data = yaml.safe_load(DATA_PARAMS_YML.read_text())["data"] | {"root": str(sample_root)}
    catalog["params:data"] = MemoryDataset(data)
    return catalog


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> PatchStore:
    return tiny_store(tmp_path_factory.mktemp("evaluation") / "test")


def test_nodes_are_named_and_outputs_persisted():
    pipeline = create_pipeline()
    assert {n.name for n in pipeline.nodes} == {
        "evaluate_model",
        "write_evaluation_report",
        "plot_evaluation_examples",
        "plot_band_errors",
        "plot_training_curves",
        "update_model_card",
        "evaluate_uncertainty",
    }
    assert pipeline.all_outputs() == {*OUTPUTS, "model_card"}
    assert pipeline.inputs() == {
        "dsen2cr_model",
        "test_patches",
        "params:evaluation",
        "params:data",
        "training_summary",
    }


def test_pipeline_writes_report(tmp_path, store, caplog):
    history = [
        {"epoch": 1, "loss": 0.5, "val_loss": 0.6},
        {"epoch": 2, "loss": 0.4, "val_loss": 0.5},
    ]
    catalog = make_catalog(tmp_path, store, history)
    with caplog.at_level(logging.INFO):
        SequentialRunner().run(create_pipeline(), catalog)
    for path in OUTPUTS.values():
        assert (tmp_path / path).is_file(), path
    for name in (
        "evaluation_examples",
        "evaluation_band_errors",
        "training_curves",
        "evaluation_uncertainty_figure",
    ):
        assert (tmp_path / OUTPUTS[name]).read_bytes().startswith(b"\x89PNG")

    metrics = json.loads((tmp_path / OUTPUTS["evaluation_metrics"]).read_text())
    assert set(metrics) >= {"model", "baseline_cloudy_input", "n_patches", "n_pixels", "notes"}
    assert metrics["n_patches"] == 4 and metrics["n_pixels"] == 4 * SIZE * SIZE
    assert set(metrics["model"]["per_band_rmse"]) == set(TML_BAND_NAMES)
    target = np.asarray(store.s2, np.float64) / 10000
    covered = np.asarray(store.mask) == 1
    assert metrics["model"]["covered"]["mae"] == pytest.approx(
        np.abs(0.1 - target[covered]).mean(), rel=1e-5
    )
    assert metrics["model"]["covered"]["n_pixels"] == int(covered.sum())
    assert metrics["model"]["covered"]["n_patches"] == 3

    per_patch = pd.read_csv(tmp_path / OUTPUTS["evaluation_per_patch"])
    assert len(per_patch) == 4
    assert per_patch["model_mae_all"].is_monotonic_decreasing
    assert per_patch.loc[per_patch["patch"] == "p1", "model_mae_covered"].isna().all()
    assert "Headline figures" in caplog.text and "model     covered" in caplog.text
    uncertainty = json.loads((tmp_path / OUTPUTS["evaluation_uncertainty"]).read_text())
    assert uncertainty == {"uncertainty": "none"}

    # the published protocol beside the pooled figures, and the literature next to them
    per_image = metrics["per_image"]["model"]["covered"]
    covered_rows = per_patch["model_mae_covered"].dropna()
    assert per_image["n_patches"] == 3 and per_image["mae"] == pytest.approx(covered_rows.mean())
    assert [b["n_patches"] for b in metrics["per_image_by_cloud_cover"]] == [1, 0, 0, 2, 0, 1]
    literature = metrics["literature_comparison"]
    assert literature["this_run"][0]["mae"] == metrics["per_image"]["model"]["all"]["mae"]
    differs = literature["published"][0]["differs"]
    assert "model size: not recorded vs F=256, B=16" in differs  # ModelContract() has no model
    assert any(d.startswith("data: the synthetic sample, a seeded scene split") for d in differs)
    report = (tmp_path / OUTPUTS["evaluation_report"]).read_text()
    assert report.startswith("# Evaluation report") and "## Next to the published results" in report
    assert "| [10, 30) % | model | no test patch |" in report

    card = (tmp_path / MODELS / VERSION / "MODEL_CARD.md").read_text()
    assert "Next to the published results" in card and "| DSen2-CR, CARL | 0.0290 |" in card
    assert "Bands, in order: B2 B3 B4 B5 B6 B7 B8 B8A B11 B12" in card
    assert "DN clipped to [0, 10000], divided by 2000" in card
    covered_mae = f"{metrics['model']['covered']['mae']:.4f}"
    assert f"| model | covered | {covered_mae} |" in card and "Not evaluated yet" not in card


def test_a_test_store_made_otherwise_than_the_contract_is_refused(tmp_path, store):
    contract = ModelContract(sar=SarNormalisation(method="linear_power"))
    catalog = make_catalog(tmp_path, store, [], contract)
    with pytest.raises(ContractError) as err:
        SequentialRunner().run(create_pipeline().only_nodes("evaluate_model"), catalog)
    assert f"{store.path} sar_method 'mean' contradicts the model's contract 'linear_power'" in str(
        err.value
    )
    assert str(tmp_path / MODELS / VERSION / "contract.json") in str(err.value)
    assert not (tmp_path / OUTPUTS["evaluation_metrics"]).exists()


def test_empty_training_history_gives_a_figure_and_a_warning(tmp_path, store, caplog):
    catalog = make_catalog(tmp_path, store, [])
    with caplog.at_level(logging.WARNING):
        SequentialRunner().run(create_pipeline().only_nodes("plot_training_curves"), catalog)
    assert (tmp_path / OUTPUTS["training_curves"]).read_bytes().startswith(b"\x89PNG")
    assert "No epoch in the training history of data/run" in caplog.text


def test_an_aleatoric_model_gets_its_uncertainty_report(tmp_path, store, caplog):
    catalog = make_catalog(tmp_path, store, [], network=tiny_model(aleatoric=True))
    nodes = ["evaluate_model", "evaluate_uncertainty", "plot_evaluation_examples"]
    with caplog.at_level(logging.INFO):
        SequentialRunner().run(create_pipeline().only_nodes(*nodes), catalog)
    report = json.loads((tmp_path / OUTPUTS["evaluation_uncertainty"]).read_text())
    assert report["uncertainty"] == "aleatoric" and report["n_patches"] == 4
    assert (tmp_path / OUTPUTS["evaluation_uncertainty_figure"]).read_bytes()[:4] == b"\x89PNG"
    # One sigma everywhere: one variance bin, UCE = |sigma^2 - mean e^2|, no ranking.
    sigma = np.sqrt(2) * np.exp(LOG_B) * 0.2
    error = 0.1 - np.asarray(store.s2, np.float64) / 10000
    covered = np.asarray(store.mask) == 1
    for region, where in (("covered", covered), ("clear", ~covered)):
        got = report["regions"][region]
        mse = np.mean(error[where] ** 2)
        assert got["n_values"] == 10 * int(where.sum())
        assert got["uce"] == pytest.approx(abs(sigma**2 - mse), rel=1e-5)
        assert got["predicted_rmse"] == pytest.approx(sigma, rel=1e-5)
        assert got["observed_rmse"] == pytest.approx(np.sqrt(mse), rel=1e-5)
        assert got["reliability"]["n"] == [got["n_values"]]
        assert got["spearman"] is None
    metrics = json.loads((tmp_path / OUTPUTS["evaluation_metrics"]).read_text())
    assert metrics["model"]["covered"]["mae"] == pytest.approx(
        np.abs(0.1 - np.asarray(store.s2, np.float64)[covered] / 10000).mean(), rel=1e-5
    )
    assert "Uncertainty:" in caplog.text
