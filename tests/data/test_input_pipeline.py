"""tf.data pipeline: aligned crops, identical augmentation on all four arrays, every sample once,
or steps_per_epoch full batches (Keras' meaning) repeating a small store; read-ahead of the
upcoming crops' rows that leaves the samples unchanged."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tml_cloudremoval.data import input_pipeline
from tml_cloudremoval.data.input_pipeline import (
    epoch_plan,
    epoch_samples,
    epoch_size,
    eval_dataset,
    normalise_optical_tf,
    normalise_sar_tf,
    train_dataset,
)
from tml_cloudremoval.data.patch_store import PatchStore, write_patch_store
from tml_cloudremoval.data.sampling import READ_AHEAD, read_ahead
from tml_cloudremoval.normalise import OPTICAL_SCALE, normalise_optical, normalise_sar

SIZE = 24
CODES = SIZE * SIZE
TARGET_OFFSET = 4000


def coded_store(path, n: int) -> PatchStore:
    """Every pixel says where it came from.

    cloudy[s, y, x, :] = s * 576 + y * 24 + x (DN, all bands); target = cloudy + 4000 + 100 * band;
    mask = fixed random bits; SAR (40 m) VV = -0.5 * (Y * 6 + X) dB, VH = -(s + 1) dB.
    """
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    s = SIZE // 4
    sy, sx = np.mgrid[0:s, 0:s]

    def sample(i):
        code = (i * CODES + yy * SIZE + xx).astype(np.uint16)
        cloudy = np.repeat(code[..., None], 10, axis=-1)
        target = cloudy + TARGET_OFFSET + 100 * np.arange(10, dtype=np.uint16)
        sar = np.stack([-0.5 * (sy * s + sx), np.full((s, s), -(i + 1.0))], axis=-1)
        return {
            "s2_cloudy": cloudy,
            "s2": target.astype(np.uint16),
            "s1": sar.astype(np.float32),
            "mask": rng.integers(0, 2, (SIZE, SIZE)).astype(np.uint8),
        }

    index = pd.DataFrame({"scene_id": [f"s{i}" for i in range(n)], "patch": "p"})
    write_patch_store(path, (sample(i) for i in range(n)), n, SIZE, SIZE, index)
    return PatchStore.open(path)


def _np_augment(a: np.ndarray, flip: int, rot: int) -> np.ndarray:
    if flip == 1:
        a = a[::-1]
    elif flip == 2:
        a = a[:, ::-1]
    return np.rot90(a, rot)


def _batches(ds, count):
    return [tf.nest.map_structure(lambda t: t.numpy(), b) for b in ds.take(count)]


def test_tf_normalisation_matches_numpy():
    rng = np.random.default_rng(0)
    dn = rng.integers(0, 65535, (5, 7, 10)).astype(np.uint16)
    db = rng.uniform(-45, 8, (5, 7, 2)).astype(np.float32)
    np.testing.assert_allclose(normalise_optical_tf(dn).numpy(), normalise_optical(dn), rtol=1e-6)
    np.testing.assert_allclose(
        normalise_sar_tf(db).numpy(), normalise_sar(db), rtol=1e-5, atol=1e-6
    )


def test_epoch_plan_is_aligned_repeatable_and_reshuffled():
    a = epoch_plan(50, 256, 256, 128, seed=42, epoch=0)
    assert sorted(a.index.tolist()) == list(range(50))
    assert np.all(a.row % 4 == 0) and np.all(a.col % 4 == 0)
    assert a.row.max() <= 128 and a.col.max() <= 128 and a.row.min() >= 0
    assert set(a.flip.tolist()) <= {0, 1, 2} and set(a.rot.tolist()) <= {0, 1, 2, 3}
    again = epoch_plan(50, 256, 256, 128, seed=42, epoch=0)
    np.testing.assert_array_equal(a.index, again.index)
    np.testing.assert_array_equal(a.row, again.row)
    assert not np.array_equal(a.index, epoch_plan(50, 256, 256, 128, seed=42, epoch=1).index)
    plain = epoch_plan(50, 256, 256, 128, seed=42, epoch=0, augment=False)
    assert not plain.flip.any() and not plain.rot.any()


def test_epoch_size_keeps_the_last_partial_batch_or_gives_steps_full_batches():
    assert epoch_size(5, 2) == (3, 5)
    assert epoch_size(3, 16) == (1, 3)
    assert epoch_size(100, 16, steps=4) == (4, 64)  # first 64 of the epoch's order
    assert epoch_size(20, 8, steps=20) == (20, 160)  # the store repeats 8 times
    assert epoch_size(3, 4, steps=2, multiple_of=4) == (2, 8)
    with pytest.raises(ValueError, match="no samples"):
        epoch_size(0, 16)
    with pytest.raises(ValueError, match="steps per epoch must be >= 1"):
        epoch_size(5, 2, steps=0)


def test_epoch_size_with_replicas_never_leaves_a_replica_empty():
    assert epoch_size(7, 4) == (2, 7)
    assert epoch_size(7, 4, multiple_of=2) == (2, 6)  # last batch 3 -> 2
    assert epoch_size(9, 4, multiple_of=4) == (2, 8)  # last batch 1 -> dropped
    assert epoch_size(3, 16, multiple_of=2) == (1, 2)
    with pytest.raises(ValueError, match="multiple of the 2 replicas"):
        epoch_size(8, 3, multiple_of=2)
    with pytest.raises(ValueError, match="cannot be split over 4 replicas"):
        epoch_size(3, 4, multiple_of=4)


def test_crops_are_aligned_and_one_transform_hits_all_four_arrays(tmp_path):
    n, crop, batch, seed = 6, 16, 4, 3
    store = coded_store(tmp_path / "coded", n)
    ds = train_dataset(store, batch, crop, seed=seed, first_epoch=0, last_epoch=2)
    batches = _batches(ds, 100)
    assert [len(b[0]["optical"]) for b in batches] == [4, 2, 4, 2]
    corners = set()
    for epoch in range(2):
        plan = epoch_plan(n, SIZE, SIZE, crop, seed, epoch)
        xs = [b for b in batches[2 * epoch : 2 * epoch + 2]]
        optical = np.concatenate([b[0]["optical"] for b in xs])
        sar = np.concatenate([b[0]["sar"] for b in xs])
        target = np.concatenate([b[1]["target"] for b in xs])
        mask = np.concatenate([b[1]["mask"] for b in xs])
        assert optical.shape == (n, crop, crop, 10) and sar.shape == (n, crop // 4, crop // 4, 2)
        assert mask.shape == (n, crop, crop, 1)
        for k in range(n):
            i, r, c, f, q = (
                int(a[k]) for a in (plan.index, plan.row, plan.col, plan.flip, plan.rot)
            )
            win = np.s_[i, r : r + crop, c : c + crop]
            sar_win = np.s_[i, r // 4 : (r + crop) // 4, c // 4 : (c + crop) // 4]
            # exact agreement with a plain numpy crop + flip + rot90 of each array
            np.testing.assert_array_equal(
                optical[k], normalise_optical(_np_augment(store.s2_cloudy[win], f, q))
            )
            np.testing.assert_array_equal(
                target[k], normalise_optical(_np_augment(store.s2[win], f, q))
            )
            np.testing.assert_array_equal(mask[k, ..., 0], _np_augment(store.mask[win], f, q))
            np.testing.assert_allclose(
                sar[k], normalise_sar(_np_augment(store.s1[sar_win], f, q)), atol=1e-6
            )
            # and, independently of the plan: decode where each output pixel came from
            code = np.rint(optical[k, ..., 0] * OPTICAL_SCALE).astype(int)
            sample, pos = np.divmod(code, CODES)
            y, x = np.divmod(pos, SIZE)
            assert np.all(sample == i)
            assert y.min() % 4 == 0 and x.min() % 4 == 0  # crop offset on the 40 m grid
            assert y.max() - y.min() == crop - 1 and x.max() - x.min() == crop - 1
            assert len(np.unique(pos)) == crop * crop
            t_code = np.rint(target[k] * OPTICAL_SCALE).astype(int)
            np.testing.assert_array_equal(
                t_code, code[..., None] + TARGET_OFFSET + 100 * np.arange(10)
            )
            np.testing.assert_array_equal(mask[k, ..., 0], store.mask[i][y, x])
            vv_db = sar[k, ..., 0] / 2 * 25 - 25
            sar_code = np.rint(-vv_db / 0.5).astype(int)  # Y * 6 + X of the 40 m pixel
            up = np.repeat(np.repeat(sar_code, 4, axis=0), 4, axis=1)
            np.testing.assert_array_equal(up, (y // 4) * (SIZE // 4) + (x // 4))
            corners.add((int(y[0, 0] - y.min()), int(x[0, 0] - x.min())))
    assert len(corners) >= 3  # several distinct flips / rotations were exercised


def test_every_sample_once_per_epoch_in_a_new_order(tmp_path):
    store = coded_store(tmp_path / "coded", 5)
    ds = train_dataset(store, batch_size=2, crop_size=8, seed=42, last_epoch=2)
    batches = _batches(ds, 100)
    assert [len(b[0]["optical"]) for b in batches] == [2, 2, 1, 2, 2, 1]
    ids = _ids(batches)
    first, second = ids[:5], ids[5:]
    assert sorted(first) == sorted(second) == [0, 1, 2, 3, 4]
    assert first != second


def _ids(batches) -> list[int]:
    """Store index of every sample of ``batches`` (decoded from the coded pixel values)."""
    return [
        int(np.rint(b[0]["optical"][k, 0, 0, 0] * OPTICAL_SCALE)) // CODES
        for b in batches
        for k in range(len(b[0]["optical"]))
    ]


def test_dataset_smaller_than_batch(tmp_path):
    store = coded_store(tmp_path / "coded", 3)
    batches = _batches(train_dataset(store, 16, 8, last_epoch=1), 10)
    assert len(batches) == 1 and batches[0][0]["optical"].shape == (3, 8, 8, 10)


def test_steps_per_epoch_repeats_a_small_store_each_pass_in_a_new_order(tmp_path):
    n, batch, steps, seed = 5, 2, 7, 11
    store = coded_store(tmp_path / "coded", n)
    ds = train_dataset(store, batch, 8, seed=seed, last_epoch=2, steps_per_epoch=steps)
    batches = _batches(ds, 100)
    assert [len(b[0]["optical"]) for b in batches] == [batch] * steps * 2  # full batches only
    ids = _ids(batches)
    for epoch in range(2):
        seen = ids[epoch * steps * batch : (epoch + 1) * steps * batch]  # 14 = passes 5, 5, 4
        passes = [seen[:5], seen[5:10], seen[10:]]
        assert sorted(passes[0]) == sorted(passes[1]) == list(range(n))
        assert len(set(passes[2])) == 4
        for repeat, part in enumerate(passes):
            expected = epoch_plan(n, SIZE, SIZE, 8, seed, epoch, repeat=repeat).index
            assert part == expected[: len(part)].tolist()
        assert passes[0] != passes[1]


def test_steps_per_epoch_on_a_large_store_takes_the_start_of_each_epochs_order(tmp_path):
    store = coded_store(tmp_path / "coded", 5)
    batches = _batches(train_dataset(store, 1, 8, seed=3, last_epoch=2, steps_per_epoch=2), 10)
    assert len(batches) == 4
    for epoch in range(2):
        order = epoch_plan(5, SIZE, SIZE, 8, 3, epoch).index
        assert _ids(batches[2 * epoch : 2 * epoch + 2]) == order[:2].tolist()


def test_epoch_samples_pass_zero_is_the_epoch_plan_and_later_passes_differ():
    one = epoch_samples(6, 32, 32, 16, seed=1, epoch=4, count=6)
    plan = epoch_plan(6, 32, 32, 16, seed=1, epoch=4)
    for name in ("index", "row", "col", "flip", "rot"):
        np.testing.assert_array_equal(getattr(one, name), getattr(plan, name))
    long = epoch_samples(6, 32, 32, 16, seed=1, epoch=4, count=15)
    assert len(long.index) == 15
    np.testing.assert_array_equal(long.index[:6], plan.index)
    second = epoch_plan(6, 32, 32, 16, seed=1, epoch=4, repeat=1)
    np.testing.assert_array_equal(long.row[6:12], second.row)
    assert not np.array_equal(second.index, plan.index) or not np.array_equal(second.row, plan.row)


def test_without_sar_there_is_no_sar_input(tmp_path):
    store = coded_store(tmp_path / "coded", 2)
    x, y = _batches(train_dataset(store, 2, 8, include_sar=False), 1)[0]
    assert set(x) == {"optical"} and set(y) == {"target", "mask"}


def test_validation_is_full_patches_in_order_unaugmented(tmp_path):
    store = coded_store(tmp_path / "coded", 3)
    batches = _batches(eval_dataset(store, batch_size=2), 10)
    assert [len(b[0]["optical"]) for b in batches] == [2, 1]
    optical = np.concatenate([b[0]["optical"] for b in batches])
    sar = np.concatenate([b[0]["sar"] for b in batches])
    np.testing.assert_array_equal(optical, normalise_optical(store.s2_cloudy))
    np.testing.assert_array_equal(
        np.concatenate([b[1]["target"] for b in batches]), normalise_optical(store.s2)
    )
    np.testing.assert_allclose(sar, normalise_sar(store.s1), atol=1e-6)
    np.testing.assert_array_equal(
        np.concatenate([b[1]["mask"] for b in batches])[..., 0], store.mask
    )


def test_bad_crop_sizes_fail_early_naming_the_store(tmp_path):
    store = coded_store(tmp_path / "coded", 2)
    with pytest.raises(ValueError, match="multiple of 4"):
        train_dataset(store, 2, 10)
    with pytest.raises(ValueError, match="coded.*exceeds the patch size 24x24"):
        train_dataset(store, 2, 32)


# ---------------------------------------------------------------------------------------------
# Read-ahead (sampling.read_ahead): when bytes are read changes, never which
# ---------------------------------------------------------------------------------------------


def _reference_epoch(store, n, crop, seed, epoch):
    """Plain numpy: the samples of one epoch in plan order (optical, target, mask, SAR)."""
    plan = epoch_plan(n, SIZE, SIZE, crop, seed, epoch)
    out = []
    for i, r, c, f, q in zip(plan.index, plan.row, plan.col, plan.flip, plan.rot, strict=True):
        win = np.s_[i, r : r + crop, c : c + crop]
        sar_win = np.s_[i, r // 4 : (r + crop) // 4, c // 4 : (c + crop) // 4]
        out.append(
            (
                normalise_optical(_np_augment(store.s2_cloudy[win], f, q)),
                normalise_optical(_np_augment(store.s2[win], f, q)),
                _np_augment(store.mask[win], f, q).astype(np.float32),
                normalise_sar(_np_augment(store.s1[sar_win], f, q)),
            )
        )
    return [np.stack(a) for a in zip(*out, strict=True)]


@pytest.mark.parametrize("ahead", [0, 3, 15, READ_AHEAD])  # 15: between 1 and 2 epochs
def test_read_ahead_gives_the_samples_of_a_plain_numpy_reference(tmp_path, ahead):
    n, crop, batch, seed = 10, 16, 4, 5
    store = coded_store(tmp_path / "coded", n)
    ds = train_dataset(store, batch, crop, seed=seed, last_epoch=2, read_ahead_samples=ahead)
    batches = _batches(ds, 100)
    assert [len(b[0]["optical"]) for b in batches] == [4, 4, 2] * 2
    for epoch in range(2):
        got = batches[3 * epoch : 3 * epoch + 3]
        optical, target, mask, sar = _reference_epoch(store, n, crop, seed, epoch)
        np.testing.assert_array_equal(np.concatenate([b[0]["optical"] for b in got]), optical)
        np.testing.assert_array_equal(np.concatenate([b[1]["target"] for b in got]), target)
        np.testing.assert_array_equal(np.concatenate([b[1]["mask"] for b in got])[..., 0], mask)
        np.testing.assert_allclose(np.concatenate([b[0]["sar"] for b in got]), sar, atol=1e-6)


def _recorded_fadvise(monkeypatch) -> list[tuple[str, int, int, int]]:
    """Replace os.posix_fadvise: record (file name, offset, length, advice) of every call."""
    calls = []

    def fadvise(fd, offset, length, advice):
        calls.append((os.path.basename(os.readlink(f"/proc/self/fd/{fd}")), offset, length, advice))

    monkeypatch.setattr(os, "posix_fadvise", fadvise)
    return calls


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc/self/fd")
def test_read_ahead_announces_exactly_the_crop_rows_of_every_array(tmp_path, monkeypatch):
    store = coded_store(tmp_path / "coded", 4)
    calls = _recorded_fadvise(monkeypatch)
    crop, index, row = 8, 2, 12
    read_ahead(store, crop)(index, row)
    assert {name for name, *_ in calls} == {"s2_cloudy.npy", "s2.npy", "mask.npy", "s1.npy"}
    expected = {  # the rows of the crop, 10 m (40 m for SAR), straight from the arrays
        "s2_cloudy.npy": store.s2_cloudy[index, row : row + crop],
        "s2.npy": store.s2[index, row : row + crop],
        "mask.npy": store.mask[index, row : row + crop],
        "s1.npy": store.s1[index, row // 4 : (row + crop) // 4],
    }
    for name, offset, length, advice in calls:
        assert advice == os.POSIX_FADV_WILLNEED
        with open(tmp_path / "coded" / name, "rb") as f:
            f.seek(offset)
            assert f.read(length) == expected[name].tobytes()
    calls.clear()
    read_ahead(store, crop)(-1, 0)
    assert calls == []


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc/self/fd")
def test_read_ahead_skips_arrays_that_are_not_whole_file_maps(tmp_path, monkeypatch):
    store = coded_store(tmp_path / "coded", 4)
    calls = _recorded_fadvise(monkeypatch)
    in_memory = dataclasses.replace(store, s2=np.array(store.s2), s1=store.s1[1:])
    read_ahead(in_memory, 8)(1, 4)
    assert sorted(name for name, *_ in calls) == ["mask.npy", "s2_cloudy.npy"]


def test_the_pipeline_announces_every_sample_of_the_plan_once(tmp_path, monkeypatch):
    n, crop, ahead, seed = 9, 8, 3, 2
    store = coded_store(tmp_path / "coded", n)
    announced = []
    monkeypatch.setattr(
        input_pipeline, "read_ahead", lambda s, c: lambda i, r: announced.append((int(i), int(r)))
    )
    ds = train_dataset(store, 4, crop, seed=seed, last_epoch=1, read_ahead_samples=ahead)
    _batches(ds, 100)
    plan = epoch_plan(n, SIZE, SIZE, crop, seed, 0)
    expected = list(zip(plan.index.tolist(), plan.row.tolist(), strict=True))
    assert announced[:ahead] == expected[:ahead]  # at the start of the epoch, before any read
    assert sorted(a for a in announced if a[0] >= 0) == sorted(expected)
