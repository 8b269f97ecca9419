"""``PatchStoreDataset``: a training-ready patch store folder as a Kedro catalog entry.

Catalog::

    train_patches:
      type: tml_cloudremoval.datasets.patch_store_dataset.PatchStoreDataset
      filepath: data/05_model_input/train

``load()`` opens the folder as a :class:`~tml_cloudremoval.data.patch_store.PatchStore` (read-only
memory maps, nothing is read up front). ``save(samples)`` writes one atomically: a
:class:`~tml_cloudremoval.data.triplets.TripletSamples` with
:func:`~tml_cloudremoval.data.store_build.build_patch_store` (workers write straight into the
store; a killed build continues on the next run), anything else with
:func:`~tml_cloudremoval.data.patch_store.write_patch_store`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd

from tml_cloudremoval.data.patch_store import ARRAYS, PatchStore, write_patch_store
from tml_cloudremoval.data.store_build import build_patch_store
from tml_cloudremoval.datasets.folder import FolderDataset


class PatchStoreDataset(FolderDataset[Any, PatchStore]):
    """A patch store folder (``s2_cloudy.npy``, ``s2.npy``, ``s1.npy``, ``mask.npy``,
    ``index.csv``, ``meta.json``).

    ``save(data)`` takes either a sized iterable of sample dicts (keys ``s2_cloudy``, ``s2``,
    ``s1``, ``mask``; e.g. :class:`~tml_cloudremoval.data.triplets.TripletSamples`) with an
    ``index`` DataFrame (one row per sample) and a ``meta`` dict attribute, optionally
    ``height`` and ``width`` (else taken from the first sample), or a :class:`PatchStore`
    (copied). Samples with a ``store_group`` (a
    :class:`~tml_cloudremoval.data.store_group.FolderGroup`) and ``store_member`` are put in
    place together with the group's other stores: a fault in any of them replaces none.
    A source with ``write_rows`` and ``resume_key`` (a
    :class:`~tml_cloudremoval.data.store_build.RowSource`) writes its own rows, resumably.
    """

    def load(self) -> PatchStore:
        return PatchStore.open(self._path)

    def save(self, data: Any) -> None:
        group = getattr(data, "store_group", None)
        member = getattr(data, "store_member", None) or "store"
        if hasattr(data, "write_rows") and hasattr(data, "resume_key"):
            build_patch_store(self._path, data, group=group, member=member)
            return
        if isinstance(data, PatchStore):
            samples: Iterable[Mapping[str, np.ndarray]] = (
                {name: getattr(data, name)[i] for name in ARRAYS} for i in range(len(data))
            )
            height, width = data.height, data.width
        else:
            if not hasattr(data, "__len__") or not isinstance(
                getattr(data, "index", None), pd.DataFrame
            ):
                raise TypeError(
                    "PatchStoreDataset.save needs a sized iterable of sample dicts with an "
                    f"'index' DataFrame attribute (e.g. TripletSamples), got {type(data).__name__}"
                )
            samples = iter(data)
            height = getattr(data, "height", None)
            width = getattr(data, "width", None)
            if height is None or width is None:
                first = next(samples, None)
                if first is None:
                    raise ValueError(f"{self._path}: no samples to write")
                height, width = (int(v) for v in np.shape(first["s2"])[:2])
                samples = chain([first], samples)
        write_patch_store(
            self._path,
            samples,
            n=len(data),
            height=int(height),
            width=int(width),
            index=data.index,
            meta=dict(getattr(data, "meta", None) or {}),
            group=group,
            member=member,
        )

    def _exists(self) -> bool:
        return (self._path / "meta.json").is_file()
