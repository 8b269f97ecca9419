"""Strategy and precision on a CPU-only machine (multi-device runs: tests/training/test_loop.py)."""

from __future__ import annotations

import pytest
import tensorflow as tf

from tml_cloudremoval.training.backend import compute_dtype, tensorboard_available
from tml_cloudremoval.training.strategy import (
    chief_by_tf_config,
    is_chief,
    make_strategy,
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


@pytest.mark.parametrize(
    ("wanted", "policy"),
    [
        (False, None),
        (True, "mixed_float16"),
        ("float16", "mixed_float16"),
        ("bfloat16", "mixed_bfloat16"),
    ],
)
def test_each_mixed_precision_setting_has_its_policy_on_a_gpu(wanted, policy):
    assert compute_dtype(wanted, gpu=True) == policy
    assert compute_dtype(wanted, gpu=False) is None  # a CPU trains in float32


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="float16 or bfloat16, got 'float8'"):
        compute_dtype("float8", gpu=True)


def test_tensorboard_available_says_whether_the_package_imports():
    try:
        import tensorboard  # noqa: F401

        installed = True
    except ImportError:
        installed = False
    assert tensorboard_available() is installed


@pytest.mark.parametrize(
    ("distribution", "tf_config", "chief"),
    [
        ("none", '{"task": {"type": "worker", "index": 1}}', True),  # TF_CONFIG unused
        ("multi_worker", None, True),
        ("multi_worker", '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"index": 0}}', True),
        ("multi_worker", '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"index": 1}}', False),
        (
            "multi_worker",
            '{"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, '
            '"task": {"type": "worker", "index": 0}}',
            False,
        ),
        ("multi_worker", '{"cluster": {"chief": ["c:0"]}, "task": {"type": "chief"}}', True),
    ],
)
def test_the_writer_of_the_run_folder_is_known_from_tf_config(
    monkeypatch, distribution, tf_config, chief
):
    """The process that locks and writes the run folder, known before any TF work; it agrees
    with ``is_chief`` (worker 0 without a chief task, else the chief)."""
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    assert chief_by_tf_config(distribution) is chief
