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
choices of pass p of epoch e are drawn from ``numpy.random.default_rng([seed, e])`` for p = 0 and
``default_rng([seed, e, p])`` after (``epoch_plan``), so an epoch's batches do not depend on
what ran before it: a resumed run sees exactly the batches an uninterrupted run would.

Validation (``eval_dataset``): full patches in store order, no crop, no augmentation.

Reading: a ``tf.numpy_function`` slices the crop straight out of the memory-mapped store (only
the crop's bytes are read); casting, normalisation and augmentation are TF ops, which run in the
parallel map without holding the GIL; batches are prefetched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tml_cloudremoval.bands import SAR_FACTOR
from tml_cloudremoval.data.patch_store import PatchStore
from tml_cloudremoval.normalise import MAX_VAL_SAR, OPTICAL_CLIP_DN, OPTICAL_SCALE, SAR_CLIP_DB

FLIPS = ("none", "vertical", "horizontal")
"""Flip codes of ``epoch_plan``: 0 none, 1 vertical (rows reversed), 2 horizontal (columns)."""


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
# The random choices of one epoch
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EpochPlan:
    """Per-sample choices of one training epoch, all int64 arrays of length n (epoch order)."""

    index: np.ndarray
    """Store index of each sample, a permutation of 0..N-1."""
    row: np.ndarray
    """Crop offsets in 10 m pixels, multiples of ``SAR_FACTOR``."""
    col: np.ndarray
    flip: np.ndarray
    """0 none, 1 vertical, 2 horizontal (see ``FLIPS``)."""
    rot: np.ndarray
    """Quarter turns counter-clockwise, 0..3 (``np.rot90`` / ``tf.image.rot90`` convention)."""


def epoch_plan(
    n: int,
    height: int,
    width: int,
    crop_size: int,
    seed: int,
    epoch: int,
    augment: bool = True,
    repeat: int = 0,
) -> EpochPlan:
    """Shuffle order, crop offsets and augmentation of pass ``repeat`` over the ``n`` samples in
    epoch ``epoch`` (both 0-based), reproducibly: pass 0 from ``default_rng([seed, epoch])``,
    pass p > 0 from ``default_rng([seed, epoch, p])``.

    Offsets are drawn uniformly among the multiples of ``SAR_FACTOR`` that keep the crop inside
    the ``height`` x ``width`` patch.
    """
    key = [int(seed), int(epoch)] + ([int(repeat)] if repeat else [])
    rng = np.random.default_rng(key)
    index = rng.permutation(n).astype(np.int64)
    row = rng.integers(0, (height - crop_size) // SAR_FACTOR + 1, n) * SAR_FACTOR
    col = rng.integers(0, (width - crop_size) // SAR_FACTOR + 1, n) * SAR_FACTOR
    flip = rng.integers(0, len(FLIPS), n)
    rot = rng.integers(0, 4, n)
    if not augment:
        flip = np.zeros(n, np.int64)
        rot = np.zeros(n, np.int64)
    return EpochPlan(*(a.astype(np.int64) for a in (index, row, col, flip, rot)))


def epoch_samples(
    n: int,
    height: int,
    width: int,
    crop_size: int,
    seed: int,
    epoch: int,
    count: int,
    augment: bool = True,
) -> EpochPlan:
    """The first ``count`` samples of epoch ``epoch``: passes 0, 1, ... of ``epoch_plan``
    (each a new order of the ``n`` samples) one after the other, cut at ``count``."""
    passes = [
        epoch_plan(n, height, width, crop_size, seed, epoch, augment, repeat)
        for repeat in range(max(1, math.ceil(count / n)))
    ]
    names = ("index", "row", "col", "flip", "rot")
    return EpochPlan(
        *(np.concatenate([getattr(p, name) for p in passes])[:count] for name in names)
    )


def epoch_size(
    n: int, batch_size: int, steps: int | None = None, multiple_of: int = 1
) -> tuple[int, int]:
    """(batches, samples) of one epoch over ``n`` samples.

    ``steps`` None: every sample once, the last partial batch kept, ceil(n / batch_size)
    batches. With ``multiple_of`` R > 1 (R replicas under tf.distribute, which must divide
    ``batch_size``) the epoch's sample count is rounded down to a multiple of R, so that no
    replica receives an empty slice of the last partial batch: at most R - 1 samples sit out an
    epoch, different ones each epoch since the order is reshuffled. ``steps`` S (Keras'
    ``steps_per_epoch``): S full batches, S x batch_size samples (repeating a smaller store).
    """
    if n < 1:
        raise ValueError("no samples: the patch store is empty")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if multiple_of < 1 or batch_size % multiple_of:
        raise ValueError(
            f"batch_size {batch_size} must be a multiple of the {multiple_of} replicas"
        )
    if steps is not None:
        if steps < 1:
            raise ValueError(f"steps per epoch must be >= 1, got {steps}")
        return int(steps), int(steps) * batch_size
    used = n - n % multiple_of
    if used == 0:
        raise ValueError(f"{n} samples cannot be split over {multiple_of} replicas")
    return math.ceil(used / batch_size), used


# ---------------------------------------------------------------------------------------------
# Reading and augmenting one sample
# ---------------------------------------------------------------------------------------------


def _reader(store: PatchStore, crop_h: int, crop_w: int):
    """numpy function (index, row, col) -> crop of cloudy, target, mask, SAR (store dtypes)."""
    sh, sw = crop_h // SAR_FACTOR, crop_w // SAR_FACTOR

    def read(i: np.int64, r: np.int64, c: np.int64):
        i, r, c = int(i), int(r), int(c)
        rs, cs = r // SAR_FACTOR, c // SAR_FACTOR
        return (
            np.ascontiguousarray(store.s2_cloudy[i, r : r + crop_h, c : c + crop_w]),
            np.ascontiguousarray(store.s2[i, r : r + crop_h, c : c + crop_w]),
            np.ascontiguousarray(store.mask[i, r : r + crop_h, c : c + crop_w]),
            np.ascontiguousarray(store.s1[i, rs : rs + sh, cs : cs + sw]),
        )

    return read


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


def _sample_fn(store: PatchStore, crop_h: int, crop_w: int, include_sar: bool):
    """tf function (index, row, col, flip, rot) -> (x, y) of one sample (see the module doc)."""
    read = _reader(store, crop_h, crop_w)
    bands = int(store.s2.shape[-1])
    sar_shape = (crop_h // SAR_FACTOR, crop_w // SAR_FACTOR, int(store.s1.shape[-1]))
    square = crop_h == crop_w

    def load(i, r, c, flip, rot):
        cloudy, target, mask, sar = tf.numpy_function(
            read, [i, r, c], [tf.uint16, tf.uint16, tf.uint8, tf.float32], stateful=False
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


def _check_store(store: PatchStore, crop: int | None = None) -> None:
    """Fail early, naming the store, when it is empty or ``crop`` does not fit its patches."""
    h, w = store.height, store.width
    where = getattr(store, "path", "patch store")
    if len(store) < 1:
        raise ValueError(f"{where}: the patch store holds no patches")
    if crop is None:
        return
    if crop < SAR_FACTOR or crop % SAR_FACTOR:
        raise ValueError(f"crop_size {crop} is not a positive multiple of {SAR_FACTOR}")
    if crop > min(h, w):
        raise ValueError(f"{where}: crop_size {crop} exceeds the patch size {h}x{w}")


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
) -> tf.data.Dataset:
    """Batches of epochs ``first_epoch .. last_epoch - 1`` (endless when ``last_epoch`` is None).

    Epoch e yields ``epoch_size(len(store), batch_size, steps_per_epoch, multiple_of)`` batches
    built from ``epoch_samples(..., seed, e, ...)``: with ``steps_per_epoch`` None (and one
    replica), each sample exactly once. Feed it to
    ``Model.fit(steps_per_epoch=<those batches>, initial_epoch=first_epoch)``; consecutive Keras
    epochs then take consecutive plan epochs.
    """
    n, h, w = len(store), store.height, store.width
    crop = int(crop_size) if crop_size else min(h, w)
    _check_store(store, crop)
    _, used = epoch_size(n, batch_size, steps_per_epoch, multiple_of)
    load = _sample_fn(store, crop, crop, include_sar)
    parallel = parallel_calls or tf.data.AUTOTUNE

    def plan(epoch: np.int64):
        p = epoch_samples(n, h, w, crop, seed, int(epoch), used, augment_data)
        return p.index, p.row, p.col, p.flip, p.rot

    def one_epoch(epoch: tf.Tensor) -> tf.data.Dataset:
        arrays = tf.numpy_function(plan, [epoch], [tf.int64] * 5, stateful=False)
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
    _check_store(store)
    n = epoch_size(len(store), batch_size, None, multiple_of)[1]
    load = _sample_fn(store, store.height, store.width, include_sar)
    zeros = tf.zeros(n, tf.int64)
    samples = (tf.range(n, dtype=tf.int64), zeros, zeros, zeros, zeros)
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
