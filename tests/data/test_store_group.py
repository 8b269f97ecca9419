"""store_group.py: stores replaced together or not at all, locks, leftovers of killed runs,
a full disk (file-size limit) and ``kill -9`` in the middle of a build (child processes)."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tml_cloudremoval
from tml_cloudremoval.atomic import is_temporary, remove_stale_temporaries, temporary_sibling
from tml_cloudremoval.data.errors import DataError
from tml_cloudremoval.data.patch_store import PatchStore, write_patch_store
from tml_cloudremoval.data.store_group import FolderGroup
from tml_cloudremoval.errors import LockedError

SRC = Path(tml_cloudremoval.__file__).resolve().parents[1]


def _samples(n: int, value: int):
    for i in range(n):
        yield {
            "s2_cloudy": np.full((8, 8, 10), value + i, np.uint16),
            "s2": np.full((8, 8, 10), value, np.uint16),
            "s1": np.full((2, 2, 2), -10.0, np.float32),
            "mask": np.zeros((8, 8), np.uint8),
        }


def _index(n: int) -> pd.DataFrame:
    return pd.DataFrame({"scene_id": [f"s{i}" for i in range(n)]})


def _write(path: Path, n: int, value: int, **kwargs) -> None:
    write_patch_store(path, _samples(n, value), n, 8, 8, _index(n), **kwargs)


def _value(path: Path) -> int:
    return int(PatchStore.open(path).s2[0, 0, 0, 0])


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if is_temporary(p))


def test_group_puts_every_member_in_place_only_after_the_last(tmp_path):
    paths = {s: tmp_path / s for s in ("train", "val", "test")}
    for path in paths.values():
        _write(path, 1, 1)
    group = FolderGroup(paths)
    _write(paths["train"], 2, 2, group=group, member="train")
    _write(paths["val"], 2, 2, group=group, member="val")
    assert group.pending == ("test",)
    assert [_value(p) for p in paths.values()] == [1, 1, 1]  # nothing replaced yet
    _write(paths["test"], 2, 2, group=group, member="test")
    assert [_value(p) for p in paths.values()] == [2, 2, 2]
    assert _temporaries(tmp_path) == []
    with pytest.raises(ValueError, match="not a pending member"):
        _write(paths["test"], 1, 3, group=group, member="test")


def test_group_failure_in_the_last_member_keeps_all_old(tmp_path):
    paths = {s: tmp_path / s for s in ("train", "val", "test")}
    for path in paths.values():
        _write(path, 1, 1)
    group = FolderGroup(paths)
    _write(paths["train"], 2, 2, group=group, member="train")
    _write(paths["val"], 2, 2, group=group, member="val")
    with pytest.raises(ValueError, match="got 1 samples, announced 2"):
        write_patch_store(
            paths["test"], _samples(1, 2), 2, 8, 8, _index(2), group=group, member="test"
        )
    assert [_value(p) for p in paths.values()] == [1, 1, 1]
    assert _temporaries(tmp_path) == []
    with pytest.raises(DataError, match="another folder of its group failed"):
        _write(paths["test"], 2, 2, group=group, member="test")
    _write(paths["train"], 1, 4)  # every lock was released
    assert _value(paths["train"]) == 4


def test_abandoned_group_removes_its_temporary_folders(tmp_path):
    group = FolderGroup(["a", "b"])
    _write(tmp_path / "a", 1, 1, group=group, member="a")
    assert len(_temporaries(tmp_path)) == 1 and not (tmp_path / "a").exists()
    del group
    gc.collect()
    assert _temporaries(tmp_path) == [] and not (tmp_path / "a").exists()


def test_clean_stale_temporaries(tmp_path, caplog):
    path = tmp_path / "train"
    _write(path, 1, 1)
    stale = temporary_sibling(path)
    stale.mkdir()
    (stale / "s2.npy").write_bytes(b"half")
    other = tmp_path / ".train.v2.123.abcdefabcdef.tmp"  # another output's name: left alone
    other.mkdir()
    with caplog.at_level("INFO", logger="tml_cloudremoval.atomic"):
        assert remove_stale_temporaries(tmp_path, of=path) == [stale]
    assert not stale.exists() and other.exists() and _value(path) == 1
    assert f"removed {stale}" in caplog.text
    # killed between moving the old store aside and renaming the new one in: put it back
    aside = temporary_sibling(path, ".old")
    path.rename(aside)
    remove_stale_temporaries(tmp_path, of=path)
    assert _value(path) == 1 and not aside.exists()


def _child(script: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    code = textwrap.dedent(script)
    return subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


_SLOW_BUILD = """
import sys, time
import numpy as np, pandas as pd
from tml_cloudremoval.data.patch_store import write_patch_store
def samples():
    for i in range(40):
        time.sleep(0.1)
        optical = np.full((8, 8, 10), 7, np.uint16)
        yield {"s2_cloudy": optical, "s2": optical,
               "s1": np.full((2, 2, 2), -1.0, np.float32), "mask": np.zeros((8, 8), np.uint8)}
