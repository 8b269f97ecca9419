"""Backends: the PyDataset input against tf.data, and a training step on TensorFlow against JAX.

Usage: ``python benchmarks/bench_backends.py [--quick] [--rounds N]``.

- *input*: samples/s of training batches (batch 16, crop 128, SAR, augmentation) from a
  synthetic 256 x 256 patch store, read through ``input_pipeline.train_dataset`` (tf.data) and
  through ``patch_sequence.TrainSequence`` (PyDataset) with 1 and 2 worker threads, iterated as
  ``Model.fit`` iterates (Keras' epoch iterator), modes interleaved over rounds.
- *step*: samples/s of ``CloudRemovalTrainer`` training steps on an in-memory batch (model
  F 16, B 4, batch 8, crop 64) on each backend, one subprocess per measurement (Keras fixes the
  backend at import), TensorFlow and JAX interleaved; each subprocess times steps after two
  warm-up steps (compilation). TensorFlow with ``jit_compile`` off (the default
  ``training.xla: false``) and on; JAX always jitted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, machine_line, table
from interleave import interleaved, ratio_spread, spread

BATCH, CROP = 16, 128


def input_modes(store, batches: int) -> dict:
    """mode name -> callable giving samples/s over ``batches`` batches of a fresh iterator."""
    import tensorflow as tf
    from keras.src.trainers.epoch_iterator import EpochIterator

    from tml_cloudremoval.data.input_pipeline import train_dataset
    from tml_cloudremoval.data.patch_sequence import TrainSequence

    def tf_data() -> float:
        ds = train_dataset(store, BATCH, CROP, seed=1)
        start = time.perf_counter()
        for batch in ds.take(batches):
            tf.nest.map_structure(lambda t: t.numpy(), batch)
        return batches * BATCH / (time.perf_counter() - start)

    def pydataset(workers: int):
        def run() -> float:
            seq = TrainSequence(store, BATCH, CROP, seed=1, workers=workers)
            iterator = EpochIterator(x=seq, steps_per_epoch=batches, shuffle=False)
            start = time.perf_counter()
            for _ in iterator:
                pass
            return batches * BATCH / (time.perf_counter() - start)

        return run

    return {"tf.data": tf_data, "PyDataset 1 worker": pydataset(1), "PyDataset 2": pydataset(2)}


def step_worker(jit: bool, steps: int) -> None:
    """Print samples/s of ``steps`` training steps on this process's backend (JSON)."""
    import keras
    from common import training_batch

    from tml_cloudremoval.models.dsen2cr import build_dsen2cr
    from tml_cloudremoval.training.trainer import CloudRemovalTrainer

    keras.utils.set_random_seed(0)
    trainer = CloudRemovalTrainer(build_dsen2cr(features=16, blocks=4))
    trainer.compile(optimizer=keras.optimizers.Nadam(1e-4), jit_compile=jit)
    x, y = training_batch(8, 64)
    for _ in range(2):
        trainer.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_on_batch(x, y)
    rate = steps * 8 / (time.perf_counter() - start)
    print(json.dumps({"backend": keras.backend.backend(), "samples_per_s": rate}))


def step_mode(backend: str, jit: bool, steps: int):
    def run() -> float:
        env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu"}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO / "benchmarks")])
        cmd = [sys.executable, __file__, "--step-worker", str(steps), "--jit", str(int(jit))]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        assert result["backend"] == backend, result
        return result["samples_per_s"]

    return run


def report(results: dict[str, list[float]], reference: str, what: str) -> str:
    rows = [
        [name, spread(v).text(), ratio_spread(v, results[reference]).text()]
        for name, v in results.items()
    ]
    return table(rows, [what, "samples/s median (range, n)", f"per-round ratio to {reference}"])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--step-worker", type=int)
    parser.add_argument("--jit", type=int, default=0)
    args = parser.parse_args(argv)
    if args.step_worker:
        step_worker(bool(args.jit), args.step_worker)
        return 0
    rounds = args.rounds or (2 if args.quick else 4)
    sys.path.insert(0, str(REPO / "tests"))
    from support.synthetic_stores import synthetic_patch_store

    print(machine_line(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = synthetic_patch_store(Path(tmp) / "store", n=24 if args.quick else 64, size=256)
        batches = 4 if args.quick else 12
        results = interleaved(input_modes(store, batches), rounds)
    print(f"\ninput: batch {BATCH}, crop {CROP}, {batches} batches per measurement")
    print(report(results, "tf.data", "input path"))
    steps = 3 if args.quick else 10
    modes = {
        "TF (jit off)": step_mode("tensorflow", False, steps),
        "TF (XLA)": step_mode("tensorflow", True, steps),
        "JAX (jit)": step_mode("jax", True, steps),
    }
    results = interleaved(modes, rounds)
    print(f"\nstep: model F 16 B 4, batch 8, crop 64, {steps} steps per measurement")
    print(report(results, "TF (jit off)", "backend"))
    print(machine_line())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
