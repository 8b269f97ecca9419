"""RunFolderDataset: loads a RunFolder handle (also before the run exists), refuses save."""

from __future__ import annotations

import pytest
from kedro.io import DataCatalog, DatasetError

from tml_cloudremoval.datasets.run_folder_dataset import RunFolderDataset
from tml_cloudremoval.training.run_folder import RunFolder

TYPE = "tml_cloudremoval.datasets.run_folder_dataset.RunFolderDataset"


def _catalog(path) -> DataCatalog:
    return DataCatalog.from_config({"training_run": {"type": TYPE, "filepath": str(path)}})


def test_a_run_that_does_not_exist_yet_loads_as_an_empty_handle(tmp_path):
    catalog = _catalog(tmp_path / "run")
    assert not catalog.exists("training_run")
    run = catalog.load("training_run")
    assert isinstance(run, RunFolder) and run.path == tmp_path / "run"
    assert run.finished() is None and run.log().empty and run.checkpoint_folders() == []
    assert not (tmp_path / "run").exists()  # loading creates nothing


def test_a_user_reads_log_summary_and_final_model_path(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.write_log([{"epoch": 1, "loss": 0.25}, {"epoch": 2, "loss": 0.125}])
    catalog = _catalog(tmp_path / "run")
    assert catalog.exists("training_run")
    loaded = catalog.load("training_run")
    assert loaded.log()["loss"].tolist() == [0.25, 0.125]
    assert loaded.final_model == tmp_path / "run" / "final_model.keras"


def test_save_is_refused_with_a_message_that_says_why(tmp_path):
    dataset = RunFolderDataset(filepath=str(tmp_path / "run"))
    with pytest.raises(DatasetError, match="written by the training loop"):
        dataset.save(RunFolder(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
    assert dataset._describe() == {"filepath": str(tmp_path / "run")}
