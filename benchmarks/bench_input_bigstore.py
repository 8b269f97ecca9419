"""Input from a patch store bigger than the page cache: read patterns, cold and warm, and the CPU
cores an H100/H200 would need.

Usage: ``python benchmarks/bench_input_bigstore.py [--size-gb G] [--no-evict] [--repeats R]
[--folder DIR] [--quick]``. The script writes a store of about G GB (both layouts together,
default 2; ``--size-gb 30`` exceeds this VM's 24 GiB of RAM) in ``--folder`` (default: the
system temp folder), measures, and deletes it afterwards (also on Ctrl-C or SIGTERM).

The store is ``<folder>/row`` (a PatchStore) and ``<folder>/patches.bin`` (patch-major; leave
it out with ``--no-patch-major``). Content: a tiled random block (cheap to write, not
compressible; ``.npy`` is raw anyway). Cold: before every measurement each file is dropped from
the page cache (``posix_fadvise(POSIX_FADV_DONTNEED)``, checked with ``fincore``), so every
measurement starts cold even when the store fits in RAM; warm: the same samples read again
right after. Each measurement reads one random crop (128 at 10 m, offsets multiples of 4, the
epoch plan of the input pipeline) of cloudy, target, mask and SAR per sample, for as many
samples of a fresh epoch plan as fit in ``--seconds``. Read patterns (all return the same
arrays, checked):

- ``mmap_crop``: the reader of the input path (``sampling.crop_reader``), slices of the
  memory-mapped ``.npy`` (the 128 crop rows of a patch are strided over the patch: 128 runs of
  2560 bytes, 5120 apart, per optical array);
- ``pread_rows``: one ``os.pread`` per array of the crop's whole rows (a contiguous range,
  half a patch at crop 128), columns cut in memory;
- ``pread_whole``: one ``os.pread`` per array of the whole patch, crop cut in memory;
- ``..._ra``: the same plus read-ahead, ``POSIX_FADV_WILLNEED`` on the crop rows of the sample
  ``--ahead`` places further in the epoch plan;
- ``patch_major``: a second layout, all four arrays of a patch in one contiguous record, one
  ``os.pread`` per sample;
- ``xT``: T reads in flight (a thread pool), the parallel-interleave variant;
- ``tf.data train_dataset`` (``_ra``): the real input path, batch ``--batch-size``, with
  ``read_ahead_samples`` 0 and ``--ahead`` (its default ``sampling.READ_AHEAD``).

Per core: samples per CPU-second of this process (user + system, all threads). The last table
turns these into the cores one GPU needs (training FLOPs per sample from the model, the chip's
bf16 rate at 40 % utilisation) and the disk bandwidth that takes.
"""

from __future__ import annotations

import argparse
import mmap
import shutil
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from bigstore_reads import (
    ARRAYS,
    BLOCK,
    CROP,
    PATTERNS,
    SAMPLE_BYTES,
    SIZE,
    Geometry,
    evict,
    open_store,
    read_mmap,
    will_need,
    write_stores,
)
from common import machine_line, table
from interleave import interleaved, ratio_spread, spread

# The GPU side (issue 14): default model F = 64, B = 16 at crop 128, bf16 dense rates.
FEATURES, BLOCKS, UTILISATION = 64, 16, 0.40
CHIPS = {"H100/H200 SXM datasheet, 989 TFLOP/s": 989e12, "H200 measured, 790 TFLOP/s": 790e12}


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------


