"""Which test patches to show, and what the example figure shows of each.

``select_examples`` picks store positions (given, or spread over the range of cloud cover);
``example_data`` runs the model on them and returns the images the figure draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tml_cloudremoval.bands import RGB_BAND_NAMES, S1_BAND_NAMES, TML_BAND_NAMES, band_indices
from tml_cloudremoval.data.patch_store import PatchStore
from tml_cloudremoval.evaluation.evaluate import check_store, index_column, predict_dn
from tml_cloudremoval.evaluation.metrics import to_reflectance


def select_examples(
    store: PatchStore, n_examples: int, indices: Sequence[int] | None = None
) -> list[int]:
    """Store positions of the patches to show.

    ``indices`` when given (checked against the store size); otherwise ``n_examples`` patches
    spread evenly over the range of cloud cover, partly covered patches first (they show both
    what the model fills in and what it keeps).
    """
    n = len(store)
    if indices is not None:
        bad = [i for i in indices if not 0 <= int(i) < n]
        if bad:
            raise ValueError(f"example indices {bad} out of range for a store of {n} patches")
        return [int(i) for i in indices]
    n_examples = min(int(n_examples), n)
    if n_examples <= 0:
        return []
    cover = np.array([float(np.mean(store.mask[i] != 0)) for i in range(n)])
    order = np.argsort(cover, kind="stable")
    partial = [int(i) for i in order if 0 < cover[i] < 1]
    rest = [int(i) for i in order if not 0 < cover[i] < 1]
    chosen = _spread(partial, n_examples)
    chosen += _spread(rest, n_examples - len(chosen))
    return sorted(chosen, key=lambda i: cover[i])


def _spread(items: Sequence[int], k: int) -> list[int]:
    """``k`` items evenly spaced through ``items`` (all of them when k >= len)."""
    if k <= 0 or not items:
        return []
    if k >= len(items):
        return list(items)
    picks = np.linspace(0, len(items) - 1, k).round().astype(int)
    return [items[i] for i in picks]


def example_data(model: Any, store: PatchStore, indices: Sequence[int]) -> list[dict[str, Any]]:
    """What :func:`~tml_cloudremoval.evaluation.plots.plot_examples` shows of ``indices``.

    Each item: ``title`` (scene and patch), ``sar_vv_db`` (h, w) dB, ``cloudy_rgb``,
    ``predicted_rgb``, ``target_rgb`` (H, W, 3) reflectance (bands RGB_BAND_NAMES), ``mask``
    (H, W), ``cloud_cover`` (fraction), ``mae_model`` and ``mae_baseline`` (all pixels).
    """
    if not indices:
        return []
    check_store(store)
    idx = list(indices)
    rgb = band_indices(RGB_BAND_NAMES, TML_BAND_NAMES)
    cloudy = np.asarray(store.s2_cloudy[idx])
    target = to_reflectance(store.s2[idx])
    pred = to_reflectance(predict_dn(model, cloudy, np.asarray(store.s1[idx])))
    cloudy_r = to_reflectance(cloudy)
    scenes, patches = index_column(store, "scene_id"), index_column(store, "patch")
    out = []
    for k, i in enumerate(idx):
        mask = np.asarray(store.mask[i])
        out.append(
            {
                "title": " ".join(t for t in (scenes[i], patches[i]) if t) or f"patch {i}",
                "sar_vv_db": np.asarray(store.s1[i][..., S1_BAND_NAMES.index("VV")]),
                "cloudy_rgb": cloudy_r[k][..., rgb],
                "predicted_rgb": pred[k][..., rgb],
                "target_rgb": target[k][..., rgb],
                "mask": mask,
                "cloud_cover": float(np.mean(mask != 0)),
                "mae_model": float(np.mean(np.abs(pred[k] - target[k]))),
                "mae_baseline": float(np.mean(np.abs(cloudy_r[k] - target[k]))),
            }
        )
    return out
