"""The sample TML scene for inference: ``s2_cloudy.tif``, ``s1.tif`` and ``s2_clear.tif``.

s2_cloudy / s2_clear: (height, width) px at 10 m, the 10 TML bands (``TML_BAND_NAMES``) as
uint16 DN, nodata 0 left of a slanted swath edge (``nodata_edge``), UTM (EPSG:32632), tiled
256 x 256, ZSTD-compressed. s1: VV, VH in dB (float32, nodata NaN) on a 40 m grid whose origin
lies ``s1_offset_px`` (rows, cols) 10 m pixels up/left of the S2 origin (so its cells do not
line up with 4 x 4 blocks of S2 unless both offsets are multiples of 4) and which covers the S2
extent with a margin; cells wholly outside the S2 extent on the top/left are NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.crs import CRS
from rasterio.transform import Affine

from tml_cloudremoval.bands import (
    OPTICAL_RESOLUTION_M,
    S1_BAND_NAMES,
    SAR_FACTOR,
    TML_BAND_NAMES,
)
from tml_cloudremoval.config import from_params
from tml_cloudremoval.data.config import TmlSceneSampleConfig
from tml_cloudremoval.data.synthetic.clouds import (
    CloudLayers,
    render_cloudy,
    shadow_offset,
    synthesize_clouds,
)
from tml_cloudremoval.data.synthetic.ground import (
    Ground,
    observe_optical,
    reflectance_to_dn,
    synthesize_ground,
)
from tml_cloudremoval.data.synthetic.s2_products import scene_product_files, write_scene_products
from tml_cloudremoval.data.synthetic.sample_folder import SAMPLE_COMPRESSION, SeededSample
from tml_cloudremoval.data.synthetic.sar import sar_backscatter_linear, speckle_db
from tml_cloudremoval.raster import write_geotiff_atomic

__all__ = ["TML_SCENE_FILES", "TML_SCENE_KIND", "TmlSceneSample", "swath_valid_mask", "tml_scene"]

TML_SCENE_KIND = "tml_scene"
"""``kind`` of the sample TML scene in its manifest."""

TML_SCENE_FILES: dict[str, str] = {
    "s2_cloudy": "s2_cloudy.tif",
    "s1": "s1.tif",
    "s2_clear": "s2_clear.tif",
}
"""File names of the sample TML scene inside its root folder."""

_SCENE_STREAM = 1_000_003
"""Second seed word of the scene's random stream: a stream apart from the SEN12MS-CR sample."""


