"""Catalog datasets for the generated sample data: the SEN12MS-CR tree and the TML scene.

Catalog::

    sen12mscr_sample:
      type: tml_cloudremoval.datasets.sample_folder_dataset.Sen12mscrSampleDataset
      filepath: ${globals:sample_paths.sen12mscr}
    tml_scene_sample:
      type: tml_cloudremoval.datasets.sample_folder_dataset.TmlSceneSampleDataset
      filepath: ${globals:sample_paths.tml_scene}

``save(product)`` takes the lazy product a sample_data node returns
(:class:`~tml_cloudremoval.data.synthetic.sen12mscr_sample.Sen12mscrSample` or
:class:`~tml_cloudremoval.data.synthetic.tml_scene.TmlSceneSample`) and writes it as the folder
``filepath`` with :func:`~tml_cloudremoval.data.synthetic.sample_folder.write_sample_folder`:
atomically, skipped when the folder holds the same product already (unless its ``overwrite``),
refused when the folder holds anything the generator did not write. ``load()`` gives the
SEN12MS-CR triplet table, or the TML scene's file paths.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from tml_cloudremoval.data.discovery import discover_triplets
from tml_cloudremoval.data.synthetic.s2_products import SCENE_PRODUCTS
from tml_cloudremoval.data.synthetic.sample_folder import (
    MANIFEST_NAME,
    SampleProduct,
    is_complete,
    write_sample_folder,
)
from tml_cloudremoval.data.synthetic.sen12mscr_sample import SEN12MSCR_KIND
from tml_cloudremoval.data.synthetic.tml_scene import TML_SCENE_FILES, TML_SCENE_KIND
from tml_cloudremoval.datasets.folder import FolderDataset

__all__ = ["SampleFolderDataset", "Sen12mscrSampleDataset", "TmlSceneSampleDataset"]

log = logging.getLogger(__name__)


class SampleFolderDataset(FolderDataset[SampleProduct, Any]):
    """A folder the sample generator writes as a whole (``kind`` names the product)."""

    kind: str = ""

    def save(self, data: SampleProduct) -> None:
        if getattr(data, "kind", None) != self.kind or not hasattr(data, "write_into"):
            raise TypeError(
                f"{type(self).__name__}.save needs a {self.kind!r} sample product, "
                f"got {type(data).__name__}"
            )
        summary = write_sample_folder(self._path, data)
        done = "up to date, skipped" if summary["skipped"] else f"written in {summary['seconds']} s"
        log.info("%s sample in %s: %d files, %s", self.kind, self._path, summary["n_files"], done)

    def _check_complete(self) -> None:
        if not is_complete(self._path, self.kind):
            raise FileNotFoundError(
                f"{self._path} holds no complete {self.kind!r} sample (no complete "
                f"{MANIFEST_NAME}): run `kedro run --pipelines sample_data`"
            )

    def _exists(self) -> bool:
        return is_complete(self._path, self.kind)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "kind": self.kind}


class Sen12mscrSampleDataset(SampleFolderDataset):
    """The synthetic SEN12MS-CR tree; ``load()`` -> its triplet table (official layout)."""

    kind = SEN12MSCR_KIND

    def load(self) -> pd.DataFrame:
        self._check_complete()
        return discover_triplets(self._path, layout="official")


class TmlSceneSampleDataset(SampleFolderDataset):
    """The sample TML scene; ``load()`` -> ``{"s2_cloudy": Path, "s1": Path}`` plus
    ``"s2_clear"`` where the scene has its cloud-free reference, and ``"safe"`` (.SAFE folder,
    baseline 02.09), ``"safe_zip"`` (zipped .SAFE, 04.00) and ``"tml_layout"`` (folder) where
    it was also written as those products."""

    kind = TML_SCENE_KIND

    def load(self) -> dict[str, Path]:
        self._check_complete()
        files = {**TML_SCENE_FILES, **SCENE_PRODUCTS}
        paths = {name: self._path / filename for name, filename in files.items()}
        return {name: path for name, path in paths.items() if path.exists()}
