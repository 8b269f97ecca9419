"""The DSen2-CR residual network for the 10 TML bands, as a plain functional Keras model.

Meraner et al. (2020): optical and SAR are concatenated, lifted to ``features`` channels by a 3x3
convolution, refined by ``blocks`` residual blocks (conv, ReLU, conv, scale by 0.1, add) and
mapped back to the 10 optical bands, which are added to the optical input (long skip): the
network predicts a correction of the cloudy image.

Layout is channels_last. Inputs, all float32 in model units (see ``tml_cloudremoval.normalise``):

- ``"optical"``: (B, H, W, 10) cloudy TML bands at 10 m, normalised to [0, 5]
- ``"sar"``:     (B, H/4, W/4, 2) VV, VH on the 40 m grid, normalised to [0, 2]
  (absent when ``include_sar=False``)

Output: (B, H, W, 10) cloud-free estimate, same units as ``"optical"``. H and W may be any multiple
of 4 and B any batch size: nothing is fixed at build time. The SAR is brought onto the 10 m grid
inside the model (``UpSampling2D``), so training and inference both feed the 40 m SAR the TML
product carries: ``sar_upsampling="nearest"`` repeats each 40 m pixel over its 4 x 4 block of
10 m pixels (the seed's model), ``"bilinear"`` interpolates between 40 m pixel centres
(half-pixel geometry: 40 m pixel i covers 10 m pixels 4i..4i+3, its centre at 4i + 1.5; edges
clamp), which has no 4 x 4 steps. Only stock Keras layers are used, so a saved ``.keras`` file
loads with ``safe_mode=True`` and no ``custom_objects``. Its receptive field (75 px for 16 blocks
with nearest SAR, 79 px with bilinear) is read off the graph by
:func:`tml_cloudremoval.models.receptive_field.receptive_field`.

With ``uncertainty="aleatoric"`` (``model.uncertainty``) a second head reads the same trunk: a
3x3 convolution of the last block's features to 10 channels, a sigmoid and a ``Rescaling`` onto
``LOG_SCALE_RANGE``; the output is then the dict ``{"prediction", "log_scale"}`` of
:mod:`tml_cloudremoval.models.uncertainty` (both float32), at a cost of ``9 F O + O``
parameters (5,770 for F = 64). ``"none"`` builds the plain model, layer for layer.
"""

from __future__ import annotations

import keras
from keras import layers

from tml_cloudremoval.bands import S1_BAND_NAMES, SAR_FACTOR, TML_BAND_NAMES
from tml_cloudremoval.models.uncertainty import (
    LOG_SCALE_OUTPUT,
    LOG_SCALE_RANGE,
    PREDICTION_OUTPUT,
    UNCERTAINTY_KINDS,
)

SAR_UPSAMPLING = ("nearest", "bilinear")
"""Interpolations of the SAR from 40 m onto the 10 m grid (``UpSampling2D``'s names)."""
TAIL_INITIALISERS = ("zeros", "he_uniform")
"""Initial kernel of the last convolution (``model.tail_init``)."""


def _conv3x3(
    filters: int,
    name: str,
    dtype: str | None,
    activation: str | None = None,
    initializer: str = "he_uniform",
) -> layers.Conv2D:
    """A 3x3, stride-1, "same"-padded convolution (He-uniform initialisation by default)."""
    return layers.Conv2D(
        filters,
        3,
        padding="same",
        activation=activation,
        kernel_initializer=initializer,
        name=name,
        dtype=dtype,
    )


def _inputs(
    optical_bands: int, sar_bands: int, sar_factor: int, sar_upsampling: str, dtype: str | None
) -> tuple[dict[str, keras.KerasTensor], keras.KerasTensor]:
    """The model inputs and their stack on the 10 m grid (optical only when ``sar_bands`` 0)."""
    optical = keras.Input(shape=(None, None, optical_bands), name="optical")
    if not sar_bands:
        return {"optical": optical}, optical
    sar = keras.Input(shape=(None, None, sar_bands), name="sar")
    # 40 m -> 10 m: repeat onto the sar_factor x sar_factor block, or interpolate bilinearly.
    sar_10m = layers.UpSampling2D(sar_factor, interpolation=sar_upsampling, name="sar_to_10m")(sar)
    stack = layers.Concatenate(axis=-1, name="stack", dtype=dtype)([optical, sar_10m])
    return {"optical": optical, "sar": sar}, stack


def _log_scale_head(trunk: keras.KerasTensor, bands: int) -> keras.KerasTensor:
    """The aleatoric head on the trunk's features: a 3x3 conv to ``bands`` channels, sigmoid,
    rescaled onto ``LOG_SCALE_RANGE`` (float32, also under mixed precision)."""
    low, high = LOG_SCALE_RANGE
    unit = _conv3x3(bands, "log_scale_conv", "float32", activation="sigmoid")(trunk)
    rescale = layers.Rescaling(high - low, offset=low, name=LOG_SCALE_OUTPUT, dtype="float32")
    return rescale(unit)


