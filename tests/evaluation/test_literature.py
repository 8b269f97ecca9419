"""The published table (one copy, equal to domain.md) and the labels of what differs."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from tml_cloudremoval.data.config import data_config
from tml_cloudremoval.evaluation.literature import (
    PUBLISHED,
    RunFacts,
    comparison,
    comparison_table,
    data_label,
    differences,
    is_synthetic_sample,
    run_facts,
    split_of,
)
from tml_cloudremoval.models.contract import ModelContract

DOMAIN_MD = Path(__file__).resolve().parents[2].parent / "shared" / "docs" / "domain.md"
CONTRACT = ModelContract(
    model={"features": 32, "blocks": 6, "include_sar": True}, training={"loss": "carl"}
)
FACTS = RunFacts(
    features=32,
    blocks=6,
    include_sar=True,
    loss="carl",
    n_bands=10,
    split="seeded",
    split_detail="seed 42, scene fractions 0.7/0.15/0.15",
    synthetic=True,
    n_patches=12,
)
ROW = {row.model: row for row in PUBLISHED}


def _number(cell: str) -> float | None:
    return float(cell) if cell.strip() else None


def test_published_rows_equal_the_table_of_domain_md():
    if not DOMAIN_MD.is_file():
        pytest.skip(f"{DOMAIN_MD} not found: the shared docs are not next to the project")
    text = DOMAIN_MD.read_text()
    table = text[text.index("Published results on the SEN12MS-CR test split") :]
    rows = re.findall(r"^\| (?!model |---)(.+?) \|(.*)\|$", table.split("\n\n")[1], flags=re.M)
    assert [name for name, _ in rows] == [row.model for row in PUBLISHED]
    for (name, rest), row in zip(rows, PUBLISHED, strict=True):
        cells = [c.strip() for c in rest.split("|")]
        values = [_number(c) for c in cells[:5]]
        assert values == [row.mae, row.rmse, row.psnr, row.ssim, row.sam_deg], name
        assert cells[5] in (row.source, "same"), name


def test_labels_name_bands_model_size_sar_loss_data_and_protocol():
    meraner = differences(ROW["DSen2-CR, CARL"], FACTS)
    assert "bands: the 10 TML bands vs 13" in meraner
    assert "model size: F=32, B=6 vs F=256, B=16" in meraner
    assert "protocol: per-image means vs pooled over the test set" in meraner
    data = next(d for d in meraner if d.startswith("data: "))
    assert data.startswith("data: the synthetic sample, a seeded scene split (seed 42")
    assert "12 test patches vs the test split of a DSen2-CR file list" in data
    assert not any(d.startswith(("SAR", "loss")) for d in meraner)
    assert "SAR: VV+VH vs none" in differences(ROW["DSen2-CR, CARL, no SAR"], FACTS)
    glf = differences(ROW["GLF-CR"], FACTS)
    assert "architecture: DSen2-CR (F=32, B=6) vs GLF-CR" in glf
    assert not any(d.startswith(("model size", "protocol")) for d in glf)
    assert "loss: CARL vs L2" in differences(ROW["UnCRtainTS (L2)"], FACTS)


def test_a_model_of_the_published_size_on_the_official_split_differs_in_bands_only():
    facts = RunFacts(256, 16, True, "carl", 10, "official", "data.split", False, 7)
    labels = differences(ROW["DSen2-CR (re-run)"], facts)
    assert labels[0] == "bands: the 10 TML bands vs 13"
    assert labels[1].startswith("data: SEN12MS-CR, the official SEN12MS-CR test split")
    assert len(labels) == 2
    unknown = RunFacts(None, None, None, None, 10, "unknown", "", None, 3)
    assert "model size: not recorded vs F=256, B=16" in differences(ROW["DSen2-CR, CARL"], unknown)
    assert data_label(unknown) == "data of unknown origin, a split not recorded, 3 test patches"


class _Store:
    """What run_facts reads of a patch store: ``index``, ``meta``, ``len``."""

    def __init__(self, index: pd.DataFrame, meta: dict | None = None) -> None:
        self.index, self.meta = index, meta or {}

    def __len__(self) -> int:
        return len(self.index)


def _store(tmp_path: Path, synthetic: bool = True) -> tuple[_Store, Path]:
    """A one-patch store whose s2 file lies in the official layout under a root that holds the
    sample generator's manifest (``synthetic``) or not."""
    root = tmp_path / "root"
    (root / "ROIs1_s2" / "s2_1").mkdir(parents=True)
    tif = root / "ROIs1_s2" / "s2_1" / "ROIs1_s2_1_p1.tif"
    tif.write_bytes(b"")
    if synthetic:
        (root / "manifest.json").write_text('{"kind": "sen12mscr", "status": "complete"}')
    index = pd.DataFrame({"scene_id": ["ROIs1_spring_1"], "s2_path": [str(tif)]})
    return _Store(index), root


