"""Scene writer: rows to whole blocks, atomic rename, compression, tags, model units -> DN."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from tml_cloudremoval.bands import TML_BAND_NAMES
from tml_cloudremoval.inference.reader import inspect_optical
from tml_cloudremoval.inference.writer import (
    BackgroundRowWriter,
    SceneWriter,
    output_nodata,
    to_output,
)


def test_writer_buffers_rows_to_whole_blocks(tmp_path, h):
    info = inspect_optical(h.write_tif(tmp_path / "like.tif", np.zeros((600, 70, 10), np.uint16)))
    rng = np.random.default_rng(4)
    data = rng.integers(1, 10000, (600, 70, 10)).astype(np.uint16)
    path = tmp_path / "w.tif"
    with SceneWriter(path, info, dtype="uint16", nodata=0) as writer:
        for y0, y1 in ((0, 356), (356, 400), (400, 401), (401, 600)):  # direct + buffered
            writer.write_rows(y0, data[y0:y1])
        with pytest.raises(ValueError, match="in order"):
            writer.write_rows(5, data[:1])
    np.testing.assert_array_equal(h.read(path)[0], data)
    with pytest.raises(RuntimeError, match="only 100 of 600 rows"):
        with SceneWriter(tmp_path / "short.tif", info) as writer:
            writer.write_rows(0, data[:100])
    assert not (tmp_path / "short.tif").exists()


def test_to_output_matches_normalise_and_keeps_nodata_distinct():
    from tml_cloudremoval.normalise import (
        OPTICAL_CLIP_DN,
        denormalise_optical,
        optical_to_dn_uint16,
    )

    rng = np.random.default_rng(5)
    values = rng.uniform(-0.5, 5.5, (7, 9, 10)).astype(np.float32)
    values[0, 0] = 0.0
    valid = np.ones((7, 9), bool)
    valid[3] = False
    out = to_output(values, valid, "uint16", 0.0)
    expected = optical_to_dn_uint16(values)
    expected[expected == 0] = 1  # valid DN 0 (e.g. negative predictions) would read as nodata
    np.testing.assert_array_equal(out[valid], expected[valid])
    assert (out[~valid] == 0).all()
    out = to_output(values, None, "float32", None)
    np.testing.assert_array_equal(out, np.clip(denormalise_optical(values), *OPTICAL_CLIP_DN))


@pytest.mark.parametrize(("compress", "expected"), [("zstd", "zstd"), ("none", None)])
def test_writer_compression_option(tmp_path, compress, expected, h):
    info = inspect_optical(h.write_tif(tmp_path / "like.tif", np.zeros((40, 30, 10), np.uint16)))
    data = np.arange(40 * 30 * 10, dtype=np.uint16).reshape(40, 30, 10)
    with SceneWriter(tmp_path / "c.tif", info, compress=compress) as writer:
        writer.write_rows(0, data)
    with rasterio.open(tmp_path / "c.tif") as ds:
        assert (ds.compression.name.lower() if ds.compression else None) == expected
        np.testing.assert_array_equal(np.moveaxis(ds.read(), 0, -1), data)


def test_output_nodata_keeps_what_the_type_can_hold():
    assert output_nodata(None, "uint16") is None
    assert output_nodata(None, "uint16", "float32") == 0.0  # a float input's NaN is nodata
    assert np.isnan(output_nodata(None, "float32", "float64"))
    assert output_nodata(None, "float32", "int16") is None
    assert output_nodata(0.0, "uint16") == 0.0 and output_nodata(65535.0, "uint16") == 65535.0
    assert output_nodata(float("nan"), "uint16") == 0.0 and output_nodata(-1.0, "uint16") == 0.0
    assert output_nodata(0.5, "uint16") == 0.0 and np.isnan(output_nodata(float("nan"), "float32"))


def test_tags_and_background_writer(tmp_path, h):
    info = inspect_optical(h.write_tif(tmp_path / "like.tif", np.zeros((300, 20, 10), np.uint16)))
    values = np.full((300, 20, 10), 0.5, np.float32)  # 1000 DN
    valid = np.ones((300, 20), bool)
    valid[:3] = False
    path = tmp_path / "bg.tif"
    with SceneWriter(path, info, nodata=0, tags={"A": "1"}) as writer:
        with BackgroundRowWriter(writer, "uint16", 0.0) as sink:
            for y0 in range(0, 300, 128):
                sink(y0, values[y0 : y0 + 128], valid[y0 : y0 + 128])
        writer.update_tags(B="2")
    with rasterio.open(path) as ds:
        assert ds.tags()["A"] == "1" and ds.tags()["B"] == "2"
        out = np.moveaxis(ds.read(), 0, -1)
    assert (out[:3] == 0).all() and (out[3:] == 1000).all()


def test_background_writer_raises_the_write_error(tmp_path, h):
    info = inspect_optical(h.write_tif(tmp_path / "like.tif", np.zeros((8, 8, 10), np.uint16)))
    with pytest.raises(ValueError, match="rows must come in order"):
        with (
            SceneWriter(tmp_path / "x.tif", info) as writer,
            BackgroundRowWriter(writer, "uint16", None) as sink,
        ):
            sink(4, np.zeros((4, 8, 10), np.float32), None)
    assert list(tmp_path.iterdir()) == [tmp_path / "like.tif"]


# --- Cloud-Optimised GeoTIFF (issue 11, item 3) ------------------------------------------------


def _cog_written(tmp_path, output_format, height=600, width=700):
    from types import SimpleNamespace

    from affine import Affine
    from rasterio.crs import CRS

    grid = SimpleNamespace(
        height=height,
        width=width,
        crs=CRS.from_epsg(32632),
        transform=Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5200000.0),
    )
    rng = np.random.default_rng(3)
    rows = rng.integers(1, 10000, (height, width, 10)).astype(np.uint16)
    rows[:5, :7] = 0
    path = tmp_path / f"scene_{output_format}.tif"
    with SceneWriter(path, grid, nodata=0, output_format=output_format) as writer:
        for y0 in range(0, height, 100):
            writer.write_rows(y0, rows[y0 : y0 + 100])
        writer.update_tags(TML_INFERENCE='{"a": 1}')
    return path, rows, grid


def test_cog_output_passes_the_layout_check_and_keeps_pixels_grid_and_tags(tmp_path):
    from tml_cloudremoval.inference.cog import cog_layout_faults

    path, rows, grid = _cog_written(tmp_path, "cog")
    assert cog_layout_faults(path) == []
    with rasterio.open(path) as ds:
        assert np.array_equal(np.moveaxis(ds.read(), 0, -1), rows)
        assert ds.transform == grid.transform and ds.crs == grid.crs and ds.nodata == 0
        assert ds.descriptions == tuple(TML_BAND_NAMES)
        assert ds.scales == (1e-4,) * 10 and ds.offsets == (0.0,) * 10
        assert ds.tags()["TML_INFERENCE"] == '{"a": 1}'
        assert ds.overviews(1) and ds.block_shapes[0] == (512, 512)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # stream removed


def test_gtiff_output_is_not_a_cog_and_the_check_says_why(tmp_path):
    from tml_cloudremoval.inference.cog import cog_layout_faults

    path, rows, _ = _cog_written(tmp_path, "gtiff")
    faults = cog_layout_faults(path)
    assert any("LAYOUT=COG" in f for f in faults) and any("overviews" in f for f in faults)
    with rasterio.open(path) as ds:
        assert np.array_equal(np.moveaxis(ds.read(), 0, -1), rows)


def test_cog_writer_failure_leaves_no_file_and_no_temporary(tmp_path):
    from types import SimpleNamespace

    from affine import Affine

    grid = SimpleNamespace(height=40, width=30, crs=None, transform=Affine.identity())
    path = tmp_path / "broken.tif"
    with pytest.raises(RuntimeError, match="only 20 of 40"):
        with SceneWriter(path, grid, output_format="cog") as writer:
            writer.write_rows(0, np.ones((20, 30, 10), np.uint16))
    assert list(tmp_path.iterdir()) == []


def test_cog_copy_out_of_room_is_an_output_write_error_and_keeps_the_old_file(
    tmp_path, monkeypatch
):
    import errno

    from tml_cloudremoval.inference import writer as writer_module
    from tml_cloudremoval.output_errors import OutputWriteError

    path, _, grid = _cog_written(tmp_path, "cog", height=40, width=30)
    before = path.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer_module, "copy_to_cog", full)
    with pytest.raises(OutputWriteError, match=path.name):
        with SceneWriter(path, grid, output_format="cog") as writer:
            writer.write_rows(0, np.ones((40, 30, 10), np.uint16))
    assert path.read_bytes() == before  # the previous product is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # both temporaries gone
