"""MobileNetV2 rebuilt for dreaming: batch norm folded, any input size, one output per layer.

DeepDream needs intermediate activations, not class scores, for photos of any size, so the
ImageNet network is rebuilt headless with an `(None, None, 3)` input and cut after the deepest
chosen layer (layers past it would only cost time and bytes).

The network is built here, not taken from `keras.applications`: every batch norm is folded
into the convolution before it, in numpy (`converter/folding.py`), so that TensorFlow never
computes a weight and the export is the same on every CPU (issue 11). The layers keep the
Keras Applications names a user targets: each ReLU (`Conv1_relu`, `block_N_expand_relu`,
`block_N_depthwise_relu`, `expanded_conv_*`, `out_relu`), each residual `block_N_add`, and
`block_N_project_BN`, which is now the biased projection convolution (the output of the
convolution followed by its batch norm, as before). `keras.applications.MobileNetV2` stays
the reference: it holds the source weights, classifies the photos that prove them, and a test
checks that this network computes what it computes.

The registry (`converter/registry.py`) reads this module through: NAME, DEFAULT_LAYERS,
INPUT_RANGE, PREPROCESSING, CLASSIFIER_SIZE, usable_layers(), check_source(args),
load_source(args), fold(), classifier(), build().
"""

import argparse
from typing import TYPE_CHECKING

import numpy as np

from converter import folding
from converter.layers import LayerInfo

if TYPE_CHECKING:
    import keras

NAME = "mobilenet_v2"

# Shallow to deep; chosen by looking at dreams of real photos (docs/models.md, "Default layers"):
# the expanded ReLU outputs of a block dream crisper than its linear bottleneck, and these
# five give one layer per stride from 4 (brush strokes) to 32 (eyes, fur, whole animals).
DEFAULT_LAYERS = (
    "block_2_expand_relu",
    "block_5_expand_relu",
    "block_8_expand_relu",
    "block_12_expand_relu",
    "block_15_expand_relu",
)

# Words for a visitor: the default layers by what they dream, any other by its stride.
LAYER_LABELS = {
    "block_2_expand_relu": "brush strokes",
    "block_5_expand_relu": "textures",
    "block_8_expand_relu": "patterns",
    "block_12_expand_relu": "eyes and fur",
    "block_15_expand_relu": "creatures",
}
STRIDE_LABELS = {2: "edges", 4: "textures", 8: "patterns", 16: "parts", 32: "objects"}

INPUT_RANGE = (-1.0, 1.0)  # TF-Slim / Keras "tf" preprocessing: pixel / 127.5 - 1
PREPROCESSING = "pixel / 127.5 - 1 (uint8 RGB to [-1, 1])"
CLASSIFIER_SIZE = 224

