"""Band table and selection by name."""

from __future__ import annotations

import numpy as np
import pytest

from tml_cloudremoval.bands import (
    S2_BAND_NAMES,
    TML_BAND_NAMES,
    TML_BANDS,
    band_indices,
    select_bands,
    select_tml_bands,
    tml_band_indices,
)


def test_tables_follow_esa_order_and_tml_drops_three_bands():
    assert S2_BAND_NAMES == (
        "B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12",
    )  # fmt: skip
    assert len(TML_BAND_NAMES) == 10
    assert set(S2_BAND_NAMES) - set(TML_BAND_NAMES) == {"B1", "B9", "B10"}
    assert [b.resolution_m for b in TML_BANDS] == [10, 10, 10, 20, 20, 20, 10, 20, 20, 20]


def test_tml_indices_in_the_13_band_stack():
    # B2..B8A are positions 1..8, B11 and B12 the last two.
    assert tml_band_indices() == [1, 2, 3, 4, 5, 6, 7, 8, 11, 12]


def test_select_tml_bands_picks_by_name():
    stack = np.broadcast_to(np.arange(13, dtype=np.uint16), (4, 5, 13))
    out = select_tml_bands(stack)
    assert out.shape == (4, 5, 10)
    np.testing.assert_array_equal(out[0, 0], [1, 2, 3, 4, 5, 6, 7, 8, 11, 12])


def test_select_tml_bands_keeps_a_tml_stack_and_reorders_named_ones():
    tml = np.zeros((2, 2, 10))
    assert select_tml_bands(tml, TML_BAND_NAMES) is tml
    reversed_names = TML_BAND_NAMES[::-1]
    stack = np.broadcast_to(np.arange(10), (1, 1, 10))
    np.testing.assert_array_equal(
        select_tml_bands(stack, reversed_names)[0, 0], np.arange(10)[::-1]
    )


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"\['B13'\] not among"):
        band_indices(["B2", "B13"])
    with pytest.raises(ValueError, match="has 12 bands.*expected 13"):
        select_bands(np.zeros((2, 2, 12)), ["B2"])
