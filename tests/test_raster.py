"""raster.py: headers, windowed channels_last reads, clear errors, atomic GeoTIFF writes."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from tml_cloudremoval.raster import (
    RasterError,
    RasterHeader,
    read_header,
    read_raster,
    write_geotiff_atomic,
)

UTM = CRS.from_epsg(32631)
TRANSFORM = Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 5000000.0)


def _image(shape=(12, 8, 3), dtype=np.uint16) -> np.ndarray:
    return np.arange(np.prod(shape), dtype=np.float64).reshape(shape).astype(dtype)


@pytest.fixture
def geo_tif(tmp_path: Path) -> tuple[Path, np.ndarray]:
    image = _image()
    path = write_geotiff_atomic(
        tmp_path / "geo.tif",
        image,
        crs=UTM,
        transform=TRANSFORM,
        nodata=0,
        descriptions=["B2", "B3", "B4"],
    )
    return path, image


def _truncated_copy(tmp_path: Path) -> Path:
    """An uncompressed, striped 13-band TIFF cut in half (opens, but its data is gone)."""
    full = tmp_path / "full.tif"
    image = _image((64, 64, 13))
    write_geotiff_atomic(full, image, tiled=False, compress=None)
    data = full.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: len(data) // 2])
    return cut


def test_roundtrip_keeps_values_grid_and_band_names(geo_tif):
    path, image = geo_tif
    header = read_header(path)
    assert isinstance(header, RasterHeader)
    assert (header.count, header.dtype, header.width, header.height) == (3, "uint16", 8, 12)
    assert header.crs == UTM
    assert header.transform == TRANSFORM
    assert header.nodata == 0
    assert header.descriptions == ("B2", "B3", "B4")
    assert header.georeferenced
    assert header.shape == (12, 8, 3)
    out = read_raster(path)
    assert out.dtype == np.uint16
    assert out.shape == (12, 8, 3)
    np.testing.assert_array_equal(out, image)
    with rasterio.open(path) as ds:
        assert ds.profile["tiled"] and ds.profile["compress"] == "deflate"


def test_window_and_band_selection(geo_tif):
    path, image = geo_tif
    np.testing.assert_array_equal(read_raster(path, window=Window(2, 4, 3, 5)), image[4:9, 2:5, :])
    np.testing.assert_array_equal(
        read_raster(path, window=(slice(4, 9), slice(2, 5)), bands=[2, 0]),
        image[4:9, 2:5][..., [2, 0]],
    )


@pytest.mark.parametrize(
    "window", [Window(6, 0, 4, 4), Window(0, -1, 2, 2), (slice(10, 14), slice(0, 2))]
)
def test_window_outside_image_names_file(geo_tif, window):
    path, _ = geo_tif
    with pytest.raises(RasterError, match="not inside the 12x8 image") as err:
        read_raster(path, window=window)
    assert str(path) in str(err.value)


def test_band_position_out_of_range_names_file(geo_tif):
    path, _ = geo_tif
    with pytest.raises(RasterError, match=r"band positions \[3\] out of range") as err:
        read_raster(path, bands=[0, 3])
    assert err.value.path == path


def test_file_without_crs_reads_without_warning(tmp_path):
    image = _image((8, 8, 2), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = write_geotiff_atomic(tmp_path / "nogeo.tif", image)
        header = read_header(path)
        out = read_raster(path)
    assert header.crs is None
    assert header.transform == Affine.identity()
    assert not header.georeferenced
    np.testing.assert_array_equal(out, image)
    with rasterio.open(path) as ds:
        assert ds.crs is None  # nothing invented on write


def test_nodata_to_nan_for_float_files(tmp_path):
    image = np.array([[[1.0], [-9999.0]]], dtype=np.float32)
    path = write_geotiff_atomic(tmp_path / "s1.tif", image, nodata=-9999.0)
    assert read_raster(path)[0, 1, 0] == -9999.0
    out = read_raster(path, nodata_to_nan=True)
    assert out[0, 0, 0] == 1.0 and np.isnan(out[0, 1, 0])


def test_missing_file_names_path_and_fault(tmp_path):
    path = tmp_path / "nope.tif"
    for call in (read_header, read_raster):
        with pytest.raises(RasterError, match="file does not exist") as err:
            call(path)
        assert str(err.value).startswith(str(path))
    assert issubclass(RasterError, ValueError)


def test_raster_error_pickles_whole():
    """Errors raised in worker processes travel by pickle: path and fault must survive."""
    import pickle

    err = pickle.loads(pickle.dumps(RasterError(Path("/x/a.tif"), "truncated")))
    assert isinstance(err, RasterError)
    assert (err.path, err.fault, str(err)) == (Path("/x/a.tif"), "truncated", "/x/a.tif: truncated")


@pytest.mark.parametrize(
    ("content", "fault"),
    [(b"", "file is empty"), (b"not a tiff at all" * 8, "not a readable GeoTIFF")],
)
def test_corrupt_file_names_path_and_fault(tmp_path, content, fault):
    path = tmp_path / "bad.tif"
    path.write_bytes(content)
    with pytest.raises(RasterError, match=fault) as err:
        read_header(path)
    assert err.value.path == path and str(path) in str(err.value)


def test_truncated_tiff_caught_by_header_and_by_read(tmp_path):
    cut = _truncated_copy(tmp_path)
    with pytest.raises(RasterError, match="truncated: pixel data should end at byte") as err:
        read_header(cut)
    assert str(cut) in str(err.value)
    with pytest.raises(RasterError, match="unreadable, truncated or corrupt") as err:
        read_raster(cut)
    assert str(cut) in str(err.value)
    read_header(tmp_path / "full.tif")  # the intact original passes


def test_write_refuses_to_overwrite_an_input(geo_tif):
    path, image = geo_tif
    before = path.read_bytes()
    with pytest.raises(RasterError, match="refusing to overwrite an input file"):
        write_geotiff_atomic(path, image, inputs=[path])
    assert path.read_bytes() == before


def test_failed_write_keeps_old_file_and_leaves_no_temp(geo_tif):
    path, _ = geo_tif
    before = path.read_bytes()
    with pytest.raises(TypeError, match="invalid dtype"):  # rasterio has no bool rasters
        write_geotiff_atomic(path, np.zeros((4, 4, 1), dtype=bool))
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["geo.tif"]


def test_write_checks_shape_and_descriptions(tmp_path):
    with pytest.raises(RasterError, match=r"expected an \(H, W, C\) array"):
        write_geotiff_atomic(tmp_path / "x.tif", np.zeros(4))
    with pytest.raises(RasterError, match="1 band descriptions given for 2 bands"):
        write_geotiff_atomic(tmp_path / "x.tif", np.zeros((4, 4, 2)), descriptions=["a"])
    out = write_geotiff_atomic(tmp_path / "sub" / "m.tif", np.ones((4, 4), np.uint8), tiled=False)
    assert read_raster(out).shape == (4, 4, 1)


def test_write_converts_dtype(tmp_path):
    out = write_geotiff_atomic(tmp_path / "f.tif", np.full((4, 4, 1), 3.0), dtype="float32")
    assert read_header(out).dtype == "float32"


def test_written_file_has_the_usual_permissions(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    path = write_geotiff_atomic(tmp_path / "p.tif", np.zeros((4, 4, 1), np.uint8))
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
