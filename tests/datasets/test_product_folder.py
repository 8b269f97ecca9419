"""Product folders (GeoTIFF and PNG): lazy save, refusal of inputs as targets, load modes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from kedro.io import DatasetError

from tml_cloudremoval.datasets.geotiff_folder import GeoTiffFolderDataset
from tml_cloudremoval.datasets.png_folder import PngFolderDataset
from tml_cloudremoval.raster import write_geotiff_atomic

TRANSFORM = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5200000.0)


class FakeProduct:
    """A lazy product writing a fixed (H, W, C) array; records when it is computed."""

    def __init__(self, array: np.ndarray, sources=(), log=None) -> None:
        self.array, self.sources, self.log = array, tuple(sources), log if log is not None else []

    def write(self, path: Path) -> None:
        self.log.append(Path(path).name)
        write_geotiff_atomic(path, self.array, crs="EPSG:32632", transform=TRANSFORM)


def test_geotiff_folder_round_trip_in_every_mode(tmp_path):
    data = np.arange(4 * 5 * 3, dtype=np.uint16).reshape(4, 5, 3)
    folder = tmp_path / "cloudfree"
    ds = GeoTiffFolderDataset(filepath=str(folder), suffix="_cloudfree.tif")
    assert not ds.exists()
    ds.save({"a": FakeProduct(data), "b": FakeProduct(data + 1)})
    assert sorted(p.name for p in folder.iterdir()) == ["a_cloudfree.tif", "b_cloudfree.tif"]
    assert ds.exists()
    loaded = ds.load()
    assert sorted(loaded) == ["a", "b"]
    np.testing.assert_array_equal(loaded["b"](), data + 1)
    assert loaded["a"].path == folder / "a_cloudfree.tif"
    reader = GeoTiffFolderDataset(
        filepath=str(folder), suffix="_cloudfree.tif", load_args={"mode": "reader"}
    )
    with reader.load()["a"]() as src:
        assert isinstance(src, rasterio.io.DatasetReader) and src.transform == TRANSFORM
    paths = GeoTiffFolderDataset(
        filepath=str(folder), suffix="_cloudfree.tif", load_args={"mode": "path"}
    )
    assert paths.load()["a"]() == folder / "a_cloudfree.tif"


def test_save_refuses_inputs_as_targets_before_computing_anything(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    source = write_geotiff_atomic(folder / "x_cloudfree.tif", np.ones((4, 4, 1), np.uint16))
    before = source.read_bytes()
    log: list[str] = []
    ds = GeoTiffFolderDataset(
        filepath=str(tmp_path / "sub" / ".." / "out"), suffix="_cloudfree.tif"
    )
    products = {
        "a": FakeProduct(np.zeros((4, 4, 1), np.uint16), [source], log),  # fine on its own
        "x": FakeProduct(np.zeros((4, 4, 1), np.uint16), [source], log),  # its own input
    }
    with pytest.raises(
        DatasetError, match=r"x_cloudfree.tif: product 'x' would overwrite the input"
    ):
        ds.save(products)
    assert log == [] and source.read_bytes() == before


def test_save_rejects_what_is_not_a_lazy_product(tmp_path):
    ds = GeoTiffFolderDataset(filepath=str(tmp_path))
    with pytest.raises(DatasetError, match="'a/b'"):
        ds.save({"a/b": FakeProduct(np.zeros((2, 2, 1)))})
    with pytest.raises(DatasetError, match="'a'"):
        ds.save({"a": np.zeros((2, 2, 1))})
    with pytest.raises(DatasetError, match="load_args"):
        GeoTiffFolderDataset(filepath=str(tmp_path), load_args={"mode": "xarray"})


def test_load_skips_temporary_files_and_needs_the_folder(tmp_path):
    ds = PngFolderDataset(filepath=str(tmp_path / "ql"), suffix="_quicklook.png")
    with pytest.raises(DatasetError, match="does not exist"):
        ds.load()
    (tmp_path / "ql").mkdir()
    (tmp_path / "ql" / ".a_quicklook.png.1.abc.tmp").touch()
    (tmp_path / "ql" / "notes.txt").touch()
    assert ds.load() == {} and not ds.exists()


def test_png_folder_loads_rgba_arrays(tmp_path):
    import matplotlib.image

    class Png:
        sources = ()

        def write(self, path):
            matplotlib.image.imsave(path, np.full((6, 8, 3), 0.5), format="png")

    ds = PngFolderDataset(filepath=str(tmp_path / "ql"), suffix="_quicklook.png")
    ds.save({"s": Png()})
    image = ds.load()["s"]()
    assert image.shape == (6, 8, 4) and image.dtype == np.float32
    assert "_quicklook.png" in str(ds)