write_patch_store(sys.argv[1], samples(), 40, 8, 8, pd.DataFrame({"i": range(40)}))
"""


def _wait_for_temporary(folder: Path, child: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while not _temporaries(folder):
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the child never started its build"
        time.sleep(0.05)


def test_second_concurrent_build_of_a_store_stops_with_locked_error(tmp_path):
    path = tmp_path / "train"
    _write(path, 1, 1)
    child = _child(_SLOW_BUILD.replace("sys.argv[1]", repr(str(path))))
    try:
        _wait_for_temporary(tmp_path, child)
        with pytest.raises(LockedError, match=rf"{path}: another run \(pid {child.pid}\)"):
            _write(path, 1, 2)
        assert _value(path) == 1
    finally:
        child.kill()
        child.communicate()


def test_kill_9_in_the_middle_of_a_build_keeps_the_old_store(tmp_path):
    path = tmp_path / "train"
    _write(path, 1, 1)
    child = _child(_SLOW_BUILD.replace("sys.argv[1]", repr(str(path))))
    _wait_for_temporary(tmp_path, child)
    os.kill(child.pid, signal.SIGKILL)
    child.communicate()
    assert _value(path) == 1 and len(PatchStore.open(path)) == 1
    assert len(_temporaries(tmp_path)) == 1  # what kill -9 leaves; the next build removes it
    _write(path, 2, 3)
    assert _value(path) == 3 and _temporaries(tmp_path) == []


def test_file_size_limit_fails_clearly_and_keeps_the_old_store(tmp_path):
    """``ulimit -f``: SIGXFSZ ignored, so the write fails with EFBIG (as on a full disk)."""
    path = tmp_path / "train"
    _write(path, 1, 1)
    script = f"""
    import resource, signal, sys
    import numpy as np, pandas as pd
    from tml_cloudremoval.data.errors import DataError
    from tml_cloudremoval.data.patch_store import write_patch_store
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
    n, h = 4, 64
    optical, mask = np.ones((h, h, 10), np.uint16), np.zeros((h, h), np.uint8)
    samples = ({{"s2_cloudy": optical, "s2": optical,
                "s1": np.zeros((h // 4, h // 4, 2), np.float32), "mask": mask}}
               for _ in range(n))
    try:
        write_patch_store({str(path)!r}, samples, n, h, h, pd.DataFrame({{"i": range(n)}}))
    except DataError as exc:
        print(exc)
        sys.exit(3)
    """
    child = _child(script)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 3, err
    assert out.startswith(f"{path}: writing failed (File too large)")
    assert "the previous version is intact" in out
    assert _value(path) == 1 and _temporaries(tmp_path) == []


def test_write_failure_is_a_data_error_naming_the_store(tmp_path):
    def failing():
        yield from _samples(1, 1)
        raise OSError(28, "No space left on device")

    with pytest.raises(DataError, match=r"train: writing failed \(No space left on device\)"):
        write_patch_store(tmp_path / "train", failing(), 2, 8, 8, _index(2))
    assert _temporaries(tmp_path) == [] and not (tmp_path / "train").exists()
