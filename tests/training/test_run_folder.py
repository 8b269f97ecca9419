"""Run folder: atomic checkpoints, partial-write cleanup, resume refusals, pruning, log, finish."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest

from tml_cloudremoval.atomic import temporary_sibling
from tml_cloudremoval.models.dsen2cr import build_dsen2cr
from tml_cloudremoval.training.config import ModelConfig, TrainingConfig
from tml_cloudremoval.training.run_folder import ResumeState, RunFolder, fingerprint
from tml_cloudremoval.training.trainer import dummy_inputs

FP = "0123456789abcdef"


@pytest.fixture(scope="module")
def network() -> keras.Model:
    model = build_dsen2cr(4, 1)
    model(dummy_inputs(True))
    return model


def _checkpoint(run: RunFolder, network: keras.Model, epoch: int, fp: str = FP) -> None:
    history = [{"epoch": e, "loss": 1.0 / e} for e in range(1, epoch + 1)]
    run.write_checkpoint(epoch, network, network, {"fingerprint": fp, "history": history})


def test_a_new_run_folder_needs_no_folder(tmp_path):
    run = RunFolder(tmp_path / "absent")
    assert run.resume_state(FP, 3) == ResumeState(0, [], None)
    assert run.resume_state(FP, 3).weights is None
    assert run.finished() is None and run.checkpoint_folders() == [] and run.log().empty
    assert not run.path.exists()


def test_resume_state_is_the_newest_whole_checkpoint(tmp_path, network):
    run = RunFolder(tmp_path / "run")
    for epoch in (1, 2):
        _checkpoint(run, network, epoch)
    (run.checkpoints / "epoch_0003").mkdir()  # no state.json: not a whole checkpoint
    state = run.resume_state(FP, 3)
    assert state.initial_epoch == 2 and state.checkpoint == run.checkpoints / "epoch_0002"
    assert [row["epoch"] for row in state.history] == [1, 2]
    assert state.weights.is_file()
    assert sorted(p.name for p in state.checkpoint.iterdir()) == [
        "model.keras",
        "state.json",
        "trainer.weights.h5",
    ]
    saved = keras.saving.load_model(state.checkpoint / "model.keras", safe_mode=True)
    for a, b in zip(saved.get_weights(), network.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_resume_with_other_settings_or_past_the_last_epoch_is_refused(tmp_path, network):
    run = RunFolder(tmp_path / "run")
    _checkpoint(run, network, 2)
    with pytest.raises(RuntimeError, match="other settings"):
        run.resume_state("another", 3)
    with pytest.raises(RuntimeError, match="after epoch 2 but training.epochs is 1"):
        run.resume_state(FP, 1)


def test_partial_writes_of_a_killed_run_are_removed_and_whole_ones_kept(tmp_path, network):
    run = RunFolder(tmp_path / "run")
    _checkpoint(run, network, 1)
    half_folder = temporary_sibling(run.checkpoints / "epoch_0002")
    half_folder.mkdir()
    (half_folder / "trainer.weights.h5").write_bytes(b"torn")
    half_model = temporary_sibling(run.final_model, ".keras")
    half_model.write_bytes(b"torn")
    old_style = run.checkpoints / ".tmp_epoch_0002_abc"  # left by the unrefactored code
    old_style.mkdir()
    (run.path / "notes.txt").write_text("mine")
    run.clean_partial()
    assert sorted(p.name for p in run.checkpoints.iterdir()) == ["epoch_0001"]
    assert sorted(p.name for p in run.path.iterdir()) == ["checkpoints", "notes.txt"]


def test_a_checkpoint_that_fails_midway_leaves_nothing(tmp_path, network):
    run = RunFolder(tmp_path / "run")

    class Broken:
        def save(self, path):
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        run.write_checkpoint(1, network, Broken(), {"fingerprint": FP})
    assert list(run.checkpoints.iterdir()) == []
    assert run.resume_state(FP, 3).initial_epoch == 0


def test_prune_keeps_the_newest_checkpoints(tmp_path, network):
    run = RunFolder(tmp_path / "run")
    for epoch in (1, 2, 3):
        _checkpoint(run, network, epoch)
    run.prune(None)
    assert len(run.checkpoint_folders()) == 3
    run.prune(2)
    assert [e for e, _ in run.checkpoint_folders()] == [2, 3]


def test_log_round_trips_floats_exactly_and_columns_in_order(tmp_path):
    run = RunFolder(tmp_path / "run")
    history = [{"epoch": 1, "loss": 0.1 + 0.2}, {"epoch": 2, "loss": 1 / 3, "val_loss": 0.5}]
    run.write_log(history)
    log = run.log()
    assert log.columns.tolist() == ["epoch", "loss", "val_loss"]
    assert log["loss"].tolist() == [0.1 + 0.2, 1 / 3]
    assert log["epoch"].tolist() == [1, 2] and pd.isna(log["val_loss"][0])


def test_finish_writes_the_model_then_the_marker(tmp_path, network):
    run = RunFolder(str(tmp_path / "run"))
    run.finish(network, {"finished": True, "loss": np.float32(0.5)})
    assert run.finished() == {"finished": True, "loss": 0.5}
    assert json.loads(run.marker.read_text())["finished"] is True
    loaded = run.load_final_model()
    assert loaded.count_params() == network.count_params()
    assert sorted(p.name for p in run.path.iterdir()) == ["FINISHED.json", "final_model.keras"]
    run.remove()
    assert not run.path.exists()


def test_fingerprint_follows_the_settings_a_resume_must_share():
    model, cfg = ModelConfig(8, 1), TrainingConfig()
    base = fingerprint(model, cfg, 10, (64, 64))
    assert base == fingerprint(ModelConfig(8, 1), TrainingConfig(), 10, (64, 64))
    assert base == fingerprint(model, TrainingConfig(epochs=20, verbose=0), 10, (64, 64))
    for other in (
        fingerprint(ModelConfig(8, 2), cfg, 10, (64, 64)),
        fingerprint(model, TrainingConfig(steps_per_epoch=5), 10, (64, 64)),
        fingerprint(model, TrainingConfig(learning_rate=1e-3), 10, (64, 64)),
        fingerprint(model, cfg, 11, (64, 64)),
        fingerprint(model, cfg, 10, (32, 64)),
    ):
        assert other != base
