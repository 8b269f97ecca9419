"""inference.ensemble: member versions from the model folder, contracts that must agree with
the first member's (read before any model loads), members of one kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tml_cloudremoval.config import ConfigError
from tml_cloudremoval.inference import ensemble
from tml_cloudremoval.models.contract import (
    CONTRACT_FILE,
    ContractError,
    ModelContract,
    SarNormalisation,
    TrainedModel,
    contract_to_dict,
)
from tml_cloudremoval.models.dsen2cr import build_dsen2cr

ROOT_NAME = "dsen2cr.keras"
MEAN = ModelContract(sar=SarNormalisation(method="mean"), cloud_threshold=0.2)


def _saved(tmp_path: Path, contracts: dict[str, ModelContract | None]) -> Path:
    """A ModelDataset folder with empty model files and the given contracts (None: none)."""
    root = tmp_path / ROOT_NAME
    for version, contract in contracts.items():
        (root / version).mkdir(parents=True)
        (root / version / ROOT_NAME).write_bytes(b"")
        if contract is not None:
            text = json.dumps(contract_to_dict(contract))
            (root / version / CONTRACT_FILE).write_text(text)
    return root


def test_versions_of_the_folder(tmp_path):
    root = _saved(tmp_path, {"2026-01-02": MEAN, "2026-01-01": MEAN, "2026-01-03": MEAN})
    (root / ".2026-01-04.123.abcdefabcdef.tmp").mkdir()  # a killed save: not a version
    (root / "notes").mkdir()  # no model file: not a version
    assert ensemble.saved_versions(root) == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert ensemble.member_versions(root, "all") == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert ensemble.member_versions(root, ("2026-01-03", "2026-01-01")) == [
        "2026-01-03",
        "2026-01-01",
    ]
    model = TrainedModel(None, MEAN, root / "2026-01-02")
    assert ensemble.versions_root(model) == root


def test_bad_member_lists_name_the_key_and_the_folder(tmp_path):
    root = _saved(tmp_path, {"a": MEAN})
    with pytest.raises(
        ConfigError, match=r"inference.ensemble: no saved version zz in .* \(saved versions: a\)"
    ):
        ensemble.member_versions(root, ("a", "zz"))
    with pytest.raises(ConfigError, match="at least 2 saved versions, .* has 1 \\(a\\)"):
        ensemble.member_versions(root, "all")
    with pytest.raises(ConfigError, match="not loaded from a version folder"):
        ensemble.versions_root(TrainedModel(None))


def test_contracts_must_agree_with_the_first(tmp_path):
    power = ModelContract(sar=SarNormalisation(method="linear_power"), cloud_threshold=0.2)
    other_threshold = ModelContract(sar=SarNormalisation(method="mean"), cloud_threshold=0.3)
    root = _saved(tmp_path, {"a": MEAN, "b": other_threshold, "c": power, "d": None})
    contracts = {v: ensemble.member_contract(root, v) for v in "abcd"}
    assert contracts["d"].known is False
    ensemble.check_contracts(root, {"a": contracts["a"], "b": contracts["b"]})  # not preprocessing
    with pytest.raises(ContractError) as info:
        ensemble.check_contracts(root, contracts)
    message = str(info.value)
    assert "first member's (a)" in message and "c: sar" in message and "'linear_power'" in message
    assert "d: known False != True" in message and "b:" not in message


def test_members_must_be_of_one_kind():
    from support.aleatoric_model import build_aleatoric_dsen2cr

    plain = build_dsen2cr(features=4, blocks=0, tail_init="he_uniform")
    ensemble.check_members(
        {"a": plain, "b": build_dsen2cr(features=4, blocks=1, tail_init="he_uniform")}
    )
    with pytest.raises(
        ContractError, match=r"like the first \(a: plain, with SAR\): b is aleatoric"
    ):
        ensemble.check_members({"a": plain, "b": build_aleatoric_dsen2cr(features=4, blocks=0)})
    optical_only = build_dsen2cr(features=4, blocks=0, include_sar=False, tail_init="he_uniform")
    with pytest.raises(ContractError, match="c has no SAR input"):
        ensemble.check_members({"a": plain, "c": optical_only})


def test_plan_reads_contracts_only_and_load_reuses_the_loaded_version(tmp_path):
    root = _saved(tmp_path, {"a": MEAN, "b": MEAN})
    loaded = TrainedModel(
        build_dsen2cr(features=4, blocks=0, tail_init="he_uniform"), MEAN, root / "b"
    )
    assert ensemble.plan_ensemble(loaded, None) is None
    members = ensemble.plan_ensemble(loaded, "all")  # the model files are empty: none is read
    assert members.versions == ("a", "b") and members.reference.folder == root / "a"
    assert members.reference.contract_source == str(root / "a" / CONTRACT_FILE)
    other = build_dsen2cr(features=4, blocks=0, tail_init="he_uniform")
    asked = []

    def load(folder, version):
        asked.append((folder, version))
        return TrainedModel(other, MEAN, folder / version)

    assert members.load(loaded, load) == [other, loaded.model]
    assert asked == [(root, "a")]  # b is the loaded model: reused
