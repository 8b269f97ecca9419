"""Cost of the aleatoric head: training step and inference, plain against aleatoric, interleaved.

    .venv/bin/python benchmarks/bench_inference_uncertainty.py            # 1024^2 scene, tile 1280
    .venv/bin/python benchmarks/bench_inference_uncertainty.py --quick    # 512^2 scene, tile 512
    .venv/bin/python benchmarks/bench_inference_uncertainty.py --no-ensemble

One process, side by side, the default model (F=64, B=16, untrained: speed does not depend on
the weights). Every comparison runs its modes in turns (``interleave.interleaved``: ABAB
rounds, the order rotating), so a change of machine load between rounds touches every mode
alike; each figure is the median (min-max, n rounds), each ratio the spread of the per-round
ratios:
- parameters of the plain model and of the aleatoric one (same trunk, plus the log-scale head);
- training: ``CloudRemovalTrainer`` steps (CARL, or its Laplace beta-NLL form for the aleatoric
  model; Nadam) on an in-memory batch (``--train-batch`` x ``--train-crop`` px), 2 warm-up
  steps each, then ``--repeats`` rounds of ``--train-steps`` steps per model (median per round);
- raw model: ``predict_on_batch`` on one in-memory tile of ``tile_size`` px, ``--repeats``
  rounds after a warm-up; the ratio in process CPU time (steadier than wall time when shared);
- scene: ``inference.scene.predict_scene`` on a synthetic N x N scene (10 bands uint16, nodata
  0, SAR at 40 m) into COGs: plain (the cloud-free raster), aleatoric (the cloud-free raster and
  ``<id>_uncertainty.tif``, float32), and, unless ``--no-ensemble``, an ensemble of two plain
  models (the mean and ``<id>_epistemic.tif``); ``--scene-repeats`` rounds, each model traced
  for the scene's tile beforehand; Mpx/s of the whole call, the ratio to plain in CPU time,
  the share of time in model calls, output MiB, peak RSS of the process after the first run.
Nothing is asserted: this prints a table.

The aleatoric model is the project's ``build_dsen2cr(uncertainty="aleatoric")``.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_inference import make_scene, peak_rss_mb
from common import machine_line, training_batch
from interleave import interleaved, ratio_spread, spread

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


def time_training(models: dict[str, object], args: argparse.Namespace) -> dict[str, list[float]]:
    """Seconds per training step of each model (median of ``train_steps`` steps per round),
    the models interleaved over ``repeats`` rounds -> ``{model: [seconds per round]}``."""
    import keras
    from bench_training import time_steps

    from tml_cloudremoval.training.trainer import CloudRemovalTrainer

    x, y = training_batch(args.train_batch, args.train_crop)
    trainers = {}
    for name, network in models.items():
        trainer = CloudRemovalTrainer(network, "carl")
        trainer.compile(optimizer=keras.optimizers.Nadam(7e-5))
        time_steps(trainer, x, y, 2)  # trace and warm up
        trainers[name] = trainer
    steps = {
        name: (lambda t=t: statistics.median(time_steps(t, x, y, args.train_steps)))
        for name, t in trainers.items()
    }
    return interleaved(steps, args.repeats)


def raw_inputs(side: int) -> dict[str, np.ndarray]:
    """One in-memory tile of side x side px (optical, and SAR at a quarter of the side)."""
    rng = np.random.default_rng(0)
    return {
        "optical": rng.uniform(0, 5, (1, side, side, 10)).astype(np.float32),
        "sar": rng.uniform(0, 2, (1, side // 4, side // 4, 2)).astype(np.float32),
    }


def time_raw(models: dict[str, object], args: argparse.Namespace) -> dict[str, dict]:
    """Wall and process CPU seconds of one ``predict_on_batch`` call of each model on one
    in-memory tile, the calls interleaved over ``repeats`` rounds (after a warm-up) ->
    ``{model: {"wall": [s per round], "cpu": [s per round]}}``."""
    inputs = raw_inputs(args.tile_size)
    for model in models.values():  # tracing and allocator set-up are not timed
        model.predict_on_batch(inputs)
    walls: dict[str, list[float]] = {name: [] for name in models}

    def call(name: str) -> float:
        wall, cpu = time.perf_counter(), time.process_time()
        models[name].predict_on_batch(inputs)
        walls[name].append(time.perf_counter() - wall)
        return time.process_time() - cpu

    cpus = interleaved({n: functools.partial(call, n) for n in models}, args.repeats)
    return {name: {"wall": walls[name], "cpu": cpus[name]} for name in models}


def time_scenes(kinds: dict[str, list], args: argparse.Namespace, s2: Path, s1: Path) -> dict:
    """``run_scene`` of every kind (one model, or an ensemble), interleaved over
    ``scene_repeats`` rounds -> ``{kind: [result per round]}``. Each model is traced for the
    scene's tile first (the scene is one tile when it is no larger than ``tile_size``)."""
    if args.size <= args.tile_size:
        for members in kinds.values():
            for model in members:
                model.predict_on_batch(raw_inputs(args.size))
    runs: dict[str, list[dict]] = {name: [] for name in kinds}

    def run(name: str) -> float:
        runs[name].append(run_scene(kinds[name], args, s2, s1, name.split(maxsplit=1)[0]))
        return runs[name][-1]["mpx_per_cpu_s"]

    interleaved({n: functools.partial(run, n) for n in kinds}, args.scene_repeats)
    return runs


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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1024, help="scene side N (px)")
    parser.add_argument("--tile-size", type=int, default=1280, help="inference.tile_size")
    parser.add_argument("--features", type=int, default=64, help="model F")
    parser.add_argument("--blocks", type=int, default=16, help="model B")
    parser.add_argument(
        "--repeats", type=int, default=5, help="interleaved training and raw-tile rounds"
    )
    parser.add_argument("--scene-repeats", type=int, default=3, help="interleaved scene rounds")
    parser.add_argument("--train-batch", type=int, default=4, help="training batch")
    parser.add_argument("--train-crop", type=int, default=128, help="training crop (px)")
    parser.add_argument("--train-steps", type=int, default=1, help="timed steps per round")
    parser.add_argument("--no-ensemble", action="store_true", help="skip the 2-model ensemble")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--quick", action="store_true", help="512^2 scene, tile 512, 3 and 2 rounds"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.tile_size, args.repeats, args.scene_repeats = 512, 512, 3, 2
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
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
        scenes = time_scenes(kinds, args, s2, s1)
    print(json.dumps({"training": training, "raw": raw, "scenes": scenes}), flush=True)
    print_training(models, training, args)
    print_table(models, raw, scenes, args)
    return 0


