"""The inference pipeline run on small georeferenced scenes made here: the project's catalog
entries moved into a folder, a model in memory, SequentialRunner (tests/pipelines/inference)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
import yaml
from affine import Affine
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline
from kedro.runner import SequentialRunner
from rasterio.crs import CRS

from tml_cloudremoval.models.contract import ModelContract, SarNormalisation, TrainedModel
from tml_cloudremoval.pipelines.inference import create_pipeline
from tml_cloudremoval.raster import write_geotiff_atomic

PROJECT = Path(__file__).resolve().parents[2]
CATALOG_YML = PROJECT / "conf" / "base" / "catalog_inference.yml"
TRANSFORM = Affine(10.0, 0.0, 300000.0, 0.0, -10.0, 4500000.0)
CRS_UTM = CRS.from_epsg(32633)
ENTRIES = {
    "inference_plan",
    "cloud_masks",
    "cloudfree_scenes",
    "uncertainty_scenes",
    "epistemic_scenes",
    "scene_quicklooks",
    "inference_report",
    "inference_runs",
}


def write_tif(path: Path, array: np.ndarray, transform: Affine, nodata=None) -> Path:
    return write_geotiff_atomic(path, array, crs=CRS_UTM, transform=transform, nodata=nodata)


def make_pair(folder: Path, s2_name: str, s1_name: str, seed: int, x_shift: float = 0.0):
    rng = np.random.default_rng(seed)
    optical = rng.integers(200, 6000, (64, 72, 10)).astype(np.uint16)
    optical[:5, :] = 0  # a nodata strip
    sar = rng.uniform(-20, -5, (16, 18, 2)).astype(np.float32)
    s1_transform = Affine(40.0, 0.0, 300000.0 + x_shift, 0.0, -40.0, 4500000.0)
    return (
        write_tif(folder / s2_name, optical, TRANSFORM, nodata=0),
        write_tif(folder / s1_name, sar, s1_transform),
    )


def catalog_config(out: Path) -> dict:
    config = yaml.safe_load(CATALOG_YML.read_text())
    assert set(config) == ENTRIES
    for entry in config.values():
        key = "filepath" if "filepath" in entry else "path"
        entry[key] = str(out / entry[key])
    return config


CONTRACT = ModelContract(sar=SarNormalisation(method="mean"), cloud_threshold=0.2)


def run(
    model,
    params: dict,
    out: Path,
    config: dict | None = None,
    pipeline: Pipeline | None = None,
    catalog: DataCatalog | None = None,
) -> DataCatalog:
    """Run the pipeline (or ``pipeline``, a part of it) on ``model`` (a Keras model, or a loaded
    TrainedModel); ``catalog``: one from an earlier call, to go on with its datasets."""
    catalog = catalog or DataCatalog.from_config(config or catalog_config(out))
    trained = model if isinstance(model, TrainedModel) else TrainedModel(model, CONTRACT)
    catalog["dsen2cr_model"] = MemoryDataset(trained, copy_mode="assign")
    catalog["params:inference"] = MemoryDataset(params)
    SequentialRunner().run(pipeline or create_pipeline(), catalog)
    return catalog


def shard_output(catalog: DataCatalog, name: str, shard: str = "all") -> dict:
    """The part ``shard`` (a ``shards.shard_label``) of a per-shard output: ``inference_plan``,
    ``inference_report``."""
    return catalog.load(name)[shard]()


def base_params(**changes) -> dict:
    return {"tile_size": 48, "progress": False, "quicklook_max_size": 64, **changes}


def corrupt_first_block(path: Path) -> None:
    """Overwrite the first compressed block of band 1 with garbage: headers stay valid, the
    pixels of that block cannot be decoded."""
    with rasterio.open(path) as ds:
        offset = int(ds.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1))
        size = int(ds.get_tag_item("BLOCK_SIZE_0_0", "TIFF", bidx=1))
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(np.random.default_rng(0).integers(0, 255, size, dtype=np.uint8).tobytes())
