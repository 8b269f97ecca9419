"""``GeoTiffFolderDataset``: a folder of GeoTIFFs, one per scene (e.g. the cloud-free scenes).

Catalog::

    cloudfree_scenes:
      type: tml_cloudremoval.datasets.geotiff_folder.GeoTiffFolderDataset
      filepath: data/07_model_output/cloudfree
      suffix: _cloudfree.tif
      load_args:
        mode: array        # array: (H, W, C) numpy; reader: an open rasterio dataset; path

``catalog.load("cloudfree_scenes")`` gives ``{scene_id: loader}``; ``loader()`` reads that scene
(``loader.path`` is the file). ``save({scene_id: product})`` takes lazy products (see
:mod:`tml_cloudremoval.datasets.product_folder`): the tiled prediction streams into each file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import rasterio

from tml_cloudremoval.datasets.product_folder import ProductFolderDataset
from tml_cloudremoval.raster import read_raster


class GeoTiffFolderDataset(ProductFolderDataset):
    """Folder of ``<scene_id><suffix>`` GeoTIFFs; loads as arrays, rasterio readers or paths.

    A ``reader`` is an open ``rasterio`` dataset: close it (``with loader() as ds: ...``).
    """

    DEFAULT_SUFFIX = ".tif"
    LOAD_MODES = ("array", "reader", "path")

    def _load_one(self, path: Path, mode: str) -> Any:
        if mode == "array":
            return read_raster(path)
        if mode == "reader":
            return rasterio.open(path)
        return path
