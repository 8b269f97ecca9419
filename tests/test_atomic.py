"""atomic.py: a product appears whole or not at all; the old version survives any failure."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from tml_cloudremoval.atomic import (
    atomic_file,
    atomic_folder,
    is_temporary,
    lock_path,
    output_lock,
    pid_alive,
    remove_stale_temporaries,
    temporary_owner,
    temporary_sibling,
    write_json_atomic,
    write_text_atomic,
)
from tml_cloudremoval.errors import LockedError


def test_file_is_renamed_into_place_with_the_usual_mode(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    with atomic_file(target) as tmp:
        assert tmp.parent == target.parent and is_temporary(tmp) and not target.exists()
        tmp.write_text("new")
    assert target.read_text() == "new"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.txt"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_file(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_a_writer_that_creates_nothing_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="created no file"), atomic_file(tmp_path / "x"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_suffix_is_kept_for_writers_that_insist_on_an_extension(tmp_path):
    tmp = temporary_sibling(tmp_path / "m.keras", ".keras")
    assert tmp.name.startswith(".m.keras.") and tmp.name.endswith(".tmp.keras")
    assert temporary_sibling(tmp_path / "m") != temporary_sibling(tmp_path / "m")


def test_folder_is_replaced_as_a_whole(tmp_path):
    target = tmp_path / "store"
    target.mkdir()
    (target / "old.npy").write_text("old")
    with atomic_folder(target) as tmp:
        (tmp / "new.npy").write_text("new")
        assert (target / "old.npy").exists()  # untouched while the new one is written
    assert sorted(p.name for p in target.iterdir()) == ["new.npy"]
    assert [p.name for p in tmp_path.iterdir()] == ["store"]


def test_durable_folder_is_flushed_before_the_rename(tmp_path, monkeypatch):
    from tml_cloudremoval import atomic

    flushed = []
    monkeypatch.setattr(atomic, "fsync_tree", lambda p: flushed.append(sorted(os.listdir(p))))
    with atomic_folder(tmp_path / "ckpt", durable=True) as tmp:
        (tmp / "w.h5").write_text("w")
    assert flushed == [["w.h5"]]  # the new folder's content, while it was still temporary
    assert (tmp_path / "ckpt" / "w.h5").read_text() == "w"


def test_failed_folder_keeps_the_old_one(tmp_path):
    target = tmp_path / "store"
    target.mkdir()
    (target / "old.npy").write_text("old")
    with pytest.raises(ValueError), atomic_folder(target) as tmp:
        (tmp / "new.npy").write_text("new")
        raise ValueError
    assert sorted(p.name for p in target.iterdir()) == ["old.npy"]
    assert [p.name for p in tmp_path.iterdir()] == ["store"]


def test_text_and_json(tmp_path):
    import numpy as np

    write_text_atomic(tmp_path / "t.txt", "hello")
    write_json_atomic(tmp_path / "j.json", {"a": np.float32(1.5), "p": tmp_path})
    assert (tmp_path / "t.txt").read_text() == "hello"
    assert json.loads((tmp_path / "j.json").read_text()) == {"a": 1.5, "p": str(tmp_path)}


def test_sigkill_during_a_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    code = textwrap.dedent(
        f"""
        import os, signal, sys
        from tml_cloudremoval.atomic import atomic_file
        with atomic_file({str(target)!r}) as tmp:
            tmp.write_text("half")
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False)
    assert proc.returncode == -signal.SIGKILL
    assert target.read_text() == "old"
    leftovers = [p for p in tmp_path.iterdir() if p.name != "a.txt"]
    assert len(leftovers) == 1 and is_temporary(leftovers[0])  # a hidden sibling, never the product


def test_a_second_writer_of_one_output_is_refused_while_the_first_holds_it(tmp_path):
    target = tmp_path / "store"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from tml_cloudremoval.atomic import output_lock\n"
            f"with output_lock({str(target)!r}):\n"
            "    print('locked', flush=True)\n"
            "    time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockedError, match=rf"store: another run \(pid {holder.pid}\)"):
            with output_lock(target):
                pass
    finally:
        holder.kill()  # kill -9: the OS drops the lock with the process
        holder.wait()
    with output_lock(target, wait_s=5):  # free again: no stale lock after a killed holder
        assert lock_path(target).exists()