def _check_arguments(
    features: int, blocks: int, sar_upsampling: str, tail_init: str, uncertainty: str
) -> None:
    """``ValueError`` naming the first argument of :func:`build_dsen2cr` that is out of range."""
    if features < 1 or blocks < 0:
        raise ValueError(f"features must be >= 1 and blocks >= 0, got {features}, {blocks}")
    for key, value, allowed in (
        ("sar_upsampling", sar_upsampling, SAR_UPSAMPLING),
        ("tail_init", tail_init, TAIL_INITIALISERS),
        ("uncertainty", uncertainty, UNCERTAINTY_KINDS),
    ):
        if value not in allowed:
            raise ValueError(f"{key} must be one of {allowed}, got {value!r}")


def build_dsen2cr(
    features: int = 64,
    blocks: int = 16,
    residual_scale: float = 0.1,
    include_sar: bool = True,
    sar_upsampling: str = "nearest",
    tail_init: str = "zeros",
    optical_bands: int = len(TML_BAND_NAMES),
    sar_bands: int = len(S1_BAND_NAMES),
    sar_factor: int = SAR_FACTOR,
    dtype: str | None = None,
    name: str = "dsen2cr",
    uncertainty: str = "none",
) -> keras.Model:
    """Build the DSen2-CR network (see the module docstring for inputs and output).

    Args:
        features: channels F of every hidden convolution (64 here, 256 in the original paper).
        blocks: number B of residual blocks (16).
        residual_scale: factor applied to each block's branch before the add (0.1).
        include_sar: feed SAR; False builds the optical-only ablation (input "optical" only).
        sar_upsampling: SAR_UPSAMPLING: "nearest" (each 40 m pixel repeated over its 4 x 4
            block) or "bilinear" (interpolated between 40 m pixel centres); no parameters.
        tail_init: TAIL_INITIALISERS: initial kernel of the last convolution. "zeros": the
            untrained network is the identity (output = cloudy input), so training starts from
            no correction instead of a random one (a random one is high-frequency colour noise
            the few demo steps never remove: see README, Evaluation). "he_uniform": the
            seed's initialisation.
        optical_bands: bands of the optical input and of the output (10 TML bands).
        sar_bands: SAR channels (VV, VH).
        sar_factor: 10 m pixels per SAR pixel along each axis (4: SAR at 40 m).
        dtype: Keras dtype policy of the hidden layers (None: the global policy, e.g.
            "mixed_float16" while training on a GPU). The last convolution and the long skip
            always compute in float32.
        name: model name.
        uncertainty: ``"none"`` (one output) or ``"aleatoric"`` (dict outputs, module docstring).

    Returns:
        An unbuilt-shape (None, None) functional ``keras.Model``; parameter count
        ``9 (O + S) F + F + B (18 F^2 + 2 F) + 9 F O + O`` with O optical and S SAR bands
        (1,194,442 for the defaults), plus ``9 F O + O`` for the aleatoric head.
    """
    _check_arguments(features, blocks, sar_upsampling, tail_init, uncertainty)

    inputs, x = _inputs(optical_bands, include_sar and sar_bands, sar_factor, sar_upsampling, dtype)
    optical = inputs["optical"]

    x = _conv3x3(features, "head", dtype, activation="relu")(x)
    for i in range(blocks):
        r = _conv3x3(features, f"block{i}_conv1", dtype, activation="relu")(x)
        r = _conv3x3(features, f"block{i}_conv2", dtype)(r)
        r = layers.Rescaling(residual_scale, name=f"block{i}_scale", dtype=dtype)(r)
        x = layers.Add(name=f"block{i}_add", dtype=dtype)([x, r])
    correction = _conv3x3(optical_bands, "tail", "float32", initializer=tail_init)(x)
    output = layers.Add(name="long_skip", dtype="float32")([optical, correction])
    if uncertainty == "none":
        return keras.Model(inputs=inputs, outputs=output, name=name)
    outputs = {PREDICTION_OUTPUT: output, LOG_SCALE_OUTPUT: _log_scale_head(x, optical_bands)}
    return keras.Model(inputs=inputs, outputs=outputs, name=name)


def count_parameters(
    features: int = 64,
    blocks: int = 16,
    include_sar: bool = True,
    optical_bands: int = len(TML_BAND_NAMES),
    sar_bands: int = len(S1_BAND_NAMES),
    uncertainty: str = "none",
) -> int:
    """Parameter count of ``build_dsen2cr`` from the layer shapes (3x3 kernels plus biases);
    the aleatoric log-scale head adds one more convolution of the tail's shape."""
    c_in = optical_bands + (sar_bands if include_sar else 0)
    head = 9 * c_in * features + features
    block = 2 * (9 * features * features + features)
    tail = 9 * features * optical_bands + optical_bands
    heads = 2 if uncertainty == "aleatoric" else 1
    return head + blocks * block + heads * tail
