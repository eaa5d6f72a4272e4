"""The smallest input a network accepts, from its layers' geometry, not from TensorFlow's kernels.

Why arithmetic: the export used to bisect on whether TensorFlow *raised* for a too small input.
With oneDNN (which TensorFlow turns on by itself on CPUs with AVX-512 VNNI/BF16) a convolution
whose output size is negative returns an empty tensor instead, and the manifest then said 1 px
(issue 17). Each layer's output side follows from its padding, kernel, stride and dilation, the
same on every machine, so the side the page may dream at is computed, then checked against the
network itself in the tests.
"""

from typing import TYPE_CHECKING

from converter.errors import ExportError

if TYPE_CHECKING:
    import keras

# Layers that keep the spatial size of their (single) input.
ELEMENTWISE = {"InputLayer", "ReLU", "Activation", "BatchNormalization", "Rescaling"}
# Layers that combine inputs of one size.
MERGING = {"Add", "Concatenate", "Multiply", "Average", "Maximum"}
WINDOWED = {"Conv2D", "DepthwiseConv2D", "MaxPooling2D", "AveragePooling2D"}


def windowed_side(n: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    """Output side of a convolution or pooling over a side of `n` px (0: no output).

    TensorFlow's rule: 'same' gives ceil(n / stride); 'valid' gives
    floor((n - effective_kernel) / stride) + 1 where the dilated kernel fits, else nothing.
    """
    if n <= 0:
        return 0
    if padding == "same":
        return -(-n // stride)
    if padding != "valid":
        raise ExportError(f"geometry: unknown padding {padding!r}")
    span = dilation * (kernel - 1) + 1
    return (n - span) // stride + 1 if n >= span else 0


def _pair(value: "int | tuple | list") -> tuple[int, int]:
    """(height, width) from Keras's int-or-pair arguments."""
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _layer_sides(layer: "keras.layers.Layer", inputs: list[tuple[int, int]]) -> tuple[int, int]:
    """(height, width) that `layer` gives for inputs of the sides in `inputs`."""
    kind = type(layer).__name__
    config = layer.get_config()
    if kind in ELEMENTWISE:
        return inputs[0]
    if kind in MERGING:
        return min(h for h, _ in inputs), min(w for _, w in inputs)
    if kind == "ZeroPadding2D":
        (top, bottom), (left, right) = (_pair(p) for p in config["padding"])
        h, w = inputs[0]
        return (h + top + bottom if h > 0 else 0, w + left + right if w > 0 else 0)
    if kind in WINDOWED:
        size = config.get("kernel_size") or config["pool_size"]
        strides = config["strides"] or size  # pooling: strides None means the window
        dilation = config.get("dilation_rate", 1)
        (kh, kw), (sh, sw), (dh, dw) = _pair(size), _pair(strides), _pair(dilation)
        h, w = inputs[0]
        return (windowed_side(h, kh, sh, dh, config["padding"]),
                windowed_side(w, kw, sw, dw, config["padding"]))
    raise ExportError(f"geometry: layer {layer.name} of kind {kind} has no known size rule")


def output_sides(model: "keras.Model", height: int, width: int) -> dict[str, tuple[int, int]]:
    """(height, width) of every layer of `model` for an input of `height` x `width` px."""
    sides: dict[str, tuple[int, int]] = {}
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            sides[layer.name] = (height, width)
            continue
        node = layer._inbound_nodes[0]  # Keras keeps the graph's edges here
        producers = [t._keras_history.operation.name for t in node.input_tensors]
        sides[layer.name] = _layer_sides(layer, [sides[p] for p in producers])
    return sides


def smallest_side(model: "keras.Model", limit: int = 1024) -> int:
    """The smallest square input (px) for which every layer of `model` has a pixel.

    Every layer counts, not only the outputs: an intermediate with no pixel fails the network
    (or, with oneDNN, silently empties what follows). Sides grow with their input, so the
    first side that works is the answer.
    """
    for side in range(1, limit + 1):
        if all(h > 0 and w > 0 for h, w in output_sides(model, side, side).values()):
            return side
    raise ExportError(f"the model gives no output even for a {limit} px input")
