"""MODEL_CARD.md: the contract in words, then the evaluation figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tml_cloudremoval.evaluation.literature import RunFacts, comparison
from tml_cloudremoval.models.contract import (
    ModelContract,
    SarNormalisation,
    TrainedModel,
    unknown_contract,
)
from tml_cloudremoval.models.model_card import FIGURES_HEADING, card_text, evaluated_card

CONTRACT = ModelContract(
    sar=SarNormalisation(method="linear_power"),
    cloud_threshold=0.2,
    model={"features": 8, "blocks": 1},
    training={"epochs": 2},
    training_split={"n_patches": 5, "sha256": "abc123"},
    project_version="0.1.0",
)
REGION = {"mae": 0.0123456, "rmse": 0.02, "psnr": 33.9812, "ssim": 0.87654, "sam_deg": 4.321}
METRICS = {
    "n_patches": 4,
    "n_pixels": 4096,
    "cloud_cover": 0.25,
    "model": {"all": REGION, "covered": REGION, "clear": None},
    "baseline_cloudy_input": {"all": REGION, "covered": REGION, "clear": REGION},
}


def test_card_names_bands_normalisation_and_training():
    card = card_text(CONTRACT, version="2026-01-01T00.00.00.000Z")
    assert card.startswith("# DSen2-CR model card (version 2026-01-01T00.00.00.000Z)")
    assert "Bands, in order: B2 B3 B4 B5 B6 B7 B8 B8A B11 B12" in card
    assert "SEN12MS-CR, Sentinel-2 L1C, reflectance = (DN + 0) / 10000" in card
    assert "DN clipped to [0, 10000], divided by 2000" in card
    assert "VV [-25, 0] dB, VH [-32.5, 0] dB, mapped to [0, 2]" in card
    assert "by `linear_power`" in card and "threshold: 0.2" in card
    assert "features 8, blocks 1" in card and "5 patches, sha256 `abc123`" in card
    assert "Not evaluated yet" in card


def test_card_with_figures_has_a_row_per_predictor_and_region():
    card = card_text(CONTRACT, METRICS)
    figures = card[card.index(FIGURES_HEADING) :]
    assert "4 patches, 4096 px, 25.0 % cloud/shadow" in figures
    assert "| model | all | 0.0123 | 0.0200 | 33.98 | 0.877 | 4.32 |" in figures
    assert "| model | clear | no pixel | | | | |" in figures
    assert "| cloudy input | clear | 0.0123 |" in figures
    assert "Not evaluated yet" not in card


def test_a_model_without_contract_says_so():
    card = card_text(unknown_contract())
    assert "**No contract**" in card and "Bands, in order" not in card


def test_evaluated_card_goes_to_the_version_folder(tmp_path):
    update = evaluated_card(TrainedModel(None, CONTRACT, tmp_path / "V1"), METRICS)
    assert update.folder == Path(tmp_path / "V1")
    assert update.text == card_text(CONTRACT, METRICS, version="V1")
    with pytest.raises(ValueError, match="not loaded from a version folder"):
        evaluated_card(TrainedModel(None, CONTRACT), METRICS)


def test_card_sets_the_model_next_to_the_published_results():
    facts = RunFacts(8, 1, True, "carl", 10, "seeded", "seed 42", True, 4)
    per_image = {"model": {"all": REGION}, "baseline_cloudy_input": {"all": REGION}}
    card = card_text(CONTRACT, METRICS | {"literature_comparison": comparison(per_image, facts)})
    figures = card[card.index("Next to the published results") :]
    assert "| DSen2-CR, this run (CARL, F=8, B=1, 10 bands) | 0.0123 | 0.0200 | 33.98 |" in figures
    assert "| DSen2-CR, CARL | 0.0290 | 0.0366 | 28.70 | 0.875 | 8.15 |" in figures
    assert "model size: F=8, B=1 vs F=256, B=16" in figures
    assert "Next to the published results" not in card_text(CONTRACT, METRICS)
