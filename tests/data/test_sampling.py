"""data.sampling: the TF-free epoch plans and crop reader (their values are tested through the
tf.data path in test_input_pipeline.py; here: they need no TensorFlow and are the same objects)."""

from __future__ import annotations

import subprocess
import sys

from tml_cloudremoval.data import input_pipeline, sampling


def test_sampling_imports_without_tensorflow() -> None:
    code = (
        "import sys; import tml_cloudremoval.data.sampling as s; "
        "p = s.epoch_plan(5, 16, 16, 8, 1, 0); "
        "print(sorted(p.index.tolist()), 'tensorflow' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")[0]
    assert out == "[0, 1, 2, 3, 4] False"


def test_input_pipeline_reexports_the_same_objects() -> None:
    for name in ("FLIPS", "EpochPlan", "epoch_plan", "epoch_samples", "epoch_size"):
        assert getattr(input_pipeline, name) is getattr(sampling, name)
