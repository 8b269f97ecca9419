"""Thin nodes of the sample_data pipeline: parameters in, files written, a summary out.

The generation science lives in :mod:`tml_cloudremoval.data.sample_data`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tml_cloudremoval.data.sample_data import make_sen12mscr_sample, make_tml_scene


def make_sample_sen12mscr(seed: int, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params:sample_data.seed``, ``params:sample_data.sen12mscr`` -> summary (JSON-able dict).

    Writes the synthetic SEN12MS-CR dataset (official layout) under ``params["root"]``, or does
    nothing where an identical one is there already (see its ``manifest.json``).
    """
    return make_sen12mscr_sample(seed=int(seed), **dict(params))


def make_sample_tml_scene(seed: int, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params:sample_data.seed``, ``params:sample_data.tml_scene`` -> summary (JSON-able dict).

    Writes ``s2_cloudy.tif``, ``s1.tif`` (and ``s2_clear.tif``) under ``params["root"]``, or does
    nothing where an identical scene is there already.
    """
    return make_tml_scene(seed=int(seed), **dict(params))
