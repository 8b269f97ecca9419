"""patch_store.py: write/open round trip, read-only memory maps, atomic replacement."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from tml_cloudremoval.bands import TML_BAND_NAMES
from tml_cloudremoval.data.errors import DataError
from tml_cloudremoval.data.patch_store import PatchStore, sample_shape, write_patch_store


def _samples(n: int, h: int = 8, w: int = 12, offset: int = 0) -> list[dict[str, np.ndarray]]:
    out = []
    for i in range(n):
        base = offset + i
        out.append(
            {
                "s2_cloudy": np.full((h, w, 10), 100 + base, np.uint16),
                "s2": np.arange(h * w * 10, dtype=np.uint16).reshape(h, w, 10) + base,
                "s1": np.full((h // 4, w // 4, 2), -10.5 - base, np.float32),
                "mask": (np.arange(h * w).reshape(h, w) % 2).astype(np.uint8),
            }
        )
    return out


def _entries(folder) -> list[str]:
    """What a folder holds, without the lock files of its outputs (``.<name>.lock``)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


def _index(n: int) -> pd.DataFrame:
    return pd.DataFrame({"scene_id": [f"ROIs1_spring_{i}" for i in range(n)], "patch": "p1"})


def test_sample_shapes():
    assert sample_shape("optical", 256, 128) == (256, 128, 10)
    assert sample_shape("sar", 256, 128) == (64, 32, 2)
    assert sample_shape("mask", 256, 128) == (256, 128)


def test_roundtrip(tmp_path):
    samples = _samples(3)
    path = write_patch_store(
        tmp_path / "train", samples, 3, 8, 12, _index(3), meta={"sar_method": "mean"}
    )
    store = PatchStore.open(path)
    assert len(store) == 3 and (store.height, store.width) == (8, 12)
    assert store.s2_cloudy.dtype == np.uint16 and store.s2_cloudy.shape == (3, 8, 12, 10)
    assert store.s1.dtype == np.float32 and store.s1.shape == (3, 2, 3, 2)
    assert store.mask.dtype == np.uint8 and store.mask.shape == (3, 8, 12)
    for i, sample in enumerate(samples):
        for name, value in sample.items():
            np.testing.assert_array_equal(getattr(store, name)[i], value)
    assert isinstance(store.s2, np.memmap) and not store.s2.flags.writeable
    assert list(store.index["scene_id"]) == list(_index(3)["scene_id"])
    assert store.meta["n"] == 3 and store.meta["bands"] == list(TML_BAND_NAMES)
    assert store.meta["sar_method"] == "mean" and store.meta["sar_factor"] == 4
    assert json.loads((path / "meta.json").read_text()) == store.meta


def test_replaces_existing_store_whole(tmp_path):
    path = tmp_path / "val"
    write_patch_store(path, _samples(2), 2, 8, 12, _index(2))
    write_patch_store(path, _samples(1, offset=5), 1, 8, 12, _index(1))
    store = PatchStore.open(path)
    assert len(store) == 1 and store.s2_cloudy[0, 0, 0, 0] == 105
    assert _entries(tmp_path) == ["val"]


def test_failed_write_keeps_old_store(tmp_path):
    path = tmp_path / "test"
    write_patch_store(path, _samples(2), 2, 8, 12, _index(2))

    def broken():
        yield from _samples(1, offset=7)
        raise OSError("disk on fire")

    with pytest.raises(DataError, match=f"^{path}: writing failed \\(disk on fire\\)"):
        write_patch_store(path, broken(), 2, 8, 12, _index(2))
    store = PatchStore.open(path)
    assert len(store) == 2 and store.s2_cloudy[0, 0, 0, 0] == 100
    assert _entries(tmp_path) == ["test"]