# Keras Applications MobileNetV2, alpha 1.0: (expansion, output channels, stride) per
# inverted-residual block 0..16; stem of 32 channels, head of 1280; batch norm epsilon 1e-3.
BLOCKS = (
    (1, 16, 1),
    (6, 24, 2), (6, 24, 1),
    (6, 32, 2), (6, 32, 1), (6, 32, 1),
    (6, 64, 2), (6, 64, 1), (6, 64, 1), (6, 64, 1),
    (6, 96, 1), (6, 96, 1), (6, 96, 1),
    (6, 160, 2), (6, 160, 1), (6, 160, 1),
    (6, 320, 1),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPSILON = 1e-3


def _prefix(block: int) -> str:
    return "expanded_conv_" if block == 0 else f"block_{block}_"


def _folds() -> list[tuple[str, str, str, bool]]:
    """(source conv, source batch norm, folded layer, depthwise?) for every conv + BN pair."""
    folds = [("Conv1", "bn_Conv1", "Conv1", False)]
    for block in range(len(BLOCKS)):
        p = _prefix(block)
        if block:
            folds.append((f"{p}expand", f"{p}expand_BN", f"{p}expand", False))
        folds.append((f"{p}depthwise", f"{p}depthwise_BN", f"{p}depthwise", True))
        # Named after the batch norm: its output is the block's linear bottleneck, which
        # users target as `block_N_project_BN`.
        folds.append((f"{p}project", f"{p}project_BN", f"{p}project_BN", False))
    folds.append(("Conv_1", "Conv_1_bn", "Conv_1", False))
    return folds


def _keras():  # imported late: `--help` and argument errors should not wait for TensorFlow
    import keras

    return keras


def is_usable(name: str) -> bool:
    """Layers worth dreaming on: nonlinear activations and the outputs of blocks.

    Raw convolutions are left out: the TF.js graph fuses a convolution with the ReLU after
    it, so only what follows exists as a tensor in the exported model.
    """
    return name.endswith(("_relu", "_add", "_project_BN"))


def reference(input_shape: tuple, include_top: bool = False) -> "keras.Model":
    """Keras Applications' MobileNetV2 (alpha 1.0, batch norm unfolded), untrained.

    The layout the sources fill and the network the folded one is checked against.
    """
    keras = _keras()
    return keras.applications.MobileNetV2(
        input_shape=input_shape, include_top=include_top, weights=None
    )


def architecture(input_shape: tuple = (None, None, 3), dtype: str = "float32") -> "keras.Model":
    """The headless MobileNetV2 with batch norm folded away, untrained.

    Padding as in Keras Applications: the stem is a 'same' stride-2 convolution; a stride-2
    depthwise convolution is preceded by ZeroPadding2D ((0, 1), (0, 1)), which is what
    `imagenet_utils.correct_pad` gives for an unknown size, then 'valid'. So a layer of stride
    `s` returns floor(h / s) x floor(w / s) (docs/facts.md).
    """
    layers = _keras().layers
    image = layers.Input(shape=input_shape, dtype=dtype, name="image")
    x = layers.Conv2D(STEM_CHANNELS, 3, strides=2, padding="same", name="Conv1",
                      dtype=dtype)(image)
    x = layers.ReLU(6.0, name="Conv1_relu", dtype=dtype)(x)
    for block, (expansion, channels, stride) in enumerate(BLOCKS):
        p = _prefix(block)
        inputs = x
        if block:
            x = layers.Conv2D(expansion * x.shape[-1], 1, name=f"{p}expand", dtype=dtype)(x)
            x = layers.ReLU(6.0, name=f"{p}expand_relu", dtype=dtype)(x)
        if stride == 2:
            x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"{p}pad", dtype=dtype)(x)
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same" if stride == 1 else "valid",
                                   name=f"{p}depthwise", dtype=dtype)(x)
        x = layers.ReLU(6.0, name=f"{p}depthwise_relu", dtype=dtype)(x)
        x = layers.Conv2D(channels, 1, name=f"{p}project_BN", dtype=dtype)(x)
        if stride == 1 and inputs.shape[-1] == channels:
            x = layers.Add(name=f"{p}add", dtype=dtype)([inputs, x])
    x = layers.Conv2D(HEAD_CHANNELS, 1, name="Conv_1", dtype=dtype)(x)
    x = layers.ReLU(6.0, name="out_relu", dtype=dtype)(x)
    return _keras().Model(image, x, name="mobilenet_v2_folded")


def usable_layers() -> list[LayerInfo]:
    """Every dreamable layer, shallow to deep, with stride and channels (from a 224 px trace)."""
    model = architecture((224, 224, 3))
    infos = []
    for layer in model.layers:
        if is_usable(layer.name):
            _, height, _, channels = layer.output.shape
            stride = 224 // height
            label = LAYER_LABELS.get(layer.name) or STRIDE_LABELS.get(stride, f"stride {stride}")
            infos.append(LayerInfo(layer.name, stride, int(channels), label))
    return infos


