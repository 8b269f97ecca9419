"""``kedro run --pipeline data_processing --params "data.root=<samples>,data.split=official"``
on the 22 real SEN12MS-CR samples, as a user types it (outputs moved into tmp_path)."""

from __future__ import annotations

import pytest
from support.conf_env import ENV, conf_env
from support.kedro_cli import kedro_run

from tml_cloudremoval.data.patch_store import PatchStore
from tml_cloudremoval.data.splits import SPLITS

OUTPUTS = [
    "triplets",
    "triplet_validation",
    *(f"{s}_triplets{v}" for s in SPLITS for v in ("", "_valid")),
    *(f"{s}_patches" for s in SPLITS),
]


@pytest.mark.slow
@pytest.mark.realdata
def test_the_official_split_of_the_real_samples_from_the_command_line(tmp_path, real_samples_root):
    out = tmp_path / "out"
    conf = conf_env(tmp_path, **{name: out / name for name in OUTPUTS})
    code, output = kedro_run(
        "--pipeline",
        "data_processing",
        f"--conf-source={conf}",
        f"--env={ENV}",
        "--params",
        f"data.root={real_samples_root},data.split=official",
        columns=400,
    )
    assert code == 0, output[-3000:]
    stores = {s: PatchStore.open(out / f"{s}_patches") for s in SPLITS}
    assert {s: len(store) for s, store in stores.items()} == {"train": 21, "val": 0, "test": 1}
    assert list(stores["test"].index["patch"]) == ["p839"]
    assert "ROIs2017_winter_112" in set(stores["train"].index["scene_id"])
    assert stores["val"].s2.shape == (0, 256, 256, 10)
    assert all(store.meta["split_method"] == "official" for store in stores.values())
    assert "1 scene(s) not in the official SEN12MS-CR split go to train: ROIs0000_nogeo_0" in output
    assert "the official split found no val scene under the data root" in output