def print_training(models: dict, training: dict, args: argparse.Namespace) -> None:
    """Step time and samples/s (median, range) and the per-round step / plain ratio."""
    print()
    print(f"Aleatoric head, training step; machine: {machine_line()}")
    print(
        f"batch {args.train_batch} x {args.train_crop}^2 px, 2 warm-up steps, then {args.repeats}"
        f" interleaved rounds of {args.train_steps} step(s) (median per round); median "
        "(min-max, n rounds)"
    )
    print("| model | parameters | s / step | samples/s | step / plain, per round |")
    print("|---|---|---|---|---|")
    for name, steps in training.items():
        samples = [args.train_batch / t for t in steps]
        print(
            f"| {name} | {models[name].count_params():,} | {spread(steps).text()} "
            f"| {spread(samples).text()} | {ratio_spread(steps, training['plain']).text()} |"
        )


def print_table(models: dict, raw: dict, scenes: dict, args: argparse.Namespace) -> None:
    """Raw tile and scene figures of each kind; ratios to plain per round (CPU time)."""
    mpx_tile = args.tile_size**2 / 1e6
    print()
    print(f"Aleatoric head, inference, {time.strftime('%Y-%m-%d')}; machine: {machine_line()}")
    print(
        f"model F={args.features} B={args.blocks}; raw = predict_on_batch on one in-memory "
        f"{args.tile_size}^2 tile ({args.repeats} interleaved rounds); scene = predict_scene of "
        f"a {args.size}^2 scene into COGs, tile_size {args.tile_size}, {args.scene_repeats} "
        "interleaved rounds; median (min-max, n rounds); ratios: per round, CPU time"
    )
    print(
        "| model | parameters | raw tile Mpx/s | raw / plain (CPU time) | scene Mpx/s "
        "| scene / plain (CPU time) | time in model calls | files | output MiB | peak RSS MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    plain = [r["mpx_per_cpu_s"] for r in scenes["plain"]]
    for name, runs in scenes.items():
        key = name if name in raw else None
        params = (
            f"{models[name].count_params():,}" if key else f"2 x {models['plain'].count_params():,}"
        )
        raw_cells = (
            f"{spread([mpx_tile / t for t in raw[key]['wall']]).text()} | "
            f"{ratio_spread(raw['plain']['cpu'], raw[key]['cpu']).text()}"
            if key
            else "- | -"
        )
        scene = ratio_spread([r["mpx_per_cpu_s"] for r in runs], plain).text()
        print(
            f"| {name} | {params} | {raw_cells} "
            f"| {spread([r['mpx_per_s'] for r in runs]).text()} | {scene} "
            f"| {statistics.median(r['model_share'] for r in runs):.1%} "
            f"| {runs[0]['files']} | {runs[0]['output_mb']:.1f} | {runs[0]['peak_rss_mb']:.0f} |"
        )
    print("peak RSS: of this process after the kind's first run (round 1 runs them in this order)")


if __name__ == "__main__":
    sys.exit(main())
