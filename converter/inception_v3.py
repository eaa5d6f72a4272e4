"""InceptionV3 rebuilt for dreaming, up to `mixed5`: any input size, batch norm folded.

The classic DeepDream look (the TensorFlow tutorial's `mixed3` and `mixed5`) comes from
InceptionV3. Its ImageNet weights come from `converter.nsfwjs_source` (layers past `mixed5`
there are NSFW-tuned and never used). The network is the Keras Applications InceptionV3
(Keras 2 layer names: `conv2d_N`, `activation_N`, `max_pooling2d_N`, `average_pooling2d_N`,
`mixed0`..`mixed5`), with each `conv2d_N` + `batch_normalization_N` pair folded into one
convolution with a bias (computed in float64, stored in float32), so no batch-norm layer exists.

Geometry with an `(None, None, 3)` input: the stem and `mixed3` use 'valid' 3x3 convolutions
and poolings, so an n px side gives
    stem:    s1 = (n - 3) // 2 + 1, s2 = s1 - 2 (conv2d_2), s4 = (s2 - 3) // 2 + 1 (pool 1),
             s6 = s4 - 2 (conv2d_5), s7 = (s6 - 3) // 2 + 1 (pool 2: mixed0..mixed2)
    mixed3:  s8 = (s7 - 3) // 2 + 1 (mixed3..mixed5)
i.e. 299 -> 149 -> 147 -> 73 -> 71 -> 35 -> 17 (256 -> 29 -> 14, 512 -> 61 -> 30). When a
stride-2 window does not fit the side evenly the last rows/columns are dropped: measured at
`mixed5`, sides n = 3 or 5 (mod 8) (299, 301, 395, 397, 507, 509, ...) send gradient to every
pixel; other sides leave the last 1-5 rows/columns with none (jitter hides that). The smallest
input with a `mixed3`..`mixed5` output is 43 px (1x1); 27 px for `mixed0`..`mixed2`.
"""

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

# The TensorFlow DeepDream tutorial's layers; see docs/inception_v3_notes.md for the dreams.
DEFAULT_LAYERS = ("mixed3", "mixed5")
DEEPEST = "mixed5"
# The range the nsfwjs network's batch-norm statistics were estimated for: nsfwjs feeds
# pixel / 255 (its core.js), and the moving means/variances match that, not Keras's
# pixel / 127.5 - 1 (docs/inception_v3_notes.md). `build(input_range=...)` folds any other
# range into conv2d_1 exactly (it is a 'valid' convolution: no zero padding to break it).
NATIVE_RANGE = (0.0, 1.0)
INPUT_RANGE = (-1.0, 1.0)  # what `build` takes by default: the same range as MobileNetV2
BN_EPSILON = 1e-3  # Keras InceptionV3's BatchNormalization(epsilon=0.001, scale=False)
MIN_INPUT = {"mixed0": 27, "mixed1": 27, "mixed2": 27, "mixed3": 43, "mixed4": 43, "mixed5": 43}
FULL_COVERAGE = (8, (3, 5))  # n % 8 in (3, 5): every pixel reaches mixed5 (measured)

Weights = dict[str, list[np.ndarray]]


class LayerInfo:
    """A layer a dream can target: its name, nominal stride in input pixels, channel count."""

    def __init__(self, name: str, stride: int, channels: int) -> None:
        self.name = name
        self.stride = stride
        self.channels = channels

    def __repr__(self) -> str:
        """`LayerInfo(name, stride, channels)`."""
        return f"LayerInfo({self.name!r}, {self.stride}, {self.channels})"


