"""Published SEN12MS-CR results, and this run's figures set next to them, each difference named.

:data:`PUBLISHED` is the one copy in the project of the table in ``shared/docs/domain.md``
("Published results on the SEN12MS-CR test split"): all 13 Sentinel-2 bands, DSen2-CR with
F = 256 features and B = 16 residual blocks (Meraner et al. 2020) or another architecture.
Figures on reflectance (0-1), PSNR in dB, SAM in degrees; ``None`` where the source gives none.

:func:`comparison` builds the ``literature_comparison`` entry of ``metrics.json``: this run's
per-image means over all pixels (model and cloudy-input baseline, the protocol of UnCRtainTS)
and every published row with the list of what differs, always "this run vs the published row":
bands, model size or architecture, SAR, loss, data (split, synthetic sample or not) and protocol.
:func:`comparison_table` renders it as Markdown (the report and the model card).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tml_cloudremoval.data.synthetic.sample_folder import read_manifest

SAMPLE_KIND = "sen12mscr"
"""``kind`` in the manifest of the synthetic SEN12MS-CR sample (the sample_data pipeline)."""


@dataclass(frozen=True)
class PublishedResult:
    """One published row; ``split``: key of :data:`SPLITS`; ``protocol``: key of
    :data:`PROTOCOLS`; ``features``/``blocks`` None for another architecture than DSen2-CR."""

    model: str
    mae: float | None
    rmse: float | None
    psnr: float | None
    ssim: float | None
    sam_deg: float | None
    source: str
    architecture: str = "DSen2-CR"
    features: int | None = 256
    blocks: int | None = 16
    bands: int = 13
    sar: bool = True
    loss: str | None = None
    split: str = "official"
    protocol: str = "per_image"


SPLITS: dict[str, str] = {
    "official": "the official SEN12MS-CR test split (the 10 test scenes of SEN12MS-CR-TS / "
    "UnCRtainTS)",
    "file_list": "the test split of a DSen2-CR file list",
    "seeded": "a seeded scene split",
    "unknown": "a split not recorded",
}
PROTOCOLS: dict[str, str] = {
    "per_image": "per-image means",
    "pooled": "pooled over the test set",
}

_MERANER = "Meraner et al. 2020, table 1"
_CITED = "as cited by GLF-CR / UnCRtainTS"
PUBLISHED: tuple[PublishedResult, ...] = (
    PublishedResult(
        "DSen2-CR, CARL", 0.0290, 0.0366, 28.7, 0.875, 8.15, _MERANER,
        loss="carl", split="file_list", protocol="pooled",
    ),
    PublishedResult(
        "DSen2-CR, CARL, no SAR", 0.0306, 0.0387, 27.6, 0.870, 8.98, _MERANER,
        sar=False, loss="carl", split="file_list", protocol="pooled",
    ),
    PublishedResult("DSen2-CR (re-run)", 0.031, None, 27.76, 0.874, 9.47, _CITED),
    PublishedResult(
        "GLF-CR", 0.028, None, 28.64, 0.885, 8.98, _CITED,
        architecture="GLF-CR", features=None, blocks=None,
    ),
    PublishedResult(
        "UnCRtainTS (L2)", 0.027, None, 28.90, 0.880, 8.32, _CITED,
        architecture="UnCRtainTS", features=None, blocks=None, loss="l2",
    ),
)  # fmt: skip
"""The published rows of domain.md (13 bands; DSen2-CR F = 256, B = 16). Meraner et al. report
pooled figures on the test split of their file list; the cited rows use the official split and
per-image means (the protocol of UnCRtainTS)."""

FIGURES: tuple[tuple[str, str, int], ...] = (
    ("mae", "MAE", 4),
    ("rmse", "RMSE", 4),
    ("psnr", "PSNR", 2),
    ("ssim", "SSIM", 3),
    ("sam_deg", "SAM (deg)", 2),
)
"""Figures of a row: key, column heading, decimals in the Markdown table."""


@dataclass(frozen=True)
class RunFacts:
    """What this run is, as far as the labels need it: ``features``/``blocks``/``include_sar``/
    ``loss`` from the model's contract (None: not recorded), ``n_bands`` its bands, ``split``
    a key of :data:`SPLITS` (``split_detail`` e.g. "seed 42"), ``synthetic`` whether the test
    patches come from the synthetic sample (None: unknown), ``n_patches`` test patches."""

    features: int | None
    blocks: int | None
    include_sar: bool | None
    loss: str | None
    n_bands: int
    split: str
    split_detail: str
    synthetic: bool | None
    n_patches: int


def is_synthetic_sample(path: str | os.PathLike[str]) -> bool | None:
    """True when ``path`` (a file of the test split, or data.root) lies in, or is, a folder the
    synthetic sample generator wrote (its ``manifest.json`` says kind ``sen12mscr``); None when
    ``path`` does not exist (nothing to tell), else False."""
    path = Path(path).absolute()
    if not path.exists():
        return None
    for folder in (path, *path.parents):
        manifest = read_manifest(folder)
        if manifest is not None and manifest.get("kind") == SAMPLE_KIND:
            return True
    return False


_RECORDED_METHODS = {"official": "official", "file_list": "file_list", "fractions": "seeded"}
"""``split_method`` of a store's meta.json (``data.splits.split_method``) -> key of SPLITS."""


