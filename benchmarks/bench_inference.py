"""Inference benchmark: tiled scene path vs the raw model on one in-memory tile; peak RSS.

    .venv/bin/python benchmarks/bench_inference.py                 # sizes 2048 4096, tile 1280
    .venv/bin/python benchmarks/bench_inference.py --sizes 1024 2048 --tile-size 512
    .venv/bin/python benchmarks/bench_inference.py --sizes 2048x10980   # rows x cols: a strip
                                                # as wide as a Sentinel-2 tile (peak RSS)
    .venv/bin/python benchmarks/bench_inference.py --quick --repeats 2

Each scene size runs in its own subprocess (so peak RSS is that size's alone). In it, the
compared modes run in turns, ``--repeats`` rounds (``interleave.interleaved``: every round runs
each mode once, A B C D, B C D A, ...: a change of machine load between rounds touches every
mode alike, and each round's ratios come from runs minutes apart at most):
- ``raw``: the raw model, ``model.predict_on_batch`` on one in-memory tile of ``tile_size`` px
  (traced and warmed up before the rounds; ``raw_repeats`` calls per round),
- ``gtiff``: a synthetic N x N scene (10 TML bands, uint16, nodata 0, UTM; SAR at 40 m) cleaned
  with ``inference.scene.predict_scene`` (checks, SAR warp, windowed reads, tiles, blending,
  compressed GeoTIFF written atomically) into a plain streamed GeoTIFF (``output_format:
  gtiff``, the figures of issue 6): Mpx/s = N^2 / time of the whole call,
- ``cog`` (``--cog-sizes``, default all): the same into a Cloud-Optimised GeoTIFF (the default
  since issue 11: the stream plus the COG copy),
- ``safe`` (``--safe-sizes``, default the first size): the same scene read from a Sentinel-2
  L1C ``.SAFE`` product (JP2 bands at 10/20/60 m, baseline 04.00 with the offset, written from
  the stack: the 20 m bands are 2 x 2 means, resampled back onto 10 m by the reader) into a
  plain GeoTIFF: the cost of the product reader (JP2 decoding, the VRT) beside the stack.
Reported per mode: the median over the rounds; per compared pair (tiled / raw, cog / gtiff,
safe / stack): the median and range (n) of the per-round ratios, wall and process CPU time (on a
shared machine the CPU-time ratio is the steadier one). The first round of a scene mode also
traces the model for the scene's tile shapes (seconds); the median leaves that round out once
there are 3. Peak RSS: after each mode's first run (the gtiff figure precedes any COG copy).
Target (issue 6): scene Mpx/s >= 0.85 x raw Mpx/s; peak RSS(4096) <= 1.2 x peak RSS(2048).
The default model (F=64, B=16, untrained weights: the speed does not depend on them).
The ratio is bounded by the tiling efficiency (scene px / px the model computes, overlaps
counted twice), printed alongside. Nothing is asserted: this prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import machine_line
from interleave import Spread, interleaved, ratio_spread

HERE = Path(__file__).resolve()


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def parse_size(text: str) -> tuple[int, int]:
    """ "N" -> (N, N); "HxW" -> (H, W): scene rows and columns."""
    height, _, width = text.lower().partition("x")
    return int(height), int(width or height)


def size_label(size: tuple[int, int]) -> str:
    return f"{size[0]}^2" if size[0] == size[1] else f"{size[0]} x {size[1]}"


def make_scene(folder: Path, size: tuple[int, int], seed: int = 0) -> tuple[Path, Path]:
    """Write an H x W 10-band uint16 scene and a 40 m SAR file, 256 rows at a time."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    from tml_cloudremoval.bands import TML_BAND_NAMES

    rng = np.random.default_rng(seed)
    transform = Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 5000000.0)
    height, width = size
    s2, s1 = scene_paths(folder, size)
    profile = {
        "driver": "GTiff", "height": height, "width": width, "count": 10, "dtype": "uint16",
        "crs": "EPSG:32632", "transform": transform, "nodata": 0, "tiled": True,
        "blockxsize": 256, "blockysize": 256, "compress": "deflate", "predictor": 2,
    }  # fmt: skip
    xx = np.arange(width)
    with rasterio.open(s2, "w", **profile) as dst:
        for i, name in enumerate(TML_BAND_NAMES, start=1):
            dst.set_band_description(i, name)
        for y0 in range(0, height, 256):
            n = min(256, height - y0)
            yy = np.arange(y0, y0 + n)[:, None]
            field = 1500 + 700 * np.sin(xx / 37.0) * np.cos(yy / 53.0)
            cloud = 5000 * (np.sin(xx / 300.0 + yy / 200.0) > 0.6)
            block = field[..., None] + cloud[..., None] + rng.normal(0, 80, (n, width, 10))
            block = np.clip(block, 1, 10000).astype(np.uint16)
            dst.write(np.moveaxis(block, -1, 0), window=Window(0, y0, width, n))
    h40, w40 = math.ceil(height / 4), math.ceil(width / 4)
    sar = np.stack([rng.uniform(-20, -5, (h40, w40)), rng.uniform(-28, -12, (h40, w40))]).astype(
        np.float32
    )
    with rasterio.open(
        s1, "w", driver="GTiff", height=h40, width=w40, count=2, dtype="float32",
        crs="EPSG:32632", transform=transform @ Affine.scale(4), nodata=float("nan"),
    ) as dst:  # fmt: skip
        dst.write(sar)
    return s2, s1


