"""A stand-in for the ablation pipeline: namespaced nodes ``ablation.<variant>.*`` that save the
entries the real one saves (``training_summary``, ``dsen2cr_model``, ``evaluation_metrics``).

Used as a Kedro pipeline registry (``pipelines.configure("support.fake_ablation")``), so a real
session and runner, with the project's hooks and kedro-mlflow, run it. Each variant's
parameters (``fake_ablation.<variant>.settings``) choose what it does:

- ``live: true``: trains a tiny Keras model for ``epochs`` epochs with the project's
  ``MlflowEpochMetrics`` callback (per-epoch metrics logged while the node runs); its summary's
  history is the Keras history;
- ``live: false``: no training; the summary carries ``history`` as given;
- ``fail: true``: the evaluation node raises :class:`VariantFailed`.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from kedro.pipeline import Node, Pipeline

from tml_cloudremoval.models.contract import ModelContract, SarNormalisation, TrainedModel
from tml_cloudremoval.training.tracking import MlflowEpochMetrics

VARIANTS = ("sar", "no_sar")
PIPELINE = "ablation_fake"


class VariantFailed(RuntimeError):
    """Raised by the evaluation node of a variant with ``fail: true``."""


def _tiny_fit(epochs: int, seed: int) -> tuple[keras.Model, list[dict[str, Any]]]:
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(16, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], "float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    fit = model.fit(
        x, y, epochs=epochs, validation_split=0.25, verbose=0, callbacks=[MlflowEpochMetrics()]
    )
    keys = sorted(fit.history)
    history = [
        {"epoch": i + 1, **{k: float(fit.history[k][i]) for k in keys}} for i in range(epochs)
    ]
    return model, history


def train(settings: dict[str, Any]) -> tuple[TrainedModel, dict[str, Any]]:
    """(the variant's model, its training summary: history, model, training, settings)."""
    model_cfg, training_cfg = settings["model"], settings["training"]
    if settings.get("live"):
        network, history = _tiny_fit(training_cfg["epochs"], training_cfg["seed"])
    else:
        network = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        history = settings["history"]
    contract = ModelContract(
        sar=SarNormalisation(method="mean"),
        cloud_threshold=0.2,
        model=model_cfg,
        training=training_cfg,
        training_split={"n_patches": 5, "sha256": "ab" * 32},
    )
    summary = {
        "history": history,
        "model": model_cfg,
        "training": training_cfg,
        "settings": {"model": model_cfg, "training": training_cfg, "n_train": 5},
    }
    return TrainedModel(network, contract), summary


def evaluate(trained: TrainedModel, settings: dict[str, Any]) -> dict[str, Any]:
    """A metrics.json-shaped dict: the variant's ``covered_mae`` as model covered MAE."""
    if settings.get("fail"):
        raise VariantFailed("this variant fails on purpose")
    region = {"mae": settings["covered_mae"], "ssim": 0.5, "n_patches": 4, "n_pixels": 1024}
    return {
        "model": {"covered": region, "all": {**region, "mae": 0.01}},
        "baseline_cloudy_input": {"covered": {**region, "mae": 0.2}, "clear": {"mae": None}},
        "n_patches": 4,
        "notes": ["a note"],
    }


def variant_pipeline(variant: str) -> Pipeline:
    nodes = [
        Node(train, "params:settings", ["dsen2cr_model", "training_summary"], name="train"),
        Node(evaluate, ["dsen2cr_model", "params:settings"], "evaluation_metrics", name="evaluate"),
    ]
    # parameters under fake_ablation.<variant> (the real ablation section is validated)
    return Pipeline(
        nodes,
        namespace=f"ablation.{variant}",
        parameters={"settings": f"fake_ablation.{variant}.settings"},
    )


def register_pipelines() -> dict[str, Pipeline]:
    pipe = sum((variant_pipeline(v) for v in VARIANTS), Pipeline([]))
    return {PIPELINE: pipe, "__default__": pipe}