def split_of(data_config: Any, store_meta: Mapping[str, Any]) -> tuple[str, str]:
    """(key of :data:`SPLITS`, detail) of the test split: the store's ``meta.json``
    ``split_method`` when it records one, else the ``data`` settings (a file list's own split
    wins, then ``data.split: official``, else the seeded scene split)."""
    recorded = _RECORDED_METHODS.get(str(store_meta.get("split_method")))
    if recorded is not None:
        return recorded, "recorded by the test store"
    if data_config is None:
        return "unknown", ""
    if getattr(data_config, "file_list", None):
        return "file_list", str(data_config.file_list)
    split = data_config.split
    if isinstance(split, str):
        return (split, "data.split") if split in SPLITS else ("unknown", split)
    fractions = "/".join(f"{v:g}" for v in asdict(split).values())
    return "seeded", f"seed {data_config.seed}, scene fractions {fractions}"


def run_facts(
    contract: Any, store: Any, data_config: Any = None, data_root: str | None = None
) -> RunFacts:
    """:class:`RunFacts` from a model ``contract`` (``.model``, ``.training``, ``.bands``), the
    test ``store`` (``.meta``, ``.index``, ``len``) and the validated ``data`` settings.

    Synthetic or not is read from the first ``s2_path`` of the store's index, else from
    ``data_root`` (None when neither is known)."""
    model, training = dict(contract.model or {}), dict(contract.training or {})
    index = getattr(store, "index", None)
    if index is not None and "s2_path" in index.columns and len(index):
        synthetic = is_synthetic_sample(str(index["s2_path"].iloc[0]))
    else:
        synthetic = None if data_root is None else is_synthetic_sample(data_root)
    split, detail = split_of(data_config, dict(getattr(store, "meta", {}) or {}))
    return RunFacts(
        features=model.get("features"),
        blocks=model.get("blocks"),
        include_sar=model.get("include_sar"),
        loss=training.get("loss"),
        n_bands=len(contract.bands),
        split=split,
        split_detail=detail,
        synthetic=synthetic,
        n_patches=len(store),
    )


def _size(features: int | None, blocks: int | None) -> str:
    return "not recorded" if features is None or blocks is None else f"F={features}, B={blocks}"


def data_label(facts: RunFacts) -> str:
    """The test data of this run in words, e.g. "the synthetic sample, a seeded scene split
    (seed 42, ...), 12 test patches"."""
    origin = {True: "the synthetic sample", False: "SEN12MS-CR", None: "data of unknown origin"}
    detail = f" ({facts.split_detail})" if facts.split_detail else ""
    return (
        f"{origin[facts.synthetic]}, {SPLITS[facts.split]}{detail}, {facts.n_patches} test patches"
    )


