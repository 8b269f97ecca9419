"""Radiometry of an optical input: the DN offset and quantification value, and who said so.

The model was trained on SEN12MS-CR: L1C, DN = reflectance x 10000, no offset. Sentinel-2
products of processing baseline >= 04.00 store DN = reflectance x QUANTIFICATION_VALUE - offset
with offset = RADIO_ADD_OFFSET (L1C) = -1000 per band in the product metadata, so
``reflectance x 10000 = (DN + offset) x 10000 / QUANTIFICATION_VALUE``; DN 0 stays nodata.
Harmonised copies (Earth Engine S2_HARMONIZED) have removed it already: their offset is 0.

:func:`resolve_radiometry` joins what a file's metadata says with ``inference.dn_offset``
(``"auto"``: the metadata where present, else 0; an int: that offset, given as the metadata
states it, for files without metadata) into one :class:`Radiometry`, whose ``reason`` the log
shows; :meth:`Radiometry.to_model_dn` applies it to the DN of a tile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tml_cloudremoval.bands import TML_BAND_NAMES
from tml_cloudremoval.errors import SceneError

TRAINING_QUANTIFICATION = 10000.0
"""DN per unit reflectance of the training data (SEN12MS-CR)."""


@dataclass(frozen=True)
class MetadataRadiometry:
    """What a product's metadata states: offsets per TML band (model order) and the
    quantification value; ``source`` names where they were read (file and field)."""

    offsets: tuple[float, ...]
    quantification: float
    source: str


@dataclass(frozen=True)
class Radiometry:
    """Offsets per TML band (DN units, as the metadata states them: -1000 means
    reflectance x 10000 = DN - 1000), the quantification value, and why they were chosen."""

    offsets: tuple[float, ...]
    quantification: float
    reason: str

    @property
    def is_identity(self) -> bool:
        """True when the DN already are reflectance x 10000 (nothing to apply)."""
        return not any(self.offsets) and self.quantification == TRAINING_QUANTIFICATION

    def to_model_dn(self, dn: np.ndarray) -> np.ndarray:
        """(h, w, 10) DN of the file -> float32 reflectance x 10000 (the training DN).

        Pixels with DN 0 (nodata) are left 0; the caller masks them from the raw DN.
        """
        out = dn.astype(np.float32)
        if self.is_identity:
            return out
        zero = dn == 0
        out += np.asarray(self.offsets, np.float32)
        out *= np.float32(TRAINING_QUANTIFICATION / self.quantification)
        out[zero] = 0.0
        return out

    def as_json(self) -> dict[str, object]:
        """JSON facts for the plan and the run report."""
        return {
            "dn_offset": dict(zip(TML_BAND_NAMES, self.offsets, strict=True)),
            "quantification": self.quantification,
            "reason": self.reason,
        }


def resolve_radiometry(
    metadata: MetadataRadiometry | None, dn_offset: str | int, path: object
) -> Radiometry:
    """The radiometry to apply to the file ``path``.

    ``dn_offset``: ``"auto"`` (the metadata's, else 0) or an int. An int that contradicts the
    product metadata is a ``SceneError`` naming both values (the metadata is the product's own
    statement; an int is meant for files without metadata).
    """
    n = len(TML_BAND_NAMES)
    if metadata is None:
        if dn_offset == "auto":
            reason = f"{path}: no radiometric offset in the file's metadata: dn_offset 0 (auto)"
            return Radiometry((0.0,) * n, TRAINING_QUANTIFICATION, reason)
        reason = f"{path}: dn_offset {dn_offset} from inference.dn_offset (file has no metadata)"
        return Radiometry((float(dn_offset),) * n, TRAINING_QUANTIFICATION, reason)
    if dn_offset != "auto" and any(o != float(dn_offset) for o in metadata.offsets):
        raise SceneError(
            f"{path}: inference.dn_offset is {dn_offset} but the product metadata "
            f"({metadata.source}) states {_offset_text(metadata.offsets)}; set "
            "inference.dn_offset: auto to use the metadata"
        )
    reason = (
        f"{path}: dn_offset {_offset_text(metadata.offsets)}, quantification "
        f"{metadata.quantification:g} from {metadata.source}"
    )
    return Radiometry(metadata.offsets, metadata.quantification, reason)


def _offset_text(offsets: Sequence[float]) -> str:
    values = sorted(set(offsets))
    if len(values) == 1:
        return f"{values[0]:g}"
    return ", ".join(f"{b} {o:g}" for b, o in zip(TML_BAND_NAMES, offsets, strict=True))
