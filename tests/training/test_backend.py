"""training.backend: the input path, workers, the refusals off TensorFlow, and a training run
through the PyDataset path equal to one through tf.data."""

from __future__ import annotations

import numpy as np
import pytest
from support.synthetic_stores import synthetic_patch_store

from tml_cloudremoval.config import ConfigError
from tml_cloudremoval.training import backend
from tml_cloudremoval.training.config import load_configs
from tml_cloudremoval.training.loop import train
from tml_cloudremoval.training.run_folder import RunFolder


@pytest.fixture
def on_jax(monkeypatch):
    monkeypatch.setattr(backend, "backend", lambda: "jax")


def test_auto_input_is_tf_data_on_tensorflow_and_pydataset_elsewhere(monkeypatch) -> None:
    assert backend.backend() == "tensorflow"
    assert backend.input_path("auto") == "tf_data"
    assert backend.input_path("pydataset") == "pydataset"
    monkeypatch.setattr(backend, "backend", lambda: "torch")
    assert backend.input_path("auto") == "pydataset"
    assert backend.input_path("tf_data") == "tf_data"


def test_input_workers_default_to_usable_cores_capped(monkeypatch) -> None:
    from tml_cloudremoval.data import triplets

    monkeypatch.setattr(triplets, "usable_cores", lambda: 2)
    assert backend.input_workers(None) == 2
    monkeypatch.setattr(triplets, "usable_cores", lambda: 64)
    assert backend.input_workers(None) == backend.MAX_AUTO_WORKERS == 8
    assert backend.input_workers(3) == 3


def test_distribution_off_tensorflow_is_a_config_error(on_jax) -> None:
    backend.check_backend("none", "auto")  # fine
    for distribution in ("mirrored", "multi_worker"):
        with pytest.raises(ConfigError, match=r"training\.distribution: '\w+' uses a tf"):
            backend.check_backend(distribution, "auto")


def test_tf_data_without_tensorflow_is_a_config_error(monkeypatch) -> None:
    monkeypatch.setattr(backend, "tensorflow_installed", lambda: False)
    backend.check_backend("none", "pydataset")
    with pytest.raises(ConfigError, match=r"training\.input: 'tf_data' needs TensorFlow"):
        backend.check_backend("none", "tf_data")


def test_off_tensorflow_one_device_and_jit(on_jax) -> None:
    strategy = backend.make_strategy("none")
    assert isinstance(strategy, backend.SingleDevice) and strategy.num_replicas_in_sync == 1
    with strategy.scope():
        pass
    assert backend.is_chief(strategy)
    assert backend.jit_compile(False) is True  # JAX steps are always jitted
    assert backend.compute_dtype(False) is None
    assert backend.compute_dtype(True) is None  # no GPU on the test machine


@pytest.mark.parametrize(
    ("wanted", "policy"),
    [(False, None), (True, "mixed_float16"), ("float16", "mixed_float16"),
     ("bfloat16", "mixed_bfloat16")],
)  # fmt: skip
def test_off_tensorflow_a_gpu_gets_each_precision_s_policy(on_jax, monkeypatch, wanted, policy):
    monkeypatch.setattr(backend, "gpu_visible", lambda: True)
    assert backend.compute_dtype(wanted) == policy


def test_jit_follows_xla_on_tensorflow() -> None:
    assert backend.jit_compile(False) is False and backend.jit_compile(True) is True


def test_unknown_input_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"training\.input"):
        load_configs({}, {"input": "torch_loader"})
    with pytest.raises(ConfigError, match=r"training\.input_workers"):
        load_configs({}, {"input_workers": 0})


@pytest.mark.slow
def test_pydataset_training_equals_tf_data_training(tmp_path) -> None:
    """The same samples make the same run: two epochs with validation through each path."""
    stores = (
        synthetic_patch_store(tmp_path / "train", n=5, size=32, seed=1),
        synthetic_patch_store(tmp_path / "val", n=2, size=32, seed=2),
    )
    runs = {}
    for path in ("tf_data", "pydataset"):
        settings = {"epochs": 2, "batch_size": 2, "crop_size": 16, "verbose": 0, "input": path}
        model_cfg, cfg = load_configs({"features": 4, "blocks": 1}, settings)
        runs[path] = train(*stores, model_cfg, cfg, RunFolder(tmp_path / path))
    tf_run, py_run = runs["tf_data"], runs["pydataset"]
    for a, b in zip(tf_run.model.get_weights(), py_run.model.get_weights(), strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)
    for a, b in zip(tf_run.summary["history"], py_run.summary["history"], strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
        assert b["val_covered_mae"] == pytest.approx(a["val_covered_mae"], rel=1e-5)
