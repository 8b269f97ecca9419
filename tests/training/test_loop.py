"""Training loop: a short run, run folder, if_finished, steps per epoch, resume after SIGKILL,
mirrored on 2 CPUs, two local workers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from support.synthetic_stores import synthetic_patch_store

import tml_cloudremoval.training.loop as training_module
from tml_cloudremoval.atomic import is_temporary
from tml_cloudremoval.errors import LockedError, ProjectError
from tml_cloudremoval.models.dsen2cr import build_dsen2cr
from tml_cloudremoval.training.config import load_configs
from tml_cloudremoval.training.loop import train
from tml_cloudremoval.training.run_folder import RunFolder

TINY_MODEL = {"features": 8, "blocks": 1}


def _train(stores, run_dir: Path, model=None, callbacks=(), **over):
    """``train`` with a tiny model and short settings (``over`` replaces any of them)."""
    settings = {"epochs": 2, "batch_size": 4, "crop_size": 32, "learning_rate": 1e-3, "verbose": 0}
    model_cfg, cfg = load_configs(model or TINY_MODEL, {**settings, **over})
    return train(*stores, model_cfg, cfg, RunFolder(run_dir), callbacks=callbacks)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("stores")
    return (
        synthetic_patch_store(root / "train", n=6, size=64, seed=1),
        synthetic_patch_store(root / "val", n=3, size=64, seed=2),
    )


def _weights(model: keras.Model) -> list[np.ndarray]:
    return [np.asarray(w) for w in model.get_weights()]


def test_short_run_writes_the_run_folder_and_a_loadable_model(stores, tmp_path):
    run_dir = tmp_path / "run"
    result = _train(stores, run_dir)
    model, summary = result.model, result.summary

    assert model.count_params() == build_dsen2cr(**TINY_MODEL).count_params()
    assert summary["n_train"] == 6 and summary["n_val"] == 3
    assert summary["steps_per_epoch"] == 2 and summary["resumed_from_epoch"] == 0
    assert [row["epoch"] for row in summary["history"]] == [1, 2]
    for row in summary["history"]:
        for key in ("loss", "mae", "covered_mae", "val_loss", "val_mae", "val_covered_mae"):
            assert np.isfinite(row[key]), key
    assert summary["val_covered_mae_cloudy_input"] > 0
    json.dumps(summary)  # JSON-able for the catalog

    log = pd.read_csv(run_dir / "training_log.csv")
    assert log["epoch"].tolist() == [1, 2]
    np.testing.assert_allclose(log["loss"], [r["loss"] for r in summary["history"]])
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "epoch_0001",
        "epoch_0002",
    ]
    assert (run_dir / "FINISHED.json").is_file()
    saved = keras.saving.load_model(run_dir / "final_model.keras", safe_mode=True)
    x = {
        "optical": np.random.default_rng(0).uniform(0, 5, (3, 64, 64, 10)).astype(np.float32),
        "sar": np.ones((3, 16, 16, 2), np.float32),
    }
    np.testing.assert_allclose(saved.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    epoch1 = keras.saving.load_model(run_dir / "checkpoints/epoch_0001/model.keras")
    assert epoch1.count_params() == model.count_params()


def test_finished_run_is_not_retrained_silently(stores, tmp_path):
    run_dir = tmp_path / "run"
    first = _train(stores, run_dir, epochs=1)
    with pytest.raises(RuntimeError, match="already finished.*if_finished"):
        _train(stores, run_dir, epochs=1)
    reused = _train(stores, run_dir, epochs=1, if_finished="reuse")
    assert reused.summary["reused"] is True
    for a, b in zip(_weights(first.model), _weights(reused.model), strict=True):
        np.testing.assert_array_equal(a, b)
    again = _train(stores, run_dir, epochs=1, if_finished="overwrite")
    assert again.summary["resumed_from_epoch"] == 0 and len(again.summary["history"]) == 1


def test_resuming_with_other_settings_is_refused(stores, tmp_path):
    run_dir = tmp_path / "run"
    _train(stores, run_dir, epochs=1)
    (run_dir / "FINISHED.json").unlink()  # pretend it was interrupted
    with pytest.raises(ProjectError, match=r"other settings.*training.batch_size: 4 -> 2"):
        _train(stores, run_dir, epochs=2, batch_size=2)


def test_reusing_a_finished_run_of_other_settings_is_refused_naming_them(stores, tmp_path):
    """Defect 6 of issue 12: ``if_finished: reuse`` returned the finished 8-feature model when
    16 features were asked for. It is refused, as resuming is, naming what differs."""
    run_dir = tmp_path / "run"
    _train(stores, run_dir, epochs=1)
    marker = (run_dir / "FINISHED.json").read_bytes()
    bigger = {**TINY_MODEL, "features": 16}
    with pytest.raises(ProjectError, match=r"model.features: 8 -> 16"):
        _train(stores, run_dir, model=bigger, epochs=1, if_finished="reuse")
    with pytest.raises(ProjectError, match=r"training.learning_rate: 0.001 -> 0.01"):
        _train(stores, run_dir, epochs=1, learning_rate=1e-2, if_finished="reuse")
    with pytest.raises(ProjectError, match=r"training.epochs: 1 -> 3"):
        _train(stores, run_dir, epochs=3, if_finished="reuse")
    assert (run_dir / "FINISHED.json").read_bytes() == marker  # nothing touched
    same = _train(stores, run_dir, epochs=1, if_finished="reuse", verbose=2)  # verbose: free
    assert same.summary["reused"] is True


def test_a_second_training_on_a_locked_run_folder_stops_at_once(stores, tmp_path):
    """Two runs on one run folder: the second stops with a LockedError naming the folder and
    the first run's pid, before any work (nothing written in the folder)."""
    run_dir = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\n"
            "from tml_cloudremoval.atomic import output_lock\n"
            f"with output_lock({str(run_dir)!r}):\n"
            "    print('locked', flush=True)\n"
            "    time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with pytest.raises(LockedError, match=rf"run: another run \(pid {holder.pid}\)"):
            _train(stores, run_dir)
        assert time.monotonic() - started < 5 and not run_dir.exists()
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_a_crop_larger_than_the_patches_fails_before_training(stores, tmp_path):
    with pytest.raises(ValueError, match="exceeds the patch size"):
        _train(stores, tmp_path / "run", crop_size=128)
    assert not (tmp_path / "run").exists()


