"""Scale: discovery, both splits and validation of a full-size SEN12MS-CR tree (issue 14.1).

Usage: ``python benchmarks/bench_scale.py [--quick] [--root DIR] [--sizes 1000,10000,122218]
[--workers N] [--baseline SRC] [--repeats R]``.

The trees are written by ``tml_cloudremoval.data.synthetic.scale_tree`` (official layout, the
175 scenes of the official split, real headers, tiny content) under ``--root``/n<size> (reused
when complete; default a temporary folder, removed afterwards). Each size is measured in a
fresh process (its peak RSS, and the largest worker's): ``discover_triplets``, the seeded split
by scene, the official split, then ``validate_triplets`` on ``--workers`` processes, headers only
(``content=False``) and headers + pixels (``content=True``, what the pipeline runs). The table
gives seconds, microseconds per triplet (flat = linear growth) and files/s; the goal is listing
plus header validation of 122,218 triplets in under 10 minutes on 2 cores.

``--validate-up-to N`` lists (and splits) the larger trees without validating them.
``--baseline SRC`` (e.g. ``../main/src``) also runs another checkout's code, interleaved with
this one (ABAB over ``--repeats`` rounds): listing and splits of the largest tree, and those
plus header validation of the smallest (in one process where that code has no ``workers``).
``--quick``: sizes 1000 and 10000.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, machine_line, table
from interleave import interleaved, ratio_spread, spread

FULL = 122_218
GOAL_S = 600.0
STEPS = ("discover", "seeded", "official", "validate")


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its ended children (the workers)."""
    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def child(root: str, workers: int, content: bool, validate: bool = True) -> dict:
    """Measure the four steps on one tree in this (fresh) process -> seconds and peak RSS."""
    import pandas as pd

    src = os.environ.get("BENCH_SCALE_SRC")
    if src:  # the code under test first (common.py put this checkout's src on the path)
        sys.path[:] = [src] + [p for p in sys.path if p != str(REPO / "src")]

    from tml_cloudremoval.data.checks import validate_triplets
    from tml_cloudremoval.data.discovery import discover_triplets
    from tml_cloudremoval.data.splits import assign_splits

    official = pd.read_csv(REPO / "conf/base/sen12mscr_official_split.csv")
    out: dict = {}
    start = time.perf_counter()
    triplets = discover_triplets(root)
    out["discover"] = time.perf_counter() - start
    start = time.perf_counter()
    assign_splits(triplets, {"train": 0.7, "val": 0.15, "test": 0.15}, 42)
    out["seeded"] = time.perf_counter() - start
    start = time.perf_counter()
    parts = assign_splits(triplets, "official", 42, official=official)
    out["official"] = time.perf_counter() - start
    everything = pd.concat(parts.values(), ignore_index=True)
    kwargs = {"content": content}
    if "workers" in inspect.signature(validate_triplets).parameters:
        kwargs["workers"] = workers
    cpu = _cpu_seconds()
    start = time.perf_counter()
    problems = validate_triplets(everything, **kwargs) if validate else []
    out["validate"] = time.perf_counter() - start
    out["validate_cpu"] = _cpu_seconds() - cpu
    out["n_triplets"], out["n_problems"] = len(triplets), len(problems)
    out["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["worker_rss_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return out


def run_child(root: Path, workers: int, content: bool, src: Path, validate: bool = True) -> dict:
    """One measurement in a fresh interpreter with ``src`` first on the path."""
    env = dict(os.environ, PYTHONPATH=str(src), BENCH_SCALE_SRC=str(src))
    command = [sys.executable, __file__, "--child", str(root), "--workers", str(workers)]
    command += ["--content"] if content else []
    command += [] if validate else ["--no-validation"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(result.stdout.strip().splitlines()[-1])


def make_trees(root: Path, sizes: list[int], workers: int) -> list[list[str]]:
    """Write (or reuse) one tree per size -> table rows of the generation."""
    from tml_cloudremoval.data.synthetic.scale_tree import make_scale_tree

    rows = []
    for n in sizes:
        made = make_scale_tree(root / f"n{n}", n, workers=workers, progress=sys.stderr.isatty())
        rows.append(
            [
                f"{n:,}",
                f"{made['n_files']:,}",
                f"{made['written']:,}",
                f"{made['seconds']:.1f}",
                f"{made['written'] / max(made['seconds'], 1e-9):,.0f}",
                f"{made['bytes'] / 2**30:.2f}",
            ]
        )
    return rows


def _row(n: int, mode: str, r: dict) -> list[str]:
    listing = r["discover"] + r["seeded"] + r["official"]
    total = listing + r["validate"]
    us = [f"{1e6 * r[s] / n:.0f}" for s in STEPS]
    return [
        f"{n:,}",
        mode,
        *(f"{r[s]:.2f}" for s in STEPS),
        " / ".join(us),
        f"{3 * n / r['validate']:,.0f}" if r["validate"] else "-",
        f"{r['validate_cpu']:.1f}",
        f"{1e3 * r['validate_cpu'] / (3 * n):.2f}",
        f"{total:.1f}",
        f"{listing + r['validate_cpu'] / 2:.1f}",
        f"{r['rss_mib']:.0f} / {r['worker_rss_mib']:.0f}",
        str(r["n_problems"]),
    ]


HEADER = [
    "triplets",
    "validation",
    "discover s",
    "seeded s",
    "official s",
    "validate s",
    "us/triplet (disc/seed/off/val)",
    "files/s (val)",
    "val CPU s",
    "val CPU ms/file",
    "total s",
    "total s on 2 idle cores (est.)",
    "peak RSS MiB (main / worker)",
    "problems",
]


def compare_baseline(root: Path, n: int, args: argparse.Namespace, validate: bool) -> None:
    """This checkout against ``--baseline`` on one size, ABAB over ``--repeats`` rounds: the
    listing and splits, and with ``validate`` the header validation (CPU s: the load of a
    shared machine moves wall times more than CPU times)."""
    src = {"project": REPO / "src", "baseline": Path(args.baseline).resolve()}
    results: dict[str, list[dict]] = {m: [] for m in src}
    steps = STEPS if validate else STEPS[:3]

    def mode(name: str):
        def measure() -> float:
            r = run_child(root / f"n{n}", args.workers, False, src[name], validate)
            results[name].append(r)
            return sum(r[s] for s in STEPS[:3]) + (r["validate_cpu"] if validate else 0.0)

        return measure

    totals = interleaved({m: mode(m) for m in src}, args.repeats)
    what = "listing, splits and header validation (CPU s)" if validate else "listing and splits"
    print(f"\nbaseline {src['baseline']} vs this checkout, {n:,} triplets, {what}, ABAB:")
    rows = []
    for name, values in totals.items():
        med = {s: spread([r[s] for r in results[name]]).median for s in steps}
        cpu = spread([r["validate_cpu"] for r in results[name]]).median
        cells = [f"{med[s]:.2f}" for s in steps] + ([f"{cpu:.1f}"] if validate else [])
        rows.append([name, *cells, spread(values).text()])
    header = [f"{s} s" for s in steps] + (["validate CPU s"] if validate else [])
    print(table(rows, ["code", *header, "sum s (median, range)"]))
    ratio = ratio_spread(totals["baseline"], totals["project"])
    print(f"baseline / project per round: {ratio.text()}")


def _sizes(args: argparse.Namespace) -> list[int]:
    if args.sizes:
        return [int(s) for s in args.sizes.split(",")]
    return [1000, 10000] if args.quick else [1000, 10000, FULL]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--root", type=Path)
    parser.add_argument("--sizes", default=None, help="comma separated triplet counts")
    parser.add_argument("--workers", type=int, default=None, help="default: usable cores")
    parser.add_argument("--baseline", default=None, help="src folder of another checkout")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-content", action="store_true", help="skip the pixel validation")
    parser.add_argument(
        "--validate-up-to", type=int, default=None, help="validate only trees of <= N triplets"
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--content", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-validation", action="store_true", help=argparse.SUPPRESS)
    return parser


def measure(root: Path, sizes: list[int], args: argparse.Namespace) -> None:
    """Every size in a fresh process (headers, then headers + pixels) -> the printed table."""
    rows = []
    for n in sizes:
        validate = args.validate_up_to is None or n <= args.validate_up_to
        for content in (False,) if args.no_content or not validate else (False, True):
            r = run_child(root / f"n{n}", args.workers, content, REPO / "src", validate)
            mode = "headers + pixels" if content else "headers" if validate else "none"
            rows.append(_row(n, mode, r))
            print(" | ".join(rows[-1]), flush=True)
    print()
    print(table(rows, HEADER))
    full = [r for r in rows if r[0] == f"{FULL:,}" and r[1] == "headers"]
    verdict = (
        f"{full[0][10]} s measured under this load, {full[0][11]} s on 2 idle cores (listing "
        "+ validation CPU / 2)"
        if full
        else "not measured here (the 10k row's us/triplet times 122,218 estimates it)"
    )
    goal = f"listing + header validation of {FULL:,} triplets < {GOAL_S:.0f} s on 2 cores"
    print(f"\ngoal: {goal}: {verdict}")


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.child:
        result = child(args.child, args.workers or 1, args.content, not args.no_validation)
        print(json.dumps(result))
        return 0
    from tml_cloudremoval.data.triplets import usable_cores

    args.workers = args.workers or usable_cores()
    sizes = _sizes(args)
    root = args.root or Path(tempfile.mkdtemp(prefix="bench_scale_"))
    print(machine_line())
    print(f"trees under {root}, {args.workers} worker(s)\n")
    try:
        gen = make_trees(root, sizes, args.workers)
        print(table(gen, ["triplets", "files", "written", "s", "files/s", "GiB on disk"]))
        measure(root, sizes, args)
        if args.baseline:
            compare_baseline(root, sizes[-1], args, validate=False)
            compare_baseline(root, sizes[0], args, validate=True)
    finally:
        if args.root is None:
            shutil.rmtree(root, ignore_errors=True)
    print("\n" + machine_line())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
