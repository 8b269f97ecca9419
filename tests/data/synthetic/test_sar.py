"""synthetic/sar.py: backscatter tied to land cover, speckle, missing pixels."""

from __future__ import annotations

import numpy as np

from tml_cloudremoval.data.synthetic.ground import synthesize_ground
from tml_cloudremoval.data.synthetic.sar import add_nan_pixels, sar_backscatter_linear, speckle_db
from tml_cloudremoval.data.synthetic.spectra import BARE_SOIL, URBAN, VEGETATION, WATER


def test_sar_is_tied_to_land_cover() -> None:
    rng = np.random.default_rng(3)
    ground = synthesize_ground(rng, (256, 256), "summer", scale_px=24.0)
    db = 10.0 * np.log10(sar_backscatter_linear(rng, ground))
    vv = {c: np.median(db[..., 0][ground.classes == c]) for c in range(4)}
    vh = {c: np.median(db[..., 1][ground.classes == c]) for c in range(4)}
    assert all((ground.classes == c).any() for c in range(4))
    assert vv[WATER] < vv[BARE_SOIL] < vv[VEGETATION] < vv[URBAN]
    assert all(vh[c] < vv[c] for c in range(4))
    speckled = speckle_db(rng, sar_backscatter_linear(rng, ground), looks=4.4)
    assert speckled.dtype == np.float32 and np.isfinite(speckled).all()


def test_nan_pixels_in_all_channels_at_least_one() -> None:
    sar = np.zeros((20, 10, 2), np.float32)
    out = add_nan_pixels(np.random.default_rng(0), sar, fraction=0.1)
    nan = np.isnan(out)
    assert (nan[..., 0] == nan[..., 1]).all() and nan[..., 0].sum() == 20
    few = add_nan_pixels(np.random.default_rng(0), np.zeros((8, 8, 2), np.float32), 1e-6)
    assert np.isnan(few[..., 0]).sum() == 1
