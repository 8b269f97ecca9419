"""Patch store build: patches/s and patches/s per core, workers writing straight into the store
against the old path (every sample sent back to the parent, which copies it into the store).

Usage: ``python benchmarks/bench_store_build.py [--quick] [--root DIR] [--times K]
[--workers 1 2 ...] [--repeats R]``.

The triplets are ``--root`` (any SEN12MS-CR folder), else the 22 real SEN12MS-CR samples
(``../shared/data/sen12mscr_samples``: real content, 256 x 256), else a freshly generated
synthetic set; the list is repeated ``--times`` times (the same files again: a longer build of
real content). Every build runs in its own child process (so each peak RSS is its own: the
parent's ``ru_maxrss`` and the largest worker's, ``RUSAGE_CHILDREN``), and the modes are
interleaved over ``--repeats`` rounds (``interleave.py``: median, range, per-round ratios).
patches/s is the steady rate, from a quarter of the rows done to the end (worker start-up, a
few seconds, once per store, left out: over 122,218 triplets it does not count); "whole build"
includes it. "per CPU-s" is patches per CPU-second of the parent and its workers together
(``getrusage``, start-up included): what a core gives when it gets to run, which a shared,
loaded machine distorts far less than wall-clock rates. The parent's peak RSS is printed at
two list lengths: the old path's grows with the store (it maps the whole store while copying
into it), the direct build's does not.
Nothing here is asserted by the tests.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import REAL_SAMPLES, machine_line, table
from interleave import interleaved, ratio_spread, spread

HERE = Path(__file__).resolve().parent


def steady_rate(events: list[tuple[float, int]], n: int) -> float:
    """patches/s between a quarter and all of the rows done (worker start-up and the first
    chunks left out): ``events`` are (time, rows just finished)."""
    done, t_quarter, rows_quarter = 0, None, 0
    for t, rows in events:
        done += rows
        if t_quarter is None and done >= n / 4:
            t_quarter, rows_quarter = t, done
    t_end = events[-1][0]
    return (n - rows_quarter) / (t_end - t_quarter) if t_end > t_quarter else float("nan")


def child(mode: str, workers: int, csv: str, out: str, chunk: int) -> None:
    """One build (in a child process): print seconds, steady patches/s and peak RSS (JSON)."""
    import time

    import pandas as pd

    from tml_cloudremoval.data import store_build
    from tml_cloudremoval.data.patch_store import write_patch_store
    from tml_cloudremoval.data.triplets import TripletSamples

    events: list[tuple[float, int]] = []
    mark = store_build.BuildJournal.mark

    def timed_mark(journal, start: int, stop: int) -> None:
        mark(journal, start, stop)
        events.append((time.perf_counter(), stop - start))

    store_build.BuildJournal.mark = timed_mark
    rows = pd.read_csv(csv, dtype=str, keep_default_na=False)
    samples = TripletSamples(rows, progress=False, workers=workers, min_per_worker=1, chunk=chunk)

    def timed(iterable):
        for sample in iterable:
            events.append((time.perf_counter(), 1))
            yield sample

    before = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    cpu_before = sum(u.ru_utime + u.ru_stime for u in before)
    start = time.perf_counter()
    if mode == "direct":
        store_build.build_patch_store(out, samples)
    else:  # the old path: samples through the parent, copied into the store there
        size = (samples.height, samples.width)
        write_patch_store(out, timed(samples), len(samples), *size, samples.index, samples.meta)
    seconds = time.perf_counter() - start
    me, workers_ = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    cpu = sum(u.ru_utime + u.ru_stime for u in (me, workers_)) - cpu_before
    result = {"s": seconds, "steady": steady_rate(events, len(samples)), "cpu_s": cpu}
    print(
        json.dumps(
            result | {"parent_mb": me.ru_maxrss / 1024, "worker_mb": workers_.ru_maxrss / 1024}
        )
    )


CHUNK = 8  # rows per worker task here (the project's default is 64): room for a steady rate


def run_build(mode: str, workers: int, csv: Path, tmp: Path) -> dict[str, float]:
    out = tmp / f"store_{mode}_{workers}"
    cmd = [sys.executable, __file__, "--child", mode, str(workers), str(csv), str(out), str(CHUNK)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{mode} build with {workers} worker(s) failed:\n{done.stderr}")
    shutil.rmtree(out)
    return json.loads(done.stdout.strip().splitlines()[-1])


def source_rows(args, tmp: Path):
    """The triplet table and what it is."""
    from tml_cloudremoval.data.discovery import build_triplet_table

    if args.root:
        return build_triplet_table(args.root), f"triplets under {args.root}"
    if REAL_SAMPLES.is_dir():
        return build_triplet_table(REAL_SAMPLES), f"the real SEN12MS-CR samples ({REAL_SAMPLES})"
    from tml_cloudremoval.data.synthetic.sample_folder import write_sample_folder
    from tml_cloudremoval.data.synthetic.sen12mscr_sample import sen12mscr_sample

    write_sample_folder(tmp / "sen12mscr", sen12mscr_sample(seed=42))
    return build_triplet_table(tmp / "sen12mscr"), "a freshly generated synthetic sample set"


def measure(csv: Path, n: int, workers: list[int], repeats: int, tmp: Path):
    """Interleaved rounds of every (mode, workers) -> patches/s and RSS per mode."""
    rss: dict[str, list[dict[str, float]]] = {}

    def mode(kind: str, w: int):
        def once() -> float:
            result = run_build(kind, w, csv, tmp)
            rss.setdefault(f"{kind} {w}", []).append(result)
            return result["steady"]

        return once

    modes = {f"{k} {w}": mode(k, w) for w in workers for k in ("direct", "old")}
    return interleaved(modes, repeats), rss


def report(speeds, rss, workers: list[int], n: int) -> None:
    """Steady patches/s (a quarter of the rows done to the end), per core, the whole build
    (worker start-up included) and peak RSS, per mode."""
    rows = []
    for name, values in speeds.items():
        kind, w = name.split()
        s = spread(values)
        per_core = spread([v / int(w) for v in values])
        whole = spread([n / r["s"] for r in rss[name]])
        per_cpu = spread([n / r["cpu_s"] for r in rss[name]])
        parent = max(r["parent_mb"] for r in rss[name])
        worker = max(r["worker_mb"] for r in rss[name])
        mb = [f"{parent:.0f}", f"{worker:.0f}"]
        label = "workers write into the store" if kind == "direct" else "old: samples via parent"
        rows.append([label, w, s.text(), per_core.text(), whole.text(), per_cpu.text(), *mb])
    header = ["path", "workers", "patches/s", "per core", "whole build", "per CPU-s"]
    header += ["parent MB", "worker MB"]
    print(table(rows, header))
    print()
    for w in workers:
        r = ratio_spread(speeds[f"direct {w}"], speeds[f"old {w}"])
        print(f"direct / old at {w} worker(s), per round: {r.text()}")
    for w in workers[1:]:
        r = ratio_spread(speeds[f"direct {w}"], speeds[f"direct {workers[0]}"])
        print(f"direct {w} / direct {workers[0]} worker(s), per round: {r.text()}")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        child(argv[1], int(argv[2]), argv[3], argv[4], int(argv[5]))
        return 0
    from tml_cloudremoval.data.triplets import usable_cores

    cores = usable_cores()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short list, one round")
    parser.add_argument("--root", help="SEN12MS-CR folder (official or flattened layout)")
    parser.add_argument("--times", type=int, default=None, help="repeat the list K times")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved rounds")
    parser.add_argument("--workers", type=int, nargs="+", default=None)
    args = parser.parse_args(argv)
    workers = args.workers or sorted({1, 2, cores})
    times = args.times or (2 if args.quick else 8)
    repeats = args.repeats or (1 if args.quick else 3)

    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="bench_store_build_") as name:
        tmp = Path(name)
        rows, what = source_rows(args, tmp)
        rows = pd.concat([rows] * times, ignore_index=True)
        csv = tmp / "rows.csv"
        rows.to_csv(csv, index=False)
        print(f"# Patch store build: {len(rows)} triplets ({what}, listed {times} times)")
        print(f"machine: {machine_line()}")
        print(f"workers {workers}, {repeats} interleaved round(s), one child process per build\n")
        speeds, rss = measure(csv, len(rows), workers, repeats, tmp)
        report(speeds, rss, workers, len(rows))
        big = max(workers)
        print(f"\nparent peak RSS MB against the list length ({big} workers, one build each):")
        for k in (1, 2):
            rows.iloc[: len(rows) * k // 2].to_csv(csv, index=False)
            n_k = len(rows) * k // 2
            line = [f"{run_build(m, big, csv, tmp)['parent_mb']:.0f}" for m in ("direct", "old")]
            print(f"  {n_k} triplets: workers write into the store {line[0]}, old path {line[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
