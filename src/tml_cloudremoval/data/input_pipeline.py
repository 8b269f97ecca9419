"""tf.data input pipelines over a training-ready ``PatchStore``.

Each element is ``(x, y)`` with, per batch of B samples of h x w pixels at 10 m (channels_last,
float32, model units from ``tml_cloudremoval.normalise``):

- ``x["optical"]`` (B, h, w, 10)     cloudy TML bands, DN clipped to [0, 10000] / 2000
- ``x["sar"]``     (B, h/4, w/4, 2)  VV, VH on the 40 m grid scaled to [0, 2] (only with SAR)
- ``y["target"]``  (B, h, w, 10)     cloud-free TML bands, same scaling as the optical input
- ``y["mask"]``    (B, h, w, 1)      1.0 = cloud or shadow, 0.0 = clear

Training (``train_dataset``): by default every sample exactly once per epoch, in an order
shuffled anew for each epoch, batches of ``batch_size`` with the last partial batch kept; a
random ``crop_size`` crop whose offsets are multiples of 4 (so it starts on a 40 m SAR pixel: the
SAR crop is offset/4, size/4); one random flip (none / vertical / horizontal) and one rot90
(k = 0..3) applied identically to the cloudy input, target, mask and SAR. With
``steps_per_epoch`` S (Keras' meaning: batches per epoch) an epoch is S full batches: a store of
fewer than S x batch samples is repeated, each pass over it in a new order, a larger one gives
an epoch only the first S x batch samples of that epoch's order (``epoch_size``). The random
choices (``data.sampling``, no TensorFlow) of pass p of epoch e are drawn from
``numpy.random.default_rng([seed, e])`` for p = 0 and ``default_rng([seed, e, p])`` after
(``epoch_plan``), so an epoch's batches do not depend on
what ran before it: a resumed run sees exactly the batches an uninterrupted run would.

Validation (``eval_dataset``): full patches in store order, no crop, no augmentation.

Reading: a ``tf.numpy_function`` (``sampling.crop_reader``) slices the crop straight out of the
memory-mapped store (only the crop's rows are read), after asking the OS to start reading the
crop rows of the sample ``read_ahead_samples`` further on (``sampling.read_ahead``: a store
bigger than the page cache is then read with many requests in flight); casting, normalisation
and augmentation are TF ops, which run in the parallel map without holding the GIL; batches are
prefetched.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tml_cloudremoval.bands import SAR_FACTOR
from tml_cloudremoval.data.patch_store import PatchStore
from tml_cloudremoval.data.sampling import (
    FLIPS,
    READ_AHEAD,
    EpochPlan,
    check_store,
    crop_reader,
    epoch_plan,
    epoch_samples,
    epoch_size,
    read_ahead,
)
from tml_cloudremoval.normalise import MAX_VAL_SAR, OPTICAL_CLIP_DN, OPTICAL_SCALE, SAR_CLIP_DB

__all__ = [
    "FLIPS",
    "EpochPlan",
    "augment",
    "epoch_plan",
    "epoch_samples",
    "epoch_size",
    "eval_dataset",
    "normalise_optical_tf",
    "normalise_sar_tf",
    "train_dataset",
]

_reader = crop_reader
_check_store = check_store


# ---------------------------------------------------------------------------------------------
# Normalisation in TF, with the constants of tml_cloudremoval.normalise
# ---------------------------------------------------------------------------------------------


def normalise_optical_tf(dn: tf.Tensor) -> tf.Tensor:
    """TF twin of ``normalise.normalise_optical``: DN (..., C) -> float32 in [0, 5]."""
    lo, hi = OPTICAL_CLIP_DN
    return tf.clip_by_value(tf.cast(dn, tf.float32), lo, hi) / OPTICAL_SCALE


def normalise_sar_tf(db: tf.Tensor) -> tf.Tensor:
    """TF twin of ``normalise.normalise_sar``: dB (..., 2) -> float32 in [0, MAX_VAL_SAR]."""
    lo = tf.constant([b[0] for b in SAR_CLIP_DB], tf.float32)
    hi = tf.constant([b[1] for b in SAR_CLIP_DB], tf.float32)
    db = tf.cast(db, tf.float32)
    return (tf.clip_by_value(db, lo, hi) - lo) / (hi - lo) * MAX_VAL_SAR


# ---------------------------------------------------------------------------------------------
# Augmenting and loading one sample
# ---------------------------------------------------------------------------------------------


def augment(image: tf.Tensor, flip: tf.Tensor, rot: tf.Tensor) -> tf.Tensor:
    """Flip (0 none, 1 vertical, 2 horizontal), then rotate by ``rot`` quarter turns; (H, W, C)."""
    image = tf.switch_case(
        tf.cast(flip, tf.int32),
        [
            lambda: image,
            lambda: tf.reverse(image, axis=[0]),
            lambda: tf.reverse(image, axis=[1]),
        ],
    )
    return tf.image.rot90(image, k=tf.cast(rot, tf.int32))


def _sample_fn(store: PatchStore, crop_h: int, crop_w: int, include_sar: bool, announce=None):
    """tf function (index, row, col, flip, rot, index_ahead, row_ahead) -> (x, y) of one sample
    (see the module doc); ``announce(index_ahead, row_ahead)`` (``sampling.read_ahead``, None:
    no read-ahead) is called before the crop is read."""
    crop = crop_reader(store, crop_h, crop_w)

    def read(i, r, c, i_ahead, r_ahead):
        if announce is not None:
            announce(int(i_ahead), int(r_ahead))
        return crop(i, r, c)

    bands = int(store.s2.shape[-1])
    sar_shape = (crop_h // SAR_FACTOR, crop_w // SAR_FACTOR, int(store.s1.shape[-1]))
    square = crop_h == crop_w

    def load(i, r, c, flip, rot, i_ahead, r_ahead):
        cloudy, target, mask, sar = tf.numpy_function(
            read,
            [i, r, c, i_ahead, r_ahead],
            [tf.uint16, tf.uint16, tf.uint8, tf.float32],
            stateful=False,
        )
        cloudy = tf.ensure_shape(normalise_optical_tf(cloudy), (crop_h, crop_w, bands))
        target = tf.ensure_shape(normalise_optical_tf(target), (crop_h, crop_w, bands))
        mask = tf.ensure_shape(tf.cast(mask, tf.float32)[..., tf.newaxis], (crop_h, crop_w, 1))
        # One transform for the three 10 m images (stacked) and the same one for the 40 m SAR:
        # both grids share the crop origin, so flips and quarter turns map blocks onto blocks.
        stacked = tf.concat([cloudy, target, mask], axis=-1)
        if square:
            stacked = tf.ensure_shape(augment(stacked, flip, rot), stacked.shape)
        x = {"optical": stacked[..., :bands]}
        y = {"target": stacked[..., bands : 2 * bands], "mask": stacked[..., 2 * bands :]}
        if include_sar:
            sar = tf.ensure_shape(normalise_sar_tf(sar), sar_shape)
            x["sar"] = tf.ensure_shape(augment(sar, flip, rot), sar_shape) if square else sar
        return x, y

    return load


# ---------------------------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------------------------


def train_dataset(
    store: PatchStore,
    batch_size: int,
    crop_size: int | None = 128,
    seed: int = 42,
    first_epoch: int = 0,
    last_epoch: int | None = None,
    steps_per_epoch: int | None = None,
    include_sar: bool = True,
    augment_data: bool = True,
    parallel_calls: int | None = None,
    multiple_of: int = 1,
    read_ahead_samples: int = READ_AHEAD,
) -> tf.data.Dataset:
    """Batches of epochs ``first_epoch .. last_epoch - 1`` (endless when ``last_epoch`` is None).

    Epoch e yields ``epoch_size(len(store), batch_size, steps_per_epoch, multiple_of)`` batches
    built from ``epoch_samples(..., seed, e, ...)``: with ``steps_per_epoch`` None (and one
    replica), each sample exactly once. Feed it to
    ``Model.fit(steps_per_epoch=<those batches>, initial_epoch=first_epoch)``; consecutive Keras
    epochs then take consecutive plan epochs.

    ``read_ahead_samples`` K: while sample j is read, the crop rows of sample j + K are
    requested from the OS (``sampling.read_ahead``; the first K when the epoch starts); 0 turns
    it off. The samples are the same either way.
    """
    n, h, w = len(store), store.height, store.width
    crop = int(crop_size) if crop_size else min(h, w)
    check_store(store, crop)
    _, used = epoch_size(n, batch_size, steps_per_epoch, multiple_of)
    ahead = max(0, int(read_ahead_samples))
    announce = read_ahead(store, crop) if ahead else None
    load = _sample_fn(store, crop, crop, include_sar, announce)
    parallel = parallel_calls or tf.data.AUTOTUNE

    def plan(epoch: np.int64):
        p = epoch_samples(n, h, w, crop, seed, int(epoch), used, augment_data)
        i_ahead, r_ahead = np.full(used, -1, np.int64), np.zeros(used, np.int64)
        if ahead:
            later = max(0, used - ahead)  # samples that announce one further on
            i_ahead[:later], r_ahead[:later] = p.index[ahead:], p.row[ahead:]
            for i, r in zip(p.index[:ahead], p.row[:ahead], strict=False):
                announce(i, r)
        return p.index, p.row, p.col, p.flip, p.rot, i_ahead, r_ahead

    def one_epoch(epoch: tf.Tensor) -> tf.data.Dataset:
        arrays = tf.numpy_function(plan, [epoch], [tf.int64] * 7, stateful=False)
        arrays = [tf.ensure_shape(a, (used,)) for a in arrays]
        return (
            tf.data.Dataset.from_tensor_slices(tuple(arrays))
            .map(load, num_parallel_calls=parallel, deterministic=True)
            .batch(batch_size, drop_remainder=False)
        )

    stop = last_epoch if last_epoch is not None else np.iinfo(np.int64).max
    ds = tf.data.Dataset.range(first_epoch, stop).flat_map(one_epoch)
    return _with_options(ds).prefetch(tf.data.AUTOTUNE)


def eval_dataset(
    store: PatchStore,
    batch_size: int,
    include_sar: bool = True,
    parallel_calls: int | None = None,
    multiple_of: int = 1,
) -> tf.data.Dataset:
    """Full patches in store order, unaugmented, batched (last partial batch kept).

    ``multiple_of`` as in ``epoch_size``: with R replicas the last R - 1 patches at most are
    left out so that no replica gets an empty slice.
    """
    check_store(store)
    n = epoch_size(len(store), batch_size, None, multiple_of)[1]
    load = _sample_fn(store, store.height, store.width, include_sar)
    zeros = tf.zeros(n, tf.int64)
    samples = (tf.range(n, dtype=tf.int64), zeros, zeros, zeros, zeros, zeros - 1, zeros)
    ds = (
        tf.data.Dataset.from_tensor_slices(samples)
        .map(load, num_parallel_calls=parallel_calls or tf.data.AUTOTUNE, deterministic=True)
        .batch(batch_size, drop_remainder=False)
    )
    return _with_options(ds).prefetch(tf.data.AUTOTUNE)


def _with_options(ds: tf.data.Dataset) -> tf.data.Dataset:
    options = tf.data.Options()
    options.deterministic = True
    # Samples come from a memory-mapped file, not from files tf.data could shard per worker.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)