def make_safe(folder: Path, size: tuple[int, int]) -> Path:
    """The scene's stack written again as an L1C ``.SAFE`` (baseline 04.00: DN + 1000)."""
    import rasterio

    from tml_cloudremoval.bands import TML_BAND_NAMES
    from tml_cloudremoval.data.synthetic.s2_products import write_safe

    s2, _ = scene_paths(folder, size)
    with rasterio.open(s2) as src:
        bands = {name: src.read(i) for i, name in enumerate(TML_BAND_NAMES, start=1)}
        crs, transform = src.crs, src.transform
    out = folder / f"safe_{size[0]}x{size[1]}"
    out.mkdir(exist_ok=True)
    return write_safe(out, bands, crs, transform, baseline="04.00")


def safe_path(folder: Path, size: tuple[int, int]) -> Path | None:
    found = sorted((folder / f"safe_{size[0]}x{size[1]}").glob("*.SAFE"))
    return found[0] if found else None


def build_model(args: argparse.Namespace):
    import keras

    from tml_cloudremoval.models.dsen2cr import build_dsen2cr

    keras.utils.set_random_seed(0)
    return build_dsen2cr(features=args.features, blocks=args.blocks)


def child_scene(args: argparse.Namespace) -> dict:
    """Raw tile, scene into a plain GeoTIFF, into a COG, from a .SAFE (where asked), in one
    process, interleaved over ``args.repeats`` rounds (``interleave.interleaved``: each round
    runs every mode once, the order rotating): per mode the median of the rounds, per compared
    pair the spread of the per-round ratios (wall and CPU time)."""
    folder = Path(args.workdir)
    size = parse_size(args.size)
    s2, s1 = scene_paths(folder, size)
    model = build_model(args)
    time_raw(model, args, warm_up=True)  # traced and warmed; this first figure is dropped
    runs: dict[str, list[dict]] = {}

    def mode(name: str, measure) -> object:
        def run() -> float:
            runs.setdefault(name, []).append(measure())
            return runs[name][-1]["mpx_per_s"]

        return run

    modes = {
        "raw": mode("raw", lambda: time_raw(model, args, warm_up=False)),
        "gtiff": mode("gtiff", lambda: run_scene(model, args, s2, s1, size, "gtiff")),
    }
    if args.cog:
        modes["cog"] = mode("cog", lambda: run_scene(model, args, s2, s1, size, "cog"))
    product = safe_path(folder, size)
    if product is not None:
        modes["safe"] = mode("safe", lambda: run_scene(model, args, product, s1, size, "gtiff"))
    interleaved(modes, args.repeats)
    return summarise_scene(runs, size)


