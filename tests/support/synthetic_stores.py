"""Small learnable patch stores for tests, benchmarks and smoke runs.

Not part of the package: tests import it as ``from support.synthetic_stores import ...``
(``tests/conftest.py`` puts ``tests/`` on ``sys.path``); ``benchmarks/bench_training.py`` puts
``<repo>/tests`` on ``sys.path`` itself.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from tml_cloudremoval.bands import SAR_FACTOR, TML_BAND_NAMES
from tml_cloudremoval.data.patch_store import PatchStore, write_patch_store


def synthetic_patch_store(
    path: str | os.PathLike, n: int = 8, size: int = 64, seed: int = 0
) -> PatchStore:
    """Write and open a store of ``n`` random ``size`` x ``size`` patches with a learnable task.

    The target is smooth random reflectance; the cloudy input adds a bright, partly opaque
    cloud (and the mask marks it) over a random disc; SAR (dB) is a noisy function of the
    target's NIR band, so it carries information under the cloud.
    """
    rng = np.random.default_rng(seed)
    bands = len(TML_BAND_NAMES)
    yy, xx = np.mgrid[0:size, 0:size]

    def sample(i: int) -> dict[str, np.ndarray]:
        base = rng.uniform(300, 3000, bands)
        wave = np.sin(xx[..., None] / rng.uniform(4, 12) + rng.uniform(0, 6, bands)) * np.cos(
            yy[..., None] / rng.uniform(4, 12)
        )
        target = np.clip(base + 800 * wave, 0, 10000)
        cy, cx = rng.uniform(0, size, 2)
        r = rng.uniform(size / 6, size / 2)
        mask = ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r).astype(np.uint8)
        cloud = rng.uniform(0.6, 0.9)
        cloudy = np.where(mask[..., None] == 1, (1 - cloud) * target + cloud * 7000, target)
        nir = target[..., TML_BAND_NAMES.index("B8")]
        s = size // SAR_FACTOR
        blocks = nir.reshape(s, SAR_FACTOR, s, SAR_FACTOR).mean(axis=(1, 3))
        sar = np.stack([-20 + blocks / 300, -27 + blocks / 300], axis=-1)
        sar = sar + rng.normal(0, 0.3, sar.shape)
        return {
            "s2_cloudy": np.rint(cloudy).astype(np.uint16),
            "s2": np.rint(target).astype(np.uint16),
            "s1": sar.astype(np.float32),
            "mask": mask,
        }

    index = pd.DataFrame({"scene_id": [f"synthetic_{i}" for i in range(n)], "patch": "p0"})
    write_patch_store(
        path,
        (sample(i) for i in range(n)),
        n,
        size,
        size,
        index,
        {"source": "synthetic_patch_store"},
    )
    return PatchStore.open(path)
