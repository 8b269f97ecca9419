"""Cost of the aleatoric head: training step and inference, plain against aleatoric, one run.

    .venv/bin/python benchmarks/bench_inference_uncertainty.py            # 1024^2 scene, tile 1280
    .venv/bin/python benchmarks/bench_inference_uncertainty.py --quick    # 512^2 scene, tile 512
    .venv/bin/python benchmarks/bench_inference_uncertainty.py --no-ensemble

One process, side by side, the default model (F=64, B=16, untrained: speed does not depend on
the weights):
- parameters of the plain model and of the aleatoric one (same trunk, plus the log-scale head);
- training: one step of ``CloudRemovalTrainer`` (CARL, or its Laplace beta-NLL form for the
  aleatoric model; Nadam) on an in-memory batch (``--train-batch`` x ``--train-crop`` px),
  plain and aleatoric steps interleaved over ``repeats`` rounds of ``--train-steps``, median;
- raw model: ``predict_on_batch`` on one in-memory tile of ``tile_size`` px, plain and aleatoric
  calls interleaved (``repeats`` rounds, after a warm-up), so both see the same machine load;
- scene: ``inference.scene.predict_scene`` on a synthetic N x N scene (10 bands uint16, nodata
  0, SAR at 40 m) into COGs: plain (the cloud-free raster), aleatoric (the cloud-free raster and
  ``<id>_uncertainty.tif``, float32), and, unless ``--no-ensemble``, an ensemble of two plain
  models (the mean and ``<id>_epistemic.tif``); ``scene_repeats`` interleaved rounds, the best
  shown (the first round also traces each model for the scene's tile shapes); Mpx/s of the
  whole call, wall and CPU time, the share of time in model calls, output MiB, peak RSS of the
  process so far.
Nothing is asserted: this prints a table.

The aleatoric model is the project's ``build_dsen2cr(uncertainty="aleatoric")``.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_inference import make_scene, peak_rss_mb
from common import machine_line, training_batch

from tml_cloudremoval.models.dsen2cr import build_dsen2cr

BUILD_ALEATORIC = functools.partial(build_dsen2cr, uncertainty="aleatoric")
"""Builder of the aleatoric model (the arguments of ``build_dsen2cr``)."""


def build_models(args: argparse.Namespace) -> dict[str, object]:
    """The plain model, its aleatoric twin (same trunk weights) and a second plain model."""
    import keras

    from tml_cloudremoval.models.dsen2cr import build_dsen2cr

    # random tails (untrained, not the identity the default zero tail starts as): the members
    # of the ensemble differ and every output holds realistic noise for its file size
    kwargs = {"features": args.features, "blocks": args.blocks, "tail_init": "he_uniform"}
    keras.utils.set_random_seed(0)
    plain = build_dsen2cr(**kwargs)
    aleatoric = BUILD_ALEATORIC(**kwargs)
    for layer in plain.layers:
        aleatoric.get_layer(layer.name).set_weights(layer.get_weights())
    keras.utils.set_random_seed(1)
    return {"plain": plain, "aleatoric": aleatoric, "second": build_dsen2cr(**kwargs)}


def time_training(models: dict[str, object], args: argparse.Namespace) -> dict[str, dict]:
    """Median seconds per training step of each model, the models' steps interleaved."""
    import keras
    import numpy as np

    from tml_cloudremoval.training.trainer import CloudRemovalTrainer

    b, c = args.train_batch, args.train_crop
    x, y = training_batch(b, c)
    trainers = {}
    for name, network in models.items():
        trainer = CloudRemovalTrainer(network, "carl")
        trainer.compile(optimizer=keras.optimizers.Nadam(7e-5))
        for _ in range(2):  # trace and warm up
            trainer.train_on_batch(x, y)
        trainers[name] = trainer
    times: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(args.repeats):
        for name, trainer in trainers.items():
            for _ in range(args.train_steps):
                start = time.perf_counter()
                trainer.train_on_batch(x, y)
                times[name].append(time.perf_counter() - start)
    return {
        name: {"step_s": float(np.median(t)), "samples_per_s": b / float(np.median(t))}
        for name, t in times.items()
    }


