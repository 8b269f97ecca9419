"""``InferenceConfig``: the validated ``params:inference`` (conf/base/parameters_inference.yml).

Built by :func:`inference_config` in the first node of the inference pipeline, before any file
is read: an unknown key (``inference.tilesize``), a wrong type or a value out of range
(``inference.compress: bogus``, a tile size that is not a multiple of 4, ``batch_size < 1``) is
one :class:`~tml_cloudremoval.config.ConfigError` naming ``inference.<key>``. The defaults here
are the YAML defaults (a test proves they agree). Where the products go is the catalog's
business (``cloudfree_scenes``, ``scene_quicklooks``), not a parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tml_cloudremoval.config import bounds, from_params
from tml_cloudremoval.inference.shards import parse_shard

SECTION = "inference"

OutputDtype = Literal["uint16", "float32"]
Compression = Literal["deflate", "zstd", "lzw", "none"]
# --- outputs (issue 11, item 3) ---
OutputFormat = Literal["cog", "gtiff"]
OutputLayout = Literal["stack_10m", "native"]
FillMode = Literal["all", "clouds"]
BadScenePolicy = Literal["skip", "error"]


@dataclass(frozen=True)
class InferenceConfig:
    """Which scenes to clean, and how (tile sizes in px at 10 m).

    One scene (``s2_path`` + ``s1_path``) unless ``scenes_dir`` is set: then every
    ``<id><optical_suffix>.tif`` there with its ``<id><sar_suffix>.tif``. ``s2_path`` may be a
    GeoTIFF stack, a ``.SAFE`` folder or zip, or a TML-layout folder. ``dn_offset``: ``"auto"``
    (from the product metadata, else 0) or the offset as metadata states it (-1000: reflectance
    x 10000 = DN - 1000); ``allow_l2a``: run an L2A product (the model was trained on L1C).
    ``ensemble``: null (one model), ``"all"`` or a list of saved ``dsen2cr_model`` versions
    (``inference.ensemble``). ``shard``: ``"i/n"`` (0 <= i < n), the part of the scenes this
    run cleans (``inference.shards``), null: all; ``skip_existing``: scenes whose complete output
    exists, made by the same model and settings, are not cleaned again (``inference.resume``);
    ``on_bad_scene``: ``skip`` (a faulty scene of a folder is reported, the others go on) or
    ``error`` (the run stops; every input fault listed before any prediction).
    """

    s2_path: str = "data/01_raw/tml_scene/s2_cloudy.tif"
    s1_path: str | None = "data/01_raw/tml_scene/s1.tif"
    scenes_dir: str | None = None
    optical_suffix: str = "s2_cloudy"
    sar_suffix: str | None = "s1"
    tile_size: int = field(default=1280, metadata=bounds(8, multiple_of=4))
    overlap: int | None = field(default=None, metadata=bounds(0, multiple_of=4))
    batch_size: int = field(default=1, metadata=bounds(1))
    output_dtype: OutputDtype = "uint16"
    compress: Compression = "deflate"
    gdal_cache_mb: int = field(default=64, metadata=bounds(1))
    progress: bool = True
    quicklook_max_size: int = field(default=1024, metadata=bounds(16))
    # --- the model's contract (issue 11, part "contract"): settled in predict_cloudfree_scenes
    # by models.contract.settle_inference; null = the value of the model's contract.json.
    sar_method: Literal["mean", "linear_power"] | None = None
    override_contract: bool = False
    # --- outputs (issue 11, item 3) ---
    output_format: OutputFormat = "cog"
    output_layout: OutputLayout = "stack_10m"
    mask_path: str | None = None
    fill: FillMode = "all"
    feather_px: int = field(default=8, metadata=bounds(0, 256))
    # --- inputs users have (issue 11, item 2): radiometry and product level ---
    dn_offset: Literal["auto"] | int = "auto"
    allow_l2a: bool = False
    # --- uncertainty (issue 15): an ensemble of saved dsen2cr_model versions (inference.ensemble)
    ensemble: Literal["all"] | tuple[str, ...] | None = None
    # --- many scenes on many machines (issue 14, item 5) ---
    shard: str | None = None
    skip_existing: bool = True
    on_bad_scene: BadScenePolicy = "skip"

    @property
    def bad_scene_policy(self) -> BadScenePolicy:
        """``on_bad_scene`` for a folder of scenes; one scene (``s2_path``) stops at its fault:
        there are no others to go on with."""
        return self.on_bad_scene if self.scenes_dir else "error"

    def check(self) -> list[str]:
        """Cross-field faults ("key: message")."""
        faults = []
        if self.overlap is not None and self.overlap >= self.tile_size:
            faults.append(
                f"overlap: must be smaller than tile_size {self.tile_size}, got {self.overlap}"
            )
        if self.dn_offset != "auto" and not -10000 <= self.dn_offset <= 10000:
            faults.append(f"dn_offset: must be auto or in [-10000, 10000], got {self.dn_offset}")
        if not self.optical_suffix:
            faults.append("optical_suffix: must not be empty")
        if isinstance(self.ensemble, tuple):
            if len(set(self.ensemble)) < 2 or len(set(self.ensemble)) != len(self.ensemble):
                faults.append(
                    "ensemble: a list of at least 2 different dsen2cr_model versions, all or "
                    f"null; got {list(self.ensemble)}"
                )
        try:
            parse_shard(self.shard)
        except ValueError as exc:
            faults.append(f"shard: {exc}")
        return faults


def inference_config(params: Mapping[str, Any] | None) -> InferenceConfig:
    """``params:inference`` -> :class:`InferenceConfig`; raises ``ConfigError`` naming the key."""
    return from_params(InferenceConfig, params, SECTION)