@pytest.mark.parametrize(
    ("n_samples", "n", "index_rows", "size", "message"),
    [
        (2, 3, 3, (8, 12), "got 2 samples, announced 3"),
        (3, 2, 2, (8, 12), "more than the announced 2 samples"),
        (2, 2, 3, (8, 12), "index has 3 rows for 2 patches"),
        (2, 2, 2, (8, 10), "patch size 8x10 is not a multiple of 4"),
    ],
)
def test_write_checks(tmp_path, n_samples, n, index_rows, size, message):
    with pytest.raises(ValueError, match=message):
        write_patch_store(tmp_path / "s", _samples(n_samples), n, *size, _index(index_rows))
    assert not (tmp_path / "s").exists()
    assert _entries(tmp_path) == []


def test_open_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a patch store: meta.json is missing"):
        PatchStore.open(tmp_path)
    path = write_patch_store(tmp_path / "s", _samples(2), 2, 8, 12, _index(2))
    meta = json.loads((path / "meta.json").read_text())
    (path / "meta.json").write_text(json.dumps({**meta, "n": 3}))
    with pytest.raises(ValueError, match=r"s2_cloudy.npy holds 2 patches, meta.json says 3"):
        PatchStore.open(path)


def test_store_folder_has_the_usual_permissions(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    path = write_patch_store(tmp_path / "s", _samples(1), 1, 8, 12, _index(1))
    assert path.stat().st_mode & 0o777 == 0o777 & ~umask


def test_store_bytes_is_exact(tmp_path):
    from tml_cloudremoval.data.patch_store import META_BYTES, store_bytes

    index = _index(3)
    path = write_patch_store(tmp_path / "s", _samples(3), 3, 8, 12, index, meta={"a": 1})
    on_disk = {p.name: p.stat().st_size for p in path.iterdir()}
    # by hand: 128-byte npy headers; per patch 8*12*10*2 (x2 optical), 2*3*2*4 SAR, 8*12 mask
    assert on_disk["s2.npy"] == on_disk["s2_cloudy.npy"] == 128 + 3 * 1920
    assert on_disk["s1.npy"] == 128 + 3 * 48 and on_disk["mask.npy"] == 128 + 3 * 96
    files = sum(v for k, v in on_disk.items() if k != "meta.json")
    assert store_bytes(3, 8, 12, index) == files + META_BYTES > files + on_disk["meta.json"]
    # SEN12MS-CR: 2,719,744 bytes per 256 x 256 patch
    assert (
        store_bytes(122218, 256, 256, _index(0)) - META_BYTES - 4 * 128 - len("scene_id,patch\n")
        == 122218 * 2719744
    )


def test_too_little_free_disk_is_one_clear_error_before_writing(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from tml_cloudremoval.data.patch_store import store_bytes

    path = tmp_path / "train"
    write_patch_store(path, _samples(2), 2, 8, 12, _index(2))
    needed = store_bytes(3, 8, 12, _index(3))
    usage = namedtuple("usage", "total used free")
    seen = []

    def disk_usage(folder):
        seen.append(folder)
        return usage(10**12, 10**12 - needed + 1, needed - 1)

    monkeypatch.setattr(shutil, "disk_usage", disk_usage)
    with pytest.raises(DataError) as err:
        write_patch_store(path, _samples(3), 3, 8, 12, _index(3))
    assert str(err.value).startswith(
        f"{tmp_path}: not enough free disk for the patch store train (3 patches): it needs "
        f"{needed / 1024:.1f} KiB ({needed:,} bytes), the file system has "
        f"{(needed - 1) / 1024:.1f} KiB ({needed - 1:,} bytes) free"
    )
    assert seen == [tmp_path]
    assert len(PatchStore.open(path)) == 2 and _entries(tmp_path) == ["train"]
    monkeypatch.setattr(shutil, "disk_usage", lambda f: usage(10**12, 0, needed))
    write_patch_store(path, _samples(3), 3, 8, 12, _index(3))  # exactly enough is enough
    assert len(PatchStore.open(path)) == 3


def test_human_bytes():
    from tml_cloudremoval.data.store_group import human_bytes

    assert [human_bytes(v) for v in (0, 1023, 1536, 5 * 2**30, 332401672192)] == [
        "0 B",
        "1023 B",
        "1.5 KiB",
        "5.0 GiB",
        "309.6 GiB",
    ]