def fold(
    kernel: np.ndarray,
    gamma: np.ndarray | None,
    beta: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    eps: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Fold inference batch norm into the preceding bias-free convolution, in float64.

    BN(conv(x)) = gamma * (conv(x) - mean) / sqrt(var + eps) + beta = conv'(x) + bias with
    conv' = kernel * s (per output channel, the last axis) and bias = beta - mean * s,
    s = gamma / sqrt(var + eps) (gamma = 1 when the layer has no scale). Returns float32.
    """
    scale = 1.0 / np.sqrt(np.asarray(var, np.float64) + eps)
    if gamma is not None:
        scale = scale * np.asarray(gamma, np.float64)
    folded = np.asarray(kernel, np.float64) * scale
    bias = np.asarray(beta, np.float64) - np.asarray(mean, np.float64) * scale
    return folded.astype(np.float32), bias.astype(np.float32)


def fold_input_range(
    kernel: np.ndarray, bias: np.ndarray, given: tuple[float, float], native: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Make a first 'valid' convolution take inputs in `given` instead of `native`, in float64.

    native = a * given + b per pixel, a = (nh - nl) / (gh - gl), b = nl - a * gl, so
    conv(native) = conv'(given) with kernel' = a * kernel and bias' = bias + b * sum(kernel)
    over its window and input channels. Exact only without zero padding ('valid').
    """
    (gl, gh), (nl, nh) = given, native
    a = (nh - nl) / (gh - gl)
    b = nl - a * gl
    k = np.asarray(kernel, np.float64)
    new_bias = np.asarray(bias, np.float64) + b * k.sum(axis=(0, 1, 2))
    return (a * k).astype(np.float32), new_bias.astype(np.float32)


def folded_weights(
    weights: Weights, eps: float = BN_EPSILON, input_range: tuple[float, float] = INPUT_RANGE
) -> Weights:
    """{conv2d_N: [kernel, bias]} from a source's conv2d_N / batch_normalization_N arrays.

    Batch norm and the input range (`input_range` -> `NATIVE_RANGE`) go into the kernels.
    """
    out: Weights = {}
    for name, arrays in weights.items():
        if not name.startswith("conv2d_"):
            continue
        bn = weights["batch_normalization_" + name.removeprefix("conv2d_")]
        beta, mean, var = bn  # scale=False: no gamma in InceptionV3's batch norms
        if np.any(~np.isfinite(var)) or np.any(var <= 0):
            raise ValueError(f"{name}: batch-norm variance not positive and finite")
        kernel, bias = fold(arrays[0], None, beta, mean, var, eps)
        if name == "conv2d_1" and tuple(input_range) != NATIVE_RANGE:
            scale = 1.0 / np.sqrt(np.asarray(var, np.float64) + eps)  # kept in float64
            kernel64 = np.asarray(arrays[0], np.float64) * scale
            bias64 = np.asarray(beta, np.float64) - np.asarray(mean, np.float64) * scale
            kernel, bias = fold_input_range(kernel64, bias64, input_range, NATIVE_RANGE)
        out[name] = [kernel, bias]
    return out


class _Builder:
    """Keras Applications' `conv2d_bn`, numbered as Keras 2 numbered it, with BN folded."""

    def __init__(self, keras: object) -> None:
        self.keras = keras
        self.convs = 0
        self.pools = {"max": 0, "avg": 0}

    def conv(self, x: object, filters: int, kh: int, kw: int, strides: int = 1,
             padding: str = "same") -> object:
        """conv2d_N (with the folded bias) then activation_N (ReLU)."""
        self.convs += 1
        n = self.convs
        x = self.keras.layers.Conv2D(filters, (kh, kw), strides=strides, padding=padding,
                                     use_bias=True, name=f"conv2d_{n}")(x)
        return self.keras.layers.Activation("relu", name=f"activation_{n}")(x)

    def max_pool(self, x: object) -> object:
        """3x3 stride-2 'valid' max pooling, max_pooling2d_N."""
        self.pools["max"] += 1
        name = f"max_pooling2d_{self.pools['max']}"
        return self.keras.layers.MaxPooling2D(3, strides=2, name=name)(x)

    def avg_pool(self, x: object) -> object:
        """3x3 stride-1 'same' average pooling (padding not counted), average_pooling2d_N."""
        self.pools["avg"] += 1
        name = f"average_pooling2d_{self.pools['avg']}"
        return self.keras.layers.AveragePooling2D(3, strides=1, padding="same", name=name)(x)

    def concat(self, parts: list, name: str) -> object:
        """Channel concatenation: the block's output, mixedN."""
        return self.keras.layers.Concatenate(axis=-1, name=name)(parts)


def architecture(until: str = DEEPEST) -> "keras.Model":
    """Untrained InceptionV3 up to `until` (mixed0..mixed5), input (None, None, 3)."""
    import keras

    if until not in MIN_INPUT:
        raise ValueError(f"{until!r}: only mixed0..{DEEPEST} can be built")
    b = _Builder(keras)
    inputs = keras.Input((None, None, 3), name="input_1")
    x = b.conv(inputs, 32, 3, 3, strides=2, padding="valid")
    x = b.conv(x, 32, 3, 3, padding="valid")
    x = b.conv(x, 64, 3, 3)
    x = b.max_pool(x)
    x = b.conv(x, 80, 1, 1, padding="valid")
    x = b.conv(x, 192, 3, 3, padding="valid")
    x = b.max_pool(x)
    outputs = {}
    for i, pool_filters in enumerate((32, 64, 64)):  # mixed0..mixed2: 35x35 at 299 px
        b1 = b.conv(x, 64, 1, 1)
        b5 = b.conv(b.conv(x, 48, 1, 1), 64, 5, 5)
        b3 = b.conv(b.conv(b.conv(x, 64, 1, 1), 96, 3, 3), 96, 3, 3)
        bp = b.conv(b.avg_pool(x), pool_filters, 1, 1)
        x = outputs[f"mixed{i}"] = b.concat([b1, b5, b3, bp], f"mixed{i}")
        if until == f"mixed{i}":
            return keras.Model(inputs, x, name="inception_v3")
    b3 = b.conv(x, 384, 3, 3, strides=2, padding="valid")  # mixed3: 17x17 at 299 px
    bd = b.conv(b.conv(b.conv(x, 64, 1, 1), 96, 3, 3), 96, 3, 3, strides=2, padding="valid")
    x = b.concat([b3, bd, b.max_pool(x)], "mixed3")
    if until == "mixed3":
        return keras.Model(inputs, x, name="inception_v3")
    for i, width in ((4, 128), (5, 160)):
        b1 = b.conv(x, 192, 1, 1)
        b7 = b.conv(b.conv(b.conv(x, width, 1, 1), width, 1, 7), 192, 7, 1)
        bd = b.conv(x, width, 1, 1)
        bd = b.conv(b.conv(b.conv(bd, width, 7, 1), width, 1, 7), width, 7, 1)
        bd = b.conv(bd, 192, 1, 7)
        bp = b.conv(b.avg_pool(x), 192, 1, 1)
        x = b.concat([b1, b7, bd, bp], f"mixed{i}")
        if until == f"mixed{i}":
            break
    return keras.Model(inputs, x, name="inception_v3")


def build(
    weights: Weights,
    outputs: tuple[str, ...] = DEFAULT_LAYERS,
    input_range: tuple[float, float] = INPUT_RANGE,
) -> "keras.Model":
    """InceptionV3 with the given source weights (BN folded), one output per layer named.

    The model takes pixels in `input_range` (default [-1, 1]), mapped exactly onto the
    network's native [0, 1] inside conv2d_1.
    """
    import keras

    full = architecture(DEEPEST)  # the sub-model below keeps only what `outputs` need
    folded = folded_weights(weights, input_range=input_range)
    for layer in full.layers:
        if isinstance(layer, keras.layers.Conv2D):
            layer.set_weights(folded[layer.name])
    return keras.Model(full.input, [full.get_layer(n).output for n in outputs],
                       name="inception_v3_dream")


def side_after(n: int, layer: str) -> int:
    """Output side length at `layer` (mixed0..mixed5) for an input side of n px (0: none)."""
    s = (n - 3) // 2 + 1 - 2  # conv2d_1 (3x3/2 valid), conv2d_2 (3x3 valid)
    s = (s - 3) // 2 + 1 - 2  # max_pooling2d_1 (3x3/2 valid), conv2d_5 (3x3 valid)
    s = (s - 3) // 2 + 1  # max_pooling2d_2: mixed0..mixed2
    if layer in ("mixed3", "mixed4", "mixed5"):
        s = (s - 3) // 2 + 1
    return max(s, 0)


def usable_layers() -> list[LayerInfo]:
    """Every dreamable layer (activation_N and mixedN), shallow to deep, stride and channels."""
    model = architecture(DEEPEST)
    n = 11 + 32 * 16  # 523 px: every stride divides evenly
    probe = {layer.name: layer for layer in model.layers}
    sizes = _trace_sides(model, n)
    infos = []
    for layer in model.layers:
        if layer.name.startswith(("activation_", "mixed")):
            stride = int(2 ** round(np.log2(n / sizes[layer.name])))
            infos.append(LayerInfo(layer.name, stride, int(probe[layer.name].output.shape[-1])))
    return infos


def _trace_sides(model: "keras.Model", n: int) -> dict[str, int]:
    """Spatial side of every layer's output for an n x n input (shape inference only)."""
    import keras

    traced = keras.Model(model.input, [layer.output for layer in model.layers[1:]])
    shapes = traced.compute_output_spec(keras.KerasTensor((1, n, n, 3)))
    return {layer.name: int(s.shape[1]) for layer, s in zip(model.layers[1:], shapes,
                                                           strict=True)}
