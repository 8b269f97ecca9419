"""Training throughput of DSen2-CR: plain vs XLA, interleaved (ABAB), vs a matmul peak; peak RSS.

Run from the project root:

    python benchmarks/bench_training.py             # default model, batch 16, crop 128, 6 rounds
    python benchmarks/bench_training.py --quick     # tiny model (F=8, B=2, batch 4, crop 64)
    python benchmarks/bench_training.py --repeats 8 --modes plain,xla,matmul

How the modes are compared. On a shared machine the load changes over minutes, so timing plain
and then XLA (each once, 3 steps) put any load change wholly into one mode: two such runs a week
apart gave XLA 0.82 x and 1.30 x plain. Here every compared mode (``plain``, ``xla`` and the
``matmul`` reference) lives in its own long-lived worker subprocess, started together; each
builds its model once, then, one worker at a time, traces/compiles and takes ``--warmup``
untimed steps (the first step's time is reported). Then the driver asks the workers, one at a
time and in turn, for one timed round each (``--steps`` steps, median), for ``--repeats``
rounds: plain, xla, matmul; xla, matmul, plain; ... (``interleave.interleaved``, the order
rotates). A worker waits, idle, on its pipe while another is timed. So each mode keeps its own
process and peak RSS, and every round's XLA/plain ratio and % of the matmul peak are taken from
measurements a few seconds apart, which a load change between rounds leaves alone. Reported:
the median with range and n (``interleave.spread``) of step time, samples/s and % of the matmul
peak, and of the per-round XLA/plain ratio. (Separate workers rather than two compiled
functions in one process: one process could not report each mode's own peak RSS.)

Each training worker trains the model as ``tml_cloudremoval.training.loop`` does (its
``build_trainer``: ``CloudRemovalTrainer``, CARL, Nadam, ``jit_compile`` = ``training.xla``) on
one fixed batch already in memory, with ``train_on_batch`` (the same compiled step as ``fit``;
the loss is fetched, so a step's time includes its completion). ``pipeline`` (the real tf.data
input from a patch store, no model) and ``run`` (``training.loop.train()`` itself) are one-shot
workers, not compared. Figures are printed, never asserted. :func:`make_trainer`,
:func:`time_steps`, :func:`matmul_gflops` and :func:`step_flops` are importable (no work at
import time) for other benchmarks.

FLOPs are counted analytically: a 3x3 convolution from c_in to c_out channels costs
2 * 9 * c_in * c_out per output pixel; a training step costs about 3x the forward pass
(forward, gradient w.r.t. activations, gradient w.r.t. weights). Element-wise work (ReLU, adds,
optimizer) is left out.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Worker, machine_line, serve, table, training_batch
from interleave import interleaved, ratio_spread, spread

# The synthetic patch store is test data, kept out of the package: it lives in
# tests/support/synthetic_stores.py, shared by the tests and this benchmark.
sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))

COMPARED = ("plain", "xla", "matmul")
"""Modes timed in interleaved rounds, each in a long-lived worker."""
ONE_SHOT = ("pipeline", "run")
"""Modes run once each in their own subprocess (not compared)."""


def forward_flops_per_pixel(features: int, blocks: int, optical: int = 10, sar: int = 2) -> int:
    """Multiply-adds x 2 of the convolutions for one 10 m output pixel."""
    head = 2 * 9 * (optical + sar) * features
    body = blocks * 2 * (2 * 9 * features * features)
    tail = 2 * 9 * features * optical
    return head + body + tail


def step_flops(features: int, blocks: int, crop: int) -> int:
    """FLOPs of one training sample of crop x crop px (3 x the forward pass)."""
    return 3 * forward_flops_per_pixel(features, blocks) * crop * crop


def peak_rss_gb() -> float:
    """Peak resident set size of this process in GB (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


# ---------------------------------------------------------------------------------------------
# Step timing (importable)
# ---------------------------------------------------------------------------------------------


def make_trainer(features: int, blocks: int, xla: bool, dtype: str | None = None, seed: int = 0):
    """``CloudRemovalTrainer`` of a fresh DSen2-CR as ``training.loop`` builds it
    (``build_trainer``: the default loss and Nadam settings of ``parameters_training.yml``,
    ``jit_compile=xla``; ``dtype="mixed_float16"`` adds the loss-scale optimizer), under the
    current ``tf.distribute`` strategy."""
    import keras
    import tensorflow as tf

    from tml_cloudremoval.training.config import load_configs
    from tml_cloudremoval.training.loop import build_trainer

    keras.utils.set_random_seed(seed)
    model_cfg, cfg = load_configs({"features": features, "blocks": blocks}, {"xla": bool(xla)})
    trainer, _network = build_trainer(model_cfg, cfg, tf.distribute.get_strategy(), dtype, None)
    return trainer


def time_steps(trainer, x: dict, y: dict, steps: int) -> list[float]:
    """Seconds of each of ``steps`` training steps on the batch ``(x, y)``.

    ``x``/``y`` as :func:`common.training_batch` gives them; pass them as tensors already on
    the device to leave the host-to-device copy out. ``train_on_batch`` returns the loss as a
    number, so each time includes the step's completion (no asynchronous dispatch left over).
    """
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        trainer.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    return times


def matmul_gflops(n: int = 3072, repeats: int = 3) -> float:
    """GFLOP/s of the best of ``repeats`` float32 n x n matmuls (TensorFlow): the peak, not
    the average under other load."""
    import tensorflow as tf

    a = tf.random.uniform((n, n), seed=1)
    b = tf.random.uniform((n, n), seed=2)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        tf.linalg.matmul(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


# ---------------------------------------------------------------------------------------------
# Workers (subprocesses)
# ---------------------------------------------------------------------------------------------


def serve_train(args) -> None:
    """Long-lived worker of mode ``plain`` or ``xla``: warmup, then one timed round per ask."""
    import keras

    x, y = training_batch(args.batch, args.crop)
    x, y = keras.tree.map_structure(keras.ops.convert_to_tensor, (x, y))
    trainer = make_trainer(args.features, args.blocks, xla=args.serve == "xla")

    def warmup() -> dict:
        times = time_steps(trainer, x, y, max(args.warmup, 1))
        return {"first_step_s": times[0], "params": trainer.network.count_params()}

    def one_round() -> dict:
        return {"value": statistics.median(time_steps(trainer, x, y, args.steps))}

    serve({"warmup": warmup, "round": one_round, "rss": lambda: {"peak_rss_gb": peak_rss_gb()}})


def serve_matmul(args) -> None:
    """Long-lived worker of the matmul reference: one best-of-3 GFLOP/s per round."""

    def warmup() -> dict:
        return {"gflops": matmul_gflops(repeats=1)}

    serve(
        {
            "warmup": warmup,
            "round": lambda: {"value": matmul_gflops()},
            "rss": lambda: {"peak_rss_gb": peak_rss_gb()},
        }
    )


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
        return {
            "mode": "train()",
            "seconds": time.perf_counter() - start,
            "epoch_s": result.summary["history"][0]["seconds"],
            "steps": args.warmup + args.steps,
            "val_patches": len(val_store),
            "peak_rss_gb": peak_rss_gb(),
        }


WORKERS = {"pipeline": worker_pipeline, "run": worker_run}
SERVERS = {"plain": serve_train, "xla": serve_train, "matmul": serve_matmul}


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


def worker_cmd(flag: str, mode: str, args) -> list[str]:
    """This script as a ``--worker`` or ``--serve`` subprocess of ``mode``, same settings."""
    cmd = [sys.executable, __file__, flag, mode, "--batch", str(args.batch)]
    cmd += ["--crop", str(args.crop), "--features", str(args.features)]
    cmd += ["--blocks", str(args.blocks), "--steps", str(args.steps)]
    cmd += ["--warmup", str(args.warmup)]
    if args.val_batch:
        cmd += ["--val-batch", str(args.val_batch)]
    if args.store:
        cmd += ["--store", args.store]
    return cmd


def run_worker(mode: str, args) -> dict:
    """A one-shot mode in its own subprocess."""
    done = subprocess.run(
        worker_cmd("--worker", mode, args), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{mode} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_rounds(modes: list[str], args) -> dict:
    """Start one worker per compared mode (together: imports and model builds overlap), warm
    them up one at a time, then ``args.repeats`` interleaved rounds. -> ``{"rounds": {mode:
    [value per round]}, "warmup": {mode: answer}, "peak_rss_gb": {mode: GB}}`` (value: step
    seconds, or matmul GFLOP/s)."""
    workers = {m: Worker(m, worker_cmd("--serve", m, args)) for m in modes}

    def ask(mode: str, request: str) -> dict:
        start = time.perf_counter()
        answer = workers[mode].ask(request)
        took = time.perf_counter() - start
        print(f"  {mode} {request}: {json.dumps(answer)} ({took:.1f} s)", flush=True)
        return answer

    try:
        warm = {m: ask(m, "warmup") for m in workers}
        rounds = interleaved(
            {m: (lambda m=m: ask(m, "round")["value"]) for m in workers}, args.repeats
        )
        rss = {m: w.ask("rss")["peak_rss_gb"] for m, w in workers.items()}
    finally:
        for w in workers.values():
            w.close()
    return {"rounds": rounds, "warmup": warm, "peak_rss_gb": rss}


def summarise(measured: dict, args) -> dict:
    """Median and range (n) of each compared mode's figures; per-round ratios. A training
    round's % of the matmul peak divides by the matmul round beside it."""
    rounds = measured["rounds"]
    peaks = rounds.get("matmul")
    flops = step_flops(args.features, args.blocks, args.crop)
    out: dict = {}
    if peaks:
        out["matmul"] = {"gflops": spread(peaks)}
    for mode in (m for m in ("plain", "xla") if m in rounds):
        steps = rounds[mode]
        samples = [args.batch / s for s in steps]
        gflops = [flops * s / 1e9 for s in samples]
        out[mode] = {
            "step_s": spread(steps),
            "samples_per_s": spread(samples),
            "gflops": spread(gflops),
            "pct_peak": spread([100 * g / p for g, p in zip(gflops, peaks, strict=True)])
            if peaks
            else None,
            "first_step_s": measured["warmup"][mode]["first_step_s"],
            "params": measured["warmup"][mode]["params"],
            "peak_rss_gb": measured["peak_rss_gb"][mode],
        }
    if "plain" in rounds and "xla" in rounds:  # samples/s ratio = plain step / xla step
        out["xla_over_plain"] = ratio_spread(rounds["plain"], rounds["xla"])
    return out


def verdict(ratio) -> str:
    """Whether a per-round ratio spread lies wholly above or below 1."""
    if ratio.low > 1:
        return "above 1 in every round"
    if ratio.high < 1:
        return "below 1 in every round"
    return "rounds on both sides of 1: no clear difference"


def print_report(machine: str, summary: dict, one_shot: dict, args) -> None:
    """The figures of every mode, side by side: median (range, n) over the rounds."""
    print(f"machine: {machine}")
    print(
        f"model: features {args.features}, blocks {args.blocks}; batch {args.batch}, "
        f"crop {args.crop}; {args.warmup} warm-up steps, then {args.repeats} interleaved rounds "
        f"of {args.steps} timed step(s) per mode (median per round); figures: median "
        "(min-max, n rounds)"
    )
    if "matmul" in summary:
        peak = summary["matmul"]["gflops"].text()
        print(f"matmul peak (float32 3072^2, best of 3 per round): {peak} GFLOP/s")
    if "pipeline" in one_shot:
        p = one_shot["pipeline"]
        print(f"input pipeline alone ({p['store']}): {p['samples_per_s']:.1f} samples/s")
    rows = []
    for mode in (m for m in ("plain", "xla") if m in summary):
        r = summary[mode]
        rows.append(
            [
                mode,
                r["samples_per_s"].text(),
                r["step_s"].text(),
                r["gflops"].text(),
                r["pct_peak"].text() if r["pct_peak"] else "-",
                f"{r['first_step_s']:.2f}",
                f"{r['peak_rss_gb']:.2f}",
            ]
        )
    if rows:
        header = ["mode", "samples/s", "step s", "GFLOP/s", "% of matmul peak", "1st step s"]
        print("\n" + table(rows, [*header, "peak RSS GB"]))
    if "xla_over_plain" in summary:
        ratio = summary["xla_over_plain"]
        print(f"\nXLA / plain samples/s, per round: {ratio.text()}; {verdict(ratio)}")
    if "run" in one_shot:
        r = one_shot["run"]
        print(
            f"training.loop.train() ({r['steps']} steps + checkpoint + validation on "
            f"{r['val_patches']} full 256x256 patches): {r['seconds']:.1f} s, "
            f"peak RSS {r['peak_rss_gb']:.2f} GB"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=16)
    parser.add_argument(
        "--repeats", type=int, default=None, help="interleaved rounds (6; --quick: 3)"
    )
    parser.add_argument("--steps", type=int, default=1, help="timed steps per mode and round")
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
    parser.add_argument("--serve", choices=sorted(SERVERS), help=argparse.SUPPRESS)
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: F=8, B=2, batch 4, crop 64, 3 rounds"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.features, args.blocks, args.batch, args.crop = 8, 2, 4, 64
        args.steps, args.warmup = 1, 1
    if args.repeats is None:
        args.repeats = 3 if args.quick else 6
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        SERVERS[args.serve](args)
        return 0
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return 0

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = sorted(set(modes) - set(COMPARED) - set(ONE_SHOT))
    if unknown:
        raise SystemExit(f"--modes: unknown {unknown}; known: {', '.join(COMPARED + ONE_SHOT)}")
    machine = f"{platform.node()}: {machine_line()}"
    start = time.perf_counter()
    compared = [m for m in COMPARED if m in modes]
    measured = measure_rounds(compared, args) if compared else {"rounds": {}}
    one_shot = {m: run_worker(m, args) for m in ONE_SHOT if m in modes}
    summary = summarise(measured, args)
    print_report(machine, summary, one_shot, args)
    print(
        f"(load avg at the end: {machine_line().split('load avg ')[-1].split(',')[0]}; "
        f"{time.perf_counter() - start:.0f} s in all)"
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        figures = {"machine": machine, "args": vars(args), **measured, **one_shot}
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
