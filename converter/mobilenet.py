"""MobileNetV2 rebuilt for dreaming: any input size, one output per chosen layer.

DeepDream needs intermediate activations, not class scores, and it needs them for photos of
any size, so the ImageNet network is rebuilt headless with an `(None, None, 3)` input and
cut after the deepest chosen layer (layers past it would only cost time and bytes).
"""

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

# Shallow to deep; chosen by looking at dreams of real photos (see README, "Default layers"):
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


class LayerInfo:
    """A layer a dream can target: its name, stride in input pixels and channel count."""

    def __init__(self, name: str, stride: int, channels: int) -> None:
        self.name = name
        self.stride = stride
        self.channels = channels

    @property
    def label(self) -> str:
        """A visitor-facing word for what this layer tends to dream."""
        if self.name in LAYER_LABELS:
            return LAYER_LABELS[self.name]
        return STRIDE_LABELS.get(self.stride, f"stride {self.stride}")


def _keras():  # noqa: ANN202  # imported late: `--help` and argument errors should not wait for TensorFlow
    import keras

    return keras


def is_usable(name: str) -> bool:
    """Layers worth dreaming on: nonlinear activations and the outputs of blocks.

    Raw convolutions and batch norms are left out: the TF.js graph folds batch norm into the
    convolution, so only what follows them exists as a tensor in the exported model.
    """
    return name.endswith(("_relu", "_add", "_project_BN"))


def architecture(input_shape: tuple, include_top: bool = False) -> "keras.Model":
    """An untrained Keras MobileNetV2 (alpha 1.0); weights are copied in by name later."""
    keras = _keras()
    return keras.applications.MobileNetV2(
        input_shape=input_shape, include_top=include_top, weights=None
    )


def usable_layers() -> list[LayerInfo]:
    """Every dreamable layer, shallow to deep, with stride and channels (from a 224 px trace)."""
    model = architecture((224, 224, 3))
    infos = []
    for layer in model.layers:
        if is_usable(layer.name):
            _, height, _, channels = layer.output.shape
            infos.append(LayerInfo(layer.name, 224 // height, int(channels)))
    return infos


def check_layer_names(names: list[str], valid: list[LayerInfo]) -> None:
    """Refuse unknown or repeated layer names, listing the valid ones."""
    known = [info.name for info in valid]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(
            f"unknown layer {', '.join(unknown)}; valid layers: {', '.join(known)}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"a layer is named twice in {','.join(names)}")
    if not names:
        raise ValueError("no layers chosen; valid layers: " + ", ".join(known))


def load_weights(model: "keras.Model", weights: dict[str, list[np.ndarray]]) -> None:
    """Copy `weights` (Keras layer name -> arrays) into every weighted layer of `model`."""
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in weights:
            raise ValueError(f"the weight source has nothing for layer {layer.name}")
        arrays = weights[layer.name]
        expected = [tuple(w.shape) for w in layer.weights]
        got = [tuple(a.shape) for a in arrays]
        if expected != got:
            raise ValueError(f"layer {layer.name}: source shapes {got}, model needs {expected}")
        layer.set_weights(arrays)


def backbone(weights: dict[str, list[np.ndarray]]) -> "keras.Model":
    """Headless MobileNetV2 for inputs of any size, with the given ImageNet weights."""
    model = architecture((None, None, 3))
    load_weights(model, weights)
    return model


def classifier(weights: dict[str, list[np.ndarray]]) -> "keras.Model | None":
    """The 224 px ImageNet classifier, or None when the source has no classification head."""
    if "predictions" not in weights:
        return None
    model = architecture((224, 224, 3), include_top=True)
    load_weights(model, weights)
    return model


def multi_output(base: "keras.Model", names: list[str]) -> "keras.Model":
    """A model returning the activations of `names`, in that order, and nothing deeper."""
    keras = _keras()
    outputs = [base.get_layer(name).output for name in names]
    return keras.Model(base.input, outputs, name="mobilenet_v2_dream")