def _killed_writer(target, kind: str) -> subprocess.CompletedProcess:
    """A subprocess that starts an atomic write of ``target`` (a file or a folder) and is
    killed (SIGKILL) in the middle of it."""
    opener = "atomic_file" if kind == "file" else "atomic_folder"
    body = "tmp.write_bytes(b'x' * 5000)" if kind == "file" else "(tmp / 'f').write_bytes(b'y' * 7)"
    code = textwrap.dedent(
        f"""
        import os, signal
        from tml_cloudremoval.atomic import {opener}
        with {opener}({str(target)!r}) as tmp:
            {body}
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    return subprocess.run([sys.executable, "-c", code], check=False)


def test_stale_temporaries_of_killed_runs_are_removed_and_logged(tmp_path, caplog):
    assert _killed_writer(tmp_path / "scene.tif", "file").returncode == -signal.SIGKILL
    assert _killed_writer(tmp_path / "store", "folder").returncode == -signal.SIGKILL
    stale = sorted(p for p in tmp_path.iterdir() if is_temporary(p))
    assert len(stale) == 2
    pids = {temporary_owner(p) for p in stale}
    assert len(pids) == 2 and not any(pid_alive(pid) for pid in pids)
    mine = temporary_sibling(tmp_path / "live.tif")  # a live run's (this process): kept
    mine.write_bytes(b"in progress")
    (tmp_path / "product.tif").write_bytes(b"keep")
    lock_path(tmp_path / "product.tif").write_text("1")
    with caplog.at_level("INFO", logger="tml_cloudremoval.atomic"):
        removed = remove_stale_temporaries(tmp_path)
    assert sorted(removed) == stale
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [mine.name, "product.tif", ".product.tif.lock"]
    )
    sizes = sorted(int(m.split("(")[1].split(" ")[0]) for m in caplog.messages)
    assert sizes == [7, 5000]  # each logged with its size in bytes
    assert remove_stale_temporaries(tmp_path / "absent") == []


def test_temporary_owner_reads_the_pid_of_our_names_only(tmp_path):
    tmp = temporary_sibling(tmp_path / "a.keras", suffix=".keras")
    assert temporary_owner(tmp) == os.getpid() and pid_alive(os.getpid())
    assert temporary_owner(tmp_path / ".a.tif.lock") is None
    assert temporary_owner(tmp_path / "a.123.0123456789ab.tmp") is None  # not hidden
    assert temporary_owner(tmp_path / ".a.tif.x.0123456789ab.tmp") is None


def test_a_previous_version_moved_aside_by_a_killed_run_is_put_back(tmp_path):
    """Killed between its two renames, a run leaves the old folder as ``*.tmp.old`` and no
    product: the next run restores it instead of deleting the last good version."""
    code = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from tml_cloudremoval.atomic import temporary_sibling
        store = Path({str(tmp_path / "store")!r})
        store.rename(temporary_sibling(store, ".old"))  # what atomic_folder does first
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "a.npy").write_text("good")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == -9
    assert not (tmp_path / "store").exists()
    assert len(remove_stale_temporaries(tmp_path)) == 1
    assert (tmp_path / "store" / "a.npy").read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["store"]


def test_resumable_folder_is_continued_only_with_the_same_key(tmp_path, caplog):
    from tml_cloudremoval.atomic import resumable_folder, resumable_sibling

    target = tmp_path / "store"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt), resumable_folder(target, "k1") as tmp:
        assert tmp == resumable_sibling(target) and is_temporary(tmp)
        (tmp / "a.txt").write_text("first run")
        raise KeyboardInterrupt  # Ctrl-C: kept for the next run, like kill -9
    assert (tmp / "a.txt").read_text() == "first run" and (target / "old.txt").exists()
    assert remove_stale_temporaries(tmp_path) == [] and tmp.exists()  # no pid: never "stale"
    assert remove_stale_temporaries(tmp_path, of=target) == [] and tmp.exists()
    with resumable_folder(target, "k1") as again:
        assert again == tmp and (again / "a.txt").read_text() == "first run"
        (again / ".progress").write_text("bookkeeping")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]  # dot files removed, swapped
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]
    # another key: emptied and started over (logged)
    with pytest.raises(KeyboardInterrupt), resumable_folder(target, "k1") as tmp:
        (tmp / "b.txt").write_text("x")
        raise KeyboardInterrupt
    with caplog.at_level("WARNING", logger="tml_cloudremoval.atomic"):
        with resumable_folder(target, "k2") as tmp:
            assert [p.name for p in tmp.iterdir()] == [".resume_key"]
            (tmp / "c.txt").write_text("y")
    assert "other inputs or settings: starting over" in caplog.text
    assert sorted(p.name for p in target.iterdir()) == ["c.txt"]


def test_resumable_folder_removed_on_an_error_and_without_a_key(tmp_path):
    from tml_cloudremoval.atomic import resumable_folder

    target = tmp_path / "store"
    with pytest.raises(ValueError), resumable_folder(target, "k") as tmp:
        (tmp / "a").write_text("half")
        raise ValueError("content fault")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(KeyboardInterrupt), resumable_folder(target, None) as tmp:
        raise KeyboardInterrupt  # without a key nothing could continue it
    assert list(tmp_path.iterdir()) == []
