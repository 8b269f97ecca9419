"""One run of the model, CARL, three training steps and tiled inference on whatever Keras backend
this process has; ``tests/test_backends.py`` runs it under TensorFlow (in the test process) and
under ``KERAS_BACKEND=jax`` (as a script, in a subprocess) and compares the two result files.

Usage: ``python tests/support/backend_run.py <work folder> <result .npz>``. The work folder
holds what the TensorFlow side prepared: ``model.keras/v1/`` (a ``ModelDataset`` version of a tiny
DSen2-CR), ``arrays.npz`` (fixed inputs) and ``store/`` (a patch store). Without TensorFlow
installed this script needs none: everything it imports is backend-neutral.
"""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np

from tml_cloudremoval.data.patch_sequence import TrainSequence
from tml_cloudremoval.data.patch_store import PatchStore
from tml_cloudremoval.datasets.model_dataset import load_model_version
from tml_cloudremoval.inference.engine import predict_array
from tml_cloudremoval.models.losses import carl_loss, carl_nll_per_sample, carl_per_sample
from tml_cloudremoval.training.backend import jit_compile
from tml_cloudremoval.training.trainer import CloudRemovalTrainer

STEPS = 3


class _StepLosses(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.losses: list[float] = []

    def on_train_batch_end(self, batch, logs=None) -> None:
        # Keras logs the running mean; step k's own loss follows from it.
        mean = float(logs["loss"])
        self.losses.append(mean * (batch + 1) - sum(self.losses))


def run(work: Path) -> dict[str, np.ndarray]:
    """The figures of one backend (float64 numpy arrays, see the module docstring)."""
    a = dict(np.load(work / "arrays.npz"))
    model = load_model_version(work / "model.keras", "v1").model
    out = {
        "prediction": np.asarray(model.predict_on_batch({"optical": a["optical"], "sar": a["sar"]}))
    }
    args = (a["target"], a["optical"], a["mask"], a["prediction"])
    out["carl_per_sample"] = np.asarray(carl_per_sample(*args, lambda_=0.5))
    out["carl"] = np.asarray(carl_loss(*args))
    out["carl_nll"] = np.asarray(carl_nll_per_sample(*args, a["log_scale"]))
    out["tiled"] = predict_array(model, a["scene"], a["scene_sar"], tile_size=32, batch_size=2)

    keras.utils.set_random_seed(0)
    trainer = CloudRemovalTrainer(model, "carl", 1.0)
    trainer.compile(optimizer=keras.optimizers.Nadam(1e-3), jit_compile=jit_compile(False))
    data = TrainSequence(PatchStore.open(work / "store"), batch_size=2, crop_size=16, seed=3)
    steps = _StepLosses()
    trainer.fit(data, epochs=1, steps_per_epoch=STEPS, callbacks=[steps], verbose=0, shuffle=False)
    out["step_losses"] = np.asarray(steps.losses)
    out["trained_weights"] = np.concatenate([np.ravel(w) for w in model.get_weights()])
    model.save(work / f"saved_by_{keras.backend.backend()}.keras")
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


if __name__ == "__main__":
    np.savez(sys.argv[2], backend=keras.backend.backend(), **run(Path(sys.argv[1])))