def disk_read_bytes() -> int:
    """Bytes this process caused to be read from the block device (/proc/self/io)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("read_bytes:"):
            return int(line.split()[1])
    return 0


def plan_of(n: int, seed: int):
    from tml_cloudremoval.data.input_pipeline import epoch_plan

    p = epoch_plan(n, SIZE, SIZE, CROP, seed, 0)
    return list(zip(p.index.tolist(), p.row.tolist(), p.col.tolist(), strict=True))


def timed_pass(fn, plan, threads: int, seconds: float | None, count: int | None) -> tuple:
    """Run ``fn(j)`` over plan positions until ``seconds`` pass (or ``count`` are done) ->
    (samples, wall s, CPU s, disk bytes)."""
    limit = count if count is not None else len(plan)
    chunk = max(16, 4 * threads)
    pool = ThreadPoolExecutor(threads) if threads > 1 else None
    t0, c0, b0 = time.perf_counter(), time.process_time(), disk_read_bytes()
    done = 0
    while done < limit and (seconds is None or time.perf_counter() - t0 < seconds):
        js = range(done, min(done + chunk, limit))
        for _ in pool.map(fn, js) if pool else map(fn, js):
            pass
        done = js.stop
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if pool:
        pool.shutdown()
    return done, wall, cpu, disk_read_bytes() - b0


class Bench:
    """The store, its files and every measurement taken (extras beside interleave's value)."""

    def __init__(self, files: dict[str, Path], n: int, args):
        self.files, self.n, self.args = files, n, args
        self.geo = Geometry(files, n)
        self.extra: dict[str, list[dict]] = {}
        self.seed = 0

    def open_store(self):
        return open_store(self.files["s2"].parent)

    def cold_start(self) -> int:
        """A new epoch seed; the files dropped from the page cache (unless ``--no-evict``)."""
        self.seed += 1
        return evict(self.files.values()) if self.args.evict else -1

    def pattern(self, name: str, threads: int, ahead: int):
        """A measurement callable: cold samples/s of one read pattern (warm ones in extras)."""

        def run() -> float:
            resident = self.cold_start()
            plan = plan_of(self.n, self.seed)
            store = self.open_store()
            read = PATTERNS[name]

            def one(j: int):
                # read-ahead: the first sample announces samples 1..ahead, sample j then j+ahead
                for i2, r2, _ in plan[j + ahead : j + ahead + 1] if j else plan[1 : ahead + 1]:
                    will_need(self.geo, i2, r2)
                return read(store, self.geo, *plan[j])

            cold = timed_pass(one, plan, threads, self.args.seconds, None)
            warm = timed_pass(one, plan, threads, None, cold[0])
            return self.record(name, threads, ahead, resident, cold, warm)

        return run

    def record(self, name, threads, ahead, resident, cold, warm) -> float:
        key = label(name, threads, ahead)
        self.extra.setdefault(key, []).append(
            {
                "resident": resident,
                "cold_cpu": cold[0] / cold[2],
                "warm": warm[0] / warm[1],
                "warm_cpu": warm[0] / warm[2],
                "mb": cold[3] / cold[0] / 1e6,
            }
        )
        return cold[0] / cold[1]

    def check_patterns(self) -> None:
        """Every pattern returns exactly today's arrays."""
        store, plan = self.open_store(), plan_of(self.n, 12345)[:8]
        for name, read in PATTERNS.items():
            if name == "patch_major" and self.geo.fd_patch < 0:
                continue
            for i, r, c in plan:
                got, want = read(store, self.geo, i, r, c), read_mmap(store, self.geo, i, r, c)
                if not all(np.array_equal(a, b) for a, b in zip(got, want, strict=True)):
                    raise AssertionError(f"{name} reads other values than mmap_crop at {i}")


def counterpart(key: str) -> str | None:
    """The mode a mode is compared with: ``_ra`` against the same without read-ahead, xT against
    x1; None for the plain x1 modes."""
    if "_ra" in key:
        return key.replace("_ra", "")
    if " x" in key and not key.endswith(" x1"):
        return key.rsplit(" x", 1)[0] + " x1"
    return None


def label(name: str, threads: int, ahead: int) -> str:
    """``pread_rows_ra x1``: pattern, read-ahead, reads in flight (none given for tf.data)."""
    return f"{name}{'_ra' if ahead else ''}" + (f" x{threads}" if threads else "")


def flops_per_sample() -> float:
    """Training FLOPs of one crop-128 sample, default model: 3 x forward (bench_training)."""
    from bench_training import forward_flops_per_pixel

    return 3.0 * forward_flops_per_pixel(FEATURES, BLOCKS) * CROP * CROP


def needed_samples_per_s() -> dict[str, float]:
    return {chip: rate * UTILISATION / flops_per_sample() for chip, rate in CHIPS.items()}


def pipeline_pass(ds, seconds: float | None, batches: int | None) -> tuple:
    """Like :func:`timed_pass` for a tf.data dataset of batches; the clock starts after the
    first batch (pipeline start-up and the epoch plan are not the reading being measured)."""
    it = iter(ds)
    next(it)
    t0, c0, b0 = time.perf_counter(), time.process_time(), disk_read_bytes()
    done = 1
    count = 0
    for x, _y in it:
        count += int(x["optical"].shape[0])
        done += 1
        if (batches and done >= batches) or (seconds and time.perf_counter() - t0 > seconds):
            break
    return count, time.perf_counter() - t0, time.process_time() - c0, disk_read_bytes() - b0, done


def pipeline_mode(bench: Bench, batch: int, ahead: int):
    """The real input path, ``input_pipeline.train_dataset`` (batch ``batch``, tf.data
    AUTOTUNE parallelism, ``read_ahead_samples`` ``ahead``), cold then warm, same samples."""

    def run() -> float:
        from tml_cloudremoval.data.input_pipeline import train_dataset
        from tml_cloudremoval.data.patch_store import PatchStore

        resident = bench.cold_start()
        store = PatchStore.open(bench.files["s2"].parent)
        ds = train_dataset(
            store, batch, CROP, seed=bench.seed, last_epoch=1, read_ahead_samples=ahead
        )
        cold = pipeline_pass(ds, 3 * bench.args.seconds, None)  # more: tf.data ramps up
        warm = pipeline_pass(ds, None, cold[4])
        del ds
        for name in ARRAYS:  # tf.data keeps the reader (and so the maps) alive: unmap the pages
            getattr(store, name)._mmap.madvise(mmap.MADV_DONTNEED)
        return bench.record("tf.data train_dataset", 0, ahead, resident, cold, warm)

    return run


def report(bench: Bench, values: dict[str, list[float]]) -> None:
    """The read-pattern table and the GPU-cores table."""
    need = needed_samples_per_s()
    rows, cores = [], []
    for key, cold in values.items():
        base = counterpart(key)
        ex = bench.extra[key]
        cold_cpu, warm = spread([e["cold_cpu"] for e in ex]), spread([e["warm"] for e in ex])
        warm_cpu, mb = spread([e["warm_cpu"] for e in ex]), spread([e["mb"] for e in ex])
        rows.append(
            [
                key,
                spread(cold).text(),
                cold_cpu.text(),
                f"{mb.median:.2f}",
                warm.text(),
                warm_cpu.text(),
                f"{ratio_spread(cold, values[base]).text()} x {base}" if base else "",
                f"{max(e['resident'] for e in ex) / 1e6:.0f}",
            ]
        )
        cell = [f"{r / cold_cpu.median:.1f} / {r / warm_cpu.median:.1f}" for r in need.values()]
        gbs = [f"{r * mb.median / 1e3:.1f}" for r in need.values()]
        cores.append([key, *cell, " / ".join(gbs)])
    header = ["pattern x threads", "cold samples/s", "cold /CPU-s", "disk MB/sample"]
    header += ["warm samples/s", "warm /CPU-s", "cold, per-round ratio", "cached MB at start"]
    print(table(rows, header))
    print(
        "\ncold /CPU-s, warm /CPU-s: samples per CPU-second of this process (all threads, user +"
        " system); disk MB/sample: bytes read from the device per cold sample (/proc/self/io); "
        "cached MB at start: most store bytes still in the page cache after an eviction "
        "(fincore, -1e-06 = unknown)"
    )
    gflop = flops_per_sample() / 1e9
    print(
        f"\n## Cores one GPU needs (model F={FEATURES}, B={BLOCKS}, crop {CROP}: {gflop:.1f} GFLOP "
        f"per training sample = 3 x forward; {UTILISATION:.0%} of the bf16 dense rate)\n"
    )
    heads = [f"{chip}: {r:.0f} samples/s -> cores cold / warm" for chip, r in need.items()]
    print(table(cores, ["pattern x threads", *heads, "cold disk GB/s needed"]))


def modes_of(bench: Bench, args) -> dict:
    """The compared modes: every pattern at 1 and ``--threads`` reads in flight, read-ahead
    variants, and the real tf.data path."""
    modes = {}
    for name in PATTERNS:
        if name == "patch_major" and not args.patch_major:
            continue
        for threads in (1, args.threads):
            modes[label(name, threads, 0)] = bench.pattern(name, threads, 0)
        if name in ("mmap_crop", "pread_rows"):
            modes[label(name, 1, args.ahead)] = bench.pattern(name, 1, args.ahead)
    for ahead in (0, args.ahead):
        modes[label("tf.data train_dataset", 0, ahead)] = pipeline_mode(
            bench, args.batch_size, ahead
        )
    return modes


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=2.0, help="store size, both layouts")
    parser.add_argument("--no-evict", dest="evict", action="store_false")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--seconds", type=float, default=2.0, help="cold reading per mode")
    parser.add_argument("--threads", type=int, default=16, help="reads in flight, parallel")
    parser.add_argument("--ahead", type=int, default=32, help="read-ahead distance, samples")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--folder", default=None, help="where the store is written")
    parser.add_argument("--no-patch-major", dest="patch_major", action="store_false")
    parser.add_argument("--quick", action="store_true", help="0.5 GB, one round, 1 s per mode")
    args = parser.parse_args(argv)
    if args.quick:
        args.size_gb, args.repeats, args.seconds = min(args.size_gb, 0.5), 1, 1.0
    n = max(BLOCK, int(args.size_gb * 1e9 / (SAMPLE_BYTES * (1 + args.patch_major))))
    folder = Path(tempfile.mkdtemp(prefix="bench_bigstore_", dir=args.folder))
    # Ctrl-C and SIGTERM both end in the ``finally`` below, which deletes the store (SIGINT
    # too when started in the background, where the shell would have it ignored).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        t0 = time.perf_counter()
        files = write_stores(folder, n, args.patch_major)
        written = sum(p.stat().st_size for p in files.values())
        write_s = time.perf_counter() - t0
        print(
            f"# Input from a {written / 1e9:.1f} GB store ({n} patches of {SIZE} x {SIZE}) in "
            f"{folder}, written in {write_s:.0f} s ({written / write_s / 1e6:.0f} MB/s); crop "
            f"{CROP}; {'dropped from' if args.evict else 'not dropped from'} the page cache "
            f"before each measurement; {args.repeats} interleaved round(s), {args.seconds:g} s "
            "cold per mode",
            flush=True,
        )
        print(f"machine: {machine_line()}\n", flush=True)
        bench = Bench(files, n, args)
        bench.check_patterns()
        values = interleaved(modes_of(bench, args), args.repeats)
        bench.geo.close()
        report(bench, values)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
