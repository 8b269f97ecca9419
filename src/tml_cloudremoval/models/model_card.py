"""``MODEL_CARD.md``: the model's contract for people, plus the evaluation figures.

Written beside ``contract.json`` in each model version folder when the model is saved; the
evaluation pipeline writes it again, from the same contract, with its figures (the
``model_card`` catalog entry). Figures are on reflectance (DN / 10000), SAM in degrees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tml_cloudremoval.evaluation.literature import comparison_table
from tml_cloudremoval.models.contract import ModelContract

CARD_FILE = "MODEL_CARD.md"
"""Name of the card inside a model version folder."""

FIGURES_HEADING = "## Evaluation on the test split"


@dataclass(frozen=True)
class ModelCardUpdate:
    """A card to write into the model version ``folder`` (saved by the ``model_card`` entry)."""

    folder: Path
    text: str


_REGIONS = ("all", "covered", "clear")
_PREDICTORS = (("model", "model"), ("baseline_cloudy_input", "cloudy input"))
_COLUMNS = (("mae", 4), ("rmse", 4), ("psnr", 2), ("ssim", 3), ("sam_deg", 2))


def _fmt(value: Any, digits: int) -> str:
    return "n/a" if value is None else f"{float(value):.{digits}f}"


def _contract_lines(contract: ModelContract) -> list[str]:
    if not contract.known:
        return [
            "**No contract**: this version was saved before models carried one. Its bands,",
            "normalisation, SAR method and training data are not recorded; inference and",
            "evaluation use their parameters as given (each logged).",
        ]
    radiometry, optical, sar = contract.radiometry, contract.optical, contract.sar
    clips = zip(sar.bands, sar.clip_db, strict=True)
    clip_db = ", ".join(f"{b} [{lo:g}, {hi:g}] dB" for b, (lo, hi) in clips)
    return [
        f"- Bands, in order: {' '.join(contract.bands)}",
        f"- Trained on: {radiometry.product_family}, Sentinel-2 {radiometry.level}, reflectance = "
        f"(DN + {radiometry.dn_offset}) / {radiometry.quantification}",
        f"- Optical normalisation: DN clipped to [{optical.clip_dn[0]:g}, {optical.clip_dn[1]:g}],"
        f" divided by {optical.scale:g}",
        f"- SAR ({' '.join(sar.bands)}): {clip_db}, mapped to [0, {sar.max_val_sar:g}]; "
        f"averaged onto the {sar.factor} x coarser (40 m) grid by `{sar.method}`",
        f"- Cloud/shadow mask threshold: {contract.cloud_threshold}",
        f"- Model: {_pairs(contract.model)}",
        f"- Training: {_pairs(contract.training)}",
        f"- Training split: {contract.training_split.get('n_patches')} patches, sha256 "
        f"`{contract.training_split.get('sha256')}`",
        f"- Project version {contract.project_version}, contract schema {contract.schema_version}",
    ]


def _pairs(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in values.items()) or "not recorded"


def figures_lines(metrics: Mapping[str, Any]) -> list[str]:
    """The evaluation section: a table of every region, model and cloudy-input baseline (pooled
    over pixels), then the table next to the published results when ``metrics`` has it."""
    lines = [
        FIGURES_HEADING,
        "",
        f"{metrics.get('n_patches')} patches, {metrics.get('n_pixels')} px, "
        f"{100 * float(metrics.get('cloud_cover') or 0.0):.1f} % cloud/shadow; reflectance, "
        "SAM in degrees.",
        "",
        "| predictor | region | MAE | RMSE | PSNR | SSIM | SAM |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, label in _PREDICTORS:
        for region in _REGIONS:
            values = (metrics.get(key) or {}).get(region)
            if values is None:
                lines.append(f"| {label} | {region} | no pixel | | | | |")
                continue
            cells = " | ".join(_fmt(values.get(name), d) for name, d in _COLUMNS)
            lines.append(f"| {label} | {region} | {cells} |")
    literature = metrics.get("literature_comparison")
    if literature is not None:
        lines += [
            "",
            "Next to the published results (this run: per-image means, all pixels; "
            "more in `data/08_reporting/evaluation_report.md`):",
            "",
        ]
        lines += comparison_table(literature)
    return lines


def card_text(
    contract: ModelContract, metrics: Mapping[str, Any] | None = None, version: str | None = None
) -> str:
    """The whole card: the contract in words, then the evaluation figures (or a line saying
    evaluation has not run on this version yet)."""
    title = f"# DSen2-CR model card{f' (version {version})' if version else ''}"
    lines = [
        title,
        "",
        "Cloud removal for Sentinel-2 guided by Sentinel-1 SAR (DSen2-CR, Meraner et al. 2020),",
        "10 optical bands at 10 m and SAR at 40 m. The same facts, machine-readable, are in",
        "`contract.json` beside this file; inference and evaluation check their inputs against it.",
        "",
        "## Contract",
        "",
        *_contract_lines(contract),
        "",
    ]
    if metrics is None:
        lines += [FIGURES_HEADING, "", "Not evaluated yet (`kedro run --pipelines evaluation`)."]
    else:
        lines += figures_lines(metrics)
    return "\n".join(lines) + "\n"


def evaluated_card(trained: Any, metrics: Mapping[str, Any]) -> ModelCardUpdate:
    """The card of the evaluated ``trained`` model (a loaded
    :class:`~tml_cloudremoval.models.contract.TrainedModel`) with the figures of ``metrics``."""
    if trained.folder is None:
        raise ValueError("the evaluated model was not loaded from a version folder")
    text = card_text(trained.contract, metrics, version=Path(trained.folder).name)
    return ModelCardUpdate(Path(trained.folder), text)
