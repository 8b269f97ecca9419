"""Miniature Sentinel-2 products of one ground (13 bands at 10 m), written once per module."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from tml_cloudremoval.bands import S2_BAND_NAMES

UTM32 = CRS.from_epsg(32632)
TRANSFORM = Affine(10.0, 0.0, 500040.0, 0.0, -10.0, 5199960.0)
H, W = 96, 108  # multiples of 6 (60 m bands) and 4 (40 m SAR)


def make_ground(height: int = H, width: int = W, seed: int = 0) -> dict[str, np.ndarray]:
    """{band: (H, W) uint16 DN}: smooth land, per-band levels, noise, nodata (0) left of a
    slanted edge."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    bands = {}
    for i, name in enumerate(S2_BAND_NAMES):
        dn = 900 + 120 * i + 400 * np.sin(xx / 8.0 + i) + 250 * np.cos(yy / 6.0)
        dn = np.clip(dn + rng.normal(0, 40, (height, width)), 1, 10000).astype(np.uint16)
        dn[xx < 14 - yy / 6] = 0
        bands[name] = dn
    return bands


@pytest.fixture(scope="module")
def ground() -> SimpleNamespace:
    return SimpleNamespace(bands=make_ground(), crs=UTM32, transform=TRANSFORM, H=H, W=W)


@pytest.fixture(scope="module")
def products(tmp_path_factory, ground) -> SimpleNamespace:
    """The ground as an L1C .SAFE of baseline 02.09 (no offset), one of 04.00 (offset) zipped,
    an L2A .SAFE, and the TML layout in both forms."""
    from tml_cloudremoval.data.synthetic.s2_products import write_safe, write_tml_layout

    root: Path = tmp_path_factory.mktemp("products")
    args = (ground.bands, ground.crs, ground.transform)
    return SimpleNamespace(
        root=root,
        safe_0209=write_safe(root / "a", *args, baseline="02.09"),
        safe_0400=write_safe(root / "b", *args, baseline="04.00"),
        zip_0400=write_safe(root / "c", *args, baseline="04.00", zipped=True),
        l2a=write_safe(root / "d", *args, baseline="04.00", level="L2A"),
        tml=write_tml_layout(root / "tml", *args),
        tml_per_band=write_tml_layout(root / "tml_bands", *args, per_band=True),
    )
