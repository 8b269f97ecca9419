"""The receptive field of a model: the one function the project uses for it.

The width in 10 m pixels of the input window that can influence one output pixel, read off the
layer graph of a functional Keras model (built or loaded; no weights are needed). Tiled inference
(``tml_cloudremoval.inference.planner``) needs it: neighbouring tiles overlap by at least this
many pixels, so every kept pixel sees the context of an untiled run. For
:func:`tml_cloudremoval.models.dsen2cr.build_dsen2cr` with B blocks it is ``4 B + 5`` px without
SAR and ``4 B + 11`` px with SAR at 40 m repeated (``sar_upsampling: nearest``): 75 px for the
default 16 blocks; ``4 B + 15`` px with bilinear SAR upsampling (79 px).
"""

from __future__ import annotations

import math
from typing import Any

from tml_cloudremoval.bands import SAR_FACTOR


def _layer_reach(op: Any, radius: float, scale: float) -> tuple[float, float]:
    """(radius, pixel size) after one layer, both in 10 m pixels of the model input."""
    kernel = getattr(op, "kernel_size", None) or getattr(op, "pool_size", None)
    if kernel is not None:
        dilation = getattr(op, "dilation_rate", (1, 1))
        strides = getattr(op, "strides", (1, 1)) or (1, 1)
        reach = max((k - 1) * d - (k - 1) * d // 2 for k, d in zip(kernel, dilation, strict=True))
        return radius + reach * scale, scale * max(strides)
    if type(op).__name__ == "UpSampling2D":
        interpolation = getattr(op, "interpolation", "nearest")
        reach = max(upsampling_reach(s, interpolation) for s in op.size)
        scale /= max(op.size)
        radius += reach * scale
    return radius, scale


KERNEL_HALF_WIDTH = {"bilinear": 1, "bicubic": 2, "lanczos3": 3, "lanczos5": 5}
"""Support half-width, in input pixels, of the interpolation kernels ``UpSampling2D`` offers
besides nearest (``tf.image.resize``; a tap at exactly this distance has weight 0)."""


def upsampling_reach(size: int, interpolation: str = "nearest") -> int:
    """Farthest output pixel (in output pixels) whose input pixel can reach an output pixel,
    for upsampling by ``size`` along one axis.

    Nearest: output j reads input j // size, whose ``size`` outputs lie within ``size - 1`` of
    j. Kernels (half-pixel centres, as ``tf.image.resize``): output j sits at input coordinate
    u = (j + 0.5) / size - 0.5 and reads every input i with |u - i| < half-width; input i
    covers outputs size i .. size i + size - 1. Exact for nearest and bilinear (``size - 1 +
    size // 2``: 5 px for 40 m -> 10 m), an upper bound for the others (their kernels are 0 at
    whole-pixel distances, which this counts).
    """
    if interpolation == "nearest":
        return size - 1
    if interpolation not in KERNEL_HALF_WIDTH:
        raise ValueError(f"receptive field of UpSampling2D {interpolation!r} is not known")
    a = KERNEL_HALF_WIDTH[interpolation]
    reach = 0
    for m in range(size):  # output m of input pixel 0; every other one is a shift of these
        for i in range(-a - 1, a + 2):
            # |u - i| < a  <=>  |(2 m + 1) - size (2 i + 1)| < 2 a size, in integers
            if abs((2 * m + 1) - size * (2 * i + 1)) < 2 * a * size:
                reach = max(reach, abs(size * i - m), abs(size * i + size - 1 - m))
    return reach


def receptive_field(model: Any, sar_input: str = "sar", sar_factor: int = SAR_FACTOR) -> int:
    """Receptive field in 10 m pixels (odd) of a functional Keras model, from its layer graph.

    Walks from the outputs back to the inputs, adding ``(kernel - 1) // 2 * dilation`` pixels of
    the layer's own grid per side for each convolution or pooling, :func:`upsampling_reach`
    pixels of the output grid per side for each ``UpSampling2D`` (worst case over the alignment
    of a pixel within its block: ``size - 1`` for nearest, where a 40 m pixel feeds
    ``sar_factor`` x ``sar_factor`` outputs; ``size - 1 + size // 2`` for bilinear) and taking
    the widest branch at merges. The input named ``sar_input`` is on a grid ``sar_factor`` times
    coarser. Element-wise layers (ReLU, add, rescaling, concatenation) add nothing.
    """
    memo: dict[int, tuple[float, float]] = {}

    def walk(tensor: Any) -> tuple[float, float]:
        """(radius in 10 m pixels, pixel size of this tensor in 10 m pixels)."""
        key = id(tensor)
        if key not in memo:
            op, node_index, _ = tensor._keras_history
            parents = list(op._inbound_nodes[node_index].input_tensors)
            if not parents:  # an input layer
                memo[key] = (0.0, float(sar_factor) if op.name == sar_input else 1.0)
            else:
                walked = [walk(t) for t in parents]
                radius = max(r for r, _ in walked)
                scale = min(s for _, s in walked)
                memo[key] = _layer_reach(op, radius, scale)
        return memo[key]

    outputs = model.outputs if isinstance(model.outputs, list | tuple) else [model.outputs]
    radius = max(walk(t)[0] for t in outputs)
    return 2 * math.ceil(radius) + 1
