"""Tests of the synthetic sample data generator (tiny sizes; real values, no timings)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from scipy import ndimage

from tml_cloudremoval.bands import S1_BAND_NAMES, S2_BAND_NAMES, TML_BAND_NAMES, band_indices
from tml_cloudremoval.data import sample_data as sd
from tml_cloudremoval.data.cloud_mask import cloud_mask, cloud_shadow_mask

SEASONS = ["ROIs1158_spring", "ROIs2017_winter"]
TINY = {
    "seasons": SEASONS,
    "scenes_per_season": 1,
    "patch_grid": [1, 2],
    "patch_size": 64,
    "patch_stride": 32,
    "cloud_cover": [0.3, 0.6],
    "land_cover_scale_px": 12.0,
    "cloud_scale_px": 16.0,
    "shadow_distance_px": [4.0, 8.0],
}
TINY_SCENE = {
    "height": 96,
    "width": 80,
    "cloud_cover": 0.4,
    "land_cover_scale_px": 16.0,
    "cloud_scale_px": 20.0,
    "shadow_distance_px": [4.0, 8.0],
    "s1_offset_px": [6, 9],
}
B2, B8, B10, B11 = band_indices(["B2", "B8", "B10", "B11"])


def _read(path: Path) -> tuple[np.ndarray, rasterio.profiles.Profile, tuple]:
    with rasterio.open(path) as src:
        return np.moveaxis(src.read(), 0, -1), src.profile, src.descriptions


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sample") / "sen12mscr"
    summary = sd.make_sen12mscr_sample(root, seed=7, **TINY)
    assert summary["skipped"] is False
    return root


@pytest.fixture(scope="module")
def tiny_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scene") / "tml_scene"
    sd.make_tml_scene(root, seed=7, **TINY_SCENE)
    return root


def _patch(seed: int, cover: float, size: int = 128):
    """Ground, cloud layers, clear and cloudy 13-band DN of one in-memory patch."""
    rng = np.random.default_rng(seed)
    ground = sd.synthesize_ground(rng, (size, size), "summer", scale_px=24.0)
    layers = sd.synthesize_clouds(
        rng, (size, size), cover, scale_px=24.0, thin_probability=0.0, shadow_offset_px=(10, -8)
    )
    clear = sd.reflectance_to_dn(sd.observe_optical(rng, ground.reflectance))
    cloudy = sd.reflectance_to_dn(sd.render_cloudy(rng, ground.reflectance, layers))
    return ground, layers, clear, cloudy


# --- (A) SEN12MS-CR layout --------------------------------------------------------------------
def test_official_layout_and_manifest(tiny_root: Path) -> None:
    found = sorted(str(p.relative_to(tiny_root)) for p in tiny_root.rglob("*.tif"))
    expected = sorted(
        rel for s in SEASONS for p in (1, 2) for rel in sd.sen12mscr_relpaths(s, 1, p)
    )
    assert found == expected
    assert "ROIs1158_spring_s2_cloudy/s2_cloudy_1/ROIs1158_spring_s2_cloudy_1_p2.tif" in found
    manifest = json.loads((tiny_root / sd.MANIFEST_NAME).read_text())
    assert manifest["status"] == "complete"
    assert sorted(manifest["files"]) == expected
    assert manifest["settings"]["seed"] == 7
    assert [t["scene_id"] for t in manifest["triplets"]] == [
        f"{s}_1" for s in SEASONS for _ in "ab"
    ]
    assert sd.sample_dataset_exists(tiny_root)
    assert not sd.sample_scene_exists(tiny_root)
    assert not sd.sample_dataset_exists(tiny_root / "nowhere")


def test_file_contents_dtypes_bands_georef(tiny_root: Path) -> None:
    rel_s1, rel_s2, rel_cloudy = sd.sen12mscr_relpaths(SEASONS[0], 1, 1)
    s1, p1, d1 = _read(tiny_root / rel_s1)
    s2, p2, d2 = _read(tiny_root / rel_s2)
    cloudy, pc, dc = _read(tiny_root / rel_cloudy)
    assert s1.shape == (64, 64, 2) and s1.dtype == np.float32 and d1 == S1_BAND_NAMES
    assert s2.shape == (64, 64, 13) and s2.dtype == np.uint16 and d2 == S2_BAND_NAMES
    assert cloudy.shape == (64, 64, 13) and cloudy.dtype == np.uint16 and dc == S2_BAND_NAMES
    for profile in (p1, p2, pc):
        assert profile["crs"] == p1["crs"] and profile["transform"] == p1["transform"]
    epsg = p1["crs"].to_epsg()
    assert 32601 <= epsg <= 32660  # UTM north
    t = p1["transform"]
    assert (t.a, t.e, t.b, t.d) == (10.0, -10.0, 0.0, 0.0)
    # the neighbouring patch p2 lies patch_stride px (320 m) east, same row
    _, p_next, _ = _read(tiny_root / sd.sen12mscr_relpaths(SEASONS[0], 1, 2)[0])
    assert p_next["crs"] == p1["crs"]
    assert p_next["transform"].c - t.c == 320.0 and p_next["transform"].f == t.f
    # plausible values: S2 DN of clear land, S1 dB, NaN present
    assert 300 < np.median(s2[..., B2]) < 2500
    assert np.isnan(s1).any()
    finite = s1[np.isfinite(s1)]
    assert -45.0 < finite.min() and finite.max() < 25.0
    assert np.nanmean(s1[..., 1]) < np.nanmean(s1[..., 0]) - 3.0  # VH below VV


def test_seeded_determinism(tiny_root: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    sd.make_sen12mscr_sample(again, seed=7, **TINY)
    other = tmp_path / "other"
    sd.make_sen12mscr_sample(other, seed=8, **TINY)
    for rel in json.loads((tiny_root / sd.MANIFEST_NAME).read_text())["files"]:
        a, pa, _ = _read(tiny_root / rel)
        b, pb, _ = _read(again / rel)
        c, _, _ = _read(other / rel)
        assert np.array_equal(a, b, equal_nan=True) and pa["transform"] == pb["transform"]
        assert not np.array_equal(a, c, equal_nan=True)


def test_skip_when_up_to_date_and_rewrite_when_settings_change(tmp_path: Path) -> None:
    root = tmp_path / "d"
    settings = {**TINY, "seasons": SEASONS[:1]}
    sd.make_sen12mscr_sample(root, seed=1, **settings)
    s2 = root / sd.sen12mscr_relpaths(SEASONS[0], 1, 2)[1]
    stamp = s2.stat().st_mtime_ns
    again = sd.make_sen12mscr_sample(root, seed=1, **settings)
    assert again["skipped"] is True and again["n_triplets"] == 2
    assert s2.stat().st_mtime_ns == stamp
    # fewer patches: rewritten, and the stale p2 files are gone (no orphan triplets)
    smaller = sd.make_sen12mscr_sample(root, seed=1, **{**settings, "patch_grid": [1, 1]})
    assert smaller["skipped"] is False and smaller["n_triplets"] == 1
    assert not s2.exists() and len(list(root.rglob("*.tif"))) == 3
    assert not list(root.rglob("*.tmp"))
    # overwrite forces a rewrite with the same settings
    forced = sd.make_sen12mscr_sample(
        root, seed=1, **{**settings, "patch_grid": [1, 1]}, overwrite=True
    )
    assert forced["skipped"] is False


def test_refuses_foreign_folder_and_bad_settings(tmp_path: Path) -> None:
    foreign = tmp_path / "real_data"
    foreign.mkdir()
    (foreign / "something.tif").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="real_data"):
        sd.make_sen12mscr_sample(foreign, seed=1, **TINY)
    root = tmp_path / "bad"
    with pytest.raises(ValueError, match="patch_size"):
        sd.make_sen12mscr_sample(root, seed=1, **{**TINY, "patch_size": 66})
    with pytest.raises(ValueError, match="monsoon"):
        sd.make_sen12mscr_sample(root, seed=1, **{**TINY, "seasons": ["ROIs9999_monsoon"]})
    with pytest.raises(ValueError, match="cloud_cover"):
        sd.make_sen12mscr_sample(root, seed=1, **{**TINY, "cloud_cover": [0.5, 1.5]})
    assert not root.exists()  # errors come before any work


# --- the science ---------------------------------------------------------------------------------
def test_fractal_field_and_dn_conversion() -> None:
    field = sd.fractal_field(np.random.default_rng(0), (50, 70), 8.0)
    assert field.shape == (50, 70) and field.dtype == np.float32
    assert abs(float(field.mean())) < 1e-4 and abs(float(field.std()) - 1.0) < 1e-4
    # neighbouring pixels are strongly correlated (smooth), unlike white noise
    assert np.corrcoef(field[:, :-1].ravel(), field[:, 1:].ravel())[0, 1] > 0.9
    dn = sd.reflectance_to_dn(np.array([-1.0, 0.0, 0.1234, 0.5, 7.0], dtype=np.float32))
    assert dn.dtype == np.uint16 and dn.tolist() == [1, 1, 1234, 5000, 65535]


def test_sar_is_tied_to_land_cover() -> None:
    rng = np.random.default_rng(3)
    ground = sd.synthesize_ground(rng, (256, 256), "summer", scale_px=24.0)
    db = 10.0 * np.log10(sd.sar_backscatter_linear(rng, ground))
    vv = {c: np.median(db[..., 0][ground.classes == c]) for c in range(4)}
    vh = {c: np.median(db[..., 1][ground.classes == c]) for c in range(4)}
    assert all((ground.classes == c).any() for c in range(4))
    assert vv[sd.WATER] < vv[sd.BARE_SOIL] < vv[sd.VEGETATION] < vv[sd.URBAN]
    assert all(vh[c] < vv[c] for c in range(4))
    speckled = sd.speckle_db(rng, sd.sar_backscatter_linear(rng, ground), looks=4.4)
    assert speckled.dtype == np.float32 and np.isfinite(speckled).all()
    # water is dark in NIR, vegetation bright (13-band spectra by band name)
    refl = ground.reflectance[..., B8]
    assert np.median(refl[ground.classes == sd.WATER]) < 0.06
    assert np.median(refl[ground.classes == sd.VEGETATION]) > 0.25


def test_clouds_brighten_b2_b10_and_shadows_darken_nir_swir() -> None:
    _, layers, clear, cloudy = _patch(seed=5, cover=0.45)
    cloud = layers.cloud()
    assert 0.40 < cloud.mean() < 0.50  # cover is met
    diff = cloudy.astype(np.float32) - clear.astype(np.float32)
    assert diff[..., B2][cloud].mean() > 2000  # thick cloud: + >0.2 reflectance in blue
    assert (diff[..., B10][cloud] > 0).mean() > 0.95  # and brighter in cirrus band B10
    shadow = layers.shadow_only()
    assert shadow.mean() > 0.02
    for band in (B8, B11):
        ratio = cloudy[..., band][shadow].astype(np.float32) / clear[..., band][shadow]
        assert np.median(ratio) < 0.6
    assert np.median(cloudy[..., B2][shadow] / clear[..., B2][shadow]) > np.median(
        cloudy[..., B8][shadow] / clear[..., B8][shadow]
    )  # shadows darken NIR more than blue
    far = ~ndimage.binary_dilation(layers.opacity > 0.01, iterations=3) & (layers.shadow < 0.01)
    assert np.abs(diff[..., B2][far]).mean() < 100  # elsewhere the same ground


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_detector_finds_synthetic_clouds(seed: int) -> None:
    _, layers, _, cloudy = _patch(seed=seed, cover=0.3 + 0.2 * seed)
    truth = layers.cloud()
    mask = cloud_shadow_mask(cloudy, cloud_threshold=0.2)
    assert mask.dtype == np.uint8
    assert mask[truth].mean() > 0.95  # thick cloud blobs are found
    assert mask[layers.shadow_only()].mean() > 0.8  # and their shadows
    clear_far = ~ndimage.binary_dilation(layers.opacity > 0.01, iterations=6)
    assert cloud_mask(cloudy)[clear_far].mean() < 0.02  # no cloud on clear ground


# --- (B) TML scene --------------------------------------------------------------------------------
def test_tml_scene_files(tiny_scene: Path) -> None:
    cloudy, pc, dc = _read(tiny_scene / "s2_cloudy.tif")
    clear, pr, dr = _read(tiny_scene / "s2_clear.tif")
    s1, p1, d1 = _read(tiny_scene / "s1.tif")
    assert cloudy.shape == clear.shape == (96, 80, 10)
    assert cloudy.dtype == clear.dtype == np.uint16
    assert dc == dr == TML_BAND_NAMES and d1 == S1_BAND_NAMES
    assert pc["nodata"] == 0 and pr["nodata"] == 0 and np.isnan(p1["nodata"])
    assert pc["crs"] == pr["crs"] == p1["crs"] and pc["crs"].to_epsg() == 32632
    assert pc["transform"] == pr["transform"] and pc["transform"].a == 10.0
    # nodata wedge left of a slanted swath edge: all bands 0 together, wider at the top
    nodata = (cloudy == 0).all(axis=-1)
    assert ((cloudy == 0).any(axis=-1) == nodata).all() and (nodata == (clear == 0).all(-1)).all()
    assert nodata[0, 0] and not nodata[:, -1].any()
    assert nodata[0].sum() > nodata[-1].sum() > 0
    # clouds: the cloudy scene is brighter in blue on valid pixels
    b2 = TML_BAND_NAMES.index("B2")
    assert cloudy[..., b2][~nodata].mean() > clear[..., b2][~nodata].mean() + 300
    # S1: 40 m, float32 dB, covers the S2 extent, origin off the S2 40 m block grid
    t1, t2 = p1["transform"], pc["transform"]
    assert s1.dtype == np.float32 and (t1.a, t1.e) == (40.0, -40.0)
    assert (t1.c, t1.f) == (t2.c - 90.0, t2.f + 60.0)
    assert (t2.c - t1.c) % 40 != 0 and (t1.f - t2.f) % 40 != 0
    s1_right = t1.c + 40.0 * p1["width"]
    s1_bottom = t1.f - 40.0 * p1["height"]
    assert s1_right >= t2.c + 10.0 * 80 and s1_bottom <= t2.f - 10.0 * 96
    # NaN only in the S1 cells wholly outside the S2 extent (top row, first two columns)
    assert np.isnan(s1[0]).all() and np.isnan(s1[:, :2]).all()
    assert np.isfinite(s1[1:, 2:]).all()
    manifest = json.loads((tiny_scene / sd.MANIFEST_NAME).read_text())
    assert sorted(manifest["files"]) == ["s1.tif", "s2_clear.tif", "s2_cloudy.tif"]
    assert sd.sample_scene_exists(tiny_scene)


def test_tml_scene_skip_and_determinism(tiny_scene: Path, tmp_path: Path) -> None:
    assert sd.make_tml_scene(tiny_scene, seed=7, **TINY_SCENE)["skipped"] is True
    other = tmp_path / "scene"
    sd.make_tml_scene(other, seed=7, **TINY_SCENE)
    for name in ("s2_cloudy.tif", "s1.tif"):
        assert np.array_equal(_read(tiny_scene / name)[0], _read(other / name)[0], equal_nan=True)
    without = sd.make_tml_scene(other, seed=7, **TINY_SCENE, write_clear=False)
    assert without["skipped"] is False and not (other / "s2_clear.tif").exists()


# --- parameters file agrees with the functions --------------------------------------------------
def test_parameters_match_function_defaults(project_root: Path) -> None:
    params = yaml.safe_load((project_root / "conf/base/parameters_sample_data.yml").read_text())
    section = params["sample_data"]
    for key, function in (
        ("sen12mscr", sd.make_sen12mscr_sample),
        ("tml_scene", sd.make_tml_scene),
    ):
        signature = inspect.signature(function)
        signature.bind(seed=section["seed"], **section[key])  # no unknown or missing keys
        for name, value in section[key].items():
            default = signature.parameters[name].default
            if default is not inspect.Parameter.empty:
                expected = list(default) if isinstance(default, tuple) else default
                assert value == expected, f"{key}.{name}: YAML {value} vs default {expected}"
