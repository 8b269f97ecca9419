"""The synthetic SEN12MS-CR dataset: seeded triplets in the official layout.

Per season folder, ``scenes_per_season`` scenes (ids 1..n), each a UTM-referenced area cut into
a ``patch_grid`` (rows, cols) of ``patch_size`` px patches ``patch_stride`` px apart (128 of 256
= 50 % overlap, as in SEN12MS); patch ids p1..p<rows*cols> row by row. Per triplet: S1 (float32
dB, VV/VH, speckle, a few NaN), S2 (uint16 DN, 13 bands, clear) and S2 cloudy (same ground,
thick + thin clouds covering U(cloud_cover) of the patch, shadows). One clear S2 and one S1
acquisition per scene (overlapping patches agree); clouds are drawn per patch. File paths come
from :func:`tml_cloudremoval.data.layout.official_relpaths`, the one layout definition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.crs import CRS
from rasterio.transform import Affine

from tml_cloudremoval.bands import OPTICAL_RESOLUTION_M, S1_BAND_NAMES, S2_BAND_NAMES
from tml_cloudremoval.config import from_params
from tml_cloudremoval.data.config import Sen12mscrSampleConfig
from tml_cloudremoval.data.layout import official_relpaths
from tml_cloudremoval.data.synthetic.clouds import render_cloudy, shadow_offset, synthesize_clouds
from tml_cloudremoval.data.synthetic.ground import (
    Ground,
    observe_optical,
    reflectance_to_dn,
    synthesize_ground,
)
from tml_cloudremoval.data.synthetic.sample_folder import SAMPLE_COMPRESSION, SeededSample
from tml_cloudremoval.data.synthetic.sar import add_nan_pixels, sar_backscatter_linear, speckle_db
from tml_cloudremoval.data.synthetic.spectra import season_of
from tml_cloudremoval.raster import write_geotiff_atomic

__all__ = ["SEN12MSCR_KIND", "Sen12mscrSample", "sen12mscr_sample"]

SEN12MSCR_KIND = "sen12mscr"
"""``kind`` of the synthetic SEN12MS-CR product in its manifest."""


def _utm_origin(rng: np.random.Generator) -> tuple[CRS, float, float]:
    """A UTM zone (northern hemisphere, EPSG:326zz) and a 10 m aligned upper-left corner."""
    zone = int(rng.integers(1, 61))
    x0 = 10.0 * int(rng.integers(20_000, 75_000))  # 200-750 km easting
    y0 = 10.0 * int(rng.integers(100_000, 700_000))  # 1000-7000 km northing
    return CRS.from_epsg(32600 + zone), x0, y0


@dataclass(frozen=True)
class _Scene:
    """One synthetic scene: the shared ground and acquisitions its patches are cut from."""

    season_folder: str
    number: int
    crs: CRS
    x0: float
    y0: float
    ground: Ground
    clear: np.ndarray  # uint16 (H, W, 13) DN
    sar: np.ndarray  # float32 (H, W, 2) dB
    azimuth: float
    gain: np.ndarray  # float32 (13,)


@dataclass(frozen=True)
class Sen12mscrSample(SeededSample):
    """The lazy product: what to generate (``seed``, ``config``); nothing is computed until
    :meth:`write_into` (called by :func:`.sample_folder.write_sample_folder`)."""

    seed: int
    config: Sen12mscrSampleConfig
    kind: str = SEN12MSCR_KIND

    def _patches(self) -> list[tuple[int, str, int, int]]:
        """(season index, season folder, scene, patch) of every triplet, in writing order."""
        rows, cols = self.config.patch_grid
        return [
            (index, season, scene, patch)
            for index, season in enumerate(self.config.seasons)
            for scene in range(1, self.config.scenes_per_season + 1)
            for patch in range(1, rows * cols + 1)
        ]

    def files(self) -> list[str]:
        return [
            rel
            for _, season, scene, patch in self._patches()
            for rel in official_relpaths(season, scene, patch).values()
        ]

    def _scene(self, season_index: int, season_folder: str, number: int) -> _Scene:
        cfg = self.config
        rows, cols = cfg.patch_grid
        shape = (
            cfg.patch_stride * (rows - 1) + cfg.patch_size,
            cfg.patch_stride * (cols - 1) + cfg.patch_size,
        )
        rng = np.random.default_rng([int(self.seed), season_index, number])
        crs, x0, y0 = _utm_origin(rng)
        ground = synthesize_ground(rng, shape, season_of(season_folder), cfg.land_cover_scale_px)
        clear = reflectance_to_dn(observe_optical(rng, ground.reflectance))
        sar = speckle_db(rng, sar_backscatter_linear(rng, ground), cfg.s1_looks)
        azimuth = rng.uniform(0.0, 2.0 * math.pi)  # one sun direction per scene
        gain = rng.normal(1.0, 0.01, len(S2_BAND_NAMES)).astype(np.float32)
        return _Scene(season_folder, number, crs, x0, y0, ground, clear, sar, azimuth, gain)

    def _write_patch(
        self, folder: Path, scene: _Scene, season_index: int, patch: int
    ) -> dict[str, Any]:
        """Cut patch ``patch`` of ``scene``, add its clouds, write its triplet -> its summary."""
        cfg = self.config
        cols = cfg.patch_grid[1]
        r, c = divmod(patch - 1, cols)
        stride, size, res = cfg.patch_stride, cfg.patch_size, float(OPTICAL_RESOLUTION_M)
        prng = np.random.default_rng([int(self.seed), season_index, scene.number, patch])
        window = (slice(r * stride, r * stride + size), slice(c * stride, c * stride + size))
        cover = prng.uniform(*cfg.cloud_cover)
        offset = shadow_offset(prng, scene.azimuth, *cfg.shadow_distance_px)
        layers = synthesize_clouds(
            prng,
            (size, size),
            cover,
            scale_px=cfg.cloud_scale_px,
            thin_probability=cfg.thin_cloud_probability,
            shadow_offset_px=offset,
        )
        cloudy = render_cloudy(prng, scene.ground.reflectance[window] * scene.gain, layers)
        arrays = {
            "s1": add_nan_pixels(prng, scene.sar[window].copy(), cfg.s1_nan_fraction),
            "s2": scene.clear[window],
            "s2_cloudy": reflectance_to_dn(cloudy),
        }
        transform = Affine(
            res, 0.0, scene.x0 + c * stride * res, 0.0, -res, scene.y0 - r * stride * res
        )
        common = {"crs": scene.crs, "transform": transform, "tiled": False, **SAMPLE_COMPRESSION}
        names = {"s1": S1_BAND_NAMES, "s2": S2_BAND_NAMES, "s2_cloudy": S2_BAND_NAMES}
        for modality, rel in official_relpaths(scene.season_folder, scene.number, patch).items():
            write_geotiff_atomic(
                folder / rel, arrays[modality], descriptions=names[modality], **common
            )
        return {
            "scene_id": f"{scene.season_folder}_{scene.number}",
            "patch": f"p{patch}",
            "cloud_fraction": round(float(layers.cloud().mean()), 4),
            "shadow_fraction": round(float(layers.shadow_only().mean()), 4),
            "crs": scene.crs.to_string(),
        }

    def write_into(self, folder: Path) -> dict[str, Any]:
        """Write every triplet under ``folder`` -> manifest extras ``summary`` and ``triplets``."""
        triplets: list[dict[str, Any]] = []
        scene = None
        for season_index, season_folder, number, patch in self._patches():
            if scene is None or (scene.season_folder, scene.number) != (season_folder, number):
                scene = self._scene(season_index, season_folder, number)
            triplets.append(self._write_patch(folder, scene, season_index, patch))
        fractions = np.array([t["cloud_fraction"] for t in triplets])
        summary = {
            "n_triplets": len(triplets),
            "n_scenes": len(self.config.seasons) * self.config.scenes_per_season,
            "seasons": list(self.config.seasons),
            "patch_size": int(self.config.patch_size),
            "cloud_fraction": {
                "min": round(float(fractions.min()), 4),
                "mean": round(float(fractions.mean()), 4),
                "max": round(float(fractions.max()), 4),
            },
        }
        return {"summary": summary, "triplets": triplets}


def sen12mscr_sample(seed: int, **settings: Any) -> Sen12mscrSample:
    """The product from keyword settings, validated as ``sample_data.sen12mscr`` parameters."""
    config = from_params(Sen12mscrSampleConfig, settings, "sample_data.sen12mscr")
    return Sen12mscrSample(int(seed), config)