def summarise_scene(runs: dict[str, list[dict]], size: tuple[int, int]) -> dict:
    """Medians over the rounds (peak RSS: after the mode's first run, so the gtiff figure
    precedes any COG copy) and per-round ratios as ``interleave.Spread`` fields."""

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[name])

    def ratio(a: str, b: str, key: str) -> dict:
        pairs = ([r[key] for r in runs[a]], [r[key] for r in runs[b]])
        return dataclasses.asdict(ratio_spread(*pairs))

    report = runs["gtiff"][0]["report"]
    keys = ("seconds", "cpu_seconds", "mpx_per_s", "mpx_per_cpu_s", "output_mb")
    result = {
        "size": list(size),
        "repeats": len(runs["gtiff"]),
        **{k: median("gtiff", k) for k in keys},
        "model_share": median("gtiff", "model_share"),
        "peak_rss_mb": runs["gtiff"][0]["peak_rss_mb"],
        **{k: report[k] for k in ("tiles", "tile_grid", "largest_tile", "overlap")},
        "efficiency": report["tiling_efficiency"],
        "raw_mpx_per_s": median("raw", "mpx_per_s"),
        "raw_mpx_per_cpu_s": median("raw", "mpx_per_cpu_s"),
        "devices": runs["raw"][0]["devices"],
        "ratios": {
            "tiled_raw": ratio("gtiff", "raw", "mpx_per_s"),
            "tiled_raw_cpu": ratio("gtiff", "raw", "mpx_per_cpu_s"),
        },
    }
    for name in ("cog", "safe"):
        if name in runs:
            result.update({f"{name}_{k}": median(name, k) for k in keys})
            result[f"{name}_peak_rss_mb"] = runs[name][0]["peak_rss_mb"]
            result["ratios"][f"{name}_gtiff_time"] = ratio(name, "gtiff", "seconds")
            result["ratios"][f"{name}_raw"] = ratio(name, "raw", "mpx_per_s")
            result["ratios"][f"{name}_raw_cpu"] = ratio(name, "raw", "mpx_per_cpu_s")
    return result


def run_scene(model, args: argparse.Namespace, s2: Path, s1: Path, size, fmt: str) -> dict:
    """``predict_scene`` into ``inference.output_format: fmt``: wall and CPU time, peak RSS so
    far (the gtiff run comes first: the COG figure is the peak of both), output size."""
    from tml_cloudremoval.inference.config import InferenceConfig
    from tml_cloudremoval.inference.scene import predict_scene

    kind = "safe" if Path(s2).suffix == ".SAFE" else fmt
    out = Path(args.workdir) / f"out_{size[0]}x{size[1]}_{kind}.tif"
    config = InferenceConfig(
        tile_size=args.tile_size,
        batch_size=args.batch_size,
        progress=not args.quiet,
        output_format=fmt,
        sar_method="mean",  # predict_scene takes settled settings (the pipeline: from the contract)
    )
    wall, cpu = time.perf_counter(), time.process_time()
    report = predict_scene(model, s2, s1, out, config)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    mpx = size[0] * size[1] / 1e6
    result = {
        "report": report,
        "seconds": wall,
        "cpu_seconds": cpu,
        "mpx_per_s": mpx / wall,
        "mpx_per_cpu_s": mpx / cpu,
        "peak_rss_mb": peak_rss_mb(),
        "output_mb": out.stat().st_size / 2**20,
        "model_share": report["model_seconds"] / wall,
    }
    out.unlink()
    return result


