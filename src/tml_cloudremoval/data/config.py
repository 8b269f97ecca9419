"""Validated configuration of the data pipelines: the ``data`` and ``sample_data`` sections.

Frozen dataclasses built with :func:`tml_cloudremoval.config.from_params` by the first node of
each pipeline, before any file is scanned or written: an unknown key (with the closest valid
name), a wrong type or an out-of-range value is rejected naming ``section.key``. The defaults
here are the defaults of ``conf/base/parameters_data_processing.yml`` and
``conf/base/parameters_sample_data.yml`` (a test proves they agree).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from tml_cloudremoval.bands import SAR_FACTOR
from tml_cloudremoval.config import bounds, from_params
from tml_cloudremoval.data.errors import DataError
from tml_cloudremoval.data.splits import OFFICIAL, check_fractions
from tml_cloudremoval.data.synthetic.spectra import SEASONS, season_of

__all__ = [
    "DataConfig",
    "SampleDataConfig",
    "Sen12mscrSampleConfig",
    "SplitFractions",
    "TmlSceneSampleConfig",
    "data_config",
    "sample_data_config",
]

_FRACTION = bounds(0.0, 1.0)
_POSITIVE = bounds(0.0, lo_open=True)


@dataclass(frozen=True)
class SplitFractions:
    """Fractions of the *scenes* per split; each > 0, together 1."""

    train: float = field(default=0.7, metadata=bounds(0.0, 1.0, lo_open=True))
    val: float = field(default=0.15, metadata=bounds(0.0, 1.0, lo_open=True))
    test: float = field(default=0.15, metadata=bounds(0.0, 1.0, lo_open=True))


@dataclass(frozen=True)
class DataConfig:
    """``params:data``: where the SEN12MS-CR triplets are and how they become patch stores."""

    root: str = "data/01_raw/sen12mscr_sample"
    file_list: str | None = None
    layout: Literal["auto", "official", "flattened"] = "auto"
    # fractions of the scenes (a seeded split), or "official": the published SEN12MS-CR scene
    # split (conf/base/sen12mscr_official_split.csv); a file list's own split wins over both
    split: SplitFractions | Literal["official"] = field(default_factory=SplitFractions)
    seed: int = 42
    on_bad_file: Literal["error", "skip"] = "error"
    cloud_threshold: float = field(default=0.2, metadata=bounds(0.0, 1.0, lo_open=True))
    sar_method: Literal["mean", "linear_power"] = "mean"
    workers: int | None = field(default=None, metadata=bounds(1))

    def check(self) -> list[str]:
        faults = [] if self.root else ["root: must name a folder, got ''"]
        if self.split != OFFICIAL:
            try:
                check_fractions(asdict(self.split))
            except DataError as exc:
                faults.append(f"split: {exc}")
        return faults


@dataclass(frozen=True)
class Sen12mscrSampleConfig:
    """``params:sample_data.sen12mscr``: the synthetic SEN12MS-CR tree (official layout)."""

    seasons: tuple[str, ...] = SEASONS
    scenes_per_season: int = field(default=3, metadata=bounds(1))
    patch_grid: tuple[int, int] = field(default=(2, 3), metadata=bounds(1))
    patch_size: int = field(default=256, metadata=bounds(4 * SAR_FACTOR, multiple_of=SAR_FACTOR))
    patch_stride: int = field(default=128, metadata=bounds(1))
    cloud_cover: tuple[float, float] = field(default=(0.0, 0.9), metadata=_FRACTION)
    thin_cloud_probability: float = field(default=0.5, metadata=_FRACTION)
    land_cover_scale_px: float = field(default=40.0, metadata=_POSITIVE)
    cloud_scale_px: float = field(default=48.0, metadata=_POSITIVE)
    shadow_distance_px: tuple[float, float] = field(default=(12.0, 36.0), metadata=bounds(0.0))
    s1_looks: float = field(default=4.4, metadata=_POSITIVE)
    s1_nan_fraction: float = field(default=1.0e-4, metadata=bounds(0.0, 0.5))
    overwrite: bool = False

    def check(self) -> list[str]:
        faults = [] if self.seasons else ["seasons: must name at least one season folder"]
        for season in self.seasons:
            try:
                season_of(season)
            except ValueError as exc:
                faults.append(f"seasons: {exc}")
        if self.patch_stride > self.patch_size:
            faults.append(f"patch_stride: {self.patch_stride} exceeds patch_size {self.patch_size}")
        if self.cloud_cover[0] > self.cloud_cover[1]:
            faults.append(f"cloud_cover: {list(self.cloud_cover)} is not [low, high]")
        low, high = self.shadow_distance_px
        if low > high or high > self.patch_size:
            faults.append(
                f"shadow_distance_px: {[low, high]} is not [low, high] with high <= patch_size"
            )
        return faults


@dataclass(frozen=True)
class TmlSceneSampleConfig:
    """``params:sample_data.tml_scene``: the sample TML scene for inference."""

    height: int = field(default=1500, metadata=bounds(4 * SAR_FACTOR))
    width: int = field(default=1500, metadata=bounds(4 * SAR_FACTOR))
    season: Literal["spring", "summer", "fall", "winter"] = "summer"
    cloud_cover: float = field(default=0.35, metadata=_FRACTION)
    thin_cloud_probability: float = field(default=1.0, metadata=_FRACTION)
    land_cover_scale_px: float = field(default=60.0, metadata=_POSITIVE)
    cloud_scale_px: float = field(default=120.0, metadata=_POSITIVE)
    shadow_distance_px: tuple[float, float] = field(default=(25.0, 45.0), metadata=bounds(0.0))
    s1_offset_px: tuple[int, int] = field(default=(6, 9), metadata=bounds(0))
    s1_looks: float = field(default=4.4, metadata=_POSITIVE)
    nodata_edge: bool = True
    write_clear: bool = True
    write_products: bool = True  # issue 11: also as .SAFE (02.09, 04.00 zip) and TML layout
    overwrite: bool = False

    def check(self) -> list[str]:
        low, high = self.shadow_distance_px
        return [] if low <= high else [f"shadow_distance_px: {[low, high]} is not [low, high]"]


@dataclass(frozen=True)
class SampleDataConfig:
    """``params:sample_data``: one seed for both products, and their settings."""

    seed: int = 42
    sen12mscr: Sen12mscrSampleConfig = field(default_factory=Sen12mscrSampleConfig)
    tml_scene: TmlSceneSampleConfig = field(default_factory=TmlSceneSampleConfig)


def data_config(params: Mapping[str, Any] | None) -> DataConfig:
    """``params:data`` -> :class:`DataConfig`; raises ``ConfigError`` naming every bad key."""
    return from_params(DataConfig, params, "data")


def sample_data_config(params: Mapping[str, Any] | None) -> SampleDataConfig:
    """``params:sample_data`` -> :class:`SampleDataConfig` (``ConfigError`` on bad keys)."""
    return from_params(SampleDataConfig, params, "sample_data")
