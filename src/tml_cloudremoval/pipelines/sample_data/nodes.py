"""Thin nodes of the sample_data pipeline: validated parameters in, lazy products out.

Each node validates the whole ``params:sample_data`` section
(:class:`~tml_cloudremoval.data.config.SampleDataConfig`) before any work, so a bad key
anywhere in it stops whichever node runs first. The products are written by their catalog
datasets (``sen12mscr_sample``, ``tml_scene_sample``) to the folders the catalog names; the
generation science lives in :mod:`tml_cloudremoval.data.synthetic`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tml_cloudremoval.data.config import sample_data_config
from tml_cloudremoval.data.synthetic.sen12mscr_sample import Sen12mscrSample
from tml_cloudremoval.data.synthetic.tml_scene import TmlSceneSample


def make_sample_sen12mscr(sample_data: Mapping[str, Any]) -> Sen12mscrSample:
    """``params:sample_data`` -> the synthetic SEN12MS-CR dataset (official layout), lazily:
    the catalog writes it, or leaves it alone where an identical one is there already."""
    config = sample_data_config(sample_data)
    return Sen12mscrSample(config.seed, config.sen12mscr)


def make_sample_tml_scene(sample_data: Mapping[str, Any]) -> TmlSceneSample:
    """``params:sample_data`` -> the sample TML scene (``s2_cloudy.tif``, ``s1.tif``,
    ``s2_clear.tif``), lazily: the catalog writes it, or leaves an identical one alone."""
    config = sample_data_config(sample_data)
    return TmlSceneSample(config.seed, config.tml_scene)