def time_raw(models: dict[str, object], args: argparse.Namespace) -> dict[str, dict]:
    """Raw Mpx/s of each model on one in-memory tile, calls interleaved (wall and CPU)."""
    t = args.tile_size
    rng = np.random.default_rng(0)
    inputs = {
        "optical": rng.uniform(0, 5, (1, t, t, 10)).astype(np.float32),
        "sar": rng.uniform(0, 2, (1, t // 4, t // 4, 2)).astype(np.float32),
    }
    for model in models.values():  # tracing and allocator set-up are not timed
        model.predict_on_batch(inputs)
    spent = {name: [0.0, 0.0] for name in models}
    for _ in range(args.repeats):
        for name, model in models.items():
            wall, cpu = time.perf_counter(), time.process_time()
            model.predict_on_batch(inputs)
            spent[name][0] += time.perf_counter() - wall
            spent[name][1] += time.process_time() - cpu
    mpx = t * t / 1e6 * args.repeats
    return {n: {"mpx_per_s": mpx / w, "mpx_per_cpu_s": mpx / c} for n, (w, c) in spent.items()}


def run_scene(models: list, args: argparse.Namespace, s2: Path, s1: Path, name: str) -> dict:
    """``predict_scene`` of one model or an ensemble into COGs: time, share in model calls,
    output MiB (every file written), peak RSS so far."""
    from tml_cloudremoval.inference.config import InferenceConfig
    from tml_cloudremoval.inference.scene import predict_scene

    out = Path(args.workdir) / f"{name}_cloudfree.tif"
    config = InferenceConfig(
        tile_size=args.tile_size, progress=not args.quiet, output_format="cog", sar_method="mean"
    )
    wall, cpu = time.perf_counter(), time.process_time()
    facts = predict_scene(models if len(models) > 1 else models[0], s2, s1, out, config)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    files = [out] + [
        Path(facts[k]) for k in ("uncertainty_path", "epistemic_path") if facts[k] is not None
    ]
    result = {
        "mpx_per_s": args.size**2 / 1e6 / wall,
        "mpx_per_cpu_s": args.size**2 / 1e6 / cpu,
        "model_share": facts["model_seconds"] / facts["seconds"],
        "output_mb": sum(f.stat().st_size for f in files) / 2**20,
        "files": len(files),
        "peak_rss_mb": peak_rss_mb(),
    }
    for f in files:
        f.unlink()
    return result


def best(runs: list[dict]) -> dict:
    """The fastest of repeated scene runs (wall and CPU time each; the first round of each
    model also traces the model for the scene's tile shapes); the peak RSS of the last."""
    return {
        **runs[-1],
        "mpx_per_s": max(r["mpx_per_s"] for r in runs),
        "mpx_per_cpu_s": max(r["mpx_per_cpu_s"] for r in runs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1024, help="scene side N (px)")
    parser.add_argument("--tile-size", type=int, default=1280, help="inference.tile_size")
    parser.add_argument("--features", type=int, default=64, help="model F")
    parser.add_argument("--blocks", type=int, default=16, help="model B")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved raw-tile rounds")
    parser.add_argument(
        "--scene-repeats", type=int, default=2, help="interleaved scene rounds (best is shown)"
    )
    parser.add_argument("--train-batch", type=int, default=4, help="training batch")
    parser.add_argument("--train-crop", type=int, default=128, help="training crop (px)")
    parser.add_argument("--train-steps", type=int, default=3, help="timed steps per round")
    parser.add_argument("--no-ensemble", action="store_true", help="skip the 2-model ensemble")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--quick", action="store_true", help="512^2 scene, tile 512, 1 round")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.tile_size, args.repeats, args.scene_repeats = 512, 512, 1, 2
    models = build_models(args)
    print(f"machine: {machine_line()}", flush=True)
    pair = {k: models[k] for k in ("plain", "aleatoric")}
    training = time_training(pair, args)
    raw = time_raw(pair, args)
    with tempfile.TemporaryDirectory(prefix="bench_uncertainty_") as tmp:
        args.workdir = tmp
        s2, s1 = make_scene(Path(tmp), (args.size, args.size))
        kinds = {"plain": [models["plain"]], "aleatoric": [models["aleatoric"]]}
        if not args.no_ensemble:
            kinds["ensemble of 2 plain"] = [models["plain"], models["second"]]
        rounds = [
            {name: run_scene(m, args, s2, s1, name.split()[0]) for name, m in kinds.items()}
            for _ in range(args.scene_repeats)
        ]
        scenes = {name: best([r[name] for r in rounds]) for name in kinds}
    print(json.dumps({"training": training, "raw": raw, "scenes": scenes}), flush=True)
    print_training(models, training, args)
    print_table(models, raw, scenes, args)
    return 0


def print_training(models: dict, training: dict, args: argparse.Namespace) -> None:
    print()
    print(f"Aleatoric head, training step; machine: {machine_line()}")
    print(
        f"batch {args.train_batch} x {args.train_crop}^2 px, median of {args.repeats} x "
        f"{args.train_steps} interleaved steps after 2 warm-up steps"
    )
    print("| model | parameters | s / step | samples/s | step / plain |")
    print("|---|---|---|---|---|")
    for name, r in training.items():
        print(
            f"| {name} | {models[name].count_params():,} | {r['step_s']:.3f} "
            f"| {r['samples_per_s']:.2f} | {r['step_s'] / training['plain']['step_s']:.3f} |"
        )


def print_table(models: dict, raw: dict, scenes: dict, args: argparse.Namespace) -> None:
    plain = scenes["plain"]
    print()
    print(f"Aleatoric head, inference, {time.strftime('%Y-%m-%d')}; machine: {machine_line()}")
    print(
        f"model F={args.features} B={args.blocks}; raw = predict_on_batch on one in-memory "
        f"{args.tile_size}^2 tile ({args.repeats} interleaved rounds); scene = predict_scene of "
        f"a {args.size}^2 scene into COGs, tile_size {args.tile_size}, best of "
        f"{args.scene_repeats} interleaved rounds"
    )
    print(
        "| model | parameters | raw tile Mpx/s | raw / plain (CPU time) | scene Mpx/s "
        "| scene / plain (CPU time) | time in model calls | files | output MiB | peak RSS MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in scenes.items():
        key = name if name in raw else None
        params = (
            f"{models[name].count_params():,}" if key else f"2 x {models['plain'].count_params():,}"
        )
        raw_cells = (
            f"{raw[key]['mpx_per_s']:.4f} | "
            f"{raw[key]['mpx_per_cpu_s'] / raw['plain']['mpx_per_cpu_s']:.3f}"
            if key
            else "- | -"
        )
        print(
            f"| {name} | {params} | {raw_cells} | {r['mpx_per_s']:.4f} "
            f"| {r['mpx_per_cpu_s'] / plain['mpx_per_cpu_s']:.3f} | {r['model_share']:.1%} "
            f"| {r['files']} | {r['output_mb']:.1f} | {r['peak_rss_mb']:.0f} |"
        )
    print("peak RSS: of this process so far (the runs go in the order of the table)")


if __name__ == "__main__":
    sys.exit(main())
