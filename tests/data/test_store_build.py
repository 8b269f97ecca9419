"""store_build.py: the resumable store build (build_patch_store over TripletSamples.write_rows):
workers write straight into the store, a build killed with SIGKILL or Ctrl-C continues where it
stopped and ends byte-identical to an uninterrupted build, free disk is checked for the group."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections import namedtuple
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.io import DatasetError

import tml_cloudremoval
from tml_cloudremoval.atomic import resumable_sibling
from tml_cloudremoval.data import triplets
from tml_cloudremoval.data.errors import DataError
from tml_cloudremoval.data.patch_store import store_bytes, write_patch_store
from tml_cloudremoval.data.store_build import JOURNAL, BuildJournal, build_patch_store, write_rows
from tml_cloudremoval.data.triplets import TripletSamples, split_samples
from tml_cloudremoval.datasets.patch_store_dataset import PatchStoreDataset

SRC = Path(tml_cloudremoval.__file__).resolve().parents[1]


def _files(path: Path) -> dict[str, bytes]:
    """Every file of a store folder (hidden ones included), name -> bytes."""
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


@pytest.fixture
def long_table(table, tmp_path) -> tuple[pd.DataFrame, Path]:
    """The 7 test triplets listed 6 times (42 rows), as the CSV a child process reads."""
    csv = tmp_path / "table.csv"
    pd.concat([table] * 6, ignore_index=True).to_csv(csv, index=False)
    return pd.read_csv(csv, dtype=str, keep_default_na=False), csv


def _reference(table: pd.DataFrame, path: Path, **settings) -> dict[str, bytes]:
    """The old path: every sample prepared in this process and copied into the store."""
    samples = TripletSamples(table, progress=False, workers=1, **settings)
    write_patch_store(path, iter(samples), len(samples), 16, 16, samples.index, samples.meta)
    return _files(path)


class _Counting:
    """Counts the triplets prepared in this process; raises KeyboardInterrupt at call ``stop``."""

    def __init__(self, stop: int | None = None) -> None:
        self.calls, self.stop, self.prepare = 0, stop, triplets._prepare_row

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.stop:
            raise KeyboardInterrupt
        return self.prepare(*args, **kwargs)


def test_build_in_workers_is_byte_identical_to_the_old_path(table, tmp_path):
    reference = _reference(table, tmp_path / "ref")
    samples = TripletSamples(table, progress=False, workers=2, min_per_worker=1, chunk=2)
    build_patch_store(tmp_path / "new", samples)
    assert _files(tmp_path / "new") == reference
    assert json.loads(reference["meta.json"])["store_format"] == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".new")) == [".new.lock"]


_KILLED_BUILD = """
import sys, time
import pandas as pd
from tml_cloudremoval.data import triplets
from tml_cloudremoval.data.store_build import build_patch_store
prepare = triplets._prepare_row
def slow(*args, **kwargs):
    time.sleep(0.05)
    return prepare(*args, **kwargs)
