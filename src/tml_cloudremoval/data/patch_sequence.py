"""The TensorFlow-free training input: ``keras.utils.PyDataset`` over a ``PatchStore``.

The twin of ``data.input_pipeline`` for Keras backends without TensorFlow (JAX, PyTorch), and
usable on TensorFlow too (``training.input: pydataset``). Batches are the same, sample by
sample, as those of ``train_dataset`` / ``eval_dataset`` for the same arguments: the same epoch
plans (``data.sampling.epoch_samples``: order, crop offsets, flips, rotations per (seed,
epoch)), the same crop reader, the same float32 normalisation (``tml_cloudremoval.normalise``,
the constants of the TF twins) and the same flip-then-rot90 (``numpy.rot90`` and
``tf.image.rot90`` turn the same way). A batch is ``(x, y)``, channels_last float32 (model
units): ``x["optical"]`` (B, h, w, 10), ``x["sar"]`` (B, h/4, w/4, 2) (only with SAR),
``y["target"]`` (B, h, w, 10), ``y["mask"]`` (B, h, w, 1).

``TrainSequence`` is endless in Keras' sense (``num_batches`` None): batch i is batch
i mod S of epoch ``first_epoch + i // S`` (S = batches per epoch), so with
``Model.fit(steps_per_epoch=S)`` consecutive Keras epochs take consecutive plan epochs,
exactly like the endless tf.data dataset; Keras keeps one index counter across epochs for
endless datasets, so batches prefetched at an epoch's end are used by the next one. Items are
a pure function of the index (plans cached per epoch), so ``workers`` threads or processes
(``use_multiprocessing``) give the same batches in the same order (Keras' ordered enqueuer).
Keras stops after ``epochs``; the enqueuer's read-ahead past the last epoch (at most
``max_queue_size`` batches of the next plan epoch) is read and dropped.

Workers are threads by default: reading the memory-mapped crop, the casts, clipping and
copies are numpy calls that release the GIL. Processes (``use_multiprocessing=True``) are
forked from the training process; forking a process that runs JAX or TensorFlow threads can
deadlock (seen here: a forked worker of a test process that had run TensorFlow hung), so the
training loop always uses threads.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

from tml_cloudremoval.bands import SAR_FACTOR
from tml_cloudremoval.data.patch_store import PatchStore
from tml_cloudremoval.data.sampling import (
    EpochPlan,
    check_store,
    crop_reader,
    epoch_samples,
    epoch_size,
)
from tml_cloudremoval.normalise import normalise_optical, normalise_sar

Batch = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]


def augment_np(image: np.ndarray, flip: int, rot: int) -> np.ndarray:
    """Flip (0 none, 1 vertical, 2 horizontal), then ``rot`` quarter turns counter-clockwise of
    an (H, W, C) array: ``input_pipeline.augment`` in numpy."""
    if flip == 1:
        image = image[::-1]
    elif flip == 2:
        image = image[:, ::-1]
    return np.rot90(image, k=int(rot), axes=(0, 1))


class _StoreSequence(keras.utils.PyDataset):
    """Shared reading of one sample (crop, normalisation, augmentation) into batch arrays."""

    def __init__(
        self,
        store: PatchStore,
        batch_size: int,
        crop: tuple[int, int],
        include_sar: bool,
        workers: int = 1,
        use_multiprocessing: bool = False,
        max_queue_size: int = 10,
    ) -> None:
        super().__init__(
            workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size
        )
        self.store = store
        self.batch_size = int(batch_size)
        self.crop = crop
        self.include_sar = include_sar
        self._read = crop_reader(store, *crop)

    def _batch(self, plan: EpochPlan, start: int, stop: int) -> Batch:
        """Samples ``start .. stop - 1`` of ``plan`` as one batch (module docstring)."""
        h, w = self.crop
        bands = int(self.store.s2.shape[-1])
        n = stop - start
        optical = np.empty((n, h, w, bands), np.float32)
        target = np.empty((n, h, w, bands), np.float32)
        mask = np.empty((n, h, w, 1), np.float32)
        sar = np.empty((n, h // SAR_FACTOR, w // SAR_FACTOR, self.store.s1.shape[-1]), np.float32)
        square = h == w
        for k, j in enumerate(range(start, stop)):
            cloudy_dn, target_dn, mask_u8, sar_db = self._read(
                plan.index[j], plan.row[j], plan.col[j]
            )
            flip, rot = (int(plan.flip[j]), int(plan.rot[j])) if square else (0, 0)
            optical[k] = augment_np(normalise_optical(cloudy_dn), flip, rot)
            target[k] = augment_np(normalise_optical(target_dn), flip, rot)
            mask[k] = augment_np(mask_u8.astype(np.float32)[..., np.newaxis], flip, rot)
            if self.include_sar:
                sar[k] = augment_np(normalise_sar(sar_db), flip, rot)
        x = {"optical": optical, **({"sar": sar} if self.include_sar else {})}
        return x, {"target": target, "mask": mask}


class TrainSequence(_StoreSequence):
    """Training batches of epochs ``first_epoch, first_epoch + 1, ...`` (``train_dataset``'s
    arguments and samples, endless; see the module docstring). ``steps`` and ``used``: batches and
    samples per epoch (``sampling.epoch_size``)."""

    def __init__(
        self,
        store: PatchStore,
        batch_size: int,
        crop_size: int | None = 128,
        seed: int = 42,
        first_epoch: int = 0,
        steps_per_epoch: int | None = None,
        include_sar: bool = True,
        augment_data: bool = True,
        multiple_of: int = 1,
        **pydataset: Any,
    ) -> None:
        crop = int(crop_size) if crop_size else min(store.height, store.width)
        check_store(store, crop)
        super().__init__(store, batch_size, (crop, crop), include_sar, **pydataset)
        self.steps, self.used = epoch_size(len(store), batch_size, steps_per_epoch, multiple_of)
        self.seed, self.augment_data = int(seed), bool(augment_data)
        self.first_epoch = int(first_epoch)
        self._plans: dict[int, EpochPlan] = {}

    @property
    def num_batches(self) -> None:
        return None  # endless: Keras keeps one index counter across epochs

    def plan(self, epoch: int) -> EpochPlan:
        """The samples of ``epoch`` (cached; the two newest epochs are kept)."""
        plan = self._plans.get(epoch)
        if plan is None:
            s = self.store
            plan = epoch_samples(
                len(s), s.height, s.width, self.crop[0], self.seed, epoch, self.used,
                self.augment_data,
            )  # fmt: skip
            self._plans = {e: p for e, p in self._plans.items() if e == epoch - 1}
            self._plans[epoch] = plan
        return plan

    def __getitem__(self, index: int) -> Batch:
        epoch = self.first_epoch + index // self.steps
        start = (index % self.steps) * self.batch_size
        return self._batch(self.plan(epoch), start, min(start + self.batch_size, self.used))


class EvalSequence(_StoreSequence):
    """Full patches in store order, unaugmented, batched with the last partial batch kept
    (``eval_dataset``'s samples; ``multiple_of`` as in ``sampling.epoch_size``)."""

    def __init__(
        self,
        store: PatchStore,
        batch_size: int,
        include_sar: bool = True,
        multiple_of: int = 1,
        **pydataset: Any,
    ) -> None:
        check_store(store)
        super().__init__(store, batch_size, (store.height, store.width), include_sar, **pydataset)
        self.n = epoch_size(len(store), batch_size, None, multiple_of)[1]
        zeros = np.zeros(self.n, np.int64)
        self._plan = EpochPlan(np.arange(self.n, dtype=np.int64), zeros, zeros, zeros, zeros)

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __getitem__(self, index: int) -> Batch:
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        start = index * self.batch_size
        return self._batch(self._plan, start, min(start + self.batch_size, self.n))
