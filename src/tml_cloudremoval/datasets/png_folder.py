"""``PngFolderDataset``: a folder of PNG images, one per scene (e.g. the quicklooks).

Catalog::

    scene_quicklooks:
      type: tml_cloudremoval.datasets.png_folder.PngFolderDataset
      filepath: data/08_reporting/quicklooks
      suffix: _quicklook.png

``load()`` gives ``{scene_id: loader}``; ``loader()`` returns the image as an (H, W, 4) float32
RGBA array in [0, 1] (``load_args: {mode: path}``: the file's path). ``save({scene_id: product})``
takes lazy products (see :mod:`tml_cloudremoval.datasets.product_folder`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tml_cloudremoval.datasets.product_folder import ProductFolderDataset


class PngFolderDataset(ProductFolderDataset):
    """Folder of ``<scene_id><suffix>`` PNGs; loads as RGBA arrays or paths."""

    DEFAULT_SUFFIX = ".png"
    LOAD_MODES = ("array", "path")

    def _load_one(self, path: Path, mode: str) -> Any:
        if mode == "array":
            import matplotlib.image

            return matplotlib.image.imread(path)
        return path
