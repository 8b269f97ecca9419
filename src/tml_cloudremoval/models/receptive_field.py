"""The receptive field of a model: the one function the project uses for it.

The width in 10 m pixels of the input window that can influence one output pixel, read off the
layer graph of a functional Keras model (built or loaded; no weights are needed). Tiled inference
(``tml_cloudremoval.inference.planner``) needs it: neighbouring tiles overlap by at least this
many pixels, so every kept pixel sees the context of an untiled run. For
:func:`tml_cloudremoval.models.dsen2cr.build_dsen2cr` with B blocks it is ``4 B + 5`` px without
SAR and ``4 B + 11`` px with SAR at 40 m: 75 px for the default 16 blocks.
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
        size = max(op.size)
        scale /= size
        radius += (size - 1) * scale
        if getattr(op, "interpolation", "nearest") != "nearest":
            radius += size * scale
    return radius, scale


def receptive_field(model: Any, sar_input: str = "sar", sar_factor: int = SAR_FACTOR) -> int:
    """Receptive field in 10 m pixels (odd) of a functional Keras model, from its layer graph.

    Walks from the outputs back to the inputs, adding ``(kernel - 1) // 2 * dilation`` pixels of
    the layer's own grid per side for each convolution or pooling, ``size - 1`` pixels of the
    output grid per side for each ``UpSampling2D`` (worst case over the alignment of a pixel
    within its block: a 40 m pixel feeds ``sar_factor`` x ``sar_factor`` outputs) and taking the
    widest branch at merges. The input named ``sar_input`` is on a grid ``sar_factor`` times
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
