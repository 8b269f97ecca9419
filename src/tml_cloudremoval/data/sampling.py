"""The TensorFlow-free part of the training input: the random choices of an epoch and the
crop reader, shared by the tf.data path (``data.input_pipeline``) and the PyDataset path
(``data.patch_sequence``), so both yield the same samples for the same seed.

An epoch's plan (``epoch_plan``, ``epoch_samples``) fixes, per sample in epoch order, the store
index, the crop offsets (10 m pixels, multiples of ``SAR_FACTOR`` so the crop starts on a 40 m
SAR pixel), one flip (none / vertical / horizontal) and one rot90 (k = 0..3). Pass p of epoch e
draws from ``numpy.random.default_rng([seed, e])`` for p = 0 and ``default_rng([seed, e, p])``
after, so an epoch's batches do not depend on what ran before it. ``epoch_size`` gives the
batches and samples of one epoch; ``crop_reader`` slices one crop out of the memory-mapped store.

Read-ahead (``read_ahead``): since the plan fixes an epoch's samples in advance, the input path
asks the kernel (``posix_fadvise(POSIX_FADV_WILLNEED)``) to start reading the crop rows of the
sample ``READ_AHEAD`` places further on while it slices the current one, so that a store larger
than the page cache is read with many requests in flight instead of one page fault at a time
(``benchmarks/bench_input_bigstore.py``: 1.4 to 1.8 x samples/s from a cold store, no cost
when the store is cached). It changes when bytes are read, never which.
"""

from __future__ import annotations

import math
import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tml_cloudremoval.bands import SAR_FACTOR
from tml_cloudremoval.data.patch_store import PatchStore

READ_AHEAD = 32
"""Samples the read-ahead runs in front of the sample being read (two batches of 16; about
45 MB of page cache at crop 128)."""

FLIPS = ("none", "vertical", "horizontal")
"""Flip codes of ``epoch_plan``: 0 none, 1 vertical (rows reversed), 2 horizontal (columns)."""


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
# Reading one crop and checking the store
# ---------------------------------------------------------------------------------------------


def crop_reader(store: PatchStore, crop_h: int, crop_w: int):
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


def read_ahead(store: PatchStore, crop_h: int) -> Callable[[int, int], None]:
    """A function ``announce(index, row)`` that asks the kernel to read, in the background, the
    rows ``row .. row + crop_h - 1`` (10 m pixels; the matching 40 m rows of SAR) of patch
    ``index`` in every array of the store: one ``POSIX_FADV_WILLNEED`` per array, over the
    contiguous byte range of those rows. A no-op for arrays that are not memory-mapped files,
    and where the OS has no ``posix_fadvise``. ``index`` < 0 announces nothing.
    """
    ranges = []  # (fd, first byte of patch 0's data, bytes per patch, bytes per row, factor)
    for name in ("s2_cloudy", "s2", "mask", "s1"):
        array = getattr(store, name)
        if not hasattr(os, "posix_fadvise") or not _whole_file_map(array):
            continue
        fd = os.open(array.filename, os.O_RDONLY)
        weakref.finalize(array, os.close, fd)
        row_bytes = array.strides[1]
        factor = store.height // array.shape[1]
        ranges.append((fd, array.offset, array.strides[0], row_bytes, factor))
    if not ranges:
        return lambda index, row: None

    def announce(index: int, row: int) -> None:
        if index < 0:
            return
        for fd, offset, patch_bytes, row_bytes, factor in ranges:
            start = offset + int(index) * patch_bytes + int(row) // factor * row_bytes
            os.posix_fadvise(fd, start, crop_h // factor * row_bytes, os.POSIX_FADV_WILLNEED)

    return announce


def _whole_file_map(array: np.ndarray) -> bool:
    """True for a C-ordered memory map of a whole ``.npy`` file's data (not a view of part)."""
    if not isinstance(array, np.memmap) or not array.flags.c_contiguous or not array.filename:
        return False
    try:
        return array.offset + array.nbytes == os.path.getsize(array.filename)
    except OSError:
        return False


def check_store(store: PatchStore, crop: int | None = None) -> None:
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
