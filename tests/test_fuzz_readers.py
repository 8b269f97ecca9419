"""Fuzzing of the readers (issue 12): corrupted copies of synthetic and real SEN12MS-CR files
always end in a correct read or the project's error naming the file, never another exception,
never a written file. A few hundred cases here, 1200 in the ``slow`` test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from support.fuzz_readers import KINDS, run_fuzz

from tml_cloudremoval.data.layout import match_official_name, official_paths
from tml_cloudremoval.raster import write_geotiff_atomic

UTM_10M = Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 5000000.0)


def _synthetic_triplets(root: Path) -> list[dict[str, Path]]:
    """Two small triplets: georeferenced (tiled, deflate) and plain (striped, uncompressed)."""
    rng = np.random.default_rng(0)
    out = []
    for i, options in enumerate(
        [
            {"crs": "EPSG:32631", "transform": UTM_10M, "tiled": True, "compress": "deflate"},
            {"tiled": False, "compress": None},
        ]
    ):
        paths = official_paths(root, "ROIs1158_spring", i, 1)
        s2 = rng.integers(100, 4000, (32, 32, 13), dtype=np.uint16)
        s1 = rng.uniform(-25, -5, (32, 32, 2)).astype(np.float32)
        s1[0, 0, 0] = np.nan
        write_geotiff_atomic(paths["s1"], s1, **options)
        write_geotiff_atomic(paths["s2"], s2, **options)
        cloudy = s2.copy()
        cloudy[:16] = 7000
        write_geotiff_atomic(paths["s2_cloudy"], cloudy, **options)
        out.append(paths)
    return out


def _real_triplets(root: Path, n: int) -> list[dict[str, Path]]:
    cloudy = sorted(root.glob("*_s2_cloudy/s2_cloudy_*/*.tif"))[:n]
    return [official_paths(root, *match_official_name("s2_cloudy", p.name)) for p in cloudy]


def _assert_clean(result) -> None:
    assert result.failures == [], "\n".join(result.failures[:20])
    kinds_seen = result.cases >= len(KINDS)
    assert kinds_seen and result.calls >= 5 * result.cases
    # the corruptions do reach both outcomes: some reads succeed, many are refused by name
    assert any(k.endswith(": read") for k in result.outcomes)
    assert any(k.endswith("Error") for k in result.outcomes)


def test_fuzz_synthetic_files(tmp_path):
    sources = _synthetic_triplets(tmp_path / "sources")
    before = {p: p.read_bytes() for t in sources for p in t.values()}
    result = run_fuzz(sources, n_cases=200, seed=12, workdir=tmp_path / "work")
    _assert_clean(result)
    assert {p: p.read_bytes() for t in sources for p in t.values()} == before


@pytest.mark.realdata
def test_fuzz_real_samples(tmp_path, real_samples_root):
    sources = _real_triplets(real_samples_root, 4)
    result = run_fuzz(sources, n_cases=80, seed=13, workdir=tmp_path / "work")
    _assert_clean(result)


@pytest.mark.slow
def test_fuzz_1200_cases(tmp_path):
    from conftest import real_samples_path

    sources = _synthetic_triplets(tmp_path / "sources")
    real = real_samples_path()
    if real.is_dir() and any(real.glob("*_s2_cloudy")):
        sources += _real_triplets(real, 22)
    result = run_fuzz(sources, n_cases=1200, seed=1212, workdir=tmp_path / "work")
    _assert_clean(result)
    print(f"fuzz: {result.cases} cases, {result.calls} reader calls: {dict(result.outcomes)}")
