"""PyDataset input (data.patch_sequence): the same samples as the tf.data path, sample by sample
(crops, flips, rotations, order, normalisation), across epochs and with worker threads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from keras.src.trainers.epoch_iterator import EpochIterator  # what Model.fit iterates with

from tml_cloudremoval.data.input_pipeline import eval_dataset, train_dataset
from tml_cloudremoval.data.patch_sequence import EvalSequence, TrainSequence, augment_np
from tml_cloudremoval.data.patch_store import PatchStore, write_patch_store

SIZE = 24


def random_store(path, n: int, seed: int = 3) -> PatchStore:
    """Random DN (also above the 10000 clip), SAR dB across and beyond the clip range, masks."""
    rng = np.random.default_rng(seed)
    s = SIZE // 4

    def sample(_):
        return {
            "s2_cloudy": rng.integers(0, 12000, (SIZE, SIZE, 10)).astype(np.uint16),
            "s2": rng.integers(0, 12000, (SIZE, SIZE, 10)).astype(np.uint16),
            "s1": rng.uniform(-40, 5, (s, s, 2)).astype(np.float32),
            "mask": rng.integers(0, 2, (SIZE, SIZE)).astype(np.uint8),
        }

    index = pd.DataFrame({"scene_id": [f"s{i}" for i in range(n)], "patch": "p"})
    write_patch_store(path, (sample(i) for i in range(n)), n, SIZE, SIZE, index)
    return PatchStore.open(path)


@pytest.fixture
def store(tmp_path) -> PatchStore:
    return random_store(tmp_path / "store", 7)


def _tf_batches(ds, count):
    return [tf.nest.map_structure(lambda t: t.numpy(), b) for b in ds.take(count)]


def _assert_same(got, want) -> None:
    assert len(got) == len(want)
    for (gx, gy), (wx, wy) in zip(got, want, strict=True):
        assert sorted(gx) == sorted(wx) and sorted(gy) == sorted(wy)
        for key in wx:
            assert gx[key].dtype == np.float32 and gx[key].shape == wx[key].shape
            np.testing.assert_array_equal(gx[key], wx[key], err_msg=key)
        for key in wy:
            np.testing.assert_array_equal(gy[key], wy[key], err_msg=key)


def test_augment_np_matches_tf() -> None:
    from tml_cloudremoval.data.input_pipeline import augment

    image = np.arange(4 * 4 * 3, dtype=np.float32).reshape(4, 4, 3)
    for flip in range(3):
        for rot in range(4):
            want = augment(tf.constant(image), tf.constant(flip), tf.constant(rot)).numpy()
            np.testing.assert_array_equal(augment_np(image, flip, rot), want)


@pytest.mark.parametrize(
    ("steps", "first_epoch", "include_sar"), [(None, 0, True), (4, 2, True), (None, 1, False)]
)
def test_train_batches_equal_tf_data(store, steps, first_epoch, include_sar) -> None:
    kwargs = dict(
        batch_size=3, crop_size=16, seed=11, first_epoch=first_epoch, steps_per_epoch=steps
    )
    seq = TrainSequence(store, include_sar=include_sar, **kwargs)
    per_epoch = seq.steps  # 3 batches (3 + 3 + 1) per epoch, or 4 full ones
    assert per_epoch == (steps or 3)
    want = _tf_batches(train_dataset(store, include_sar=include_sar, **kwargs), 2 * per_epoch)
    _assert_same([seq[i] for i in range(2 * per_epoch)], want)
    # a pure function of the index: asked out of order, the same batch
    _assert_same([seq[per_epoch + 1], seq[0]], [want[per_epoch + 1], want[0]])


def test_eval_batches_equal_tf_data(store) -> None:
    seq = EvalSequence(store, batch_size=3)
    assert len(seq) == 3
    _assert_same([seq[i] for i in range(len(seq))], _tf_batches(eval_dataset(store, 3), 3))
    with pytest.raises(IndexError):
        seq[3]


def test_fit_iteration_with_workers_continues_across_epochs(store) -> None:
    """Keras' epoch iterator (the one ``fit`` uses) with 2 worker threads (what the training
    loop uses): epoch after epoch the batches of the tf.data path, prefetched batches carried
    over an epoch's end. Not with processes: Keras forks them from this process, which has run
    TensorFlow, and a forked worker hung the suite once."""
    kwargs = dict(batch_size=3, crop_size=16, seed=5)
    seq = TrainSequence(store, workers=2, **kwargs)
    iterator = EpochIterator(x=seq, steps_per_epoch=seq.steps, shuffle=False)
    got = []
    for _ in range(3):
        for _, _, buffer in iterator:  # one batch per step (steps_per_execution 1)
            got.extend(buffer)
    _assert_same(got, _tf_batches(train_dataset(store, **kwargs), 3 * seq.steps))
