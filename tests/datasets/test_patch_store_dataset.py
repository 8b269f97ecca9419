"""PatchStoreDataset: a patch store as a Kedro catalog entry (save lazily, load memory-mapped)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, DatasetError

from tml_cloudremoval.data.discovery import discover_triplets
from tml_cloudremoval.data.layout import official_paths
from tml_cloudremoval.data.patch_store import PatchStore
from tml_cloudremoval.data.triplets import TripletSamples, prepare_patch, read_triplet
from tml_cloudremoval.datasets.patch_store_dataset import PatchStoreDataset
from tml_cloudremoval.raster import write_geotiff_atomic

TYPE = "tml_cloudremoval.datasets.patch_store_dataset.PatchStoreDataset"


def _triplet_table(root: Path, n: int = 3) -> pd.DataFrame:
    """n tiny 16 x 16 triplets without CRS, official layout."""
    rng = np.random.default_rng(0)
    for i in range(n):
        paths = official_paths(root, "ROIs1158_spring", i, 1)
        s2 = rng.integers(100, 3000, (16, 16, 13), dtype=np.uint16)
        cloudy = s2.copy()
        cloudy[:8] = 6000
        write_geotiff_atomic(paths["s1"], rng.uniform(-25, -5, (16, 16, 2)).astype(np.float32))
        write_geotiff_atomic(paths["s2"], s2)
        write_geotiff_atomic(paths["s2_cloudy"], cloudy)
    return discover_triplets(root)


class _PlainSamples:
    """Anything sized and iterable with index/meta, no height/width attributes."""

    def __init__(self, samples, index, meta):
        self._samples, self.index, self.meta = samples, index, meta

    def __len__(self):
        return len(self._samples)

    def __iter__(self):
        return iter(self._samples)


def test_save_triplet_samples_then_load(tmp_path):
    table = _triplet_table(tmp_path / "raw")
    samples = TripletSamples(table, cloud_threshold=0.25, sar_method="linear_power")
    dataset = PatchStoreDataset(filepath=str(tmp_path / "store" / "train"))
    assert not dataset.exists()
    dataset.save(samples)
    assert dataset.exists()
    store = dataset.load()
    assert isinstance(store, PatchStore)
    assert len(store) == 3 and (store.height, store.width) == (16, 16)
    for i in range(3):
        expected = prepare_patch(read_triplet(table.iloc[i]), 0.25, "linear_power")
        for name, value in expected.items():
            np.testing.assert_array_equal(getattr(store, name)[i], value)
    assert store.index.equals(table)  # index.csv round trip, every column a str
    assert store.meta["cloud_threshold"] == 0.25 and store.meta["sar_method"] == "linear_power"
    assert "store/train" in str(dataset)


def test_save_plain_iterable_and_copy_a_store(tmp_path):
    sample = {
        "s2_cloudy": np.full((8, 8, 10), 7, np.uint16),
        "s2": np.full((8, 8, 10), 9, np.uint16),
        "s1": np.full((2, 2, 2), -12.0, np.float32),
        "mask": np.ones((8, 8), np.uint8),
    }
    index = pd.DataFrame({"scene_id": ["a", "b"], "patch": ["p1", "p2"]})
    first = PatchStoreDataset(filepath=str(tmp_path / "a"))
    first.save(_PlainSamples([sample, sample], index, {"note": "x"}))
    store = first.load()
    assert len(store) == 2 and store.meta["note"] == "x" and store.s2[1, 0, 0, 0] == 9
    copy = PatchStoreDataset(filepath=str(tmp_path / "b"))
    copy.save(store)
    copied = copy.load()
    for name in sample:
        np.testing.assert_array_equal(getattr(copied, name), getattr(store, name))


def test_save_rejects_what_it_cannot_write(tmp_path):
    dataset = PatchStoreDataset(filepath=str(tmp_path / "x"))
    with pytest.raises(DatasetError, match="needs a sized iterable of sample dicts"):
        dataset.save([{"s2": np.zeros((8, 8, 10))}])
    with pytest.raises(DatasetError, match="no samples to write"):
        dataset.save(_PlainSamples([], pd.DataFrame(), {}))
    with pytest.raises(DatasetError, match="is not a patch store"):
        dataset.load()


def test_catalog_entry_by_full_type_path(tmp_path):
    catalog = DataCatalog.from_config(
        {
            "train_patches": {
                "type": TYPE,
                "filepath": str(tmp_path / "train"),
                "metadata": {"kedro-viz": {"layer": "model_input"}},
            }
        }
    )
    table = _triplet_table(tmp_path / "raw", n=1)
    catalog.save("train_patches", TripletSamples(table, progress=False))
    assert catalog.exists("train_patches")
    assert len(catalog.load("train_patches")) == 1
