"""Cloud and cloud-shadow mask of a Sentinel-2 L1C patch (Meraner / Schmitt detector, DSen2-CR).

Works on the raw 13-band cloudy patch, channels_last ``(H, W, 13)`` in DN (reflectance x 10000),
*before* band selection (it needs B1 and B10) and before any clipping or scaling. Bands are found
by name through :mod:`tml_cloudremoval.bands`.

Cloud score: start at 1 and take the pixelwise minimum with r(B2, [0.1, 0.5]), r(B1, [0.1, 0.3]),
r(B1 + B10, [0.15, 0.2]), r(B4 + B3 + B2, [0.2, 0.8]) and r(NDSI, [0.8, 0.6]), where
r(x, [a, b]) = (x - a) / (b - a) and NDSI = (B3 - B11) / (B3 + B11) with a zero denominator
replaced by 0.001; then a 5 x 5 grey closing (reflect boundary), a 7 x 7 box mean (zero padded,
same size) and a clip to [1e-5, 1]. Cloud where score >= threshold.

Shadow: CSI = (B8 + B11) / 2, T3 = min(CSI) + 3/4 (mean(CSI) - min(CSI)),
T4 = min(B2) + 5/6 (mean(B2) - min(B2)); shadow where CSI < T3 and B2 < T4, then a 5 x 5 median
filter with zero padding (``scipy.signal.medfilt2d``, as the published code does).
The thresholds are image-adaptive: the mask depends on the window it is computed on.

Two implementations live here:

- the product (:func:`cloud_score`, :func:`cloud_mask`, :func:`shadow_mask`,
  :func:`cloud_shadow_mask`): float32, the filters written as exact separable shifted-slice
  max/min/sum passes; about 1-2 ms per 256 x 256 patch on one core;
- the oracle (:func:`cloud_score_reference`, :func:`shadow_mask_reference`,
  :func:`cloud_shadow_mask_reference`): a literal, slow float64 transcription of the published
  ``get_cloud_cloudshadow_mask`` (DSen2-CR ``tools/feature_detectors.py``), kept for tests and
  benchmarks only.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage
import scipy.signal

from tml_cloudremoval.bands import S2_BAND_NAMES, band_indices
from tml_cloudremoval.normalise import REFLECTANCE_SCALE

DEFAULT_CLOUD_THRESHOLD = 0.2
"""Cloud score at or above which a pixel is cloud (DSen2-CR default)."""

CLOSING_SIZE = 5
"""Side in px of the grey closing applied to the cloud score."""

BOX_SIZE = 7
"""Side in px of the zero-padded box mean applied after the closing."""

MEDIAN_SIZE = 5
"""Side in px of the median filter applied to the raw shadow mask."""

SCORE_CLIP: tuple[float, float] = (1e-5, 1.0)
"""Range the smoothed cloud score is clipped to."""

NDSI_ZERO_DENOMINATOR = 0.001
"""Replacement for a zero NDSI denominator (B3 + B11 == 0), in reflectance."""

_DETECTOR_BANDS = ("B1", "B2", "B3", "B4", "B8", "B10", "B11")
_IDX = dict(zip(_DETECTOR_BANDS, band_indices(_DETECTOR_BANDS), strict=True))


def _check(s2_dn: np.ndarray) -> np.ndarray:
    """Validate a channels_last 13-band Sentinel-2 patch (H, W, 13) and return it as an array."""
    s2_dn = np.asarray(s2_dn)
    if s2_dn.ndim != 3 or s2_dn.shape[-1] != len(S2_BAND_NAMES):
        raise ValueError(
            f"cloud mask needs a channels_last Sentinel-2 patch (H, W, {len(S2_BAND_NAMES)}) "
            f"with the bands {', '.join(S2_BAND_NAMES)}; got an array of shape {s2_dn.shape}"
        )
    if s2_dn.shape[0] == 0 or s2_dn.shape[1] == 0:
        raise ValueError(f"cloud mask needs a non-empty patch; got shape {s2_dn.shape}")
    if not (np.issubdtype(s2_dn.dtype, np.integer) or np.issubdtype(s2_dn.dtype, np.floating)):
        raise ValueError(f"cloud mask needs integer or float DN; got dtype {s2_dn.dtype}")
    return s2_dn


def _reflectance(s2_dn: np.ndarray, name: str) -> np.ndarray:
    """One band of a (H, W, 13) DN patch as float32 reflectance (DN / 10000), shape (H, W)."""
    return np.divide(s2_dn[..., _IDX[name]], np.float32(REFLECTANCE_SCALE), dtype=np.float32)


# --- exact separable filters -------------------------------------------------------------------


def _window_reduce(padded: np.ndarray, size: int, axis: int, op: np.ufunc) -> np.ndarray:
    """Reduce ``size`` consecutive samples along ``axis`` of a padded array with ``op``.

    ``padded`` has ``size - 1`` extra samples along ``axis``; the result has that many fewer.
    """
    n = padded.shape[axis] - size + 1

    def part(k: int) -> np.ndarray:
        return padded[k : k + n] if axis == 0 else padded[:, k : k + n]

    out = op(part(0), part(1))
    for k in range(2, size):
        op(out, part(k), out=out)
    return out


def _pad(image: np.ndarray, half: int, axis: int, mode: str) -> np.ndarray:
    """Pad ``half`` samples on both sides of one axis (``mode`` as in :func:`numpy.pad`)."""
    width = ((half, half), (0, 0)) if axis == 0 else ((0, 0), (half, half))
    return np.pad(image, width, mode=mode)


def _minmax_filter(image: np.ndarray, size: int, op: np.ufunc) -> np.ndarray:
    """size x size max (``np.maximum``) or min (``np.minimum``) filter, reflect boundary.

    Equals ``scipy.ndimage.maximum_filter``/``minimum_filter`` with ``mode="reflect"`` (numpy's
    "symmetric" padding) for odd ``size``, bit for bit.
    """
    half = size // 2
    for axis in (0, 1):
        image = _window_reduce(_pad(image, half, axis, "symmetric"), size, axis, op)
    return image


def grey_closing(image: np.ndarray, size: int = CLOSING_SIZE) -> np.ndarray:
    """Grey closing with a flat size x size square (odd ``size``), 2-D image (H, W), same dtype.

    Identical to ``scipy.ndimage.grey_closing(image, size=(size, size))`` (mode "reflect"):
    a separable max filter followed by a separable min filter.
    """
    return _minmax_filter(_minmax_filter(image, size, np.maximum), size, np.minimum)


def box_sum(image: np.ndarray, size: int) -> np.ndarray:
    """Sum over the size x size window centred on each pixel (odd ``size``), zero padded.

    2-D image (H, W) -> (H, W) of the same dtype; bool input is counted as uint8 (size**2 <= 255).
    Equals ``scipy.signal.convolve2d(image, np.ones((size, size)), mode="same")`` up to float
    rounding (exact for integer input).
    """
    if image.dtype == np.bool_:
        image = image.view(np.uint8)
    half = size // 2
    for axis in (0, 1):
        image = _window_reduce(_pad(image, half, axis, "constant"), size, axis, np.add)
    return image


def binary_median(mask: np.ndarray, size: int = MEDIAN_SIZE) -> np.ndarray:
    """size x size median filter of a boolean image (H, W) with zero padding -> bool (H, W).

    The median of size**2 binary samples is 1 when at least half of them (rounded up) are 1, so
    this equals ``scipy.signal.medfilt2d`` and ``scipy.ndimage.median_filter(mode="constant")``.
    """
    return box_sum(mask, size) >= (size * size) // 2 + 1


# --- the product -------------------------------------------------------------------------------


def _rescale_min(score: np.ndarray, x: np.ndarray, a: float, b: float) -> None:
    """score = min(score, r(x, [a, b])), in place; ``x`` is scratch and is overwritten."""
    x -= np.float32(a)
    x /= np.float32(b - a)
    np.minimum(score, x, out=score)


def _score(s2_dn: np.ndarray) -> np.ndarray:
    b1 = _reflectance(s2_dn, "B1")
    b2 = _reflectance(s2_dn, "B2")
    b3 = _reflectance(s2_dn, "B3")
    b4 = _reflectance(s2_dn, "B4")
    b10 = _reflectance(s2_dn, "B10")
    b11 = _reflectance(s2_dn, "B11")

    score = (b2 - np.float32(0.1)) / np.float32(0.5 - 0.1)  # r(B2, [0.1, 0.5])
    np.minimum(score, np.float32(1.0), out=score)  # the score starts at 1
    _rescale_min(score, b1 + b10, 0.15, 0.2)
    _rescale_min(score, b1, 0.1, 0.3)  # b1 is used up here
    b4 += b3
    b4 += b2
    _rescale_min(score, b4, 0.2, 0.8)
    # NDSI = (B3 - B11) / (B3 + B11), a zero denominator replaced by 0.001
    den = b3 + b11
    den[den == 0] = np.float32(NDSI_ZERO_DENOMINATOR)
    b3 -= b11
    b3 /= den
    _rescale_min(score, b3, 0.8, 0.6)

    score = grey_closing(score, CLOSING_SIZE)
    score = box_sum(score, BOX_SIZE)
    score *= np.float32(1.0 / (BOX_SIZE * BOX_SIZE))
    np.clip(score, np.float32(SCORE_CLIP[0]), np.float32(SCORE_CLIP[1]), out=score)
    return score


def _shadow(s2_dn: np.ndarray) -> np.ndarray:
    b2 = _reflectance(s2_dn, "B2")
    csi = _reflectance(s2_dn, "B8")
    csi += _reflectance(s2_dn, "B11")
    csi *= np.float32(0.5)  # CSI = (B8 + B11) / 2
    csi_min = float(csi.min())
    t3 = csi_min + 3.0 / 4.0 * (float(csi.mean(dtype=np.float64)) - csi_min)
    b2_min = float(b2.min())
    t4 = b2_min + 5.0 / 6.0 * (float(b2.mean(dtype=np.float64)) - b2_min)
    raw = csi < np.float32(t3)
    raw &= b2 < np.float32(t4)
    return binary_median(raw, MEDIAN_SIZE)


def cloud_score(s2_dn: np.ndarray) -> np.ndarray:
    """Smoothed cloud score of a 13-band DN patch (H, W, 13) -> float32 (H, W) in [1e-5, 1].

    The score after closing, box mean and clip, before thresholding.
    """
    return _score(_check(s2_dn))


def cloud_mask(s2_dn: np.ndarray, cloud_threshold: float = DEFAULT_CLOUD_THRESHOLD) -> np.ndarray:
    """Cloud pixels of a 13-band DN patch (H, W, 13) -> bool (H, W): score >= cloud_threshold."""
    return _score(_check(s2_dn)) >= np.float32(cloud_threshold)


def shadow_mask(s2_dn: np.ndarray) -> np.ndarray:
    """Cloud-shadow pixels of a 13-band DN patch (H, W, 13) -> bool (H, W) (after the median)."""
    return _shadow(_check(s2_dn))


def cloud_shadow_mask(
    s2_dn: np.ndarray, cloud_threshold: float = DEFAULT_CLOUD_THRESHOLD
) -> np.ndarray:
    """Training mask of a 13-band DN patch (H, W, 13) -> uint8 (H, W): 1 cloud or shadow, else 0."""
    s2_dn = _check(s2_dn)
    mask = _score(s2_dn) >= np.float32(cloud_threshold)
    mask |= _shadow(s2_dn)
    return mask.view(np.uint8)


# --- the oracle: literal transcription of the published code (slow; tests and benchmarks) -------


def _rescaled(data: np.ndarray, limits: tuple[float, float]) -> np.ndarray:
    return (data - limits[0]) / (limits[1] - limits[0])


def _normalized_difference(channel1: np.ndarray, channel2: np.ndarray) -> np.ndarray:
    subchan = channel1 - channel2
    sumchan = channel1 + channel2
    sumchan[sumchan == 0] = NDSI_ZERO_DENOMINATOR
    return subchan / sumchan


def cloud_score_reference(s2_dn: np.ndarray) -> np.ndarray:
    """Oracle for :func:`cloud_score`: literal float64 transcription (DSen2-CR get_cloud_mask).

    (H, W, 13) DN -> float64 (H, W), the score before binarising. Slow; not for production use.
    """
    data = _check(s2_dn) / 10000.0
    b1, b2, b3, b4, b10, b11 = (data[..., _IDX[n]] for n in ("B1", "B2", "B3", "B4", "B10", "B11"))
    score = np.ones(data.shape[:2]).astype("float32")
    score = np.minimum(score, _rescaled(b2, (0.1, 0.5)))
    score = np.minimum(score, _rescaled(b1, (0.1, 0.3)))
    score = np.minimum(score, _rescaled(b1 + b10, (0.15, 0.2)))
    score = np.minimum(score, _rescaled(b4 + b3 + b2, (0.2, 0.8)))
    ndsi = _normalized_difference(b3, b11)
    score = np.minimum(score, _rescaled(ndsi, (0.8, 0.6)))
    box = np.ones((7, 7)) / (7**2)
    score = scipy.ndimage.grey_closing(score, size=(5, 5))
    score = scipy.signal.convolve2d(score, box, mode="same")
    return np.clip(score, 0.00001, 1.0)


def shadow_mask_reference(s2_dn: np.ndarray) -> np.ndarray:
    """Oracle for :func:`shadow_mask`: literal float64 transcription (DSen2-CR get_shadow_mask).

    (H, W, 13) DN -> bool (H, W). Slow; not for production use.
    """
    data = _check(s2_dn) / 10000.0
    bb, bnir, bswir1 = (data[..., _IDX[n]] for n in ("B2", "B8", "B11"))
    shadow = np.zeros(data.shape[:2]).astype("float32")
    csi = (bnir + bswir1) / 2.0
    t3 = np.min(csi) + 3 / 4 * (np.mean(csi) - np.min(csi))
    t4 = np.min(bb) + 5 / 6 * (np.mean(bb) - np.min(bb))
    shadow[np.logical_and(csi < t3, bb < t4)] = -1
    shadow = scipy.signal.medfilt2d(shadow, 5)
    return shadow < 0


def cloud_shadow_mask_reference(
    s2_dn: np.ndarray, cloud_threshold: float = DEFAULT_CLOUD_THRESHOLD
) -> np.ndarray:
    """Oracle for :func:`cloud_shadow_mask` (DSen2-CR get_cloud_cloudshadow_mask, made 0/1).

    (H, W, 13) DN -> uint8 (H, W), 1 cloud or shadow. Slow; not for production use.
    """
    cloud = cloud_score_reference(s2_dn) >= cloud_threshold
    return (cloud | shadow_mask_reference(s2_dn)).astype(np.uint8)