def check_source(args: argparse.Namespace) -> None:
    """Refuse, without TensorFlow, a Keras weights file that cannot be the source (missing,
    another sha256, unreadable); a TF Hub source can only be checked by loading it."""
    from converter import sources

    if args.source in (None, "keras"):
        sources.check_keras_file(args.weights or sources.default_weights_path(), args.sha256)


def load_source(args: argparse.Namespace) -> tuple[dict, dict]:
    """Source weights (Keras Applications layer name -> arrays) and their description."""
    from converter import sources

    if args.source in (None, "keras"):  # None: the default source
        path = args.weights or sources.default_weights_path()
        return sources.keras_file_weights(path, args.sha256)
    return sources.hub_weights(args.handle)


def fold(weights: dict[str, list[np.ndarray]]) -> folding.Arrays:
    """Source weights -> the folded network's weights (layer name -> [kernel, bias]), float32."""
    folded: folding.Arrays = {}
    for conv, bn, name, depthwise in _folds():
        (kernel,) = weights[conv]
        gamma, beta, mean, variance = weights[bn]
        folded[name] = list(folding.fold_batch_norm(kernel, gamma, beta, mean, variance,
                                                    BN_EPSILON, depthwise))
    return folded


def load_weights(model: "keras.Model", weights: dict[str, list[np.ndarray]]) -> None:
    """Copy `weights` (layer name -> arrays) into every weighted layer of `model`.

    Arrays are cast to the layer's dtype (float64 for the quantisation measurement).
    """
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in weights:
            raise ValueError(f"the weights have nothing for layer {layer.name}")
        arrays = weights[layer.name]
        expected = [tuple(w.shape) for w in layer.weights]
        got = [tuple(a.shape) for a in arrays]
        if expected != got:
            raise ValueError(f"layer {layer.name}: source shapes {got}, model needs {expected}")
        layer.set_weights([np.asarray(a, dtype=w.dtype) for a, w in
                           zip(arrays, layer.weights, strict=True)])


def build(arrays: folding.Arrays, names: list[str], dtype: str = "float32") -> "keras.Model":
    """The folded network with `arrays` as weights, returning `names` in order, nothing deeper.

    A functional model keeps only the layers its outputs need, so it ends at the deepest
    chosen layer.
    """
    base = architecture((None, None, 3), dtype)
    outputs = [base.get_layer(name).output for name in names]
    model = _keras().Model(base.input, outputs, name="mobilenet_v2_dream")
    load_weights(model, arrays)
    return model


def classifier(weights: dict[str, list[np.ndarray]]) -> "keras.Model | None":
    """The source's 224 px ImageNet classifier (batch norm unfolded), or None without a head."""
    if "predictions" not in weights:
        return None
    model = reference((CLASSIFIER_SIZE, CLASSIFIER_SIZE, 3), include_top=True)
    load_weights(model, weights)
    return model


def reference_outputs(weights: dict[str, list[np.ndarray]], names: list[str]) -> "keras.Model":
    """Keras Applications' network with the source weights, returning `names`: the
    unfolded model that `build(fold(weights), names)` must reproduce."""
    base = reference((None, None, 3))
    load_weights(base, weights)
    return _keras().Model(base.input, [base.get_layer(n).output for n in names])


def source_weights(description: dict) -> dict[str, list[np.ndarray]]:
    """The source weights a manifest's "source" names, checked against its sha256."""
    from converter import sources
    from converter.errors import ExportError

    if description["kind"] == "keras-applications-h5":
        weights, _ = sources.keras_file_weights(sources.default_weights_path(),
                                                description["sha256"])
        return weights
    if description["kind"] == "tf-hub":
        weights, info = sources.hub_weights(description["name"])
        if info["sha256"] != description["sha256"]:
            raise ExportError(f"TF Hub handle {description['name']} now holds other weights")
        return weights
    raise ExportError(f"unknown weight source kind {description['kind']!r}")