def swath_valid_mask(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """bool (H, W): False left of a slanted, slightly ragged swath edge (about 17 % of the area),
    as the edge of a Sentinel-2 orbit crossing a tile looks."""
    h, w = shape
    y = np.arange(h, dtype=np.float32) / max(h - 1, 1)
    ragged = np.cumsum(rng.normal(0.0, 0.4, h)).astype(np.float32)
    ragged -= np.linspace(0.0, float(ragged[-1]), h, dtype=np.float32)  # bridge: no drift
    edge = w * (0.28 - 0.22 * y) + ragged + rng.integers(-1, 2, h)
    return np.arange(w, dtype=np.float32)[None, :] >= edge[:, None]


@dataclass(frozen=True)
class TmlSceneSample(SeededSample):
    """The lazy product: what to generate (``seed``, ``config``); nothing is computed until
    :meth:`write_into` (called by :func:`.sample_folder.write_sample_folder`)."""

    seed: int
    config: TmlSceneSampleConfig
    kind: str = TML_SCENE_KIND

    def files(self) -> list[str]:
        names = ["s2_cloudy", "s1", *(["s2_clear"] if self.config.write_clear else [])]
        products = scene_product_files() if self.config.write_products else []
        return [TML_SCENE_FILES[name] for name in names] + products

    def _s1_cells(self) -> tuple[int, int]:
        """Rows and columns of the 40 m S1 grid: the S2 extent, its offset and a margin."""
        cfg = self.config
        oy, ox = cfg.s1_offset_px
        return (
            -(-(cfg.height + oy + SAR_FACTOR) // SAR_FACTOR),
            -(-(cfg.width + ox + SAR_FACTOR) // SAR_FACTOR),
        )

    def _write_optical(
        self, folder: Path, rng: np.random.Generator, ground: Ground, s2_kwargs: dict[str, Any]
    ) -> tuple[np.ndarray | None, CloudLayers]:
        """Write s2_clear (optional) and s2_cloudy -> (valid-pixel mask or None, cloud layers)."""
        cfg = self.config
        oy, ox = cfg.s1_offset_px
        reflectance = ground.reflectance[oy : oy + cfg.height, ox : ox + cfg.width]
        valid = swath_valid_mask(rng, (cfg.height, cfg.width)) if cfg.nodata_edge else None
        if cfg.write_clear:
            clear = reflectance_to_dn(observe_optical(rng, reflectance))
            if valid is not None:
                clear[~valid] = 0
            write_geotiff_atomic(folder / TML_SCENE_FILES["s2_clear"], clear, **s2_kwargs)
            del clear
        azimuth = rng.uniform(0.0, 2.0 * math.pi)
        offset = shadow_offset(rng, azimuth, *cfg.shadow_distance_px)
        layers = synthesize_clouds(
            rng,
            (cfg.height, cfg.width),
            cfg.cloud_cover,
            scale_px=cfg.cloud_scale_px,
            thin_probability=cfg.thin_cloud_probability,
            shadow_offset_px=offset,
        )
        cloudy = render_cloudy(rng, reflectance, layers, band_names=TML_BAND_NAMES)
        cloudy = reflectance_to_dn(cloudy)
        if valid is not None:
            cloudy[~valid] = 0
        write_geotiff_atomic(folder / TML_SCENE_FILES["s2_cloudy"], cloudy, **s2_kwargs)
        if cfg.write_products:  # the same cloudy scene as a .SAFE (02.09, 04.00) and TML layout
            write_scene_products(folder, cloudy, s2_kwargs["crs"], s2_kwargs["transform"])
        return valid, layers

    def _write_sar(
        self, folder: Path, rng: np.random.Generator, ground: Ground, geo: dict[str, Any]
    ) -> None:
        """Multilook the 10 m backscatter onto the 40 m grid, speckle it, write s1.tif."""
        cfg = self.config
        n_y, n_x = self._s1_cells()
        oy, ox = cfg.s1_offset_px
        linear = sar_backscatter_linear(rng, ground)  # (4 n_y, 4 n_x, 2) at 10 m
        linear = linear.reshape(n_y, SAR_FACTOR, n_x, SAR_FACTOR, 2).mean(axis=(1, 3))
        s1 = speckle_db(rng, linear, cfg.s1_looks * SAR_FACTOR**2 / 2.0)  # multilooked: ENL ~ 35
        s1[: oy // SAR_FACTOR] = np.nan  # S1 rows/cols wholly outside the S2 extent: no data
        s1[:, : ox // SAR_FACTOR] = np.nan
        write_geotiff_atomic(
            folder / TML_SCENE_FILES["s1"],
            s1.astype(np.float32),
            descriptions=S1_BAND_NAMES,
            nodata=float("nan"),
            **geo,
            **SAMPLE_COMPRESSION,
        )

    def write_into(self, folder: Path) -> dict[str, Any]:
        """Write the scene's files under ``folder`` -> manifest extras (``summary``)."""
        cfg = self.config
        oy, ox = cfg.s1_offset_px
        n_s1 = self._s1_cells()
        rng = np.random.default_rng([int(self.seed), _SCENE_STREAM])
        extended = (n_s1[0] * SAR_FACTOR, n_s1[1] * SAR_FACTOR)  # 10 m grid under the S1 grid
        ground = synthesize_ground(
            rng, extended, cfg.season, cfg.land_cover_scale_px, TML_BAND_NAMES
        )
        crs = CRS.from_epsg(32632)
        res = float(OPTICAL_RESOLUTION_M)
        x0 = 399_960.0 + res * int(rng.integers(0, 5_000))
        y0 = 5_300_040.0 - res * int(rng.integers(0, 5_000))
        s2_kwargs = {
            "crs": crs,
            "transform": Affine(res, 0.0, x0, 0.0, -res, y0),
            "descriptions": TML_BAND_NAMES,
            "nodata": 0,
            **SAMPLE_COMPRESSION,
        }
        valid, layers = self._write_optical(folder, rng, ground, s2_kwargs)
        s1_res = res * SAR_FACTOR
        s1_transform = Affine(s1_res, 0.0, x0 - ox * res, 0.0, -s1_res, y0 + oy * res)
        self._write_sar(folder, rng, ground, {"crs": crs, "transform": s1_transform})
        valid_px = np.ones((cfg.height, cfg.width), dtype=bool) if valid is None else valid
        summary = {
            "height": int(cfg.height),
            "width": int(cfg.width),
            "crs": crs.to_string(),
            "s1_shape": [int(n_s1[0]), int(n_s1[1])],
            "nodata_fraction": round(float(1.0 - valid_px.mean()), 4),
            "cloud_fraction": round(float(layers.cloud()[valid_px].mean()), 4),
            "shadow_fraction": round(float(layers.shadow_only()[valid_px].mean()), 4),
        }
        return {"summary": summary}


def tml_scene(seed: int, **settings: Any) -> TmlSceneSample:
    """The product from keyword settings, validated as ``sample_data.tml_scene`` parameters."""
    config = from_params(TmlSceneSampleConfig, settings, "sample_data.tml_scene")
    return TmlSceneSample(int(seed), config)