def test_run_facts_from_contract_store_and_data_settings(tmp_path):
    store, root = _store(tmp_path)
    facts = run_facts(CONTRACT, store, data_config(None))
    assert (facts.features, facts.blocks, facts.include_sar, facts.loss) == (32, 6, True, "carl")
    assert facts.n_bands == 10 and facts.n_patches == 1 and facts.synthetic is True
    assert (facts.split, facts.split_detail) == ("seeded", "seed 42, scene fractions 0.7/0.15/0.15")
    real, real_root = _store(tmp_path / "real", synthetic=False)
    assert run_facts(CONTRACT, real).synthetic is False
    no_paths = _Store(pd.DataFrame({"scene_id": ["a"]}))
    assert run_facts(CONTRACT, no_paths, data_root=str(root)).synthetic is True
    assert run_facts(CONTRACT, no_paths, data_root=str(real_root)).synthetic is False
    assert run_facts(CONTRACT, no_paths).synthetic is None
    assert is_synthetic_sample(tmp_path / "nowhere") is None


def test_split_from_the_store_first_then_the_data_settings():
    # meta.json of a store records split_method (data.splits.split_method): it wins.
    assert split_of(data_config(None), {"split": "test", "split_method": "official"}) == (
        "official",
        "recorded by the test store",
    )
    assert split_of(data_config({"split": "official"}), {"split_method": "fractions"})[0] == (
        "seeded"
    )
    assert split_of(data_config(None), {"split_method": "file_list"})[0] == "file_list"
    assert split_of(data_config({"file_list": "list.csv"}), {})[0] == "file_list"
    assert split_of(SimpleNamespace(file_list=None, split="official"), {}) == (
        "official",
        "data.split",
    )
    assert split_of(None, {}) == ("unknown", "")


def test_comparison_sets_this_run_next_to_every_published_row():
    summary = {"mae": 0.04, "rmse": 0.05, "psnr": 26.0, "ssim": 0.8, "sam_deg": 9.0}
    per_image = {
        "model": {"all": summary},
        "baseline_cloudy_input": {"all": {**summary, "mae": 0.2}},
    }
    entry = comparison(per_image, FACTS)
    model, baseline = entry["this_run"]
    assert model["model"] == "DSen2-CR, this run (CARL, F=32, B=6, 10 bands)"
    assert model["mae"] == 0.04 and baseline["mae"] == 0.2
    assert model["protocol"] == "per-image means" and "synthetic sample" in model["data"]
    assert [r["model"] for r in entry["published"]] == [r.model for r in PUBLISHED]
    assert entry["published"][0]["bands"] == 13 and entry["published"][0]["features"] == 256
    lines = comparison_table(entry)
    assert len(lines) == 2 + 2 + len(PUBLISHED)
    assert lines[2].startswith(
        "| DSen2-CR, this run (CARL, F=32, B=6, 10 bands) | 0.0400 | 0.0500 | 26.00 | 0.800 |"
    )
    assert "| GLF-CR | 0.0280 |  | 28.64 | 0.885 | 8.98 | as cited by GLF-CR / UnCRtainTS |" in (
        "\n".join(lines)
    )
    assert all(line.count("|") == lines[0].count("|") for line in lines)
