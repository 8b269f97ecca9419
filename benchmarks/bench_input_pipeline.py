"""Input pipeline: samples/s the training step gets, against the original per-sample path.

Usage: ``python benchmarks/bench_input_pipeline.py [--quick] [--root DIR] [--workers N]``.

Both sides produce exactly what one training sample needs (crop 128 at 10 m, random flip and
rot90 applied alike to all images, cloud/shadow mask, TML bands, SAR at 40 m, normalised), from
the same SEN12MS-CR triplets, on the same number of cores:

- *original*: a plain transcription of the DSen2-CR generator's per-sample path, one process per
  core (multiprocessing): three windowed rasterio reads, flip/rot90, the literal scipy
  cloud/shadow mask, band drop, 4 x 4 SAR mean, normalisation;
- *original + fast mask*: the same with the project's exact fast mask, to show what the mask
  alone is worth;
- *project*: ``input_pipeline.train_dataset`` over the training-ready patch store that the
  data_processing pipeline writes once (the store's one-off build time is printed too).

The triplets are ``--root`` (any SEN12MS-CR folder), else the sample dataset in
``data/01_raw/sen12mscr_sample`` when present, else a freshly generated synthetic one.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from common import REPO, machine_line, table

CROP = 128
BUILD_REPEATS = 4  # the store-build timing lists the triplets this many times


def original_sample(task: tuple[str, str, str, int, bool]) -> int:
    """One training sample the way the original generator makes it; returns its byte count."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.windows import Window

    from tml_cloudremoval.bands import select_tml_bands
    from tml_cloudremoval.data.cloud_mask import cloud_shadow_mask, cloud_shadow_mask_reference
    from tml_cloudremoval.normalise import normalise_optical, normalise_sar

    s1_path, s2_path, cloudy_path, seed, fast_mask = task
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(s2_path) as src:
            size = src.height
        r, c = (rng.integers(0, (size - CROP) // 4 + 1, 2) * 4).tolist()
        window = Window(c, r, CROP, CROP)
        images = []
        for path in (s1_path, s2_path, cloudy_path):
            with rasterio.open(path) as src:
                images.append(np.moveaxis(src.read(window=window), 0, -1))
    s1, s2, cloudy = images
    s1 = s1.astype(np.float32)
    s1 = np.where(np.isnan(s1), np.nanmean(s1, axis=(0, 1)), s1)
    flip, rot = int(rng.integers(0, 3)), int(rng.integers(0, 4))
    out = []
    for image in (s1, s2, cloudy):
        if flip:
            image = np.flip(image, axis=flip - 1)
        out.append(np.rot90(image, rot, axes=(0, 1)))
    s1, s2, cloudy = out
    mask = (cloud_shadow_mask if fast_mask else cloud_shadow_mask_reference)(
        np.ascontiguousarray(cloudy)
    )
    s2, cloudy = select_tml_bands(s2), select_tml_bands(cloudy)
    h, w, ch = s1.shape
    s1_40m = s1.reshape(h // 4, 4, w // 4, 4, ch).mean(axis=(1, 3))
    arrays = (normalise_optical(cloudy), normalise_optical(s2), normalise_sar(s1_40m), mask)
    return sum(a.nbytes for a in arrays)


def run_original(rows, epochs: int, workers: int, fast_mask: bool) -> float:
    """Samples/s of the transcription over ``epochs`` passes, ``workers`` processes."""
    tasks = [
        (r.s1_path, r.s2_path, r.s2_cloudy_path, e * len(rows) + i, fast_mask)
        for e in range(epochs)
        for i, r in enumerate(rows.itertuples())
    ]
    ctx = mp.get_context("spawn")  # TF is already initialised in this process: no fork
    with ctx.Pool(workers) as pool:
        pool.map(original_sample, tasks[:workers])  # warm-up: imports, page cache
        start = time.perf_counter()
        for _ in pool.imap_unordered(original_sample, tasks, chunksize=4):
            pass
        elapsed = time.perf_counter() - start
    return len(tasks) / elapsed


def run_project(store, epochs: int, workers: int, batch_size: int) -> float:
    """Samples/s of the project's tf.data pipeline over ``epochs`` epochs."""
    import tensorflow as tf

    from tml_cloudremoval.data.input_pipeline import train_dataset

    ds = train_dataset(store, batch_size=batch_size, crop_size=CROP, seed=0, last_epoch=epochs + 1)
    options = tf.data.Options()
    options.threading.private_threadpool_size = workers
    ds = ds.with_options(options)
    it = iter(ds)
    n_first = 0
    for _ in range(-(-len(store) // batch_size)):  # epoch 0: warm-up
        n_first += int(next(it)[0]["optical"].shape[0])
    count = 0
    start = time.perf_counter()
    for x, _y in it:
        count += int(x["optical"].shape[0])
    return count / (time.perf_counter() - start)


def sample_root(args) -> tuple[Path, str]:
    if args.root:
        return Path(args.root), f"triplets under {args.root}"
    default = REPO / "data" / "01_raw" / "sen12mscr_sample"
    from tml_cloudremoval.data.synthetic.sample_folder import is_complete, write_sample_folder
    from tml_cloudremoval.data.synthetic.sen12mscr_sample import SEN12MSCR_KIND, sen12mscr_sample

    if is_complete(default, SEN12MSCR_KIND):
        return default, f"the synthetic sample dataset in {default.relative_to(REPO)}"
    tmp = Path(tempfile.mkdtemp(prefix="bench_input_"))
    write_sample_folder(tmp / "sen12mscr", sen12mscr_sample(seed=42))
    return tmp / "sen12mscr", "a freshly generated synthetic sample dataset"


def build_stores(rows: pd.DataFrame, workers: int, folder: Path) -> dict[str, float]:
    """Seconds of the one-off store build: one process ("one") vs ``workers`` processes
    ("many") over the triplets listed four times (so that process start-up weighs as little as
    in a real build); the last build ("store", the triplets once) is what the project reads."""
    from tml_cloudremoval.data.patch_store import write_patch_store
    from tml_cloudremoval.data.triplets import TripletSamples

    build_s = {}
    repeated = pd.concat([rows] * BUILD_REPEATS, ignore_index=True)
    for n_workers, table_, name in (
        (1, repeated, "one"),
        (workers, repeated, "many"),
        (1, rows, "store"),
    ):
        samples = TripletSamples(table_, progress=False, workers=n_workers, min_per_worker=1)
        start = time.perf_counter()
        write_patch_store(
            folder / name,
            samples,
            len(samples),
            samples.height,
            samples.width,
            samples.index,
            samples.meta,
        )
        build_s[name] = time.perf_counter() - start
    return build_s


def print_results(
    speeds: dict[str, float], build_s: dict[str, float], n_rows: int, workers: int
) -> None:
    """The samples/s table and the store-build line."""
    original, original_fast, project = speeds["original"], speeds["fast"], speeds["project"]
    rows = [
        ["original per-sample path (plain mask)", f"{original:.1f}", "1.00"],
        [
            "original path + project fast mask",
            f"{original_fast:.1f}",
            f"{original_fast / original:.2f}",
        ],
        ["project: tf.data over the patch store", f"{project:.1f}", f"{project / original:.2f}"],
    ]
    print(table(rows, ["path", "samples/s", "x original"]))
    n_build = n_rows * BUILD_REPEATS
    one, many = build_s["one"], build_s["many"]
    print(
        f"\npatch store build (one-off, {n_build} triplets): one process {one:.1f} s = "
        f"{one / n_build * 1e3:.1f} ms per triplet, i.e. {one / n_build * original:.2f} epochs "
        f"of the original path's time; {workers} worker processes (data.workers) "
        f"{many:.1f} s = {many / n_build * 1e3:.1f} ms per triplet ({one / many:.2f} x, "
        "process start-up included)"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one epoch each")
    parser.add_argument("--root", help="SEN12MS-CR folder (official or flattened layout)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="cores to use")
    parser.add_argument("--epochs", type=int, default=None, help="passes over the triplets")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)
    epochs = args.epochs or (1 if args.quick else 3)

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.workers)
    tf.config.threading.set_inter_op_parallelism_threads(args.workers)

    from tml_cloudremoval.data.discovery import build_triplet_table
    from tml_cloudremoval.data.patch_store import PatchStore

    root, source = sample_root(args)
    rows = build_triplet_table(root)
    print(f"# Input pipeline, crop {CROP}, {len(rows)} triplets ({source}), {epochs} epoch(s)")
    print(f"machine: {machine_line()}; {args.workers} worker(s) on each side\n")

    with tempfile.TemporaryDirectory(prefix="bench_store_") as tmp:
        build_s = build_stores(rows, args.workers, Path(tmp))
        store = PatchStore.open(Path(tmp) / "store")
        project = run_project(store, epochs, args.workers, args.batch_size)
        del store

    speeds = {
        "original": run_original(rows, epochs, args.workers, fast_mask=False),
        "fast": run_original(rows, epochs, args.workers, fast_mask=True),
        "project": project,
    }
    print_results(speeds, build_s, len(rows), args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
