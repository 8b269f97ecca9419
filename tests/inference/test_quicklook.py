"""Quicklooks: before/after PNG, atomic, and the lazy product the pipeline hands the catalog."""

from __future__ import annotations

import numpy as np
import pytest

from tml_cloudremoval.inference.config import InferenceConfig
from tml_cloudremoval.inference.quicklook import Quicklook, quicklooks_of, read_rgb, write_quicklook
from tml_cloudremoval.inference.scene import predict_scene


def test_quicklook_png(model, scene, tmp_path):
    import matplotlib.image

    predict_scene(
        model,
        scene["s2"],
        scene["s1"],
        scene["out"],
        InferenceConfig(tile_size=48, progress=False, sar_method="mean"),
    )
    png = write_quicklook(scene["s2"], scene["out"], tmp_path / "ql" / "q.png", max_size=50)
    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[1] > image.shape[0] > 100
    assert not list(png.parent.glob(".*tmp"))


def test_read_rgb_is_decimated_reflectance(scene, h):
    rgb, valid = read_rgb(scene["s2"], max_size=54)  # 92 x 108 px -> factor 2
    assert rgb.shape == (46, 54, 3) and valid.shape == (46, 54)
    dn = h.make_optical()[1::2, 1::2]  # GDAL nearest: the centre pixel of each 2 x 2 block
    np.testing.assert_allclose(rgb, dn[..., [2, 1, 0]] / 10000.0, rtol=1e-6)  # B4 B3 B2
    np.testing.assert_array_equal(valid, ~(dn == 0).any(axis=-1))


def test_lazy_quicklook_writes_on_demand(scene, tmp_path):
    looks = quicklooks_of({"a": scene["s2"]}, {"a": scene["s2"]}, 32)
    look = looks["a"]
    assert isinstance(look, Quicklook) and look.sources == (scene["s2"], scene["s2"])
    assert not (tmp_path / "a.png").exists()
    assert look.write(tmp_path / "a.png").stat().st_size > 1000


def test_uncertainty_panel_beside_the_result(aleatoric, scene, tmp_path, h):
    from tml_cloudremoval.inference.quicklook import quicklook_figure, read_uncertainty
    from tml_cloudremoval.inference.scene import sibling_path

    config = InferenceConfig(tile_size=48, progress=False, sar_method="mean")
    predict_scene(aleatoric, scene["s2"], scene["s1"], scene["out"], config)
    unc = sibling_path(scene["out"], "aleatoric")
    mean = read_uncertainty(unc, max_size=54)  # 92 x 108 px -> factor 2, nearest
    std, _ = h.read(unc)
    want = std[1::2, 1::2].mean(axis=-1)
    assert mean.shape == (46, 54)
    np.testing.assert_array_equal(np.isnan(mean), np.isnan(want))  # nodata stays nodata
    np.testing.assert_allclose(mean[~np.isnan(want)], want[~np.isnan(want)], rtol=1e-6)
    fig = quicklook_figure(scene["s2"], scene["out"], 54, uncertainty={"aleatoric": unc})
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 3  # before, after, uncertainty
    bars = [ax for ax in fig.axes if ax not in images]
    assert len(bars) == 1 and "reflectance" in bars[0].get_ylabel()
    shown = images[2].images[0]
    assert shown.get_clim()[0] == 0 and shown.get_clim()[1] == pytest.approx(
        np.nanpercentile(mean, 98), rel=1e-5
    )
    look = quicklooks_of({"a": scene["s2"]}, {"a": scene["out"]}, 50, {"a": {"aleatoric": unc}})
    assert look["a"].sources == (scene["s2"], scene["out"], unc)
    import matplotlib.image

    wide = matplotlib.image.imread(look["a"].write(tmp_path / "q.png"))
    plain = matplotlib.image.imread(
        write_quicklook(scene["s2"], scene["out"], tmp_path / "p.png", 50)
    )
    assert wide.shape[1] > 1.4 * plain.shape[1]  # a third panel