def differences(row: PublishedResult, facts: RunFacts) -> list[str]:
    """What differs between this run and ``row``, each "aspect: this run vs published"."""
    out = []
    if facts.n_bands != row.bands:
        out.append(f"bands: the {facts.n_bands} TML bands vs {row.bands}")
    ours = _size(facts.features, facts.blocks)
    if row.architecture != "DSen2-CR":
        out.append(f"architecture: DSen2-CR ({ours}) vs {row.architecture}")
    elif (facts.features, facts.blocks) != (row.features, row.blocks):
        out.append(f"model size: {ours} vs {_size(row.features, row.blocks)}")
    if facts.include_sar is not None and facts.include_sar != row.sar:
        sar = {True: "VV+VH", False: "none"}
        out.append(f"SAR: {sar[facts.include_sar]} vs {sar[row.sar]}")
    if facts.loss and row.loss and facts.loss != row.loss:
        out.append(f"loss: {facts.loss.upper()} vs {row.loss.upper()}")
    out.append(f"data: {data_label(facts)} vs {SPLITS[row.split]}")  # the size, at least
    if row.protocol != "per_image":
        out.append(f"protocol: {PROTOCOLS['per_image']} vs {PROTOCOLS[row.protocol]}")
    return out


def this_run_label(facts: RunFacts) -> str:
    """E.g. "DSen2-CR, this run (CARL, F=32, B=6, 10 bands)"."""
    parts = [p for p in ((facts.loss or "").upper(), _size(facts.features, facts.blocks)) if p]
    parts.append(f"{facts.n_bands} bands" + (", no SAR" if facts.include_sar is False else ""))
    return f"DSen2-CR, this run ({', '.join(parts)})"


def _figures(values: Mapping[str, Any] | None) -> dict[str, float | None]:
    return {key: (values or {}).get(key) for key, _, _ in FIGURES}


def comparison(per_image: Mapping[str, Any], facts: RunFacts) -> dict[str, Any]:
    """The ``literature_comparison`` entry: ``this_run`` rows (model, cloudy input: per-image
    means over all pixels, from ``per_image`` as :mod:`.protocol` makes it), ``published`` rows
    each with ``differs`` (list of "aspect: this run vs published")."""
    common = {"protocol": PROTOCOLS["per_image"], "data": data_label(facts)}
    model = per_image["model"]["all"]
    this_run = [
        {"model": this_run_label(facts), **_figures(model), **common},
        {
            "model": "cloudy input (baseline)",
            **_figures(per_image["baseline_cloudy_input"]["all"]),
            **common,
        },
    ]
    published = [
        {
            **asdict(row),
            "data": SPLITS[row.split],
            "protocol": PROTOCOLS[row.protocol],
            "differs": differences(row, facts),
        }
        for row in PUBLISHED
    ]
    return {
        "note": (
            "this run: per-image means over its test patches, all pixels; each published row "
            "lists what differs as 'this run vs published'"
        ),
        "this_run": this_run,
        "published": published,
    }


def _cell(value: Any, digits: int) -> str:
    return "" if value is None else f"{float(value):.{digits}f}"


def comparison_table(entry: Mapping[str, Any]) -> list[str]:
    """Markdown lines of a ``literature_comparison`` entry: this run's rows, then the published
    rows with their source and what differs."""
    head = " | ".join(title for _, title, _ in FIGURES)
    lines = [f"| model | {head} | source | differs (this run vs published) |"]
    lines.append("|" + "---|" * (len(FIGURES) + 3))
    rows: Sequence[tuple[Mapping[str, Any], str, str]] = [
        *((r, f"this run, {r['protocol']}", "") for r in entry["this_run"]),
        *((r, r["source"], "; ".join(r["differs"])) for r in entry["published"]),
    ]
    for row, source, differs in rows:
        cells = " | ".join(_cell(row.get(key), digits) for key, _, digits in FIGURES)
        lines.append(f"| {row['model']} | {cells} | {source} | {differs} |")
    return lines