def time_raw(model, args: argparse.Namespace, warm_up: bool) -> dict:
    """The raw model on one in-memory tile of tile_size px: mean of raw_repeats calls."""
    import tensorflow as tf

    t, b = args.tile_size, args.batch_size
    rng = np.random.default_rng(0)
    inputs = {
        "optical": rng.uniform(0, 5, (b, t, t, 10)).astype(np.float32),
        "sar": rng.uniform(0, 2, (b, t // 4, t // 4, 2)).astype(np.float32),
    }
    if warm_up:  # tracing and allocator set-up are not timed
        model.predict_on_batch(inputs)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.raw_repeats):
        model.predict_on_batch(inputs)
    wall = (time.perf_counter() - wall) / args.raw_repeats
    cpu = (time.process_time() - cpu) / args.raw_repeats
    return {
        "mpx_per_s": b * t * t / 1e6 / wall,
        "mpx_per_cpu_s": b * t * t / 1e6 / cpu,
        "devices": sorted({d.device_type for d in tf.config.list_physical_devices()}),
    }


def scene_paths(folder: Path, size: tuple[int, int]) -> tuple[Path, Path]:
    return folder / f"s2_{size[0]}x{size[1]}.tif", folder / f"s1_{size[0]}x{size[1]}.tif"


def _hw(text: str) -> str:
    height, width = parse_size(text)
    return f"{height}x{width}"


def run_child(args: argparse.Namespace, kind: str, size: tuple[int, int] | None = None) -> dict:
    cmd = [sys.executable, str(HERE), "--child", kind, "--workdir", args.workdir]
    cmd += ["--tile-size", str(args.tile_size), "--batch-size", str(args.batch_size)]
    cmd += ["--features", str(args.features), "--blocks", str(args.blocks)]
    cmd += ["--raw-repeats", str(args.raw_repeats), "--repeats", str(args.repeats)]
    cmd += ["--quiet"] if args.quiet else []
    if size is not None:
        cmd += ["--size", f"{size[0]}x{size[1]}"]
        cmd += ["--cog"] if f"{size[0]}x{size[1]}" in map(_hw, args.cog_sizes) else []
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line, with the --quick and default sizes, rounds, COG and .SAFE sizes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", nargs="+", default=["2048", "4096"], help="scene sides N, or rows x cols HxW"
    )
    parser.add_argument("--tile-size", type=int, default=1280, help="inference.tile_size")
    parser.add_argument("--batch-size", type=int, default=1, help="inference.batch_size")
    parser.add_argument("--features", type=int, default=64, help="model F")
    parser.add_argument("--blocks", type=int, default=16, help="model B")
    parser.add_argument("--raw-repeats", type=int, default=1, help="timed raw calls per round")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved rounds (3)")
    parser.add_argument("--workdir", default=None, help="folder for the synthetic scenes")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--child", choices=["scene"], help=argparse.SUPPRESS)
    parser.add_argument("--size", help=argparse.SUPPRESS)
    parser.add_argument("--cog", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--cog-sizes", nargs="*", default=None, help="sizes also written as COG (default: all)"
    )
    parser.add_argument(
        "--safe-sizes",
        nargs="*",
        default=None,
        help="sizes also read from a .SAFE (default: first)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="scenes of 1024 and 2048 px, COG and .SAFE at 1024, 2 rounds",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = ["1024", "2048"]
        args.cog_sizes = ["1024"] if args.cog_sizes is None else args.cog_sizes
        args.repeats = 2 if args.repeats is None else args.repeats
    if args.repeats is None:
        args.repeats = 3
    if args.cog_sizes is None:
        args.cog_sizes = list(args.sizes)
    if args.safe_sizes is None:
        args.safe_sizes = list(args.sizes[:1])
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child_scene(args)))
        return 0

    with tempfile.TemporaryDirectory(prefix="bench_inference_", dir=args.workdir) as tmp:
        args.workdir = tmp
        print(f"machine: {machine_line()}", flush=True)
        print(
            f"model F={args.features} B={args.blocks}; tile_size {args.tile_size}, "
            f"batch {args.batch_size}; scenes {args.sizes}; {args.repeats} interleaved rounds",
            flush=True,
        )
        results = []
        for size in map(parse_size, args.sizes):
            make_scene(Path(tmp), size)
            if f"{size[0]}x{size[1]}" in map(_hw, args.safe_sizes):
                make_safe(Path(tmp), size)
            results.append(run_child(args, "scene", size))
            print(json.dumps(results[-1]), flush=True)

    print_tiling_table(results, args)
    print_cog_table(results)
    print_safe_table(results)
    return 0


def ratio_text(result: dict, name: str) -> str:
    """A per-round ratio as ``median (min-max, n=rounds)``."""
    return Spread(**result["ratios"][name]).text()


