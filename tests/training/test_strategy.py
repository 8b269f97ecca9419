"""Strategy and precision on a CPU-only machine (multi-device runs: tests/training/test_loop.py)."""

from __future__ import annotations

import pytest
import tensorflow as tf

from tml_cloudremoval.training.strategy import (
    compute_dtype,
    is_chief,
    make_strategy,
    tensorboard_available,
)


def test_none_is_the_default_strategy_and_its_process_is_the_chief():
    strategy = make_strategy("none")
    assert strategy is tf.distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1
    assert is_chief(strategy)


def test_unknown_distribution_is_refused():
    with pytest.raises(ValueError, match="one of .*'mirrored'"):
        make_strategy("gpu")


def test_mixed_precision_only_with_a_gpu():
    assert compute_dtype(False) is None
    expected = "mixed_float16" if tf.config.list_physical_devices("GPU") else None
    assert compute_dtype(True) == expected


def test_tensorboard_available_says_whether_the_package_imports():
    try:
        import tensorboard  # noqa: F401

        installed = True
    except ImportError:
        installed = False
    assert tensorboard_available() is installed
