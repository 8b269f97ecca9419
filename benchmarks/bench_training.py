"""Training throughput of DSen2-CR: plain vs XLA, achieved GFLOP/s vs a matmul peak, peak RSS.

Run from the project root:

    python benchmarks/bench_training.py                 # default model, batch 16, crop 128
    python benchmarks/bench_training.py --steps 2 --warmup 1 --features 32 --blocks 4

Each training mode runs in its own subprocess (so each peak RSS is that mode's own) and trains
the model exactly as ``tml_cloudremoval.training.loop`` does (CloudRemovalTrainer, CARL, Nadam) on
fixed in-memory batches; the first ``--warmup`` steps (tracing, XLA compilation) are not timed.
The real tf.data input pipeline is timed separately (reading crops from a patch store, no model),
to show whether it can keep up. Figures are printed, never asserted.

FLOPs are counted analytically: a 3x3 convolution from c_in to c_out channels costs
2 * 9 * c_in * c_out per output pixel; a training step costs about 3x the forward pass
(forward, gradient w.r.t. activations, gradient w.r.t. weights). Element-wise work (ReLU, adds,
optimizer) is left out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine_line, training_batch

# The synthetic patch store is test data, kept out of the package: it lives in
# tests/support/synthetic_stores.py, shared by the tests and this benchmark.
sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))


def forward_flops_per_pixel(features: int, blocks: int, optical: int = 10, sar: int = 2) -> int:
    """Multiply-adds x 2 of the convolutions for one 10 m output pixel."""
    head = 2 * 9 * (optical + sar) * features
    body = blocks * 2 * (2 * 9 * features * features)
    tail = 2 * 9 * features * optical
    return head + body + tail


def peak_rss_gb() -> float:
    """Peak resident set size of this process in GB (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


# ---------------------------------------------------------------------------------------------
# Workers (subprocesses)
# ---------------------------------------------------------------------------------------------


def worker_train(args) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from tml_cloudremoval.models.dsen2cr import build_dsen2cr
    from tml_cloudremoval.training.trainer import CloudRemovalTrainer

    keras.utils.set_random_seed(0)
    b, c = args.batch, args.crop
    x, y = training_batch(b, c)
    ds = tf.data.Dataset.from_tensors((x, y)).repeat()
    network = build_dsen2cr(args.features, args.blocks)
    trainer = CloudRemovalTrainer(network, "carl")
    trainer.compile(optimizer=keras.optimizers.Nadam(7e-5), jit_compile=args.worker == "xla")

    times: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.t = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            float(logs["loss"])  # wait for the step
            times.append(time.perf_counter() - self.t)

    total = args.warmup + args.steps
    trainer.fit(ds, steps_per_epoch=total, epochs=1, verbose=0, callbacks=[Clock()])
    timed = times[args.warmup :]
    step = float(np.median(timed))
    samples = b / step
    flops = 3 * forward_flops_per_pixel(args.features, args.blocks) * c * c
    return {
        "mode": args.worker,
        "step_s": step,
        "first_step_s": times[0],
        "samples_per_s": samples,
        "gflops": flops * samples / 1e9,
        "peak_rss_gb": peak_rss_gb(),
        "params": network.count_params(),
    }


def worker_matmul(args) -> dict:
    import tensorflow as tf

    n = 3072
    a = tf.random.uniform((n, n))
    b = tf.random.uniform((n, n))
    tf.linalg.matmul(a, b).numpy()
    best = float("inf")
    for _ in range(5):  # best of 5: the peak, not the average under other load
        start = time.perf_counter()
        tf.linalg.matmul(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return {"mode": "matmul", "gflops": 2 * n**3 / best / 1e9}


def worker_pipeline(args) -> dict:
    import numpy as np
    from support.synthetic_stores import synthetic_patch_store

    from tml_cloudremoval.data.input_pipeline import train_dataset
    from tml_cloudremoval.data.patch_store import PatchStore

    with tempfile.TemporaryDirectory() as tmp:
        if args.store:
            store = PatchStore.open(args.store)
        else:
            store = synthetic_patch_store(Path(tmp) / "store", n=64, size=256, seed=0)
        ds = train_dataset(store, args.batch, args.crop, seed=0)
        it = iter(ds)
        for _ in range(3):
            next(it)
        batches = 30
        start = time.perf_counter()
        for _ in range(batches):
            x, _y = next(it)
            np.asarray(x["optical"])
        seconds = time.perf_counter() - start
        return {
            "mode": "input_pipeline",
            "samples_per_s": batches * args.batch / seconds,
            "store": str(store.path) if args.store else "synthetic 64 x 256x256",
        }


def worker_run(args) -> dict:
    """``training.loop.train`` itself: real input pipeline, checkpoint, full-patch validation."""
    from support.synthetic_stores import synthetic_patch_store

    from tml_cloudremoval.data.patch_store import PatchStore
    from tml_cloudremoval.training.config import load_configs
    from tml_cloudremoval.training.loop import train
    from tml_cloudremoval.training.run_folder import RunFolder

    with tempfile.TemporaryDirectory() as tmp:
        if args.store:
            train_store = PatchStore.open(args.store)
        else:
            train_store = synthetic_patch_store(Path(tmp) / "train", n=48, size=256, seed=0)
        val_store = synthetic_patch_store(Path(tmp) / "val", n=args.batch, size=256, seed=1)
        model_cfg, cfg = load_configs(
            {"features": args.features, "blocks": args.blocks},
            {
                "epochs": 1,
                "batch_size": args.batch,
                "crop_size": args.crop,
                "steps_per_epoch": args.warmup + args.steps,
                "val_batch_size": args.val_batch,
                "verbose": 0,
                "tensorboard": False,
            },
        )
        start = time.perf_counter()
        result = train(train_store, val_store, model_cfg, cfg, RunFolder(Path(tmp) / "run"))
        epoch = result.summary["history"][0]
        return {
            "mode": "train()",
            "seconds": time.perf_counter() - start,
            "epoch_s": epoch["seconds"],
            "steps": args.warmup + args.steps,
            "val_patches": len(val_store),
            "peak_rss_gb": peak_rss_gb(),
        }


WORKERS = {"plain": worker_train, "xla": worker_train, "matmul": worker_matmul}
WORKERS["pipeline"] = worker_pipeline
WORKERS["run"] = worker_run


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


def run_worker(mode: str, args) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        mode,
        "--batch",
        str(args.batch),
        "--crop",
        str(args.crop),
        "--features",
        str(args.features),
        "--blocks",
        str(args.blocks),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
    ]
    if args.val_batch:
        cmd += ["--val-batch", str(args.val_batch)]
    if args.store:
        cmd += ["--store", args.store]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_report(machine: str, results: dict, args) -> None:
    """The figures of every mode, side by side."""
    print(f"machine: {machine}")
    print(
        f"model: features {args.features}, blocks {args.blocks}; batch {args.batch}, "
        f"crop {args.crop}; {args.warmup} warm-up + {args.steps} timed steps (median)"
    )
    peak = results["matmul"]["gflops"] if "matmul" in results else float("nan")
    if "matmul" in results:
        print(f"matmul peak (float32 3072^2, best of 5, same TF): {peak:8.1f} GFLOP/s")
    if "pipeline" in results:
        print(
            f"input pipeline alone ({results['pipeline']['store']}): "
            f"{results['pipeline']['samples_per_s']:8.1f} samples/s"
        )
    trained = [m for m in ("plain", "xla") if m in results]
    if trained:
        header = (
            f"{'mode':<7}{'samples/s':>11}{'step s':>9}{'1st step s':>12}"
            f"{'GFLOP/s':>10}{'% matmul':>10}{'peak RSS GB':>13}"
        )
        print()
        print(header)
        print("-" * len(header))
        for mode in trained:
            r = results[mode]
            print(
                f"{mode:<7}{r['samples_per_s']:>11.2f}{r['step_s']:>9.2f}"
                f"{r['first_step_s']:>12.2f}{r['gflops']:>10.1f}"
                f"{100 * r['gflops'] / peak:>10.1f}{r['peak_rss_gb']:>13.2f}"
            )
    if len(trained) == 2:
        speedup = results["xla"]["samples_per_s"] / results["plain"]["samples_per_s"]
        print(f"\nXLA / plain: {speedup:.2f}x")
    if "run" in results:
        r = results["run"]
        print(
            f"training.loop.train() ({r['steps']} steps + checkpoint + validation on "
            f"{r['val_patches']} full 256x256 patches): {r['seconds']:.1f} s, "
            f"peak RSS {r['peak_rss_gb']:.2f} GB"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per mode")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per mode")
    parser.add_argument("--store", default=None, help="patch store for the input pipeline")
    parser.add_argument(
        "--val-batch", type=int, default=None, help="validation batch of the run mode"
    )
    parser.add_argument(
        "--modes",
        default="matmul,pipeline,plain,xla,run",
        help="comma-separated subset of matmul, pipeline, plain, xla, run",
    )
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    parser.add_argument("--quick", action="store_true", help="1 warm-up + 1 timed step per mode")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.warmup = 1, 1

    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return 0

    import tensorflow  # noqa: F401  (imported here so that machine_line lists the GPUs)

    machine = f"{platform.node()}: {machine_line()}"
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    results = {mode: run_worker(mode, args) for mode in modes}
    print_report(machine, results, args)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"machine": machine, **results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
