"""Output write errors: a write that fails for want of room names the file and the cause."""

from __future__ import annotations

import errno
import resource
import shutil
from collections import namedtuple

import pytest
from rasterio.errors import RasterioIOError

from tml_cloudremoval.errors import ProjectError
from tml_cloudremoval.output_errors import (
    OutputWriteError,
    check_room,
    room_left,
    write_errors,
)

Usage = namedtuple("Usage", "total used free")


@pytest.fixture
def no_file_limit(monkeypatch):
    monkeypatch.setattr(
        resource, "getrlimit", lambda _: (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
    )


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EFBIG, errno.EDQUOT])
def test_room_errors_become_a_project_error_naming_the_file(tmp_path, code, no_file_limit):
    target = tmp_path / "new" / "scene.tif"  # its folder need not exist yet
    with pytest.raises(OutputWriteError) as caught:
        with write_errors(target):
            raise OSError(code, "no room")
    assert isinstance(caught.value, ProjectError) and isinstance(caught.value.__cause__, OSError)
    assert str(caught.value).startswith(f"{target}: not written: ")
    assert "previous version, if any, is kept" in str(caught.value)


def test_gdal_write_failures_are_room_errors_and_other_errors_pass(tmp_path):
    with pytest.raises(OutputWriteError, match="RasterioIOError: Write failed"):
        with write_errors(tmp_path / "a.tif"):
            raise RasterioIOError("Write failed")
    for other in (PermissionError(errno.EACCES, "denied"), ValueError("a bug")):
        with pytest.raises(type(other)):
            with write_errors(tmp_path / "a.tif"):
                raise other


def test_the_cause_is_the_file_size_limit_or_the_free_space(tmp_path, monkeypatch, no_file_limit):
    monkeypatch.setattr(shutil, "disk_usage", lambda _: Usage(100, 90, 10))
    assert (
        room_left(tmp_path / "a.tif")
        == f"no space left on the device of {tmp_path} (10 bytes free)"
    )
    with pytest.raises(
        OutputWriteError, match=r"a.tif: not written: no space left .*10 bytes free, 11 needed"
    ):
        check_room(tmp_path / "a.tif", 11, 11)
    check_room(tmp_path / "a.tif", 10, 10)  # fits: nothing raised
    monkeypatch.setattr(shutil, "disk_usage", lambda _: Usage(2**40, 0, 2**40))
    assert room_left(tmp_path / "a.tif").startswith("the write failed (disk full")
    monkeypatch.setattr(resource, "getrlimit", lambda _: (5000, resource.RLIM_INFINITY))
    assert room_left(tmp_path / "a.tif") == (
        "file too large: this process may write files of at most 5000 bytes (ulimit -f)"
    )
    with pytest.raises(OutputWriteError, match=r"at most 5000 bytes .*needs about 5001 bytes"):
        check_room(tmp_path / "a.tif", 5001, 5001)