def print_tiling_table(results: list[dict], args: argparse.Namespace) -> None:
    """Today's table (issue 6): the tiled scene (plain GeoTIFF) vs the raw model, peak RSS."""
    first = results[0]["peak_rss_mb"]
    print()
    print(f"Inference, {date()}, devices {results[0]['devices']}; machine: {machine_line()}")
    print(
        f"model F={args.features} B={args.blocks}, tile_size {args.tile_size}, batch "
        f"{args.batch_size}; raw = predict_on_batch on one in-memory {args.tile_size}^2 tile; "
        f"raw and scene modes interleaved over {args.repeats} rounds in one process: Mpx/s = "
        "median of the rounds, ratios = median (min-max, n) of the per-round ratios; CPU time = "
        "process CPU seconds, less sensitive than wall time to other jobs on a shared machine"
    )
    print(
        "| scene px | tiles: rows x cols, largest (overlap) | tiled scene Mpx/s | raw tile Mpx/s "
        "| tiled / raw | same, CPU time | tiling efficiency | tiled / raw / efficiency (CPU time) "
        "| time in model calls | efficiency x model-call share | peak RSS MiB | RSS / first |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        ratio_cpu = Spread(**r["ratios"]["tiled_raw_cpu"]).median
        print(
            f"| {size_label(r['size'])} | {r['tile_grid'][0]} x {r['tile_grid'][1]}, "
            f"{r['largest_tile'][0]} x {r['largest_tile'][1]} px ({r['overlap']} px) "
            f"| {r['mpx_per_s']:.4f} | {r['raw_mpx_per_s']:.4f} "
            f"| {ratio_text(r, 'tiled_raw')} | {ratio_text(r, 'tiled_raw_cpu')} "
            f"| {r['efficiency']:.3f} | {ratio_cpu / r['efficiency']:.3f} "
            f"| {r['model_share']:.1%} | {r['efficiency'] * r['model_share']:.3f} "
            f"| {r['peak_rss_mb']:.0f} | {r['peak_rss_mb'] / first:.3f} |"
        )
    print(
        "efficiency x model-call share: the ratio expected if the scene's model calls run at the "
        "raw tile's speed; both parts are measured within one run, so other jobs hardly move it"
    )
    print("targets: tiled / raw >= 0.85; peak RSS of the larger scene <= 1.2 x the smaller")


def print_cog_table(results: list[dict]) -> None:
    """The COG output beside the plain streamed GeoTIFF, same scenes, same process."""
    print()
    print(
        "Output format (inference.output_format), same scene and process, interleaved rounds: "
        "gtiff = the streamed tiled GeoTIFF; cog = the same stream into a temporary GeoTIFF, "
        "then GDAL's COG copy (overviews, 512 px tiles); the temporary is as big as the gtiff "
        "output while the copy runs"
    )
    print(
        "| scene px | gtiff Mpx/s | cog Mpx/s | cog / gtiff time | cog tiled / raw "
        "| same, CPU time | gtiff MiB | cog MiB | extra disk while writing MiB "
        "| peak RSS gtiff | peak RSS after cog |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in (r for r in results if "cog_seconds" in r):
        print(
            f"| {size_label(r['size'])} | {r['mpx_per_s']:.4f} | {r['cog_mpx_per_s']:.4f} "
            f"| {ratio_text(r, 'cog_gtiff_time')} | {ratio_text(r, 'cog_raw')} "
            f"| {ratio_text(r, 'cog_raw_cpu')} "
            f"| {r['output_mb']:.1f} | {r['cog_output_mb']:.1f} | {r['output_mb']:.1f} "
            f"| {r['peak_rss_mb']:.0f} | {r['cog_peak_rss_mb']:.0f} |"
        )


def print_safe_table(results: list[dict]) -> None:
    """The same scene read from a Sentinel-2 L1C .SAFE (JP2, VRT) beside the GeoTIFF stack."""
    print()
    print(
        "Input kind, same scene and process, interleaved rounds, plain GeoTIFF output: stack = "
        "the 10-band GeoTIFF; safe = an L1C .SAFE (JP2 at 10/20/60 m, baseline 04.00 offset), "
        "read through the 10 m VRT (20 m bands lanczos)"
    )
    print(
        "| scene px | stack Mpx/s | safe Mpx/s | safe / stack time | safe tiled / raw "
        "| same, CPU time | peak RSS stack | peak RSS after safe |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in (r for r in results if "safe_seconds" in r):
        print(
            f"| {size_label(r['size'])} | {r['mpx_per_s']:.4f} | {r['safe_mpx_per_s']:.4f} "
            f"| {ratio_text(r, 'safe_gtiff_time')} | {ratio_text(r, 'safe_raw')} "
            f"| {ratio_text(r, 'safe_raw_cpu')} "
            f"| {r['peak_rss_mb']:.0f} | {r['safe_peak_rss_mb']:.0f} |"
        )


def date() -> str:
    return time.strftime("%Y-%m-%d")


if __name__ == "__main__":
    sys.exit(main())
