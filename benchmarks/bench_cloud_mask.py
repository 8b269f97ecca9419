"""Speed of the cloud / cloud-shadow mask: the project's fast detector vs the literal oracle.

Usage: ``python benchmarks/bench_cloud_mask.py [--quick] [--samples DIR]``.

Times ``cloud_shadow_mask`` (the product) and ``cloud_shadow_mask_reference`` (the plain
transcription of the published DSen2-CR code) side by side in one process, single-threaded, best
of several repeats, in ms per 256 x 256 x 13 patch, on every real SEN12MS-CR cloudy sample found
(env SEN12MSCR_SAMPLES or ``<repo>/../shared/data/sen12mscr_samples``), else on a seeded
synthetic patch (said so in the output). Also prints the pixel agreement of the two masks.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import timeit  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
from common import REAL_SAMPLES, machine_line  # noqa: E402  (also puts src/ on sys.path)

from tml_cloudremoval.data import cloud_mask as cm  # noqa: E402


def load_patches(root: Path) -> tuple[list[tuple[str, np.ndarray]], str]:
    """(name, (H, W, 13) uint16 DN) for every cloudy sample under ``root``, and a source line."""
    files = sorted(root.glob("*_s2_cloudy/s2_cloudy_*/*.tif")) if root.is_dir() else []
    if files:
        import rasterio
        import rasterio.errors

        patches = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            for path in files:
                with rasterio.open(path) as src:
                    patches.append((path.stem, np.moveaxis(src.read(), 0, -1)))
        return patches, f"{len(patches)} real SEN12MS-CR cloudy patches from {root}"
    rng = np.random.default_rng(20240607)
    synthetic = rng.integers(0, 6000, size=(256, 256, 13), dtype=np.uint16)
    return [("synthetic", synthetic)], (
        f"SYNTHETIC seeded 256x256x13 uint16 patch (real samples not found at {root})"
    )


def best_ms(fn: Callable[[], object], number: int, repeat: int) -> float:
    """Best of ``repeat`` runs of ``number`` calls, in ms per call."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e3


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and patches")
    parser.add_argument("--samples", type=Path, default=None, help="SEN12MS-CR samples folder")
    args = parser.parse_args(argv)
    root = args.samples or REAL_SAMPLES

    patches, source = load_patches(root)
    if args.quick:
        patches = patches[:4]
    fast_n, ref_n, repeat = (3, 1, 3) if args.quick else (20, 3, 7)

    print(
        "cloud / cloud-shadow mask: project (cloud_shadow_mask) vs oracle (literal transcription)"
    )
    print(f"data    : {source}")
    print(f"machine : {machine_line()}, scipy {scipy.__version__}; timed single-threaded")
    print(f"timing  : best of {repeat} repeats; project x{fast_n}, oracle x{ref_n} calls each\n")

    header = f"{'patch':<40} {'HxW':>9} {'cover':>6} {'project ms':>10} {'oracle ms':>9} "
    header += f"{'speed-up':>8} {'agree':>8}"
    print(header)
    print("-" * len(header))
    fast_all, ref_all, agree_all = [], [], []
    for name, s2 in patches:
        fast = cm.cloud_shadow_mask(s2)
        ref = cm.cloud_shadow_mask_reference(s2)
        agree = float(np.mean(fast == ref))
        fast_ms = best_ms(lambda s2=s2: cm.cloud_shadow_mask(s2), fast_n, repeat)
        ref_ms = best_ms(lambda s2=s2: cm.cloud_shadow_mask_reference(s2), ref_n, repeat)
        fast_all.append(fast_ms)
        ref_all.append(ref_ms)
        agree_all.append(agree)
        size = f"{s2.shape[0]}x{s2.shape[1]}"
        print(
            f"{name:<40} {size:>9} {fast.mean():>6.1%} {fast_ms:>10.2f} {ref_ms:>9.2f} "
            f"{ref_ms / fast_ms:>7.1f}x {agree:>8.4%}"
        )
    print("-" * len(header))
    fast_med, ref_med = statistics.median(fast_all), statistics.median(ref_all)
    print(
        f"{'median over patches':<40} {'':>9} {'':>6} {fast_med:>10.2f} {ref_med:>9.2f} "
        f"{ref_med / fast_med:>7.1f}x {min(agree_all):>8.4%} (min)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
