"""Shared scene fixtures for the inference tests: small georeferenced GeoTIFFs and a tiny model.

``h`` gives the generators and an independent whole-image reference prediction (built without
the tiling code), as a namespace: ``h.make_optical(...)``, ``h.reference``, ``h.reference_std``
(an aleatoric model's standard deviation by hand). ``model``: a tiny DSen2-CR; ``aleatoric``:
its twin with a log-scale head (``support.aleatoric_model``).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from tml_cloudremoval.bands import S2_BAND_NAMES, TML_BAND_NAMES, tml_band_indices
from tml_cloudremoval.inference.reader import band_names_from_descriptions, inspect_optical
from tml_cloudremoval.models.dsen2cr import build_dsen2cr
from tml_cloudremoval.normalise import normalise_optical, normalise_sar
from tml_cloudremoval.raster import write_geotiff_atomic
from tml_cloudremoval.sar import fill_nan_with_channel_mean, sar_to_40m, warp_sar_to_grid

UTM32 = CRS.from_epsg(32632)
TRANSFORM = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5200000.0)
H, W = 92, 108  # multiples of 4: the whole-image reference needs no padding


def write_tif(path, array, crs=UTM32, transform=TRANSFORM, nodata=None, descriptions=None):
    return write_geotiff_atomic(
        path, array, crs=crs, transform=transform, nodata=nodata, descriptions=descriptions
    )


def make_optical(height=H, width=W, seed=0, wedge=True) -> np.ndarray:
    """(H, W, 10) uint16 DN: smooth land plus a bright cloud, 0 (nodata) left of a slanted edge."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = 800 + 400 * np.sin(xx / 9.0)[..., None] + 300 * np.cos(yy / 7.0)[..., None]
    dn = base + rng.normal(0, 60, (height, width, 10)) + np.arange(10) * 150
    cloud = np.exp(-(((yy - height / 2) / 15.0) ** 2 + ((xx - width / 2) / 20.0) ** 2))
    dn = np.clip(dn + 6000 * cloud[..., None], 1, 10000).astype(np.uint16)
    if wedge:
        dn[xx < 20 - yy / 5] = 0
    return dn


def make_sar(height, width, seed=1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vv = rng.uniform(-20, -5, (height, width))
    vh = vv - rng.uniform(5, 10, (height, width))
    return np.stack([vv, vh], axis=-1).astype(np.float32)


def model_inputs(s2_path, s1_path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The whole scene as model inputs (batch of one), built independently of the reader and
    the tiling code: ({"optical", "sar"}, valid (H, W))."""
    with rasterio.open(s2_path) as ds:
        data = np.moveaxis(ds.read(), 0, -1)
        nodata, crs, transform = ds.nodata, ds.crs, ds.transform
    names = band_names_from_descriptions(inspect_optical(s2_path).header.descriptions)
    if names is None:
        names = TML_BAND_NAMES if data.shape[-1] == 10 else S2_BAND_NAMES
    data = data[..., tml_band_indices(names)]
    valid = np.ones(data.shape[:2], bool) if nodata is None else ~(data == nodata).any(axis=-1)
    optical = normalise_optical(np.where(valid[..., None], data, 0))
    h, w = data.shape[:2]
    if crs is None:
        with rasterio.open(s1_path) as ds:
            sar = sar_to_40m(np.moveaxis(ds.read(), 0, -1))
    else:
        sar = warp_sar_to_grid(s1_path, crs, transform @ Affine.scale(4), h // 4, w // 4)
    sar = normalise_sar(fill_nan_with_channel_mean(sar))
    return {"optical": optical[None], "sar": sar[None]}, valid


def reference(model, s2_path, s1_path) -> tuple[np.ndarray, np.ndarray]:
    """Whole-image prediction, built independently of the tiling code: (DN float, valid)."""
    inputs, valid = model_inputs(s2_path, s1_path)
    pred = model.predict_on_batch(inputs)
    pred = (pred["prediction"] if isinstance(pred, dict) else pred)[0]
    return np.clip(pred * 2000.0, 0, 10000), valid


def reference_std(model, s2_path, s1_path) -> tuple[np.ndarray, np.ndarray]:
    """Whole-image predicted standard deviation of an aleatoric model, in reflectance, by
    hand: sqrt(2) exp(log_scale) x 2000 / 10000 (float64), and valid."""
    inputs, valid = model_inputs(s2_path, s1_path)
    log_scale = model.predict_on_batch(inputs)["log_scale"][0].astype(np.float64)
    return np.sqrt(2.0) * np.exp(log_scale) * 0.2, valid


def read(path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as ds:
        meta = {
            "crs": ds.crs,
            "transform": ds.transform,
            "shape": (ds.height, ds.width),
            "count": ds.count,
            "nodata": ds.nodata,
            "dtype": ds.dtypes[0],
            "descriptions": ds.descriptions,
            "tiled": ds.profile.get("tiled"),
            "compress": ds.compression,
            "tags": ds.tags(),
        }
        return np.moveaxis(ds.read(), 0, -1), meta


@pytest.fixture(scope="session")
def h() -> SimpleNamespace:
    return SimpleNamespace(
        UTM32=UTM32,
        TRANSFORM=TRANSFORM,
        H=H,
        W=W,
        write_tif=write_tif,
        make_optical=make_optical,
        make_sar=make_sar,
        reference=reference,
        reference_std=reference_std,
        model_inputs=model_inputs,
        read=read,
    )


@pytest.fixture(scope="module")
def model():
    import keras

    keras.utils.set_random_seed(2)
    return build_dsen2cr(features=8, blocks=1, tail_init="he_uniform")


@pytest.fixture(scope="module")
def aleatoric(model):
    """The ``model`` fixture's trunk with a seeded log-scale head (``support.aleatoric_model``):
    its prediction is ``model``'s."""
    from support.aleatoric_model import aleatoric_twin

    return aleatoric_twin(model, seed=5, features=8, blocks=1)


@pytest.fixture
def scene(tmp_path) -> dict[str, Path]:
    """A georeferenced scene: 10 TML bands with nodata 0, SAR at 40 m on a shifted grid."""
    s2 = write_tif(tmp_path / "s2_cloudy.tif", make_optical(), nodata=0)
    sar = make_sar(28, 32)
    sar[3:6, 4:8] = np.nan
    s1_transform = Affine(40.0, 0.0, 500000.0 - 60.0, 0.0, -40.0, 5200000.0 + 90.0)
    s1 = write_tif(tmp_path / "s1.tif", sar, transform=s1_transform, nodata=float("nan"))
    return {"s2": s2, "s1": s1, "out": tmp_path / "out" / "cloudfree.tif"}
