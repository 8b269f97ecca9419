"""Run folder: atomic checkpoints, partial-write cleanup, resume refusals, pruning, log, finish."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pandas as pd
import pytest

from tml_cloudremoval.atomic import temporary_owner, temporary_sibling
from tml_cloudremoval.errors import ProjectError
from tml_cloudremoval.models.dsen2cr import build_dsen2cr
from tml_cloudremoval.training.config import ModelConfig, TrainingConfig
from tml_cloudremoval.training.run_folder import (
    ResumeState,
    RunFolder,
    fingerprint,
    recorded_settings,
    run_settings,
    settings_diff,
)
from tml_cloudremoval.training.trainer import dummy_inputs

FP = "0123456789abcdef"


@pytest.fixture(scope="module")
def network() -> keras.Model:
    model = build_dsen2cr(4, 1, tail_init="he_uniform")
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
    with pytest.raises(ProjectError, match="other settings"):
        run.resume_state("another", 3)
    with pytest.raises(RuntimeError, match="after epoch 2 but training.epochs is 1"):
        run.resume_state(FP, 1)


def _reaped() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _as_dead_run(path, pid: int):
    """The same temporary name as if made by the run ``pid``."""
    parts = path.name.split(".")
    parts[-3 if path.name.endswith(".tmp") else -4] = str(pid)
    return path.with_name(".".join(parts))


def test_partial_writes_of_a_killed_run_are_removed_and_whole_ones_kept(tmp_path, network):
    run = RunFolder(tmp_path / "run")
    _checkpoint(run, network, 1)
    dead = _reaped()
    half_folder = _as_dead_run(temporary_sibling(run.checkpoints / "epoch_0002"), dead)
    half_folder.mkdir()
    (half_folder / "trainer.weights.h5").write_bytes(b"torn")
    half_model = _as_dead_run(temporary_sibling(run.final_model, ".keras"), dead)
    half_model.write_bytes(b"torn")
    live = temporary_sibling(run.path / "training_log.csv")  # this live process's: kept
    live.write_text("being written")
    (run.path / "notes.txt").write_text("mine")
    run.clean_partial()
    assert sorted(p.name for p in run.checkpoints.iterdir()) == ["epoch_0001"]
    assert sorted(p.name for p in run.path.iterdir()) == sorted(
        ["checkpoints", "notes.txt", live.name]
    )


def test_a_checkpoint_that_fails_midway_leaves_nothing(tmp_path, network):
    run = RunFolder(tmp_path / "run")

    class Broken:
        weights = ()

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


def test_the_refusals_name_each_setting_that_differs(tmp_path, network):
    """Defect 6 of issue 12: resume's and reuse's refusals say which settings differ."""
    model, cfg = ModelConfig(8, 1), TrainingConfig(batch_size=4)
    old = run_settings(model, cfg, 10, (64, 64))
    new = run_settings(ModelConfig(16, 1), TrainingConfig(batch_size=2), 10, (64, 64))
    assert settings_diff(old, new) == [
        "model.features: 8 -> 16",
        "training.batch_size: 4 -> 2",
    ]
    assert settings_diff(old, old) == [] and settings_diff(None, new) == []
    run = RunFolder(tmp_path / "run")
    state = {"fingerprint": FP, "settings": old, "history": []}
    run.write_checkpoint(1, network, network, state)
    with pytest.raises(ProjectError, match=r"differ: model.features: 8 -> 16; training.batch"):
        run.resume_state("another", 3, new)
    run.finish(network, {"settings": old, "training": {"epochs": 3}})
    assert run.check_reuse(old, 3)["settings"] == old
    with pytest.raises(ProjectError, match=r"model.features: 8 -> 16.*if_finished=overwrite"):
        run.check_reuse(new, 3)
    with pytest.raises(
        ProjectError, match=r"other settings than asked for: training.epochs: 3 -> 5"
    ):
        run.check_reuse(old, 5)


def test_records_older_than_the_settings_key_still_name_the_differences():
    record = {"model": {"features": 16, "blocks": 1}, "training": {"epochs": 8, "seed": 1}}
    assert recorded_settings({**record, "n_train": 5}) == {
        "model": {"features": 16, "blocks": 1},
        "training": {"seed": 1},
        "n_train": 5,
    }
    assert recorded_settings({"fingerprint": FP}) is None
    new = run_settings(ModelConfig(64, 1), TrainingConfig(seed=1), 5, (64, 64))
    assert settings_diff(recorded_settings(record), new) == ["model.features: 16 -> 64"]


def test_a_temporary_of_a_dead_run_is_named_by_its_pid(tmp_path):
    dead = _reaped()
    assert temporary_owner(_as_dead_run(temporary_sibling(tmp_path / "a"), dead)) == dead
    assert temporary_owner(_as_dead_run(temporary_sibling(tmp_path / "a", ".keras"), dead)) == dead


LIMITED_SCRIPT = textwrap.dedent(
    """
    import resource, signal, sys
    from tml_cloudremoval.models.dsen2cr import build_dsen2cr
    from tml_cloudremoval.training.run_folder import RunFolder
    from tml_cloudremoval.training.trainer import dummy_inputs

    run, what, limit = RunFolder(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    network = build_dsen2cr(4, 1, tail_init="he_uniform")
    network(dummy_inputs(True))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    if what == "checkpoint":
        run.write_checkpoint(2, network, network, {"fingerprint": "0123456789abcdef"})
    else:
        run.finish(network, {"finished": True})
    """
)


@pytest.mark.parametrize("what", ["checkpoint", "final model"])
def test_a_full_disk_fails_the_checkpoint_with_a_named_error_and_keeps_the_last(
    tmp_path, network, what
):
    """With a file-size limit (as on a full disk) a checkpoint or the final model fails with an
    OutputWriteError naming the file; no partial file is left and the previous output holds."""
    run = RunFolder(tmp_path / "run")
    _checkpoint(run, network, 1)
    run.finish(network, {"finished": "before"})
    before = {p: p.read_bytes() for p in run.path.rglob("*") if p.is_file()}
    target = run.checkpoints / "epoch_0002" if what == "checkpoint" else run.final_model
    done = subprocess.run(
        [sys.executable, "-c", LIMITED_SCRIPT, str(run.path), what.split()[0], "20000"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("tml_cloudremoval.output_errors.OutputWriteError: ")
    assert f"{target}: not written: file too large" in last and "20000 bytes" in last
    after = {p: p.read_bytes() for p in run.path.rglob("*") if p.is_file()}
    assert after == before  # no partial file, no temporary; the last good outputs intact
    assert run.resume_state(FP, 3).initial_epoch == 1 and run.finished() == {"finished": "before"}
