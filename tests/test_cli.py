"""``kedro run`` through the project's cli.py: a user's mistake ends with its message alone."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from kedro.framework.cli.project import run as kedro_run
from kedro.io import DataCatalog, DatasetError
from support.conf_env import ENV, SAVED_VERSION, conf_env
from support.kedro_cli import kedro_run as _kedro_run

from tml_cloudremoval import cli
from tml_cloudremoval.data.errors import DataError
from tml_cloudremoval.errors import ProjectError


def _assert_ends_with_message(code: int, output: str, message: str) -> None:
    """Exit 1, ``message`` on the last line, no traceback (plain or rich) anywhere."""
    assert code == 1, output[-2000:]
    assert output.rstrip().splitlines()[-1] == "Error: " + message
    assert "Traceback" not in output and "╭" not in output, output[-3000:]


def test_a_typo_in_a_parameter_ends_the_run_with_the_project_message_alone():
    code, output = _kedro_run(
        "--pipelines", "data_processing", "--params", "data.cloud_treshold=0.9"
    )
    _assert_ends_with_message(
        code,
        output,
        "invalid parameters: data.cloud_treshold: unknown parameter (did you mean "
        "data.cloud_threshold?); valid: cloud_threshold, file_list, layout, on_bad_file, root, "
        "sar_method, seed, split, workers",
    )


def test_a_missing_input_folder_fails_in_its_node_with_the_project_message_alone():
    code, output = _kedro_run(
        "--pipelines", "data_processing", "--params", "data.root=/nonexistent/sen12mscr"
    )
    _assert_ends_with_message(
        code, output, "/nonexistent/sen12mscr: data root does not exist or is not a folder"
    )


def test_an_unknown_pipeline_lists_the_pipelines_that_exist():
    code, output = _kedro_run("--pipeline", "nonexistent")
    _assert_ends_with_message(
        code,
        output,
        "unknown pipeline 'nonexistent'; the pipelines are: ablation, data_processing, evaluation, "
        "inference, sample_data, training, __default__",
    )


def test_a_missing_model_version_is_refused_before_anything_is_written(tmp_path):
    conf = conf_env(tmp_path)
    code, output = _kedro_run(
        "--pipelines=inference",
        f"--conf-source={conf}",
        f"--env={ENV}",
        "--load-versions=dsen2cr_model:2099-01-01T00.00.00.000Z",
    )
    _assert_ends_with_message(
        code,
        output,
        "run refused before any node ran (nothing was written): --load-versions "
        "dsen2cr_model:2099-01-01T00.00.00.000Z: no such version in "
        f"{tmp_path / 'models' / 'dsen2cr.keras'} (saved versions: {SAVED_VERSION})",
    )
    assert not (tmp_path / "plans").exists()


def test_a_node_whose_input_was_never_written_names_the_dataset_and_its_path(tmp_path):
    conf = conf_env(tmp_path)  # inference_plan moved to tmp_path/plans, not written yet
    code, output = _kedro_run(
        "--pipelines=inference", f"--conf-source={conf}", f"--env={ENV}",
        "--from-nodes=make_cloud_masks",
    )  # fmt: skip
    _assert_ends_with_message(
        code,
        output,
        f"inference_plan: {tmp_path / 'plans'} does not exist (nothing saved there yet): run the "
        "nodes that write it first, or fix its path in the catalog",
    )


def test_missing_dataset_knows_an_absent_file_or_folder_and_nothing_else(tmp_path):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    catalog = DataCatalog.from_config({
        "report": {"type": "json.JSONDataset", "filepath": str(tmp_path / "none.json")},
        "runs": {"type": "partitions.PartitionedDataset", "path": str(tmp_path / "runs"),
                 "dataset": "json.JSONDataset"},
        "corrupt": {"type": "json.JSONDataset", "filepath": str(bad_json)},
    })  # fmt: skip
    hint = "does not exist (nothing saved there yet): run the nodes that write it first"
    for name, path in (("report", tmp_path / "none.json"), ("runs", tmp_path / "runs")):
        with pytest.raises(DatasetError) as failure:
            catalog.load(name)
        assert cli.missing_dataset(failure.value).startswith(f"{name}: {path} {hint}")
    with pytest.raises(DatasetError) as failure:
        catalog.load("corrupt")
    assert cli.missing_dataset(failure.value) is None  # there but unreadable: another fault
    assert cli.missing_dataset(FileNotFoundError(2, "No such file", "a.tif")) is None


def test_the_project_run_has_every_option_of_kedro_s_run():
    assert [p.name for p in cli.run.params] == [p.name for p in kedro_run.params]
    assert cli.cli.commands["run"] is cli.run


def test_project_error_finds_a_mistake_that_kedro_wrapped():
    try:
        try:
            raise DataError("s1.tif: all NaN")
        except DataError as inner:
            raise DatasetError("Failed while saving data to dataset train_patches") from inner
    except DatasetError as wrapped:
        assert isinstance(cli.project_error(wrapped), DataError)
    try:
        try:
            raise ProjectError("bad")
        except ProjectError:
            raise RuntimeError("during handling") from None  # cause suppressed: context kept
    except RuntimeError as error:
        assert str(cli.project_error(error)) == "bad"
    assert cli.project_error(KeyError("bug")) is None


def _invoke_with(monkeypatch, error: Exception):
    def fail(**options):
        raise error

    monkeypatch.setattr(kedro_run, "callback", fail)
    return CliRunner().invoke(cli.cli, ["run", "--pipelines", "training"])


def test_a_wrapped_mistake_exits_1_with_its_message(monkeypatch):
    mistake = DataError("train/s1.tif band VV: all NaN")
    wrapped = DatasetError("Failed while saving data to dataset train_patches")
    wrapped.__cause__ = mistake
    result = _invoke_with(monkeypatch, wrapped)
    assert result.exit_code == 1
    assert result.output.rstrip().splitlines()[-1] == "Error: train/s1.tif band VV: all NaN"


@pytest.mark.parametrize("bug", [RuntimeError("bug"), KeyError("bug"), ValueError("not ours")])
def test_a_bug_keeps_its_exception_and_traceback(monkeypatch, bug):
    result = _invoke_with(monkeypatch, bug)
    assert result.exception is bug
    assert "Error:" not in result.output
