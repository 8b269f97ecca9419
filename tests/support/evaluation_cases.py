"""Hand-made evaluation cases: six 16 x 16 x 10 patches with chosen cloud covers and a linear
Keras model whose prediction is known in closed form (tests/evaluation/test_protocol.py,
test_report.py)."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from tml_cloudremoval.bands import SAR_FACTOR
from tml_cloudremoval.data.patch_store import PatchStore, write_patch_store

SIZE = 16
EDGES = (0, 10, 30, 50, 70, 90, 100)
"""The default coverage bins in percent."""


def hand_masks() -> list[np.ndarray]:
    """Covers 0, 100, 12.5 (only the top two rows: no covered SSIM pixel), 50 (on an edge),
    75 and 9.8 % (a 5 x 5 blob): bins 0-10 (x2), 90-100, 10-30, 50-70, 70-90; 30-50 is empty."""
    masks = [np.zeros((SIZE, SIZE), np.uint8) for _ in range(6)]
    masks[1][:] = 1
    masks[2][:2] = 1
    masks[3][:, :8] = 1
    masks[4][:, :12] = 1
    masks[5][6:11, 6:11] = 1
    return masks


def make_store(path) -> PatchStore:
    """cloudy = target + 3000 DN under cloud; + 40 DN haze on clear pixels except in patch 3
    (whose clear pixels then equal the target: baseline RMSE 0 there, infinite PSNR)."""
    rng = np.random.default_rng(7)
    samples = []
    for i, mask in enumerate(hand_masks()):
        target = rng.integers(300, 3000, (SIZE, SIZE, 10)).astype(np.uint16)
        haze = 0 if i == 3 else 40
        cloudy = target + np.where(mask[..., None] == 1, 3000, haze).astype(np.uint16)
        s1 = rng.uniform(-20, -5, (SIZE // SAR_FACTOR, SIZE // SAR_FACTOR, 2)).astype(np.float32)
        samples.append({"s2_cloudy": cloudy, "s2": target, "s1": s1, "mask": mask})
    index = pd.DataFrame({"scene_id": ["ROIs1_spring_1"] * 6, "patch": [f"p{i}" for i in range(6)]})
    write_patch_store(path, samples, 6, SIZE, SIZE, index)
    return PatchStore.open(path)


def linear_model() -> keras.Model:
    """output = 0.9 optical + 0.05 (model units = DN / 2000): prediction DN = 0.9 DN + 100."""
    optical = keras.Input((None, None, 10), name="optical")
    sar = keras.Input((None, None, 2), name="sar")
    zero = keras.layers.Conv2D(10, 1, kernel_initializer="zeros")(
        keras.layers.UpSampling2D(SAR_FACTOR)(sar)
    )
    out = keras.layers.Rescaling(0.9, offset=0.05)(optical)
    return keras.Model({"optical": optical, "sar": sar}, keras.layers.Add()([out, zero]))
