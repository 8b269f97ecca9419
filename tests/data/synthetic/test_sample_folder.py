"""synthetic/sample_folder.py: atomic product folders, the manifest, never a foreign folder."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tml_cloudremoval.data.synthetic.sample_folder import (
    GENERATOR_VERSION,
    MANIFEST_NAME,
    is_complete,
    read_manifest,
    write_sample_folder,
)


@dataclass
class _Product:
    """A two-file product; ``fail_after`` files written it raises (a crash mid-write)."""

    text: str = "a"
    kind: str = "toy"
    overwrite: bool = False
    fail_after: int | None = None
    calls: list[Path] = field(default_factory=list)

    def settings(self) -> dict[str, Any]:
        return {"text": self.text}

    def files(self) -> list[str]:
        return ["one.txt", "sub/two.txt"]

    def write_into(self, folder: Path) -> dict[str, Any]:
        self.calls.append(folder)
        for i, rel in enumerate(self.files()):
            if self.fail_after is not None and i >= self.fail_after:
                raise OSError("disk on fire")
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(self.text)
        return {"summary": {"n": 2}}


def test_written_whole_with_manifest_then_skipped(tmp_path: Path) -> None:
    root = tmp_path / "toy"
    product = _Product()
    summary = write_sample_folder(root, product)
    assert summary["skipped"] is False and summary["n"] == 2 and summary["n_files"] == 2
    assert product.calls[0] != root  # written into a temporary sibling, then swapped in
    manifest = read_manifest(root)
    assert manifest == {
        "kind": "toy",
        "generator_version": GENERATOR_VERSION,
        "status": "complete",
        "settings": {"text": "a"},
        "files": ["one.txt", "sub/two.txt"],
        "summary": {"n": 2},
    }
    assert is_complete(root, "toy") and is_complete(root, "toy", {"text": "a"})
    assert not is_complete(root, "toy", {"text": "b"})
    again = _Product()
    assert write_sample_folder(root, again)["skipped"] is True and again.calls == []
    (root / "one.txt").unlink()  # incomplete: rewritten
    assert not is_complete(root, "toy")
    assert write_sample_folder(root, _Product())["skipped"] is False
    assert (root / "one.txt").read_text() == "a"


def test_failed_write_keeps_the_old_folder(tmp_path: Path) -> None:
    root = tmp_path / "toy"
    write_sample_folder(root, _Product("old"))
    with pytest.raises(OSError, match="disk on fire"):
        write_sample_folder(root, _Product("new", fail_after=1))
    assert (root / "one.txt").read_text() == "old" and read_manifest(root)["settings"] == {
        "text": "old"
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy"]


def test_never_writes_into_a_folder_it_did_not_make(tmp_path: Path) -> None:
    real = tmp_path / "real_data"
    (real / "ROIs1158_spring_s1").mkdir(parents=True)
    (real / "ROIs1158_spring_s1" / "x.tif").write_bytes(b"x")
    with pytest.raises(
        FileExistsError, match=r"real_data already holds \['ROIs1158_spring_s1/x.tif'\]"
    ):
        write_sample_folder(real, _Product())
    assert (real / "ROIs1158_spring_s1" / "x.tif").read_bytes() == b"x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["real_data"]
    # a product folder with a file added by the user is not replaced either
    root = tmp_path / "toy"
    write_sample_folder(root, _Product())
    (root / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        write_sample_folder(root, _Product("b"))
    assert (root / "notes.txt").read_text() == "mine"
    # nor a folder holding another kind of product
    with pytest.raises(FileExistsError, match="describes a 'toy' sample, not 'other'"):
        write_sample_folder(root, _Product(kind="other"))
    # an empty folder, or one holding only a killed run's hidden temporaries, is fine
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".one.txt.123.abcdef012345.tmp").write_text("")
    assert write_sample_folder(empty, _Product())["skipped"] is False
    assert json.loads((empty / MANIFEST_NAME).read_text())["kind"] == "toy"