triplets._prepare_row = slow
table = pd.read_csv(sys.argv[1], dtype=str, keep_default_na=False)
build_patch_store(sys.argv[2], triplets.TripletSamples(table, progress=False, workers=1, chunk=3))
"""


def _rows_done(folder: Path, n: int) -> int:
    journal = BuildJournal.load(folder, n)
    return 0 if journal is None else journal.rows_done


def test_sigkill_then_resume_is_byte_identical_to_a_clean_build(
    long_table, tmp_path, monkeypatch, caplog
):
    table, csv = long_table
    path, n = tmp_path / "train", len(table)
    partial = resumable_sibling(path)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    script = textwrap.dedent(_KILLED_BUILD)
    child = subprocess.Popen([sys.executable, "-c", script, str(csv), str(path)], env=env)
    deadline = time.monotonic() + 60
    try:
        while _rows_done(partial, n) < 9:  # 3 chunks flushed and journaled
            assert child.poll() is None, "the child build ended before it was killed"
            assert time.monotonic() < deadline, "the child never journaled 3 chunks"
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    done = _rows_done(partial, n)
    assert 9 <= done < n and not path.exists() and (partial / JOURNAL).is_file()
    counting = _Counting()
    monkeypatch.setattr(triplets, "_prepare_row", counting)
    with caplog.at_level("INFO", logger="tml_cloudremoval"):
        build_patch_store(path, TripletSamples(table, progress=False, workers=1, chunk=3))
    assert counting.calls == n - done  # continued: only the rows the journal lacked
    assert f"{done} of {n} patches already built, continuing" in caplog.text
    assert not partial.exists()
    monkeypatch.undo()
    assert _files(path) == _reference(table, tmp_path / "clean")


def test_ctrl_c_keeps_the_build_other_settings_start_over(long_table, tmp_path, monkeypatch):
    table, _ = long_table
    path, n = tmp_path / "train", len(table)
    monkeypatch.setattr(triplets, "_prepare_row", _Counting(stop=8))
    with pytest.raises(KeyboardInterrupt):
        build_patch_store(path, TripletSamples(table, progress=False, workers=1, chunk=3))
    assert _rows_done(resumable_sibling(path), n) == 6  # chunks 0-2 and 3-5; 6-8 was cut
    counting = _Counting()
    monkeypatch.setattr(triplets, "_prepare_row", counting)
    other = TripletSamples(table, progress=False, workers=1, cloud_threshold=0.3)
    build_patch_store(path, other)
    assert counting.calls == n  # another cloud_threshold: nothing of the kept build is used
    monkeypatch.undo()
    assert _files(path) == _reference(table, tmp_path / "clean", cloud_threshold=0.3)


def test_a_killed_group_build_resumes_every_store(long_table, tmp_path, monkeypatch):
    """Interrupted in the val store: train (complete, not yet in place) is not rebuilt."""
    table, _ = long_table
    tables = {"train": table.iloc[:20], "val": table.iloc[20:32], "test": table.iloc[32:]}
    out = tmp_path / "stores"

    def save_all(samples):
        for name, s in samples.items():
            PatchStoreDataset(filepath=str(out / name)).save(s)

    monkeypatch.setattr(triplets, "_prepare_row", _Counting(stop=20 + 7))
    with pytest.raises(KeyboardInterrupt):
        save_all(split_samples(tables, progress=False, workers=1, chunk=3))
    assert sorted(p.name for p in out.iterdir() if not p.name.endswith(".lock")) == [
        ".train.partial.tmp",
        ".val.partial.tmp",
    ]
    counting = _Counting()
    monkeypatch.setattr(triplets, "_prepare_row", counting)
    save_all(split_samples(tables, progress=False, workers=1, chunk=3))
    assert counting.calls == 12 - 6 + 10  # val's last 2 chunks and all of test
    monkeypatch.undo()
    for name, part in tables.items():
        assert _files(out / name) == _reference(part, tmp_path / f"clean_{name}") | {
            "meta.json": (out / name / "meta.json").read_bytes()
        }
        assert json.loads((out / name / "meta.json").read_text())["split"] == name


def test_group_free_disk_checked_before_the_first_store(long_table, tmp_path, monkeypatch):
    table, _ = long_table
    tables = {"train": table.iloc[:20], "val": table.iloc[20:32], "test": table.iloc[32:]}
    samples = split_samples(tables, progress=False, workers=1)
    needed = sum(store_bytes(len(t), 16, 16, samples[s].index) for s, t in tables.items())
    assert sum(s.nbytes for s in samples.values()) == needed
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: usage(10**9, 0, needed - 1))
    counting = _Counting()
    monkeypatch.setattr(triplets, "_prepare_row", counting)
    with pytest.raises(DataError) as err:
        build_patch_store(
            tmp_path / "stores" / "train", samples["train"], samples["train"].store_group, "train"
        )
    assert str(err.value) == (
        f"{tmp_path / 'stores'}: not enough free disk for the 3 stores (train, val, test): "
        f"it needs {needed / 1024:.1f} KiB ({needed:,} bytes), the file system has "
        f"{(needed - 1) / 1024:.1f} KiB ({needed - 1:,} bytes) free; free some space or write "
        "the store elsewhere (its catalog filepath)"
    )
    assert counting.calls == 0
    assert [p.name for p in (tmp_path / "stores").iterdir()] == [".train.lock"]
    with pytest.raises(DatasetError, match="not enough free disk for the 3 stores"):
        PatchStoreDataset(filepath=str(tmp_path / "s2" / "train")).save(
            split_samples(tables, progress=False)["train"]
        )


def test_build_journal_ranges(tmp_path):
    journal = BuildJournal(tmp_path, 10)
    assert journal.todo(4) == [(0, 4), (4, 8), (8, 10)] and journal.rows_done == 0
    for start, stop in [(4, 6), (0, 2), (2, 4), (9, 10)]:
        journal.mark(start, stop)
    assert journal.done == [(0, 6), (9, 10)] and journal.rows_done == 7
    assert journal.todo(2) == [(6, 8), (8, 9)]
    again = BuildJournal.load(tmp_path, 10)
    assert again is not None and again.done == [(0, 6), (9, 10)]
    assert BuildJournal.load(tmp_path, 11) is None  # another size: not this build's
    assert BuildJournal.load(tmp_path / "nowhere", 10) is None


def test_write_rows_checks_what_it_writes(tmp_path):
    from tml_cloudremoval.data.patch_store import allocate_arrays

    allocate_arrays(tmp_path, 3, 8, 8)
    good = {
        "s2_cloudy": np.full((8, 8, 10), 5, np.uint16),
        "s2": np.full((8, 8, 10), 6, np.uint16),
        "s1": np.full((2, 2, 2), -3.5, np.float32),
        "mask": np.ones((8, 8), np.uint8),
    }
    assert write_rows(tmp_path, 1, [good]) == 1
    s2 = np.load(tmp_path / "s2.npy")
    assert (s2[1] == 6).all() and (s2[[0, 2]] == 0).all()  # only row 1 written
    assert (np.load(tmp_path / "s1.npy")[1] == -3.5).all()
    with pytest.raises(ValueError, match=r"s2_cloudy: row 0 of shape \(8, 8, 13\) does not"):
        write_rows(tmp_path, 0, [{**good, "s2_cloudy": np.zeros((8, 8, 13), np.uint16)}])
    size = (tmp_path / "s2.npy").stat().st_size
    with pytest.raises(ValueError, match=r"s2_cloudy: row 3 of shape \(8, 8, 10\) does not"):
        write_rows(tmp_path, 3, [good])  # past the end: never grows the file
    assert (tmp_path / "s2.npy").stat().st_size == size
