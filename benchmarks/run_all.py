"""Run every benchmark in this folder, one process each, and print their tables in turn.

Usage: ``python benchmarks/run_all.py [--quick]``. ``--quick`` is passed on to each script
(smaller sizes, fewer repeats) for a first look; the published figures use the defaults.

Sizes are kept small so that a run stays sane: ``bench_input_bigstore.py`` writes a 2 GB store
(0.5 GB with ``--quick``) and drops it from the page cache before each measurement; for a store
bigger than this machine's RAM run it alone, e.g. ``python benchmarks/bench_input_bigstore.py
--size-gb 30`` (needs that much free disk in the temp folder, or ``--folder DIR``).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = (
    "bench_cloud_mask.py",
    "bench_input_pipeline.py",
    "bench_store_build.py",
    "bench_input_bigstore.py",
    "bench_training.py",
    "bench_inference.py",
    "bench_inference_uncertainty.py",
    "bench_scale.py",
)


def main(argv: list[str]) -> int:
    extra = [a for a in argv if a == "--quick"]
    scripts = [HERE / name for name in ORDER if (HERE / name).exists()]
    scripts += sorted(p for p in HERE.glob("bench_*.py") if p.name not in ORDER)
    failed = []
    for script in scripts:
        print(f"\n===== {script.name} =====", flush=True)
        start = time.perf_counter()
        rc = subprocess.call([sys.executable, str(script), *extra], cwd=HERE.parent)
        print(f"({script.name}: {time.perf_counter() - start:.0f} s, exit {rc})", flush=True)
        if rc:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
