"""Fixtures of the data tests: tiny SEN12MS-CR triplets written as GeoTIFFs (16 x 16 px)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from affine import Affine
from rasterio.crs import CRS

from tml_cloudremoval.data.discovery import discover_triplets
from tml_cloudremoval.data.layout import flattened_paths, official_paths
from tml_cloudremoval.data.splits import split_by_scene
from tml_cloudremoval.raster import write_geotiff_atomic

FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}
UTM = CRS.from_epsg(32631)
TRANSFORM = Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 5000000.0)
# (roi_season, scene, patch): 4 scenes, 7 triplets
TRIPLETS = [
    ("ROIs1158_spring", 1, 30),
    ("ROIs1158_spring", 1, 4),
    ("ROIs1158_spring", 2, 7),
    ("ROIs1868_summer", 10, 2),
    ("ROIs1868_summer", 10, 11),
    ("ROIs1868_summer", 3, 5),
    ("ROIs0000_nogeo", 0, 1),
]


def _write_triplet(paths, size=(16, 16), seed=0, georef=True, s1=None, s2=None, cloudy=None):
    """Tiny random triplet at ``paths`` ({"s1", "s2", "s2_cloudy"}); arrays may be overridden."""
    rng = np.random.default_rng(seed)
    h, w = size
    arrays = {
        "s1": rng.uniform(-25, -5, (h, w, 2)).astype(np.float32) if s1 is None else s1,
        "s2": rng.integers(100, 3000, (h, w, 13), dtype=np.uint16) if s2 is None else s2,
    }
    if cloudy is None:
        cloudy = arrays["s2"].copy()
        cloudy[: h // 2, : w // 2] = 6000  # a bright cloud in the top-left quarter
    arrays["s2_cloudy"] = cloudy
    geo = {"crs": UTM, "transform": TRANSFORM} if georef else {}
    for modality, array in arrays.items():
        write_geotiff_atomic(paths[modality], array, **geo)
    return arrays


def _make_tree(root: Path, layout: str = "official", triplets=TRIPLETS, size=(16, 16)) -> Path:
    paths_of = official_paths if layout == "official" else flattened_paths
    for i, (rs, scene, patch) in enumerate(triplets):
        _write_triplet(
            paths_of(root, rs, scene, patch), size, seed=i, georef=rs != "ROIs0000_nogeo"
        )
    return root


@pytest.fixture
def triplets_written():
    """The (roi_season, scene, patch) of the triplets :func:`make_tree` writes."""
    return list(TRIPLETS)


@pytest.fixture
def write_triplet():
    """``write_triplet(paths, size=(16, 16), seed=0, georef=True, s1=, s2=, cloudy=)``."""
    return _write_triplet


@pytest.fixture
def make_tree():
    """``make_tree(root, layout="official", triplets=TRIPLETS, size=(16, 16)) -> root``."""
    return _make_tree


@pytest.fixture
def grid():
    """``(crs, transform)`` of the georeferenced test triplets."""
    return UTM, TRANSFORM


@pytest.fixture
def fractions() -> dict[str, float]:
    return dict(FRACTIONS)


@pytest.fixture
def official_root(tmp_path) -> Path:
    return _make_tree(tmp_path / "official")


@pytest.fixture
def table(official_root) -> pd.DataFrame:
    """The official tree's triplet table, split by scene (seed 42)."""
    return split_by_scene(discover_triplets(official_root), FRACTIONS, seed=42)
