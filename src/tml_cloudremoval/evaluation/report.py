"""The evaluation report for people: ``data/08_reporting/evaluation_report.md``.

Built from the ``metrics.json`` layout alone (:func:`tml_cloudremoval.evaluation.evaluate.
evaluate_store` plus ``literature_comparison``): the pooled figures, the per-image means and
standard deviations (the published protocol), the same by cloud cover of the patch, the table
next to the published results, the notes and the definitions. Reflectance (0-1), PSNR in dB,
SAM in degrees.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tml_cloudremoval.evaluation.literature import FIGURES, comparison_table
from tml_cloudremoval.evaluation.metrics import REGIONS

PREDICTORS: tuple[tuple[str, str], ...] = (
    ("model", "model"),
    ("baseline_cloudy_input", "cloudy input"),
)
"""metrics.json key and table label of each predictor."""


def _value(value: Any, digits: int) -> str:
    return "n/a" if value is None else f"{float(value):.{digits}f}"


def _mean_std(values: Mapping[str, Any], key: str, digits: int) -> str:
    mean, std = values.get(key), values.get(f"{key}_std")
    if mean is None:
        return "n/a"
    return f"{float(mean):.{digits}f} ± {float(std):.{digits}f}"


def _header(first: str, last: str) -> list[str]:
    titles = " | ".join(title for _, title, _ in FIGURES)
    return [f"| {first} | {titles} | {last} |", "|" + "---|" * (len(FIGURES) + 3)]


def pooled_lines(metrics: Mapping[str, Any]) -> list[str]:
    """Pooled figures (every pixel weighs the same), predictor x region."""
    lines = _header("predictor | region", "pixels")
    for key, label in PREDICTORS:
        for region in REGIONS:
            values = metrics[key][region]
            if values is None:
                lines.append(f"| {label} | {region} | no pixel |" + " |" * len(FIGURES))
                continue
            cells = " | ".join(_value(values.get(k), d) for k, _, d in FIGURES)
            lines.append(f"| {label} | {region} | {cells} | {values['n_pixels']} |")
    return lines


def _summary_row(first: str, values: Mapping[str, Any] | None, missing: str) -> str:
    if values is None:
        return f"| {first} | {missing} |" + " |" * len(FIGURES)
    cells = " | ".join(_mean_std(values, k, d) for k, _, d in FIGURES)
    return f"| {first} | {cells} | {values['n_patches']} |"


def per_image_lines(per_image: Mapping[str, Any]) -> list[str]:
    """Per-image mean ± standard deviation over patches, predictor x region."""
    lines = _header("predictor | region", "patches")
    for key, label in PREDICTORS:
        for region in REGIONS:
            lines.append(_summary_row(f"{label} | {region}", per_image[key][region], "no patch"))
    return lines


def binned_lines(bins: list[Mapping[str, Any]], region: str) -> list[str]:
    """Per-image mean ± std of one region by cloud-cover bin, model and cloudy input."""
    lines = _header("cloud cover | predictor", "patches")
    for entry in bins:
        for key, label in PREDICTORS:
            first = f"{entry['interval']} % | {label}"
            if entry["n_patches"] == 0:
                lines.append(f"| {first} | no test patch |" + " |" * (len(FIGURES) - 1) + " 0 |")
                continue
            lines.append(_summary_row(first, entry[key][region], f"no {region} pixel"))
    return lines


def report_markdown(metrics: Mapping[str, Any]) -> str:
    """The whole report as Markdown text (ends with a newline)."""
    lines = [
        "# Evaluation report",
        "",
        f"{metrics['n_patches']} test patches of {metrics['patch_size'][0]} x "
        f"{metrics['patch_size'][1]} px, {100 * float(metrics['cloud_cover']):.1f} % "
        "cloud/shadow; reflectance (DN / 10000), PSNR in dB, SAM in degrees. The model is set "
        "against the cloudy input taken as the prediction.",
        "",
        "## Pooled over pixels",
        "",
        *pooled_lines(metrics),
        "",
        "## Per image (the published protocol): mean ± standard deviation over patches",
        "",
        *per_image_lines(metrics["per_image"]),
    ]
    for region in REGIONS:
        lines += ["", f"## Per image by cloud cover of the patch: {region} pixels", ""]
        lines += binned_lines(metrics["per_image_by_cloud_cover"], region)
    literature = metrics.get("literature_comparison")
    if literature is not None:
        lines += ["", "## Next to the published results", "", literature["note"] + ".", ""]
        lines += comparison_table(literature)
    lines += ["", "## Notes", ""]
    lines += [f"- {note}" for note in metrics.get("notes", [])] or ["- none"]
    lines += ["", "## Definitions", ""]
    lines += [f"- {key}: {text}" for key, text in metrics.get("definitions", {}).items()]
    return "\n".join(lines) + "\n"
