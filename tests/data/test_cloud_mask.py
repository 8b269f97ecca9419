"""Tests of the cloud / cloud-shadow detector (tml_cloudremoval.data.cloud_mask).

The oracle is the literal transcription of the published DSen2-CR code kept in the module
(``*_reference``); hand-made arrays check values known by hand; the fast separable filters are
checked against scipy bit for bit.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.errors
import scipy.ndimage
import scipy.signal

from tml_cloudremoval.bands import S2_BAND_NAMES, band_indices
from tml_cloudremoval.data import cloud_mask as cm

B2, B8, B11 = band_indices(["B2", "B8", "B11"])


def read_channels_last(path: Path) -> np.ndarray:
    """A GeoTIFF as (H, W, C) in its file dtype (the nogeo samples carry no CRS: no warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            return np.moveaxis(src.read(), 0, -1)


def uniform_patch(size: int = 32, dtype: type = np.uint16, **dn: float) -> np.ndarray:
    """(size, size, 13) patch with every band at 0 DN except the named ones (e.g. B2=3000)."""
    patch = np.zeros((size, size, len(S2_BAND_NAMES)), dtype=dtype)
    for name, value in dn.items():
        patch[..., band_indices([name])[0]] = value
    return patch


# --- real samples ------------------------------------------------------------------------------


def cloudy_files(root: Path) -> list[Path]:
    return sorted(root.glob("*_s2_cloudy/s2_cloudy_*/*.tif"))


@pytest.mark.realdata
def test_agrees_with_oracle_on_every_real_sample(real_samples_root: Path) -> None:
    files = cloudy_files(real_samples_root)
    assert files, f"no cloudy S2 files under {real_samples_root}"
    agreement = {}
    for path in files:
        s2 = read_channels_last(path)
        project = cm.cloud_shadow_mask(s2)
        oracle = cm.cloud_shadow_mask_reference(s2)
        assert project.dtype == np.uint8 and project.shape == s2.shape[:2]
        agreement[path.name] = float(np.mean(project == oracle))
        np.testing.assert_allclose(cm.cloud_score(s2), cm.cloud_score_reference(s2), atol=1e-6)
    worst = min(agreement, key=agreement.get)
    assert agreement[worst] >= 0.995, f"{worst}: agreement {agreement[worst]:.4f} < 0.995"


FACTS = [
    # relative path, cloud-only fraction, cloud-or-shadow fraction (threshold 0.2)
    ("ROIs1970_fall_s2_cloudy/s2_cloudy_139/ROIs1970_fall_s2_cloudy_139_p839.tif", 0.560, 0.931),
    (
        "ROIs2017_winter_s2_cloudy/s2_cloudy_112/ROIs2017_winter_s2_cloudy_112_p797.tif",
        0.000,
        0.104,
    ),
]


@pytest.mark.realdata
@pytest.mark.parametrize(("relpath", "cloud_fraction", "cover_fraction"), FACTS)
def test_known_cloud_fractions(
    real_samples_root: Path, relpath: str, cloud_fraction: float, cover_fraction: float
) -> None:
    path = real_samples_root / relpath
    if not path.exists():
        pytest.skip(f"sample {path} not found")
    s2 = read_channels_last(path)
    oracle_cloud = cm.cloud_score_reference(s2) >= 0.2
    oracle_cover = cm.cloud_shadow_mask_reference(s2, cloud_threshold=0.2)
    assert oracle_cloud.mean() == pytest.approx(cloud_fraction, abs=5e-4)
    assert oracle_cover.mean() == pytest.approx(cover_fraction, abs=5e-4)
    assert cm.cloud_mask(s2, cloud_threshold=0.2).mean() == pytest.approx(cloud_fraction, abs=5e-4)
    assert cm.cloud_shadow_mask(s2, cloud_threshold=0.2).mean() == pytest.approx(
        cover_fraction, abs=5e-4
    )


# --- hand-made arrays --------------------------------------------------------------------------


def test_all_dark_image_has_no_cloud_and_no_shadow() -> None:
    dark = uniform_patch(16)  # every band 0 DN: B3 + B11 == 0 everywhere
    score = cm.cloud_score(dark)
    assert score.dtype == np.float32 and score.shape == (16, 16)
    np.testing.assert_array_equal(score, np.float32(1e-5))  # r(B2=0) = -0.25, clipped up
    assert not cm.cloud_mask(dark).any()
    assert not cm.shadow_mask(dark).any()  # CSI == T3 nowhere below it
    mask = cm.cloud_shadow_mask(dark)
    assert mask.dtype == np.uint8 and not mask.any()


# A uniform 32 x 32 patch whose binding score term is 0.5: the closing leaves a constant image
# alone and the 7 x 7 box mean away from the zero-padded border is the constant itself.
BRIGHT = {"B1": 5000, "B2": 5000, "B3": 5000, "B4": 5000, "B10": 5000, "B11": 5000}
BINDING_TERMS = {
    "r(B2,[0.1,0.5])": {**BRIGHT, "B2": 3000},  # (0.3 - 0.1) / 0.4
    "r(B1,[0.1,0.3])": {**BRIGHT, "B1": 2000, "B10": 1000},  # (0.2 - 0.1) / 0.2
    "r(B1+B10,[0.15,0.2])": {**BRIGHT, "B1": 3000, "B10": -1250},  # (0.175 - 0.15) / 0.05
    "r(B4+B3+B2,[0.2,0.8])": {**BRIGHT, "B3": 0, "B4": 0, "B11": 1000},  # (0.5 - 0.2) / 0.6
    "r(NDSI,[0.8,0.6])": {**BRIGHT, "B3": 8500, "B11": 1500},  # NDSI 0.7: (0.7 - 0.8) / -0.2
}


@pytest.mark.parametrize("term", list(BINDING_TERMS))
def test_each_score_term_by_hand(term: str) -> None:
    patch = uniform_patch(32, np.float32, **BINDING_TERMS[term])
    score = cm.cloud_score(patch)
    centre = score[3:-3, 3:-3]
    np.testing.assert_allclose(centre, 0.5, atol=1e-6)
    np.testing.assert_allclose(score, cm.cloud_score_reference(patch), atol=1e-6)
    assert cm.cloud_mask(patch, cloud_threshold=0.4)[3:-3, 3:-3].all()
    assert not cm.cloud_mask(patch, cloud_threshold=0.6).any()


def test_ndsi_zero_denominator_counts_as_ndsi_zero() -> None:
    # B3 = B11 = 0 would be 0 / 0; the 0.001 rule makes NDSI 0, r(0, [0.8, 0.6]) = 4 > 1
    patch = uniform_patch(32, **{**BRIGHT, "B3": 0, "B11": 0, "B4": 10000})
    score = cm.cloud_score(patch)
    assert np.isfinite(score).all()
    np.testing.assert_allclose(score[3:-3, 3:-3], 1.0, atol=1e-6)
    assert cm.cloud_mask(patch)[3:-3, 3:-3].all()


def test_snow_is_not_cloud() -> None:
    # NDSI = (0.5 - 0.05) / 0.55 = 0.818 > 0.8 -> r < 0: bright but snowy
    patch = uniform_patch(32, **{**BRIGHT, "B11": 500})
    assert not cm.cloud_mask(patch).any()


def test_bright_block_on_dark_ground() -> None:
    # block score 1 (BRIGHT); ground score r(B2 = 0.05) = -0.125, the minimum of its terms
    # (r(B1) = 0, r(B1 + B10) = 1, r(B4 + B3 + B2) = -0.083, r(NDSI = 0) = 4)
    patch = uniform_patch(40, B1=1000, B2=500, B3=500, B4=500, B10=1000, B11=500)
    patch[10:30, 12:28] = uniform_patch(1, **BRIGHT)[0, 0]
    inside = np.zeros((40, 40), dtype=bool)
    inside[10:30, 12:28] = True
    # box mean at a pixel far from the image border = (n - 0.125 (49 - n)) / 49, with n the block
    # pixels in its 7 x 7 window; cloud (threshold 0.2) exactly where n >= 15
    n = scipy.signal.convolve2d(inside.astype(int), np.ones((7, 7), dtype=int), mode="same")
    expected_score = (n - 0.125 * (49 - n)) / 49
    score = cm.cloud_score(patch)
    core = (slice(3, -3), slice(3, -3))
    np.testing.assert_allclose(score[core], np.clip(expected_score, 1e-5, 1)[core], atol=1e-6)
    np.testing.assert_array_equal(cm.cloud_mask(patch)[core], (n >= 15)[core])
    assert cm.cloud_mask(patch)[10:30, 12:28].all()
    assert not cm.cloud_mask(patch)[:5].any()


def shadow_scene(block_dn: dict[str, int]) -> np.ndarray:
    """32 x 32 ground (B2 0.1, B8 = B11 0.3), a 12 x 12 block of other values at [8:20, 8:20]."""
    patch = uniform_patch(32, B2=1000, B8=3000, B11=3000)
    for name, value in block_dn.items():
        patch[8:20, 8:20, band_indices([name])[0]] = value
    return patch


def test_dark_block_is_shadow_after_median() -> None:
    # block CSI 0.05, mean CSI 0.3 - 0.25 * 144 / 1024 -> T3 = 0.05 + 0.75 (0.2648 - 0.05) = 0.211
    # block B2 0.02 < T4 = 0.02 + 5/6 (0.0888 - 0.02) = 0.077; ground fails CSI < T3
    patch = shadow_scene({"B2": 200, "B8": 500, "B11": 500})
    raw = np.zeros((32, 32), dtype=bool)
    raw[8:20, 8:20] = True
    # 5 x 5 median of a binary square: 1 where >= 13 of the 25 neighbours are 1
    n = scipy.signal.convolve2d(raw.astype(int), np.ones((5, 5), dtype=int), mode="same")
    shadow = cm.shadow_mask(patch)
    np.testing.assert_array_equal(shadow, n >= 13)
    assert not shadow[8, 8] and shadow[9, 9]  # the corner pixel has 9 of 25, its neighbour 16
    np.testing.assert_array_equal(shadow, cm.shadow_mask_reference(patch))


def test_shadow_needs_dark_blue_too() -> None:
    # dark NIR/SWIR but bright blue (B2 0.5 > T4 = 0.1 + 5/6 * 0.05625 = 0.147): not shadow
    patch = shadow_scene({"B2": 5000, "B8": 500, "B11": 500})
    assert not cm.shadow_mask(patch).any()


def test_single_shadow_pixel_is_removed_by_median() -> None:
    patch = shadow_scene({})
    patch[16, 16, [B2, B8, B11]] = (200, 500, 500)
    assert not cm.shadow_mask(patch).any()


def test_cloud_shadow_mask_is_union_and_threshold_monotone() -> None:
    rng = np.random.default_rng(7)
    patch = rng.integers(0, 6000, size=(48, 40, 13), dtype=np.uint16)
    union = cm.cloud_mask(patch) | cm.shadow_mask(patch)
    mask = cm.cloud_shadow_mask(patch)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
    np.testing.assert_array_equal(mask, union.astype(np.uint8))
    assert not (cm.cloud_mask(patch, 0.5) & ~cm.cloud_mask(patch, 0.2)).any()
    np.testing.assert_array_equal(mask, cm.cloud_shadow_mask_reference(patch))


# --- the fast filters equal scipy's ------------------------------------------------------------

SHAPES = [(1, 1), (1, 6), (2, 3), (4, 1), (5, 5), (7, 9), (31, 17), (64, 64)]


@pytest.mark.parametrize("shape", SHAPES)
def test_separable_filters_equal_scipy(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape).astype(np.float32)
    np.testing.assert_array_equal(cm.grey_closing(x), scipy.ndimage.grey_closing(x, size=(5, 5)))

    ints = rng.integers(-50, 50, size=shape)
    np.testing.assert_array_equal(
        cm.box_sum(ints, 7), scipy.signal.convolve2d(ints, np.ones((7, 7), dtype=int), mode="same")
    )
    np.testing.assert_allclose(
        cm.box_sum(x, 7) / 49,
        scipy.signal.convolve2d(x, np.ones((7, 7)) / 49, mode="same"),
        atol=1e-6,
    )

    for p in (0.2, 0.5, 0.8):
        binary = rng.random(shape) < p
        median = cm.binary_median(binary, 5)
        assert median.dtype == np.bool_
        np.testing.assert_array_equal(
            median, scipy.signal.medfilt2d(binary.astype(np.float32), 5) > 0
        )
        np.testing.assert_array_equal(
            median, scipy.ndimage.median_filter(binary, size=5, mode="constant")
        )


# --- input validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape", [(32, 32, 10), (13, 32, 32), (32, 32), (2, 32, 32, 13), (0, 32, 13)]
)
@pytest.mark.parametrize(
    "fn", [cm.cloud_score, cm.cloud_mask, cm.shadow_mask, cm.cloud_shadow_mask]
)
def test_bad_shape_is_a_clear_error(shape: tuple[int, ...], fn) -> None:
    with pytest.raises(ValueError, match=r"\(H, W, 13\)|non-empty"):
        fn(np.zeros(shape, dtype=np.uint16))


def test_bad_dtype_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="dtype"):
        cm.cloud_shadow_mask(np.zeros((8, 8, 13), dtype=complex))
