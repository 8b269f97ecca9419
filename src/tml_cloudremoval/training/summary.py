"""The summary of a training run: settings, data sizes, history, timings, baseline.

``training.loop.train`` returns it and writes it into ``FINISHED.json`` of the run folder; the
pipeline saves it as ``training_summary`` (JSON). Every value is plain JSON.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from tml_cloudremoval.data.patch_store import PatchStore
from tml_cloudremoval.normalise import normalise_optical
from tml_cloudremoval.training.trainer import TO_REFLECTANCE


@dataclass(frozen=True)
class EpochSizes:
    """Per-epoch data sizes of a run on ``replicas`` replicas (see ``epoch_size``)."""

    steps: int
    """Training batches per epoch."""
    used: int
    """Training samples per epoch."""
    n_val: int
    """Validation patches per evaluation (0: no validation)."""
    replicas: int


def covered_mae_of_input(store: PatchStore, batch: int = 16) -> float | None:
    """Baseline: MAE (reflectance) of the cloudy input against the target on covered pixels."""
    total, count = 0.0, 0.0
    for start in range(0, len(store), batch):
        cloudy = normalise_optical(store.s2_cloudy[start : start + batch])
        target = normalise_optical(store.s2[start : start + batch])
        mask = store.mask[start : start + batch].astype(np.float64)
        err = np.abs(cloudy - target).mean(axis=-1) * TO_REFLECTANCE
        total += float((err * mask).sum())
        count += float(mask.sum())
    return total / count if count else None


def run_figures(
    n_train: int,
    sizes: EpochSizes,
    dtype: str | None,
    initial_epoch: int,
    epochs: int,
    fit_seconds: float,
) -> dict[str, Any]:
    """Data sizes, replicas, precision and throughput of this session, for the summary."""
    epochs_here = epochs - initial_epoch
    return {
        "n_train": n_train,
        "n_val": sizes.n_val,
        "steps_per_epoch": sizes.steps,
        "replicas": sizes.replicas,
        "compute_dtype": dtype or "float32",
        "resumed_from_epoch": initial_epoch,
        "epochs_trained_in_this_session": epochs_here,
        "train_samples_per_second": (
            round(epochs_here * sizes.used / fit_seconds, 2)
            if epochs_here and fit_seconds > 0
            else None
        ),
    }


def validation_figures(
    val_store: PatchStore | None, history: list[dict[str, Any]]
) -> dict[str, Any]:
    """History and covered MAE (reflectance) of the model's last epoch vs. the cloudy input."""
    return {
        "history": history,
        "val_covered_mae_cloudy_input": (
            covered_mae_of_input(val_store) if val_store is not None else None
        ),
        "val_covered_mae_model": history[-1].get("val_covered_mae") if history else None,
    }


def package_version(name: str) -> str | None:
    """Installed version of distribution ``name`` (None when it is not installed), read from
    the package metadata without importing it (TensorFlow is optional on JAX / PyTorch)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_facts() -> dict[str, str | None]:
    """Host, CPU count, the Keras backend and the TF / Keras / backend versions (None: not
    installed), for the summary."""
    backend = keras.backend.backend()
    facts = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus",
        "keras_backend": backend,
        "tensorflow": package_version("tensorflow"),
        "keras": keras.__version__,
    }
    if backend in ("jax", "torch"):
        facts[backend] = package_version(backend)
    return facts


def fmt(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4f}"