def test_mixed_precision_path_trains_and_exports_float32(stores, tmp_path, monkeypatch):
    # No GPU here: force the policy the GPU path would pick (float16 kernels also run on CPU).
    monkeypatch.setattr(training_module, "compute_dtype", lambda wanted: "mixed_float16")
    result = _train(stores, tmp_path / "run", epochs=1, mixed_precision=True)
    assert result.summary["compute_dtype"] == "mixed_float16"
    assert {layer.dtype_policy.name for layer in result.model.layers} == {"float32"}
    assert np.isfinite(result.summary["history"][0]["loss"])


def test_bfloat16_path_trains_without_loss_scaling(stores, tmp_path, monkeypatch):
    # No GPU here: force the policy the GPU path would pick (bfloat16 kernels also run on CPU).
    monkeypatch.setattr(training_module, "compute_dtype", lambda wanted: "mixed_bfloat16")
    optimizers = []

    class Grab(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            optimizers.append(self.model.optimizer)

    result = _train(
        stores, tmp_path / "run", epochs=1, mixed_precision="bfloat16", callbacks=[Grab()]
    )
    assert result.summary["compute_dtype"] == "mixed_bfloat16"
    assert not isinstance(optimizers[0], keras.optimizers.LossScaleOptimizer)
    assert {layer.dtype_policy.name for layer in result.model.layers} == {"float32"}
    assert np.isfinite(result.summary["history"][0]["loss"])


def test_warmup_ramps_the_rate_over_the_first_steps(stores, tmp_path):
    rates = []

    class Rate(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            rates.append(float(self.model.optimizer.learning_rate))

    # 6 patches, batch 4: 2 steps per epoch, 2 epochs = optimizer steps 0..3, ramp over 3
    _train(stores, tmp_path / "run", warmup_steps=3, callbacks=[Rate()])
    np.testing.assert_allclose(rates, [1e-3 / 3, 2e-3 / 3, 1e-3, 1e-3], rtol=1e-5)


class BatchSizes(keras.callbacks.Callback):
    """Records the number of batches per epoch (Keras counts them in on_train_batch_end)."""

    def __init__(self):
        super().__init__()
        self.per_epoch: list[int] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.per_epoch.append(0)

    def on_train_batch_end(self, batch, logs=None):
        self.per_epoch[-1] += 1


def test_steps_per_epoch_is_the_number_of_batches_as_in_keras(tmp_path):
    # 20 patches at batch 8: 20 steps per epoch (the store repeats), not ceil(20 / 8) = 3.
    store = synthetic_patch_store(tmp_path / "train20", n=20, size=16, seed=3)
    counter = BatchSizes()
    result = _train(
        (store, None),
        tmp_path / "run",
        model={"features": 4, "blocks": 1},
        callbacks=[counter],
        batch_size=8,
        crop_size=16,
        steps_per_epoch=20,
    )
    assert counter.per_epoch == [20, 20]
    assert result.summary["steps_per_epoch"] == 20 and result.summary["n_val"] == 0
    default = BatchSizes()
    _train(
        (store, None),
        tmp_path / "default",
        model={"features": 4, "blocks": 1},
        callbacks=[default],
        epochs=1,
        batch_size=8,
        crop_size=16,
    )
    assert default.per_epoch == [3]  # null: every sample once, last partial batch kept


RUN_SCRIPT = textwrap.dedent(
    """
    import json, logging, sys, time
    import keras
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
    from tml_cloudremoval.data.patch_store import PatchStore
    from tml_cloudremoval.training.config import load_configs
    from tml_cloudremoval.training.loop import train
    from tml_cloudremoval.training.run_folder import RunFolder

    train_dir, val_dir, run_dir, pause = sys.argv[1:5]

    class Slow(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(float(pause))

    configs = load_configs(
        {"features": 8, "blocks": 1},
        {"epochs": 3, "batch_size": 2, "crop_size": 32, "learning_rate": 1e-3, "verbose": 0},
    )
    result = train(
        PatchStore.open(train_dir), PatchStore.open(val_dir), *configs, RunFolder(run_dir),
        callbacks=[Slow()],
    )
    result.model.save(run_dir + "/../resumed.keras")
    print("DONE", json.dumps(result.summary["resumed_from_epoch"]))
    """
)


@pytest.mark.slow
def test_resume_after_sigkill_continues_and_matches_an_uninterrupted_run(stores, tmp_path):
    train_store, val_store = stores
    run_dir = tmp_path / "run"
    cmd = [
        sys.executable,
        "-c",
        RUN_SCRIPT,
        str(train_store.path),
        str(val_store.path),
        str(run_dir),
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    victim = subprocess.Popen([*cmd, "0.4"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while not (run_dir / "checkpoints" / "epoch_0001").exists():
            assert victim.poll() is None, "training exited before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint after 90 s"
            time.sleep(0.05)
        time.sleep(0.5)  # now inside epoch 2
        victim.send_signal(signal.SIGKILL)
    finally:
        victim.wait(timeout=30)
        victim.stdout.close()
    assert victim.returncode == -signal.SIGKILL
    assert not (run_dir / "FINISHED.json").exists()
    assert not (run_dir / "checkpoints" / "epoch_0003").exists()

    done = subprocess.run(
        [*cmd, "0"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming from epoch " in done.stdout
    resumed_from = int(done.stdout.split("DONE")[-1])
    assert 1 <= resumed_from <= 2
    log = pd.read_csv(run_dir / "training_log.csv")
    assert log["epoch"].tolist() == [1, 2, 3]
    assert (run_dir / "FINISHED.json").is_file()
    leftovers = [p for p in (run_dir / "checkpoints").iterdir() if is_temporary(p)]
    assert leftovers == [] and not [p for p in run_dir.iterdir() if is_temporary(p)]

    # The same three epochs uninterrupted, in this process: the same weights.
    straight = _train(stores, tmp_path / "straight", epochs=3, batch_size=2)
    resumed = keras.saving.load_model(tmp_path / "resumed.keras")
    for a, b in zip(_weights(straight.model), _weights(resumed), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
    from tml_cloudremoval.data.patch_store import PatchStore
    from tml_cloudremoval.training.config import load_configs
    from tml_cloudremoval.training.loop import train
    from tml_cloudremoval.training.run_folder import RunFolder

    train_dir, val_dir, out = sys.argv[1:4]
    stores = PatchStore.open(train_dir), PatchStore.open(val_dir)
    common = {"epochs": 2, "batch_size": 4, "crop_size": 32, "learning_rate": 1e-3, "verbose": 0}
    model = {"features": 8, "blocks": 1}
    one = train(*stores, *load_configs(model, common), RunFolder(out + "/one"))
    mirrored = load_configs(model, {**common, "distribution": "mirrored"})
    two = train(*stores, *mirrored, RunFolder(out + "/two"))
    diff = max(float(np.max(np.abs(a - b))) for a, b in
               zip(one.model.get_weights(), two.model.get_weights()))
    print("RESULT", json.dumps({"replicas": two.summary["replicas"], "diff": diff,
          "loss": two.summary["history"][-1]["loss"],
          "loss_one": one.summary["history"][-1]["loss"]}))
    """
)


@pytest.mark.slow
def test_mirrored_training_on_two_logical_cpus_matches_one_device(stores, tmp_path):
    train_store, val_store = stores
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            MIRRORED_SCRIPT,
            str(train_store.path),
            str(val_store.path),
            str(tmp_path),
        ],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.split("RESULT")[-1])
    assert result["replicas"] == 2
    # 6 samples, batch 4 -> batches of 4 and 2, split evenly over the replicas: the summed
    # replica gradients equal the single-device gradient, so training follows the same path.
    assert result["diff"] < 1e-4
    assert result["loss"] == pytest.approx(result["loss_one"], rel=1e-4)


WORKER_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from tml_cloudremoval.data.patch_store import PatchStore
    from tml_cloudremoval.training.config import load_configs
    from tml_cloudremoval.training.loop import train
    from tml_cloudremoval.training.run_folder import RunFolder

    train_dir, val_dir, run_dir = sys.argv[1:4]
    configs = load_configs(
        {"features": 8, "blocks": 1},
        {"epochs": 2, "batch_size": 4, "crop_size": 32, "learning_rate": 1e-3,
         "verbose": 0, "distribution": "multi_worker"},
    )
    result = train(
        PatchStore.open(train_dir), PatchStore.open(val_dir), *configs, RunFolder(run_dir)
    )
    print("RESULT", json.dumps({"replicas": result.summary["replicas"],
          "loss": result.summary["history"][-1]["loss"]}))
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_multi_worker_training_with_two_local_workers(stores, tmp_path):
    train_store, val_store = stores
    cluster = {"worker": [f"localhost:{_free_port()}", f"localhost:{_free_port()}"]}
    procs = []
    for index in (1, 0):
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_CONFIG": json.dumps(tf_config)}
        cmd = [
            sys.executable,
            "-c",
            WORKER_SCRIPT,
            str(train_store.path),
            str(val_store.path),
            str(tmp_path / "run"),
        ]
        procs.append(
            subprocess.Popen(
                cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err[-3000:]
            outputs.append(json.loads(out.split("RESULT")[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert [o["replicas"] for o in outputs] == [2, 2]
    assert outputs[0]["loss"] == pytest.approx(outputs[1]["loss"])  # synchronised replicas
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == [
        "epoch_0001",
        "epoch_0002",
    ]
    assert (tmp_path / "run" / "FINISHED.json").is_file()


ALEATORIC = {**TINY_MODEL, "uncertainty": "aleatoric"}


def test_aleatoric_run_logs_its_std_and_exports_both_outputs(stores, tmp_path):
    result = _train(stores, tmp_path / "run", model=ALEATORIC, epochs=1)
    row = result.summary["history"][-1]
    for key in ("loss", "val_loss", "mae", "val_covered_mae", "std", "val_std"):
        assert np.isfinite(row[key]), key
    assert result.summary["model"]["uncertainty"] == "aleatoric"
    assert result.summary["parameters"] == build_dsen2cr(**ALEATORIC).count_params()
    x = {
        "optical": np.random.default_rng(0).uniform(0, 5, (1, 32, 32, 10)).astype(np.float32),
        "sar": np.ones((1, 8, 8, 2), np.float32),
    }
    expected = result.model.predict(x, verbose=0)
    for path in ("final_model.keras", "checkpoints/epoch_0001/model.keras"):
        out = keras.saving.load_model(tmp_path / "run" / path, safe_mode=True).predict(x, verbose=0)
        assert sorted(out) == ["log_scale", "prediction"]
        for name in out:
            np.testing.assert_allclose(out[name], expected[name], atol=1e-6)


@pytest.mark.slow
def test_aleatoric_run_resumes_like_an_uninterrupted_run(stores, tmp_path):
    straight = _train(stores, tmp_path / "straight", model=ALEATORIC)
    # One epoch, then "interrupted" (no FINISHED.json), then resumed to two: the same weights.
    run_dir = tmp_path / "resumed"
    _train(stores, run_dir, model=ALEATORIC, epochs=1)
    (run_dir / "FINISHED.json").unlink()
    resumed = _train(stores, run_dir, model=ALEATORIC, epochs=2)
    assert resumed.summary["resumed_from_epoch"] == 1
    for a, b in zip(_weights(straight.model), _weights(resumed.model), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    (run_dir / "FINISHED.json").unlink()
    with pytest.raises(ProjectError, match=r"model.uncertainty: 'aleatoric' -> 'none'"):
        _train(stores, run_dir, epochs=3)
