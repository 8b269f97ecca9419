"""The model, CARL, training steps, tiled inference and .keras files agree between the
TensorFlow backend (this process) and JAX (a subprocess with KERAS_BACKEND=jax: Keras fixes its
backend at import). ``support/backend_run.py`` is the run both sides make."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from kedro.io.core import Version
from support import backend_run
from support.synthetic_stores import synthetic_patch_store

from tml_cloudremoval.datasets.model_dataset import ModelDataset
from tml_cloudremoval.models.contract import ModelContract, TrainedModel
from tml_cloudremoval.models.dsen2cr import build_dsen2cr

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("jax") is None,
        reason="jax is not installed: pip install -e '.[backends]' (the CPU wheel) to compare",
    ),
    pytest.mark.skipif(
        keras.backend.backend() != "tensorflow",
        reason="the reference side of this comparison runs on the TensorFlow backend",
    ),
    pytest.mark.slow,  # two JAX subprocesses (imports, jit compiles): ~70 s of CPU in all
]


def _env(backend: str) -> dict[str, str]:
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu"}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), str(TESTS), env.get("PYTHONPATH", "")])
    return env


def _on_jax(*args: str) -> subprocess.CompletedProcess:
    """``python ARGS`` under ``KERAS_BACKEND=jax``; asserts exit 0, showing stderr's tail."""
    proc = subprocess.run(
        [sys.executable, *args], env=_env("jax"), capture_output=True, check=False, text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def compared(tmp_path_factory) -> tuple[dict, dict, Path]:
    """(TensorFlow results, JAX results, work folder) of ``backend_run`` on the same inputs."""
    work = tmp_path_factory.mktemp("backends")
    keras.utils.set_random_seed(1)
    model = build_dsen2cr(features=4, blocks=1, tail_init="he_uniform")  # not the identity
    dataset = ModelDataset(filepath=str(work / "model.keras"), version=Version(None, "v1"))
    dataset.save(TrainedModel(model, ModelContract()))
    rng = np.random.default_rng(0)
    np.savez(
        work / "arrays.npz",
        optical=rng.uniform(0, 1.5, (2, 16, 16, 10)).astype(np.float32),
        sar=rng.uniform(0, 2, (2, 4, 4, 2)).astype(np.float32),
        target=rng.uniform(0, 1.5, (2, 16, 16, 10)).astype(np.float32),
        prediction=rng.uniform(0, 1.5, (2, 16, 16, 10)).astype(np.float32),
        mask=rng.integers(0, 2, (2, 16, 16)).astype(np.float32),
        log_scale=rng.uniform(-3, 0, (2, 16, 16, 10)).astype(np.float32),
        scene=rng.uniform(0, 1.5, (44, 52, 10)).astype(np.float32),
        scene_sar=rng.uniform(0, 2, (11, 13, 2)).astype(np.float32),
    )
    synthetic_patch_store(work / "store", n=5, size=32, seed=4)
    script = TESTS / "support" / "backend_run.py"
    jax_out = work / "jax.npz"
    _on_jax(str(script), str(work), str(jax_out))
    jax = dict(np.load(jax_out))
    assert str(jax.pop("backend")) == "jax"
    tf = backend_run.run(work)
    return tf, jax, work


def test_model_outputs_agree(compared) -> None:
    tf, jax, _ = compared
    assert tf["prediction"].shape == (2, 16, 16, 10)
    np.testing.assert_allclose(jax["prediction"], tf["prediction"], atol=1e-5)


def test_carl_values_agree(compared) -> None:
    tf, jax, _ = compared
    for name in ("carl_per_sample", "carl", "carl_nll"):
        np.testing.assert_allclose(jax[name], tf[name], rtol=1e-6, atol=1e-6, err_msg=name)


def test_training_steps_agree(compared) -> None:
    """Three Nadam steps from the same weights on the same PyDataset batches."""
    tf, jax, _ = compared
    assert tf["step_losses"].shape == (backend_run.STEPS,)
    assert len(set(np.round(tf["step_losses"], 6))) == backend_run.STEPS  # the steps differ
    np.testing.assert_allclose(jax["step_losses"], tf["step_losses"], rtol=1e-4)
    np.testing.assert_allclose(jax["trained_weights"], tf["trained_weights"], atol=1e-5)


def test_tiled_inference_agrees(compared) -> None:
    tf, jax, _ = compared
    assert tf["tiled"].shape == (44, 52, 10)
    np.testing.assert_allclose(jax["tiled"], tf["tiled"], atol=1e-5)


def test_a_keras_file_saved_on_jax_loads_on_tensorflow(compared) -> None:
    _, jax, work = compared
    model = keras.saving.load_model(work / "saved_by_jax.keras", safe_mode=True)
    weights = np.concatenate([np.ravel(w) for w in model.get_weights()])
    np.testing.assert_array_equal(weights, jax["trained_weights"].astype(np.float32))


TRAIN_WITHOUT_TF = """
import sys


class NoTensorFlow:  # any import of TensorFlow now fails, as where it is not installed
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ImportError(f"No module named {name!r} (blocked by the test)")


sys.meta_path.insert(0, NoTensorFlow())
from pathlib import Path
import keras
from support.synthetic_stores import synthetic_patch_store
from tml_cloudremoval.evaluation.metrics import ssim
from tml_cloudremoval.inference.engine import predict_array
from tml_cloudremoval.training.config import load_configs
from tml_cloudremoval.training.loop import train
from tml_cloudremoval.training.run_folder import RunFolder

work = Path(sys.argv[1])
stores = [synthetic_patch_store(work / n, n=4, size=32, seed=i) for i, n in enumerate("tv")]
settings = {"epochs": 2, "batch_size": 2, "crop_size": 16, "verbose": 0, "input_workers": 2}
model_cfg, cfg = load_configs({"features": 4, "blocks": 1}, settings)
result = train(*stores, model_cfg, cfg, RunFolder(work / "run"))
s = result.summary
print(keras.backend.backend(), s["n_train"], s["steps_per_epoch"], len(s["history"]),
      s["keras_backend"], "tensorflow" in sys.modules)
"""


def test_the_package_trains_on_jax_without_tensorflow(tmp_path) -> None:
    """``training.loop.train`` end to end (PyDataset input, checkpoints, final model) on JAX
    with every TensorFlow import made to fail."""
    proc = _on_jax("-c", TRAIN_WITHOUT_TF, str(tmp_path))
    assert proc.stdout.split()[-6:] == ["jax", "4", "2", "2", "jax", "False"]
    assert (tmp_path / "run" / "FINISHED.json").is_file()


def test_distribution_needs_tensorflow_backend(tmp_path) -> None:
    code = (
        "from tml_cloudremoval.training.backend import check_backend\n"
        "try:\n    check_backend('mirrored', 'auto')\n"
        "except Exception as e:\n    print(type(e).__name__, e)\n"
    )
    proc = _on_jax("-c", code)
    assert proc.stdout.startswith("ConfigError training.distribution: 'mirrored'")
    assert "only on the TensorFlow backend" in proc.stdout
